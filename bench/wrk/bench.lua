-- The one wrk script of bench/run. Everything comes from the environment, so bench.py drives
-- every scenario with it:
--
--   BENCH_METHOD        request method (default GET)
--   BENCH_BODY          request body (sent with Content-Type BENCH_CONTENT_TYPE, default
--                       application/x-www-form-urlencoded)
--   BENCH_HEADERS       extra headers, "Name: value" lines separated by "\n"
--   BENCH_REQUESTS      a file of requests, one per line: METHOD<TAB>PATH<TAB>BODY<TAB>HEADER
--                       (HEADER is one optional "Name: value"); each request picks a random line
--                       (a fixed sequence per thread: math.randomseed(thread number))
--   BENCH_UNIQUE_JSON   a JSON body template containing "{id}": each request replaces it with a
--                       fresh id "{BENCH_UNIQUE_PREFIX}{thread}-{n}" (tenant provisioning)
--   BENCH_DELAY_MS      mean think time in milliseconds after each response on a connection
--                       (fractional: rounded up or down at random so the mean is exact). Used to
--                       run at about half the peak rate.
--
-- At the end it prints one line "BENCH_JSON {...}" with the raw numbers: requests, duration,
-- errors by kind, non-2xx count, latency percentiles in microseconds, and the status codes seen.

local threads = {}
local counter = 1

function setup(thread)
   thread:set("tnum", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function split_lines(s)
   local out = {}
   for line in (s .. "\n"):gmatch("(.-)\n") do
      if line ~= "" then table.insert(out, line) end
   end
   return out
end

local function split_tabs(line)
   local out = {}
   for field in (line .. "\t"):gmatch("(.-)\t") do table.insert(out, field) end
   return out
end

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local content_type = os.getenv("BENCH_CONTENT_TYPE") or "application/x-www-form-urlencoded"
local headers_env = os.getenv("BENCH_HEADERS")
local requests_file = os.getenv("BENCH_REQUESTS")
local unique_json = os.getenv("BENCH_UNIQUE_JSON")
local unique_prefix = os.getenv("BENCH_UNIQUE_PREFIX") or "b"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")

local reqs = nil
local nreqs = 0
local tnum = 0
local sent = 0
local statuses = {}

function init(args)
   tnum = tonumber(wrk.thread:get("tnum")) or 0
   math.randomseed(tnum * 7919 + 17)
   wrk.method = method
   if headers_env then
      for _, line in ipairs(split_lines(headers_env)) do
         local name, value = line:match("^([^:]+):%s*(.*)$")
         if name then wrk.headers[name] = value end
      end
   end
   if body then
      wrk.body = body
      wrk.headers["Content-Type"] = content_type
   end
   if requests_file then
      reqs = {}
      local f = assert(io.open(requests_file, "r"))
      for line in f:lines() do
         if line ~= "" then
            local p = split_tabs(line)
            local h = {}
            for k, v in pairs(wrk.headers) do h[k] = v end
            local req_body = p[3]
            if req_body == "" then req_body = nil end
            if req_body then h["Content-Type"] = content_type end
            if p[4] and p[4] ~= "" then
               local name, value = p[4]:match("^([^:]+):%s*(.*)$")
               if name then h[name] = value end
            end
            table.insert(reqs, wrk.format(p[1], p[2], h, req_body))
         end
      end
      f:close()
      nreqs = #reqs
   end
   if unique_json then
      wrk.headers["Content-Type"] = "application/json"
   end
end

function request()
   if reqs then
      return reqs[math.random(nreqs)]
   end
   if unique_json then
      sent = sent + 1
      local id = unique_prefix .. tnum .. "-" .. sent
      local b = unique_json:gsub("{id}", id)
      return wrk.format(nil, nil, nil, b)
   end
   return wrk.format()
end

if delay_ms then
   local whole = math.floor(delay_ms)
   local frac = delay_ms - whole
   function delay()
      if math.random() < frac then return whole + 1 end
      return whole
   end
end

-- response() is defined only where it is needed (it makes wrk hand every response to Lua, which
-- costs the load generator CPU): with BENCH_UNIQUE_JSON, to count status codes (201 = created).
-- Elsewhere wrk's own count of answers >= 400 (errors.status) is the check.
if unique_json then
   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
      local parts = {}
      for code, n in pairs(statuses) do table.insert(parts, code .. "=" .. n) end
      wrk.thread:set("status_counts", table.concat(parts, ","))
   end
end

function done(summary, latency, requests)
   local codes = {}
   for _, t in ipairs(threads) do
      -- Each thread's status counts, gathered as "code=count,..." strings.
      local s = t:get("status_counts")
      if s then table.insert(codes, s) end
   end
   local p = function(q) return latency:percentile(q) end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
      '"statuses":"%s"}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
      summary.errors.timeout,
      latency.min, latency.mean, latency.max, latency.stdev, p(50), p(90), p(99), p(99.9),
      table.concat(codes, ";")))
end

