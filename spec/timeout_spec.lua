-- statement_timeout and connect_timeout on every driver, with and without a
-- waiter (cqueues): a statement that runs longer is cancelled and raises
-- query_timeout, the connection stays usable (inside a transaction too),
-- and a server that never answers fails the connect within connect_timeout.
-- On PostgreSQL and MariaDB the client keeps the deadline and cancels the
-- statement on the server (PQcancel; KILL QUERY from a second connection):
-- the specs switch the session's own server timer off, as a pooler does,
-- so only the client's cancel can end the statement in time; a row lock
-- another connection holds is waited on until the deadline; the cancel
-- ends no other connection's statement; behind PgBouncer in transaction
-- mode every statement keeps the limit and no session setting leaks to
-- another client.
local helper = require("spec.helper")
local orm = require("ormed")
local core = require("ormed.core")
local cqueues = require("cqueues")

-- A statement that runs for `seconds` (SQLite: one that never ends).
local function slow_sql(drv, seconds)
  if drv.name == "postgres" then return "SELECT pg_sleep(" .. seconds .. ")" end
  if drv.name == "mysql" then return "SELECT SLEEP(" .. seconds .. ")" end
  return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
end

-- One row { done = "slept" } once `seconds` have passed, unless cancelled.
local function sleep_row_sql(drv, seconds)
  if drv.name == "postgres" then
    return "SELECT 'slept' AS done FROM pg_sleep(" .. seconds .. ")"
  end
  return "SELECT IF(SLEEP(" .. seconds .. ") = 0, 'slept', 'interrupted') AS done"
end

-- Switches the session's server timer off (and bounds lock waits by the
-- server at 3 s, so code without the client's cancel fails instead of
-- hanging): only the client's deadline can end a statement in time.
local function no_server_timer(drv, ds)
  if drv.name == "postgres" then
    ds:execute("SET statement_timeout = 0")
    ds:execute("SET lock_timeout = '3s'")
  else
    ds:execute("SET SESSION max_statement_time = 0")
    ds:execute("SET SESSION innodb_lock_wait_timeout = 3")
  end
end

-- A coroutine that opens a transaction on src, runs sql in it and stays
-- suspended there, holding what sql locked; resumed, it commits and
-- returns "committed".
local function holding(src, sql)
  local holder = coroutine.create(function()
    src:transaction(function()
      src:execute(sql)
      coroutine.yield("holding")
    end)
    return "committed"
  end)
  assert.are.same({ true, "holding" }, { coroutine.resume(holder) })
  return holder
end

local MODES = { "without a waiter", "with a waiter (cqueues)" }

-- Runs fn() as the mode says: directly, or in a coroutine of a cqueues
-- loop with the cqueues waiter set.
local function run(mode, fn)
  if mode == MODES[1] then return fn() end
  orm.set_waiter(require("ormed.io.cqueues"))
  local loop = cqueues.new()
  loop:wrap(fn)
  local ok, err = loop:loop()
  orm.set_waiter(nil)
  if not ok then error(err, 0) end
end

-- Times f(...): the error it raises (the spec fails when none) and seconds.
local function timed_error(f, ...)
  local t0 = core.clock()
  local err = helper.error_of(f, ...)
  return err, core.clock() - t0
end

-- Starts another process that runs sql (a sleep_row_sql) on url and
-- prints its `done` column, or the error kind; returns once the process
-- is about to send the statement. :read("a") gives what it printed.
local function other_process(url, sql)
  local code = string.format([[
local orm = require("ormed")
local ds = orm.DataSource({ name = "other", driver = orm.driver_from_url(%q),
  pool = { max = 1, min = 1 } }):init()
io.write("started\n"); io.flush()
local ok, rows = pcall(ds.select, ds, %q)
io.write(ok and tostring(rows[1].done) or tostring(rows.kind))
ds:dispose()]], url, sql)
  local p = assert(io.popen("lua5.4 -e " .. helper.shell_quote(code)))
  assert.are.equal("started", p:read("l"))
  return p
end

