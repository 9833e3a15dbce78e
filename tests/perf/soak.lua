-- wrk: the soak's HTTP mix. Each request is drawn at random: increments and decrements of a few counters (some
-- with keys from a small pool, so some are replays), reads and history pages, and junk (bad names, keys, bodies,
-- methods, paths and parameters, oversized bodies). Each connection pauses between requests, so the rate stays
-- bounded. At the end it prints the answers by status and fails loudly on any 5xx.
local counters = 8
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  statuses = {}
end

local function counter()
  return "soak-" .. math.random(0, counters - 1)
end

local junk = {
  function() return wrk.format("POST", "/counters/Not-Valid/increment") end,
  function() return wrk.format("POST", "/counters/" .. string.rep("x", 80) .. "/increment") end,
  function() return wrk.format("POST", "/counters/a/increment", { ["Idempotency-Key"] = "bad key!" }) end,
  function() return wrk.format("POST", "/counters/a/increment", { ["Content-Type"] = "application/json" }, "{nope") end,
  function() return wrk.format("POST", "/counters/a/increment", { ["Content-Type"] = "application/json" }, "[1,2]") end,
  function() return wrk.format("POST", "/counters/a/increment", { ["Content-Type"] = "text/plain" }, "hello") end,
  function() return wrk.format("POST", "/counters/a/increment", { ["Content-Type"] = "application/json" }, "{\"x\":\"" .. string.rep("y", 2048) .. "\"}") end,
  function() return wrk.format("PUT", "/value") end,
  function() return wrk.format("DELETE", "/counters/a") end,
  function() return wrk.format("GET", "/no/such/path") end,
  function() return wrk.format("GET", "/counters/a/history?limit=0") end,
  function() return wrk.format("GET", "/counters/a/history?limit=abc&before=-1") end,
  function() return wrk.format("GET", "/counters/%E0%A4/history") end,
  function() return wrk.format("GET", "/ws") end,
}

function request()
  local roll = math.random()
  if roll < 0.30 then
    return wrk.format("POST", "/counters/" .. counter() .. "/increment")
  elseif roll < 0.40 then
    local name = counter()
    local key = "soak-i-" .. name .. "-" .. math.random(1, 5000)
    return wrk.format("POST", "/counters/" .. name .. "/increment", { ["Idempotency-Key"] = key })
  elseif roll < 0.50 then
    return wrk.format("POST", "/counters/" .. counter() .. "/decrement")
  elseif roll < 0.65 then
    return wrk.format("GET", "/counters/" .. counter())
  elseif roll < 0.75 then
    return wrk.format("GET", "/counters/" .. counter() .. "/history?limit=" .. math.random(1, 100))
  elseif roll < 0.80 then
    return wrk.format("GET", "/health")
  else
    return junk[math.random(1, #junk)]()
  end
end

function delay()
  return 2
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    for status, count in pairs(seen) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local server_errors = 0
  local keys = {}
  for status in pairs(totals) do table.insert(keys, status) end
  table.sort(keys)
  for _, status in ipairs(keys) do
    io.write(string.format("status %d: %d\n", status, totals[status]))
    if status >= 500 then server_errors = server_errors + totals[status] end
  end
  io.write(string.format("5xx answers: %d\n", server_errors))
end
