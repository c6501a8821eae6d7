-- examples/tenants.lua: multi-tenancy two ways, on SQLite (no server):
-- a database per tenant (TenantManager, migrated tenant by tenant), and a
-- shared database whose rows carry a tenant column, filtered by a global
-- scope. Run with `make example`.
local orm = require("ormed")

local Project = orm.model("Project", {
  fields = { id = "integer", name = "string", tenant_id = "string" },
  fillable = { "name", "tenant_id" },
})

-- A database per tenant. Registering opens nothing: a tenant's database is
-- opened the first time it is used, so thousands of tenants cost little.
local tenants = orm.TenantManager({
  driver = function(id) return orm.SqliteDriverAdapter.file("tenant_" .. id .. ".sqlite") end,
  entities = { Project },
  prefix = "tenant:",
})
for _, id in ipairs({ "acme", "globex", "initech" }) do
  os.remove("tenant_" .. id .. ".sqlite")
  tenants:register(id)
end

-- One schema for every tenant (a Migrator over migration files does the same:
-- orm.Migrator.for_tenants(tenants, { path = "migrations" }):migrate()).
tenants:each(function(id, ds)
  ds:schema():create_table("projects", function(t)
    t:id(); t:string("name"); t:string("tenant_id"):nullable()
  end)
  for i = 1, #id do Project:create({ name = id .. " project " .. i }, { connection = ds.name }) end
end)

tenants:each(function(id)
  local conn = tenants:connection_for(id)
  print(("%-8s %-16s %d projects"):format(id, conn, Project:count({ connection = conn })))
end)

-- A shared database: one table, a tenant column, a scope that fills in the filter.
os.remove("shared.sqlite")
local shared = orm.DataSource({ name = "shared", driver = orm.SqliteDriverAdapter.file("shared.sqlite") }):init()
shared:schema():create_table("projects", function(t)
  t:id(); t:string("name"); t:string("tenant_id"):index()
end)
for _, row in ipairs({ { "acme", "Rockets" }, { "acme", "Anvils" }, { "globex", "Domes" } }) do
  Project:create({ tenant_id = row[1], name = row[2] }, { connection = "shared" })
end

local current = "acme"
shared.context.scope_registry:register_scope(Project, function(q)
  q:where_equals("tenant_id", current)
end, "tenant")

local q = Project:query({ connection = "shared" })
print("shared, as acme:", #q:get(), "projects;", (q:to_sql()))
current = "globex"
print("shared, as globex:", table.concat(Project:query({ connection = "shared" }):pluck("name"), ", "))
print("shared, all tenants (scope lifted):",
  Project:query({ connection = "shared" }):without_global_scope("tenant"):count())

tenants:each(function(id) os.remove("tenant_" .. id .. ".sqlite") end)
tenants:dispose()
shared:dispose()
os.remove("shared.sqlite")
