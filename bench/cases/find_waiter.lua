-- bench/cases/find_waiter.lua: User:find(id) W.FINDS times with a waiter
-- set (ormed: one coroutine of a cqueues controller with
-- orm.set_waiter(require("ormed.io.cqueues")), so every wait for the server
-- goes through the waiter and yields to the loop), against the same calls
-- blocking, without a waiter (base). ARCHITECTURE.md: <= 1.3x the blocking
-- call. BENCH_WAITER=yield uses the cheapest possible loop instead: a
-- waiter that yields (fd, "r"...) to a loop that poll()s that one fd
-- (luasocket's select), to tell the engine's cost from cqueues'. The info
-- column adds `paired`: the same ratio measured in one process (W.paired).
local W = require("workload")

local finds = W.finds

-- The finds in one coroutine of a cqueues controller, with its waiter set.
local function under_cqueues(orm, User, ids)
  local cqueues = require("cqueues")
  local cq, found, calls = cqueues.new(), 0, 0
  local waiter = require("ormed.io.cqueues")
  orm.set_waiter(function(fd, mode, timeout)
    calls = calls + 1
    return waiter(fd, mode, timeout)
  end)
  cq:wrap(function() found = finds(User, ids) end)
  assert(cq:loop())
  orm.set_waiter(nil)
  return found, calls
end

-- The finds in a coroutine whose waiter yields to a loop that selects on
-- the one fd it yields.
local function under_select(orm, User, ids)
  local socket = require("socket")
  local calls = 0
  orm.set_waiter(function(fd, mode, timeout)
    calls = calls + 1
    return coroutine.yield(fd, mode, timeout)
  end)
  local co = coroutine.create(function() return finds(User, ids) end)
  local ok, fd, mode, timeout = coroutine.resume(co)
  while ok and coroutine.status(co) ~= "dead" do
    local o = { getfd = function() return fd end, dirty = function() return false end }
    local r = mode:find("r", 1, true) and { o } or {}
    local w = mode:find("w", 1, true) and { o } or {}
    socket.select(r, w, timeout)
    ok, fd, mode, timeout = coroutine.resume(co)
  end
  orm.set_waiter(nil)
  assert(ok, fd)
  return fd, calls
end

return {
  label = "find(id) 20k times with a waiter set",
  unit = "ms",
  -- a waiter only matters where statements wait on a socket
  drivers = { postgres = true, mysql = true },
  target = { base = 1.3, text = "<= 1.3x the blocking call" },
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS))
    return { ids = W.ids(W.FINDS, W.ROWS), User = W.models(ctx.orm) }
  end,
  ormed = function(ctx, s)
    local run = os.getenv("BENCH_WAITER") == "yield" and under_select or under_cqueues
    local found, calls = run(ctx.orm, s.User, s.ids)
    s.calls = calls
    return found
  end,
  base = function(_, s)
    return finds(s.User, s.ids)
  end,
  check = function(ctx, s, found)
    local info = "found=" .. tostring(found)
    if not ctx.base then
      -- untimed: the same ratio from blocks of 1000 finds alternating in
      -- this process
      local run = os.getenv("BENCH_WAITER") == "yield" and under_select or under_cqueues
      local few = { table.unpack(s.ids, 1, 1000) }
      local paired = W.paired(function() run(ctx.orm, s.User, few) end,
        function() finds(s.User, few) end, 20)
      info = info .. (" waiter=%s calls=%d paired=%.2f"):format(os.getenv("BENCH_WAITER") == "yield"
        and "yield+select" or "cqueues", s.calls, paired)
      -- the finds waited through the waiter (not every one: an answer
      -- already in when the statement is sent needs no wait)
      return found == W.FINDS and s.calls >= W.FINDS // 10, info
    end
    return found == W.FINDS, info
  end,
}
