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
      local calls = run("cqueues", { function()
        assert.are.equal(1, fresh:select("SELECT 1 AS one")[1].one)
      end })
      assert.is_true(#calls >= 2) -- at least the connect's and the statement's waits
      assert.are.equal(1, fresh:stats().open)
      fresh:dispose()
    end)
  end

  if drv.name == "mysql" then
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
