-- Bulk inserts on every driver (PostgreSQL loads them through COPY FROM
-- STDIN): every value reads back with its type and bytes, a bad row
-- inserts nothing, and the load is one statement to listeners and stats.
local orm = require("ormed")
local core = require("ormed.core")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, Thing, facts

  setup(function()
    ds = drv:data_source()
    facts = core.dialect(ds:dialect())
    drv:drop_table(ds, "things")
    ds:schema():create_table("things", function(t)
      t:id(); t:boolean("flag"):nullable(); t:big_integer("big"):nullable()
      t:number("ratio"):nullable(); t:text("body"):nullable(); t:blob("data"):nullable()
      t:json("doc"):nullable(); t:string("code", 40):nullable():unique()
    end)
    Thing = orm.model("BulkThing" .. drv.name, { table = "things", fields = { id = "integer",
      flag = "boolean", big = "integer", ratio = "number", body = "text", data = "blob",
      doc = "json", code = "string" } })
  end)

  teardown(function()
    drv:drop_table(ds, "things")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM things")
  end)

  -- Enough rows that one INSERT cannot take them (the bulk path).
  local function many(special)
    local n = facts.insert_batch // 4 + 50
    local rows = {}
    for i = 1, n do
      rows[i] = { flag = i % 2 == 0, big = i, ratio = i / 4, body = "row " .. i,
        data = core.blob("b" .. i), doc = '{"i":' .. i .. '}', code = "c" .. i }
    end
    for i, r in ipairs(special) do
      for k, v in pairs(r) do rows[i][k] = v end
    end
    return rows
  end

  local SPECIAL = {
    { flag = orm.null, big = orm.null, ratio = orm.null, body = orm.null, data = orm.null,
      doc = orm.null },
    { big = math.maxinteger, ratio = 0.1, body = "tab\there\nnew line\r\nback\\slash \\N \\." },
    { big = math.mininteger, ratio = -1.5e300, body = "" },
    { flag = true, ratio = 1 / 3, body = "quote ' \" and unicode \u{1F600} \u{e9}",
      data = core.blob("\0nul\0\255\1\t\n\\") },
    { flag = false, big = 0, ratio = 2 ^ 53, data = core.blob(""), doc = '{"a":[1,2,{"b":"\\t"}]}' },
  }

  it("keeps every value's type and bytes", function()
    local kinds = {}
    local stop = ds:listen(function(ev) kinds[#kinds + 1] = ev.sql:match("^%u+") end)
    local rows = many(SPECIAL)
    local r = ds:table("things"):insert(rows)
    stop()
    assert.are.equal(#rows, r.affected_rows)
    if facts.name == "postgres" then
      assert.are.same({ "BEGIN", "COPY", "COMMIT" }, kinds)
    end
    local back = ds:table("things"):order_by("id"):get()
    assert.are.equal(#rows, #back)
    for i = 1, #SPECIAL + 3 do
      local want, got = rows[i], back[i]
      for _, col in ipairs({ "big", "ratio", "body" }) do
        local w = want[col]
        if w == orm.null then w = nil end
        assert.are.equal(w, got[col], ("row %d column %s"):format(i, col))
        if w ~= nil then assert.are.equal(math.type(w), math.type(got[col]), col) end
      end
      local flag = want.flag
      if flag == orm.null then assert.is_nil(got.flag) else assert.are.equal(flag, got.flag) end
      local data = want.data ~= orm.null and tostring(want.data) or nil
      assert.are.equal(data, got.data, "row " .. i .. " data")
    end
    -- through the model: booleans and json as Lua values
    local t = Thing:query({ connection = ds }):where("code", "c4"):first()
    assert.are.equal(true, t.flag)
    assert.are.equal("\0nul\0\255\1\t\n\\", t.data)
    t = Thing:query({ connection = ds }):where("code", "c5"):first()
    assert.are.same({ a = { 1, 2, { b = "\t" } } }, t.doc)
  end)

  it("a bad row inserts nothing and raises unique_violation", function()
    local rows = many({})
    rows[#rows].code = "c1"
    local err = helper.error_of(function() ds:table("things"):insert(rows) end)
    assert.are.equal("unique_violation", err.kind, tostring(err))
    assert.are.equal(0, ds:table("things"):count())
    -- the connection and the pool go on
    assert.are.equal(#rows - 1, ds:table("things"):insert({ table.unpack(rows, 1, #rows - 1) }).affected_rows)
  end)

  it("text with a NUL byte into a text column is refused and nothing is kept", function()
    local rows = many({})
    rows[#rows].body = "a\0b"
    if facts.name == "postgres" then
      local err = helper.error_of(function() ds:table("things"):insert(rows) end)
      assert.are.equal("invalid_argument", err.kind, tostring(err))
      assert.are.equal(0, ds:table("things"):count())
    else
      ds:table("things"):insert(rows) -- SQLite and MySQL text holds NUL bytes
      assert.are.equal("a\0b", ds:table("things"):where("code", "c" .. #rows):first().body)
    end
  end)

  it("rows whose columns differ go in several loads inside one transaction", function()
    local rows = many({})
    local n = #rows
    for i = n + 1, 2 * n do rows[i] = { code = "d" .. i, big = i } end
    rows[2 * n].code = "c1" -- fails in the second load
    assert.are.equal("unique_violation", helper.error_of(function() ds:table("things"):insert(rows) end).kind)
    assert.are.equal(0, ds:table("things"):count())
    rows[2 * n].code = "last"
    assert.are.equal(2 * n, ds:table("things"):insert(rows).affected_rows)
    assert.are.equal(n, ds:table("things"):where_null("body"):count())
  end)

  it("inside a transaction, a failed bulk insert can be caught and the rest kept", function()
    local rows = many({})
    rows[#rows].code = "c1"
    ds:transaction(function()
      ds:table("things"):insert({ code = "kept" })
      assert.is_false(pcall(function() ds:table("things"):insert(rows) end))
    end)
    assert.are.same({ "kept" }, ds:table("things"):pluck("code"))
  end)
end)
