-- wrk script: POST realistic reports, each with a fresh report_id, from many homes at random.
-- Environment: BENCH_TOKENS (file: "home_id token" per line), BENCH_TEMPLATE (report JSON with
-- __HOME__, __RID__ and __NOW__ placeholders).
local homes = {}
local template

local function read(path)
  local handle = assert(io.open(path, "r"))
  local text = handle:read("*a")
  handle:close()
  return text
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  for line in read(os.getenv("BENCH_TOKENS")):gmatch("[^\n]+") do
    local home, token = line:match("(%S+)%s+(%S+)")
    homes[#homes + 1] = {home = home, token = token}
  end
  template = read(os.getenv("BENCH_TEMPLATE"))
  math.randomseed(os.time() * 1000 + (id or 0))
end

local function uuid()
  return (("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"):gsub("[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

function request()
  local home = homes[math.random(#homes)]
  local now = os.date("!%Y-%m-%dT%H:%M:%S+00:00")
  local body = template:gsub("__HOME__", home.home):gsub("__RID__", uuid()):gsub("__NOW__", now)
  return wrk.format("POST", "/api/v1/reports", {
    ["Authorization"] = "Bearer " .. home.token,
    ["Content-Type"] = "application/json",
  }, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
