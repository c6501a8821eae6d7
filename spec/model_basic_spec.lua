-- spec/model_basic_spec.lua: orm.model definitions, class methods,
-- instances (attributes, save of changed columns only, dirty tracking,
-- to_table), mass assignment, events and timestamps, on every driver.
local helper = require("spec.helper")
local orm = require("ormed")
local model_mod = require("ormed.model")

describe("orm.model definitions", function()
  it("derives the table name and primary key", function()
    assert.are.equal("users", orm.model("User", {}).table)
    assert.are.equal("blog_posts", orm.model("BlogPost", {}).table)
    assert.are.equal("categories", orm.model("Category", {}).table)
    assert.are.equal("boxes", orm.model("Box", {}).table)
    local m = orm.model("Thing", { table = "stuff", primary_key = "code" })
    assert.are.equal("stuff", m.table)
    assert.are.equal("code", m.primary_key)
  end)

  it("refuses bad definitions with invalid_argument", function()
    local cases = {
      function() orm.model("", {}) end,
      function() orm.model("X", { fields = { a = "money" } }) end,
      function() orm.model("X", { colour = "red" }) end,
      function() orm.model("X", { relations = { a = { kind = "has_many" } } }) end,
      function() orm.model("X", { scopes = { a = 1 } }) end,
      function() orm.model("X", { fillable = "name" }) end,
    }
    for i, f in ipairs(cases) do
      local err = helper.error_of(f)
      assert.are.equal("invalid_argument", err.kind, "case " .. i)
    end
    local err = helper.error_of(function() orm.model("X", { fields = { a = "money" } }) end)
    assert.matches("unknown type 'money'", err.message)
  end)

  it("takes custom timestamp and soft delete columns", function()
    local m = orm.model("Stamp", { timestamps = { created_at = "made_at", updated_at = false },
      soft_deletes = "gone_at" })
    assert.are.equal("made_at", m.created_at)
    assert.is_nil(m.updated_at)
    assert.are.equal("gone_at", m.soft_delete)
    assert.are.equal("datetime", m.fields.made_at)
    assert.are.equal("datetime", m.fields.gone_at)
    assert.is_nil(m.fields.updated_at)
  end)

  it("builds unsaved instances with new() and Model(attrs)", function()
    local User = orm.model("User", { fields = { name = "string" } })
    local a, b = User:new({ name = "a" }), User({ name = "b" })
    assert.are.equal("a", a.name)
    assert.are.equal("b", b.name)
    assert.is_true(model_mod.is_instance(a, User))
    assert.is_false(model_mod.is_instance({}, User))
  end)
end)

