--- ormed.datasource: DataSource, a named database with its own connection
-- pool (in C), raw SQL, plain-table queries, transactions pinned to one
-- connection (shared with the coroutines the opener resumes), statement
-- listeners, statistics and health.
-- OrmConnection is a DataSource built from a ConnectionConfig by a factory.
-- @module ormed.datasource
local core = require("ormed.core")
local errors = require("ormed.errors")
local ConnectionManager = require("ormed.manager")
local Query = require("ormed.query")
local replicas = require("ormed.replicas")
local util = require("ormed.util")

local DataSource = {}
DataSource.__index = DataSource

local plain_query = core.plain_query

-- Transactions, by the coroutines inside a transaction() call:
-- active[co][ds] = tx, tx = { conn, seq, closed? }. The opener holds the
-- outer call; a coroutine it resumes that calls transaction() on ds holds
-- a nested one (a savepoint) on the same tx. Weak keys: a finished
-- coroutine takes its entry with it.
local active = setmetatable({}, { __mode = "k" })
local tx_seq = 0
local Guard -- the metatable of a transaction level's to-be-closed guard (below)

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
  util.routes_changed()
  return id
end

--- remove_scope(Model, id): removes a scope registered for Model; true when there was one.
function ScopeRegistry:remove_scope(model, id)
  local list = self._by_model[model] or {}
  for i, s in ipairs(list) do
    if s.id == id then
      table.remove(list, i)
      util.routes_changed()
      return true
    end
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

-- The pool options and what each takes: "count" (an integer), "seconds"
-- (a finite number >= 0) or "positive" (a finite number > 0).
local POOL_OPTIONS = { max = "count", min = "count", acquire_timeout = "seconds",
  idle_timeout = "seconds", health_check = "seconds", max_lifetime = "seconds",
  leak_timeout = "positive" }
local MAX_POOL = 100000

