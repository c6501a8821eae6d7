-- examples/multi_db.lua: every section of the multi-database guide, in
-- order, on SQLite files (no server needed). Swap an adapter for
-- orm.PostgresDriverAdapter{...} or orm.MySqlDriverAdapter{...} and nothing
-- else changes. Run with `make example`.
local orm = require("ormed")

for _, f in ipairs({ "app.sqlite", "analytics.sqlite", "database.sqlite" }) do os.remove(f) end

local User = orm.model("User", {
  fields = { id = "integer", name = "string", credits = "integer" },
  fillable = { "name", "credits" },
  relations = { posts = orm.has_many("Post") },
})
local Post = orm.model("Post", {
  fields = { id = "integer", user_id = "integer", title = "string", tenant_id = "string" },
  relations = { analytics = orm.has_many("AnalyticsEvent", { foreign_key = "post_id" }) },
})
local AnalyticsEvent = orm.model("AnalyticsEvent", {
  table = "analytics_events",
  fields = { id = "integer", type = "string", user_id = "integer", post_id = "integer" },
})

-- 1. Configuring multiple connections ---------------------------------------
local primary = orm.DataSource({
  name = "primary",
  driver = orm.SqliteDriverAdapter.file("app.sqlite"),
  entities = { User, Post },
})
primary:init()

local analytics = orm.DataSource({
  name = "analytics",
  driver = orm.SqliteDriverAdapter.file("analytics.sqlite"), -- or orm.PostgresDriverAdapter{...}
  entities = { AnalyticsEvent },
})
analytics:init()

-- The first initialised DataSource became the default; or say so:
orm.ConnectionManager.instance:set_default_connection("primary")
print("1. connections:", table.concat(orm.ConnectionManager.instance:names(), ", "),
  "default:", orm.ConnectionManager.instance:default_connection_name())

primary:schema():create_table("users", function(t)
  t:id(); t:string("name"); t:integer("credits"):default(0)
end)
primary:schema():create_table("posts", function(t)
  t:id(); t:integer("user_id"); t:string("title"); t:string("tenant_id"):nullable()
end)
analytics:schema():create_table("analytics_events", function(t)
  t:id(); t:string("type"); t:integer("user_id"):nullable(); t:integer("post_id"):nullable()
end)

-- 2. Using named connections --------------------------------------------------
local ann = User:create({ name = "Ann", credits = 5 })
local post = Post:create({ user_id = ann.id, title = "Hello" })
AnalyticsEvent:query({ connection = "analytics" }):create({ type = "page_view", post_id = post.id })
AnalyticsEvent:query({ connection = "analytics" }):create({ type = "click", post_id = post.id })

local users = User:all()                                          -- default connection
local events = AnalyticsEvent:all({ connection = "analytics" })  -- a named one
local page_views = AnalyticsEvent:query({ connection = "analytics" })
  :where_equals("type", "page_view"):get()
