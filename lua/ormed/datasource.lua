--- ormed.datasource: DataSource, a named database with its own connection
-- pool (in C), raw SQL, plain-table queries, transactions pinned to one
-- connection per coroutine, statement listeners, statistics and health.
-- OrmConnection is a DataSource built from a ConnectionConfig by a factory.
-- @module ormed.datasource
local core = require("ormed.core")
local errors = require("ormed.errors")
local ConnectionManager = require("ormed.manager")
local Query = require("ormed.query")
local util = require("ormed.util")

local DataSource = {}
DataSource.__index = DataSource

-- Transactions open in each coroutine: active[co][ds] = connection.
-- Weak keys: a finished coroutine takes its entry with it.
local active = setmetatable({}, { __mode = "k" })

local DEFAULT_POOL = { max = 10, min = 1, acquire_timeout = 5, idle_timeout = 60, health_check = 2 }

local ScopeRegistry = {}
ScopeRegistry.__index = ScopeRegistry

--- The scopes of a data source (`ds.context.scope_registry`): global
-- scopes registered per model, applied to every query of that model run
-- through the data source (a tenant column, say).
-- @type ScopeRegistry

--- register_scope(Model, fn, id?): fn(query) runs on every query of Model
-- through this data source. Returns the id (generated when not given).
function ScopeRegistry:register_scope(model, fn, id)
  errors.check(type(model) == "table", "register_scope(Model, fn, id) needs a model")
  errors.check(type(fn) == "function", "register_scope(Model, fn, id) needs a function")
  self._n = self._n + 1
  id = id or ("scope" .. self._n)
  local list = self._by_model[model]
  if not list then
    list = {}
    self._by_model[model] = list
  end
  for i, s in ipairs(list) do
    if s.id == id then table.remove(list, i) break end
  end
  list[#list + 1] = { id = id, fn = fn }
  return id
end

--- remove_scope(Model, id): removes a scope registered for Model; true when there was one.
function ScopeRegistry:remove_scope(model, id)
  local list = self._by_model[model] or {}
  for i, s in ipairs(list) do
    if s.id == id then table.remove(list, i) return true end
  end
  return false
end

--- The scopes of a model, in registration order: list of { id, fn }.
function ScopeRegistry:scopes_for(model)
  return self._by_model[model] or {}
end

-- As scopes_for, but nil when the model has none (no list made per query).
function ScopeRegistry:_scopes(model)
  return self._by_model[model]
end

local function new_scope_registry()
  return setmetatable({ _by_model = setmetatable({}, { __mode = "k" }), _n = 0 }, ScopeRegistry)
end

local function merge_pool(opts)
  local p = {}
  for k, v in pairs(DEFAULT_POOL) do p[k] = v end
  for k, v in pairs(opts or {}) do p[k] = v end
  if p.min > p.max then p.min = p.max end
  return p
end

-- statement_timeout and connect_timeout (seconds, optional), checked.
local function check_timeouts(opts)
  for _, k in ipairs({ "statement_timeout", "connect_timeout" }) do
    local v = opts[k]
    errors.check(v == nil or (type(v) == "number" and v > 0),
      "%s must be a positive number of seconds", k)
  end
  return { statement_timeout = opts.statement_timeout, connect_timeout = opts.connect_timeout }
end

--- A named database with its own connection pool: raw SQL, plain-table
-- queries, model queries, transactions pinned to the current coroutine,
-- listeners, statistics. Create with `orm.DataSource{...}`, then `init()`.
-- @type DataSource

--- orm.DataSource{ name, driver, entities?, pool?, manager?, statement_timeout?, connect_timeout? }
-- (timeouts in seconds: a longer statement is cancelled and raises query_timeout).
function DataSource.new(opts)
  errors.check(type(opts) == "table", "DataSource expects a table of options")
  errors.check(type(opts.name) == "string" and opts.name ~= "",
    "DataSource needs a name (a non-empty string)")
  errors.check(type(opts.driver) == "table" and type(opts.driver.params) == "table",
    "DataSource '%s' needs a driver adapter (orm.SqliteDriverAdapter.file(...), ...)", opts.name)
  local self = setmetatable({
    name = opts.name,
    driver = opts.driver,
    entities = opts.entities or {},
    pool_options = merge_pool(opts.pool),
    manager = opts.manager or ConnectionManager.instance,
    context = { scope_registry = new_scope_registry() },
    _listeners = {},
    _held = setmetatable({}, { __mode = "k" }), -- weak: a collected conn goes back
    _pool = nil,
  }, DataSource)
  local leak = self.pool_options.leak_timeout
  errors.check(leak == nil or (type(leak) == "number" and leak > 0),
    "pool.leak_timeout must be a positive number of seconds")
  self._leak_timeout = leak
  self.timeouts = check_timeouts(opts)
  return self
end

setmetatable(DataSource, { __call = function(_, opts) return DataSource.new(opts) end })

-- Opens the pool (min connections) and registers with the manager; the
-- first data source registered becomes the default. Idempotent.
-- Opens the pool, named after the data source, with its listeners.
local function open_pool(self)
  local pool = core.pool_new(self.driver.params, self.pool_options, self.timeouts)
  local info = pool:info()
  info.name = self.name
  info.listeners = self._listeners
  self._pool = pool
end

-- Closes the pool; false when none was open.
local function close_pool(self)
  local pool = self._pool
  if not pool then return false end
  self._pool = nil
  pool:close()
  return true
end

--- Opens the pool (`pool.min` connections, default 1) and registers with the manager; the first
-- data source initialised becomes the default connection. Idempotent; returns the data source.
function DataSource:init()
  if self._pool then return self end
  open_pool(self)
  local ok, err = pcall(self.manager.add_instance, self.manager, self.name, self,
    self.replace)
  if not ok then
    close_pool(self)
    error(err, 2)
  end
  return self
end

--- True once init() has run (and dispose() has not).
function DataSource:is_initialized()
  return self._pool ~= nil
end

--- Closes every connection and unregisters. Twice is harmless.
function DataSource:dispose()
  if close_pool(self) and self.manager:has(self.name) then
    self.manager:unregister(self.name, self)
  end
end

--- The name of this data source (its connection name).
function DataSource:connection_name()
  return self.name
end

-- Leak detection (pool.leak_timeout): every connection a transaction takes
-- is noted in self._held with when (core.clock) and where (a traceback);
-- whenever the data source is used (each statement, transaction, stats())
-- and when a connection goes back, one held longer than leak_timeout is
-- reported once to the listeners as { event = "leak", connection, held,
-- traceback }.
local function check_leaks(self)
  local held = self._held
  if next(held) == nil then return end
  local now, limit, found = core.clock(), self._leak_timeout, nil
  for _, h in pairs(held) do
    if not h.reported and now - h.taken > limit then
      h.reported = true
      found = found or {}
      found[#found + 1] = { event = "leak", connection = self.name, held = now - h.taken,
        traceback = h.traceback }
    end
  end
  if found then
    for _, event in ipairs(found) do
      for _, fn in ipairs(self._listeners) do fn(event) end
    end
  end
end

local function pool_of(self)
  local pool = self._pool
  if pool == nil then
    error(errors.Error({ kind = "not_initialized", connection = self.name,
      message = string.format("data source '%s' is not initialised (call init() first)",
        self.name) }), 3)
  end
  if self._leak_timeout then check_leaks(self) end
  return pool
end

--- The dialect name: "sqlite", "postgres" or "mysql".
function DataSource:dialect()
  return pool_of(self):dialect()
end

-- The connection transaction `co` holds on this data source, or nil.
local function tx_conn(self, co)
  local txs = active[co or coroutine.running()]
  return txs and txs[self]
end

-- Where a statement runs: the current coroutine's transaction connection
-- on this data source, else the pool. A write while this coroutine has a
-- transaction open on another data source (and none here) raises
-- cross_connection_transaction.
function DataSource:_target(write)
  local pool = pool_of(self)
  local txs = active[coroutine.running()]
  if txs == nil then return pool end
  local conn = txs[self]
  if conn then return conn end
  if write and next(txs) ~= nil then
    local other = next(txs)
    error(errors.Error({ kind = "cross_connection_transaction", connection = self.name,
      message = string.format("cannot write through '%s' inside a transaction on '%s': "
        .. "a transaction cannot span databases (open one on '%s' too, or compensate)",
        self.name, other.name, self.name) }), 3)
  end
  return pool
end

--- True when the current coroutine has a transaction open on this data source.
function DataSource:in_transaction()
  return tx_conn(self) ~= nil
end

--- select(sql, bindings?): rows as plain tables.
function DataSource:select(sql, bindings)
  return self:_target(false):run(sql, bindings, "rows")
end

--- execute(sql, bindings?): { affected_rows, last_insert_id }.
function DataSource:execute(sql, bindings)
  return self:_target(true):run(sql, bindings, "exec")
end

--- A plain-table query on `name` (rows come back as plain tables).
function DataSource:table(name)
  pool_of(self)
  return Query.new(self, name)
end

--- A query for Model on this data source.
function DataSource:query(model)
  errors.check(type(model) == "table" and model.query, "query(Model) needs a model")
  return model:query({ connection = self })
end

--- The schema builder of this data source (see ormed.schema).
function DataSource:schema()
  pool_of(self)
  return require("ormed.schema").new(self)
end

local function finish(ok, ...)
  if ok then return ... end
  error((...), 0)
end

--- transaction(fn): fn(ds) runs with every statement of this data source
-- (in this coroutine) on one connection; commits when fn returns, rolls
-- back and re-raises when it raises. Nested calls are savepoints.
function DataSource:transaction(fn)
  errors.check(type(fn) == "function", "transaction(fn) needs a function")
  local pool = pool_of(self)
  local co = coroutine.running()
  local conn = tx_conn(self, co)
  local outer = conn == nil
  if outer then
    conn = pool:acquire()
    active[co] = active[co] or {}
    active[co][self] = conn
    if self._leak_timeout then
      self._held[conn] = { taken = core.clock(),
        traceback = debug.traceback("connection taken by a transaction", 2) }
    end
  end
  local function close_outer()
    if outer then
      active[co][self] = nil
      if next(active[co]) == nil then active[co] = nil end
      if self._leak_timeout then
        check_leaks(self)
        self._held[conn] = nil
      end
      conn:release()
    end
  end
  local ok, err = pcall(conn.begin, conn)
  if not ok then
    close_outer()
    error(err, 2)
  end
  local results = table.pack(pcall(fn, self))
  if results[1] then
    ok, err = pcall(conn.commit, conn)
    if not ok then
      pcall(conn.rollback, conn)
      close_outer()
      error(err, 2)
    end
  else
    pcall(conn.rollback, conn)
  end
  close_outer()
  return finish(table.unpack(results, 1, results.n))
end

--- listen(fn): fn(event) after every statement, event = { connection, sql,
-- bindings, duration_ms, rows, error }, and once per leaked connection
-- (pool.leak_timeout), event = { event = "leak", connection, held,
-- traceback }. Returns a function that removes it.
function DataSource:listen(fn)
  errors.check(type(fn) == "function", "listen(fn) needs a function")
  return util.add_handler(self._listeners, fn)
end

--- stats(): { open, in_use, idle, waits, timeouts, queries, errors,
-- prepared, expired, total_ms } (expired: connections closed for reaching
-- pool.max_lifetime). Also checks for leaked connections.
function DataSource:stats()
  return pool_of(self):stats()
end

--- ping(): true, or raises connection_failed / connection_lost.
function DataSource:ping()
  return pool_of(self):ping()
end

--- A data source built from a ConnectionConfig by a factory or the
-- connection manager; it has every method of a DataSource.
-- @type OrmConnection

-- OrmConnection{ config = ConnectionConfig, driver = adapter, registry? }
local OrmConnection = setmetatable({}, { __index = DataSource })
OrmConnection.__index = OrmConnection

--- orm.OrmConnection{ config = ConnectionConfig, driver = adapter, registry? }: a data source built
-- by a factory (same methods as a DataSource).
function OrmConnection.new(opts)
  errors.check(type(opts) == "table", "OrmConnection expects a table of options")
  local config = opts.config or {}
  local name = opts.name or config.name
  local self = DataSource.new({
    name = name,
    driver = opts.driver,
    entities = opts.registry and opts.registry:models() or opts.entities,
    pool = opts.pool or config.pool,
    manager = opts.manager,
    statement_timeout = opts.statement_timeout or config.statement_timeout,
    connect_timeout = opts.connect_timeout or config.connect_timeout,
  })
  self.config = config
  self.registry = opts.registry
  return setmetatable(self, OrmConnection)
end

--- Registration with the manager is the factory's job: an OrmConnection
-- only opens its pool.
function OrmConnection:init()
  if not self._pool then open_pool(self) end
  return self
end

--- Closes the connection pool.
function OrmConnection:dispose()
  close_pool(self)
end

--- OrmConnection.from_manager(name, manager?): the connection registered
-- under name.
function OrmConnection.from_manager(name, manager)
  return (manager or ConnectionManager.instance):connection(name)
end

setmetatable(OrmConnection, {
  __index = DataSource,
  __call = function(_, opts) return OrmConnection.new(opts) end,
})

return { DataSource = DataSource, OrmConnection = OrmConnection,
  ScopeRegistry = ScopeRegistry }
