--- ormed.schema: the schema builder of a data source (API.md section 5).
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
-- @module ormed.schema
local core = require("ormed.core")
local errors = require("ormed.errors")

local M = {}

local Schema = {}
Schema.__index = Schema

--- The DDL statements of one blueprint, without a database:
-- M.compile("postgres", "create", "users", function(t) ... end) -> { sql, ... }
function M.compile(dialect, mode, name, fn)
  errors.check(type(fn) == "function", "%s_table('%s', fn) needs a function",
    tostring(mode), tostring(name))
  local t = core.schema_blueprint(name, mode)
  fn(t)
  return t:compile(dialect)
end

--- orm.schema(ds) / ds:schema()
function M.new(ds)
  errors.check(type(ds) == "table" and type(ds.execute) == "function"
    and type(ds.dialect) == "function", "schema(ds) needs a data source")
  return setmetatable({ ds = ds }, Schema)
end

--- The schema builder of a data source (`ds:schema()`): creates, alters,
-- renames and drops tables with the DDL of its database, and looks at what
-- exists.
-- @type Schema

--- The dialect name of the data source.
function Schema:dialect()
  return self.ds:dialect()
end

local function run_all(ds, stmts)
  for _, sql in ipairs(stmts) do ds:execute(sql) end
end

-- Runs statements, atomically where the database has transactional DDL.
function Schema:_run(stmts)
  local ds = self.ds
  if ds:in_transaction() and not core.dialect(ds:dialect()).transactional_ddl then
    errors.raise("invalid_argument", "%s commits the open transaction before DDL: run schema "
      .. "changes outside ds:transaction (connection '%s')", ds:dialect(), ds.name)
  end
  if #stmts > 1 and core.dialect(ds:dialect()).transactional_ddl then
    ds:transaction(function() run_all(ds, stmts) end)
  else
    run_all(ds, stmts)
  end
  return stmts
end

--- create_table(name, fn(t)): returns the statements it ran.
function Schema:create_table(name, fn)
  return self:_run(M.compile(self:dialect(), "create", name, fn))
end

--- alter_table(name, fn(t)): add, rename and drop columns and indexes.
function Schema:alter_table(name, fn)
  return self:_run(M.compile(self:dialect(), "alter", name, fn))
end

--- drop_table(name, { if_exists = true }?)
function Schema:drop_table(name, opts)
  errors.check(opts == nil or type(opts) == "table", "drop_table(name, opts): opts must be a table")
  return self:_run(core.schema_drop(self:dialect(), name, opts and opts.if_exists))
end

--- drop_table_if_exists(name): drop_table(name, { if_exists = true }).
function Schema:drop_table_if_exists(name)
  return self:drop_table(name, { if_exists = true })
end

--- rename_table(from, to).
function Schema:rename_table(from, to)
  return self:_run(core.schema_rename(self:dialect(), from, to))
end

-- Catalog reads go to the primary, like the DDL they follow (replicas).
local ON_PRIMARY = { role = "write" }

local function found(self, what, ...)
  local rows = self.ds:select(core.schema_catalog(self:dialect(), what), { ... }, ON_PRIMARY)
  return rows[1] ~= nil
end

local function check_name(fn, v, what)
  errors.check(type(v) == "string" and v ~= "", "%s: %s must be a non-empty string", fn, what)
end

--- has_table(name): true when the table exists.
function Schema:has_table(name)
  check_name("has_table", name, "the table")
  return found(self, "has_table", name)
end

--- has_column(table, column): true when the column exists.
function Schema:has_column(table_name, column)
  check_name("has_column", table_name, "the table")
  check_name("has_column", column, "the column")
  return found(self, "has_column", table_name, column)
end

--- has_index(table, index): true when the index exists.
function Schema:has_index(table_name, index)
  check_name("has_index", table_name, "the table")
  check_name("has_index", index, "the index")
  -- the name the schema builder gave it (long names are shortened)
  return found(self, "has_index", table_name, core.schema_key_name(self:dialect(), index))
end

local function names(rows)
  local list = {}
  for i, r in ipairs(rows) do list[i] = r.name end
  return list
end

