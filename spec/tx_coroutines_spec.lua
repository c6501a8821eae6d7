-- spec/tx_coroutines_spec.lua: which coroutines a transaction belongs to.
-- A transaction belongs to the coroutine that opened it and to every
-- coroutine that one resumes while it is open (a generator, a
-- coroutine.wrap helper); a coroutine resumed by anyone else (another
-- task of an event loop) never joins it.
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  describe("transactions and coroutines", function()
    local ds, other, Note

    setup(function()
      ds = drv:data_source()
      other = drv:data_source()
      drv:create_table(ds, "tx_notes", { { "id", "id" }, { "body", "string" } })
      drv:create_table(other, "tx_other", { { "id", "id" }, { "body", "string" } })
      Note = orm.model("TxNote", { table = "tx_notes", connection = ds.name,
        fields = { id = "integer", body = "string" } })
    end)

    teardown(function()
      drv:drop_table(ds, "tx_notes")
      drv:drop_table(other, "tx_other")
      other:dispose()
      ds:dispose()
    end)

    before_each(function()
      ds:table("tx_notes"):delete()
      other:table("tx_other"):delete()
    end)

    local function bodies()
      local t = {}
      for i, r in ipairs(ds:select("SELECT body FROM tx_notes ORDER BY body")) do t[i] = r.body end
      return t
    end

    it("rolls back a write made by a coroutine.wrap helper the transaction calls", function()
      local save = coroutine.wrap(function(body)
        assert.is_true(ds:in_transaction())
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { body })
        ds:table("tx_notes"):insert({ body = body .. "-query" })
        Note:create({ body = body .. "-model" })
      end)
      local err = helper.error_of(ds.transaction, ds, function()
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "opener" })
        save("helper")
        error("undo")
      end)
      assert.matches("undo", tostring(err))
      assert.are.same({}, bodies())
    end)

    it("commits a helper's write with the transaction, on its connection", function()
      ds:transaction(function()
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "opener" })
        coroutine.wrap(function()
          -- the helper sees the opener's uncommitted row: same connection
          assert.are.same({ "opener" }, bodies())
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "helper" })
        end)()
        assert.are.same({ "helper", "opener" }, bodies())
      end)
      assert.are.same({ "helper", "opener" }, bodies())
    end)

    it("includes a generator and the coroutines it resumes in turn", function()
      local err = helper.error_of(ds.transaction, ds, function()
        local gen = coroutine.wrap(function()
          for i = 1, 3 do
            -- a helper resumed by the generator: two levels below the opener
            coroutine.wrap(function()
              ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "gen" .. i })
            end)()
            coroutine.yield(i)
          end
        end)
        assert.are.same({ 1, 2, 3 }, { gen(), gen(), gen() })
        assert.are.equal(3, #bodies())
        error("undo")
      end)
      assert.matches("undo", tostring(err))
      assert.are.same({}, bodies())
    end)

    it("runs a nested transaction of a helper as a savepoint of the opener's", function()
      ds:transaction(function()
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "outer" })
        coroutine.wrap(function()
          pcall(ds.transaction, ds, function()
            ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "undone" })
            error("undo inner only")
          end)
          ds:transaction(function()
            ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "kept" })
          end)
        end)()
      end)
      assert.are.same({ "kept", "outer" }, bodies())
    end)

    it("refuses a helper's write to another data source, as the opener's", function()
      local err = helper.error_of(ds.transaction, ds, function()
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "opener" })
        coroutine.wrap(function()
          other:execute("INSERT INTO tx_notes (body) VALUES (?)", { "elsewhere" })
        end)()
      end)
      assert.are.equal("cross_connection_transaction", err.kind)
      assert.are.same({}, bodies())
    end)

    it("keeps another task of an event loop out of the transaction", function()
      -- a tiny event loop: tasks yield to it, it resumes the next one
      local log = {}
      local task_a = coroutine.create(function()
        pcall(ds.transaction, ds, function()
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "a" })
          coroutine.yield() -- waits; the loop runs task b meanwhile
          error("undo a")
        end)
      end)
      local task_b = coroutine.create(function()
        log.in_tx = ds:in_transaction()
        -- not on a's connection: a's uncommitted row is not visible here
        log.seen = #ds:select("SELECT body FROM tx_notes")
        -- and a write through another data source is no cross-database write
        other:execute("INSERT INTO tx_other (body) VALUES (?)", { "b" })
      end)
      assert.is_true(coroutine.resume(task_a))
      assert.is_true(coroutine.resume(task_b))
      assert.are.equal("dead", coroutine.status(task_b))
      assert.is_true(coroutine.resume(task_a))
      assert.are.equal("dead", coroutine.status(task_a))
      assert.is_false(log.in_tx)
      assert.are.equal(0, log.seen)
      assert.are.same({}, bodies())
      assert.are.equal("b", other:select("SELECT body FROM tx_other")[1].body)
    end)

    it("applies the same rule to OrmConnection and tenant data sources", function()
      local conn = orm.OrmConnection({ name = drv.name .. "_tx_orm", driver = drv.adapter(),
        manager = orm.ConnectionManager() }):init()
      local tenants = orm.TenantManager({ driver = function() return drv.adapter() end,
        manager = orm.ConnectionManager(), prefix = drv.name .. "_tx_tenant_" })
      for _, src in ipairs({ conn, tenants:register("t1") }) do
        drv:create_table(src, "tx_more", { { "id", "id" }, { "body", "string" } })
        local err = helper.error_of(src.transaction, src, function()
          coroutine.wrap(function()
            src:table("tx_more"):insert({ body = "helper" })
          end)()
          assert.are.equal(1, #src:select("SELECT body FROM tx_more"))
          error("undo")
        end)
        assert.matches("undo", tostring(err))
        assert.are.equal(0, #src:select("SELECT body FROM tx_more"))
        drv:drop_table(src, "tx_more")
      end
      conn:dispose()
      tenants:dispose()
    end)

    it("runs a generator made inside a transaction outside it once the transaction ended", function()
      local gen
      local err = helper.error_of(ds.transaction, ds, function()
        gen = coroutine.wrap(function()
          coroutine.yield(ds:in_transaction())
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "later" })
          coroutine.yield(ds:in_transaction())
        end)
        assert.is_true(gen())
        error("undo")
      end)
      assert.matches("undo", tostring(err))
      -- resumed by the test, not by a transaction: its own autocommit write
      assert.is_false(gen())
      assert.are.same({ "later" }, bodies())
    end)

    it("rolls everything back when a helper's nested transaction is left open", function()
      local gen = coroutine.wrap(function()
        ds:transaction(function()
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "nested" })
          coroutine.yield("suspended inside")
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "after end" })
        end)
      end)
      local err = helper.error_of(ds.transaction, ds, function()
        ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "outer" })
        assert.are.equal("suspended inside", gen())
      end)
      assert.are.equal("invalid_argument", err.kind)
      assert.are.equal(ds.name, err.connection)
      assert.are.same({}, bodies())
      -- resumed later, the helper's statement is refused, never autocommitted
      local err2 = helper.error_of(gen)
      assert.are.equal("invalid_argument", err2.kind)
      assert.are.same({}, bodies())
      assert.are.equal(0, ds:stats().in_use)
      assert.is_false(ds:in_transaction())
    end)

    it("rolls everything back when nested transactions end out of order", function()
      local first = coroutine.wrap(function()
        ds:transaction(function()
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "first" })
          coroutine.yield()
        end)
        return "first ended"
      end)
      local err = helper.error_of(ds.transaction, ds, function()
        first() -- opens a savepoint and is suspended inside it
        ds:transaction(function()
          ds:execute("INSERT INTO tx_notes (body) VALUES (?)", { "second" })
          -- the first one ends while this one, opened after it, is open
          local e = helper.error_of(first)
          assert.are.equal("invalid_argument", e.kind)
        end)
      end)
      assert.are.equal("invalid_argument", err.kind)
      assert.are.same({}, bodies())
      assert.are.equal(0, ds:stats().in_use)
    end)
  end)
end)
