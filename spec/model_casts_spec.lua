-- spec/model_casts_spec.lua: field types read back as the same Lua values
-- on SQLite, PostgreSQL and MySQL (boolean, integer, number, string, text,
-- json, date, datetime, blob).
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  describe("casts", function()
    local ds, Item

    setup(function()
      ds = drv:data_source()
      drv:create_table(ds, "items", { { "id", "id" }, { "flag", "boolean" }, { "qty", "integer" },
        { "big", "bigint" }, { "price", "number" }, { "ratio", "decimal" }, { "label", "string" },
        { "body", "text" }, { "settings", "json" }, { "born_on", "date" }, { "seen_at", "datetime" },
        { "data", "blob" } })
      Item = orm.model("Item", {
        connection = ds.name,
        fields = { id = "integer", flag = "boolean", qty = "integer", big = "integer",
          price = "number", ratio = "number", label = "string", body = "text",
          settings = "json", born_on = "date", seen_at = "datetime", data = "blob" },
      })
    end)

    teardown(function()
      drv:drop_table(ds, "items")
      ds:dispose()
    end)

    before_each(function()
      ds:table("items"):delete()
    end)

    local BYTES = "\0\1\2\255\254 binary \0 end"

    it("round-trips every type with the same Lua values", function()
      local item = Item:create({ flag = true, qty = 42, big = 9007199254740993, price = 2.5,
        ratio = 2.25, label = "héllo", body = string.rep("x", 5000),
        settings = { theme = "dark", sizes = { 1, 2, 3 }, nested = { on = false } },
        born_on = "1990-05-17", seen_at = "2024-02-03T04:05:06Z", data = BYTES })
      local got = Item:find(item.id)
      assert.are.equal(true, got.flag)
      assert.are.equal(42, got.qty)
      assert.are.equal("integer", math.type(got.qty))
      assert.are.equal(9007199254740993, got.big)
      assert.are.equal("integer", math.type(got.big))
      assert.are.equal(2.5, got.price)
      assert.are.equal(2.25, got.ratio)
      assert.are.equal("héllo", got.label)
      assert.are.equal(5000, #got.body)
      assert.are.same({ theme = "dark", sizes = { 1, 2, 3 }, nested = { on = false } }, got.settings)
      assert.are.equal("1990-05-17", got.born_on)
      assert.are.equal("2024-02-03T04:05:06Z", got.seen_at)
      assert.are.equal(BYTES, got.data)
      assert.are.equal("string", type(got.data))
    end)

    it("reads false booleans and absent values", function()
      local item = Item:create({ flag = false, qty = 0 })
      local got = Item:find(item.id)
      assert.are.equal(false, got.flag)
      assert.are.equal(0, got.qty)
      assert.is_nil(got.settings)
      assert.is_nil(got.seen_at)
      assert.is_nil(got.data)
    end)

    it("keeps fractional seconds and normalises datetime input", function()
      local a = Item:create({ seen_at = "2024-02-03 04:05:06.250" })
      local b = Item:create({ seen_at = 86400 * 365 })
      assert.are.equal("2024-02-03T04:05:06.25Z", Item:find(a.id).seen_at)
      assert.are.equal("1971-01-01T00:00:00Z", Item:find(b.id).seen_at)
      local err = helper.error_of(function() Item:create({ seen_at = "next tuesday" }) end)
      assert.are.equal("invalid_argument", err.kind)
      err = helper.error_of(function() Item:create({ seen_at = "2024-02-03T04:05:06+02:00" }) end)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("filters on datetime and date fields with ISO strings", function()
      Item:create({ label = "old", seen_at = "2020-01-01T00:00:00Z", born_on = "2000-01-01" })
      Item:create({ label = "new", seen_at = "2024-06-01T12:00:00Z", born_on = "2010-01-01" })
      assert.are.equal("new", Item:where("seen_at", ">", "2023-01-01T00:00:00Z"):first().label)
      assert.are.equal("old", Item:where("seen_at", "2020-01-01T00:00:00Z"):first().label)
      assert.are.equal(1, Item:where_between("seen_at", "2019-01-01T00:00:00Z",
        "2021-01-01T00:00:00Z"):count())
      assert.are.equal(1, Item:where_in("seen_at", { "2024-06-01T12:00:00Z" }):count())
      assert.are.equal("new", Item:where("born_on", ">", "2005-01-01"):first().label)
      -- epoch seconds are converted like assigned values
      assert.are.equal("new", Item:where("seen_at", ">", 1577836800 + 3600):first().label)
      assert.are.equal(2, Item:where("seen_at", ">=", 1577836800):count())
      assert.are.equal(1, Item:where({ { "seen_at", "<", 1577836800 + 3600 } }):count())
      assert.are.equal("new", Item:where("label", "like", "ne%"):first().label)
    end)

    it("compares blobs as bytes in filters", function()
      Item:create({ label = "b", data = BYTES })
      assert.are.equal("b", Item:where("data", BYTES):first().label)
    end)

    it("tracks json changed in place and saves it", function()
      local item = Item:create({ settings = { theme = "dark", list = { 1 } } })
      local got = Item:find(item.id)
      assert.is_false(got:is_dirty())
      assert.are.equal(got.settings, got.settings) -- decoded once
      got.settings.theme = "light"
      table.insert(got.settings.list, 2)
      assert.is_true(got:is_dirty("settings"))
      got:save()
      assert.is_false(got:is_dirty())
      assert.are.same({ theme = "light", list = { 1, 2 } }, Item:find(item.id).settings)
    end)

    it("stores json scalars, arrays and null", function()
      local a = Item:create({ settings = { 1, "two", orm.null, true } })
      local b = Item:create({ settings = "just text" })
      local c = Item:create({ settings = orm.json.array() })
      assert.are.same({ 1, "two", orm.null, true }, Item:find(a.id).settings)
      assert.are.equal("just text", Item:find(b.id).settings)
      assert.are.equal("[]", orm.json.encode(Item:find(c.id).settings))
      local got = Item:find(a.id)
      got.settings = nil
      got:save()
      assert.is_nil(Item:find(a.id).settings)
    end)

    it("casts plucked values", function()
      Item:create({ flag = true })
      Item:create({ flag = false })
      local flags = Item:query():order_by("id"):pluck("flag")
      assert.are.same({ true, false }, flags)
    end)

    it("reads bools stored as integers by other writers", function()
      ds:table("items"):insert({ flag = 1, qty = 7 })
      local got = Item:where("qty", 7):first()
      assert.are.equal(true, got.flag)
    end)
  end)
end)
