-- orm.set_waiter: with a waiter set, a PostgreSQL or MariaDB statement
-- (connect, prepare, run, transaction statements) waits through the waiter
-- from the calling coroutine (which may yield to the host's loop: cqueues,
-- luv, a hand-written one), so the loop runs other coroutines meanwhile;
-- errors and timeouts reach the coroutine whose statement failed; a
-- coroutine holding a row lock in a suspended transaction can finish while
-- another one waits for that lock; pool waits go through the waiter on
-- every driver. SQLite statements run synchronously and give the same
-- results. The last part runs the same loads on both servers under cqueues
-- and luv: 50 coroutines at once, a ticking loop, interleaved
-- transactions, a failing statement, a killed backend.
local helper = require("spec.helper")
local orm = require("ormed")
local core = require("ormed.core")
local cqueues = require("cqueues")
local uv = require("luv")
local socket = require("socket")

-- {==== one runner for every loop ====}

-- LOOPS[name]: the waiter that loop sets, sleep(seconds) for one of its
-- tasks, and run(list), which runs each function of list as a task of the
-- loop until every one has ended. "select" is a host's own loop: the
-- waiter yields (fd, mode, timeout) to the code that resumed the task,
-- which polls every waiting fd (socket.select) and resumes the ready ones.
local LOOPS = {}

LOOPS.cqueues = {
  waiter = require("ormed.io.cqueues"),
  sleep = function(s) cqueues.sleep(s) end,
  run = function(list)
    local cq = cqueues.new()
    for _, fn in ipairs(list) do cq:wrap(fn) end
    local ok, err = cq:loop()
    if not ok then error(err, 0) end
  end,
}

-- Resumes co from a luv callback once ms milliseconds have passed.
local function luv_resume_after(ms, co)
  local timer = uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    assert(coroutine.resume(co))
  end)
end

LOOPS.luv = {
  waiter = require("ormed.io.luv"),
  sleep = function(s)
    luv_resume_after(math.floor(s * 1000), coroutine.running())
    coroutine.yield()
  end,
  run = function(list)
    for _, fn in ipairs(list) do luv_resume_after(0, coroutine.create(fn)) end
    uv.run()
  end,
}

