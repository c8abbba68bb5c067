-- Replays precomputed, Twilio-signed webhook requests, each at most once, and sorts
-- every answer into a class so the harness can tell real work from error answers.
--
-- wrk -s replay.lua URL -- FILE MODE THREADS
--   FILE     lines "METHOD<TAB>PATH<TAB>X-Twilio-Signature<TAB>BODY"; line i belongs to
--            wrk thread i % THREADS, so every thread keeps its own lines in file order
--   MODE     "once": stop the thread when its lines run out (never send one twice);
--            "cycle": start over (only for targets that keep no state)
-- done() prints "bench.<key>=<value>" lines for the harness to parse.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file, mode, nthreads = args[1], args[2], tonumber(args[3])
  cycle = (mode == "cycle")
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local method, path, sig, body = line:match("^(%u+)\t([^\t]+)\t([^\t]*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
      }
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
    end
    i = i + 1
  end
  pos = 0
  sent = 0
  exhausted = 0
  counts = {}
  -- wrk calls request() once on thread 0 before the run only to check that it parses
  -- (script_verify_request) and never sends that one: do not use up a line for it.
  dry_run = (id == 0)
end

function request()
  if dry_run then
    dry_run = false
    return reqs[1]
  end
  if pos >= #reqs then
    if cycle and #reqs > 0 then
      pos = 0
    else
      -- Out of prepared requests: sending one again would measure the replay refusal.
      -- Stop this thread; the harness marks the run invalid and retries with more.
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/__bench_exhausted__")
    end
  end
  pos = pos + 1
  sent = sent + 1
  return reqs[pos]
end

local function classify(status, body)
  if status == 204 then return "no_content" end
  if status ~= 200 then return "http_" .. status end
  if body:find('"reason":"unavailable"', 1, true) then return "unavailable" end
  if body:find('"reason":"locked"', 1, true) then return "locked" end
  if body:find('"reason":"verified"', 1, true) then return "verified" end
  if body:find("<Enqueue", 1, true) or body:find("<Dial", 1, true) then return "routed_other" end
  if body:find("<Gather", 1, true) then return "gather" end
  return "other"
end

function response(status, headers, body)
  local class = classify(status, body)
  counts[class] = (counts[class] or 0) + 1
end

function done(summary, latency, requests)
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    err_connect = summary.errors.connect,
    err_read = summary.errors.read,
    err_write = summary.errors.write,
    err_status = summary.errors.status,
    err_timeout = summary.errors.timeout,
    p50_us = latency:percentile(50),
    p90_us = latency:percentile(90),
    p99_us = latency:percentile(99),
    max_us = latency.max,
    mean_us = latency.mean,
    exhausted = 0,
    sent = 0,
  }
  local classes = {}
  for _, thread in ipairs(threads) do
    out.exhausted = out.exhausted + thread:get("exhausted")
    out.sent = out.sent + thread:get("sent")
    for class, n in pairs(thread:get("counts")) do
      classes[class] = (classes[class] or 0) + n
    end
  end
  for key, value in pairs(out) do
    io.write(string.format("bench.%s=%s\n", key, tostring(value)))
  end
  for class, n in pairs(classes) do
    io.write(string.format("bench.class.%s=%d\n", class, n))
  end
end
