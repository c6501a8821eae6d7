--- ormed.migrator: migrations (API.md section 5).
--
--   local runner = orm.Migrator{ data_source = ds, path = "migrations",
--                                table = "orm_migrations" }   -- table optional
--   runner:migrate()              -> ids applied, oldest first
--   runner:rollback()             -> ids rolled back (the last batch)
--   runner:rollback{ steps = n }  -> the last n migrations
--   runner:reset()                -> every migration rolled back
--   runner:fresh()                -> drops every table, then migrate()
--   runner:status()               -> { { id, name, applied, batch, applied_at,
--                                       changed, missing }, ... } oldest first
--
-- orm.Migrator{ ..., on_migration = fn } calls fn(event) after each
-- migration ran or failed, as it happens: event = { id, name, direction =
-- "up" | "down", ok = bool, ms = wall time in milliseconds, error = the
-- orm.Error when it failed } (the `ormed` command prints one line from it).
--
-- A migration is a file YYYYMMDDHHMMSS_name.lua in `path` returning
-- { up = function(schema, ds) end, down = function(schema, ds) end }.
-- The ledger table (id, checksum, batch, applied_at) records what ran; the
-- checksum (FNV-1a 64 of the file's bytes) makes a file changed after it
-- ran a `migration_changed` error instead of a silent drift.
--
-- Transactions: on SQLite and PostgreSQL (transactional DDL) each
-- migration runs in a transaction with its ledger row, so a failed one
-- leaves neither its changes nor a ledger row. MySQL / MariaDB commit every
-- DDL statement on its own: there the migration runs, then its ledger row
-- is written; a failed migration leaves the ledger unchanged but may leave
-- the statements that ran before the failure in place.
--
-- Tenants: Migrator.for_tenants(tenants, { path, table }) runs the same
-- commands on every tenant of a TenantManager and returns a report
-- { { tenant = id, ok = bool, result, applied | rolled_back | status,
--     error = orm.Error }, ... }; one tenant's failure does not stop the rest.
-- @module ormed.migrator
local core = require("ormed.core")
local errors = require("ormed.errors")
local schema_mod = require("ormed.schema")

local Error = errors.Error

local M = {}

--- orm.Migrator{ data_source, path = "migrations", table = "orm_migrations",
-- on_migration? }: runs the migration files of a folder on a data source.
-- @type Migrator

local Migrator = {}
Migrator.__index = Migrator

local FILE_PATTERN = "^(%d%d%d%d%d%d%d%d%d%d%d%d%d%d)_([%w_]+)%.lua$"

-- FNV-1a 64 of s as 16 hex digits (Lua 5.4 integers wrap on overflow).
local function checksum(s)
  local h = 0xcbf29ce484222325
  local prime = 0x100000001b3
  local byte = string.byte
  for i = 1, #s, 256 do
    local bytes = { byte(s, i, i + 255) }
    for j = 1, #bytes do
      h = (h ~ bytes[j]) * prime
    end
  end
  return string.format("%016x", h)
end
M.checksum = checksum

local function fail(kind, fields, fmt, ...)
  fields.kind = kind
  fields.message = string.format(fmt, ...)
  error(Error(fields), 0)
end

local function message_of(err)
  if type(err) == "table" and err.message then return tostring(err.message) end
  return tostring(err)
end

--- orm.Migrator{ data_source, path = "migrations", table = "orm_migrations",
--               on_migration = fn(event)? }
function Migrator.new(opts)
  errors.check(type(opts) == "table", "Migrator expects a table of options")
  local ds = opts.data_source
  errors.check(type(ds) == "table" and type(ds.execute) == "function",
    "Migrator needs { data_source = ds }")
  local path = opts.path or "migrations"
  errors.check(type(path) == "string" and path ~= "", "Migrator: path must be a folder name")
  local tbl = opts.table or "orm_migrations"
  errors.check(type(tbl) == "string" and tbl ~= "", "Migrator: table must be a table name")
  errors.check(opts.on_migration == nil or type(opts.on_migration) == "function",
    "Migrator: on_migration must be a function")
  return setmetatable({ ds = ds, path = path, table = tbl, on_migration = opts.on_migration,
    schema = schema_mod.new(ds) }, Migrator)
end

setmetatable(Migrator, { __call = function(_, opts) return Migrator.new(opts) end })

local function read_file(file)
  local f, err = io.open(file, "rb")
  if not f then
    errors.raise("invalid_argument", "cannot read migration %s: %s", file, tostring(err))
  end
  local s = f:read("a")
  f:close()
  return s
end

--- The migration files, sorted by id: { id, name, file, checksum, source }.
function Migrator:files()
  local names, err = core.list_dir(self.path)
  if not names then
    errors.raise("invalid_argument", "cannot read the migrations folder %s", tostring(err))
  end
  local list = {}
  for _, entry in ipairs(names) do
    if entry:sub(-4) == ".lua" then
      local stamp, name = entry:match(FILE_PATTERN)
      if not stamp then
        errors.raise("invalid_argument", "migration file %s/%s is not named "
          .. "YYYYMMDDHHMMSS_name.lua", self.path, entry)
      end
      local file = self.path .. "/" .. entry
      local source = read_file(file)
      list[#list + 1] = { id = entry:sub(1, -5), name = name, file = file,
        source = source, checksum = checksum(source) }
    end
  end
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

local function ledger_sql(self, what)
  return core.schema_ledger(self.ds:dialect(), self.table, what)
end

-- Creates the ledger table when it does not exist.
function Migrator:_ensure_ledger()
  if self.schema:has_table(self.table) then return end
  self.schema:create_table(self.table, function(t)
    t:string("id", 255):primary()
    t:string("checksum", 64)
    t:integer("batch")
    t:datetime("applied_at")
  end)
end

-- The ledger rows ordered by batch then id (none when there is no ledger).
function Migrator:_ledger()
  if not self.schema:has_table(self.table) then return {} end
  return self.ds:select(ledger_sql(self, "select"), nil, { role = "write" }) -- never a replica
end

local function by_id(list)
  local map = {}
  for _, v in ipairs(list) do map[v.id] = v end
  return map
end

local function check_unchanged(file, row)
  if file.checksum ~= row.checksum then
    fail("migration_changed", { migration = file.id },
      "migration %s was changed after it was applied (checksum %s, ledger %s); "
      .. "restore it and write a new migration for the change", file.file,
      file.checksum, tostring(row.checksum))
  end
end

-- Loads a migration file: its table { up, down }.
local function load_migration(m)
  local chunk, err = load(m.source, "@" .. m.file, "t")
  if not chunk then
    fail("migration_failed", { migration = m.id }, "migration %s does not compile: %s",
      m.file, tostring(err))
  end
  local ok, def = pcall(chunk)
  if not ok then
    fail("migration_failed", { migration = m.id, cause = def }, "migration %s failed "
      .. "while loading: %s", m.file, message_of(def))
  end
  if type(def) ~= "table" or type(def.up) ~= "function"
    or (def.down ~= nil and type(def.down) ~= "function") then
    fail("migration_failed", { migration = m.id }, "migration %s must return "
      .. "{ up = function(schema) ... end, down = function(schema) ... end }", m.file)
  end
  return def
end

-- Runs fn() atomically where DDL is transactional.
function Migrator:_atomic(fn)
  if not core.dialect(self.ds:dialect()).transactional_ddl then return fn() end
  return self.ds:transaction(fn)
end

-- The time now in UTC, in the text the dialect takes for a datetime.
local function now(dialect)
  local f = core.dialect(dialect)
  return os.date("!%Y-%m-%d" .. f.datetime_sep .. "%H:%M:%S" .. f.datetime_zone)
end

-- Runs one direction of one migration with its ledger change, then tells
-- on_migration (when set) how it went and how long it took.
function Migrator:_run(m, direction, batch)
  if not self.on_migration then return self:_run_step(m, direction, batch) end
  local t0 = core.clock()
  local ok, err = pcall(self._run_step, self, m, direction, batch)
  self.on_migration({ id = m.id, name = m.name, direction = direction, ok = ok,
    ms = (core.clock() - t0) * 1000, error = not ok and err or nil })
  if not ok then error(err, 0) end
end

function Migrator:_run_step(m, direction, batch)
  local def = load_migration(m)
  local step = def[direction]
  if step == nil then
    fail("migration_failed", { migration = m.id }, "migration %s has no down function; "
      .. "it cannot be rolled back", m.file)
  end
  local ok, err = pcall(self._atomic, self, function()
    step(self.schema, self.ds)
    if direction == "up" then
      self.ds:execute(ledger_sql(self, "insert"), { m.id, m.checksum, batch,
        now(self.ds:dialect()) })
    else
      self.ds:execute(ledger_sql(self, "delete"), { m.id })
    end
  end)
  if not ok then
    fail("migration_failed", { migration = m.id, cause = err,
      connection = type(err) == "table" and err.connection or nil },
      "migration %s failed (%s): %s", m.file, direction, message_of(err))
  end
end

--- Applies the pending migrations in one new batch; returns their ids.
-- On failure raises migration_failed (field `applied`: the ids applied
-- before it); a changed applied file raises migration_changed first.
function Migrator:migrate()
  local files = self:files()
  self:_ensure_ledger()
  local rows = self:_ledger()
  local applied_rows = by_id(rows)
  local batch = 0
  for _, r in ipairs(rows) do
    if r.batch > batch then batch = r.batch end
  end
  local pending = {}
  for _, f in ipairs(files) do
    local row = applied_rows[f.id]
    if row then check_unchanged(f, row) else pending[#pending + 1] = f end
  end
  local done = {}
  for _, f in ipairs(pending) do
    local ok, err = pcall(self._run, self, f, "up", batch + 1)
    if not ok then
      if type(err) == "table" then err.applied = done end
      error(err, 0)
    end
    done[#done + 1] = f.id
  end
  return done
end

-- The ledger rows to roll back: the last batch, or the last `steps`.
local function to_roll_back(rows, opts)
  local list = {}
  for i = #rows, 1, -1 do list[#list + 1] = rows[i] end
  if opts.steps == nil then
    local last = list[1] and list[1].batch
    local out = {}
    for _, r in ipairs(list) do
      if r.batch == last then out[#out + 1] = r end
    end
    return out
  end
  local out = {}
  for i = 1, math.min(opts.steps, #list) do out[i] = list[i] end
  return out
end

--- rollback{ steps = n }?: runs `down` of the last batch (or the last n
-- migrations), newest first; returns their ids.
function Migrator:rollback(opts)
  opts = opts or {}
  errors.check(type(opts) == "table", "rollback{ steps = n }: expected a table")
  errors.check(opts.steps == nil or (math.type(opts.steps) == "integer" and opts.steps >= 1),
    "rollback{ steps = n }: steps must be a positive integer")
  local rows = self:_ledger()
  if opts.all then opts = { steps = #rows } end
  local files = by_id(self:files())
  local targets = to_roll_back(rows, opts)
  for _, r in ipairs(targets) do
    local f = files[r.id]
    if not f then
      fail("migration_missing", { migration = r.id }, "migration %s was applied but "
        .. "its file is missing from %s; it cannot be rolled back", r.id, self.path)
    end
    check_unchanged(f, r)
  end
  local done = {}
  for _, r in ipairs(targets) do
    local ok, err = pcall(self._run, self, files[r.id], "down")
    if not ok then
      if type(err) == "table" then err.rolled_back = done end
      error(err, 0)
    end
    done[#done + 1] = r.id
  end
  return done
end

--- Rolls back every applied migration; returns their ids.
function Migrator:reset()
  return self:rollback({ all = true })
end

--- Drops every table of the database, then applies every migration.
function Migrator:fresh()
  self:files() -- refuse a bad folder before dropping anything
  self.schema:drop_all_tables()
  return self:migrate()
end

--- Every migration, file or ledger row, oldest first.
function Migrator:status()
  local files = self:files()
  local rows = by_id(self:_ledger())
  local list, seen = {}, {}
  for _, f in ipairs(files) do
    local r = rows[f.id]
    seen[f.id] = true
    list[#list + 1] = { id = f.id, name = f.name, applied = r ~= nil,
      batch = r and r.batch, applied_at = r and r.applied_at,
      changed = r ~= nil and r.checksum ~= f.checksum, missing = false }
  end
  for id, r in pairs(rows) do
    if not seen[id] then
      list[#list + 1] = { id = id, name = id:match("^%d+_(.*)$") or id, applied = true,
        batch = r.batch, applied_at = r.applied_at, changed = false, missing = true }
    end
  end
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

-- {==== tenants ====}

--- Migrator.for_tenants(tenants, opts): the commands of a Migrator run on
-- every tenant; each returns a report { { tenant, ok, result, error }, ... }.
-- @type TenantMigrator

local TenantMigrator = {}
TenantMigrator.__index = TenantMigrator

--- Migrator.for_tenants(tenants, { path, table, on_migration }): the
-- commands of a Migrator run on every tenant of a TenantManager
-- (on_migration's events also carry `tenant`).
function Migrator.for_tenants(tenants, opts)
  errors.check(type(tenants) == "table" and type(tenants.each) == "function",
    "Migrator.for_tenants(tenants, opts) needs a TenantManager")
  opts = opts or {}
  errors.check(type(opts) == "table", "Migrator.for_tenants: opts must be a table")
  return setmetatable({ tenants = tenants, path = opts.path, table = opts.table,
    on_migration = opts.on_migration }, TenantMigrator)
end

local RESULT_FIELD = { migrate = "applied", fresh = "applied", rollback = "rolled_back",
  reset = "rolled_back", status = "status" }

function TenantMigrator:_each(action, arg)
  local report = {}
  self.tenants:each(function(id, ds)
    local entry = { tenant = id }
    local ok, res = pcall(function()
      local each = self.on_migration and function(ev)
        ev.tenant = id
        self.on_migration(ev)
      end
      local runner = Migrator.new({ data_source = ds, path = self.path, table = self.table,
        on_migration = each })
      return runner[action](runner, arg)
    end)
    entry.ok = ok
    if ok then
      entry.result = res
      entry[RESULT_FIELD[action]] = res
    else
      entry.error = res
      entry[RESULT_FIELD[action]] = type(res) == "table" and res[RESULT_FIELD[action]] or {}
    end
    report[#report + 1] = entry
  end)
  return report
end

--- Applies the pending migrations on every tenant; returns the report.
function TenantMigrator:migrate() return self:_each("migrate") end
--- rollback{ steps = n }?: rolls back on every tenant; returns the report.
function TenantMigrator:rollback(opts) return self:_each("rollback", opts) end
--- Rolls back every migration on every tenant; returns the report.
function TenantMigrator:reset() return self:_each("reset") end
--- Drops every table and migrates again on every tenant; returns the report.
function TenantMigrator:fresh() return self:_each("fresh") end
--- The status of every tenant; returns the report (entries carry `status`).
function TenantMigrator:status() return self:_each("status") end

--- Migrator.migrate_tenants(tenants, opts): for_tenants(...):migrate().
function Migrator.migrate_tenants(tenants, opts)
  return Migrator.for_tenants(tenants, opts):migrate()
end

M.Migrator = Migrator
M.TenantMigrator = TenantMigrator

return M
