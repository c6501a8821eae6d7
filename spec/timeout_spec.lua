-- statement_timeout and connect_timeout on every driver, without a waiter:
-- a statement that runs longer is cancelled and raises query_timeout, the
-- connection stays usable (inside a transaction too), a writer waiting for
-- a row lock another coroutine of this thread holds is bounded by
-- statement_timeout, and a server that never answers fails the connect
-- within connect_timeout.
local helper = require("spec.helper")
local orm = require("ormed")
local core = require("ormed.core")

-- A statement that runs for `seconds` (SQLite: one that never ends).
local function slow_sql(drv, seconds)
  if drv.name == "postgres" then return "SELECT pg_sleep(" .. seconds .. ")" end
  if drv.name == "mysql" then return "SELECT SLEEP(" .. seconds .. ")" end
  return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
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

    it("cancels a longer statement with query_timeout and keeps the connection usable", function()
      local t0 = core.clock()
      local err = helper.error_of(ds.select, ds, slow_sql(drv, 5))
      local took = core.clock() - t0
      assert.are.equal("query_timeout", err.kind, tostring(err))
      assert.is_true(took >= 0.4 and took < 3, "took " .. took .. " s")
      -- one pooled connection: the same one answers next
      assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
      assert.are.equal(0, ds:stats().open - 1)
    end)

    it("lets a statement within the limit finish", function()
      if drv.name == "sqlite" then
        assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
      else
        assert.are.equal(1, #ds:select(slow_sql(drv, 0.1)))
      end
    end)

    it("inside a transaction: the error reaches the transaction, which rolls back", function()
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
        local holder = coroutine.create(function()
          ds:transaction(function()
            ds:execute("UPDATE lock_items SET v = 1")
            coroutine.yield("holding")
          end)
          return "committed"
        end)
        assert.are.same({ true, "holding" }, { coroutine.resume(holder) })
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
