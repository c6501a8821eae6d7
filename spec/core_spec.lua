-- Foundation: values round-trip exactly, errors carry kinds, transactions
-- roll back and nest, data sources refuse use before init / after dispose.
local orm = require("ormed")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds

  local function reset()
    drv:create_table(ds, "vals", {
      { "id", "id" }, { "i", "bigint" }, { "f", "number" }, { "s", "text" },
      { "b", "boolean" }, { "bin", "blob" },
    })
    drv:create_table(ds, "people", {
      { "id", "id" }, { "name", "string", "NOT NULL UNIQUE" }, { "credits", "integer" },
    })
  end

  setup(function()
    ds = drv:data_source()
    reset()
  end)

  teardown(function()
    drv:drop_table(ds, "vals")
    drv:drop_table(ds, "people")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM vals")
    ds:execute("DELETE FROM people")
  end)

  local function roundtrip(col, v)
    ds:execute("INSERT INTO vals (" .. col .. ") VALUES (?)", { v })
    local row = ds:select("SELECT " .. col .. " FROM vals")[1]
    ds:execute("DELETE FROM vals")
    return row[col]
  end

  describe("values", function()
    it("round-trips integers at the limits of int64", function()
      for _, v in ipairs({ 0, 1, -1, math.maxinteger, math.mininteger, 2 ^ 53 // 1 + 1 }) do
        local got = roundtrip("i", v)
        assert.are.equal(v, got)
        assert.are.equal("integer", math.type(got))
      end
    end)

    it("round-trips floats", function()
      for _, v in ipairs({ 0.5, -1.25, 1e300, 3.141592653589793 }) do
        local got = roundtrip("f", v)
        assert.are.equal(v, got)
        assert.are.equal("float", math.type(got))
      end
    end)

    it("round-trips UTF-8 text", function()
      assert.are.equal("héllo wörld ✓ 日本", roundtrip("s", "héllo wörld ✓ 日本"))
      assert.are.equal("", roundtrip("s", ""))
    end)

    it("round-trips blobs with NUL bytes", function()
      local bytes = "a\0b\0\255\1c"
      assert.are.equal(bytes, roundtrip("bin", orm.blob(bytes)))
    end)

    if drv.name ~= "postgres" then
      it("round-trips text with NUL bytes", function()
        assert.are.equal("a\0b", roundtrip("s", "a\0b"))
      end)
    else
      it("refuses text with NUL bytes (PostgreSQL text cannot hold them)", function()
        local err = helper.error_of(ds.execute, ds, "INSERT INTO vals (s) VALUES (?)", { "a\0b" })
        assert.are.equal("invalid_argument", err.kind)
      end)
    end

    it("round-trips booleans as Lua booleans", function()
      assert.are.equal(true, roundtrip("b", true))
      assert.are.equal(false, roundtrip("b", false))
    end)

    it("round-trips nil and orm.null as SQL NULL", function()
      ds:execute("INSERT INTO vals (i, s) VALUES (?, ?)", { orm.null, "x" })
      ds:execute("INSERT INTO vals (i, s) VALUES (?, ?)", { nil, "y" })
      local rows = ds:select("SELECT i, s FROM vals ORDER BY s")
      assert.are.equal(2, #rows)
      assert.is_nil(rows[1].i)
      assert.is_nil(rows[2].i)
      assert.are.equal(2, ds:select("SELECT COUNT(*) AS n FROM vals WHERE i IS NULL")[1].n)
    end)

    it("refuses bindings of unsupported Lua types with invalid_argument", function()
      for _, bad in ipairs({ print, coroutine.create(print), {} }) do
        local err = helper.error_of(ds.select, ds, "SELECT ? AS x", { bad })
        assert.are.equal("invalid_argument", err.kind)
        assert.is_true(orm.Error.is(err))
      end
    end)
  end)

  describe("errors", function()
    it("raises query for a syntax error, naming the statement", function()
      local err = helper.error_of(ds.select, ds, "SELEC nonsense FROM")
      assert.are.equal("query", err.kind)
      assert.are.equal("SELEC nonsense FROM", err.sql)
      assert.are.equal(ds.name, err.connection)
      assert.truthy(tostring(err):find("SELEC nonsense FROM", 1, true))
      if drv.name ~= "sqlite" then assert.are.equal("42", err.sqlstate:sub(1, 2)) end
    end)

    it("raises unique_violation and not_null_violation", function()
      ds:execute("INSERT INTO people (name) VALUES (?)", { "ann" })
      local err = helper.error_of(ds.execute, ds, "INSERT INTO people (name) VALUES (?)", { "ann" })
      assert.are.equal("unique_violation", err.kind)
      assert.are.equal("23505", drv.name == "mysql" and "23505" or err.sqlstate)
      err = helper.error_of(ds.execute, ds, "INSERT INTO people (name) VALUES (?)", { orm.null })
      assert.are.equal("not_null_violation", err.kind)
    end)

    it("gives one readable line from tostring", function()
      local err = helper.error_of(ds.select, ds, "SELECT * FROM no_such_table")
      local s = tostring(err)
      assert.truthy(s:match("^ormed query: "))
      assert.is_nil(s:find("\n"))
    end)

    it("keeps the pool usable after errors", function()
      for _ = 1, 5 do pcall(ds.select, ds, "SELECT * FROM no_such_table") end
      assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
    end)
  end)

  describe("execute", function()
    it("returns affected rows and the last insert id", function()
      local r = ds:execute("INSERT INTO people (name, credits) VALUES (?, ?)", { "ann", 1 })
      assert.are.equal(1, r.affected_rows)
      if drv.name ~= "postgres" then
        assert.are.equal(ds:select("SELECT id FROM people")[1].id, r.last_insert_id)
      end
      ds:execute("INSERT INTO people (name, credits) VALUES (?, ?)", { "bob", 1 })
      assert.are.equal(2, ds:execute("UPDATE people SET credits = credits + 1").affected_rows)
    end)

    it("prepares a repeated statement once per connection", function()
      local before = ds:stats().prepared
      for i = 1, 5 do ds:select("SELECT ? + 1 AS n", { i }) end
      assert.are.equal(before + 1, ds:stats().prepared)
    end)
  end)

  describe("transactions", function()
    it("commits when the function returns, passing its results back", function()
      local a, b = ds:transaction(function(tx)
        tx:execute("INSERT INTO people (name) VALUES (?)", { "ann" })
        return 1, 2
      end)
      assert.are.same({ 1, 2 }, { a, b })
      assert.are.equal(1, #ds:select("SELECT * FROM people"))
    end)

    it("rolls back and re-raises when the function raises", function()
      local err = helper.error_of(ds.transaction, ds, function(tx)
        tx:execute("INSERT INTO people (name) VALUES (?)", { "ann" })
        error({ mine = true })
      end)
      assert.is_true(err.mine)
      assert.are.equal(0, #ds:select("SELECT * FROM people"))
    end)

    it("rolls back when a statement inside fails", function()
      ds:execute("INSERT INTO people (name) VALUES (?)", { "ann" })
      local err = helper.error_of(ds.transaction, ds, function(tx)
        tx:execute("INSERT INTO people (name) VALUES (?)", { "bob" })
        tx:execute("INSERT INTO people (name) VALUES (?)", { "ann" })
      end)
      assert.are.equal("unique_violation", err.kind)
      local rows = ds:select("SELECT name FROM people")
      assert.are.equal(1, #rows)
      assert.are.equal("ann", rows[1].name)
    end)

    it("nests as savepoints", function()
      ds:transaction(function(tx)
        tx:execute("INSERT INTO people (name) VALUES (?)", { "outer" })
        pcall(tx.transaction, tx, function()
          tx:execute("INSERT INTO people (name) VALUES (?)", { "inner" })
          error("undo inner only")
        end)
        tx:transaction(function()
          tx:execute("INSERT INTO people (name) VALUES (?)", { "kept" })
        end)
      end)
      local names = {}
      for _, r in ipairs(ds:select("SELECT name FROM people ORDER BY name")) do names[#names + 1] = r.name end
      assert.are.same({ "kept", "outer" }, names)
    end)

    it("pins one connection to the opener and the coroutines it resumes", function()
      local outsider = coroutine.create(function() return ds:in_transaction() end)
      ds:transaction(function(tx)
        tx:execute("INSERT INTO people (name) VALUES (?)", { "in_tx" })
        assert.is_true(ds:in_transaction())
        local helper_in = coroutine.wrap(function() return ds:in_transaction() end)()
        assert.is_true(helper_in)
      end)
      assert.is_false(ds:in_transaction())
      assert.are.same({ true, false }, { coroutine.resume(outsider) })
    end)
  end)

  describe("lifecycle", function()
    it("raises not_initialized before init and after dispose", function()
      local fresh = orm.DataSource({ name = drv.name .. "_lifecycle", driver = drv.adapter() })
      assert.are.equal("not_initialized", helper.error_of(fresh.select, fresh, "SELECT 1").kind)
      fresh:init()
      fresh:init()
      assert.are.equal(1, #fresh:select("SELECT 1 AS one"))
      fresh:dispose()
      fresh:dispose()
      assert.are.equal("not_initialized", helper.error_of(fresh.select, fresh, "SELECT 1").kind)
      assert.are.equal("not_initialized", helper.error_of(fresh.execute, fresh, "SELECT 1").kind)
    end)
  end)
end)