local function pool_names()
  local names = {}
  for k in pairs(POOL_OPTIONS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function finite(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

-- check_pool(pool, who): raises invalid_argument unless pool is nil or a
-- table of known pool options with sensible values (max an integer
-- 1..100000, min an integer 0..max, timeouts finite numbers >= 0,
-- leak_timeout > 0). Returns a copy with max and min as integers.
local function check_pool(pool, who)
  if pool == nil then return nil end
  errors.check(type(pool) == "table", "%s: pool must be a table of options (%s), got %s",
    who, pool_names(), type(pool))
  local out = {}
  for k, v in pairs(pool) do
    local want = POOL_OPTIONS[k]
    errors.check(want ~= nil, "%s: unknown pool option '%s' (%s)", who, tostring(k), pool_names())
    if want == "count" then
      local n = math.type(v) == "float" and math.tointeger(v) or v
      errors.check(math.type(n) == "integer" and n >= (k == "max" and 1 or 0) and n <= MAX_POOL,
        "%s: pool.%s must be an integer from %d to %d, got %s", who, k, k == "max" and 1 or 0,
        MAX_POOL, tostring(v))
      v = n
    else
      errors.check(finite(v) and (v > 0 or (v == 0 and want == "seconds")),
        "%s: pool.%s must be a %s number of seconds, got %s", who, k,
        want == "seconds" and "finite, non-negative" or "finite, positive", tostring(v))
    end
    out[k] = v
  end
  if out.min and out.max then
    errors.check(out.min <= out.max, "%s: pool.min (%d) must not be above pool.max (%d)", who,
      out.min, out.max)
  end
  return out
end

local function merge_pool(opts, who)
  local p = {}
  for k, v in pairs(DEFAULT_POOL) do p[k] = v end
  for k, v in pairs(check_pool(opts, who) or {}) do p[k] = v end
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

--- orm.DataSource{ name, driver, entities?, pool?, manager?, replicas?,
-- read_your_writes?, sticky_seconds?, replica_retry_after?, max_replica_lag?,
-- statement_timeout?, connect_timeout? } (replicas: ormed.replicas; timeouts
-- in seconds: a longer statement is cancelled and raises query_timeout).
function DataSource.new(opts)
  errors.check(type(opts) == "table", "DataSource expects a table of options")
  errors.check(util.is_name(opts.name),
    "DataSource needs a name (a string that is not empty or blank), got %s",
    type(opts.name) == "string" and string.format("%q", opts.name) or type(opts.name))
  errors.check(type(opts.driver) == "table" and type(opts.driver.params) == "table",
    "DataSource '%s' needs a driver adapter (orm.SqliteDriverAdapter.file(...), ...)", opts.name)
  local self = setmetatable({
    name = opts.name,
    driver = opts.driver,
    entities = opts.entities or {},
    pool_options = merge_pool(opts.pool, string.format("DataSource '%s'", opts.name)),
    manager = opts.manager or ConnectionManager.instance,
    context = { scope_registry = new_scope_registry() },
    _listeners = {},
    _held = setmetatable({}, { __mode = "k" }), -- weak: a collected conn goes back
    _pool = nil,
    _plain = false, -- the pool when nothing else decides a statement's target
  }, DataSource)
  self._leak_timeout = self.pool_options.leak_timeout or false -- a field: read per query
  self._replicas = replicas.configure(self, opts) -- nil without replicas
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
  info.node = "primary"
  self._pool = pool
  self._dialect_name = pool:dialect() -- for to_sql, which runs nothing
  -- the target of every statement outside transactions, when nothing else
  -- decides (Model:find reads it)
  if not self._replicas and not self._leak_timeout then self._plain = pool end
  util.routes_changed()
  if self._replicas then replicas.open(self) end
end

-- Closes the pool; false when none was open.
local function close_pool(self)
  local pool = self._pool
  if not pool then return false end
  self._pool = nil
  self._dialect_name = nil
  self._plain = false
  util.routes_changed()
  pool:close()
  if self._replicas then replicas.close(self) end
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
      -- protected: a listener's error must not keep the connection from
      -- going back to the pool (this runs on the way there)
      for _, fn in ipairs(self._listeners) do pcall(fn, event) end
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

-- The transactions the running coroutine belongs to, by data source: its
-- own, then those of the coroutines that resumed it (status "normal": the
-- only normal coroutines are the ones below the running one on the resume
-- chain). A coroutine resumed by anyone else (the opener is suspended)
-- finds none. Where two resumers hold one on the same data source, the
-- running coroutine's own wins, else the one opened last.
local function chain_txs()
  local co = coroutine.running()
  local found = {}
  for owner, txs in pairs(active) do
    if owner ~= co and coroutine.status(owner) == "normal" then
      for ds, tx in pairs(txs) do
        local have = found[ds]
        if have == nil or tx.seq > have.seq then found[ds] = tx end
      end
    end
  end
  for ds, tx in pairs(active[co] or {}) do found[ds] = tx end
  return found
end

-- The transaction the running coroutine belongs to on ds, or nil.
local function current_tx(ds)
  if next(active) == nil then return nil end
  local own = active[coroutine.running()]
  return own and own[ds] or chain_txs()[ds]
end

local function raise_closed(self, level)
  error(errors.Error({ kind = "invalid_argument", connection = self.name,
    message = string.format("the transaction on '%s' this coroutine joined has already "
      .. "ended (it was rolled back): finish a nested transaction before the one "
      .. "around it", self.name) }), level + 1)
end

-- Where a statement runs: the transaction connection the running
-- coroutine belongs to on this data source (see chain_txs), else the
-- pool (with replicas: the pool of the server ormed.replicas routes it
-- to; role = "read" | "write" | nil). A write while it belongs to a
-- transaction on another data source (and none here) raises
-- cross_connection_transaction.
function DataSource:_target(write, role)
  local pool = self._pool
  if pool == nil or self._leak_timeout then pool = pool_of(self) end
  if next(active) == nil then
    if self._replicas then return replicas.route(self, pool, write, role) end
    return pool
  end
  local own = active[coroutine.running()]
  local tx = own and own[self]
  if tx == nil then
    local txs = chain_txs()
    tx = txs[self]
    if tx == nil then
      local other = write and next(txs)
      if other then
        error(errors.Error({ kind = "cross_connection_transaction", connection = self.name,
          message = string.format("cannot write through '%s' inside a transaction on '%s': "
            .. "a transaction cannot span databases (open one on '%s' too, or compensate)",
            self.name, other.name, self.name) }), 3)
      end
      if self._replicas then return replicas.route(self, pool, write, role) end
      return pool
    end
  end
  if tx.closed then raise_closed(self, 3) end
  return tx.conn
end

local ROLES = { read = true, write = true }

-- The role of statement opts (nil when none).
local function role_of(opts)
  local role = opts and opts.role
  errors.check(role == nil or ROLES[role], "role must be \"read\" or \"write\", got %s",
    tostring(role))
  return role
end

--- _with_role(role): this data source with every read routed by role
-- ("read": a replica, "write": the primary), for `{ connection = ..., role
-- = ... }` opts; one per data source and role, so it can key caches.
function DataSource:_with_role(role)
  if role_of({ role = role }) == nil then return self end
  local base = rawget(self, "_base") or self
  base._roles = base._roles or {}
  local proxy = base._roles[role]
  if proxy == nil then
    proxy = setmetatable({
      _base = base,
      _target = function(_, write) return base:_target(write, role) end,
      transaction = function(_, fn) return base:transaction(fn) end,
      in_transaction = function() return base:in_transaction() end,
      select = function(_, sql, bindings, opts)
        return base:select(sql, bindings, opts and opts.role and opts or { role = role })
      end,
    }, { __index = base })
    base._roles[role] = proxy
  end
  return proxy
end

--- on_primary(fn): fn(ds) with every read of this coroutine on this data
-- source going to the primary; returns what fn returns.
function DataSource:on_primary(fn)
  errors.check(type(fn) == "function", "on_primary(fn) needs a function")
  if not self._replicas then return fn(self) end
  return replicas.on_primary(self, fn, self)
end

--- True when the current coroutine has a transaction open on this data source.
function DataSource:in_transaction()
  local tx = current_tx(self)
  return tx ~= nil and not tx.closed
end

-- Raises invalid_argument unless sql is a string and bindings nil or a table.
local function check_sql(what, sql, bindings)
  errors.check(type(sql) == "string", "%s(sql, bindings?): sql must be a string, got %s", what,
    type(sql))
  errors.check(bindings == nil or type(bindings) == "table",
    "%s(sql, bindings?): bindings must be a list, got %s", what, type(bindings))
end

--- select(sql, bindings?, opts?): rows as plain tables (opts.role: "read"
-- or "write", where a read goes with replicas).

function DataSource:select(sql, bindings, opts)
  check_sql("select", sql, bindings)
  errors.check(opts == nil or type(opts) == "table", "select(sql, bindings, opts): opts must be a table")
  return self:_target(false, role_of(opts)):run(sql, bindings, "rows")
end

--- execute(sql, bindings?): { affected_rows, last_insert_id }.
function DataSource:execute(sql, bindings)
  check_sql("execute", sql, bindings)
  return self:_target(true):run(sql, bindings, "exec")
end

--- A plain-table query on `name` (rows come back as plain tables).
function DataSource:table(name)
  if self._pool == nil or self._leak_timeout then pool_of(self) end
  return plain_query(self, name, Query) -- Query.new, inline
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

-- Before a transaction's connection goes back: reports it if it was held
-- past pool.leak_timeout, and stops watching it.
local function forget_held(self, conn)
  if self._leak_timeout then
    check_leaks(self)
    self._held[conn] = nil
  end
end

-- The error of a nested transaction that ended while one opened after it
-- (by a coroutine resumed meanwhile) was still open.
local function out_of_order(self, level)
  error(errors.Error({ kind = "invalid_argument", connection = self.name,
    message = string.format("a nested transaction on '%s' ended while one opened inside "
      .. "it (by a coroutine it resumed) was still open: the whole transaction is rolled "
      .. "back", self.name) }), level + 1)
end

-- Ends the outer level of tx: commits when fn succeeded and every nested
-- level ended first, else rolls everything back. Raises what went wrong.
local function end_outer(self, tx, level, results)
  local conn = tx.conn
  tx.closed = true
  local in_order = conn:depth() == level
  local ok, err = true, nil
  if results[1] and in_order then
    ok, err = pcall(conn.commit, conn)
    if not ok then pcall(conn.rollback, conn) end
  else
    while conn:depth() > 0 and pcall(conn.rollback, conn) do end
  end
  forget_held(self, conn)
  conn:release()
  if not ok then error(err, 0) end
  if results[1] and not in_order then out_of_order(self, 2) end
end

-- _pinned(fn): fn() with every statement of this data source (from this
-- coroutine and those it resumes) on one connection, without a
-- transaction: for session settings that must apply to several statements
-- (the schema builder's drop_all on MySQL, where DDL cannot be in one).
-- Inside a transaction, fn() simply runs in it.
function DataSource:_pinned(fn)
  local pool = pool_of(self)
  if current_tx(self) then return fn() end
  local co = coroutine.running()
  tx_seq = tx_seq + 1
  local tx = { conn = pool:acquire(), seq = tx_seq }
  active[co] = active[co] or {}
  local prev = active[co][self]
  active[co][self] = tx
  util.routes_changed()
  local results = table.pack(pcall(fn))
  local mine = active[co]
  mine[self] = prev
  if next(mine) == nil then active[co] = nil end
  tx.closed = true
  tx.conn:release()
  return finish(table.unpack(results, 1, results.n))
end

-- The to-be-closed guard of a transaction level: when the coroutine that
-- runs fn is closed (coroutine.close) while fn is suspended, __close rolls
-- the level back: the outer level rolls everything back and releases the
-- connection; a nested one rolls back to its savepoint when it is the
-- innermost level (else the outer level finds it and rolls back). The
-- normal paths set `done` first.
Guard = {
  __close = function(g)
    if g.done then return end
    g.done = true
    g.leave()
    local tx, conn = g.tx, g.tx.conn
    if g.outer then
      tx.closed = true
      while conn:depth() > 0 and pcall(conn.rollback, conn) do end
      forget_held(g.self, conn)
      conn:release()
    elseif not tx.closed and conn:depth() == g.level then
      pcall(conn.rollback, conn)
    end
  end,
}

--- transaction(fn): fn(ds) runs with every statement of this data source
-- on one connection, from this coroutine and from the coroutines it
-- resumes meanwhile (not from others); commits when fn returns, rolls
-- back and re-raises when it raises. Nested calls (here or in a coroutine
-- it resumes) are savepoints; one that is still open (its coroutine
-- suspended) when the level around it ends rolls the whole transaction
-- back and raises invalid_argument.
function DataSource:transaction(fn)
  errors.check(type(fn) == "function", "transaction(fn) needs a function")
  local pool = pool_of(self)
  local co = coroutine.running()
  local tx = current_tx(self)
  if tx and tx.closed then raise_closed(self, 2) end
  local outer = tx == nil
  if outer then
    tx_seq = tx_seq + 1
    tx = { conn = pool:acquire(), seq = tx_seq }
    if self._leak_timeout then
      self._held[tx.conn] = { taken = core.clock(),
        traceback = debug.traceback("connection taken by a transaction", 2) }
    end
  end
  local conn = tx.conn
  active[co] = active[co] or {}
  local prev = active[co][self]
  active[co][self] = tx
  util.routes_changed()
  local function leave()
    local mine = active[co]
    mine[self] = prev
    if next(mine) == nil then active[co] = nil end
  end
  local ok, level = pcall(conn.begin, conn)
  if not ok then
    leave()
    if outer then
      tx.closed = true
      forget_held(self, conn)
      conn:release()
    end
    error(level, 2)
  end
  -- coroutine.close on this coroutine while fn is suspended closes
  -- `guard`: the level is rolled back (the outer one gives its connection
  -- back) as if fn had raised.
  local guard <close> = setmetatable({ self = self, tx = tx, level = level, outer = outer,
    leave = leave }, Guard)
  local results = table.pack(pcall(fn, self))
  guard.done = true
  leave()
  if outer then
    ok, level = pcall(end_outer, self, tx, level, results)
    if not ok then error(level, 2) end
    if results[1] and self._replicas then replicas.note_write(self) end
  elseif tx.closed then
    -- the level around this one ended first and rolled everything back
    if results[1] then raise_closed(self, 2) end
  elseif conn:depth() ~= level then
    -- a level opened after this one is still open: leave the connection
    -- alone, the outer level will find it and roll back
    if results[1] then out_of_order(self, 2) end
  elseif results[1] then
    ok, level = pcall(conn.commit, conn)
    if not ok then
      pcall(conn.rollback, conn)
      error(level, 2)
    end
  else
    pcall(conn.rollback, conn)
  end
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
-- With replicas also reads_primary, reads_replica and replicas = { { host,
-- port, open, in_use, queries, errors, down, lag }, ... }.
function DataSource:stats()
  local s = pool_of(self):stats()
  if self._replicas then replicas.stats(self, s) end
  return s
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

-- opts[k], else config[k] (false counts).
local function pick(opts, config, k)
  if opts[k] ~= nil then return opts[k] end
  return config[k]
end

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
    replicas = opts.replicas or config.replicas,
    read_your_writes = pick(opts, config, "read_your_writes"),
    sticky_seconds = opts.sticky_seconds or config.sticky_seconds,
    replica_retry_after = opts.replica_retry_after or config.replica_retry_after,
    max_replica_lag = opts.max_replica_lag or config.max_replica_lag,
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
  ScopeRegistry = ScopeRegistry, check_pool = check_pool,
  _active = active } -- read-only, for Model:find's fast path
