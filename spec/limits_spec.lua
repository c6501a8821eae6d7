-- Statements at their size limits, on every driver: no statement ormed
-- builds or is given can break its connection (libpq 15 drops the
-- connection when a statement has more than 7,498 parameters); lists too
-- long for one statement either work (PostgreSQL: one array parameter) or
-- raise invalid_argument naming the limit, and the connection stays usable,
-- inside a transaction too.
local orm = require("ormed")
local core = require("ormed.core")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, facts

  local function placeholders(n)
    return string.rep("?", n, ", ")
  end

  local function ids(n, from)
    local list = {}
    for i = 1, n do list[i] = (from or 0) + i end
    return list
  end

  local function invalid_naming_limit(f)
    local err = helper.error_of(f)
    assert.are.equal("invalid_argument", err.kind, tostring(err))
    assert.truthy(tostring(err.message):find(tostring(facts.max_params), 1, true), tostring(err))
    return err
  end

  setup(function()
    ds = drv:data_source()
    facts = core.dialect(ds:dialect())
    drv:create_table(ds, "wide", {
      { "id", "id" }, { "a", "integer" }, { "b", "string" }, { "c", "integer" },
      { "d", "string" }, { "e", "integer" },
    })
  end)

  teardown(function()
    drv:drop_table(ds, "wide")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM wide")
  end)

  it("inserts 2,000 rows of 5 columns, and 20,000, in statements of the dialect's size", function()
    for _, n in ipairs({ 2000, 20000 }) do
      ds:execute("DELETE FROM wide")
      local rows, statements = {}, 0
      for i = 1, n do rows[i] = { a = i, b = "r" .. i, c = i % 7, d = "x", e = -i } end
      local stop = ds:listen(function(ev)
        if ev.sql:find("^INSERT") or ev.sql:find("^COPY") then
          statements = statements + 1
          assert.is_true(#ev.bindings <= math.min(facts.insert_batch, facts.max_params))
        end
      end)
      local r = ds:table("wide"):insert(rows)
      stop()
      assert.are.equal(n, r.affected_rows)
      assert.are.equal(n, ds:table("wide"):count())
      assert.are.equal(n * (n + 1) // 2, ds:table("wide"):sum("a"))
      assert.is_true(statements >= 1)
    end
  end)

  it("runs raw SQL with exactly the parameter limit, refuses one more and stays usable", function()
    local n = facts.max_params
    local rows = ds:select("SELECT COUNT(*) AS n FROM wide WHERE id IN (" .. placeholders(n) .. ")", ids(n))
    assert.are.equal(0, tonumber(rows[1].n))
    invalid_naming_limit(function()
      ds:select("SELECT COUNT(*) AS n FROM wide WHERE id IN (" .. placeholders(n + 1) .. ")", ids(n + 1))
    end)
    assert.are.equal(1, ds:execute("INSERT INTO wide (a) VALUES (?)", { 1 }).affected_rows)
  end)

  it("refuses too many bindings inside a transaction without losing it", function()
    ds:transaction(function()
      ds:table("wide"):insert({ a = 1 })
      invalid_naming_limit(function()
        ds:select("SELECT id FROM wide WHERE id IN (" .. placeholders(facts.max_params + 1) .. ")",
          ids(facts.max_params + 1))
      end)
      ds:table("wide"):insert({ a = 2 })
    end)
    assert.are.equal(2, ds:table("wide"):count())
  end)

  it("where_in and where_not_in just under and over the parameter limit", function()
    ds:table("wide"):insert({ { a = 1 }, { a = 2 }, { a = 3 } })
    local under = ids(facts.max_params - 1, 10) -- leaves room for one more binding
    under[#under] = 2
    assert.are.equal(1, ds:table("wide"):where_in("a", under):count())
    assert.are.equal(2, ds:table("wide"):where_not_in("a", under):count())
    local over = ids(facts.max_params + 1, 10)
    over[#over] = 3
    if facts.array_in_over > 0 then
      assert.are.equal(1, ds:table("wide"):where_in("a", over):count())
      assert.are.equal(2, ds:table("wide"):where_not_in("a", over):count())
      assert.are.same({ 3 }, ds:table("wide"):where_in("a", over):pluck("a"))
    else
      invalid_naming_limit(function() ds:table("wide"):where_in("a", over):count() end)
      invalid_naming_limit(function() ds:table("wide"):where_not_in("a", over):get() end)
    end
    assert.are.equal(3, ds:table("wide"):count())
  end)

  it("where_in keeps every value's meaning in a long list", function()
    local strings = { 'it\'s', 'say "hi"', "back\\slash", "{brace}", "comma,", "NULL", " spaced ", "" }
    local rows = {}
    for i, s in ipairs(strings) do rows[i] = { a = i, b = s } end
    rows[#rows + 1] = { a = 99 } -- b is NULL
    ds:table("wide"):insert(rows)
    local list = {}
    for i = 1, 200 do list[i] = "filler" .. i end
    for _, s in ipairs(strings) do list[#list + 1] = s end
    local got = ds:table("wide"):where_in("b", list):order_by("a"):pluck("b")
    assert.are.same(strings, got)
    list[#list + 1] = orm.null
    assert.are.equal(#strings, ds:table("wide"):where_in("b", list):count())
    local nums = ids(300, 1000)
    nums[#nums + 1] = 99
    nums[#nums + 1] = 1
    assert.are.same({ 1, 99 }, ds:table("wide"):where_in("a", nums):order_by("a"):pluck("a"))
    assert.are.equal(#strings - 1, ds:table("wide"):where_not_in("a", nums):count())
  end)

  it("a statement built over the limit raises before anything is sent", function()
    local q = ds:table("wide")
    for i = 1, facts.max_params + 1 do q = q:or_where("a", i) end
    local sent = 0
    local stop = ds:listen(function() sent = sent + 1 end)
    invalid_naming_limit(function() q:count() end)
    stop()
    assert.are.equal(0, sent)
    assert.are.equal(0, ds:table("wide"):count())
  end)
end)

describe("PostgreSQL's parameter limit", function()
  it("is libpq 15's: 7,498 parameters fit one ParameterDescription message", function()
    assert.are.equal(7498, core.dialect("postgres").max_params)
    assert.is_true(core.dialect("postgres").insert_batch <= 7498)
  end)
end)
