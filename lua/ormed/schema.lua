-- ormed.schema: the schema builder of a data source (API.md section 5).
--   local schema = ds:schema()          -- or orm.schema(ds)
--   schema:create_table("users", function(t) t:id(); t:string("name", 100) end)
--   schema:alter_table("users", function(t) t:rename_column("a", "b") end)
--   schema:drop_table("users", { if_exists = true }); schema:rename_table(a, b)
--   schema:has_table(name), has_column(table, col), has_index(table, name)
--   schema:tables(), schema:columns(table), schema:drop_all_tables()
-- The blueprint `t` and its DDL live in C (core.schema_blueprint, see
-- src/lua_schema.c); this module runs the statements through the data
-- source. On SQLite and PostgreSQL the statements of one call run in one
-- transaction (a savepoint inside an open one); MySQL commits each DDL
-- statement on its own, so a failure there can leave the earlier ones done.
local core = require("ormed.core")
local errors = require("ormed.errors")

local M = {}

local Schema = {}
Schema.__index = Schema

-- The DDL statements of one blueprint, without a database:
-- M.compile("postgres", "create", "users", function(t) ... end) -> { sql, ... }
function M.compile(dialect, mode, name, fn)
  errors.check(type(fn) == "function", "%s_table('%s', fn) needs a function",
    tostring(mode), tostring(name))
  local t = core.schema_blueprint(name, mode)
  fn(t)
  return t:compile(dialect)
end

-- orm.schema(ds) / ds:schema()
function M.new(ds)
  errors.check(type(ds) == "table" and type(ds.execute) == "function"
    and type(ds.dialect) == "function", "schema(ds) needs a data source")
  return setmetatable({ ds = ds }, Schema)
end

-- The dialect name of the data source.
function Schema:dialect()
  return self.ds:dialect()
end

local function run_all(ds, stmts)
  for _, sql in ipairs(stmts) do ds:execute(sql) end
end

-- Runs statements, atomically where the database has transactional DDL.
function Schema:_run(stmts)
  local ds = self.ds
  if #stmts > 1 and ds:dialect() ~= "mysql" then
    ds:transaction(function() run_all(ds, stmts) end)
  else
    run_all(ds, stmts)
  end
  return stmts
end

-- create_table(name, fn(t)): returns the statements it ran.
function Schema:create_table(name, fn)
  return self:_run(M.compile(self:dialect(), "create", name, fn))
end

-- alter_table(name, fn(t)): add, rename and drop columns and indexes.
function Schema:alter_table(name, fn)
  return self:_run(M.compile(self:dialect(), "alter", name, fn))
end

-- drop_table(name, { if_exists = true }?)
function Schema:drop_table(name, opts)
  errors.check(opts == nil or type(opts) == "table", "drop_table(name, opts): opts must be a table")
  return self:_run(core.schema_drop(self:dialect(), name, opts and opts.if_exists))
end

function Schema:drop_table_if_exists(name)
  return self:drop_table(name, { if_exists = true })
end

function Schema:rename_table(from, to)
  return self:_run(core.schema_rename(self:dialect(), from, to))
end

local function found(self, what, ...)
  local rows = self.ds:select(core.schema_catalog(self:dialect(), what), { ... })
  return rows[1] ~= nil
end

local function check_name(fn, v, what)
  errors.check(type(v) == "string" and v ~= "", "%s: %s must be a non-empty string", fn, what)
end

function Schema:has_table(name)
  check_name("has_table", name, "the table")
  return found(self, "has_table", name)
end

function Schema:has_column(table_name, column)
  check_name("has_column", table_name, "the table")
  check_name("has_column", column, "the column")
  return found(self, "has_column", table_name, column)
end

function Schema:has_index(table_name, index)
  check_name("has_index", table_name, "the table")
  check_name("has_index", index, "the index")
  return found(self, "has_index", table_name, index)
end

local function names(rows)
  local list = {}
  for i, r in ipairs(rows) do list[i] = r.name end
  return list
end

-- The base tables of the database (current schema), sorted by name.
function Schema:tables()
  return names(self.ds:select(core.schema_catalog(self:dialect(), "tables")))
end

-- The column names of a table, in table order ({} when it does not exist).
function Schema:columns(table_name)
  check_name("columns", table_name, "the table")
  return names(self.ds:select(core.schema_catalog(self:dialect(), "columns"), { table_name }))
end

-- Drops every table of the database, whatever foreign keys link them.
-- Returns the names of the tables dropped.
function Schema:drop_all_tables()
  local ds = self.ds
  local list = self:tables()
  local stmts, after = core.schema_drop_all(self:dialect(), list)
  if #stmts == 0 then return list end
  -- one connection for all of them: the session settings must apply to
  -- the drops and be restored on that same connection
  ds:transaction(function()
    local ok, err = pcall(run_all, ds, stmts)
    for _, sql in ipairs(after) do pcall(ds.execute, ds, sql) end
    if not ok then error(err, 0) end
  end)
  return list
end

M.Schema = Schema

return M
