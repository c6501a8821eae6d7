-- spec/multidb_spec.lua: the multi-database runtime end to end, on real
-- databases of three kinds at once: the seed page's sections in order
-- (primary SQLite, analytics PostgreSQL, a tenant on MariaDB), pools under
-- pressure, dropped server sessions, tenants at scale, coroutines.
local orm = require("ormed")
local helper = require("spec.helper")

local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local PG, MY = os.getenv("ORMED_TEST_POSTGRES"), os.getenv("ORMED_TEST_MYSQL")
local seq = 0

local function sqlite_file(tag)
  seq = seq + 1
  local path = string.format("%s/ormed_multidb_%s_%d_%d.sqlite", tmp, tag, os.time(), seq)
  os.remove(path)
  return path
end

local function create_users(ds)
  local schema = ds:schema()
  schema:drop_table("posts", { if_exists = true })
  schema:drop_table("users", { if_exists = true })
  schema:create_table("users", function(t)
    t:id(); t:string("name"); t:string("email"):nullable(); t:integer("credits"):default(0)
  end)
  schema:create_table("posts", function(t)
    t:id(); t:integer("user_id"); t:string("title"); t:string("tenant_id"):nullable()
  end)
end

local function create_events(ds)
  local schema = ds:schema()
  schema:drop_table("analytics_events", { if_exists = true })
  schema:create_table("analytics_events", function(t)
    t:id(); t:string("type"); t:integer("user_id"):nullable(); t:integer("post_id"):nullable()
    t:datetime("timestamp"):nullable()
  end)
end

local function need_servers()
  assert(PG, "ORMED_TEST_POSTGRES is not set: run the specs through make test")
  assert(MY, "ORMED_TEST_MYSQL is not set: run the specs through make test")
end

local describe_mixed = helper.covers("postgres", "mysql") and describe or function() end