LOOPS.select = {
  waiter = function(fd, mode, timeout) return coroutine.yield(fd, mode, timeout) end,
  sleep = function(s) coroutine.yield(nil, nil, s) end,
  run = function(list)
    local pending = {} -- coroutine -> { fd, mode, at (when its timeout ends) }
    local function step(co)
      local ok, fd, mode, timeout = coroutine.resume(co)
      assert(ok, fd)
      pending[co] = nil
      if coroutine.status(co) ~= "dead" then
        pending[co] = { fd = fd, mode = mode, at = timeout and core.clock() + timeout }
      end
    end
    for _, fn in ipairs(list) do step(coroutine.create(fn)) end
    while next(pending) do
      local r, w, of, wake = {}, {}, {}, nil
      for co, p in pairs(pending) do
        if p.fd then
          local o = { getfd = function() return p.fd end, dirty = function() return false end }
          of[o] = co
          if p.mode:find("r", 1, true) then r[#r + 1] = o end
          if p.mode:find("w", 1, true) then w[#w + 1] = o end
        end
        if p.at and (wake == nil or p.at < wake) then wake = p.at end
      end
      local rr, ww = socket.select(r, w, wake and math.max(0, wake - core.clock()) or 5)
      local ready, now = {}, core.clock()
      for _, o in ipairs(rr) do ready[of[o]] = true end
      for _, o in ipairs(ww) do ready[of[o]] = true end
      for co, p in pairs(pending) do
        if p.at and p.at <= now then ready[co] = true end
      end
      assert(next(ready) or wake, "no fd became ready within 5 s")
      for co in pairs(ready) do step(co) end
    end
  end,
}

-- Runs each function of tasks as a task of `loop` (a name of LOOPS), with
-- that loop's waiter set, until every task has ended; each gets the loop's
-- sleep(seconds). Then clears the waiter and raises the first error a task
-- raised. With tick (seconds), one more task counts how many times it
-- could run, every tick seconds, while the others were running. Returns
-- the waiter's calls ({ fd, mode, timeout } each) and that count.
local function run(loop, tasks, tick)
  local L = assert(LOOPS[loop], loop)
  local calls, list, left, ticks, failure = {}, {}, #tasks, 0, nil
  for i, fn in ipairs(tasks) do
    list[i] = function()
      local ok, err = pcall(fn, L.sleep)
      if not ok and failure == nil then failure = err end
      left = left - 1
    end
  end
  if tick then
    list[#list + 1] = function()
      while left > 0 do
        ticks = ticks + 1
        L.sleep(tick)
      end
    end
  end
  orm.set_waiter(function(fd, mode, timeout)
    calls[#calls + 1] = { fd = fd, mode = mode, timeout = timeout }
    return L.waiter(fd, mode, timeout)
  end)
  local ok, err = pcall(L.run, list)
  orm.set_waiter(nil)
  if not ok then error(err, 0) end
  if failure ~= nil then error(failure, 0) end
  return calls, ticks
end

-- Runs fn in a coroutine with `waiter` set (no loop: it is called as is),
-- then clears it.
local function with_waiter(waiter, fn)
  orm.set_waiter(waiter)
  local ok, err = coroutine.wrap(function() return pcall(fn) end)()
  orm.set_waiter(nil)
  if not ok then error(err, 0) end
end

-- Runs fn() in a coroutine with server process pid stopped (SIGSTOP)
-- except while the engine waits through the waiter, which resumes it
-- (SIGCONT) and stops it again once the wait is over: a round trip made
-- outside the waiter would hang until a rescuer resumes the server (after
-- 2 s). Returns fn's result and the time it took. A wait still not over
-- after 5 s raises (the engine waits for an answer that cannot come).
local function stopped_between_waits(pid, fn)
  local sh = assert(io.popen(string.format("(while kill -0 %d; do sleep 2; kill -CONT %d; done) "
    .. ">/dev/null 2>&1 & echo $!", pid, pid)))
  local rescuer = sh:read("n")
  sh:close()
  local t0
  orm.set_waiter(function(fd, mode, timeout)
    uv.kill(pid, "sigcont")
    require("ormed.io.cqueues")(fd, mode, math.min(timeout or 1, 1))
    if core.clock() - t0 > 5 then error("stuck: a wait of over 5 s", 0) end
    uv.kill(pid, "sigstop")
  end)
  t0 = core.clock()
  uv.kill(pid, "sigstop")
  local ok, got = pcall(coroutine.wrap(fn))
  local took = core.clock() - t0
  orm.set_waiter(nil)
  uv.kill(pid, "sigcont")
  os.execute("kill " .. rescuer)
  assert(ok, got)
  return got, took
end

describe("orm.set_waiter", function()
  it("takes a function, a callable table or nil, and refuses anything else", function()
    orm.set_waiter(require("ormed.io.cqueues"))
    assert.are.equal(require("ormed.io.cqueues"), core.get_waiter())
    orm.set_waiter(nil)
    assert.is_nil(core.get_waiter())
    local err = helper.error_of(orm.set_waiter, "poll")
    assert.are.equal("invalid_argument", err.kind)
    assert.is_nil(core.get_waiter())
  end)
end)

helper.each_driver(function(drv)
  local ds

  setup(function()
    ds = orm.DataSource({ name = drv.name .. "_waiter", driver = drv.adapter(),
      pool = { max = 4, min = 1 }, statement_timeout = 2 }):init()
    drv:create_table(ds, "waiter_items", { { "id", "id" }, { "v", "integer" } })
  end)

  teardown(function()
    orm.set_waiter(nil)
    drv:drop_table(ds, "waiter_items")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM waiter_items")
  end)

  it("runs statements with a waiter set and gives the results it gives without one", function()
    local calls = run("cqueues", { function()
      ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { 7 })
      assert.are.equal(7, ds:select("SELECT v FROM waiter_items WHERE v = ?", { 7 })[1].v)
      assert.are.equal(1, ds:table("waiter_items"):count())
      local t = function() return ds:table("waiter_items") end
      local id = t():insert_get_id({ v = 8 })
      assert.is_true(math.type(id) == "integer" and id > 0)
      assert.are.equal(15, t():sum("v"))
      assert.are.equal(7.5, t():avg("v"))
      assert.are.equal(8, t():max("v"))
      assert.is_true(t():where("v", 8):exists())
      assert.is_false(t():where("v", 99):exists())
      assert.are.equal(0, t():where("v", 99):sum("v"))
      assert.are.equal(1, t():where("id", id):update({ v = 9 }))
      assert.are.equal(1, t():where("id", id):increment("v", 2))
      assert.are.equal(11, t():where("id", id):first().v)
      assert.are.equal(1, t():where("id", id):delete())
      assert.are.equal(1, t():count())
      local err = helper.error_of(ds.select, ds, "SELECT nope FROM waiter_items")
      assert.are.equal("query", err.kind)
      assert.are.equal(7, ds:select("SELECT v FROM waiter_items")[1].v)
    end })
    -- outside a coroutine that can yield the calls block: the waiter is left alone
    orm.set_waiter(function() error("called") end)
    assert.are.equal(7, ds:select("SELECT v FROM waiter_items")[1].v)
    orm.set_waiter(nil)
    if drv.name ~= "sqlite" then
      assert.is_true(#calls > 0)
      for _, c in ipairs(calls) do
        assert.is_true(math.type(c.fd) == "integer" and c.fd >= 0)
        assert.truthy(c.mode == "r" or c.mode == "w" or c.mode == "rw")
      end
    else
      assert.are.equal(0, #calls) -- SQLite is synchronous: the waiter is never needed
    end
  end)

  it("a transaction waiting for the only pooled connection yields, served in arrival order", function()
    local one = orm.DataSource({ name = drv.name .. "_waiter_one", driver = drv.adapter(),
      pool = { max = 1, min = 1, acquire_timeout = 5 } }):init()
    local order, arrived, tasks = {}, {}, {}
    for i = 1, 3 do
      tasks[i] = function(sleep)
        arrived[#arrived + 1] = i
        one:transaction(function()
          order[#order + 1] = "in " .. i
          sleep(0.1) -- suspended while holding the only connection
          order[#order + 1] = "out " .. i
        end)
      end
    end
    local calls = run("cqueues", tasks)
    local expected = {}
    for _, i in ipairs(arrived) do
      expected[#expected + 1] = "in " .. i
      expected[#expected + 1] = "out " .. i
    end
    assert.are.same(expected, order)
    assert.is_true(#calls >= 2)
    assert.are.equal(2, one:stats().waits)
    assert.are.equal(0, one:stats().in_use)
    one:dispose()
  end)

  it("a statement waiting for the connection a suspended transaction holds yields", function()
    local one = orm.DataSource({ name = drv.name .. "_waiter_held", driver = drv.adapter(),
      pool = { max = 1, min = 1, acquire_timeout = 5 } }):init()
    local order = {}
    run("cqueues", {
      function(sleep)
        one:transaction(function()
          order[#order + 1] = "holder in"
          sleep(0.2)
          order[#order + 1] = "holder out"
        end)
      end,
      function(sleep)
        sleep(0.05)
        order[#order + 1] = "reader waits"
        local got = one:select("SELECT 1 AS one")[1].one
        order[#order + 1] = "reader got " .. got
      end,
    })
    assert.are.same({ "holder in", "reader waits", "holder out", "reader got 1" }, order)
    assert.are.equal(1, one:stats().waits)
    one:dispose()
  end)

  it("acquire_timeout holds for a wait through the waiter", function()
    local one = orm.DataSource({ name = drv.name .. "_waiter_short", driver = drv.adapter(),
      pool = { max = 1, min = 1, acquire_timeout = 0.2 } }):init()
    local seen = {}
    run("cqueues", {
      function(sleep)
        one:transaction(function() sleep(0.6) end)
        seen.holder = "done"
      end,
      function(sleep)
        sleep(0.05) -- the holder has the connection by then
        local t0 = core.clock()
        local ok, err = pcall(one.transaction, one, function() end)
        seen.waiter, seen.took = not ok and err.kind, core.clock() - t0
      end,
    })
    assert.are.equal("done", seen.holder)
    assert.are.equal("pool_timeout", seen.waiter)
    assert.is_true(seen.took >= 0.15 and seen.took < 0.5, "took " .. seen.took)
    assert.are.equal(1, one:select("SELECT 1 AS one")[1].one)
    one:dispose()
  end)

  if drv.name ~= "sqlite" then
    it("opening a connection waits through the waiter, and connect_timeout holds", function()
      local server = assert(socket.bind("127.0.0.1", 0)) -- listens, never answers
      local _, port = server:getsockname()
      local params = {}
      for k, v in pairs(drv.adapter().params) do params[k] = v end
      params.host, params.port, params.socket = "127.0.0.1", tonumber(port), nil
      local silent = orm.DataSource({ name = drv.name .. "_waiter_silent", driver = { params = params },
        pool = { max = 1, min = 0 }, connect_timeout = 1 }):init()
      local seen = {}
      local t0 = core.clock()
      local _, ticks = run("cqueues", { function()
        local ok, err = pcall(silent.select, silent, "SELECT 1")
        seen.kind, seen.took = not ok and err.kind, core.clock() - t0
      end }, 0.05)
      server:close()
      assert.are.equal("connection_failed", seen.kind)
      assert.is_true(seen.took >= 0.9 and seen.took < 3, "took " .. seen.took)
      assert.is_true(ticks >= 10, ticks .. " ticks") -- the loop ran while it connected
      assert.are.equal(0, silent:stats().open)
      silent:dispose()
      -- and a reachable server: new connections open through the waiter
      local fresh = orm.DataSource({ name = drv.name .. "_waiter_fresh", driver = drv.adapter(),
        pool = { max = 2, min = 0 } }):init()
      with_waiter(require("ormed.io.cqueues"), function()
        assert.are.equal(1, fresh:select("SELECT 1 AS one")[1].one)
      end)
      assert.are.equal(1, fresh:stats().open)
      fresh:dispose()
    end)
  end

  if drv.name ~= "sqlite" then
    -- A predicate the server takes `secs` to evaluate, once per statement.
    local function slow(secs)
      if drv.name == "postgres" then
        return string.format("(SELECT 1 FROM pg_sleep(%g)) = 1", secs)
      end
      return string.format("(SELECT SLEEP(%g)) = 0", secs)
    end

    -- Runs fn() once without a waiter, then in two coroutines of a cqueues
    -- loop with a waiter set. Checks both gave what the first run gave,
    -- and that they waited for the server at the same time: the whole took
    -- well under twice the first run (the server's sleeps dominate).
    -- Returns that result.
    local function side_by_side(fn, what)
      local t0 = core.clock()
      local want = fn()
      local alone = core.clock() - t0
      local cq, got = cqueues.new(), {}
      t0 = core.clock()
      with_waiter(require("ormed.io.cqueues"), function()
        for i = 1, 2 do cq:wrap(function() got[i] = fn() end) end
        assert(cq:loop())
      end)
      local took = core.clock() - t0
      assert.is_true(alone >= 0.2, what .. ": the slow predicate took " .. alone .. " s")
      assert.is_true(took < alone * 1.5, string.format("%s: %.2f s for two, %.2f s for one",
        what, took, alone))
      assert.are.same(want, got[1])
      assert.are.same(want, got[2])
      return want
    end

    it("paginate's count and page wait through the waiter", function()
      for i = 1, 5 do ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { i }) end
      local page = side_by_side(function()
        return ds:table("waiter_items"):where_raw(slow(0.1)):order_by("v")
          :paginate({ page = 2, per_page = 2 })
      end, "paginate")
      assert.are.same({ 3, 4 }, { page.items[1].v, page.items[2].v })
      assert.are.equal(5, page.total)
    end)

    it("luv: paginate in several coroutines waits at the same time", function()
      for i = 1, 3 do ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { i }) end
      local function job()
        local page = ds:table("waiter_items"):where_raw(slow(0.1)):order_by("v")
          :paginate({ page = 1, per_page = 2 })
        return { page.total, page.items[1].v, page.items[2].v }
      end
      local t0 = core.clock()
      local want = job()
      local alone = core.clock() - t0
      local got = {}
      t0 = core.clock()
      with_waiter(require("ormed.io.luv"), function()
        for i = 1, 2 do
          local co = coroutine.create(function() got[i] = job() end)
          uv.new_timer():start(0, 0, function() assert(coroutine.resume(co)) end)
        end
        uv.run()
      end)
      local took = core.clock() - t0
      assert.are.same({ want, want }, got)
      assert.are.same({ 3, 1, 2 }, want)
      assert.is_true(took < alone * 1.5, string.format("%.2f s for two, %.2f s for one", took, alone))
    end)

    it("chunk and chunk_by_id read their pages through the waiter", function()
      for i = 1, 3 do ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { i }) end
      for _, method in ipairs({ "chunk", "chunk_by_id" }) do
        -- keyed: the NULL-key count, then two pages
        local seen = side_by_side(function()
          local got, q = {}, ds:table("waiter_items"):where_raw(slow(0.1))
          q[method](q, 2, function(rows, page)
            for _, r in ipairs(rows) do got[#got + 1] = page .. ":" .. r.v end
          end)
          return got
        end, method)
        assert.are.same({ "1:1", "1:2", "2:3" }, seen)
      end
      -- by OFFSET (ordered by another column), and an early stop
      local seen = side_by_side(function()
        local got = {}
        ds:table("waiter_items"):where_raw(slow(0.2)):order_by("v", "desc"):chunk(2, function(rows)
          for _, r in ipairs(rows) do got[#got + 1] = r.v end
          return false
        end)
        return got
      end, "chunk by offset")
      assert.are.same({ 3, 2 }, seen)
    end)

    -- Runs op() in a coroutine while another one holds, in a suspended
    -- transaction, the lock on waiter_uniq's unique key k = 1000 that op
    -- needs: op must yield while it waits, so the holder can roll back
    -- (without the waiter op would block the thread until
    -- statement_timeout). hold: the holder's statement (by default an
    -- INSERT of k = 1000). Returns op's result.
    local function past_lock(op, hold)
      local cq, order, got = cqueues.new(), {}, nil
      with_waiter(require("ormed.io.cqueues"), function()
        cq:wrap(function()
          pcall(ds.transaction, ds, function()
            ds:execute(hold or "INSERT INTO waiter_uniq (k, v) VALUES (1000, -1)")
            order[#order + 1] = "holder locked"
            cqueues.sleep(0.3)
            order[#order + 1] = "holder rolls back"
            error("undo")
          end)
        end)
        cq:wrap(function()
          cqueues.sleep(0.05)
          order[#order + 1] = "writer waits"
          got = op()
          order[#order + 1] = "writer done"
        end)
        assert(cq:loop())
      end)
      assert.are.same({ "holder locked", "writer waits", "holder rolls back", "writer done" }, order)
      return got
    end

    -- n rows: { k = 2000 + i, v = i } for i = 1..n-1, then k = v = 1000.
    local function uniq_rows(n)
      local rows = {}
      for i = 1, n - 1 do rows[i] = { k = 2000 + i, v = i } end
      rows[n] = { k = 1000, v = 1000 }
      return rows
    end

    -- The server process behind p's one connection (PostgreSQL: its
    -- backend; MariaDB: the server).
    local function server_pid(p)
      if drv.name == "postgres" then return p:select("SELECT pg_backend_pid() AS pid")[1].pid end
      local f = assert(io.open(ds:select("SELECT @@pid_file AS f")[1].f))
      local pid = f:read("n")
      f:close()
      return pid
    end

    -- Stops process pid (SIGSTOP), runs op() in a coroutine of a cqueues
    -- loop with the waiter set while another coroutine resumes the process
    -- after 0.3 s, and returns the order of events and op's result. An op
    -- that waits through the waiter yields: { "op starts", "server resumed",
    -- "op done" }. One that blocks the thread never lets the resuming
    -- coroutine run: a shell resumes the server after 2 s instead, and op
    -- is done first.
    local function while_stopped(pid, op)
      local sh = assert(io.popen(string.format("kill -STOP %d; (sleep 2; kill -CONT %d) "
        .. ">/dev/null 2>&1 & echo $!", pid, pid)))
      local rescuer = sh:read("n")
      sh:close()
      local cq, order, result = cqueues.new(), {}, nil
      with_waiter(require("ormed.io.cqueues"), function()
        cq:wrap(function()
          order[#order + 1] = "op starts"
          result = op()
          order[#order + 1] = "op done"
        end)
        cq:wrap(function()
          cqueues.sleep(0.3)
          order[#order + 1] = "server resumed"
          os.execute("kill -CONT " .. pid)
        end)
        local ok, err = cq:loop()
        os.execute(string.format("kill -CONT %d; kill %d 2>/dev/null", pid, rescuer))
        assert(ok, tostring(err))
      end)
      return order, result
    end
    local YIELDED = { "op starts", "server resumed", "op done" }

    it("ping and the health check of an idle connection wait through the waiter", function()
      local function pool_of(health_check)
        return orm.DataSource({ name = drv.name .. "_waiter_hc" .. health_check, driver = drv.adapter(),
          pool = { max = 1, min = 1, health_check = health_check } }):init()
      end
      local checked, plain = pool_of(0), pool_of(3600)
      -- ping: the connection is idle (no pool wait), the ping's round trip waits
      local order, ok = while_stopped(server_pid(plain), function() return plain:ping() end)
      assert.are.same(YIELDED, order)
      assert.is_true(ok)
      -- health_check = 0: each checkout pings first, through the waiter too
      -- (a ticking coroutine shows the select's own waits are not enough)
      local pid = server_pid(checked)
      local n
      order, n = while_stopped(pid, function() return checked:select("SELECT 1 AS one")[1].one end)
      assert.are.same(YIELDED, order)
      assert.are.equal(1, n)
      -- a connection the server dropped while idle fails the check: it is
      -- replaced (opened through the waiter), as without a waiter
      local function drop(p)
        local id = p:select(drv.name == "postgres" and "SELECT pg_backend_pid() AS id"
          or "SELECT CONNECTION_ID() AS id")[1].id
        ds:execute(drv.name == "postgres" and "SELECT pg_terminate_backend(" .. id .. ")"
          or "KILL " .. id)
        require("socket").sleep(0.1) -- the server ends it
      end
      for _, waiter in ipairs({ false, require("ormed.io.cqueues") }) do
        drop(checked)
        n = 0
        local function once() n = checked:select("SELECT 1 AS one")[1].one end
        if waiter then with_waiter(waiter, once) else once() end
        assert.are.equal(1, n)
        assert.are.equal(1, checked:stats().open)
        assert.are.equal(0, checked:stats().in_use)
      end
      -- a ping of a dropped connection raises connection_lost either way
      for _, waiter in ipairs({ false, require("ormed.io.cqueues") }) do
        drop(plain)
        local err
        local function once() err = helper.error_of(plain.ping, plain) end
        if waiter then with_waiter(waiter, once) else once() end
        assert.are.equal("connection_lost", err.kind)
        assert.are.equal(0, plain:stats().open)
        assert.is_true(plain:ping())
      end
      checked:dispose()
      plain:dispose()
    end)

    it("init() opens the pool's min connections through the waiter", function()
      local server = assert(socket.bind("127.0.0.1", 0)) -- listens, never answers
      local _, port = server:getsockname()
      local params = {}
      for k, v in pairs(drv.adapter().params) do params[k] = v end
      params.host, params.port, params.socket = "127.0.0.1", tonumber(port), nil
      local cq, ticks, seen = cqueues.new(), 0, {}
      with_waiter(require("ormed.io.cqueues"), function()
        cq:wrap(function()
          local silent = orm.DataSource({ name = drv.name .. "_waiter_init_silent",
            driver = { params = params }, pool = { max = 2, min = 1 }, connect_timeout = 1 })
          local ok, err = pcall(silent.init, silent)
          seen.kind = not ok and err.kind
        end)
        cq:wrap(function()
          while seen.kind == nil do
            ticks = ticks + 1
            cqueues.sleep(0.05)
          end
        end)
        assert(cq:loop())
      end)
      server:close()
      assert.are.equal("connection_failed", seen.kind)
      assert.is_true(ticks >= 10, ticks .. " ticks") -- the loop ran while it connected
      -- a reachable server: min connections open, idle, as without a waiter
      -- (how many waits it took varies: a loopback answer may be there
      -- already when the engine looks)
      local fresh
      with_waiter(require("ormed.io.cqueues"), function()
        fresh = orm.DataSource({ name = drv.name .. "_waiter_init", driver = drv.adapter(),
          pool = { max = 3, min = 2 } }):init()
      end)
      assert.are.same({ 2, 2, 0 }, { fresh:stats().open, fresh:stats().idle, fresh:stats().in_use })
      assert.are.equal(1, fresh:select("SELECT 1 AS one")[1].one)
      assert.are.equal(2, fresh:stats().open)
      fresh:dispose()
    end)

    describe("lists of rows", function()
      setup(function()
        drv:create_table(ds, "waiter_uniq", { { "id", "id" }, { "k", "integer", "UNIQUE" },
          { "v", "integer" } })
      end)
      teardown(function() drv:drop_table(ds, "waiter_uniq") end)
      before_each(function() ds:execute("DELETE FROM waiter_uniq") end)

      local function stored()
        local t = ds:table("waiter_uniq")
        return { count = t:count(), sum = t:sum("v"), big = t:where("k", 1000):first().v }
      end

      it("an insert of several statements (columns change) waits through the waiter", function()
        local rows = { { k = 1, v = 1 }, { k = 2 }, { k = 1000, v = 1000 } }
        local r = past_lock(function() return ds:table("waiter_uniq"):insert(rows) end)
        assert.are.equal(3, r.affected_rows)
        assert.are.same({ count = 3, sum = 1001, big = 1000 }, stored())
      end)

      it("a list insert of several batches waits through the waiter, all or nothing", function()
        local n = drv.name == "mysql" and 8200 or 2100 -- more than one batch of 2 columns
        local r = past_lock(function() return ds:table("waiter_uniq"):insert(uniq_rows(n)) end)
        assert.are.equal(n, r.affected_rows)
        local want = (n - 1) * n // 2 + 1000
        assert.are.same({ count = n, sum = want, big = 1000 }, stored())
        -- a failing batch rolls the whole list back, with a waiter as without
        local err = helper.error_of(function()
          with_waiter(require("ormed.io.cqueues"), function()
            ds:table("waiter_uniq"):insert(uniq_rows(n)) -- every k taken
          end)
        end)
        assert.are.equal("unique_violation", err.kind, tostring(err))
        assert.are.same({ count = n, sum = want, big = 1000 }, stored())
      end)

      it("a list that fails midway rolls back through the waiter, and raises the same error", function()
        local n = drv.name == "mysql" and 8200 or 2100 -- more than one batch of 2 columns
        local rows = uniq_rows(n)
        rows[#rows + 1] = { k = 1000, v = 0 } -- a duplicate in the last batch
        local one = orm.DataSource({ name = drv.name .. "_waiter_list_fail", driver = drv.adapter(),
          pool = { max = 1, min = 1 } }):init()
        local want = helper.error_of(function() one:table("waiter_uniq"):insert(rows) end)
        assert.are.equal("unique_violation", want.kind)
        local got, took = stopped_between_waits(server_pid(one), function()
          local ok, err = pcall(function() one:table("waiter_uniq"):insert(rows) end)
          return not ok and err
        end)
        assert.is_true(took < 1.5, "took " .. took .. " s")
        assert.are.same({ want.kind, want.sqlstate }, { got.kind, got.sqlstate })
        assert.are.equal(0, one:table("waiter_uniq"):count())
        assert.are.same({ 1, 0 }, { one:stats().open, one:stats().in_use })
        one:dispose()
      end)

      it("an upsert of several batches waits through the waiter", function()
        local n = drv.name == "mysql" and 5500 or 1400 -- more than one batch of 3 columns
        local rows = uniq_rows(n)
        local r = past_lock(function() return ds:table("waiter_uniq"):upsert(rows, "k", { "v" }) end)
        assert.is_true(r >= n, tostring(r))
        assert.are.equal(n, ds:table("waiter_uniq"):count())
        for _, row in ipairs(rows) do row.v = row.v + 1 end
        r = past_lock(function() return ds:table("waiter_uniq"):upsert(rows, "k", { "v" }) end,
          "UPDATE waiter_uniq SET v = v WHERE k = 1000")
        assert.is_true(r >= n, tostring(r))
        assert.are.same({ count = n, sum = (n - 1) * n // 2 + 1000 + n, big = 1001 }, stored())
      end)
    end)
  end

  if drv.name == "mysql" then
    it("MariaDB: a statement prepared again after query_timeout makes no round trip outside the waiter", function()
      local one = orm.DataSource({ name = "mysql_waiter_reprepare", driver = drv.adapter(),
        pool = { max = 1, min = 1 }, statement_timeout = 0.3 }):init()
      local sql = "SELECT SLEEP(?) AS s, ? AS i"
      local err = helper.error_of(function()
        with_waiter(require("ormed.io.cqueues"), function() one:select(sql, { 2, 0 }) end)
      end)
      assert.are.equal("query_timeout", err.kind)
      local pid = assert(io.open(ds:select("SELECT @@pid_file AS f")[1].f)):read("n")
      local got, took = stopped_between_waits(pid, function()
        return one:select(sql, { 0, 7 })[1].i -- prepared again first
      end)
      assert.are.equal(7, got)
      assert.is_true(took < 1.5, "took " .. took .. " s")
      -- and without a waiter, as before
      assert.are.equal("query_timeout", helper.error_of(one.select, one, sql, { 2, 0 }).kind)
      assert.are.equal(8, one:select(sql, { 0, 8 })[1].i)
      one:dispose()
    end)

    it("MariaDB: the writer of a locked row yields; the suspended holder finishes", function()
      ds:execute("INSERT INTO waiter_items (v) VALUES (0)")
      local order = {}
      run("cqueues", {
        function(sleep)
          ds:transaction(function()
            ds:execute("UPDATE waiter_items SET v = 1")
            order[#order + 1] = "holder locked"
            sleep(0.3)
            order[#order + 1] = "holder commits"
          end)
        end,
        function(sleep)
          sleep(0.05)
          order[#order + 1] = "writer waits"
          ds:execute("UPDATE waiter_items SET v = v + 10")
          order[#order + 1] = "writer done"
        end,
      })
      assert.are.same({ "holder locked", "writer waits", "holder commits", "writer done" }, order)
      assert.are.equal(11, ds:select("SELECT v FROM waiter_items")[1].v)
      local seen = {}
      run("cqueues", { function()
        local ok, err = pcall(ds.select, ds, "SELECT SLEEP(5)")
        seen.slow = not ok and err.kind
        seen.after = ds:select("SELECT 1 AS one")[1].one
      end })
      assert.are.same({ slow = "query_timeout", after = 1 }, seen)
    end)
  end

  if drv.name ~= "postgres" then return end

  it("COMMIT waits through the waiter: two slow commits end at the same time", function()
    ds:execute("CREATE OR REPLACE FUNCTION waiter_slow_commit() RETURNS trigger "
      .. "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$")
    ds:execute("DROP TRIGGER IF EXISTS waiter_slow ON waiter_items")
    ds:execute("CREATE CONSTRAINT TRIGGER waiter_slow AFTER INSERT ON waiter_items "
      .. "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION waiter_slow_commit()")
    local done, tasks = 0, {}
    for i = 1, 2 do
      tasks[i] = function()
        ds:transaction(function()
          ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { i })
          pcall(ds.transaction, ds, function() error("inner") end) -- a savepoint rolled back
        end) -- the trigger sleeps in COMMIT
        done = done + 1
      end
    end
    local t0 = core.clock()
    run("cqueues", tasks)
    local took = core.clock() - t0
    ds:execute("DROP TRIGGER waiter_slow ON waiter_items")
    assert.are.equal(2, done)
    assert.are.equal(2, ds:table("waiter_items"):count())
    assert.is_true(took < 0.75, "took " .. took .. " s")
    local err = helper.error_of(run, "cqueues", { function()
      ds:transaction(function()
        pcall(ds.execute, ds, "INSERT INTO nowhere VALUES (1)")
      end)
    end })
    assert.are.equal("transaction_aborted", err.kind, tostring(err))
    assert.are.equal(0, ds:stats().in_use)
  end)

  it("the DEALLOCATE of a statement evicted from the cache makes no round trip outside the waiter", function()
    local one = orm.DataSource({ name = "pg_waiter_evict", driver = drv.adapter(),
      pool = { max = 1, min = 1 } }):init()
    for i = 1, 128 do one:select("SELECT " .. i .. " AS v") end -- the cache (128) is full
    local pid = one:select("SELECT pg_backend_pid() AS pid")[1].pid
    local got, took = stopped_between_waits(pid, function()
      local got = {}
      for i = 1, 8 do -- each prepare evicts a statement
        got[i] = one:select("SELECT " .. (1000 + i) .. " AS v")[1].v
      end
      return got
    end)
    assert.are.same({ 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008 }, got)
    assert.is_true(took < 0.9, "took " .. took .. " s")
    -- the evicted ones are deallocated all the same (the last one along
    -- with the next prepare, this count's)
    local n = one:select("SELECT count(*) AS n FROM pg_prepared_statements")[1].n
    assert.is_true(n <= 129, n .. " statements prepared")
    one:dispose()
  end)

  it("statements evicted inside transactions are all deallocated after, as without a waiter", function()
    local one = orm.DataSource({ name = "pg_waiter_evict_tx", driver = drv.adapter(),
      pool = { max = 1, min = 1 } }):init()
    local counts = {}
    local function count() return one:select("SELECT count(*) AS n FROM pg_prepared_statements")[1].n end
    run("cqueues", { function()
      for round = 1, 3 do
        one:transaction(function() -- evicted here: their DEALLOCATEs wait for the end
          for i = 1, 160 do one:select("SELECT " .. (round * 1000 + i) .. " AS v") end
        end)
        for i = 1, 20 do one:select("SELECT 'x' || " .. (round * 1000 + i) .. " AS v") end
        counts[round] = count()
      end
    end })
    for round, n in ipairs(counts) do -- the cache holds 128; they piled up before
      assert.is_true(n <= 130, "round " .. round .. ": " .. n .. " statements prepared")
    end
    one:dispose()
  end)

  it("a bulk load (COPY) makes no round trip outside the waiter and reports as without one", function()
    local one = orm.DataSource({ name = "pg_waiter_copy", driver = drv.adapter(),
      pool = { max = 1, min = 1 } }):init()
    drv:create_table(one, "waiter_bulk", { { "id", "id" }, { "v", "integer" }, { "t", "text" } })
    local rows, pad = {}, string.rep("x", 200)
    for i = 1, 20000 do rows[i] = { v = i, t = pad } end -- 4 MB: more than a socket holds
    local events = {}
    one:listen(function(e)
      events[#events + 1] = { sql = e.sql:match("^%u+"), rows = e.rows, error = e.error }
    end)
    local want = one:table("waiter_bulk"):insert(rows)
    local want_events = events
    events = {}
    assert.are.equal("COPY", want_events[2].sql) -- BEGIN, COPY, COMMIT
    one:execute("DELETE FROM waiter_bulk")
    local pid = one:select("SELECT pg_backend_pid() AS pid")[1].pid
    events = {}
    local got, took = stopped_between_waits(pid, function()
      return one:table("waiter_bulk"):insert(rows)
    end)
    assert.is_true(took < 1.5, "took " .. took .. " s")
    assert.are.same(want, got)
    assert.are.same(want_events, events)
    assert.are.same({ n = 20000, s = 20000 * 20001 // 2 },
      one:select("SELECT count(*) AS n, sum(v) AS s FROM waiter_bulk")[1])
    -- a failing load: the same error, and the connection stays usable
    rows[#rows + 1] = { v = "not a number", t = pad }
    local err_want = helper.error_of(function() one:table("waiter_bulk"):insert(rows) end)
    local err_got = helper.error_of(function()
      with_waiter(require("ormed.io.cqueues"), function() one:table("waiter_bulk"):insert(rows) end)
    end)
    assert.are.same({ err_want.kind, err_want.sqlstate }, { err_got.kind, err_got.sqlstate })
    assert.are.equal(20000, one:table("waiter_bulk"):count())
    drv:drop_table(one, "waiter_bulk")
    one:dispose()
  end)

  it("statements waiting for the only pooled connection yield, served in arrival order", function()
    local one = orm.DataSource({ name = "pg_waiter_stmt", driver = drv.adapter(),
      pool = { max = 1, min = 1, acquire_timeout = 5 } }):init()
    local order, arrived, tasks = {}, {}, {}
    for i = 1, 3 do
      tasks[i] = function()
        arrived[#arrived + 1] = i
        local row = one:select("SELECT pg_sleep(0.1), ?::int AS i", { i })[1]
        order[#order + 1] = row.i
      end
    end
    run("cqueues", tasks)
    assert.are.same(arrived, order)
    assert.are.equal(2, one:stats().waits)
    assert.are.equal(0, one:stats().in_use)
    one:dispose()
  end)

  it("cqueues: queries (get, first, pluck, count, update, a model's get) wait at the same time", function()
    local Item = orm.model("WaiterItem", { table = "waiter_items", fields = { id = "integer", v = "integer" } })
    for i = 1, 3 do ds:execute("INSERT INTO waiter_items (v) VALUES (?)", { i }) end
    local slow = "(SELECT 1 FROM pg_sleep(0.4)) = 1"
    local got = {}
    local t0 = core.clock()
    local calls = run("cqueues", {
      function() got.get = #ds:table("waiter_items"):where_raw(slow):get() end,
      function() got.first = ds:table("waiter_items"):where_raw(slow):order_by("v"):first().v end,
      function() got.pluck = ds:table("waiter_items"):where_raw(slow):order_by("v"):pluck("v") end,
      function() got.all = #Item:query({ connection = ds }):where_raw(slow):get() end,
      function() got.count = ds:table("waiter_items"):where_raw(slow):count() end,
      function() got.updated = ds:table("waiter_items"):where_raw(slow):increment("v", 0) end,
    })
    assert.is_true(core.clock() - t0 < 1.2, "took " .. (core.clock() - t0) .. " s")
    assert.are.same({ get = 3, first = 1, pluck = { 1, 2, 3 }, all = 3, count = 3, updated = 3 }, got)
    assert.is_true(#calls >= 4)
  end)

  it("a host's own loop: the waiter yields (fd, mode, timeout) to the code that resumed", function()
    local results, tasks = {}, {}
    for i = 1, 3 do
      tasks[i] = function()
        local got = ds:select("SELECT pg_sleep(0.3), ?::int AS i", { i })[1].i
        results[#results + 1] = got -- (the index is taken once it has returned)
      end
    end
    local t0 = core.clock()
    local calls = run("select", tasks)
    table.sort(results)
    assert.are.same({ 1, 2, 3 }, results)
    assert.is_true(core.clock() - t0 < 0.8, "took " .. (core.clock() - t0) .. " s")
    assert.is_true(#calls >= 3)
  end)

  it("the writer of a locked row yields; the suspended holder finishes its transaction", function()
    ds:execute("INSERT INTO waiter_items (v) VALUES (0)")
    local order = {}
    run("cqueues", {
      function(sleep)
        ds:transaction(function()
          ds:execute("UPDATE waiter_items SET v = 1")
          order[#order + 1] = "holder locked"
          sleep(0.3) -- suspended with the row lock held
          order[#order + 1] = "holder commits"
        end)
      end,
      function(sleep)
        sleep(0.05)
        order[#order + 1] = "writer waits"
        ds:execute("UPDATE waiter_items SET v = v + 10")
        order[#order + 1] = "writer done"
      end,
    })
    assert.are.same({ "holder locked", "writer waits", "holder commits", "writer done" }, order)
    assert.are.equal(11, ds:select("SELECT v FROM waiter_items")[1].v)
  end)

  it("a timeout reaches the coroutine whose statement timed out", function()
    local seen = {}
    run("cqueues", {
      function()
        local ok, err = pcall(ds.select, ds, "SELECT pg_sleep(5)")
        seen.slow = not ok and err.kind
      end,
      function()
        seen.good = ds:select("SELECT pg_sleep(0.1), 5 AS five")[1].five
      end,
    })
    assert.are.same({ slow = "query_timeout", good = 5 }, seen)
    assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
  end)

  it("a waiter that raises: the error reaches the caller and the connection is not reused", function()
    local before = ds:stats().open
    local err = helper.error_of(with_waiter,
      function() error(orm.Error({ kind = "query", message = "loop stopped" })) end,
      function() ds:select("SELECT pg_sleep(0.2)") end)
    assert.are.equal("loop stopped", err.message)
    assert.is_true(ds:stats().open <= before)
    assert.are.equal(0, ds:stats().in_use)
    assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
  end)
end)

-- {==== both servers under cqueues and luv ====}

-- What the loads below say differently on each server: a statement that
-- sleeps s seconds on the server and returns the bound integer as i; the
-- ids of the other sessions running a statement that ends with `tag`; and
-- the statement that kills session id.
local SERVERS = {
  postgres = {
    sleep = function(s) return ("SELECT pg_sleep(%g), ?::int AS i"):format(s) end,
    sessions = function(tag)
      return "SELECT pid AS id FROM pg_stat_activity WHERE query LIKE '%AS " .. tag
        .. "' AND pid <> pg_backend_pid()"
    end,
    kill = function(admin, id) admin:select("SELECT pg_terminate_backend(?)", { id }) end,
  },
  mysql = {
    sleep = function(s) return ("SELECT SLEEP(%g) AS s, ? AS i"):format(s) end,
    sessions = function(tag)
      return "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE '%AS " .. tag
        .. "' AND ID <> CONNECTION_ID()"
    end,
    kill = function(admin, id) admin:execute(("KILL %d"):format(id)) end,
  },
}

helper.each_driver(function(drv)
  -- SQLite statements run synchronously: nothing here applies to it
  if drv.name == "sqlite" then return end
  local S = SERVERS[drv.name]
  local big, ten, admin

  -- The pools open every connection here, before any timed part.
  setup(function()
    big = orm.DataSource({ name = drv.name .. "_loads_50", driver = drv.adapter(),
      pool = { max = 50, min = 50 }, statement_timeout = 5 }):init()
    ten = orm.DataSource({ name = drv.name .. "_loads_10", driver = drv.adapter(),
      pool = { max = 10, min = 10 }, statement_timeout = 5 }):init()
    admin = orm.DataSource({ name = drv.name .. "_loads_admin", driver = drv.adapter(),
      pool = { max = 1, min = 1 } }):init()
    drv:create_table(admin, "waiter_tx", { { "id", "id" }, { "owner", "integer" }, { "step", "integer" } })
  end)

  teardown(function()
    orm.set_waiter(nil)
    drv:drop_table(admin, "waiter_tx")
    for _, d in ipairs({ big, ten, admin }) do d:dispose() end
  end)

  -- n tasks, task i running S.sleep(s) on d and recording i in done.
  local function sleepers(d, n, s, done)
    local tasks = {}
    for i = 1, n do
      tasks[i] = function()
        local got = d:select(S.sleep(s), { i })[1].i
        done[#done + 1] = got -- (the index is taken once it has returned)
      end
    end
    return tasks
  end

  local function one_to(n)
    local list = {}
    for i = 1, n do list[i] = i end
    return list
  end

  for _, loop in ipairs({ "cqueues", "luv" }) do
    it(loop .. ": 50 coroutines sleeping 0.2 s on the server end in under 2 s (pool of 50)", function()
      local done = {}
      local tasks = sleepers(big, 50, 0.2, done)
      local t0 = core.clock()
      run(loop, tasks)
      local took = core.clock() - t0
      table.sort(done)
      assert.are.same(one_to(50), done)
      assert.is_true(took < 2, "took " .. took .. " s")
      assert.are.equal(0, big:stats().in_use)
    end)

    it(loop .. ": 50 of them on a pool of 10 end in under 3 s while the loop keeps ticking", function()
      local done = {}
      local tasks = sleepers(ten, 50, 0.2, done)
      local t0 = core.clock()
      local _, ticks = run(loop, tasks, 0.005)
      local took = core.clock() - t0
      table.sort(done)
      assert.are.same(one_to(50), done)
      assert.is_true(took < 3, "took " .. took .. " s")
      -- five rounds of 0.2 s: at least 1 s, every 5 ms a tick when nothing blocks
      assert.is_true(ticks >= 100, ticks .. " ticks in " .. took .. " s")
      assert.are.equal(10, ten:stats().open)
      assert.are.equal(0, ten:stats().in_use)
    end)

    it(loop .. ": 20 interleaved transactions each commit or roll back their own rows", function()
      admin:execute("DELETE FROM waiter_tx")
      local open, most, outcome, tasks = 0, 0, {}, {}
      for i = 1, 20 do
        tasks[i] = function()
          local ok, err = pcall(big.transaction, big, function()
            open = open + 1
            most = math.max(most, open)
            for step = 1, 2 do
              big:execute("INSERT INTO waiter_tx (owner, step) VALUES (?, ?)", { i, step })
              big:select(S.sleep(0.05), { i }) -- the others run meanwhile
            end
            open = open - 1
            if i % 2 == 1 then error("roll back " .. i, 0) end
          end)
          outcome[i] = ok and "committed" or err
        end
      end
      run(loop, tasks)
      assert.is_true(most >= 10, most .. " transactions open at once")
      local expected, seen = {}, {}
      for i = 1, 20 do
        assert.are.equal(i % 2 == 1 and "roll back " .. i or "committed", outcome[i])
        if i % 2 == 0 then expected[#expected + 1] = { owner = i, n = 2, steps = 3 } end
      end
      for _, r in ipairs(admin:select("SELECT owner, COUNT(*) AS n, SUM(step) AS steps "
          .. "FROM waiter_tx GROUP BY owner ORDER BY owner")) do
        seen[#seen + 1] = { owner = tonumber(r.owner), n = tonumber(r.n), steps = tonumber(r.steps) }
      end
      assert.are.same(expected, seen)
      assert.are.equal(0, big:stats().in_use)
    end)

    it(loop .. ": a failing statement's error reaches its own coroutine; the others finish", function()
      local done, seen = {}, {}
      local tasks = sleepers(big, 5, 0.1, done)
      tasks[#tasks + 1] = function()
        big:select(S.sleep(0.05), { 0 })
        local ok, err = pcall(big.execute, big, "INSERT INTO nowhere VALUES (1)")
        seen.bad = not ok and err.kind
        seen.after = big:select(S.sleep(0.05), { 7 })[1].i -- and it goes on
      end
      run(loop, tasks)
      table.sort(done)
      assert.are.same(one_to(5), done)
      assert.are.same({ bad = "query", after = 7 }, seen)
      assert.are.equal(0, big:stats().in_use)
    end)

    it(loop .. ": a killed backend gives connection_lost to its coroutine; the pool goes on", function()
      local tag = "waiter_victim_" .. loop
      local seen, done = {}, {}
      local tasks = sleepers(ten, 3, 0.3, done)
      tasks[#tasks + 1] = function()
        local ok, err = pcall(ten.select, ten, "SELECT " .. (drv.name == "postgres"
          and "pg_sleep(3)" or "SLEEP(3)") .. " AS " .. tag)
        seen.victim = not ok and err.kind
      end
      tasks[#tasks + 1] = function(sleep)
        for _ = 1, 200 do -- until the victim's statement shows up on the server
          local row = admin:select(S.sessions(tag))[1]
          if row then
            S.kill(admin, tonumber(row.id))
            seen.killed = true
            return
          end
          sleep(0.01)
        end
      end
      local t0 = core.clock()
      run(loop, tasks)
      assert.is_true(core.clock() - t0 < 2, "took " .. (core.clock() - t0) .. " s")
      assert.are.same({ killed = true, victim = "connection_lost" }, seen)
      table.sort(done)
      assert.are.same({ 1, 2, 3 }, done)
      assert.are.equal(9, ten:stats().open) -- the lost connection was not given back
      -- the pool goes on: ten at once, one of them on a new connection
      done = {}
      run(loop, sleepers(ten, 10, 0.05, done))
      table.sort(done)
      assert.are.same(one_to(10), done)
      assert.are.equal(10, ten:stats().open)
      assert.are.equal(0, ten:stats().in_use)
    end)
  end
end)
