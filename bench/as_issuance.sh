#!/usr/bin/env bash
# Token issuance and introspection throughput of `authz serve`, side by side with the peer
# (panva/oidc-provider, ../shared/peers/oidc-provider) in the same run. Loopback only, bounded.
#
#   bench/as_issuance.sh                 # ours (1 worker) + the peer (1 process)
#   WORKERS=2 PEER_WORKERS=2 bench/as_issuance.sh
#   PEER=0 bench/as_issuance.sh          # ours only
#   AUDIT_TREE_AB=1 bench/as_issuance.sh # the audit Merkle tree's cost: tree on vs off, alternating rounds
#                                        # (bench/audit_cost.py; ROUNDS=5 DURATION=8)
#   ONLY=dpop PEER=0 bench/as_issuance.sh   # only the DPoP on/off rounds (DPOP_ROUNDS, default 3)
#   AUTHZ_DPOP_REPLICA_NONCES=1 ONLY=dpop PEER=0 bench/as_issuance.sh   # DPoP with the in-memory replay cache
#   DURATION=10 WARMUP=2 CONNS=32 THREADS=2 RUNS=1 (passed to the peer's wrk harness)
#
# Scenarios (figures "<prefix>.<scenario>.<figure> <value>"): client_credentials with
# client_secret_basic (ES256 JWT, aud = resource), introspection of that JWT (authenticated
# resource server), client_credentials with private_key_jwt (pre-signed unique assertions), and
# client_credentials with client_secret_basic with and without a DPoP proof (RFC 9449; pre-signed
# unique ES256 proofs), in alternating rounds: "ours.dpop.ratio" = median DPoP rps / median bearer rps.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEER_KIT=${PEER_KIT:-$ROOT/../shared/peers/oidc-provider}
PY=${PYTHON:-$ROOT/.venv/bin/python}
PORT=${AUTHZ_BENCH_PORT:-9150}
WORKERS=${WORKERS:-1}
PEER=${PEER:-1}
RESOURCE=http://127.0.0.1:9500/mcp
ISSUER=http://127.0.0.1:$PORT
if [[ ${AUDIT_TREE_AB:-0} == 1 ]]; then exec "$PY" "$HERE/audit_cost.py"; fi
DATA=$(mktemp -d /tmp/authz-bench.XXXXXX)
export DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNS=${CONNS:-32} THREADS=${THREADS:-2} RUNS=${RUNS:-1}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }

export AUTHZ_ISSUER=$ISSUER AUTHZ_DATA_DIR=$DATA
authz() { "$PY" -m authz "$@"; }
field() { sed -n "s/^$1: *\([^ ]*\).*/\1/p"; }

echo "# authz $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $WORKERS worker(s), data in $DATA" >&2
rs_out=$(authz resources add "$RESOURCE" --scopes "tools:read tools:write" --name bench)
RS_ID=$(field client_id <<<"$rs_out"); RS_SECRET=$(field client_secret <<<"$rs_out")
cc_out=$(authz clients add --client-id bench-client --grant-type client_credentials)
CC_SECRET=$(field client_secret <<<"$cc_out")
"$PY" - "$DATA" <<'PYEOF'
import json, sys
from joserfc.jwk import ECKey
key = ECKey.generate_key("P-256", auto_kid=True)
json.dump(key.as_dict(private=True), open(f"{sys.argv[1]}/key.json", "w"))
json.dump({"keys": [key.as_dict(private=False)]}, open(f"{sys.argv[1]}/jwks.json", "w"))
PYEOF
authz clients add --client-id bench-pkjwt --auth-method private_key_jwt --jwks-file "$DATA/jwks.json" \
  --grant-type client_credentials >/dev/null

"$PY" -m authz serve --port "$PORT" --workers "$WORKERS" --no-migrate --log-level warning >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -fsS -o /dev/null "$ISSUER/.well-known/oauth-authorization-server" 2>/dev/null && break; sleep 0.1; done  # up to 60 s on a loaded machine

