-- spec/find_path_spec.lua: Model:find(id) runs a cached statement on the
-- data source's pool when nothing else decides; everything that does decide
-- (a transaction of the running coroutine, a scope registered or a global
-- scope added later, the default connection or the model's connection
-- changing, a disposed data source, a non-integer key) is still honoured,
-- on every driver, also once find has remembered its route.
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  local ds, Item

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "fp_items", { { "id", "id" }, { "grp", "integer" }, { "name", "string" } })
    Item = orm.model("FpItem" .. drv.name, { table = "fp_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" } })
    ds:table("fp_items"):insert({ { grp = 1, name = "a" }, { grp = 2, name = "b" } })
  end)

  teardown(function()
    drv:drop_table(ds, "fp_items")
    ds:dispose()
  end)

  it("finds by an integer key, a numeric string, and nothing for other keys", function()
    assert.are.equal("a", Item:find(1).name)
    assert.are.equal("b", Item:find("2").name)
    assert.is_nil(Item:find(99))
    assert.is_nil(Item:find("x"))
    assert.is_nil(Item:find(1.5))
  end)

  it("inside a transaction, reads through the transaction's connection", function()
    local id
    local ok = pcall(ds.transaction, ds, function(tx)
      id = tx:table("fp_items"):insert_get_id({ grp = 3, name = "t" })
      assert.are.equal("t", Item:find(id).name) -- not committed: only tx sees it
      ds:table("fp_items"):where("id", id):update({ name = "t2" })
      assert.are.equal("t2", Item:find(id).name)
      error("roll back")
    end)
    assert.is_false(ok)
    assert.is_nil(Item:find(id))
  end)

  it("honours a scope registered on the data source after finds were cached", function()
    assert.are.equal("a", Item:find(1).name)
    ds.context.scope_registry:register_scope(Item, function(q) q:where("grp", 2) end, "fp_grp")
    assert.is_nil(Item:find(1))
    assert.are.equal("b", Item:find(2).name)
    assert.is_true(ds.context.scope_registry:remove_scope(Item, "fp_grp"))
    assert.are.equal("a", Item:find(1).name)
  end)

  it("a model on the default connection follows set_default_connection", function()
    local other = drv:data_source() -- on a server, the same database: tell them by listeners
    local seen = {}
    ds:listen(function(e) seen[#seen + 1] = "ds:" .. e.sql end)
    other:listen(function(e) seen[#seen + 1] = "other:" .. e.sql end)
    local Loose = orm.model("FpLoose" .. drv.name, { table = "fp_items",
      fields = { id = "integer", grp = "integer", name = "string" } })
    local manager = orm.ConnectionManager.instance
    local before = manager:default_connection_name()
    manager:set_default_connection(ds.name)
    assert.are.equal("a", Loose:find(1).name)
    manager:set_default_connection(other.name)
    if drv.name == "sqlite" then -- its own in-memory database
      assert.has_error(function() Loose:find(1) end)
    else
      assert.are.equal("a", Loose:find(1).name)
    end
    assert.matches("^ds:SELECT", seen[1])
    assert.matches("^other:SELECT", seen[#seen])
    if before then manager:set_default_connection(before) end
    other:dispose()
  end)

  it("honours a global scope added after finds were cached", function()
    local Scoped = orm.model("FpScoped" .. drv.name, { table = "fp_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" } })
    assert.are.equal("a", Scoped:find(1).name)
    assert.are.equal("a", Scoped:find(1).name) -- the remembered route
    Scoped:add_global_scope("only2", function(q) q:where("grp", 2) end)
    assert.is_nil(Scoped:find(1))
    assert.are.equal("b", Scoped:find(2).name)
  end)

  it("follows the model's connection when it is changed after finds", function()
    local other = drv:data_source()
    local seen = {}
    ds:listen(function(e) seen[#seen + 1] = "ds:" .. e.sql end)
    other:listen(function(e) seen[#seen + 1] = "other:" .. e.sql end)
    local Moved = orm.model("FpMoved" .. drv.name, { table = "fp_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" } })
    assert.are.equal("a", Moved:find(1).name)
    assert.are.equal("a", Moved:find(1).name)
    Moved.connection = other.name
    if drv.name == "sqlite" then -- its own in-memory database: no such table there
      assert.has_error(function() Moved:find(1) end)
    else
      assert.are.equal("a", Moved:find(1).name)
    end
    assert.matches("^ds:SELECT", seen[1])
    assert.matches("^ds:SELECT", seen[2])
    assert.matches("^other:SELECT", seen[#seen])
    Moved.connection = ds.name
    assert.are.equal("a", Moved:find(1).name)
    assert.matches("^ds:SELECT", seen[#seen])
    other:dispose()
  end)

  it("raises not_initialized on a disposed data source", function()
    local gone = drv:data_source()
    drv:create_table(gone, "fp_gone", { { "id", "id" } })
    local Gone = orm.model("FpGone" .. drv.name, { table = "fp_gone", connection = gone,
      fields = { id = "integer" } })
    assert.is_nil(Gone:find(12345))
    drv:drop_table(gone, "fp_gone")
    gone:dispose()
    local err = helper.error_of(function() Gone:find(1) end)
    assert.are.equal("not_initialized", err.kind, tostring(err))
  end)
end)
