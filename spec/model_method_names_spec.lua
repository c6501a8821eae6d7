-- spec/model_method_names_spec.lua: columns named like instance methods
-- (load, save, update, delete, fill, to_table, ...). The field stays a
-- field on its instances (nil when NULL, never the method), and the model
-- layer's own calls (lazy relations, create, update, destroy,
-- update_or_create, to_table) keep working, on every driver.
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  describe("fields named like methods", function()
    local ds, Box, Item

    setup(function()
      ds = drv:data_source()
      drv:create_table(ds, "boxes", { { "id", "id" }, { "load", "integer" }, { "save", "string" },
        { "delete", "integer" }, { "update", "string" }, { "fill", "string" },
        { "refresh", "string" } })
      drv:create_table(ds, "items", { { "id", "id" }, { "box_id", "integer" },
        { "load", "integer" }, { "to_table", "string" } })
      Box = orm.model("Box", { table = "boxes", connection = ds.name,
        fields = { id = "integer", load = "integer", save = "string", delete = "integer",
          update = "string", fill = "string", refresh = "string" },
        relations = { items = orm.has_many("Item", { foreign_key = "box_id" }) } })
      Item = orm.model("Item", { table = "items", connection = ds.name,
        fields = { id = "integer", box_id = "integer", load = "integer", to_table = "string" },
        relations = { box = orm.belongs_to("Box", { foreign_key = "box_id" }) } })
    end)

    teardown(function()
      drv:drop_table(ds, "items")
      drv:drop_table(ds, "boxes")
      ds:dispose()
    end)

    before_each(function()
      ds:table("items"):delete()
      ds:table("boxes"):delete()
    end)

    it("creates and reads them as fields", function()
      local box = Box:create({ load = 7, save = "s", delete = 0, update = "u", fill = "f" })
      assert.are.equal(7, box.load)
      local again = Box:find(box.id)
      assert.are.equal(7, again.load)
      assert.are.equal("s", again.save)
      assert.are.equal(0, again.delete)
      assert.are.equal("u", again.update)
      assert.are.equal("f", again.fill)
      -- NULL reads as nil, not as the method of that name
      assert.is_nil(again.refresh)
      assert.is_nil(Box:create({}).load)
    end)

    it("loads a relation lazily and eagerly despite a 'load' column", function()
      local box = Box:create({ load = 3 })
      Item:create({ box_id = box.id, load = 1, to_table = "t1" })
      Item:create({ box_id = box.id, load = 2, to_table = "t2" })
      local fresh = Box:find(box.id)
      assert.are.equal(2, #fresh.items)
      local item = Item:query():order_by("id"):first()
      assert.are.equal(box.id, item.box.id)
      assert.are.equal(3, item.box.load)
      local eager = Box:with("items"):find(box.id)
      assert.are.equal(2, #eager.items)
      -- to_table goes through the class, also for loaded related rows
      local t = Box.methods.to_table(eager)
      assert.are.equal(3, t.load)
      assert.are.equal(2, #t.items)
      assert.are.same({ "t1", "t2" }, { t.items[1].to_table, t.items[2].to_table })
    end)

    it("saves, updates and deletes through the class methods", function()
      local box = Box:create({ load = 1 })
      local methods = Box.methods
      box.load = 2
      assert.is_true(methods.save(box))
      assert.is_true(methods.update(box, { load = 5, update = "again" }))
      assert.are.equal(5, Box:find(box.id).load)
      assert.are.equal("again", Box:find(box.id).update)
      local other = Box:update_or_create({ save = "key" }, { load = 9 })
      assert.are.equal(9, other.load)
      assert.are.equal(10, Box:update_or_create({ save = "key" }, { load = 10 }).load)
      assert.are.equal(10, Box:find(other.id).load)
      assert.are.equal(1, Box:destroy(other.id))
      assert.is_true(methods.delete(box))
      assert.are.equal(0, Box:count())
    end)
  end)
end)
