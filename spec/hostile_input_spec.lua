-- Bad or unusual input, on every driver, the way a user hits it: each case
-- either works as written or raises a clear invalid_argument, never runs
-- something else silently.
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds

  local function invalid(f, pattern)
    local err = helper.error_of(f)
    assert.are.equal("invalid_argument", err.kind, tostring(err))
    if pattern then assert.truthy(tostring(err.message):find(pattern, 1, true), tostring(err)) end
    assert.is_nil(err.sqlstate, tostring(err))
    assert.is_nil(err.code, tostring(err))
    return err
  end

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "notes", { { "id", "id" }, { "body", "string" }, { "credits", "integer" } })
  end)

  teardown(function()
    drv:drop_table(ds, "notes")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM notes")
    ds:table("notes"):insert({ { body = "a", credits = 1 }, { body = "b", credits = 2 } })
  end)

  describe("several statements in one call", function()
    it("are refused by execute and select, and nothing runs", function()
      invalid(function()
        ds:execute("INSERT INTO notes (body) VALUES ('x'); INSERT INTO notes (body) VALUES ('y')")
      end, "more than one statement")
      invalid(function() ds:select("SELECT 1 AS one; DELETE FROM notes") end, "more than one statement")
      assert.are.equal(2, ds:table("notes"):count())
    end)

    it("a trailing semicolon, a comment after it, and a ; inside a string are one statement", function()
      assert.are.equal(1, ds:execute("INSERT INTO notes (body) VALUES ('x;y');").affected_rows)
      assert.are.equal(1, #ds:select("SELECT body FROM notes WHERE body = 'x;y'; -- done"))
      assert.are.equal(1, #ds:select("SELECT body FROM notes WHERE body = ? ; /* a; b */", { "x;y" }))
    end)
  end)

  describe("placeholders inside quoted text and comments", function()
    it("are left alone", function()
      local rows = ds:select("SELECT body /* ? */ FROM notes WHERE body = ? -- ?\n ORDER BY body", { "a" })
      assert.are.same({ "a" }, { rows[1].body })
      rows = ds:select("SELECT '?' AS q, body FROM notes WHERE credits = ?", { 2 })
      assert.are.equal("?", rows[1].q)
      assert.are.equal("b", rows[1].body)
    end)

    if drv.name == "postgres" then
      it("PostgreSQL: E'' strings with an escaped quote, dollar quotes, nested comments", function()
        local r = ds:select([[SELECT E'it\'s ?' AS s, $$a ? b$$ AS d, $t1$?$t1$ AS t /* x /* ? */ y */, ? AS n]],
          { "v" })[1]
        assert.are.same({ "it's ?", "a ? b", "?", "v" }, { r.s, r.d, r.t, r.n })
        assert.are.equal(1, ds:table("notes"):where_raw([[body <> E'a\'?' AND credits = ?]], { 2 }):count())
      end)
    end

    if drv.name == "mysql" then
      it("MySQL: backslash escapes in strings and # comments", function()
        assert.are.equal(2, ds:table("notes"):where_raw([[body <> 'a\'?']]):count())
        local r = ds:select("SELECT 'it\\'s ?' AS s, ? AS n # ?\n", { "v" })[1]
        assert.are.same({ "it's ?", "v" }, { r.s, r.n })
      end)
    else
      it("a fragment that only a backslash-escaping dialect reads with no placeholder is refused", function()
        invalid(function() ds:table("notes"):where_raw([[body <> 'a\'?']]):count() end,
          "placeholders do not match")
      end)
    end
  end)

  describe("column names with a NUL byte", function()
    it("are refused by every aggregate and by pluck", function()
      for _, m in ipairs({ "sum", "avg", "min", "max", "pluck", "count" }) do
        invalid(function() local q = ds:table("notes"); return q[m](q, "cred\0its") end, "NUL")
      end
      invalid(function() ds:table("notes"):chunk_by_id(10, function() end, "i\0d") end, "NUL")
    end)
  end)

  describe("paginate at its limits", function()
    it("refuses a page past the largest offset and counts pages without overflow", function()
      invalid(function() ds:table("notes"):paginate({ page = math.maxinteger, per_page = 20 }) end,
        "largest offset")
      invalid(function() ds:table("notes"):paginate({ page = 0 }) end)
      invalid(function() ds:table("notes"):paginate({ per_page = 0 }) end)
      local p = ds:table("notes"):paginate({ page = 1, per_page = math.maxinteger })
      assert.are.same({ 2, 1, 2 }, { p.total, p.last_page, #p.items })
      p = ds:table("notes"):order_by("body"):paginate({ page = 2, per_page = 1 })
      assert.are.same({ 2, 2, "b" }, { p.total, p.last_page, p.items[1].body })
    end)
  end)

  describe("query-builder errors", function()
    it("carry no stale sqlstate or code", function()
      invalid(function() ds:table("notes"):where_raw("credits = ? AND body = ?", { 1 }):get() end)
      invalid(function() ds:table("notes"):where("credits", ">", nil):get() end)
      invalid(function() ds:table("notes"):update({}) end)
      invalid(function() ds:table("notes"):where("bo\0dy", 1):get() end)
    end)
  end)
end)
