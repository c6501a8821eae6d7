-- spec/replicas_spec.lua: read replicas (API section 7) on real streaming
-- replicas: PostgreSQL hot standbys made by pg_basebackup -R and a MariaDB
-- replica following its primary by GTID (scripts/with-servers.sh:
-- ORMED_TEST_POSTGRES_REPLICA, ORMED_TEST_MYSQL_REPLICA). Routing is seen
-- through the listener event's `node`; a replica is paused (replay stopped)
-- or stopped and restarted (ORMED_TEST_REPLICA_DIR) and always resumed.
local orm = require("ormed")
local core = require("ormed.core")
local helper = require("spec.helper")

local REPLICA_ENV = { postgres = "ORMED_TEST_POSTGRES_REPLICA", mysql = "ORMED_TEST_MYSQL_REPLICA" }
local SCRIPT = { postgres = "scripts/pg-server.sh", mysql = "scripts/mysql-server.sh" }
-- Stopping and resuming replay on a replica (spec-only SQL, per server).
local PAUSE = { postgres = "SELECT pg_wal_replay_pause()", mysql = "STOP SLAVE SQL_THREAD" }
local RESUME = { postgres = "SELECT pg_wal_replay_resume()", mysql = "START SLAVE SQL_THREAD" }

local seq = 0

local function sleep(s)
  local t = core.clock()
  while core.clock() - t < s do os.execute("sleep 0.02") end
end

-- Polls fn() until it returns true (at most `limit` seconds).
local function eventually(fn, limit, what)
  local t = core.clock()
  while core.clock() - t < (limit or 10) do
    if fn() then return end
    sleep(0.05)
  end
  error("timed out waiting for " .. (what or "a condition"))
end

-- A closed loopback port: nothing answers there.
local function closed_url(url)
  return (url:gsub(":(%d+)/", ":1/"))
end