--- The base tables of the database (current schema), sorted by name.
function Schema:tables()
  return names(self.ds:select(core.schema_catalog(self:dialect(), "tables"), nil, ON_PRIMARY))
end

--- The column names of a table, in table order ({} when it does not exist).
function Schema:columns(table_name)
  check_name("columns", table_name, "the table")
  return names(self.ds:select(core.schema_catalog(self:dialect(), "columns"), { table_name },
    ON_PRIMARY))
end

--- Drops every table of the database, whatever foreign keys link them.
-- Returns the names of the tables dropped.
function Schema:drop_all_tables()
  local ds = self.ds
  local list = self:tables()
  local stmts, after = core.schema_drop_all(self:dialect(), list)
  if #stmts == 0 then return list end
  -- one connection for all of them: the session settings must apply to
  -- the drops and be restored on that same connection (in a transaction
  -- where DDL can be in one)
  local function body()
    local ok, err = pcall(run_all, ds, stmts)
    for _, sql in ipairs(after) do pcall(ds.execute, ds, sql) end
    if not ok then error(err, 0) end
  end
  if core.dialect(ds:dialect()).transactional_ddl then
    ds:transaction(body)
  else
    ds:_pinned(body)
  end
  return list
end

--- The blueprint `t` handed to create_table and alter_table's function
-- (built in C). Column methods return a Column.
-- @type Blueprint

--- id(name?): an auto-increment integer primary key (default "id").
-- @function Blueprint:id

--- string(name, length?): VARCHAR (default length 255).
-- @function Blueprint:string

--- text(name).
-- @function Blueprint:text

--- integer(name).
-- @function Blueprint:integer

--- big_integer(name).
-- @function Blueprint:big_integer

--- foreign_id(name): a big integer meant to reference another table (see Column:constrained, Column:references).
-- @function Blueprint:foreign_id

--- number(name): a double.
-- @function Blueprint:number

--- decimal(name, precision?, scale?).
-- @function Blueprint:decimal

--- boolean(name).
-- @function Blueprint:boolean

--- json(name): JSON text (jsonb on PostgreSQL).
-- @function Blueprint:json

--- date(name).
-- @function Blueprint:date

--- datetime(name).
-- @function Blueprint:datetime

--- blob(name): binary data.
-- @function Blueprint:blob

--- timestamps(): nullable created_at and updated_at.
-- @function Blueprint:timestamps

--- soft_deletes(col?): a nullable deleted_at.
-- @function Blueprint:soft_deletes

--- index{ col, ... } (name?): an index.
-- @function Blueprint:index

--- unique{ col, ... } (name?): a unique index.
-- @function Blueprint:unique

--- primary{ col, ... }: a composite primary key.
-- @function Blueprint:primary

--- foreign(col): a foreign key on an existing column (then :references(...)).
-- @function Blueprint:foreign

--- rename_column(from, to) (alter_table).
-- @function Blueprint:rename_column

--- drop_column(name) (alter_table).
-- @function Blueprint:drop_column

--- drop_index(name) (alter_table).
-- @function Blueprint:drop_index

--- drop_unique(name) (alter_table).
-- @function Blueprint:drop_unique

--- drop_foreign(name) (alter_table).
-- @function Blueprint:drop_foreign

--- drop_timestamps() (alter_table).
-- @function Blueprint:drop_timestamps

--- drop_soft_deletes() (alter_table).
-- @function Blueprint:drop_soft_deletes


--- A column of a blueprint; its modifiers return it (calls chain).
-- @type Column

--- nullable(): allows NULL (columns are NOT NULL otherwise).
-- @function Column:nullable

--- default(value): the column default.
-- @function Column:default

--- unique(): a unique index on the column.
-- @function Column:unique

--- index(): an index on the column.
-- @function Column:index

--- primary(): the primary key.
-- @function Column:primary

--- use_current(): defaults to the current time.
-- @function Column:use_current

--- references(table, column?): a foreign key (column default "id").
-- @function Column:references

--- constrained(table?): a foreign key to the table named after the column (team_id: teams.id).
-- @function Column:constrained

--- on_delete(action): "cascade", "restrict", "set null", "no action".
-- @function Column:on_delete

--- on_update(action).
-- @function Column:on_update


--- Module functions.
-- @section functions

M.Schema = Schema

return M