describe_mixed("multi-database (seed page, mixed drivers)", function()
  local manager = orm.ConnectionManager.instance
  local primary, analytics, User, Post, AnalyticsEvent

  setup(function()
    need_servers()
    User = orm.model("User", { fields = { id = "integer", name = "string", email = "string",
      credits = "integer" }, fillable = { "name", "email", "credits" },
      relations = { posts = orm.has_many("Post", { foreign_key = "user_id" }) } })
    Post = orm.model("Post", { fields = { id = "integer", user_id = "integer", title = "string",
      tenant_id = "string" }, relations = { analytics = orm.has_many("AnalyticsEvent",
        { foreign_key = "post_id" }) } })
    AnalyticsEvent = orm.model("AnalyticsEvent", { table = "analytics_events",
      fields = { id = "integer", type = "string", user_id = "integer", post_id = "integer",
        timestamp = "datetime" } })
    -- Configuring multiple connections: primary SQLite, analytics PostgreSQL.
    primary = orm.DataSource({ name = "primary",
      driver = orm.SqliteDriverAdapter.file(sqlite_file("primary")), entities = { User, Post } })
    primary:init()
    analytics = orm.DataSource({ name = "analytics", driver = orm.driver_from_url(PG),
      entities = { AnalyticsEvent } })
    analytics:init()
    manager:set_default_connection("primary")
    create_users(primary)
    create_events(analytics)
  end)

  teardown(function()
    if analytics then analytics:schema():drop_table("analytics_events", { if_exists = true }) end
    if primary then primary:dispose() end
    if analytics then analytics:dispose() end
  end)

  before_each(function()
    primary:table("posts"):delete()
    primary:table("users"):delete()
    analytics:table("analytics_events"):delete()
  end)

  it("makes the first initialised data source the default, and names every one", function()
    assert.are.equal("primary", manager:default_connection_name())
    assert.are.equal(primary, manager:get_connection("primary"))
    assert.are.equal(analytics, manager:get_connection("analytics"))
    assert.are.equal("sqlite", primary:dialect())
    assert.are.equal("postgres", analytics:dialect())
  end)

  it("runs queries on the default or the named connection", function()
    User:create({ name = "ann" })
    AnalyticsEvent:query({ connection = "analytics" }):create({ type = "page_view" })
    AnalyticsEvent:query({ connection = "analytics" }):create({ type = "click" })
    assert.are.equal(1, #User:all())
    local events = AnalyticsEvent:all({ connection = "analytics" })
    assert.are.equal(2, #events)
    local views = AnalyticsEvent:query({ connection = "analytics" })
      :where_equals("type", "page_view"):get()
    assert.are.equal(1, #views)
    assert.are.equal("page_view", views[1].type)
    -- the analytics table does not exist on primary: no silent fallback
    assert.are.equal("query", helper.error_of(AnalyticsEvent.all, AnalyticsEvent).kind)
  end)

  it("loads relations on the parent's connection, or on another one", function()
    local ann = User:create({ name = "ann" })
    local post = Post:create({ user_id = ann.id, title = "hello" })
    AnalyticsEvent:query({ connection = "analytics" }):create({ type = "view", post_id = post.id })
    local user = User:query({ connection = "primary" }):with({ "posts" }):first()
    assert.are.equal(1, #user.posts)
    assert.are.equal("hello", user.posts[1].title)
    local p = Post:find(post.id)
    p:load({ "analytics" }, { connection = "analytics" })
    assert.are.equal(1, #p.analytics)
    assert.are.equal("view", p.analytics[1].type)
  end)

  it("commits a transaction on one database", function()
    User:create({ name = "ann", credits = 5 })
    local primary_ds = manager:get_connection("primary")
    primary_ds:transaction(function()
      local user = User:query({ connection = "primary" }):first()
      user:update({ credits = user.credits + 10 })
      Post:query({ connection = "primary" }):create({ user_id = user.id, title = "t" })
    end)
    assert.are.equal(15, User:first().credits)
    assert.are.equal(1, Post:count())
  end)

  it("refuses a write to another database inside a transaction, and rolls back", function()
    User:create({ name = "ann", credits = 5 })
    local err = helper.error_of(primary.transaction, primary, function()
      local user = User:query({ connection = "primary" }):first()
      user:update({ credits = 99 })
      AnalyticsEvent:query({ connection = "analytics" }):create({ type = "user_updated" })
    end)
    assert.are.equal("cross_connection_transaction", err.kind)
    assert.are.equal("analytics", err.connection)
    assert.are.equal(5, User:first().credits)
    assert.are.equal(0, AnalyticsEvent:count({ connection = "analytics" }))
  end)

  it("allows reads elsewhere and a nested transaction on the other database", function()
    AnalyticsEvent:query({ connection = "analytics" }):create({ type = "seen" })
    primary:transaction(function()
      User:create({ name = "ann" })
      assert.are.equal(1, AnalyticsEvent:count({ connection = "analytics" }))
      analytics:transaction(function()
        AnalyticsEvent:query({ connection = "analytics" }):create({ type = "own_tx" })
      end)
    end)
    assert.are.equal(2, AnalyticsEvent:count({ connection = "analytics" }))
  end)

  it("coordinates across databases with compensating actions", function()
    local function create_user_with_analytics(data, fail)
      local user, event
      local ok, err = pcall(function()
        user = User:query({ connection = "primary" }):create(data)
        event = AnalyticsEvent:query({ connection = "analytics" }):create({
          type = "user_created", user_id = user.id, timestamp = "2026-01-02T03:04:05Z" })
        if fail then error("downstream failure") end
      end)
      if not ok then
        if user then user:set_connection("primary"):delete() end
        if event then event:set_connection("analytics"):delete() end
        error(err, 0)
      end
      return user, event
    end
    local user, event = create_user_with_analytics({ name = "ann" })
    assert.are.equal(user.id, event.user_id)
    assert.are.equal("2026-01-02T03:04:05Z", AnalyticsEvent:first({ connection = "analytics" }).timestamp)
    assert.has_error(function() create_user_with_analytics({ name = "bob" }, true) end)
    assert.are.same({ "ann" }, User:query():pluck("name"))
    assert.are.equal(1, AnalyticsEvent:count({ connection = "analytics" }))
  end)

  it("keeps one database per tenant, a tenant on MariaDB among them", function()
    local tenants = orm.TenantManager({
      driver = function(id)
        if id == "tenant_my" then return orm.driver_from_url(MY) end
        return orm.SqliteDriverAdapter.file(sqlite_file(id))
      end,
      entities = { User, Post },
    })
    tenants:register("tenant_123")
    tenants:register("tenant_123")
    tenants:register("tenant_my")
    assert.are.same({ "tenant_123", "tenant_my" }, tenants:list())
    tenants:each(function(id, ds)
      create_users(ds)
      User:create({ name = "user of " .. id }, { connection = tenants:connection_for(id) })
    end)
    local users = User:all({ connection = tenants:connection_for("tenant_my") })
    assert.are.equal(1, #users)
    assert.are.equal("user of tenant_my", users[1].name)
    assert.are.equal("mysql", tenants:data_source("tenant_my"):dialect())
    assert.are.equal("user of tenant_123",
      User:first({ connection = tenants:connection_for("tenant_123") }).name)
    assert.are.equal(0, User:count())
    tenants:data_source("tenant_my"):schema():drop_table("posts")
    tenants:data_source("tenant_my"):schema():drop_table("users")
    tenants:unregister("tenant_my")
    assert.are.equal("connection_not_found",
      helper.error_of(tenants.connection_for, tenants, "tenant_my").kind)
    assert.is_false(manager:has("tenant_my"))
    tenants:dispose()
    assert.are.same({}, tenants:list())
  end)

  it("filters a shared database by a tenant column scope", function()
    local current = "t1"
    local id = primary.context.scope_registry:register_scope(Post, function(q)
      q:where_equals("tenant_id", current)
    end, "tenant")
    primary:table("posts"):insert({ { user_id = 1, title = "a", tenant_id = "t1" },
      { user_id = 1, title = "b", tenant_id = "t2" }, { user_id = 1, title = "c", tenant_id = "t1" } })
    local sql, bindings = Post:query():to_sql()
    assert.truthy(sql:find('"tenant_id" = ?', 1, true))
    assert.are.same({ "t1" }, bindings)
    assert.are.equal(2, #Post:query():get())
    assert.are.equal(2, #primary:query(Post):get())
    current = "t2"
    assert.are.same({ "b" }, Post:query():pluck("title"))
    assert.are.equal(3, Post:query():without_global_scope("tenant"):count())
    primary.context.scope_registry:remove_scope(Post, id)
    assert.are.equal(3, #Post:all())
  end)

  it("builds connections through a factory, a manager and the driver helpers", function()
    local registry = orm.ModelRegistry():register(User)
    local factory = orm.OrmConnectionFactory()
    local path = sqlite_file("factory")
    local handle = factory:register({
      name = "factory_conn",
      connection = orm.ConnectionConfig({ name = "factory_conn" }),
      builder = function()
        local adapter = orm.SqliteDriverAdapter.custom({ config = orm.DatabaseConfig({
          driver = "sqlite", options = { path = path } }) })
        return orm.OrmConnection({ config = orm.ConnectionConfig({ name = "factory_conn" }),
          driver = adapter, registry = registry })
      end,
    })
    local conn = orm.OrmConnection.from_manager("factory_conn")
    create_users(conn)
    User:create({ name = "via factory" }, { connection = "factory_conn" })
    assert.are.equal("via factory", conn:query(User):first().name)
    assert.are.equal("invalid_argument", helper.error_of(factory.register, factory, {
      name = "factory_conn", builder = function() end }).kind)
    handle:dispose()
    handle:dispose()
    assert.are.equal("connection_not_found",
      helper.error_of(orm.OrmConnection.from_manager, "factory_conn").kind)

    local m = orm.ConnectionManager()
    m:register("analytics_pg", orm.ConnectionConfig({ name = "analytics_pg" }), function(config)
      return orm.OrmConnection({ config = config, driver = orm.driver_from_url(PG),
        registry = registry })
    end)
    assert.is_true(m:has("analytics_pg"))
    assert.are.same({ "analytics_pg" }, m:names())
    local n = m:use("analytics_pg", function(c) return c:select("SELECT 41 + 1 AS n")[1].n end)
    assert.are.equal(42, n)
    assert.are.equal(m:connection("analytics_pg"), m:connection("analytics_pg"))
    m:unregister("analytics_pg")
    assert.is_false(m:has("analytics_pg"))

    local h1 = orm.register_sqlite_orm_connection({ name = "analytics-sqlite",
      database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }),
      registry = registry })
    local h2 = orm.register_postgres_orm_connection({ name = "analytics-pg",
      database = orm.DatabaseConfig({ driver = "postgres", options = { url = PG } }), registry = registry })
    local h3 = orm.register_mysql_orm_connection({ name = "analytics-my",
      database = orm.DatabaseConfig({ driver = "mysql", options = { url = MY } }), registry = registry })
    assert.are.equal("sqlite", orm.OrmConnection.from_manager("analytics-sqlite"):dialect())
    assert.are.equal("postgres", orm.OrmConnection.from_manager("analytics-pg"):dialect())
    assert.are.equal("mysql", orm.OrmConnection.from_manager("analytics-my"):dialect())
    assert.are.equal(1, orm.OrmConnection.from_manager("analytics-my"):ping() and 1)
    for _, h in ipairs({ h1, h2, h3 }) do h:dispose() end
    assert.is_false(manager:has("analytics-sqlite"))
  end)

  it("refuses a taken name unless replace = true", function()
    local dup = orm.DataSource({ name = "primary", driver = orm.SqliteDriverAdapter.memory() })
    local err = helper.error_of(dup.init, dup)
    assert.are.equal("invalid_argument", err.kind)
    assert.truthy(err.message:find("primary", 1, true))
    assert.are.equal(primary, manager:get_connection("primary"))
    local h = orm.register_sqlite_orm_connection({ name = "twice",
      database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }) })
    assert.has_error(function()
      orm.register_sqlite_orm_connection({ name = "twice",
        database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }) })
    end)
    local h2 = orm.register_sqlite_orm_connection({ name = "twice", replace = true,
      database = orm.DatabaseConfig({ driver = "sqlite", options = { memory = true } }) })
    h2:dispose()
    h:dispose()
  end)

  it("names the registered connections when a name is unknown", function()
    local err = helper.error_of(User.all, User, { connection = "nope" })
    assert.are.equal("connection_not_found", err.kind)
    assert.truthy(err.message:find("analytics", 1, true))
    assert.truthy(err.message:find("primary", 1, true))
    assert.are.equal("connection_not_found",
      helper.error_of(manager.set_default_connection, manager, "nope").kind)
  end)

  it("reports health: stats, listeners and ping", function()
    local events = {}
    local stop = analytics:listen(function(e) events[#events + 1] = e end)
    local before = analytics:stats()
    AnalyticsEvent:query({ connection = "analytics" }):create({ type = "x" })
    pcall(analytics.select, analytics, "SELECT * FROM no_such_table")
    stop()
    AnalyticsEvent:all({ connection = "analytics" })
    assert.are.equal(2, #events)
    assert.are.equal("analytics", events[1].connection)
    assert.truthy(events[1].sql:find("INSERT", 1, true))
    assert.are.equal("x", events[1].bindings[1])
    assert.are.equal(1, events[1].rows)
    assert.is_number(events[1].duration_ms)
    assert.is_nil(events[1].error)
    assert.truthy(events[2].error:find("no_such_table", 1, true))
    local after = analytics:stats()
    assert.are.equal(before.queries + 3, after.queries)
    assert.are.equal(before.errors + 1, after.errors)
    assert.is_true(after.total_ms >= before.total_ms)
    for _, k in ipairs({ "open", "in_use", "idle", "waits" }) do assert.is_number(after[k]) end
    assert.are.equal(0, after.in_use)
    assert.is_true(analytics:ping())
  end)
end)

helper.each_driver(function(drv)
  describe("pool", function()
    it("times out when every connection is taken, then recovers", function()
      local ds = drv:data_source(nil, { max = 2, min = 0, acquire_timeout = 0.2 })
      local pool = ds._pool
      local a, b = pool:acquire(), pool:acquire()
      assert.are.equal(2, ds:stats().in_use)
      local err = helper.error_of(ds.select, ds, "SELECT 1 AS one")
      assert.are.equal("pool_timeout", err.kind)
      assert.are.equal(ds.name, err.connection)
      assert.truthy(err.message:find("0.2s", 1, true))
      assert.are.equal(1, ds:stats().waits)
      assert.are.equal(1, ds:stats().timeouts)
      a:release()
      assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
      b:release()
      b:release()
      local s = ds:stats()
      assert.are.equal(0, s.in_use)
      assert.are.equal(2, s.open)
      ds:dispose()
    end)

    it("lets a yielded coroutine keep its transaction connection to itself", function()
      local ds = drv:data_source(nil, { max = 1, min = 0, acquire_timeout = 0.2 })
      ds:schema():create_table("pins", function(t) t:id(); t:string("v") end)
      local co = coroutine.create(function()
        ds:transaction(function()
          ds:execute("INSERT INTO pins (v) VALUES (?)", { "held" })
          coroutine.yield("inside")
        end)
        return "committed"
      end)
      assert.are.same({ true, "inside" }, { coroutine.resume(co) })
      -- the only connection is pinned by the suspended transaction
      assert.are.equal("pool_timeout", helper.error_of(ds.select, ds, "SELECT * FROM pins").kind)
      assert.are.same({ true, "committed" }, { coroutine.resume(co) })
      assert.are.equal("held", ds:select("SELECT v FROM pins")[1].v)
      ds:schema():drop_table("pins")
      ds:dispose()
    end)

    it("closes idle connections after idle_timeout, keeping min", function()
      local ds = drv:data_source(nil, { max = 3, min = 1, idle_timeout = 0.05 })
      local pool = ds._pool
      local c1, c2, c3 = pool:acquire(), pool:acquire(), pool:acquire()
      c1:release(); c2:release(); c3:release()
      assert.are.equal(3, ds:stats().open)
      local t0 = os.clock()
      repeat until os.clock() - t0 > 0.2 -- let them idle past the timeout
      local c = pool:acquire()
      c:release()
      assert.is_true(ds:stats().open <= 2)
      ds:dispose()
    end)

    if drv.name ~= "sqlite" then
      -- The server's id of the session behind ds's (only) connection.
      local function session_id(ds)
        return ds:select(drv.name == "postgres" and "SELECT pg_backend_pid() AS id"
          or "SELECT CONNECTION_ID() AS id")[1].id
      end

      -- Ends a server session from another connection.
      local function kill_session(killer, pid)
        if drv.name == "postgres" then
          killer:select("SELECT pg_terminate_backend(?) AS ok", { pid })
        else
          killer:execute("KILL " .. math.tointeger(pid))
        end
      end

      it("replaces a connection whose server session was killed", function()
        local ds = drv:data_source(nil, { max = 1, min = 1 })
        local killer = drv:data_source()
        local pid = session_id(ds)
        kill_session(killer, pid)
        local err = helper.error_of(ds.select, ds, "SELECT 1 AS one")
        assert.are.equal("connection_lost", err.kind)
        assert.are.equal(ds.name, err.connection)
        -- the broken connection was thrown away: the next statement gets a fresh one
        assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
        assert.are_not.equal(pid, session_id(ds))
        assert.are.equal(1, ds:stats().open)
        killer:dispose()
        ds:dispose()
      end)

      it("pings an idle connection on checkout and replaces it when the ping fails", function()
        local ds = drv:data_source(nil, { max = 1, min = 1, health_check = 0 })
        local killer = drv:data_source()
        local pid = session_id(ds)
        kill_session(killer, pid)
        -- the health check finds the dead session before the statement is sent
        local fresh = session_id(ds)
        assert.are_not.equal(pid, fresh)
        assert.are.equal(0, ds:stats().errors)
        assert.are.equal(1, ds:stats().open)
        killer:dispose()
        ds:dispose()
      end)

      it("reports a transaction whose connection was lost, and never replays it", function()
        local ds = drv:data_source(nil, { max = 1, min = 1 })
        local killer = drv:data_source()
        ds:schema():drop_table("lost_tx", { if_exists = true })
        ds:schema():create_table("lost_tx", function(t) t:id(); t:string("v") end)
        local task = coroutine.create(function()
          return helper.error_of(ds.transaction, ds, function()
            ds:execute("INSERT INTO lost_tx (v) VALUES (?)", { "before" })
            coroutine.yield(session_id(ds))
            ds:execute("INSERT INTO lost_tx (v) VALUES (?)", { "after" })
          end)
        end)
        local _, pid = coroutine.resume(task)
        -- the test body is outside the suspended transaction: it may write elsewhere
        kill_session(killer, pid)
        local _, err = coroutine.resume(task)
        assert.are.equal("connection_lost", err.kind)
        assert.are.equal(0, #ds:select("SELECT * FROM lost_tx"))
        ds:schema():drop_table("lost_tx")
        killer:dispose()
        ds:dispose()
      end)

      it("reports a refused login without the password and stays usable", function()
        local url = drv.url:gsub("ormed_pw", "Wr0ng-S3cret")
        local bad = orm.DataSource({ name = "bad_login", driver = orm.driver_from_url(url) })
        local err = helper.error_of(bad.init, bad)
        assert.are.equal("connection_failed", err.kind)
        assert.is_nil(tostring(err):find("Wr0ng-S3cret", 1, true))
        assert.is_nil(err.message:find("Wr0ng-S3cret", 1, true))
        local ds = orm.DataSource({ name = "lazy_login", driver = orm.driver_from_url(url),
          pool = { min = 0, max = 1 } }):init()
        for _ = 1, 3 do
          assert.are.equal("connection_failed", helper.error_of(ds.select, ds, "SELECT 1").kind)
        end
        local s = ds:stats()
        assert.are.equal(0, s.open)
        assert.are.equal(0, s.in_use)
        ds:dispose()
      end)
    end
  end)
end)

describe("tenants at scale", function()
  it("registers 10,000 tenants without opening a connection", function()
    local tenants = orm.TenantManager({
      driver = function(id) return orm.SqliteDriverAdapter.file(tmp .. "/never_" .. id .. ".sqlite") end,
      prefix = "scale_",
    })
    local t0 = os.clock()
    for i = 1, 10000 do tenants:register("t" .. i) end
    local elapsed = os.clock() - t0
    assert.are.equal(10000, #tenants:list())
    assert.are.equal("scale_t777", tenants:connection_for("t777"))
    local open = 0
    tenants:each(function(_, ds) open = open + ds:stats().open end)
    assert.are.equal(0, open)
    assert.is_nil(io.open(tmp .. "/never_t1.sqlite"))
    -- the first use opens exactly that tenant's database
    local ds = tenants:data_source("t42")
    assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
    assert.are.equal(1, ds:stats().open)
    os.remove(tmp .. "/never_t42.sqlite")
    tenants:dispose()
    io.stderr:write(string.format("(10,000 tenants registered in %.2fs CPU)\n", elapsed))
  end)
end)
