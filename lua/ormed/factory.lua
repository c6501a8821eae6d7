--- ormed.factory: ModelRegistry, ConnectionConfig, OrmConnectionFactory and
-- the per-driver registration helpers (register_sqlite_orm_connection, ...).
-- @module ormed.factory
local errors = require("ormed.errors")
local util = require("ormed.util")
local drivers = require("ormed.drivers")
local ConnectionManager = require("ormed.manager")
local datasource = require("ormed.datasource")
local OrmConnection = datasource.OrmConnection

local M = {}

-- {==== ModelRegistry ====}

--- orm.ModelRegistry(): a list of models, given to OrmConnection{ registry = ... }.
-- @type ModelRegistry

local ModelRegistry = {}
ModelRegistry.__index = ModelRegistry

--- register(Model): adds a model; returns the registry (calls chain).
function ModelRegistry:register(model)
  errors.check(type(model) == "table" and model.name, "ModelRegistry:register needs a model")
  if not self._by_name[model.name] then
    self._list[#self._list + 1] = model
  end
  self._by_name[model.name] = model
  return self
end

--- get(name): the model registered under name, or nil.
function ModelRegistry:get(name)
  return self._by_name[name]
end

--- The registered models, as a list.
function ModelRegistry:models()
  return { table.unpack(self._list) }
end

M.ModelRegistry = setmetatable(ModelRegistry, {
  __call = function() return setmetatable({ _list = {}, _by_name = {} }, ModelRegistry) end,
})

--- Module functions.
-- @section functions

-- {==== ConnectionConfig ====}

--- orm.ConnectionConfig{ name, pool?, replace? }: a plain table with a name.
function M.ConnectionConfig(t)
  errors.check(type(t) == "table" and util.is_name(t.name),
    "ConnectionConfig needs a name (a string that is not empty or blank)")
  datasource.check_pool(t.pool, string.format("ConnectionConfig '%s'", t.name))
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- {==== OrmConnectionFactory ====}
local Factory = {}
Factory.__index = Factory

local Handle = {}
Handle.__index = Handle

--- What OrmConnectionFactory:register and the registration helpers
-- return.
-- @type Handle

--- Unregisters the connection and closes it. Twice is harmless.
function Handle:dispose()
  if self._disposed then return end
  self._disposed = true
  if self.manager:has(self.name) then self.manager:unregister(self.name) end
end

--- orm.OrmConnectionFactory(): registers connections built by a builder
-- function with a connection manager; `register` returns a Handle.
-- @type Factory

--- register{ name, connection = ConnectionConfig, builder = fn(config), replace? }
function Factory:register(t)
  errors.check(type(t) == "table", "OrmConnectionFactory:register expects a table")
  local config = t.connection or M.ConnectionConfig({ name = t.name })
  local name = t.name or config.name
  errors.check(type(t.builder) == "function", "register{...} needs a builder function")
  self.manager:register(name, config, t.builder, { replace = t.replace })
  return setmetatable({ name = name, manager = self.manager }, Handle)
end

M.OrmConnectionFactory = setmetatable(Factory, {
  __call = function(_, opts)
    return setmetatable({ manager = (opts and opts.manager) or ConnectionManager.instance }, Factory)
  end,
})

--- Registration helpers.
-- @section helpers

-- {==== registration helpers ====}
local function register_with(adapter_of)
  return function(t)
    errors.check(type(t) == "table" and util.is_name(t.name),
      "register_*_orm_connection needs { name = ..., database = orm.DatabaseConfig{...} }")
    local database = t.database or {}
    local config = t.connection or M.ConnectionConfig({ name = t.name, pool = t.pool })
    -- replicas: adapters, URLs or DatabaseConfigs of the same driver
    local reps
    if t.replicas ~= nil then
      errors.check(type(t.replicas) == "table", "replicas must be a list")
      reps = {}
      for i, r in ipairs(t.replicas) do
        if type(r) == "string" then
          reps[i] = drivers.driver_from_url(r)
        elseif type(r) == "table" and r.params then
          reps[i] = r
        else
          reps[i] = adapter_of(r)
        end
      end
    end
    return M.OrmConnectionFactory({ manager = t.manager }):register({
      name = t.name,
      connection = config,
      replace = t.replace,
      builder = function(c)
        return OrmConnection({ config = c, driver = adapter_of(database),
          registry = t.registry, pool = t.pool, replicas = reps,
          read_your_writes = t.read_your_writes, sticky_seconds = t.sticky_seconds,
          replica_retry_after = t.replica_retry_after, max_replica_lag = t.max_replica_lag })
      end,
    })
  end
end

--- orm.register_sqlite_orm_connection{ name, database = orm.DatabaseConfig{ driver = "sqlite",
-- options = { path | memory } }, registry?, pool?, replace?, manager? }: registers an
-- OrmConnection on SQLite; returns a Handle. The PostgreSQL and MySQL helpers also take
-- replicas = { url | adapter | DatabaseConfig, ... } and the replica options of a DataSource.
-- @function register_sqlite_orm_connection

M.register_sqlite_orm_connection = register_with(function(database)
  return drivers.SqliteDriverAdapter.custom({ config = database })
end)

--- orm.register_postgres_orm_connection{ name, database = orm.DatabaseConfig{ driver = "postgres",
-- options = { host, port, database, username, password } | { url } }, ... }: as
-- register_sqlite_orm_connection, on PostgreSQL.
-- @function register_postgres_orm_connection

M.register_postgres_orm_connection = register_with(function(database)
  local o = database.options or {}
  return o.url and drivers.driver_from_url(o.url) or drivers.PostgresDriverAdapter(o)
end)

--- orm.register_mysql_orm_connection{ name, database = orm.DatabaseConfig{ driver = "mysql",
-- options = {...} | { url } }, ... }: as register_sqlite_orm_connection, on MySQL / MariaDB.
-- @function register_mysql_orm_connection

M.register_mysql_orm_connection = register_with(function(database)
  local o = database.options or {}
  return o.url and drivers.driver_from_url(o.url) or drivers.MySqlDriverAdapter(o)
end)

return M
