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

  it("builder methods return the query they were called on, plain or model, and chain", function()
    local plain, mq = ds:table("fe_items"), Item:query()
    for _, q in ipairs({ plain, mq }) do
      assert.are.equal(q, q:where("grp", 1))
      assert.are.equal(q, q:where_in("id", { 1, 2, 3 }))
      assert.are.equal(q, q:where(function(g)
        assert.are.equal(g, g:where("name", "a"))
        g:or_where("name", "b")
      end))
      assert.are.equal(q, q:order_by("name"):limit(5))
    end
    assert.are.same({ "a", "b" }, plain:pluck("name"))
    assert.are.same({ "a", "b" }, mq:pluck("name"))
    local err = helper.error_of(function() Item.query(Item):where() end)
    assert.are.equal("invalid_argument", err.kind)
  end)

  it("a plain query clones with its data source, and serves as a sub-query of both front ends", function()
    local base = ds:table("fe_items"):where("grp", 1)
    local copy = base:clone():where("name", "b")
    assert.are.same({ "a", "b" }, base:order_by("name"):pluck("name")) -- the copy's filter stays there
    assert.are.same({ "b" }, copy:pluck("name"))
    assert.are.equal("fe_items", copy:table_name())
    local sql, binds = copy:to_sql() -- the data source's dialect, with no argument
    assert.matches(drv.name == "postgres" and "%$2" or "%?", sql)
    assert.are.same({ 1, "b" }, binds)
    assert.matches("fe_items", tostring(copy))
    local ids = ds:table("fe_items"):select("id"):where("grp", 2)
    assert.are.same({ "c" }, ds:table("fe_items"):where_in("id", ids):pluck("name"))
    assert.are.same({ "c" }, Item:where_in("id", ids):pluck("name"))
    assert.are.same({ "a", "b" }, Item:where_not_in("id", ids):order_by("name"):pluck("name"))
    assert.are.equal(1, ds:table("fe_items"):where_exists(ids):where("name", "a"):count())
  end)

  it("a scope added to a model after it is defined is a class method too", function()
    Item.scopes.late_group = function(q, g) return q:where("grp", g) end
    assert.are.same({ "c" }, Item:late_group(2):pluck("name"))
    Item.scopes.late_group = nil
    assert.is_nil(Item.late_group)
  end)
end)
