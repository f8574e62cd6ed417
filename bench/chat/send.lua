-- wrk script: POST /api/chat/messages, spread over the bench's sender/receiver pairs.
-- Arguments (after --): sender tokens file (one per pair, in pair order), first pair's
-- conversation id, wrk threads. Thread t sends k = t, t + n, t + 2n, ...: pair k % pairs, with a
-- client_message_id unique to the run.

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
   first_conversation = tonumber(args[2])
   thread_stride = tonumber(args[3])
   sent = 0
   statuses = {}
end

function request()
   local k = tid + sent * thread_stride
   sent = sent + 1
   local pair = k % #tokens
   local body = string.format(
      '{"conversation_id":%d,"content":"Benchmark message %d","message_type":"text",' ..
      '"client_message_id":"wrk-%d"}', first_conversation + pair, k, k)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[pair + 1],
   }, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local created = 0
   for _, thread in ipairs(threads) do
      created = created + (thread:get("statuses")[201] or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"created":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,' ..
      '"non2xx":%d,"socket_errors":%d}\n',
      summary.requests, created, summary.duration / 1e6, latency:percentile(50) / 1000,
      latency:percentile(99) / 1000, errors.status,
      errors.connect + errors.read + errors.write + errors.timeout))
end
