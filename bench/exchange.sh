#!/usr/bin/env bash
# Token exchange (RFC 8693) issuances/s beside client_credentials issuances/s, same server, same run.
# Loopback only, bounded (wrk -d). Targets: exchange >= 0.8 x client_credentials, and >= 1000/s.
#
#   bench/exchange.sh                      # 1 worker, 10 s per scenario, 3 alternating runs
#   WORKERS=2 DURATION=10 RUNS=3 CONNS=32 THREADS=2 bench/exchange.sh
#
# Scenarios (figures "ours.<scenario>.<figure> <value>"), both client_secret_basic, ES256 JWTs:
#   client_credentials  grant_type=client_credentials, resource, scope=tools:read
#   token_exchange      an agent exchanges one subject token (a long-lived token of another
#                       client, reused for every request: exchange does not consume it) for the
#                       same resource, scope=tools:read; the result carries act = the agent
# Each run does a warmup then both scenarios (order alternating between runs, PAUSE seconds before
# each so background work of the previous one drains); the summary is the median over RUNS, plus the ratio.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
PORT=${AUTHZ_BENCH_PORT:-9151}
WORKERS=${WORKERS:-1}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNS=${CONNS:-32} THREADS=${THREADS:-2} RUNS=${RUNS:-4} PAUSE=${PAUSE:-3}
RESOURCE=http://127.0.0.1:9501/mcp
ISSUER=http://127.0.0.1:$PORT
DATA=$(mktemp -d /tmp/authz-bench-exchange.XXXXXX)
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 2; }

export AUTHZ_ISSUER=$ISSUER AUTHZ_DATA_DIR=$DATA AUTHZ_ACCESS_TOKEN_TTL=3600
authz() { "$PY" -m authz "$@"; }
field() { sed -n "s/^$1: *\([^ ]*\).*/\1/p"; }
urlenc() { "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
basic() { printf '%s:%s' "$1" "$2" | base64 -w0; }

echo "# authz $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $WORKERS worker(s), $(nproc) cpus, data in $DATA" >&2
authz resources add "$RESOURCE" --scopes "tools:read tools:write" --name bench >/dev/null
CC_SECRET=$(authz clients add --client-id bench-cc --grant-type client_credentials | field client_secret)
SUBJ_SECRET=$(authz clients add --client-id bench-subject --grant-type client_credentials | field client_secret)
AGENT_SECRET=$(authz clients add --client-id bench-agent --grant-type client_credentials \
  --grant-type urn:ietf:params:oauth:grant-type:token-exchange | field client_secret)

"$PY" -m authz serve --port "$PORT" --workers "$WORKERS" --no-migrate --log-level warning >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$ISSUER/.well-known/oauth-authorization-server" 2>/dev/null && break; sleep 0.1; done

RES=$(urlenc "$RESOURCE")
CC_BODY="grant_type=client_credentials&resource=$RES&scope=tools%3Aread"
SUBJECT=$(curl -fsS -u "bench-subject:$SUBJ_SECRET" -d "grant_type=client_credentials&resource=$RES&scope=tools%3Aread+tools%3Awrite" \
  "$ISSUER/token" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
TE_BODY="grant_type=$(urlenc urn:ietf:params:oauth:grant-type:token-exchange)&resource=$RES&scope=tools%3Aread"
TE_BODY+="&subject_token_type=$(urlenc urn:ietf:params:oauth:token-type:access_token)&subject_token=$SUBJECT"

# sanity: one of each, and the exchanged token's act
curl -fsS -H "Authorization: Basic $(basic bench-cc "$CC_SECRET")" -d "$CC_BODY" "$ISSUER/token" >/dev/null
curl -fsS -H "Authorization: Basic $(basic bench-agent "$AGENT_SECRET")" -d "$TE_BODY" "$ISSUER/token" \
  | "$PY" -c 'import base64, json, sys
t = json.load(sys.stdin)["access_token"].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
assert c["act"]["sub"] == "bench-agent" and c["sub"] == "bench-subject", c
print("# exchange sanity: sub=%s act=%s scope=%s" % (c["sub"], c["act"], c["scope"]))' >&2

cat >"$DATA/form.lua" <<'LUA'
-- POST one fixed form body with one Authorization header; count 2xx answers carrying an access_token.
local body, auth, label = os.getenv("BENCH_BODY"), os.getenv("BENCH_AUTH"), os.getenv("BENCH_LABEL")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok, bad, sample = 0, 0, "" end
function request()
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
                                  ["Authorization"] = auth}, body)
