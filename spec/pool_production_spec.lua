-- spec/pool_production_spec.lua: pools that run for days. pool.max_lifetime
-- closes a connection older than its lifetime instead of reusing it (never
-- in the middle of a transaction); pool.leak_timeout reports a connection
-- held too long, once, to the data source's listeners with the traceback of
-- the Lua code that took it. A TEMPORARY table tells the connections apart:
-- it lives exactly as long as the connection that created it.
local helper = require("spec.helper")

local function sleep(s)
  os.execute("sleep " .. s)
end

-- true when the temporary table made by mark() is visible: the statement
-- ran on the connection that made it.
local function same_connection(ds)
  return pcall(ds.select, ds, "SELECT n FROM lifetime_mark")
end

local function mark(ds)
  ds:execute("CREATE TEMPORARY TABLE lifetime_mark (n integer)")
end

helper.each_driver(function(drv)
  describe("pool.max_lifetime", function()
    it("reuses a connection younger than max_lifetime and replaces an older one", function()
      local ds = drv:data_source(nil, { max = 1, min = 1, max_lifetime = 0.6 })
      mark(ds)
      sleep(0.1) -- well inside the lifetime, even with 10% jitter
      assert.is_true(same_connection(ds))
      assert.equal(0, ds:stats().expired)
      sleep(0.6) -- past it
      assert.is_false(same_connection(ds))
      local stats = ds:stats()
      assert.equal(1, stats.expired)
      assert.equal(1, stats.open)
      -- the new connection works and is kept in turn
      mark(ds)
      assert.is_true(same_connection(ds))
      ds:dispose()
    end)

    it("never closes a connection inside a transaction: it goes at release", function()
      local ds = drv:data_source(nil, { max = 1, min = 1, max_lifetime = 0.3 })
      ds:transaction(function()
        mark(ds)
        sleep(0.4)
        assert.is_true(same_connection(ds))
        ds:execute("INSERT INTO lifetime_mark (n) VALUES (1)")
        assert.equal(0, ds:stats().expired)
      end)
      assert.equal(1, ds:stats().expired)
      assert.is_false(same_connection(ds))
      ds:dispose()
    end)

    it("closes idle connections past their lifetime when the pool is used", function()
      local ds = drv:data_source(nil, { max = 3, min = 0, max_lifetime = 0.3, idle_timeout = 0 })
      -- three connections open at once, then idle
      local holds = {}
      for i = 1, 3 do
        holds[i] = coroutine.wrap(function()
          ds:transaction(function() coroutine.yield() end)
        end)
        holds[i]()
      end
      for i = 1, 3 do holds[i]() end
      assert.equal(3, ds:stats().open)
      sleep(0.4)
      ds:select("SELECT 1 AS one")
      local stats = ds:stats()
      assert.equal(3, stats.expired)
      assert.equal(1, stats.open)
      ds:dispose()
    end)
  end)

  describe("pool.leak_timeout", function()
    local ds, events, stop

    before_each(function()
      ds = drv:data_source(nil, { max = 2, min = 1, leak_timeout = 0.2 })
      events = {}
      stop = ds:listen(function(e)
        if e.event == "leak" then events[#events + 1] = e end
      end)
    end)

    after_each(function()
      stop()
      ds:dispose()
    end)

    it("reports a transaction held too long once, with the code that took it", function()
      local function take_too_long()
        ds:transaction(function()
          sleep(0.3)
          ds:select("SELECT 1 AS one") -- the pool is used: the check runs
          ds:select("SELECT 2 AS two")
        end)
      end
      take_too_long()
      assert.equal(1, #events)
      local e = events[1]
      assert.equal(ds.name, e.connection)
      assert.is_true(e.held >= 0.2 and e.held < 5, "held " .. tostring(e.held))
      assert.matches("pool_production_spec.lua", e.traceback, 1, true)
      assert.matches("take_too_long", e.traceback, 1, true)
    end)

    it("finds a connection a suspended coroutine keeps, when stats() is called", function()
      local leaky = coroutine.wrap(function()
        ds:transaction(function() coroutine.yield() end)
      end)
      leaky()
      assert.equal(0, #events)
      sleep(0.3)
      assert.equal(1, ds:stats().in_use)
      assert.equal(1, #events)
      ds:stats()
      ds:select("SELECT 1 AS one")
      assert.equal(1, #events) -- reported once
      leaky()
      assert.equal(0, ds:stats().in_use)
    end)

    it("reports a leak found when the connection goes back, and nothing for short holds", function()
      ds:transaction(function() ds:select("SELECT 1 AS one") end)
      assert.equal(0, #events)
      ds:transaction(function() sleep(0.3) end)
      assert.equal(1, #events)
      ds:transaction(function() ds:select("SELECT 1 AS one") end)
      ds:select("SELECT 1 AS one")
      assert.equal(1, #events)
    end)

    it("rejects a leak_timeout that is not a positive number", function()
      local err = helper.error_of(drv.data_source, drv, nil, { leak_timeout = "soon" })
      assert.equal("invalid_argument", err.kind)
    end)
  end)
end)

-- The jitter is the pool's own (the same for every driver), so one SQLite
-- file, whose connections open in well under a millisecond, shows it: twenty
-- connections opened together get deadlines spread over the last 10% of
-- max_lifetime, so halfway through that window some are gone and some not.
local describe_sqlite = helper.covers("sqlite") and describe or function() end

describe_sqlite("[sqlite] pool.max_lifetime jitter", function()
  it("staggers the deadlines of connections opened together", function()
    local core = require("ormed.core")
    local orm = require("ormed")
    local path = (os.getenv("ORMED_TEST_TMP") or "/tmp") .. "/ormed_jitter_" .. os.time() .. ".sqlite"
    local t0 = core.clock()
    local ds = orm.DataSource({ name = "jitter", driver = orm.SqliteDriverAdapter.file(path),
      pool = { max = 20, min = 20, max_lifetime = 2, idle_timeout = 0 } }):init()
    local opened = core.clock()
    assert.is_true(opened - t0 < 0.1, "opening 20 SQLite connections took too long")
    while core.clock() < t0 + 1.9 do sleep(0.01) end
    for _ = 1, 4 do ds:select("SELECT 1 AS one") end -- each use closes up to 8 old ones
    local at = core.clock() - t0
    local expired = ds:stats().expired
    ds:dispose()
    os.remove(path)
    -- deadlines lie in [1.8, 2.0] s: at 1.9 s about half have passed
    assert.is_true(at < 1.97, "the check ran late (" .. at .. " s)")
    assert.is_true(expired > 0 and expired < 20,
      expired .. " of 20 connections expired at " .. at .. " s")
  end)
end)