helper.each_driver(function(drv)
  if drv.name == "sqlite" then
    it("SQLite takes no replicas (invalid_argument)", function()
      local err = helper.error_of(orm.DataSource, { name = "sqlite_rep", driver = drv.adapter(),
        replicas = { drv.adapter() } })
      assert.equal("invalid_argument", err.kind)
      assert.matches("replication", err.message, 1, true)
    end)
    return
  end

  local RURL = os.getenv(REPLICA_ENV[drv.name])
  local direct -- a plain data source on the replica, for pausing and checks
  local made = {}
  local Item

  local function adapter() return orm.driver_from_url(drv.url) end
  local function replica() return orm.driver_from_url(RURL) end

  -- An initialised data source with replicas, recording the node of every
  -- statement in `nodes`.
  local function source(opts)
    seq = seq + 1
    opts = opts or {}
    opts.name = "rep_" .. drv.name .. seq
    opts.driver = opts.driver or adapter()
    opts.replicas = opts.replicas or { replica() }
    local ds = orm.DataSource(opts):init()
    made[#made + 1] = ds
    local nodes = {}
    ds:listen(function(e)
      if e.node and not e.sql:find("gtid", 1, true) and not e.sql:find("wal_", 1, true)
        and not e.sql:find("SLAVE", 1, true) then
        nodes[#nodes + 1] = e.node
      end
    end)
    return ds, nodes
  end

  -- Waits until the replica has row `id` of rep_items.
  local function replicated(id)
    eventually(function()
      local ok, rows = pcall(direct.select, direct, "SELECT id FROM rep_items WHERE id = ?", { id })
      return ok and #rows == 1
    end, 15, "the replica to replay row " .. id)
  end

  local function pause() direct:execute(PAUSE[drv.name]) end
  local function resume() direct:execute(RESUME[drv.name]) end

  setup(function()
    assert(RURL, REPLICA_ENV[drv.name] .. " is not set: run the specs through make test "
      .. "(scripts/with-servers.sh starts a replica of each server)")
    direct = orm.DataSource({ name = "rep_direct_" .. drv.name, driver = replica() }):init()
    local ds = orm.DataSource({ name = "rep_setup_" .. drv.name, driver = adapter() }):init()
    ds:schema():drop_table("rep_items", { if_exists = true })
    ds:schema():create_table("rep_items", function(t) t:id(); t:string("name") end)
    ds:table("rep_items"):insert({ id = 1, name = "seed" })
    ds:dispose()
    replicated(1)
    Item = orm.model("RepItem" .. drv.name, { table = "rep_items",
      fields = { id = "integer", name = "string" } })
  end)

  after_each(function()
    for _, ds in ipairs(made) do ds:dispose() end
    made = {}
  end)

  teardown(function()
    if direct then direct:dispose() end
  end)

  local next_id = 100
  local function new_id()
    next_id = next_id + 1
    return next_id
  end

  describe("routing", function()
    it("sends reads to the replica and writes, DDL and transactions to the primary", function()
      local ds, nodes = source({ read_your_writes = false })
      assert.equal(1, #ds:select("SELECT id FROM rep_items WHERE id = 1"))
      assert.same({ "replica1" }, nodes)
      assert.equal(1, Item:query({ connection = ds }):where_equals("id", 1):count())
      assert.is_true(Item:query({ connection = ds }):where_equals("id", 1):exists())
      assert.equal("seed", Item:find(1, { connection = ds }).name)
      assert.equal(1, #ds:table("rep_items"):where_equals("id", 1):get())
      assert.same({ "replica1", "replica1", "replica1", "replica1", "replica1" }, nodes)
      for i = #nodes, 1, -1 do nodes[i] = nil end
      local id = new_id()
      ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { id, "w" })
      Item:query({ connection = ds }):where_equals("id", id):update({ name = "w2" })
      ds:transaction(function()
        assert.equal("w2", ds:select("SELECT name FROM rep_items WHERE id = ?", { id })[1].name)
      end)
      -- DDL and the schema catalog reads around it
      assert.is_true(ds:schema():has_table("rep_items"))
      ds:schema():alter_table("rep_items", function(t) t:string("extra"):nullable() end)
      ds:schema():alter_table("rep_items", function(t) t:drop_column("extra") end)
      for _, n in ipairs(nodes) do assert.equal("primary", n) end
      assert.is_true(#nodes >= 6)
    end)

    it("takes turns between replicas (round robin), one pool per server", function()
      local ds, nodes = source({ read_your_writes = false, replicas = { replica(), replica() } })
      for _ = 1, 4 do ds:select("SELECT 1 AS one") end
      assert.same({ "replica1", "replica2", "replica1", "replica2" }, nodes)
      local s = ds:stats()
      assert.equal(2, #s.replicas)
      assert.equal(1, s.replicas[1].open)
      assert.equal(1, s.replicas[2].open)
    end)

    it("rejects a replica of another driver and a bad read_your_writes", function()
      local other = drv.name == "postgres" and "mysql://u:p@127.0.0.1:1/x" or "postgres://u:p@127.0.0.1:1/x"
      local err = helper.error_of(orm.DataSource, { name = "x", driver = adapter(),
        replicas = { orm.driver_from_url(other) } })
      assert.equal("invalid_argument", err.kind)
      err = helper.error_of(orm.DataSource, { name = "x", driver = adapter(),
        replicas = { replica() }, read_your_writes = "always" })
      assert.equal("invalid_argument", err.kind)
    end)
  end)

  describe("read_your_writes", function()
    it("\"position\": a coroutine reads its write at once; the others keep reading the replica", function()
      local ds, nodes = source()
      pause()
      finally(resume)
      local id = new_id()
      Item:create({ id = id, name = "mine" }, { connection = ds })
      -- replay is paused: the replica cannot have it, so the read goes to the primary
      for i = #nodes, 1, -1 do nodes[i] = nil end
      assert.equal("mine", Item:find(id, { connection = ds }).name)
      assert.same({ "primary" }, nodes)
      -- another coroutine reads the replica, which has not got the row
      local seen = coroutine.wrap(function()
        return #ds:select("SELECT id FROM rep_items WHERE id = ?", { id })
      end)()
      assert.equal(0, seen)
      assert.same({ "primary", "replica1" }, nodes)
      resume()
      replicated(id)
      -- once the replica has replayed the write, this coroutine reads it there
      eventually(function()
        for i = #nodes, 1, -1 do nodes[i] = nil end
        local row = Item:find(id, { connection = ds })
        assert.equal("mine", row.name)
        return nodes[1] == "replica1"
      end, 10, "reads back on the replica")
      -- and a write then an immediate read always sees the row
      for _ = 1, 10 do
        local k = new_id()
        ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { k, "again" })
        assert.equal(1, #ds:select("SELECT id FROM rep_items WHERE id = ?", { k }))
      end
    end)

    it("\"position\": a committed transaction counts as a write", function()
      local ds, nodes = source()
      pause()
      finally(resume)
      local id = new_id()
      ds:transaction(function()
        ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { id, "tx" })
      end)
      for i = #nodes, 1, -1 do nodes[i] = nil end
      assert.equal(1, #ds:select("SELECT id FROM rep_items WHERE id = ?", { id }))
      assert.same({ "primary" }, nodes)
    end)

    it("\"sticky\": reads from the primary for sticky_seconds after a write", function()
      local ds, nodes = source({ read_your_writes = "sticky", sticky_seconds = 0.3 })
      ds:select("SELECT 1 AS one")
      ds:execute("UPDATE rep_items SET name = ? WHERE id = 1", { "seed" })
      ds:select("SELECT 1 AS one")
      coroutine.wrap(function() ds:select("SELECT 1 AS one") end)()
      sleep(0.35)
      ds:select("SELECT 1 AS one")
      assert.same({ "replica1", "primary", "primary", "replica1", "replica1" }, nodes)
    end)

    it("false: reads always go to replicas", function()
      local ds, nodes = source({ read_your_writes = false })
      pause()
      finally(resume)
      local id = new_id()
      ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { id, "x" })
      assert.equal(0, #ds:select("SELECT id FROM rep_items WHERE id = ?", { id }))
      assert.same({ "primary", "replica1" }, nodes)
    end)
  end)

  describe("role and on_primary", function()
    it("role = \"write\" reads from the primary, role = \"read\" from a replica", function()
      local ds, nodes = source()
      Item:query({ connection = ds, role = "write" }):where_equals("id", 1):get()
      Item:all({ connection = ds, role = "write" })
      Item:find(1, { connection = ds, role = "write" })
      ds:select("SELECT 1 AS one", nil, { role = "write" })
      assert.same({ "primary", "primary", "primary", "primary" }, nodes)
      for i = #nodes, 1, -1 do nodes[i] = nil end
      pause()
      finally(resume)
      local id = new_id()
      ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { id, "r" })
      -- read-your-writes would choose the primary; role = "read" insists
      assert.equal(0, #ds:select("SELECT id FROM rep_items WHERE id = ?", { id }, { role = "read" }))
      assert.is_nil(Item:find(id, { connection = ds, role = "read" }))
      assert.same({ "primary", "replica1", "replica1" }, nodes)
      local err = helper.error_of(ds.select, ds, "SELECT 1", nil, { role = "reader" })
      assert.equal("invalid_argument", err.kind)
    end)

    it("on_primary(fn) runs fn with every read on the primary", function()
      local ds, nodes = source({ read_your_writes = false })
      local got = ds:on_primary(function(d)
        d:select("SELECT 1 AS one")
        Item:find(1, { connection = ds })
        return "done"
      end)
      assert.equal("done", got)
      ds:select("SELECT 1 AS one")
      assert.same({ "primary", "primary", "replica1" }, nodes)
      assert.has_error(function() ds:on_primary(function() error("boom") end) end)
      ds:select("SELECT 1 AS one")
      assert.equal("replica1", nodes[#nodes])
    end)
  end)

  describe("failover", function()
    it("a replica at a closed port starts out down and reads still succeed", function()
      local ds, nodes = source({ read_your_writes = false, replicas = { orm.driver_from_url(closed_url(RURL)) } })
      assert.equal(1, #ds:select("SELECT id FROM rep_items WHERE id = 1"))
      assert.same({ "primary" }, nodes)
      local s = ds:stats()
      assert.is_true(s.replicas[1].down)
      assert.equal(1, s.reads_primary)
      assert.equal(0, s.reads_replica)
      -- with a healthy second replica, reads go there
      local ds2, nodes2 = source({ read_your_writes = false,
        replicas = { orm.driver_from_url(closed_url(RURL)), replica() } })
      ds2:select("SELECT 1 AS one")
      ds2:select("SELECT 1 AS one")
      assert.same({ "replica2", "replica2" }, nodes2)
    end)

    it("with a waiter: a replica that cannot be reached fails over as without one", function()
      local cqueues = require("cqueues")
      -- min = 0: the replica's pool opens (no connection yet), and the
      -- first read's connect fails through the waiter
      local function run(waiter)
        local ds, nodes = source({ read_your_writes = false, pool = { min = 0, max = 2 },
          replica_retry_after = 30, replicas = { orm.driver_from_url(closed_url(RURL)) } })
        local cq, got = cqueues.new(), {}
        orm.set_waiter(waiter)
        cq:wrap(function()
          got.rows = #ds:select("SELECT id FROM rep_items WHERE id = 1")
          got.count = Item:query({ connection = ds }):where_equals("id", 1):count()
          got.page = ds:table("rep_items"):where("id", 1):paginate().total
        end)
        local ok, err = cq:loop()
        orm.set_waiter(nil)
        assert(ok, tostring(err))
        local s = ds:stats()
        return { got = got, nodes = nodes, down = s.replicas[1].down, primary = s.reads_primary,
          replica = s.reads_replica }
      end
      local want = run(nil)
      assert.same({ rows = 1, count = 1, page = 1 }, want.got)
      assert.is_true(want.down)
      assert.same(want, run(require("ormed.io.cqueues")))
    end)

    it("a replica stopped mid-run: reads succeed, it is left out, then tried again", function()
      local dir = os.getenv("ORMED_TEST_REPLICA_DIR")
      assert(dir, "ORMED_TEST_REPLICA_DIR is not set: run the specs through make test")
      local ctl = function(cmd)
        assert(os.execute(string.format("%s %s '%s' >/dev/null 2>&1", SCRIPT[drv.name], cmd, dir)),
          cmd .. " failed")
      end
      local RETRY = 5 -- long enough for replica-start to finish on a loaded machine
      local ds, nodes = source({ read_your_writes = false, replica_retry_after = RETRY })
      ds:select("SELECT 1 AS one")
      assert.same({ "replica1" }, nodes)
      direct:dispose()
      ctl("replica-stop")
      local down_at
      local ok, err = pcall(function()
        for i = #nodes, 1, -1 do nodes[i] = nil end
        down_at = require("ormed.core").clock()
        assert.equal(1, #ds:select("SELECT id FROM rep_items WHERE id = 1"))
        assert.equal(1, Item:query({ connection = ds }):where_equals("id", 1):count())
        assert.equal("primary", nodes[#nodes])
        local s = ds:stats()
        assert.is_true(s.replicas[1].down)
        assert.equal(0, s.replicas[1].open)
      end)
      ctl("replica-start")
      direct = orm.DataSource({ name = "rep_direct_" .. drv.name, driver = replica() }):init()
      assert(ok, err)
      -- still left out before replica_retry_after ...
      assert.is_true(require("ormed.core").clock() - down_at < RETRY - 0.5,
        "the replica restarted too slowly to check the retry window")
      for i = #nodes, 1, -1 do nodes[i] = nil end
      ds:select("SELECT 1 AS one")
      assert.same({ "primary" }, nodes)
      -- ... tried again after it
      sleep(math.max(0, down_at + RETRY + 0.1 - require("ormed.core").clock()))
      eventually(function()
        ds:select("SELECT 1 AS one")
        return nodes[#nodes] == "replica1"
      end, 10, "the replica to be used again")
      local s = ds:stats()
      assert.is_false(s.replicas[1].down)
      assert.equal(1, s.replicas[1].open) -- a new pool on the restarted server
    end)

    it("max_replica_lag leaves out a replica known to be further behind", function()
      local ds, nodes = source({ read_your_writes = false, max_replica_lag = 1 })
      eventually(function() -- the replica may have been restarted just before
        ds:select("SELECT 1 AS one")
        return nodes[#nodes] == "replica1"
      end, 10, "the replica to be used")
      pause()
      finally(resume)
      local id = new_id()
      ds:execute("INSERT INTO rep_items (id, name) VALUES (?, ?)", { id, "lag" })
      sleep(1.1)
      eventually(function()
        for i = #nodes, 1, -1 do nodes[i] = nil end
        ds:select("SELECT 1 AS one")
        return nodes[#nodes] == "primary"
      end, 10, "the lagging replica to be left out")
      local s = ds:stats()
      assert.is_false(s.replicas[1].down)
      assert.is_true(s.replicas[1].lag > 1)
      resume()
      replicated(id)
      sleep(1.1)
      eventually(function()
        ds:select("SELECT 1 AS one")
        return nodes[#nodes] == "replica1"
      end, 10, "the replica to be used again")
    end)
  end)

  describe("stats and registration", function()
    it("stats() carries reads_primary, reads_replica and one entry per replica", function()
      local ds = source({ read_your_writes = false })
      ds:select("SELECT 1 AS one")
      ds:select("SELECT 1 AS one")
      ds:select("SELECT 1 AS one", nil, { role = "write" })
      local s = ds:stats()
      assert.equal(1, s.reads_primary)
      assert.equal(2, s.reads_replica)
      local r = s.replicas[1]
      assert.equal("127.0.0.1", r.host)
      assert.equal(1, r.open)
      assert.equal(0, r.in_use)
      assert.is_true(r.queries >= 2)
      assert.equal(0, r.errors)
      assert.is_false(r.down)
      assert.is_number(r.lag)
      assert.is_number(s.open)
      assert.is_number(s.queries)
    end)

    it("TenantManager, factories and the registration helpers accept replicas", function()
      local manager = orm.ConnectionManager()
      local tenants = orm.TenantManager({ manager = manager, driver = function() return adapter() end,
        replicas = function() return { replica() } end, read_your_writes = false })
      local tds = tenants:register("t1")
      local nodes = {}
      tds:listen(function(e) nodes[#nodes + 1] = e.node end)
      tds:select("SELECT 1 AS one")
      assert.same({ "replica1" }, nodes)
      tenants:dispose()

      local register = drv.name == "postgres" and orm.register_postgres_orm_connection
        or orm.register_mysql_orm_connection
      local h = register({ name = "rep_helper", manager = manager,
        database = orm.DatabaseConfig({ driver = drv.name, options = { url = drv.url } }),
        replicas = { RURL }, read_your_writes = false })
      local conn = manager:connection("rep_helper")
      nodes = {}
      conn:listen(function(e) nodes[#nodes + 1] = e.node end)
      conn:select("SELECT 1 AS one")
      assert.same({ "replica1" }, nodes)
      assert.equal(1, #conn:stats().replicas)
      h:dispose()

      manager:register("rep_factory", orm.ConnectionConfig({ name = "rep_factory",
        replicas = { replica() }, read_your_writes = false }), function(config)
        return orm.OrmConnection({ config = config, driver = adapter() })
      end)
      conn = manager:connection("rep_factory")
      nodes = {}
      conn:listen(function(e) nodes[#nodes + 1] = e.node end)
      conn:select("SELECT 1 AS one")
      assert.same({ "replica1" }, nodes)
      manager:unregister("rep_factory")
    end)
  end)
end)
