-- spec/model_connections_spec.lua: models on several databases at once.
-- For each driver the "primary" connection is that driver and the
-- "analytics" one a separate SQLite file, so two real databases hold the
-- same tables with different rows: which rows come back shows which
-- connection a call used.
local helper = require("spec.helper")
local orm = require("ormed")

local USERS = { { "id", "id" }, { "name", "string" } }
local POSTS = { { "id", "id" }, { "user_id", "integer" }, { "title", "string" } }

local files = 0

-- A SQLite driver of the helper's kind (whatever ORMED_TEST_DRIVERS says),
-- on fresh files, for the second database.
local function sqlite_like(drv)
  return setmetatable({ name = "sqlite", adapter = function()
    files = files + 1
    return orm.SqliteDriverAdapter.file(string.format("%s/ormed_conn_%d_%d.sqlite",
      os.getenv("ORMED_TEST_TMP") or "/tmp", os.time(), files))
  end }, getmetatable(drv))
end

helper.each_driver(function(drv)
  describe("connections", function()
    local manager = orm.ConnectionManager.instance
    local primary, analytics, User, Post, Event
    local sqlite = sqlite_like(drv)

    setup(function()
      primary = drv:data_source("primary")
      analytics = orm.DataSource({ name = "analytics", driver = sqlite.adapter() }):init()
      manager:set_default_connection("primary")
      for _, pair in ipairs({ { drv, primary }, { sqlite, analytics } }) do
        pair[1]:create_table(pair[2], "users", USERS)
        pair[1]:create_table(pair[2], "posts", POSTS)
      end
      sqlite:create_table(analytics, "events", { { "id", "id" }, { "type", "string" } })
    end)

    teardown(function()
      drv:drop_table(primary, "users")
      drv:drop_table(primary, "posts")
      primary:dispose()
      analytics:dispose()
    end)

    before_each(function()
      for _, ds in ipairs({ primary, analytics }) do
        ds:table("users"):delete()
        ds:table("posts"):delete()
      end
      analytics:table("events"):delete()
      User = orm.model("User", { fields = { id = "integer", name = "string" },
        relations = { posts = orm.has_many("Post") } })
      Post = orm.model("Post", { fields = { user_id = "integer", title = "string" },
        relations = { user = orm.belongs_to("User") } })
      Event = orm.model("Event", { connection = "analytics", fields = { type = "string" } })
      -- same ids, different rows on each side
      for _, ds in ipairs({ primary, analytics }) do
        local id = ds:table("users"):insert_get_id({ name = ds.name .. "-ann" })
        ds:table("posts"):insert({ { user_id = id, title = ds.name .. "-p1" },
          { user_id = id, title = ds.name .. "-p2" } })
      end
    end)

    local function names(list)
      local t = {}
      for i, x in ipairs(list) do t[i] = x.name or x.title or x.type end
      table.sort(t)
      return t
    end

    it("uses the default connection, or the one named", function()
      assert.are.same({ "primary-ann" }, names(User:all()))
      assert.are.same({ "analytics-ann" }, names(User:all({ connection = "analytics" })))
      assert.are.same({ "analytics-ann" }, names(User:query({ connection = "analytics" }):get()))
      assert.are.same({ "analytics-ann" }, names(User:query({ connection = analytics }):get()))
      assert.are.same({ "analytics-ann" }, names(analytics:query(User):get()))
      assert.are.equal("analytics-ann", User:first({ connection = "analytics" }).name)
      assert.are.equal(1, User:count({ connection = "analytics" }))
      local id = analytics:table("users"):pluck("id")[1]
      assert.are.equal("analytics-ann", User:find(id, { connection = "analytics" }).name)
    end)

    it("follows the manager's default connection", function()
      manager:set_default_connection("analytics")
      local ok, err = pcall(function()
        assert.are.same({ "analytics-ann" }, names(User:all()))
      end)
      manager:set_default_connection("primary")
      assert(ok, err)
      assert.are.same({ "primary-ann" }, names(User:all()))
    end)

    it("uses a model's own connection as its default", function()
      Event:create({ type = "page_view" })
      Event:create({ type = "click" }, { connection = "analytics" })
      assert.are.equal(2, analytics:table("events"):count())
      assert.are.same({ "page_view" }, names(Event:query({ connection = "analytics" })
        :where_equals("type", "page_view"):get()))
      assert.are.same({ "click", "page_view" }, names(Event:all()))
    end)

    it("raises connection_not_found for unknown names", function()
      local err = helper.error_of(function() User:all({ connection = "nope" }) end)
      assert.are.equal("connection_not_found", err.kind)
      assert.matches("analytics", err.message)
      err = helper.error_of(function() orm.model("Lost", { connection = "nowhere" }):all() end)
      assert.are.equal("connection_not_found", err.kind)
      err = helper.error_of(function() User:all({ connection = 42 }) end)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("raises not_initialized for a data source not initialised", function()
      local idle = orm.DataSource({ name = "idle", driver = sqlite.adapter() })
      local err = helper.error_of(function() User:all({ connection = idle }) end)
      assert.are.equal("not_initialized", err.kind)
    end)

    it("eager-loads relations on the parent query's connection", function()
      local u = User:query({ connection = "analytics" }):with({ "posts" }):first()
      assert.are.same({ "analytics-p1", "analytics-p2" }, names(u.posts))
      local p = Post:query({ connection = "analytics" }):with("user"):first()
      assert.are.equal("analytics-ann", p.user.name)
      -- lazy loads too
      local lazy = User:first({ connection = "analytics" })
      assert.are.same({ "analytics-p1", "analytics-p2" }, names(lazy.posts))
    end)

    it("loads relations from another connection with load(rels, opts)", function()
      local p = Post:first()
      assert.are.equal("primary-ann", p.user.name)
      p:load({ "user" }, { connection = "analytics" })
      assert.are.equal("analytics-ann", p.user.name)
      assert.are.equal("primary", p:connection_name())
    end)

    it("remembers the connection an instance was loaded from or created on", function()
      local u = User:first({ connection = "analytics" })
      assert.are.equal("analytics", u:connection_name())
      u.name = "renamed"
      u:save()
      assert.are.same({ "renamed" }, names(analytics:table("users"):get()))
      assert.are.same({ "primary-ann" }, names(primary:table("users"):get()))
      local c = User:create({ name = "made" }, { connection = "analytics" })
      assert.are.equal("analytics", c:connection_name())
      c.name = "made2"
      c:save()
      assert.are.equal(1, analytics:table("users"):where("name", "made2"):count())
      assert.are.equal(0, primary:table("users"):where("name", "made2"):count())
      assert.is_true(c:delete())
      assert.are.equal(0, analytics:table("users"):where("name", "made2"):count())
      assert.are.equal("primary", User:first():connection_name())
      assert.are.equal("primary", User:new():connection_name())
      assert.are.equal("analytics", Event:new():connection_name())
    end)

    it("moves an instance with set_connection", function()
      local u = User:first({ connection = "analytics" })
      assert.are.equal(u, u:set_connection("primary"))
      assert.are.equal("primary", u:connection_name())
      -- the compensating-delete pattern: same id, other database
      local id = u.id
      u:delete()
      assert.are.equal(0, primary:table("users"):where("id", id):count())
      assert.are.equal(1, analytics:table("users"):where("id", id):count())
      local fresh = User:new({ name = "routed" }):set_connection("analytics")
      fresh:save()
      assert.are.equal(1, analytics:table("users"):where("name", "routed"):count())
      assert.are.equal("analytics", fresh:connection_name())
      assert.are.equal("primary", fresh:set_connection(nil):connection_name())
    end)

    it("runs model writes inside a transaction on the transaction's connection", function()
      local err = helper.error_of(function()
        primary:transaction(function()
          User:create({ name = "tx" })
          assert.are.equal(1, User:where("name", "tx"):count())
          error("boom")
        end)
      end)
      assert.matches("boom", tostring(err))
      assert.are.equal(0, User:where("name", "tx"):count())
      primary:transaction(function()
        local u = User:first()
        u:update({ name = "committed" })
        Post:create({ user_id = u.id, title = "in tx" })
      end)
      assert.are.equal(1, User:where("name", "committed"):count())
      assert.are.equal(1, Post:where("title", "in tx"):count())
    end)

    it("refuses a model write to another database inside a transaction", function()
      local err = helper.error_of(function()
        primary:transaction(function()
          User:first()
          Event:create({ type = "inside" })
        end)
      end)
      assert.are.equal("cross_connection_transaction", err.kind)
      assert.are.equal(0, analytics:table("events"):count())
      -- reads elsewhere are allowed
      primary:transaction(function()
        assert.are.equal(1, User:count({ connection = "analytics" }))
      end)
    end)

    it("works with tenant databases from a TenantManager", function()
      local tenants = orm.TenantManager({ driver = function() return sqlite.adapter() end,
        prefix = "tenant_" })
      local ds = tenants:register("t1")
      sqlite:create_table(ds, "users", USERS)
      ds:table("users"):insert({ name = "tenant-user" })
      local ok, err = pcall(function()
        assert.are.same({ "tenant-user" }, names(User:all({ connection = tenants:connection_for("t1") })))
        assert.are.equal("tenant_t1", User:first({ connection = "tenant_t1" }):connection_name())
      end)
      tenants:dispose()
      assert(ok, err)
    end)

    it("works with connections built by the manager on demand", function()
      local handle = orm.register_sqlite_orm_connection({ name = "ondemand",
        database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }) })
      local ok, err = pcall(function()
        local conn = orm.OrmConnection.from_manager("ondemand")
        sqlite:create_table(conn, "users", USERS)
        User:create({ name = "od" }, { connection = "ondemand" })
        assert.are.same({ "od" }, names(User:all({ connection = "ondemand" })))
        assert.are.same({ "od" }, names(conn:query(User):get()))
      end)
      handle:dispose()
      assert(ok, err)
    end)
  end)
end)
