-- Transactions never report success for writes they did not keep, on every
-- driver: a statement caught with pcall inside a transaction, a COMMIT that
-- fails (a deferred foreign key), a list insert split into several
-- statements; and every transaction statement reaches listeners and stats.
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds

  local function count(t)
    return ds:table(t or "items"):count()
  end

  setup(function()
    ds = drv:data_source(nil, { max = 1, min = 1 }) -- one connection: what one call leaves, the next gets
    drv:create_table(ds, "items", { { "id", "id" }, { "name", "string", "NOT NULL UNIQUE" } })
  end)

  teardown(function()
    drv:drop_table(ds, "items")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM items")
  end)

  describe("a failed statement caught with pcall inside a transaction", function()
    it("either keeps the other writes or raises transaction_aborted, never a silent rollback", function()
      local ok, err = pcall(ds.transaction, ds, function()
        ds:table("items"):insert({ name = "a" })
        ds:table("items"):insert({ name = "b" })
        local caught = pcall(function() ds:table("items"):insert({ name = "a" }) end)
        assert.is_false(caught)
      end)
      if drv.name == "postgres" then
        -- PostgreSQL aborts the transaction at the first error: COMMIT rolls back
        assert.is_false(ok)
        assert.are.equal("transaction_aborted", err.kind, tostring(err))
        assert.truthy(tostring(err):find("the first failure", 1, true), tostring(err))
        assert.truthy(tostring(err):lower():find("duplicate", 1, true), tostring(err))
        assert.are.equal(0, count())
      else
        assert.is_true(ok, tostring(err))
        assert.are.equal(2, count())
      end
      if drv.name == "postgres" then
        -- a statement after the caught failure fails at once, and so does the transaction
        ds:execute("DELETE FROM items")
        err = helper.error_of(ds.transaction, ds, function()
          ds:table("items"):insert({ name = "a" })
          pcall(function() ds:table("items"):insert({ name = "a" }) end)
          ds:table("items"):insert({ name = "b" })
        end)
        assert.are.equal("25P02", err.sqlstate, tostring(err))
        assert.are.equal(0, count())
      end
      -- the connection is clean afterwards
      ds:table("items"):insert({ name = "c" })
      assert.are.equal(1, ds:table("items"):where("name", "c"):count())
    end)

    it("inside a nested transaction keeps the outer one on every driver", function()
      ds:transaction(function()
        ds:table("items"):insert({ name = "a" })
        local caught = pcall(ds.transaction, ds, function()
          ds:table("items"):insert({ name = "a" })
        end)
        assert.is_false(caught)
        ds:table("items"):insert({ name = "b" })
      end)
      assert.are.same({ "a", "b" }, ds:table("items"):order_by("name"):pluck("name"))
    end)
  end)

  if drv.name == "sqlite" then
    describe("a failed statement that ends the transaction on the server", function()
      it("(INSERT OR ROLLBACK) refuses the statements after it and the transaction raises", function()
        ds:table("items"):insert({ name = "a" })
        local err = helper.error_of(ds.transaction, ds, function()
          ds:table("items"):insert({ name = "b" })
          assert.is_false(pcall(ds.execute, ds, "INSERT OR ROLLBACK INTO items (name) VALUES ('a')"))
          local caught, e2 = pcall(function() ds:table("items"):insert({ name = "c" }) end)
          assert.is_false(caught) -- never autocommitted behind the transaction's back
          assert.are.equal("transaction_aborted", e2.kind, tostring(e2))
        end)
        assert.are.equal("transaction_aborted", err.kind, tostring(err))
        assert.are.same({ "a" }, ds:table("items"):pluck("name"))
        ds:transaction(function() ds:table("items"):insert({ name = "d" }) end) -- the connection is clean
        assert.are.equal(2, count())
      end)
    end)
  end

  describe("listeners and stats", function()
    it("see BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO and COMMIT like other statements", function()
      local seen = {}
      local stop = ds:listen(function(ev) seen[#seen + 1] = ev.sql end)
      local before = ds:stats().queries
      ds:transaction(function()
        ds:table("items"):insert({ name = "a" })
        ds:transaction(function() ds:table("items"):insert({ name = "b" }) end)
        pcall(ds.transaction, ds, function() error("undo") end)
      end)
      stop()
      local tx = {}
      for _, sql in ipairs(seen) do
        if not sql:find("INSERT", 1, true) then tx[#tx + 1] = sql end
      end
      local begin = drv.name == "mysql" and "START TRANSACTION" or "BEGIN"
      assert.are.same({ begin, "SAVEPOINT orm_sp_1", "RELEASE SAVEPOINT orm_sp_1",
        "SAVEPOINT orm_sp_1", "ROLLBACK TO SAVEPOINT orm_sp_1", "COMMIT" }, tx)
      assert.are.equal(#seen, ds:stats().queries - before)
    end)
  end)

  if drv.name ~= "mysql" then -- MySQL checks foreign keys at once: no deferred constraint
    describe("a COMMIT that fails on a deferred foreign key", function()
      setup(function()
        drv:drop_table(ds, "kids")
        drv:drop_table(ds, "parents")
        ds:execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        ds:execute("CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER "
          .. "REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)")
      end)

      teardown(function()
        drv:drop_table(ds, "kids")
        drv:drop_table(ds, "parents")
      end)

      it("raises, is seen by listeners and stats, and leaves no transaction open", function()
        local events = {}
        local stop = ds:listen(function(ev) events[#events + 1] = ev end)
        local errors = ds:stats().errors
        local err = helper.error_of(ds.transaction, ds, function()
          ds:execute("INSERT INTO kids (id, parent_id) VALUES (1, 42)")
        end)
        stop()
        assert.are.equal("foreign_key_violation", err.kind, tostring(err))
        local last = events[#events]
        assert.are.equal("COMMIT", last.sql)
        assert.is_string(last.error)
        assert.are.equal(errors + 1, ds:stats().errors)
        -- the same (only) connection: an autocommit write is really committed
        ds:execute("INSERT INTO parents (id) VALUES (7)")
        local other = require("ormed").DataSource({ name = "deferred_other", driver = ds.driver }):init()
        assert.are.equal(1, #other:select("SELECT id FROM parents WHERE id = 7"))
        assert.are.equal(0, #other:select("SELECT id FROM kids"))
        other:dispose()
        -- and the next transaction starts normally
        ds:transaction(function() ds:execute("INSERT INTO parents (id) VALUES (8)") end)
        assert.are.equal(2, #ds:select("SELECT id FROM parents"))
      end)
    end)
  end

  describe("a list insert split into several statements", function()
    it("is all or nothing outside a transaction", function()
      local n = require("ormed.core").dialect(ds:dialect()).insert_batch * 3
      local rows = {}
      for i = 1, n do rows[i] = { name = "row" .. i } end
      rows[n] = { name = "row1" } -- the last batch fails on the unique name
      local err = helper.error_of(function() ds:table("items"):insert(rows) end)
      assert.are.equal("unique_violation", err.kind, tostring(err))
      assert.are.equal(0, count())
      -- and the pool's connection is usable, outside any transaction
      ds:table("items"):insert({ { name = "x" }, { name = "y" } })
      assert.are.equal(2, count())
    end)

    it("is all or nothing inside a transaction's savepoint too", function()
      local n = require("ormed.core").dialect(ds:dialect()).insert_batch * 2
      local rows = {}
      for i = 1, n do rows[i] = { name = "row" .. i } end
      rows[n] = { name = "row1" }
      ds:transaction(function()
        ds:table("items"):insert({ name = "kept" })
        local ok = pcall(function() ds:table("items"):insert(rows) end)
        assert.is_false(ok)
      end)
      assert.are.same({ "kept" }, ds:table("items"):pluck("name"))
    end)
  end)
end)
