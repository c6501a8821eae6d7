-- One query front end: the plain query and the model query offer every
-- method of the C query, and a model class starts a query with any builder
-- or read (the lists are derived from core.query_methods, never copied).
local orm = require("ormed")
local core = require("ormed.core")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, Item

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "fe_items", { { "id", "id" }, { "grp", "integer" }, { "name", "string" } })
    Item = orm.model("FeItem" .. drv.name, { table = "fe_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" } })
    ds:table("fe_items"):insert({ { grp = 1, name = "a" }, { grp = 1, name = "b" }, { grp = 2, name = "c" } })
  end)

  teardown(function()
    drv:drop_table(ds, "fe_items")
    ds:dispose()
  end)

  it("every method of the C query exists on the plain query, the model query and the class", function()
    local plain, mq = ds:table("fe_items"), Item:query()
    for name, kind in pairs(core.query_methods) do
      if name == "to_sql_for" then goto continue end -- the compiler's test hook
      assert.is_function(plain[name], "plain query: " .. name)
      assert.is_function(mq[name], "model query: " .. name)
      if kind ~= "other" then assert.is_function(Item[name], "class: " .. name) end
      ::continue::
    end
  end)

  it("offset and having start a query from the class, like limit", function()
    assert.are.same({ "b", "c" }, Item:offset(1):limit(5):order_by("name"):pluck("name"))
    local groups = Item:select("grp", "count(*) as n"):group_by("grp"):having("count(*)", ">", 1):get()
    assert.are.equal(1, #groups)
    assert.are.equal(1, groups[1].grp)
    assert.are.same({ "a", "b" }, Item:where_column("id", "<=", "id"):where("grp", 1)
      :oldest("name"):pluck("name"))
  end)
end)
