-- bench/cases/find_replicas.lua: User:find(id) W.FINDS times on a data
-- source with a replica (ormed: every find is routed by ormed.replicas to
-- the replica), against the same calls on a plain data source (base).
-- ARCHITECTURE.md: <= 1.1x a plain data source. The replica is the one
-- scripts/with-servers.sh starts (ORMED_TEST_POSTGRES_REPLICA /
-- ORMED_TEST_MYSQL_REPLICA); without one, the replicas list points at the
-- primary itself, a stand-in for the routing cost only, and the info
-- column says so. SQLite takes no replicas. The info column adds `paired`:
-- the same ratio measured in one process (W.paired).
local W = require("workload")

local REPLICA_ENV = { postgres = "ORMED_TEST_POSTGRES_REPLICA", mysql = "ORMED_TEST_MYSQL_REPLICA" }

local finds = W.finds

-- Waits until the replica has replayed everything the primary wrote so
-- far: a token written last on the primary shows up there.
local function await_replica(ctx, replica)
  local token = tostring(os.time()) .. tostring(math.random(1e9))
  ctx.exec("DROP TABLE IF EXISTS bench_marker")
  ctx.exec("CREATE TABLE bench_marker (token VARCHAR(40))")
  ctx.exec("INSERT INTO bench_marker (token) VALUES ('" .. token .. "')")
  local deadline = W.now() + 60
  while W.now() < deadline do
    local ok, rows = pcall(replica.select, replica, "SELECT token FROM bench_marker")
    if ok and rows[1] and rows[1].token == token then return end
    os.execute("sleep 0.1")
  end
  error("bench: the replica did not catch up within 60 s")
end

return {
  label = "find(id) 20k times, data source with a replica",
  unit = "ms",
  drivers = { postgres = true, mysql = true },
  target = { base = 1.1, text = "<= 1.1x a plain data source" },
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS))
    local s = { ids = W.ids(W.FINDS, W.ROWS), User = W.models(ctx.orm) }
    if ctx.base then return s end
    local orm = ctx.orm
    local url = os.getenv(REPLICA_ENV[ctx.driver])
    s.standin = url == nil or url == ""
    local replica = s.standin and orm.driver_from_url(W.url(ctx.driver)) or orm.driver_from_url(url)
    if not s.standin then
      local probe = orm.DataSource({ name = "bench_probe", driver = orm.driver_from_url(url) }):init()
      await_replica(ctx, probe)
      probe:dispose()
    end
    s.ds = orm.DataSource({ name = "bench_replicas", driver = orm.driver_from_url(W.url(ctx.driver)),
      replicas = { replica } }):init()
    orm.ConnectionManager.instance:set_default_connection("bench_replicas")
    return s
  end,
  ormed = function(_, s)
    return finds(s.User, s.ids)
  end,
  base = function(_, s)
    return finds(s.User, s.ids)
  end,
  check = function(ctx, s, found)
    local info = "found=" .. tostring(found)
    if ctx.base then return found == W.FINDS, info end
    local st = s.ds:stats()
    -- untimed: the same ratio from blocks of 1000 finds alternating in
    -- this process
    local few, manager = { table.unpack(s.ids, 1, 1000) }, ctx.orm.ConnectionManager.instance
    local paired = W.paired(function()
      manager:set_default_connection("bench_replicas")
      finds(s.User, few)
    end, function()
      manager:set_default_connection("bench")
      finds(s.User, few)
    end, 20)
    info = info .. (" paired=%.2f reads_replica=%d reads_primary=%d%s"):format(paired, st.reads_replica,
      st.reads_primary, s.standin and " STAND-IN: no replica server, the replicas list points "
      .. "at the primary itself (routing cost only)" or " replica=" .. st.replicas[1].host
      .. ":" .. tostring(st.replicas[1].port))
    return found == W.FINDS and st.reads_replica >= W.FINDS and st.reads_primary == 0, info
  end,
}
