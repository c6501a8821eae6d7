-- One value decoder for every driver: the same decimal or datetime stored
-- on SQLite, PostgreSQL and MySQL reads back as the same Lua value, type
-- and value.
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds

  setup(function()
    ds = drv:data_source()
    drv:drop_table(ds, "amounts")
    ds:schema():create_table("amounts", function(t)
      t:id(); t:decimal("amount", 30, 10):nullable(); t:datetime("at"):nullable()
    end)
  end)

  teardown(function()
    drv:drop_table(ds, "amounts")
    ds:dispose()
  end)

  before_each(function() ds:execute("DELETE FROM amounts") end)

  local function read(col, value)
    ds:execute("DELETE FROM amounts")
    ds:table("amounts"):insert({ [col] = value })
    return ds:table("amounts"):first()[col]
  end

  -- stored text -> the Lua value every driver must give back
  local DECIMALS = {
    { "42", 42 }, { "42.0000000000", 42 }, { "-7", -7 }, { "0", 0 },
    { "0.5", 0.5 }, { "-12.25", -12.25 }, { "1234.5678", 1234.5678 },
    { "123456789012345", 123456789012345 }, -- integral: an integer
    { "9223372036854775807", math.maxinteger },
    { "0.0000000001", 1e-10 },
    { "12345.6789012345", 12345.6789012345 }, -- 15 significant digits: a double
  }
  -- more digits than a double holds: the exact text (SQLite's NUMERIC
  -- affinity keeps 15 digits of such a value: documented, checked below)
  local LONG = {
    { "1234567.891234567", "1234567.8912345670" },
    { "-99999999999999999999.9999999999", "-99999999999999999999.9999999999" },
    { "12345678901234567890", "12345678901234567890.0000000000" },
  }

  it("decimals read back with one type and value on every driver", function()
    for _, case in ipairs(DECIMALS) do
      local got = read("amount", case[1])
      assert.are.equal(case[2], got, case[1])
      assert.are.equal(math.type(case[2]), math.type(got), case[1])
    end
    for _, case in ipairs(LONG) do
      local got = read("amount", case[1])
      if drv.name == "sqlite" then
        assert.are.equal("float", math.type(got), case[1])
        assert.is_true(math.abs(got - tonumber(case[1])) <= math.abs(tonumber(case[1])) * 1e-15, case[1])
      else
        assert.are.equal("string", type(got), case[1])
        assert.are.equal(tonumber(case[2]), tonumber(got), case[1])
      end
    end
  end)

  it("datetimes read back as ISO 8601 UTC, fraction without trailing zeros", function()
    local CASES = {
      { "2024-05-06 07:08:09", "2024-05-06T07:08:09Z" },
      { "2024-05-06 07:08:09.5", "2024-05-06T07:08:09.5Z" },
      { "1999-12-31 23:59:59.123456", "1999-12-31T23:59:59.123456Z" },
      { "2024-02-29 00:00:00.000000", "2024-02-29T00:00:00Z" },
    }
    for _, case in ipairs(CASES) do
      assert.are.equal(case[2], read("at", case[1]), case[1])
    end
  end)
end)