helper.each_driver(function(drv)
  describe("statement_timeout", function()
    local ds

    setup(function()
      ds = orm.DataSource({ name = drv.name .. "_timeout", driver = drv.adapter(),
        pool = { max = 1, min = 1 }, statement_timeout = 0.5 }):init()
      drv:create_table(ds, "timeout_items", { { "id", "id" }, { "v", "integer" } })
    end)

    teardown(function()
      drv:drop_table(ds, "timeout_items")
      ds:dispose()
    end)

    for _, mode in ipairs(MODES) do
      it("cancels a longer statement with query_timeout and keeps the connection usable, "
        .. mode, function()
        run(mode, function()
          local err, took = timed_error(ds.select, ds, slow_sql(drv, 5))
          assert.are.equal("query_timeout", err.kind, tostring(err))
          assert.is_true(took >= 0.4 and took < 1.0, "took " .. took .. " s")
          -- one pooled connection: the same one answers next
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
          assert.are.equal(1, ds:stats().open)
        end)
      end)

      it("inside a transaction: the error reaches the transaction, which rolls back, "
        .. mode, function()
        run(mode, function()
          ds:execute("DELETE FROM timeout_items")
          local ok, err = pcall(ds.transaction, ds, function()
            ds:table("timeout_items"):insert({ v = 1 })
            ds:select(slow_sql(drv, 5))
          end)
          assert.is_false(ok)
          assert.are.equal("query_timeout", err.kind, tostring(err))
          assert.are.equal(0, ds:table("timeout_items"):count())
          ds:transaction(function()
            ds:table("timeout_items"):insert({ v = 2 })
          end)
          assert.are.equal(1, ds:table("timeout_items"):count())
        end)
      end)
    end

    it("lets a statement within the limit finish", function()
      if drv.name == "sqlite" then
        assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
      else
        assert.are.equal(1, #ds:select(slow_sql(drv, 0.1)))
      end
    end)

    it("refuses a timeout that is not a positive number", function()
      local err = helper.error_of(orm.DataSource, { name = "bad_timeout", driver = drv.adapter(),
        statement_timeout = -1 })
      assert.are.equal("invalid_argument", err.kind)
      err = helper.error_of(orm.DataSource, { name = "bad_timeout", driver = drv.adapter(),
        connect_timeout = "soon" })
      assert.are.equal("invalid_argument", err.kind)
    end)
  end)

  if drv.name ~= "sqlite" then
    describe("statement_timeout kept by the client", function()
      local ds, other

      setup(function()
        ds = orm.DataSource({ name = drv.name .. "_client_timeout", driver = drv.adapter(),
          pool = { max = 1, min = 1 }, statement_timeout = 0.5 }):init()
        other = orm.DataSource({ name = drv.name .. "_other", driver = drv.adapter(),
          pool = { max = 2, min = 1 } }):init()
        drv:create_table(other, "client_items", { { "id", "id" }, { "v", "integer" } })
        other:table("client_items"):insert({ v = 0 })
        no_server_timer(drv, ds)
      end)

      teardown(function()
        drv:drop_table(other, "client_items")
        other:dispose()
        ds:dispose()
      end)

      if drv.name == "postgres" then
        it("with a waiter, a cancel that cannot get through does not hold the loop", function()
          local dir = other:select("SHOW data_directory")[1].data_directory
          local f = assert(io.open(dir .. "/postmaster.pid"))
          local postmaster = f:read("n") -- stopped: the cancel's connection waits
          f:close()
          local ticks, longest, done, e, took = 0, 0, false, nil, nil
          os.execute(string.format("kill -STOP %d; (sleep 5; kill -CONT %d) >/dev/null 2>&1 &",
            postmaster, postmaster))
          local ok, err = pcall(function()
            orm.set_waiter(require("ormed.io.cqueues"))
            local loop = cqueues.new()
            loop:wrap(function()
              e, took = timed_error(ds.select, ds, slow_sql(drv, 3))
              done = true
            end)
            loop:wrap(function()
              local last = core.clock()
              while not done do
                cqueues.sleep(0.05)
                local now = core.clock()
                ticks, longest, last = ticks + 1, math.max(longest, now - last), now
              end
            end)
            assert(loop:loop())
          end)
          orm.set_waiter(nil)
          os.execute("kill -CONT " .. postmaster)
          assert(ok, err)
          assert.are.equal("query_timeout", e.kind, tostring(e))
          assert.is_true(took < 4, "took " .. took .. " s")
          assert.is_true(longest < 0.5, string.format("the loop stood still %.2f s", longest))
          assert.is_true(ticks >= 20, ticks .. " ticks")
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
        end)
      end

      for _, mode in ipairs(drv.name == "postgres" and MODES or {}) do
        it("bounds a bulk load (COPY) that waits on a lock, " .. mode, function()
          local rows = {}
          for i = 1, 5000 do rows[i] = { v = i } end -- more than one INSERT: COPY
          local before = other:table("client_items"):count()
          local holder = holding(other, "LOCK TABLE client_items IN ACCESS EXCLUSIVE MODE")
          local ok, err = pcall(run, mode, function()
            local q = ds:table("client_items")
            local e, took = timed_error(q.insert, q, rows)
            assert.are.equal("query_timeout", e.kind, tostring(e))
            assert.matches("statement_timeout", e.message, 1, true)
            assert.is_true(took < 1.5, "took " .. took .. " s")
          end)
          assert.are.same({ true, "committed" }, { coroutine.resume(holder) }) -- the lock goes
          assert(ok, err)
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
          assert.are.equal(before, other:table("client_items"):count()) -- none of the load
        end)
      end

      for _, mode in ipairs(MODES) do
        it("cancels the statement on the server at the deadline, " .. mode, function()
          run(mode, function()
            for _ = 1, 2 do
              local err, took = timed_error(ds.select, ds, slow_sql(drv, 3))
              assert.are.equal("query_timeout", err.kind, tostring(err))
              assert.matches("statement_timeout", err.message, 1, true)
              assert.is_true(took >= 0.4 and took < 1.0, "took " .. took .. " s")
              assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
            end
            assert.are.equal(1, ds:stats().open) -- the same connection answered
          end)
        end)

        it("cancels a statement waiting on a row lock another connection holds, " .. mode,
          function()
          local holder = holding(other, "UPDATE client_items SET v = 1")
          local ok, err = pcall(run, mode, function()
            local e, took = timed_error(ds.execute, ds, "UPDATE client_items SET v = 2")
            assert.are.equal("query_timeout", e.kind, tostring(e))
            assert.is_true(took >= 0.4 and took < 1.0, "took " .. took .. " s")
          end)
          assert.are.same({ true, "committed" }, { coroutine.resume(holder) })
          assert(ok, err)
          ds:execute("UPDATE client_items SET v = 2")
          assert.are.equal(2, other:select("SELECT v FROM client_items")[1].v)
        end)

        if mode == MODES[2] then
          it("gives the waiter the time left before the deadline", function()
            local timeouts = {}
            local cq = require("ormed.io.cqueues")
            orm.set_waiter(function(fd, wmode, timeout)
              timeouts[#timeouts + 1] = timeout or "none"
              return cq(fd, wmode, timeout)
            end)
            local loop = cqueues.new()
            loop:wrap(function()
              local err = timed_error(ds.select, ds, slow_sql(drv, 3))
              assert.are.equal("query_timeout", err.kind, tostring(err))
            end)
            local ok, err = loop:loop()
            orm.set_waiter(nil)
            assert(ok, err)
            assert.is_true(#timeouts >= 2, "the waiter was called " .. #timeouts .. " times")
            for _, t in ipairs(timeouts) do
              assert.are.equal("number", type(t), "a wait without a timeout")
              assert.is_true(t > 0 and t <= 2, "timeout " .. t)
            end
            assert.is_true(timeouts[1] <= 0.5, "first wait " .. timeouts[1])
          end)
        end

        it("ends no other connection's statement, " .. mode, function()
          local done
          if mode == MODES[1] then
            local p = other_process(drv.url, sleep_row_sql(drv, 1.5))
            local err = timed_error(ds.select, ds, slow_sql(drv, 3))
            assert.are.equal("query_timeout", err.kind, tostring(err))
            done = p:read("a")
            p:close()
          else
            local loop = cqueues.new()
            orm.set_waiter(require("ormed.io.cqueues"))
            loop:wrap(function() done = other:select(sleep_row_sql(drv, 1.5))[1].done end)
            loop:wrap(function()
              cqueues.sleep(0.1)
              local err = timed_error(ds.select, ds, slow_sql(drv, 3))
              assert.are.equal("query_timeout", err.kind, tostring(err))
            end)
            local ok, err = loop:loop()
            orm.set_waiter(nil)
            assert(ok, err)
          end
          assert.are.equal("slept", done)
        end)
      end
    end)

    describe("a network stall (a TCP relay whose connections are frozen)", function()
      local relay, ds = {}, nil

      -- socat relays a loopback port to the server, one child process per
      -- connection; freeze() stops the children relaying now (the data
      -- source's connection), so its statement and the answer never pass,
      -- while new connections (the cancel, a new pooled one) still do. The
      -- frozen ones resume 6 s later, so code without a client deadline
      -- fails instead of hanging. (socat and pgrep run without the
      -- sanitizer runtimes make asan preloads: pgrep hangs under them.)
      setup(function()
        local socket = require("socket")
        local probe = assert(socket.bind("127.0.0.1", 0))
        local _, port = probe:getsockname()
        probe:close()
        local params = {}
        for k, v in pairs(drv.adapter().params) do params[k] = v end
        relay.proc = assert(io.popen(string.format("echo $$; exec env -u LD_PRELOAD socat "
          .. "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr TCP:%s:%d 2>/dev/null",
          port, params.host or "127.0.0.1", params.port)))
        relay.pid = assert(tonumber(relay.proc:read("l")))
        local t0 = core.clock()
        while not socket.connect("127.0.0.1", port) do
          assert(core.clock() - t0 < 5, "socat does not listen")
          socket.sleep(0.05)
        end
        params.host, params.port, params.socket = "127.0.0.1", tonumber(port), nil
        relay.params = params
        ds = orm.DataSource({ name = drv.name .. "_stall", driver = { params = params },
          pool = { max = 1, min = 1 }, statement_timeout = 0.5 }):init()
      end)

      teardown(function()
        if ds then ds:dispose() end
        if relay.pid then -- socat reaps its children, this process socat
          os.execute("kill -KILL $(env -u LD_PRELOAD pgrep -P " .. relay.pid .. ") 2>/dev/null; sleep 0.1; kill "
            .. relay.pid)
          relay.proc:close()
        end
      end)

      -- Freezes the relayed connections (and with `all` the relay itself:
      -- new connections wait unanswered too), and returns a function that
      -- resumes them (called by itself after 6 s).
      local function freeze(all)
        local p = io.popen("env -u LD_PRELOAD pgrep -P " .. relay.pid)
        local pids = p:read("a"):gsub("%s+", " ")
        p:close()
        assert(pids:match("%d"), "no relayed connection")
        if all then pids = pids .. " " .. relay.pid end
        assert(os.execute("kill -STOP " .. pids))
        local waker = io.popen("{ sleep 6 & echo $!; wait $!; kill -CONT " .. pids .. "; } 2>/dev/null")
        local sleeper = waker:read("l")
        return function()
          os.execute("kill " .. sleeper .. " 2>/dev/null")
          waker:close()
        end
      end

      for _, mode in ipairs(MODES) do
        it("gives the connection up when nothing answers the cancel, " .. mode, function()
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
          local resume = freeze()
          local ok, err = pcall(run, mode, function()
            local e, took = timed_error(ds.select, ds, "SELECT 1 AS one")
            assert.are.equal("query_timeout", e.kind, tostring(e))
            assert.matches("did not answer its cancel", e.message, 1, true)
            assert.is_true(took >= 2.3 and took < 4, "took " .. took .. " s")
            -- a new connection (the frozen one was closed) answers
            assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
            assert.are.equal(1, ds:stats().open)
          end)
          resume()
          assert(ok, err)
        end)

        it("gives up a ping and a health check as it gives up a statement, " .. mode, function()
          local checked = orm.DataSource({ name = drv.name .. "_stall_checked",
            driver = { params = relay.params }, statement_timeout = 0.5,
            pool = { max = 1, min = 1, health_check = 0 } }):init() -- a ping at each checkout
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
          local resume = freeze()
          local ok, err = pcall(run, mode, function()
            local e, took = timed_error(ds.ping, ds)
            assert.is_true(e.kind == "connection_lost" or e.kind == "query_timeout", tostring(e))
            assert.is_true(took < 4, "ping took " .. took .. " s")
            -- the health check gives the frozen connection up and opens another
            local t0 = core.clock()
            assert.are.equal(1, checked:select("SELECT 1 AS one")[1].one)
            took = core.clock() - t0
            assert.is_true(took < 4, "the checkout took " .. took .. " s")
          end)
          resume()
          checked:dispose()
          assert(ok, err)
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
        end)

        it("gives up a cancel that cannot get through either, " .. mode, function()
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
          local resume = freeze(true)
          local ok, err = pcall(run, mode, function()
            local e, took = timed_error(ds.select, ds, "SELECT 1 AS one")
            assert.are.equal("query_timeout", e.kind, tostring(e))
            assert.matches("did not answer its cancel", e.message, 1, true)
            assert.is_true(took >= 2.3 and took < 4, "took " .. took .. " s")
          end)
          resume()
          assert(ok, err)
          assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
        end)
      end
    end)

    describe("a row lock held by a suspended coroutine of this thread", function()
      local ds

      setup(function()
        ds = orm.DataSource({ name = drv.name .. "_lock", driver = drv.adapter(),
          pool = { max = 2, min = 1 }, statement_timeout = 1 }):init()
        drv:create_table(ds, "lock_items", { { "id", "id" }, { "v", "integer" } })
        ds:table("lock_items"):insert({ v = 0 })
      end)

      teardown(function()
        drv:drop_table(ds, "lock_items")
        ds:dispose()
      end)

      it("bounds the writer's wait with query_timeout; the holder then commits", function()
        local holder = holding(ds, "UPDATE lock_items SET v = 1")
        local t0 = core.clock()
        local err = helper.error_of(ds.execute, ds, "UPDATE lock_items SET v = 2")
        assert.are.equal("query_timeout", err.kind, tostring(err))
        assert.is_true(core.clock() - t0 < 5)
        assert.are.same({ true, "committed" }, { coroutine.resume(holder) })
        assert.are.equal(1, ds:select("SELECT v FROM lock_items")[1].v)
        ds:execute("UPDATE lock_items SET v = 2")
        assert.are.equal(2, ds:select("SELECT v FROM lock_items")[1].v)
      end)
    end)

    describe("connect_timeout", function()
      it("fails the connect to a server that never answers with connection_failed", function()
        local socket = require("socket")
        local server = assert(socket.bind("127.0.0.1", 0)) -- listens, never accepts
        local _, port = server:getsockname()
        local params = {}
        for k, v in pairs(drv.adapter().params) do params[k] = v end
        params.host, params.port, params.socket = "127.0.0.1", tonumber(port), nil
        local t0 = core.clock()
        local err = helper.error_of(function()
          orm.DataSource({ name = drv.name .. "_silent", driver = { params = params },
            pool = { max = 1, min = 1 }, connect_timeout = 1 }):init()
        end)
        local took = core.clock() - t0
        server:close()
        assert.are.equal("connection_failed", err.kind, tostring(err))
        assert.is_true(took >= 0.9 and took < 5, "took " .. took .. " s")
      end)
    end)
  end
end)

-- Behind PgBouncer in transaction mode (scripts/pgbouncer.sh: 2 server
-- connections shared by every client): a session SET would land on one
-- server connection, be missing on the other and leak to other clients.
local PGB = os.getenv("ORMED_TEST_PGBOUNCER")
local describe_pg = helper.covers("postgres") and describe or function() end

describe_pg("statement_timeout behind PgBouncer (transaction mode)", function()
  local pg = { name = "postgres" }
  local timed, plain, holders, seq = nil, nil, {}, 0

  local function source(timeout)
    seq = seq + 1
    return orm.DataSource({ name = "pgb_timeout" .. seq,
      driver = orm.driver_from_url(PGB .. "?prepared_statements=false"),
      pool = { max = 1, min = 1 }, statement_timeout = timeout }):init()
  end

  -- A coroutine keeping a server connection in an open transaction of ds
  -- until it is resumed again.
  local function hold(ds)
    local co = coroutine.create(function()
      ds:transaction(function()
        ds:select("SELECT 1 AS one")
        coroutine.yield()
      end)
    end)
    assert(coroutine.resume(co))
    return co
  end

  -- Runs fn once on each of the 2 server connections (the other one held
  -- by an open transaction: PgBouncer hands out the connection released
  -- last first) and checks it did: fn returns the backend pid it ran on.
  local function on_each_server_connection(fn)
    local pids, n = {}, 0
    for k = 1, 2 do
      local a, b = hold(holders[1]), nil
      if k == 2 then
        b = hold(holders[2])
        assert(coroutine.resume(a))
      end
      local ok, pid = pcall(fn)
      assert(coroutine.resume(b or a))
      assert(ok, pid)
      if not pids[pid] then n = n + 1 end
      pids[pid] = true
    end
    assert.are.equal(2, n, "fn ran on one server connection only")
  end

  local function pid(ds)
    return ds:select("SELECT pg_backend_pid() AS pid")[1].pid
  end

  setup(function()
    assert(PGB, "ORMED_TEST_PGBOUNCER is not set: run the specs through make test")
    plain = source(nil)
    holders = { source(nil), source(nil) }
    on_each_server_connection(function() -- what an earlier client left there
      plain:execute("RESET statement_timeout")
      return pid(plain)
    end)
    timed = source(0.5)
  end)

  teardown(function()
    for _, ds in ipairs({ timed, plain, holders[1], holders[2] }) do
      if ds then ds:dispose() end
    end
  end)

  for _, mode in ipairs(MODES) do
    it("holds on every statement, on either server connection, " .. mode, function()
      on_each_server_connection(function()
        local on
        run(mode, function()
          for _ = 1, 2 do
            local err, took = timed_error(timed.select, timed, slow_sql(pg, 3))
            assert.are.equal("query_timeout", err.kind, tostring(err))
            assert.is_true(took >= 0.4 and took < 1.0, "took " .. took .. " s")
            on = pid(timed)
          end
        end)
        return on
      end)
    end)

    it("cancels only its own client's statement, " .. mode, function()
      local done
      if mode == MODES[1] then
        local p = other_process(PGB .. "?prepared_statements=false", sleep_row_sql(pg, 1.5))
        local err = timed_error(timed.select, timed, slow_sql(pg, 3))
        assert.are.equal("query_timeout", err.kind, tostring(err))
        done = p:read("a")
        p:close()
      else
        run(mode, function()
          local loop = cqueues.running()
          loop:wrap(function() done = plain:select(sleep_row_sql(pg, 1.5))[1].done end)
          cqueues.sleep(0.1)
          local err = timed_error(timed.select, timed, slow_sql(pg, 3))
          assert.are.equal("query_timeout", err.kind, tostring(err))
        end)
      end
      assert.are.equal("slept", done)
    end)
  end

  it("leaves no session setting to another client", function()
    source(0.5):dispose() -- a new timed connection: nothing SET on the server
    on_each_server_connection(function()
      assert.are.equal("0", plain:select("SHOW statement_timeout")[1].statement_timeout)
      assert.are.equal("slept", plain:select(sleep_row_sql(pg, 0.6))[1].done)
      return pid(plain)
    end)
  end)
end)
