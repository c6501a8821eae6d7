--- ormed.replicas: read replicas of a data source (API section 7). One pool
-- per server; outside a transaction reads go to a healthy replica (round
-- robin) and writes to the primary; a coroutine reads its own writes
-- (`read_your_writes = "position"`: by the replicas' replay positions,
-- "sticky": from the primary for `sticky_seconds`, false: never); a replica
-- that fails is left out for `replica_retry_after` seconds, one further
-- behind than `max_replica_lag` seconds is left out. The position and lag
-- queries are the driver's (core.dialect): nothing here knows a database.
-- @module ormed.replicas
local core = require("ormed.core")
local errors = require("ormed.errors")

local M = {}

-- How long a replica's replay position and lag are trusted, in seconds.
local POSITION_TTL = 0.05
local LAG_TTL = 1

-- {==== positions ====}

-- Parses a position to something `covers` compares: an integer (LSN) or a
-- table domain -> sequence number (GTID list).
local PARSE = {
  lsn = function(s)
    local hi, lo = tostring(s):match("^(%x+)/(%x+)$")
    if not hi then return nil end
    return (tonumber(hi, 16) << 32) | tonumber(lo, 16)
  end,
  gtid = function(s)
    local t = {}
    for d, n in tostring(s):gmatch("(%d+)%-%d+%-(%d+)") do
      t[tonumber(d)] = math.tointeger(tonumber(n))
    end
    return t
  end,
}

-- True when replica position r has replayed everything up to primary
-- position p.
local function covers(r, p)
  if r == nil then return false end
  if type(p) == "number" then return r >= p end
  for d, n in pairs(p) do
    if (r[d] or -1) < n then return false end
  end
  return true
end

-- {==== configuration ====}

local RYW = { position = true, sticky = true }

local function positive(v, what, default)
  if v == nil then return default end
  errors.check(type(v) == "number" and v >= 0, "%s must be a number of seconds", what)
  return v
end

local function host_of(params)
  return params.host or params.socket or "localhost"
end

