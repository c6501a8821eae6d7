--- ormed: the Lua ORM. `local orm = require("ormed")` gives the whole public
-- API of ../shared/design/API.md: drivers, models, queries, data sources,
-- connection management, tenants, schema and migrations.
--
-- Where each part of `orm` is documented:
--
--  * drivers (orm.SqliteDriverAdapter, PostgresDriverAdapter, MySqlDriverAdapter, DatabaseConfig,
--  driver_from_url): ormed.drivers
--  * orm.DataSource, orm.OrmConnection and `ds.context.scope_registry`: ormed.datasource
--  * orm.ConnectionManager: ormed.manager
--  * orm.ModelRegistry, ConnectionConfig, OrmConnectionFactory and the `register_*_orm_connection`
--  helpers: ormed.factory
--  * orm.TenantManager: ormed.tenant
--  * orm.model, the relations (has_one, has_many, belongs_to, belongs_to_many), model classes
--  and instances: ormed.model; their queries: ormed.model_query
--  * plain-table queries (`ds:table(name)`): ormed.query
--  * `ds:schema()` and `orm.schema(ds)`, blueprints and columns: ormed.schema
--  * orm.Migrator: ormed.migrator; the `ormed` command: ormed.cli
--  * orm.json: ormed.json
--  * orm.Error: ormed.errors
--  * orm.set_waiter (queries that yield to an event loop): below; ready waiters ormed.io.cqueues
--  and ormed.io.luv
--  * `orm.null`: SQL NULL where a Lua nil cannot stand (inside a list); `orm.blob(bytes)` binds
--  bytes as binary data; `orm._VERSION` is "ormed 0.1.0"
-- @module ormed
local core = require("ormed.core")
local errors = require("ormed.errors")
local drivers = require("ormed.drivers")
local ConnectionManager = require("ormed.manager")
local datasource = require("ormed.datasource")
local factory = require("ormed.factory")
local TenantManager = require("ormed.tenant")

-- orm.blob(bytes): bytes (a string) bound as binary data.
local function blob(bytes)
  errors.check(type(bytes) == "string", "orm.blob(bytes) needs a string, got %s", type(bytes))
  return core.blob(bytes)
end

local orm = {
  _VERSION = "ormed 0.1.0",
  null = core.null,
  blob = blob,
  Error = errors.Error,

  SqliteDriverAdapter = drivers.SqliteDriverAdapter,
  PostgresDriverAdapter = drivers.PostgresDriverAdapter,
  MySqlDriverAdapter = drivers.MySqlDriverAdapter,
  DatabaseConfig = drivers.DatabaseConfig,
  driver_from_url = drivers.driver_from_url,

  DataSource = datasource.DataSource,
  OrmConnection = datasource.OrmConnection,
  ConnectionManager = ConnectionManager,
  ConnectionConfig = factory.ConnectionConfig,
  ModelRegistry = factory.ModelRegistry,
  OrmConnectionFactory = factory.OrmConnectionFactory,
  register_sqlite_orm_connection = factory.register_sqlite_orm_connection,
  register_postgres_orm_connection = factory.register_postgres_orm_connection,
  register_mysql_orm_connection = factory.register_mysql_orm_connection,
  TenantManager = TenantManager,
}

--- orm.set_waiter(fn | nil): with a waiter, every PostgreSQL statement that would
-- block calls fn(fd, mode, timeout) instead (mode "r", "w" or "rw"; timeout in seconds
-- or nil), from the calling coroutine, so fn may yield to the host's event loop
-- (ready ones: `require("ormed.io.cqueues")`, `require("ormed.io.luv")`). nil goes back to
-- blocking calls, the default.
function orm.set_waiter(fn)
  core.set_waiter(fn)
end

-- Parts loaded on first use: orm.<name> comes from require(module)[field].
local LAZY = {
  model = { "ormed.model", "model" },
  has_one = { "ormed.model", "has_one" },
  has_many = { "ormed.model", "has_many" },
  belongs_to = { "ormed.model", "belongs_to" },
  belongs_to_many = { "ormed.model", "belongs_to_many" },
  json = { "ormed.json" },
  schema = { "ormed.schema", "new" },
  Migrator = { "ormed.migrator", "Migrator" },
}

return setmetatable(orm, {
  __index = function(t, name)
    local spec = LAZY[name]
    if spec == nil then return nil end
    local mod = require(spec[1])
    local v = spec[2] and mod[spec[2]] or mod
    rawset(t, name, v)
    return v
  end,
})
