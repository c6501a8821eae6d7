-- ormed.datasource: DataSource, a named database with its own connection
-- pool (in C), raw SQL, plain-table queries, transactions pinned to one
-- connection (shared with the coroutines the opener resumes), statement
-- listeners, statistics and health.
-- OrmConnection is a DataSource built from a ConnectionConfig by a factory.
local core = require("ormed.core")
local errors = require("ormed.errors")
local ConnectionManager = require("ormed.manager")
local Query = require("ormed.query")
local util = require("ormed.util")

local DataSource = {}
DataSource.__index = DataSource

-- Transactions, by the coroutines inside a transaction() call:
-- active[co][ds] = tx, tx = { conn, seq, closed? }. The opener holds the
-- outer call; a coroutine it resumes that calls transaction() on ds holds
-- a nested one (a savepoint) on the same tx. Weak keys: a finished
-- coroutine takes its entry with it.
local active = setmetatable({}, { __mode = "k" })
local tx_seq = 0

local DEFAULT_POOL = { max = 10, min = 1, acquire_timeout = 5, idle_timeout = 60, health_check = 2 }

local ScopeRegistry = {}
ScopeRegistry.__index = ScopeRegistry

-- register_scope(Model, fn, id?): fn(query) runs on every query of Model
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

function ScopeRegistry:remove_scope(model, id)
  local list = self._by_model[model] or {}
  for i, s in ipairs(list) do
    if s.id == id then table.remove(list, i) return true end
  end
  return false
end

-- The scopes of a model, in registration order: list of { id, fn }.
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

-- orm.DataSource{ name, driver, entities?, pool?, manager? }
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
    pool_options = merge_pool(opts.pool),
    manager = opts.manager or ConnectionManager.instance,
    context = { scope_registry = new_scope_registry() },
    _listeners = {},
    _pool = nil,
  }, DataSource)
  return self
end

setmetatable(DataSource, { __call = function(_, opts) return DataSource.new(opts) end })

-- Opens the pool (min connections) and registers with the manager; the
-- first data source registered becomes the default. Idempotent.
-- Opens the pool, named after the data source, with its listeners.
local function open_pool(self)
  local pool = core.pool_new(self.driver.params, self.pool_options)
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

function DataSource:is_initialized()
  return self._pool ~= nil
end

-- Closes every connection and unregisters. Twice is harmless.
function DataSource:dispose()
  if close_pool(self) and self.manager:has(self.name) then
    self.manager:unregister(self.name, self)
  end
end

function DataSource:connection_name()
  return self.name
end

local function pool_of(self)
  local pool = self._pool
  if pool == nil then
    error(errors.Error({ kind = "not_initialized", connection = self.name,
      message = string.format("data source '%s' is not initialised (call init() first)",
        self.name) }), 3)
  end
  return pool
end

-- The dialect name: "sqlite", "postgres" or "mysql".
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
-- pool. A write while it belongs to a transaction on another data source
-- (and none here) raises cross_connection_transaction.
function DataSource:_target(write)
  local pool = pool_of(self)
  if next(active) == nil then return pool end
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
      return pool
    end
  end
  if tx.closed then raise_closed(self, 3) end
  return tx.conn
end

function DataSource:in_transaction()
  local tx = current_tx(self)
  return tx ~= nil and not tx.closed
end

-- select(sql, bindings?): rows as plain tables.
function DataSource:select(sql, bindings)
  return self:_target(false):run(sql, bindings, "rows")
end

-- execute(sql, bindings?): { affected_rows, last_insert_id }.
function DataSource:execute(sql, bindings)
  return self:_target(true):run(sql, bindings, "exec")
end

-- A plain-table query on `name` (rows come back as plain tables).
function DataSource:table(name)
  pool_of(self)
  return Query.new(self, name)
end

-- A query for Model on this data source.
function DataSource:query(model)
  errors.check(type(model) == "table" and model.query, "query(Model) needs a model")
  return model:query({ connection = self })
end

-- The schema builder of this data source (see ormed.schema).
function DataSource:schema()
  pool_of(self)
  return require("ormed.schema").new(self)
end

local function finish(ok, ...)
  if ok then return ... end
  error((...), 0)
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
  conn:release()
  if not ok then error(err, 0) end
  if results[1] and not in_order then out_of_order(self, 2) end
end

-- transaction(fn): fn(ds) runs with every statement of this data source
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
  end
  local conn = tx.conn
  active[co] = active[co] or {}
  local prev = active[co][self]
  active[co][self] = tx
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
      conn:release()
    end
    error(level, 2)
  end
  local results = table.pack(pcall(fn, self))
  leave()
  if outer then
    ok, level = pcall(end_outer, self, tx, level, results)
    if not ok then error(level, 2) end
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

-- listen(fn): fn(event) after every statement, event = { connection, sql,
-- bindings, duration_ms, rows, error }. Returns a function that removes it.
function DataSource:listen(fn)
  errors.check(type(fn) == "function", "listen(fn) needs a function")
  return util.add_handler(self._listeners, fn)
end

-- stats(): { open, in_use, idle, waits, timeouts, queries, errors,
-- prepared, total_ms }.
function DataSource:stats()
  return pool_of(self):stats()
end

-- ping(): true, or raises connection_failed / connection_lost.
function DataSource:ping()
  return pool_of(self):ping()
end

-- OrmConnection{ config = ConnectionConfig, driver = adapter, registry? }
local OrmConnection = setmetatable({}, { __index = DataSource })
OrmConnection.__index = OrmConnection

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
  })
  self.config = config
  self.registry = opts.registry
  return setmetatable(self, OrmConnection)
end

-- Registration with the manager is the factory's job: an OrmConnection
-- only opens its pool.
function OrmConnection:init()
  if not self._pool then open_pool(self) end
  return self
end

function OrmConnection:dispose()
  close_pool(self)
end

-- OrmConnection.from_manager(name, manager?): the connection registered
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
