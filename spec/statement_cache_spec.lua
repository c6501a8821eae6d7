-- spec/statement_cache_spec.lua: cached statements after DDL, the way a user
-- hits it: a warm pool whose connections have `SELECT *` cached, DDL through
-- the schema builder or ds:execute (on one connection of the pool, on the
-- other, or from another data source), then the same select again: every
-- driver returns the table's current columns. On PostgreSQL a statement the
-- server lost (26000) or whose plan DDL invalidated (0A000) is prepared
-- again and retried once outside a transaction; inside one the error stands.
local helper = require("spec.helper")
local orm = require("ormed")

local SELECT = "SELECT * FROM cache_items ORDER BY id"

-- Runs f() outside any transaction on each of the two connections of ds's
-- pool (max 2): first on one while a coroutine's transaction holds the
-- other, then on the one given back.
local function on_both(ds, f)
  local hold = coroutine.wrap(function()
    ds:transaction(function() coroutine.yield() end)
  end)
  hold()
  assert.equal(1, ds:stats().in_use)
  f()
  hold()
  assert.equal(0, ds:stats().in_use)
  f()
end

local function keys(row)
  local list = {}
  for k in pairs(row) do list[#list + 1] = k end
  table.sort(list)
  return table.concat(list, ",")
end

helper.each_driver(function(drv)
  describe("statement cache after DDL", function()
    local ds, other

    before_each(function()
      ds = drv:data_source(nil, { max = 2, min = 2 })
      drv:create_table(ds, "cache_items", { { "id", "id" }, { "a", "integer" }, { "b", "integer" } })
      ds:execute("INSERT INTO cache_items (a, b) VALUES (?, ?)", { 10, 20 })
      -- the select is cached on both connections of the pool
      on_both(ds, function()
        local rows = ds:select(SELECT)
        assert.equal("a,b,id", keys(rows[1]))
      end)
    end)

    after_each(function()
      if other then other:dispose() other = nil end
      drv:drop_table(ds, "cache_items")
      ds:dispose()
    end)

    it("returns a column added through the schema builder on every connection", function()
      ds:schema():alter_table("cache_items", function(t) t:integer("c"):default(5) end)
      on_both(ds, function()
        local row = ds:select(SELECT)[1]
        assert.equal("a,b,c,id", keys(row))
        assert.same({ 10, 20, 5 }, { row.a, row.b, row.c })
      end)
    end)

    it("returns the new names when a column is replaced (same column count)", function()
      ds:execute("ALTER TABLE cache_items DROP COLUMN a")
      ds:execute("ALTER TABLE cache_items ADD COLUMN c integer DEFAULT 7")
      on_both(ds, function()
        local row = ds:select(SELECT)[1]
        assert.equal("b,c,id", keys(row))
        assert.is_nil(row.a)
        assert.same({ 20, 7 }, { row.b, row.c })
      end)
    end)

    it("returns renamed and dropped columns under their current names", function()
      ds:schema():alter_table("cache_items", function(t) t:rename_column("b", "bee") end)
      on_both(ds, function()
        local row = ds:select(SELECT)[1]
        assert.equal("a,bee,id", keys(row))
        assert.equal(20, row.bee)
      end)
      ds:schema():alter_table("cache_items", function(t) t:drop_column("a") end)
      on_both(ds, function()
        assert.equal("bee,id", keys(ds:select(SELECT)[1]))
      end)
    end)

    it("sees DDL run from another data source on the same database", function()
      -- a second data source on the same database (the same SQLite file)
      other = orm.DataSource({ name = "cache_other", driver = ds.driver }):init()
      other:execute("ALTER TABLE cache_items ADD COLUMN d integer DEFAULT 9")
      on_both(ds, function()
        local row = ds:select(SELECT)[1]
        assert.equal("a,b,d,id", keys(row))
        assert.equal(9, row.d)
      end)
      -- the prepared statements were kept or prepared again, never broken
      assert.equal(0, ds:stats().errors)
    end)

    it("keeps bound parameters when a statement is prepared again", function()
      local sql = "SELECT * FROM cache_items WHERE a = ? AND b > ?"
      assert.equal(1, #ds:select(sql, { 10, 0 }))
      ds:execute("ALTER TABLE cache_items ADD COLUMN e integer DEFAULT 3")
      local rows = ds:select(sql, { 10, 0 })
      assert.equal(1, #rows)
      assert.equal(3, rows[1].e)
      assert.equal(0, #ds:select(sql, { 11, 0 }))
    end)

    if drv.name == "mysql" then
      it("never runs a writing statement twice: raises its 2057, then recovers", function()
        local sql = "INSERT INTO cache_items (a, b) VALUES (?, ?) RETURNING *"
        assert.equal(1, #ds:select(sql, { 1, 1 }))
        ds:execute("ALTER TABLE cache_items ADD COLUMN g integer DEFAULT 6")
        local err = helper.error_of(ds.select, ds, sql, { 2, 2 })
        assert.equal(2057, err.code)
        assert.matches("prepared again at its next run", err.message, 1, true)
        assert.equal(6, ds:select(sql, { 3, 3 })[1].g)
        -- the failed call inserted its row once, never twice
        assert.same({ 1, 2, 3 }, ds:table("cache_items"):where("a", "<", 10)
          :order_by("a"):pluck("a"))
      end)
    end

    if drv.name == "postgres" then
      it("retries a writing statement: the server refused it before it ran", function()
        local sql = "INSERT INTO cache_items (a, b) VALUES (?, ?) RETURNING *"
        assert.equal(1, #ds:select(sql, { 1, 1 }))
        ds:execute("ALTER TABLE cache_items ADD COLUMN g integer DEFAULT 6")
        assert.equal(6, ds:select(sql, { 2, 2 })[1].g)
        assert.same({ 1, 2 }, ds:table("cache_items"):where("a", "<", 10)
          :order_by("a"):pluck("a"))
      end)

      it("re-prepares a statement the server lost (26000) outside a transaction", function()
        local small = drv:data_source(nil, { max = 1, min = 1 })
        local errors = {}
        small:listen(function(e) if e.error then errors[#errors + 1] = e.error end end)
        assert.equal(1, #small:select(SELECT))
        local before = small:stats().prepared
        small:execute("DEALLOCATE ALL") -- what a pooler or failover does to a session
        assert.equal(1, #small:select(SELECT))
        assert.same({}, errors)
        assert.is_true(small:stats().prepared > before)
        small:dispose()
      end)

      it("evicts statements the server lost without aborting a transaction", function()
        local small = drv:data_source(nil, { max = 1, min = 1 })
        assert.equal(1, #small:select(SELECT))
        small:execute("DEALLOCATE ALL")
        small:transaction(function()
          -- more new statements than the cache holds (128): the lost ones
          -- are evicted inside the transaction
          for i = 1, 140 do
            assert.equal(i, small:select("SELECT " .. i .. " AS v")[1].v)
          end
          small:execute("INSERT INTO cache_items (a, b) VALUES (?, ?)", { 77, 77 })
        end)
        assert.equal(1, ds:table("cache_items"):where("a", 77):count())
        assert.same({}, small:select("SELECT name FROM pg_prepared_statements "
          .. "WHERE statement LIKE 'SELECT 1 AS v%'"))
        small:dispose()
      end)

      it("leaves a lost statement's error inside a transaction, and recovers after", function()
        local small = drv:data_source(nil, { max = 1, min = 1 })
        assert.equal(1, #small:select(SELECT))
        local err = helper.error_of(small.transaction, small, function()
          small:execute("DEALLOCATE ALL")
          small:select(SELECT)
        end)
        assert.equal("query", err.kind)
        assert.equal("26000", err.sqlstate)
        assert.equal(1, #small:select(SELECT))
        small:dispose()
      end)

      it("raises 0A000 inside a transaction after DDL, then retries outside", function()
        local small = drv:data_source(nil, { max = 1, min = 1 })
        assert.equal(1, #small:select(SELECT))
        other = drv:data_source()
        other:execute("ALTER TABLE cache_items ADD COLUMN f integer DEFAULT 1")
        local err = helper.error_of(small.transaction, small, function()
          small:select(SELECT)
        end)
        assert.equal("0A000", err.sqlstate)
        assert.equal(1, small:select(SELECT)[1].f)
        small:dispose()
      end)
    end
  end)
end)