run_dpop_rounds() {
  local basic n round
  basic=$(printf '%s:%s' bench-client "$CC_SECRET" | base64 -w0)
  n=$(( (DURATION + WARMUP) * 4000 ))
  for round in $(seq 1 "${DPOP_ROUNDS:-3}"); do
    BENCH_BASIC=$basic BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.bearer.r$round BENCH_THREADS=$THREADS \
      timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$HERE/dpop.lua" "$ISSUER/token" \
      | grep '^ours\.\|^# '
    # With server nonces on (AUTHZ_DPOP_NONCE / AUTHZ_DPOP_REPLICA_NONCES), sign with the nonce the server
    # names (replica-bound nonces: one worker's nonce only, so use WORKERS=1 for those rounds).
    "$PY" "$HERE/make_dpop_proofs.py" "$ISSUER/token" 1 "$DATA/probe.txt"
    nonce=$(curl -s -D - -o /dev/null -H "Authorization: Basic $basic" -H "DPoP: $(cat "$DATA/probe.txt")" \
      -d "grant_type=client_credentials&resource=$RESOURCE" "$ISSUER/token" | sed -n 's/^dpop-nonce: *//Ip' | tr -d '\r')
    "$PY" "$HERE/make_dpop_proofs.py" "$ISSUER/token" "$n" "$DATA/proofs.txt" ${nonce:+--nonce "$nonce"}
    BENCH_PROOFS=$DATA/proofs.txt BENCH_BASIC=$basic BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.dpop.r$round \
      BENCH_THREADS=$THREADS timeout $((DURATION + 60)) \
      wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$HERE/dpop.lua" "$ISSUER/token" | grep '^ours\.\|^# '
  done | tee "$DATA/dpop.txt"
  "$PY" - "$DATA/dpop.txt" <<'PYEOF'
import statistics, sys
rps = {"bearer": [], "dpop": []}
for line in open(sys.argv[1]):
    name, _, value = line.strip().partition(" ")
    parts = name.split(".")
    if len(parts) == 4 and parts[3] == "ok_rps":
        rps[parts[1]].append(float(value))
b, d = statistics.median(rps["bearer"]), statistics.median(rps["dpop"])
paired = statistics.median(x / y for x, y in zip(rps["dpop"], rps["bearer"]))
print(f"ours.bearer.ok_rps {b:.1f}\nours.dpop.ok_rps {d:.1f}\nours.dpop.ratio {d / b:.3f}\nours.dpop.ratio_paired {paired:.3f}")
PYEOF
}

if [[ ${ONLY:-} == dpop ]]; then
  run_dpop_rounds
  kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true
  trap - EXIT
  exit 0
fi

# ours: client_secret_basic issuance + introspection, through the peer's own harness (same wrk script)
BASE_URL=$ISSUER BENCH_PREFIX=ours TOKEN_URL=$ISSUER/token INTROSPECT_URL=$ISSUER/introspect \
  CLIENT_ID=bench-client CLIENT_SECRET=$CC_SECRET RS_CLIENT_ID=$RS_ID RS_CLIENT_SECRET=$RS_SECRET \
  RESOURCE_JWT=$RESOURCE RESOURCE_OPAQUE= SERVER_PID=$SERVER_PID BENCH_OUT=$DATA/wrk \
  "$PEER_KIT/bench.sh"

# ours: private_key_jwt issuance (unique pre-signed assertions; wrk cannot sign ES256)
N=$(( (DURATION + WARMUP) * 4000 * RUNS ))
"$PY" "$HERE/make_assertions.py" "$DATA/key.json" bench-pkjwt "$ISSUER" "$N" "$DATA/assertions.txt"
BENCH_ASSERTIONS=$DATA/assertions.txt BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.private_key_jwt BENCH_THREADS=$THREADS \
  timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/pkjwt.lua" "$ISSUER/token" \
  | grep '^ours\.\|^# '

# ours: DPoP on vs off (alternating rounds, same server, same client)
run_dpop_rounds

kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true
trap - EXIT

if [[ $PEER == 1 ]]; then
  echo "# the peer, same machine, same harness" >&2
  PEER_WORKERS=${PEER_WORKERS:-1} "$PEER_KIT/bench.sh"
fi
