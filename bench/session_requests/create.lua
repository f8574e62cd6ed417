-- wrk script: POST /api/session-requests, each request a different (student, package) pair.
-- Arguments (after --): tokens file, students, packages per tutor, packages in all, pair offset,
-- wrk threads.
-- Thread t of n sends pairs offset + t, offset + t + n, ...; pair k is student 1 + k % students
-- and a package that walks all packages of the seed as k grows (the same arithmetic as the
-- pgbench script in run.py).

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

function init(args)
   tokens = {}
   for line in io.lines(args[1]) do
      tokens[#tokens + 1] = line
   end
   students = tonumber(args[2])
   per_tutor = tonumber(args[3])
   all_packages = tonumber(args[4])
   offset = tonumber(args[5])
   thread_stride = tonumber(args[6])
   sent = 0
   statuses = {}
end

function request()
   local k = offset + tid + sent * thread_stride
   sent = sent + 1
   local student = 1 + k % students
   local package = 1 + (math.floor(k / students) + (student - 1) * per_tutor) % all_packages
   local tutor = 1 + math.floor((package - 1) / per_tutor)
   local body = string.format(
      '{"tutor_id":%d,"package_id":%d,"message":"I would like to book sessions",' ..
      '"schedule_type":"recurring","days":["Monday","Wednesday"],"start_time":"14:00",' ..
      '"end_time":"16:00","counter_offer_price":150.00}', tutor, package)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[student],
   }, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for status, n in pairs(counts) do
         merged[tostring(status)] = (merged[tostring(status)] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(merged) do
      parts[#parts + 1] = string.format('"%s":%d', status, n)
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,' ..
      '"non2xx":%d,"socket_errors":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors.status,
      errors.connect + errors.read + errors.write + errors.timeout, table.concat(parts, ",")))
end
