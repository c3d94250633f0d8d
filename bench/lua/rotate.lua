-- One request template for wrk, with the caller rotating over a pool of users so that per-wallet limits and
-- row locks see realistic traffic. Configured from the environment (bench/loadgen.py sets these):
--   BENCH_METHOD        GET or POST
--   BENCH_PATH          request path and query
--   BENCH_BODY          JSON body for POST
--   BENCH_USERS         how many users to rotate over (X-Test-User-Email: format(BENCH_EMAIL_FORMAT, i))
--   BENCH_EMAIL_FORMAT  e.g. "bench-%d@example.com"
--   BENCH_TOKENS_FILE   instead of the bypass header: one Firebase ID token per line, sent as a Bearer token
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles in microseconds.
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/health"
local body = os.getenv("BENCH_BODY")
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local email_format = os.getenv("BENCH_EMAIL_FORMAT") or "bench-%d@example.com"
local tokens_file = os.getenv("BENCH_TOKENS_FILE")

local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  -- Threads start far apart in the user pool so they do not hit the same wallet at the same moment.
  counter = (offset or 0) * 7919
  if tokens_file then
    tokens = {}
    for line in io.lines(tokens_file) do
      if #line > 0 then table.insert(tokens, line) end
    end
    users = #tokens
  end
end

function request()
  counter = counter + 1
  local i = counter % users
  local headers = {}
  if method == "POST" then headers["Content-Type"] = "application/json" end
  if tokens then
    headers["Authorization"] = "Bearer " .. tokens[i + 1]
  else
    headers["X-Test-User-Email"] = string.format(email_format, i)
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, ' ..
    '"mean": %d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