print("2. users:", #users, "events:", #events, "page views:", #page_views)

-- Relations load on the parent's connection, or on another one.
local user = User:query({ connection = "primary" }):with({ "posts" }):first()
local p = Post:find(post.id)
p:load({ "analytics" }, { connection = "analytics" })
print("   posts of Ann:", #user.posts, "analytics of the post:", #p.analytics)

-- 3. Transaction caveat -------------------------------------------------------
local primary_ds = orm.ConnectionManager.instance:get_connection("primary")
primary_ds:transaction(function()   -- works: one database
  local u = User:query({ connection = "primary" }):first()
  u:update({ credits = u.credits + 10 })
  Post:query({ connection = "primary" }):create({ user_id = u.id, title = "In a transaction" })
end)
print("3. credits after the transaction:", User:first().credits)

local ok, err = pcall(primary_ds.transaction, primary_ds, function()   -- cannot span databases
  local u = User:query({ connection = "primary" }):first()
  u:update({ credits = 0 })
  AnalyticsEvent:query({ connection = "analytics" }):create({ type = "user_updated" })
end)
print("   spanning two databases:", ok, err.kind, "- credits kept:", User:first().credits)

-- 4. Coordinating across databases (see compensating.lua for more) -----------
local function create_user_with_analytics(user_data)
  local u, event
  local created, e = pcall(function()
    u = User:query({ connection = "primary" }):create(user_data)
    event = AnalyticsEvent:query({ connection = "analytics" }):create({
      type = "user_created", user_id = u.id })
  end)
  if not created then
    if u then u:set_connection("primary"):delete() end
    if event then event:set_connection("analytics"):delete() end
    error(e, 0)
  end
  return u, event
end
local bob = create_user_with_analytics({ name = "Bob" })
print("4. created", bob.name, "with", AnalyticsEvent:query({ connection = "analytics" })
  :where("user_id", bob.id):count(), "event")

-- 5. Multi-tenant: a database per tenant ------------------------------------
local tenants = orm.TenantManager({
  driver = function(id) return orm.SqliteDriverAdapter.file("tenant_" .. id .. ".sqlite") end,
  entities = { User, Post },
})
tenants:register("tenant_123")
tenants:data_source("tenant_123"):schema():drop_table("users", { if_exists = true })
tenants:data_source("tenant_123"):schema():create_table("users", function(t)
  t:id(); t:string("name"); t:integer("credits"):default(0)
end)
User:create({ name = "Tenant user" }, { connection = tenants:connection_for("tenant_123") })
local tenant_users = User:all({ connection = tenants:connection_for("tenant_123") })
print("5. tenant_123 users:", #tenant_users, tenant_users[1].name)

-- A shared database with a tenant column, filtered by a global scope.
local current_tenant_id = "t1"
primary.context.scope_registry:register_scope(Post, function(q)
  q:where_equals("tenant_id", current_tenant_id)
end, "tenant")
Post:query():without_global_scope("tenant"):update({ tenant_id = "t1" })
primary:table("posts"):insert({ user_id = ann.id, title = "Other tenant", tenant_id = "t2" })
local sql = Post:query():to_sql()
print("   scoped:", #primary:query(Post):get(), "posts; SQL:", sql)

-- 6. Connection factory & connectors ----------------------------------------
local registry = orm.ModelRegistry():register(User)
local factory = orm.OrmConnectionFactory()
local handle = factory:register({
  name = "factory_primary",
  connection = orm.ConnectionConfig({ name = "factory_primary" }),
  builder = function()
    local adapter = orm.SqliteDriverAdapter.custom({
      config = orm.DatabaseConfig({ driver = "sqlite", options = { path = "database.sqlite" } }),
    })
    return orm.OrmConnection({ config = orm.ConnectionConfig({ name = "factory_primary" }),
      driver = adapter, registry = registry })
  end,
})
print("6. factory connection answers:", orm.OrmConnection.from_manager("factory_primary"):ping())
handle:dispose()

-- 7. ConnectionManager --------------------------------------------------------
local manager = orm.ConnectionManager()
manager:register("analytics", orm.ConnectionConfig({ name = "analytics" }), function(config)
  return orm.OrmConnection({ config = config,
    driver = orm.SqliteDriverAdapter.file("analytics.sqlite"), registry = registry })
end)
local n = manager:use("analytics", function(conn) return #conn:query(AnalyticsEvent):get() end)
print("7. events through the manager's connection:", n)
manager:unregister("analytics")

-- 8. Driver registration helpers ---------------------------------------------
local h = orm.register_sqlite_orm_connection({
  name = "analytics-sqlite",
  database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }),
  registry = registry,
})
local conn = orm.OrmConnection.from_manager("analytics-sqlite")
print("8. helper connection dialect:", conn:dialect())
h:dispose()

-- 9. Best practices: monitor health, then dispose -----------------------------
local s = primary:stats()
print(("9. primary: %d queries, %d errors, %.1f ms, %d open"):format(s.queries, s.errors,
  s.total_ms, s.open))
print("   unknown names never fall back:", select(2, pcall(User.all, User, { connection = "nope" })).kind)
tenants:dispose()
primary:dispose()
analytics:dispose()
for _, f in ipairs({ "app.sqlite", "analytics.sqlite", "database.sqlite", "tenant_tenant_123.sqlite" }) do
  os.remove(f)
end
