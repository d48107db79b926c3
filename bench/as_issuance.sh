#!/usr/bin/env bash
# Token issuance and introspection throughput of `authz serve`, side by side with the peer
# (panva/oidc-provider, ../shared/peers/oidc-provider) in the same run. Loopback only, bounded.
#
#   bench/as_issuance.sh                 # ours (1 worker) vs the peer (1 process): 3 alternating rounds, then the rest
#   WORKERS=2 PEER_WORKERS=2 bench/as_issuance.sh
#   DB=postgres bench/as_issuance.sh     # a fresh PostgreSQL database on 127.0.0.1:5432 (created, then dropped)
#   SERVER=granian bench/as_issuance.sh  # the HTTP server under `authz serve` (uvicorn, the default, or granian)
#   SERVER=uvicorn,granian PEER=0 ONLY=rounds bench/as_issuance.sh   # one server each, alternating rounds
#   ONLY=rounds bench/as_issuance.sh     # only the alternating client_credentials rounds (the issue's figure)
#   PEER=0 bench/as_issuance.sh          # ours only
#   AUDIT_TREE_AB=1 bench/as_issuance.sh # the audit Merkle tree's cost: tree on vs off, alternating rounds
#                                        # (bench/audit_cost.py; ROUNDS=5 DURATION=8)
#   ONLY=dpop PEER=0 bench/as_issuance.sh   # only the DPoP on/off rounds (DPOP_ROUNDS, default 3)
#   AUTHZ_DPOP_REPLICA_NONCES=1 ONLY=dpop PEER=0 bench/as_issuance.sh   # DPoP with the in-memory replay cache
#   DURATION=10 WARMUP=2 CONNS=32 THREADS=2 RUNS=1 ROUNDS=3 (RUNS: passed to the peer's wrk harness)
#
# The production configuration: the client is an agent (`authz agents create`, a secret and a
# public key) with a hard budget (`authz budgets create --agent`, calls per day, far from spent),
# a policy set on disk (`authz policy starter` for the bench resource; AUTHZ_POLICIES), the audit
# log and metering on (their defaults).
#
# Alternating rounds (bench/rounds.py): client_credentials (client_secret_basic, ES256 JWT for one
# resource, scope tools:read) against ours and the peer in turn, ROUNDS times, order flipped every
# round; per-round figures "<target>.r<k>.client_credentials.<figure>", medians, and the median of
# the per-round ratios: "ratio.client_credentials <ours/peer ok_rps>", "ratio.p99 <ours/peer p99>"
# (below 1: our tail is shorter), "ratio.cpu_per_req" (server CPU per request, all processes).
#
# Then, once each (figures "<prefix>.<scenario>.<figure> <value>"): ours through the peer's own
# harness (client_credentials, introspection of that JWT by an authenticated resource server),
# client_credentials with private_key_jwt (pre-signed unique assertions), and client_secret_basic
# with and without a DPoP proof (RFC 9449; pre-signed unique ES256 proofs) in alternating rounds:
# "ours.dpop.ratio" = median DPoP rps / median bearer rps; then the peer's harness on the peer.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEER_KIT=${PEER_KIT:-$ROOT/../shared/peers/oidc-provider}
[[ -d $PEER_KIT ]] || PEER_KIT=$ROOT/../../shared/peers/oidc-provider   # from a worktree (/work/wt/NAME)
export PEER_KIT
PY=${PYTHON:-$ROOT/.venv/bin/python}
PORT=${AUTHZ_BENCH_PORT:-9150}
WORKERS=${WORKERS:-1}
PEER=${PEER:-1}
export PEER_PORT=${PEER_PORT:-9400} PEER_WORKERS=${PEER_WORKERS:-1}
SERVER=${SERVER:-uvicorn}
DB=${DB:-sqlite}
ROUNDS=${ROUNDS:-3}
RESOURCE=http://127.0.0.1:9500/mcp
RESOURCE_ENC=http%3A%2F%2F127.0.0.1%3A9500%2Fmcp   # as the peer's harness sends it
ISSUER=http://127.0.0.1:$PORT
if [[ ${AUDIT_TREE_AB:-0} == 1 ]]; then exec "$PY" "$HERE/audit_cost.py"; fi
DATA=$(mktemp -d /tmp/authz-bench.XXXXXX)
export DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNS=${CONNS:-32} THREADS=${THREADS:-2} RUNS=${RUNS:-1}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }

export AUTHZ_ISSUER=$ISSUER AUTHZ_DATA_DIR=$DATA
cd "$DATA"   # not the repository: a `policies` directory in the working directory would shadow the package
authz() { "$PY" -m authz "$@"; }
field() { sed -n "s/^$1: *\([^ ]*\).*/\1/p"; }

SERVER_PIDS=() PEER_STARTED="" PG_DB=""
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do { wait "$pid"; } 2>/dev/null || true; done
  [[ -n $PEER_STARTED ]] && "$PEER_KIT/run.sh" stop >/dev/null 2>&1 || true
  [[ -n $PG_DB ]] && psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [[ $DB == postgres ]]; then   # a fresh database on the local server, dropped at the end
  PG_ADMIN_URL=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/test}
  [[ $PG_ADMIN_URL =~ ^postgresql://[^@/]*@(127\.0\.0\.1|localhost):5432/ ]] || { echo "PG_ADMIN_URL must be local" >&2; exit 2; }
  PG_DB=authz_bench_$$
  psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
  export AUTHZ_DATABASE_URL=${PG_ADMIN_URL%/*}/$PG_DB
elif [[ $DB != sqlite ]]; then
  echo "DB is sqlite or postgres" >&2; exit 2
fi

echo "# authz $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $WORKERS worker(s), server $SERVER, $DB, data in $DATA; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
authz migrate >/dev/null
authz policy starter --server "$RESOURCE" --scopes "tools:read tools:write" --name bench "$DATA/policy-set" >/dev/null
export AUTHZ_POLICIES=$DATA/policy-set
rs_out=$(authz resources add "$RESOURCE" --scopes "tools:read tools:write" --name bench)
RS_ID=$(field client_id <<<"$rs_out"); RS_SECRET=$(field client_secret <<<"$rs_out")
CLIENT_ID=$(authz agents create bench-agent --description "bench/as_issuance.sh" | field id)
CC_SECRET=$(authz agents credentials issue "$CLIENT_ID" | field client_secret)
authz budgets create --agent "$CLIENT_ID" --metric calls --limit 1000000000000 --period day >/dev/null
"$PY" - "$DATA" <<'PYEOF'
import json, sys
from joserfc.jwk import ECKey
key = ECKey.generate_key("P-256", auto_kid=True)
json.dump(key.as_dict(private=True), open(f"{sys.argv[1]}/key.json", "w"))
json.dump(key.as_dict(private=False), open(f"{sys.argv[1]}/pub.json", "w"))
PYEOF
authz agents credentials issue "$CLIENT_ID" --kind public_key --jwk-file "$DATA/pub.json" >/dev/null
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CC_SECRET" | base64 -w0)

# One `authz serve` per server named in SERVER (comma-separated), on PORT, PORT+1, ...; the first is "ours".
IFS=, read -r -a SERVERS <<<"$SERVER"
TARGETS=()
for i in "${!SERVERS[@]}"; do
  port=$((PORT + i))
  "$PY" -m authz serve --server "${SERVERS[$i]}" --port "$port" --workers "$WORKERS" --no-migrate --log-level warning \
    >"$DATA/server-$port.log" 2>&1 &
  SERVER_PIDS+=($!)
  name=ours; ((${#SERVERS[@]} > 1)) && name=ours-${SERVERS[$i]}
  TARGETS+=(--target "$name=http://127.0.0.1:$port/token,$BASIC,$!")
done
SERVER_PID=${SERVER_PIDS[0]}
if [[ $PEER == 1 ]]; then
  if ! "$PEER_KIT/run.sh" status >/dev/null 2>&1; then "$PEER_KIT/run.sh" start >/dev/null; PEER_STARTED=1; fi
  TARGETS+=(--target "peer=http://127.0.0.1:$PEER_PORT/token,$(printf bench-client:bench-secret | base64 -w0),$("$PEER_KIT/run.sh" status)")
fi
for i in "${!SERVERS[@]}"; do   # up to 60 s each on a loaded machine
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$((PORT + i))/.well-known/oauth-authorization-server" 2>/dev/null && break; sleep 0.1; done
  kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { echo "authz serve --server ${SERVERS[$i]} exited:"; cat "$DATA/server-$((PORT + i)).log"; exit 1; } >&2
done
curl -fsS -o /dev/null -H "Authorization: Basic $BASIC" -d "grant_type=client_credentials&resource=$RESOURCE&scope=tools:read" "$ISSUER/token" \
  || { echo "the bench agent gets no token:"; cat "$DATA"/server-*.log; exit 1; } >&2

run_dpop_rounds() {
  local n round
  n=$(( (DURATION + WARMUP) * 4000 ))
  for round in $(seq 1 "${DPOP_ROUNDS:-3}"); do
    BENCH_BASIC=$BASIC BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.bearer.r$round BENCH_THREADS=$THREADS \
      timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$HERE/dpop.lua" "$ISSUER/token" \
      | grep '^ours\.\|^# '
    # With server nonces on (AUTHZ_DPOP_NONCE / AUTHZ_DPOP_REPLICA_NONCES), sign with the nonce the server
    # names (replica-bound nonces: one worker's nonce only, so use WORKERS=1 for those rounds).
    "$PY" "$HERE/make_dpop_proofs.py" "$ISSUER/token" 1 "$DATA/probe.txt"
    nonce=$(curl -s -D - -o /dev/null -H "Authorization: Basic $BASIC" -H "DPoP: $(cat "$DATA/probe.txt")" \
      -d "grant_type=client_credentials&resource=$RESOURCE" "$ISSUER/token" | sed -n 's/^dpop-nonce: *//Ip' | tr -d '\r')
    "$PY" "$HERE/make_dpop_proofs.py" "$ISSUER/token" "$n" "$DATA/proofs.txt" ${nonce:+--nonce "$nonce"}
    BENCH_PROOFS=$DATA/proofs.txt BENCH_BASIC=$BASIC BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.dpop.r$round \
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

if [[ ${ONLY:-} == dpop ]]; then run_dpop_rounds; exit 0; fi

# ours vs the peer (and/or one server vs another): alternating client_credentials rounds
if ((${#TARGETS[@]} > 2)); then
  "$PY" "$HERE/rounds.py" "${TARGETS[@]}" --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" \
    --conns "$CONNS" --threads "$THREADS" --body "grant_type=client_credentials&resource=${RESOURCE_ENC}&scope=tools%3Aread" \
    | tee "$DATA/rounds.txt"
fi
if [[ ${ONLY:-} == rounds ]]; then exit 0; fi

# ours: client_secret_basic issuance + introspection, through the peer's own harness (same wrk script)
BASE_URL=$ISSUER BENCH_PREFIX=ours TOKEN_URL=$ISSUER/token INTROSPECT_URL=$ISSUER/introspect \
  CLIENT_ID=$CLIENT_ID CLIENT_SECRET=$CC_SECRET RS_CLIENT_ID=$RS_ID RS_CLIENT_SECRET=$RS_SECRET \
  RESOURCE_JWT=$RESOURCE RESOURCE_OPAQUE= SERVER_PID=$SERVER_PID BENCH_OUT=$DATA/wrk \
  "$PEER_KIT/bench.sh"

# ours: private_key_jwt issuance (unique pre-signed assertions; wrk cannot sign ES256)
N=$(( (DURATION + WARMUP) * 4000 * RUNS ))
"$PY" "$HERE/make_assertions.py" "$DATA/key.json" "$CLIENT_ID" "$ISSUER" "$N" "$DATA/assertions.txt"
BENCH_ASSERTIONS=$DATA/assertions.txt BENCH_RESOURCE=$RESOURCE BENCH_LABEL=ours.private_key_jwt BENCH_THREADS=$THREADS \
  timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/pkjwt.lua" "$ISSUER/token" \
  | grep '^ours\.\|^# '

# ours: DPoP on vs off (alternating rounds, same server, same client)
run_dpop_rounds

if [[ $PEER == 1 ]]; then
  echo "# the peer, same machine, same harness" >&2
  BENCH_OUT=$DATA/peer "$PEER_KIT/bench.sh" \
    || echo "# the peer's harness reported errors (with PEER_WORKERS=2 its opaque introspection is per worker)"
fi
