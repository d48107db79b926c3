-- wrk script: client_credentials with client_secret_basic, with a DPoP proof per request when BENCH_PROOFS
-- names a file of pre-signed proofs (one per line, unique jti: a replayed one is refused). env:
-- BENCH_PROOFS (optional), BENCH_BASIC (base64 id:secret), BENCH_RESOURCE, BENCH_SCOPE, BENCH_LABEL.
local file = os.getenv("BENCH_PROOFS") or ""
local basic = "Basic " .. os.getenv("BENCH_BASIC")
local resource = os.getenv("BENCH_RESOURCE")
local scope = os.getenv("BENCH_SCOPE") or "tools:read"
local label = os.getenv("BENCH_LABEL") or "bench"

local function urlenc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  ok, non2xx, badbody, sample = 0, 0, 0, ""
  lines = {}
  local n = 0
  if file ~= "" then
    for line in io.lines(file) do
      n = n + 1
      if n % tonumber(os.getenv("BENCH_THREADS") or 2) == (id - 1) then table.insert(lines, line) end
    end
  end
  idx = 0
  body = "grant_type=client_credentials&resource=" .. urlenc(resource) .. "&scope=" .. urlenc(scope)
end

function request()
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = basic}
  if file ~= "" then
    idx = idx + 1
    headers["DPoP"] = lines[idx] or "exhausted"
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, resp)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then sample = status .. " " .. string.sub(resp or "", 1, 200) end
  elseif not string.find(resp or "", '"access_token"', 1, true) then
    badbody = badbody + 1
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local good, bad2xx, bodybad, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    bad2xx = bad2xx + t:get("non2xx")
    bodybad = bodybad + t:get("badbody")
    local s = t:get("sample")
    if first == "" and s and s ~= "" then first = s end
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local out = function(k, v) io.write(string.format("%s.%s %s\n", label, k, v)) end
  out("rps", string.format("%.1f", summary.requests / secs))
  out("ok_rps", string.format("%.1f", good / secs))
  out("p50_ms", string.format("%.2f", latency:percentile(50) / 1000))
  out("p99_ms", string.format("%.2f", latency:percentile(99) / 1000))
  out("requests", summary.requests)
  out("non2xx", bad2xx)
  out("bad_body", bodybad)
  out("socket_errors", sock)
  if bad2xx + bodybad + sock > 0 then
    out("status", "ERRORS")
    io.write(string.format("# %s first bad response: %s\n", label, first:gsub("\n", " ")))
  else
    out("status", "OK")
  end
end
