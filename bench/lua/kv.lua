-- One wrk script for every figure; the Python harness sets its behaviour through environment variables.
--   BENCH_MODE     get | put | mixed | list | seed
--   BENCH_PATH     path before the key, e.g. /v2/key-value-stores/ID/records/
--   BENCH_FMT      how a key number becomes a key (string.format), e.g. k%06d
--   BENCH_KEYS     how many keys exist (random keys are drawn from 0 .. BENCH_KEYS-1)
--   BENCH_QUERY    appended to every path (with its leading ? or &)
--   BENCH_TOKEN    sent as Authorization: Bearer, when set
--   BENCH_MIN, BENCH_MAX   body sizes in bytes for PUT (uniform between them)
--   BENCH_PUT_PCT  for mixed: the share of PUTs in percent
--   BENCH_LIST_GROUPS  for list: start keys are drawn from this many groups (see bench/figures.py)
-- done() prints one JSON line that the harness reads.

local mode = os.getenv("BENCH_MODE") or "get"
local base = os.getenv("BENCH_PATH") or "/"
local fmt = os.getenv("BENCH_FMT") or "k%06d"
local nkeys = tonumber(os.getenv("BENCH_KEYS") or "1")
local query = os.getenv("BENCH_QUERY") or ""
local token = os.getenv("BENCH_TOKEN") or ""
local min_size = tonumber(os.getenv("BENCH_MIN") or "1024")
local max_size = tonumber(os.getenv("BENCH_MAX") or "1024")
local put_pct = tonumber(os.getenv("BENCH_PUT_PCT") or "0")

local get_headers = {}
local put_headers = { ["Content-Type"] = "application/octet-stream" }
if token ~= "" then
   get_headers["Authorization"] = "Bearer " .. token
   put_headers["Authorization"] = "Bearer " .. token
end

local payload
local seq = 0
local done_count = 0

function init(args)
   math.randomseed(os.time())
   local parts = {}
   for i = 1, math.ceil(max_size / 64) do
      parts[i] = string.format("%064x", math.random(0, 2 ^ 31))
   end
   payload = table.concat(parts):sub(1, max_size)
end

local function random_key()
   return string.format(fmt, math.random(0, nkeys - 1))
end

local function get(key)
   return wrk.format("GET", base .. key .. query, get_headers)
end

local function put(key)
   local size = min_size
   if max_size > min_size then
      size = math.random(min_size, max_size)
   end
   return wrk.format("PUT", base .. key .. query, put_headers, payload:sub(1, size))
end

function request()
   if mode == "get" then
      return get(random_key())
   elseif mode == "put" then
      return put(random_key())
   elseif mode == "mixed" then
      if math.random(1, 100) <= put_pct then
         return put(random_key())
      end
      return get(random_key())
   elseif mode == "seed" then
      -- Every key once, in order; wrk exits once all are answered (a stopped thread would idle until -d).
      local key = string.format(fmt, seq % nkeys)
      seq = seq + 1
      return put(key)
   end
   -- list: a page of keys starting after a random key (BENCH_QUERY carries limit and prefix)
   return wrk.format("GET", base .. query .. random_key(), get_headers)
end

-- Only seeding needs to see responses: with a response() defined, wrk makes a Lua table of every response's
-- headers, client CPU on the same cores as the server's that grows with the server's header count.
if mode == "seed" then
   function response(status, headers, body)
      done_count = done_count + 1
      if done_count >= nkeys then
         os.exit(0)
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d,'
         .. ' "p999_us": %d, "max_us": %d, "mean_us": %.1f, "connect": %d, "read": %d, "write": %d,'
         .. ' "status": %d, "timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean, e.connect, e.read, e.write,
      e.status, e.timeout))
end
