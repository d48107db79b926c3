-- wrk script: client_credentials with private_key_jwt; replays pre-signed assertions in order
-- (each has a unique jti: a replayed one would be refused). env: BENCH_ASSERTIONS (file),
-- BENCH_RESOURCE, BENCH_SCOPE, BENCH_LABEL. Prints the same figures as the peer's bench.lua.
local file = os.getenv("BENCH_ASSERTIONS")
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
  for line in io.lines(file) do
    n = n + 1
    if n % tonumber(os.getenv("BENCH_THREADS") or 2) == (id - 1) then table.insert(lines, line) end
  end
  idx = 0
  prefix = "grant_type=client_credentials&resource=" .. urlenc(resource) .. "&scope=" .. urlenc(scope)
    .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
end

function request()
  idx = idx + 1
  local a = lines[idx]
  if a == nil then a = "exhausted" end
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, prefix .. a)
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
