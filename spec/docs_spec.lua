-- spec/docs_spec.lua: `make docs` builds the HTML API reference with LDoc
-- (config.ld) without a warning, and it documents every public function
-- of the design page API.md (the names below, module by module, as LDoc
-- anchors them).
local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local root = io.popen("pwd"):read("l")

local helper = require("spec.helper")
local q, read = helper.shell_quote, helper.read_file

local function words(s)
  local list = {}
  for w in s:gmatch("%S+") do list[#list + 1] = w end
  return list
end

-- module -> the documented names API.md calls for
local API = {
  ["ormed.drivers"] = words([[SqliteDriverAdapter.file SqliteDriverAdapter.memory
    SqliteDriverAdapter.custom PostgresDriverAdapter MySqlDriverAdapter DatabaseConfig driver_from_url]]),
  ["ormed.model"] = words([[model has_one has_many belongs_to belongs_to_many
    Model:all Model:find Model:find_or_fail Model:first Model:create Model:query Model:where Model:count
    Model:destroy Model:first_or_create Model:update_or_create Model:upsert Model:on
    Instance:save Instance:update Instance:delete Instance:force_delete Instance:restore Instance:refresh
    Instance:is_dirty Instance:get_dirty Instance:to_table Instance:load Instance:set_connection
    Instance:connection_name Instance:attach Instance:detach Instance:sync]]),
  ["ormed.query"] = words([[Query:where Query:or_where Query:where_equals Query:where_not Query:where_in
    Query:where_not_in Query:where_null Query:where_not_null Query:where_between Query:where_like
    Query:where_column Query:where_raw Query:where_exists Query:select Query:distinct Query:join
    Query:left_join Query:group_by Query:having Query:order_by Query:latest Query:limit Query:offset
    Query:get Query:first Query:first_or_fail Query:find Query:count Query:sum Query:avg Query:min
    Query:max Query:exists Query:pluck Query:paginate Query:chunk Query:to_sql Query:insert
    Query:update Query:delete Query:increment Query:decrement Query:upsert]]),
  ["ormed.model_query"] = words([[ModelQuery:where_has ModelQuery:with ModelQuery:with_count
    ModelQuery:scope ModelQuery:without_global_scope ModelQuery:without_global_scopes
    ModelQuery:with_trashed ModelQuery:only_trashed ModelQuery:get ModelQuery:first ModelQuery:find
    ModelQuery:first_or_fail ModelQuery:create ModelQuery:paginate ModelQuery:chunk ModelQuery:to_sql]]),
  ["ormed.datasource"] = words([[DataSource.new DataSource:init DataSource:dispose DataSource:query
    DataSource:table DataSource:select DataSource:execute DataSource:transaction DataSource:listen
    DataSource:stats DataSource:ping DataSource:schema ScopeRegistry:register_scope
    OrmConnection.new OrmConnection.from_manager]]),
  ["ormed.manager"] = words([[ConnectionManager:get_connection ConnectionManager:set_default_connection
    ConnectionManager:register ConnectionManager:connection ConnectionManager:use ConnectionManager:has
    ConnectionManager:names ConnectionManager:unregister]]),
  ["ormed.factory"] = words([[ModelRegistry:register ConnectionConfig Factory:register Handle:dispose
    register_sqlite_orm_connection register_postgres_orm_connection register_mysql_orm_connection]]),
  ["ormed.tenant"] = words([[TenantManager:register TenantManager:connection_for TenantManager:each
    TenantManager:unregister TenantManager:list]]),
  ["ormed.schema"] = words([[Schema:create_table Schema:alter_table Schema:has_table Schema:has_column
    Schema:drop_table Blueprint:id Blueprint:string Blueprint:integer Blueprint:boolean Blueprint:json
    Blueprint:foreign_id Blueprint:timestamps Blueprint:soft_deletes Blueprint:unique
    Blueprint:rename_column Blueprint:drop_column Blueprint:index Blueprint:drop_index
    Column:default Column:nullable Column:references Column:on_delete]]),
  ["ormed.migrator"] = words([[Migrator.new Migrator:migrate Migrator:rollback Migrator:fresh
    Migrator:status Migrator.for_tenants]]),
  ["ormed.errors"] = words("Error.is"),
  ["ormed.json"] = words("encode decode array"),
  ["ormed.cli"] = words("main"),
}

describe("make docs", function()
  local dir = string.format("%s/ormed_docs_%d_%d", tmp, os.time(), math.random(1e6))

  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("builds the API reference with LDoc, warnings as errors, covering every public function of API.md", function()
    local makefile = assert(read(root .. "/Makefile"))
    assert.truthy(makefile:find("\ndocs:\n\tldoc --fatalwarnings .\n", 1, true), "make docs runs ldoc --fatalwarnings")
    local p = io.popen("cd " .. q(root) .. " && env -u LD_PRELOAD ldoc --fatalwarnings -d " .. q(dir)
      .. " . 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    assert.matches("exit=0\n$", out)
    assert.is_nil(out:lower():find("warning", 1, true), out)
    assert.is_nil(out:find("falling back", 1, true), out)
    local missing = {}
    for module, names in pairs(API) do
      local html = read(dir .. "/modules/" .. module .. ".html")
      if not html then
        missing[#missing + 1] = module .. " (no page)"
      else
        for _, name in ipairs(names) do
          if not html:find('<a name = "' .. name .. '"></a>', 1, true) then
            missing[#missing + 1] = module .. ": " .. name
          end
        end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
    assert.truthy(read(dir .. "/index.html"))
    assert.truthy(read(dir .. "/modules/ormed.html"))
  end)
end)