--- configure(ds, opts): the replica state of a new data source from its
-- options (replicas, read_your_writes, sticky_seconds, replica_retry_after,
-- max_replica_lag), or nil when it has no replicas.
function M.configure(ds, opts)
  local list = opts.replicas
  if list == nil then return nil end
  local kind = ds.driver.params.driver
  local dialect = core.dialect(kind) or {}
  if not dialect.position_sql then
    errors.raise("invalid_argument", "data source '%s': the %s driver has no replication, "
      .. "so it takes no replicas", ds.name, tostring(kind))
  end
  errors.check(type(list) == "table", "data source '%s': replicas must be a list of driver "
    .. "adapters", ds.name)
  local ryw = opts.read_your_writes
  if ryw == nil then ryw = "position" end
  errors.check(ryw == false or RYW[ryw], "read_your_writes must be \"position\", \"sticky\" "
    .. "or false")
  local nodes = {}
  for i, a in ipairs(list) do
    errors.check(type(a) == "table" and type(a.params) == "table",
      "data source '%s': replica %d is not a driver adapter", ds.name, i)
    if a.params.driver ~= kind then
      errors.raise("invalid_argument", "data source '%s': replica %d is a %s server, the "
        .. "primary a %s one (replicas use the primary's driver)", ds.name, i,
        tostring(a.params.driver), tostring(kind))
    end
    nodes[i] = { name = "replica" .. i, adapter = a, base = { queries = 0, errors = 0 } }
  end
  errors.check(#nodes > 0, "data source '%s': replicas is empty", ds.name)
  return {
    dialect = dialect,
    parse = PARSE[dialect.position_kind],
    nodes = nodes,
    ryw = ryw,
    sticky = positive(opts.sticky_seconds, "sticky_seconds", 2),
    retry = positive(opts.replica_retry_after, "replica_retry_after", 5),
    max_lag = positive(opts.max_replica_lag, "max_replica_lag", nil),
    rr = 0,
    reads_primary = 0,
    reads_replica = 0,
    writes = setmetatable({}, { __mode = "k" }),     -- coroutine -> last write
    on_primary = setmetatable({}, { __mode = "k" }), -- coroutine -> depth
  }
end

-- {==== pools ====}

-- Closes a replica's pool, keeping its counters.
local function close_node(node)
  local pool = node.pool or node.dead
  node.pool, node.dead = nil, nil
  if pool and not pool:closed() then
    local s = pool:stats()
    node.base.queries = node.base.queries + s.queries
    node.base.errors = node.base.errors + s.errors
    pool:close()
  end
end

local failover

-- Opens a replica's pool; when the server cannot be reached the replica is
-- marked down until now + retry.
local function open_node(ds, rep, node)
  close_node(node)
  local ok, pool = pcall(core.pool_new, node.adapter.params, ds.pool_options)
  if not ok then
    node.down_until = core.clock() + rep.retry
    node.error = pool
    return false
  end
  local info = pool:info()
  info.name = ds.name
  info.node = node.name
  info.listeners = ds._listeners
  info.failover = function(kind, message) return failover(ds, rep, node, kind, message) end
  node.pool, node.down_until, node.error = pool, nil, nil
  node.pos, node.pos_at, node.lag, node.lag_at = nil, nil, nil, nil
  return true
end

--- open(ds): opens every replica's pool (a replica that cannot be reached
-- starts out down; only the primary's failure fails init()).
function M.open(ds)
  local rep = ds._replicas
  for _, node in ipairs(rep.nodes) do open_node(ds, rep, node) end
end

--- close(ds): closes every replica's pool.
function M.close(ds)
  for _, node in ipairs(ds._replicas.nodes) do close_node(node) end
end

-- Marks a replica down for `retry` seconds (its pool is closed on the next
-- routing decision: a statement of the engine may still hold it now).
local function mark_down(rep, node, message)
  node.down_until = core.clock() + rep.retry
  node.error = message
  if node.pool then node.dead, node.pool = node.pool, nil end
end

-- Is the replica up (reopening it once its retry time has come)?
local function usable(ds, rep, node, now)
  if node.dead then close_node(node) end
  if node.pool then return true end
  if node.down_until and now < node.down_until then return false end
  return open_node(ds, rep, node)
end

-- Runs one query on a replica; nil (and the replica marked down) when it
-- fails to answer.
local function ask(rep, node, sql, mode)
  rep.probing = true -- no failover: this question is for this server only
  local ok, v = pcall(node.pool.run, node.pool, sql, nil, mode)
  rep.probing = false
  if ok then return v, true end
  local kind = errors.Error.is(v) and v.kind
  if kind == "connection_failed" or kind == "connection_lost" or kind == "not_initialized" then
    mark_down(rep, node, v.message)
  end
  return nil, false
end

-- The replica's lag in seconds (math.huge when replay is stopped), asked
-- at most once per LAG_TTL.
local function lag_of(rep, node, now, force)
  if not force and node.lag_at and now - node.lag_at < LAG_TTL then return node.lag end
  local d = rep.dialect
  local row, ok = ask(rep, node, d.replica_lag_sql, "first")
  if not ok then return nil end
  local v
  if type(row) == "table" then
    if d.replica_lag_column then v = row[d.replica_lag_column] else v = select(2, next(row)) end
  end
  v = tonumber(v)
  node.lag, node.lag_at = v or math.huge, now
  return node.lag
end

-- The replica's replay position, asked at most once per POSITION_TTL.
local function position_of(rep, node, now)
  if node.pos_at and now - node.pos_at < POSITION_TTL then return node.pos end
  local v, ok = ask(rep, node, rep.dialect.replay_position_sql, "value")
  if not ok then return nil end
  node.pos, node.pos_at = rep.parse(v), now
  return node.pos
end

-- May this replica serve reads now?
local function healthy(ds, rep, node, now)
  if not usable(ds, rep, node, now) then return false end
  if rep.max_lag then
    local lag = lag_of(rep, node, now)
    if node.pool == nil then return false end
    if lag == nil or lag > rep.max_lag then return false end
  end
  return true
end

-- The next healthy replica in round-robin order that `accept`s it, or nil.
local function pick(ds, rep, now, accept)
  local nodes, n = rep.nodes, #rep.nodes
  for k = 1, n do
    local i = (rep.rr + k - 1) % n + 1
    local node = nodes[i]
    if healthy(ds, rep, node, now) and (accept == nil or accept(node)) then
      rep.rr = i
      return node
    end
  end
  return nil
end

-- The replica statement at `failed` could not reach its server: it is
-- left out, and the read goes on on the next healthy replica, else on the
-- primary.
failover = function(ds, rep, failed, _, message)
  mark_down(rep, failed, message)
  if rep.probing then return nil end
  local now = core.clock()
  for _, node in ipairs(rep.nodes) do
    if node ~= failed and node.pool and not (node.down_until and now < node.down_until) then
      return node.pool
    end
  end
  rep.reads_replica = rep.reads_replica - 1
  rep.reads_primary = rep.reads_primary + 1
  return ds._pool
end

-- {==== routing ====}

--- note_write(ds): the current coroutine wrote (or committed a
-- transaction) on the primary.
function M.note_write(ds)
  local rep = ds._replicas
  if rep.ryw == false then return end
  local co = coroutine.running()
  local w = rep.writes[co]
  if w == nil then
    w = {}
    rep.writes[co] = w
  end
  w.at = core.clock()
  w.pos = nil -- asked on the next read: by then the write has committed
end

local function primary(rep, pool)
  rep.reads_primary = rep.reads_primary + 1
  return pool
end

-- Where a read of this coroutine may go under read_your_writes: a replica
-- node, or nil for the primary.
local function read_own_writes(ds, rep, pool, co, now)
  local w = rep.writes[co]
  if w == nil then return pick(ds, rep, now) end
  if rep.ryw == "sticky" then
    if now - w.at < rep.sticky then return nil end
    rep.writes[co] = nil
    return pick(ds, rep, now)
  end
  if w.pos == nil then
    local ok, v = pcall(pool.run, pool, rep.dialect.position_sql, nil, "value")
    if not ok then return nil end -- the read itself will say what is wrong
    w.pos = rep.parse(v)
  end
  local node = pick(ds, rep, now, function(n) return covers(n.pos, w.pos) end)
    or pick(ds, rep, now, function(n) return covers(position_of(rep, n, now), w.pos) end)
  if node then
    local all = true
    for _, n in ipairs(rep.nodes) do
      if n.pool and not covers(n.pos, w.pos) then all = false break end
    end
    if all then rep.writes[co] = nil end
  end
  return node
end

--- route(ds, pool, write, role): the target of a statement outside a
-- transaction: the primary's pool for writes, else a replica's pool or
-- the primary's (role = "write", on_primary, read-your-writes, no healthy
-- replica).
function M.route(ds, pool, write, role)
  local rep = ds._replicas
  if write then
    M.note_write(ds)
    return pool
  end
  local co = coroutine.running()
  if role == "write" or rep.on_primary[co] then return primary(rep, pool) end
  local now = core.clock()
  local node
  if role == "read" or rep.ryw == false then
    node = pick(ds, rep, now)
  else
    node = read_own_writes(ds, rep, pool, co, now)
  end
  if node == nil then return primary(rep, pool) end
  rep.reads_replica = rep.reads_replica + 1
  return node.pool