end
function response(status, headers, resp)
  if status == 200 and string.find(resp or "", '"access_token"', 1, true) then ok = ok + 1
  else bad = bad + 1; if sample == "" then sample = status .. " " .. string.sub(resp or "", 1, 200) end end
end
function done(summary, latency, requests)
  local good, nbad, first = 0, 0, ""
  for _, t in ipairs(threads) do
    good = good + t:get("ok"); nbad = nbad + t:get("bad")
    if first == "" then first = t:get("sample") or "" end
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local out = function(k, v) io.write(string.format("%s.%s %s\n", label, k, v)) end
  out("rps", string.format("%.1f", summary.requests / secs))
  out("ok_rps", string.format("%.1f", good / secs))
  out("p50_ms", string.format("%.2f", latency:percentile(50) / 1000))
  out("p99_ms", string.format("%.2f", latency:percentile(99) / 1000))
  out("bad", nbad)
  out("socket_errors", sock)
  out("status", (nbad + sock > 0) and "ERRORS" or "OK")
  if nbad > 0 then io.write(string.format("# %s first bad response: %s\n", label, first:gsub("\n", " "))) end
end
LUA

one() {  # label body auth seconds
  BENCH_LABEL=$1 BENCH_BODY=$2 BENCH_AUTH="Basic $3" timeout $(($4 + 60)) \
    wrk -t"$THREADS" -c"$CONNS" -d"${4}s" --latency -s "$DATA/form.lua" "$ISSUER/token"
}
: >"$DATA/results.txt"
for run in $(seq 1 "$RUNS"); do
  echo "# run $run/$RUNS: $THREADS threads, $CONNS connections, ${DURATION}s per scenario (+${WARMUP}s warmup)" >&2
  one warmup "$TE_BODY" "$(basic bench-agent "$AGENT_SECRET")" "$WARMUP" >/dev/null
  # alternate the order, and let the audit writer drain the previous scenario's backlog first
  order=(cc te); (( run % 2 == 0 )) && order=(te cc)
  for s in "${order[@]}"; do
    sleep "$PAUSE"
    if [[ $s == cc ]]; then
      one ours.client_credentials "$CC_BODY" "$(basic bench-cc "$CC_SECRET")" "$DURATION"
    else
      one ours.token_exchange "$TE_BODY" "$(basic bench-agent "$AGENT_SECRET")" "$DURATION"
    fi | grep '^ours\.\|^# ' | tee -a "$DATA/results.txt" >&2
  done
done

kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true
trap - EXIT

"$PY" - "$DATA/results.txt" <<'PYEOF'
import statistics, sys
vals: dict[str, list[float]] = {}
status = "OK"
for line in open(sys.argv[1]):
    if line.startswith("#"):
        continue
    key, value = line.split()
    if key.endswith(".status"):
        status = "ERRORS" if value != "OK" else status
        continue
    vals.setdefault(key, []).append(float(value))
print(f"# summary: median over {len(vals.get('ours.client_credentials.rps', []))} runs")
for key in ("ok_rps", "p50_ms", "p99_ms"):
    for scenario in ("client_credentials", "token_exchange"):
        xs = vals[f"ours.{scenario}.{key}"]
        print(f"ours.{scenario}.{key.replace('ok_rps', 'rps')} {statistics.median(xs):.1f}")
cc, te = statistics.median(vals["ours.client_credentials.ok_rps"]), statistics.median(vals["ours.token_exchange.ok_rps"])
print(f"ours.token_exchange.ratio_to_client_credentials {te / cc:.2f}")
print(f"ours.status {status}")
ok = status == "OK" and te >= 0.8 * cc and te >= 1000
print(f"# targets (exchange >= 0.8 x client_credentials and >= 1000/s): {'MET' if ok else 'NOT MET'}")
PYEOF