helper.each_driver(function(drv)
  describe("models", function()
    local ds, User, events, clock

    setup(function()
      ds = drv:data_source()
      orm.ConnectionManager.instance:set_default_connection(ds.name)
      drv:create_table(ds, "users", { { "id", "id" }, { "name", "string", "NOT NULL" },
        { "email", "string" }, { "credits", "integer" }, { "active", "boolean" },
        { "password", "string" }, { "is_admin", "boolean" }, { "created_at", "datetime" },
        { "updated_at", "datetime" } })
      clock = model_mod.clock
    end)

    teardown(function()
      model_mod.clock = clock
      drv:drop_table(ds, "users")
      ds:dispose()
    end)

    before_each(function()
      ds:table("users"):delete()
      events = {}
      User = orm.model("User", {
        fields = { id = "integer", name = "string", email = "string", credits = "integer",
          active = "boolean", password = "string", is_admin = "boolean" },
        timestamps = true,
        fillable = { "name", "email", "credits", "active", "password" },
        hidden = { "password" },
        methods = { greeting = function(self) return "hi " .. self.name end },
      })
    end)

    -- Runs fn and returns the SQL statements it sent.
    local function statements(fn)
      local list = {}
      local stop = ds:listen(function(e) list[#list + 1] = e end)
      local ok, err = pcall(fn)
      stop()
      assert(ok, err)
      return list
    end

    it("creates, finds and reads attributes with their types", function()
      local u = User:create({ name = "ann", email = "ann@x.org", credits = 5, active = true })
      assert.are.equal("integer", math.type(u.id))
      local found = User:find(u.id)
      assert.are.equal("ann", found.name)
      assert.are.equal(5, found.credits)
      assert.are.equal("integer", math.type(found.credits))
      assert.are.equal(true, found.active)
      assert.is_nil(found.is_admin)
      assert.are.equal("hi ann", found:greeting())
      assert.is_nil(User:find(u.id + 1000))
    end)

    it("all, first, count, where and query", function()
      for i = 1, 3 do User:create({ name = "u" .. i, credits = i }) end
      assert.are.equal(3, #User:all())
      assert.are.equal(3, User:count())
      assert.are.equal(2, User:where("credits", ">=", 2):count())
      assert.are.equal("u3", User:query():order_by("credits", "desc"):first().name)
      local names = User:query():order_by("name"):pluck("name")
      assert.are.same({ "u1", "u2", "u3" }, names)
      assert.are.equal("u2", User:where({ credits = 2 }):first().name)
    end)

    it("saves only the changed columns", function()
      local u = User:create({ name = "bob", email = "bob@x.org", credits = 1 })
      u = User:find(u.id)
      u.credits = u.credits + 10
      local sent = statements(function() assert.is_true(u:save()) end)
      assert.are.equal(1, #sent)
      assert.matches("^UPDATE", sent[1].sql)
      assert.matches("credits", sent[1].sql)
      assert.matches("updated_at", sent[1].sql)
      assert.is_nil(sent[1].sql:find("email", 1, true))
      assert.is_nil(sent[1].sql:find("name", 1, true))
      assert.are.equal(11, User:find(u.id).credits)
      -- nothing changed: nothing sent
      sent = statements(function() assert.is_true(u:save()) end)
      assert.are.equal(0, #sent)
    end)

    it("tracks dirty attributes", function()
      local u = User:find(User:create({ name = "cy", credits = 3 }).id)
      assert.is_false(u:is_dirty())
      u.credits = 3
      assert.is_false(u:is_dirty("credits"))
      u.credits = 4
      u.email = nil
      u.name = "cyd"
      assert.is_true(u:is_dirty())
      assert.is_true(u:is_dirty("credits"))
      assert.is_false(u:is_dirty("email"))
      u.name = "cy"
      assert.are.same({ credits = 4 }, u:get_dirty())
      assert.are.equal(3, u:get_original("credits"))
      u.name = nil
      assert.are.equal(orm.null, u:get_dirty().name)
      assert.is_nil(u.name)
      u.name = "cy"
      u:save()
      assert.is_false(u:is_dirty())
      assert.are.equal(4, u.credits)
    end)

    it("to_table leaves hidden fields out", function()
      local u = User:create({ name = "di", password = "secret", credits = 2 })
      local t = User:find(u.id):to_table()
      assert.are.equal("di", t.name)
      assert.are.equal(2, t.credits)
      assert.is_nil(t.password)
      assert.are.equal("secret", User:find(u.id).password)
      assert.is_nil(getmetatable(t))
    end)

    it("refresh reloads from the database", function()
      local u = User:create({ name = "ed", credits = 1 })
      ds:table("users"):where("id", u.id):update({ credits = 99 })
      u.name = "changed"
      assert.are.equal(u, u:refresh())
      assert.are.equal(99, u.credits)
      assert.are.equal("ed", u.name)
      assert.is_false(u:is_dirty())
      ds:table("users"):where("id", u.id):delete()
      local err = helper.error_of(function() u:refresh() end)
      assert.are.equal("model_not_found", err.kind)
      assert.matches("User not found %(id = " .. u.id .. "%)", err.message)
    end)

    it("update, delete and destroy", function()
      local a = User:create({ name = "a", credits = 1 })
      local b = User:create({ name = "b", credits = 1 })
      local c = User:create({ name = "c", credits = 1 })
      assert.is_true(a:update({ credits = 7 }))
      assert.are.equal(7, User:find(a.id).credits)
      assert.is_true(a:delete())
      assert.is_nil(User:find(a.id))
      assert.are.equal(2, User:destroy({ b.id, c.id, 12345 }))
      assert.are.equal(0, User:count())
    end)

    it("first_or_create and update_or_create", function()
      local a = User:first_or_create({ name = "fo" }, { credits = 4 })
      assert.are.equal(4, a.credits)
      local again = User:first_or_create({ name = "fo" }, { credits = 8 })
      assert.are.equal(a.id, again.id)
      assert.are.equal(4, again.credits)
      local u = User:update_or_create({ name = "fo" }, { credits = 9 })
      assert.are.equal(a.id, u.id)
      assert.are.equal(9, User:find(a.id).credits)
      local n = User:update_or_create({ name = "new" }, { credits = 1 })
      assert.are_not.equal(a.id, n.id)
      assert.are.equal(2, User:count())
    end)

    it("upserts rows on a unique column", function()
      drv:create_table(ds, "tags", { { "id", "id" }, { "slug", "string", "NOT NULL UNIQUE" },
        { "hits", "integer" }, { "created_at", "datetime" }, { "updated_at", "datetime" } })
      local Tag = orm.model("Tag", { fields = { hits = "integer" }, timestamps = true })
      Tag:upsert({ { slug = "a", hits = 1 }, { slug = "b", hits = 2 } }, "slug")
      Tag:upsert({ { slug = "a", hits = 10 }, { slug = "c", hits = 3 } }, { "slug" }, { "hits" })
      local rows = Tag:query():order_by("slug"):get()
      assert.are.equal(3, #rows)
      assert.are.equal(10, rows[1].hits)
      assert.are.equal(2, rows[2].hits)
      assert.is_string(rows[3].created_at)
      drv:drop_table(ds, "tags")
    end)

    it("raises model_not_found from find_or_fail and first_or_fail", function()
      local err = helper.error_of(function() User:find_or_fail(424242) end)
      assert.are.equal("model_not_found", err.kind)
      assert.matches("User", err.message)
      assert.matches("424242", err.message)
      err = helper.error_of(function() User:where("name", "nobody"):first_or_fail() end)
      assert.are.equal("model_not_found", err.kind)
      local u = User:create({ name = "here" })
      assert.are.equal(u.id, User:find_or_fail(u.id).id)
    end)

    it("raises mass_assignment for guarded attributes and writes nothing", function()
      local err = helper.error_of(function() User:create({ name = "x", is_admin = true }) end)
      assert.are.equal("mass_assignment", err.kind)
      assert.matches("is_admin", err.message)
      assert.are.equal(0, User:count())
      local u = User:create({ name = "y" })
      err = helper.error_of(function() u:update({ is_admin = true }) end)
      assert.are.equal("mass_assignment", err.kind)
      err = helper.error_of(function() u:fill({ name = "z", is_admin = true }) end)
      assert.are.equal("mass_assignment", err.kind)
      assert.are.equal("y", u.name)
      -- direct assignment is not mass assignment
      u.is_admin = true
      u:save()
      assert.is_true(User:find(u.id).is_admin)
      local Guarded = orm.model("User", { guarded = { "is_admin" } })
      err = helper.error_of(function() Guarded:create({ name = "g", is_admin = true }) end)
      assert.are.equal("mass_assignment", err.kind)
      assert.are.equal("g2", Guarded:create({ name = "g2", credits = 1 }).name)
    end)

    it("refuses values of the wrong type", function()
      local u = User:new()
      local err = helper.error_of(function() u.credits = "many" end)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("credits", err.message)
      err = helper.error_of(function() u.active = "yes" end)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("fires events in order and lets *ing handlers cancel", function()
      for _, ev in ipairs({ "saving", "creating", "created", "updating", "updated", "saved",
        "deleting", "deleted" }) do
        User:on(ev, function(inst) events[#events + 1] = ev .. ":" .. inst.name end)
      end
      local u = User:create({ name = "ev" })
      assert.are.same({ "saving:ev", "creating:ev", "created:ev", "saved:ev" }, events)
      events = {}
      u.credits = 2
      u:save()
      assert.are.same({ "saving:ev", "updating:ev", "updated:ev", "saved:ev" }, events)
      events = {}
      u:delete()
      assert.are.same({ "deleting:ev", "deleted:ev" }, events)

      local stop = User:on("creating", function(inst) return inst.name ~= "blocked" end)
      local b = User:new({ name = "blocked" })
      assert.is_false(b:save())
      assert.is_false(User:create({ name = "blocked" }))
      assert.are.equal(0, User:where("name", "blocked"):count())
      stop()
      assert.is_true(b:save())

      User:on("updating", function() return false end)
      b.credits = 5
      assert.is_false(b:save())
      assert.is_nil(User:find(b.id).credits)
      User:on("deleting", function() return false end)
      assert.is_false(b:delete())
      assert.is_not_nil(User:find(b.id))

      local err = helper.error_of(function() User:on("exploding", function() end) end)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("lets a saving handler change attributes before the write", function()
      User:on("saving", function(inst) inst.email = inst.name .. "@auto" end)
      local u = User:create({ name = "hook" })
      assert.are.equal("hook@auto", User:find(u.id).email)
    end)

    it("fills timestamps on create and update", function()
      model_mod.clock = function() return 1700000000 end
      local u = User:create({ name = "ts" })
      assert.are.equal("2023-11-14T22:13:20Z", u.created_at)
      assert.are.equal("2023-11-14T22:13:20Z", u.updated_at)
      local loaded = User:find(u.id)
      assert.are.equal("2023-11-14T22:13:20Z", loaded.created_at)
      model_mod.clock = function() return 1700000100.5 end
      loaded.credits = 1
      loaded:save()
      loaded = User:find(u.id)
      assert.are.equal("2023-11-14T22:13:20Z", loaded.created_at)
      assert.are.equal("2023-11-14T22:15:00.5Z", loaded.updated_at)
      model_mod.clock = function() return 1700000200 end
      User:where("id", u.id):update({ credits = 2 })
      assert.are.equal("2023-11-14T22:16:40Z", User:find(u.id).updated_at)
      model_mod.clock = clock
    end)

    it("increments and decrements through queries", function()
      local u = User:create({ name = "inc", credits = 10 })
      User:where("id", u.id):increment("credits", 5)
      assert.are.equal(15, User:find(u.id).credits)
      User:where("id", u.id):decrement("credits")
      assert.are.equal(14, User:find(u.id).credits)
    end)

    it("paginates and chunks instances", function()
      for i = 1, 5 do User:create({ name = "p" .. i, credits = i }) end
      local page = User:query():order_by("credits"):paginate({ page = 2, per_page = 2 })
      assert.are.equal(5, page.total)
      assert.are.equal(3, page.last_page)
      assert.are.equal("p3", page.items[1].name)
      assert.are.equal("hi p4", page.items[2]:greeting())
      local seen = {}
      User:query():order_by("credits"):chunk(2, function(list)
        for _, x in ipairs(list) do seen[#seen + 1] = x.credits end
        return #seen < 4
      end)
      assert.are.same({ 1, 2, 3, 4 }, seen)
    end)

    it("reports an unknown query method", function()
      local err = helper.error_of(function() User:query():wherever("x") end)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("wherever", err.message)
    end)
  end)
end)