end

--- on_primary(ds, fn, ...): fn(...) with every read of this coroutine on
-- the primary.
function M.on_primary(ds, fn, ...)
  local rep = ds._replicas
  local co = coroutine.running()
  rep.on_primary[co] = (rep.on_primary[co] or 0) + 1
  local res = table.pack(pcall(fn, ...))
  local depth = rep.on_primary[co] - 1
  rep.on_primary[co] = depth > 0 and depth or nil
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- stats(ds, s): adds reads_primary, reads_replica and replicas = { {
-- host, port, open, in_use, queries, errors, down, lag }, ... } to s (lag:
-- seconds, math.huge when replay is stopped, nil when unknown).
function M.stats(ds, s)
  local rep = ds._replicas
  local now = core.clock()
  s.reads_primary, s.reads_replica = rep.reads_primary, rep.reads_replica
  s.replicas = {}
  for i, node in ipairs(rep.nodes) do
    usable(ds, rep, node, now)
    local p = node.adapter.params
    local r = { name = node.name, host = host_of(p), port = p.port, open = 0, in_use = 0,
      queries = node.base.queries, errors = node.base.errors }
    if node.pool then lag_of(rep, node, now) end
    if node.dead then close_node(node) end
    if node.pool then
      local ps = node.pool:stats()
      r.open, r.in_use = ps.open, ps.in_use
      r.queries, r.errors = r.queries + ps.queries, r.errors + ps.errors
      r.lag = node.lag
    end
    r.down = node.pool == nil
    s.replicas[i] = r
  end
  return s
end

return M
