--- ormed.tenant: TenantManager, one database per tenant. Registering a
-- tenant creates its data source without connecting (pool min = 0), so
-- thousands of tenants cost little until they are used.
-- @module ormed.tenant
local errors = require("ormed.errors")
local util = require("ormed.util")
local ConnectionManager = require("ormed.manager")
local datasource = require("ormed.datasource")
local DataSource = datasource.DataSource

--- orm.TenantManager{ driver = function(id) return adapter end, entities?,
-- pool?, prefix?, manager?, replicas = function(id) return { adapter, ... }
-- end?, read_your_writes?, sticky_seconds?, replica_retry_after?,
-- max_replica_lag? }: one database per tenant (each with its read replicas
-- when `replicas` is given). Registering a tenant opens nothing; its data
-- source connects on first use.
-- @type TenantManager

local TenantManager = {}
TenantManager.__index = TenantManager

-- orm.TenantManager{ driver = function(id) return adapter end, entities?,
--   pool?, prefix? (connection name = prefix .. id), manager? }
local function new(opts)
  errors.check(type(opts) == "table" and type(opts.driver) == "function",
    "TenantManager needs { driver = function(tenant_id) return adapter end }")
  errors.check(opts.replicas == nil or type(opts.replicas) == "function",
    "TenantManager: replicas must be function(tenant_id) return { adapter, ... } end")
  local pool = { min = 0 }
  for k, v in pairs(datasource.check_pool(opts.pool, "TenantManager") or {}) do pool[k] = v end
  return setmetatable({
    _driver = opts.driver,
    _entities = opts.entities or {},
    _pool = pool,
    _prefix = opts.prefix or "",
    _manager = opts.manager or ConnectionManager.instance,
    _sources = {},
    _order = {},
    _replicas = opts.replicas,
    _replica_opts = { read_your_writes = opts.read_your_writes, sticky_seconds = opts.sticky_seconds,
      replica_retry_after = opts.replica_retry_after, max_replica_lag = opts.max_replica_lag },
  }, TenantManager)
end

--- The connection name of a tenant (registered or not).
function TenantManager:connection_for(id)
  errors.check(util.is_name(id), "a tenant id must be a string that is not empty or blank")
  if not self._sources[id] then
    errors.raise("connection_not_found", "tenant '%s' is not registered", id)
  end
  return self._prefix .. id
end

--- Registers a tenant (idempotent); returns its DataSource.
function TenantManager:register(id)
  errors.check(util.is_name(id), "a tenant id must be a string that is not empty or blank")
  local ds = self._sources[id]
  if ds then return ds end
  local o = self._replica_opts
  ds = DataSource({ name = self._prefix .. id, driver = self._driver(id),
    entities = self._entities, pool = self._pool, manager = self._manager,
    replicas = self._replicas and self._replicas(id), read_your_writes = o.read_your_writes,
    sticky_seconds = o.sticky_seconds, replica_retry_after = o.replica_retry_after,
    max_replica_lag = o.max_replica_lag })
  ds:init()
  self._sources[id] = ds
  self._order[#self._order + 1] = id
  return ds
end

--- The tenant's DataSource (raises connection_not_found when unknown).
function TenantManager:data_source(id)
  local ds = self._sources[id]
  if not ds then errors.raise("connection_not_found", "tenant '%s' is not registered", tostring(id)) end
  return ds
end

--- unregister(id): closes and forgets a tenant's data source.
function TenantManager:unregister(id)
  local ds = self._sources[id]
  if not ds then return false end
  ds:dispose()
  self._sources[id] = nil
  for i, v in ipairs(self._order) do
    if v == id then table.remove(self._order, i) break end
  end
  return true
end

--- Tenant ids in registration order.
function TenantManager:list()
  return { table.unpack(self._order) }
end

--- each(fn): fn(id, ds) for every tenant, in registration order.
function TenantManager:each(fn)
  for _, id in ipairs(self:list()) do fn(id, self._sources[id]) end
end

--- Closes every tenant's data source.
function TenantManager:dispose()
  for _, id in ipairs(self:list()) do self:unregister(id) end
end

return setmetatable(TenantManager, { __call = function(_, opts) return new(opts) end })
