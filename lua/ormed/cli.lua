--- ormed.cli: the `ormed` command line (bin/ormed): migrations from a shell.
--
--   ormed make:migration NAME [--path DIR]
--   ormed migrate|rollback|reset|status|fresh [--connection NAME] [--tenants]
--         [--path DIR] [--steps N] [--config FILE]
--   ormed --help
--
-- Configuration: `ormed.config.lua` in the current folder (or --config
-- FILE), a Lua file returning a table:
--
--   local orm = require("ormed")
--   return {
--     connections = {
--       primary   = { url = "sqlite:app.sqlite" },
--       analytics = { url = "postgres://user:pass@127.0.0.1:5432/analytics",
--                     migrations = "migrations/analytics" },  -- its own folder
--       legacy    = { driver = orm.MySqlDriverAdapter{ host = "127.0.0.1",
--                     database = "app", username = "app", password = "..." } },
--     },
--     default = "primary",          -- without --connection (default: the only
--                                   -- connection, else "primary")
--     migrations = "migrations",    -- the migrations folder (default "migrations")
--     table = "orm_migrations",     -- the ledger table (default "orm_migrations")
--     tenants = {                   -- what --tenants migrates
--       driver = function(id) return orm.SqliteDriverAdapter.file("tenant_" .. id .. ".sqlite") end,
--       ids = { "acme", "globex" }, -- or a function returning the list
--       migrations = "migrations/tenants",   -- default: the migrations folder
--     },
--   }
--
-- A connection is { url = "..." } (orm.driver_from_url) or { driver =
-- adapter }. Relative paths are relative to the current folder. --path
-- overrides the folder, --steps N rolls back N migrations instead of the
-- last batch. make:migration needs no configuration (it reads the folder
-- from it when there is one). Each migration prints one line with its time
-- as it runs; status prints an aligned table. Exit codes: 0 success, 1
-- failure (a migration failed: what ran before it is kept, the failed one
-- rolled back where the database's DDL is transactional; with --tenants:
-- any tenant failed, every tenant is still reported), 2 bad usage. Errors
-- are one line on stderr.
--
-- The parser is hand-written rather than lua-argparse: the command has one
-- positional argument and five options, and argparse would be a runtime
-- dependency luarocks cannot see when Debian installs it (so `luarocks
-- make` would need the network), and it exits 1 on bad usage.
-- @module ormed.cli
local orm = require("ormed")
local core = require("ormed.core")
local Migrator = require("ormed.migrator").Migrator

local M = {}

M.USAGE = [[
usage: ormed <command> [options]

Migrations from the shell, on the connections of ./ormed.config.lua.

commands:
  make:migration NAME  write migrations/YYYYMMDDHHMMSS_NAME.lua from a template
  migrate              apply the pending migrations (one new batch)
  rollback             roll back the last batch (or --steps N migrations)
  reset                roll back every migration
  status               list the migrations, applied or pending
  fresh                drop every table, then apply every migration

options:
  --connection NAME    the connection of ormed.config.lua to use (default: its `default`)
  --tenants            run the command on every tenant of the config's `tenants`
  --path DIR           the migrations folder (default: from the config, else migrations)
  --steps N            rollback: how many migrations to roll back
  --config FILE        the configuration file (default: ./ormed.config.lua)
  -h, --help           show this help
  --version            show the version (ormed 0.1.0)

exit status: 0 success, 1 failure (the error is printed), 2 bad usage.

ormed.config.lua returns { connections = { name = { url = "sqlite:app.sqlite" } ... },
default = "name", migrations = "migrations", tenants = { driver = fn(id), ids = {...} } };
see the comment at the top of lua/ormed/cli.lua.]]

local COMMANDS = { migrate = true, rollback = true, reset = true, status = true, fresh = true,
  ["make:migration"] = true }

-- A usage or configuration failure: { cli = true, message, code }.
local function usage_error(msg)
  error({ cli = true, code = 2, message = msg .. " (see ormed --help)" }, 0)
end

local function config_error(fmt, ...)
  error({ cli = true, code = 1, message = string.format(fmt, ...) }, 0)
end

--- Parses argv into { command, name, connection, tenants, path, steps,
-- config, help, version }.
function M.parse(argv)
  local o = {}
  local i = 1
  local function value(name)
    local v = argv[i + 1]
    if v == nil or v:sub(1, 2) == "--" then usage_error(name .. " needs a value") end
    i = i + 1
    return v
  end
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if name then
      a = name
      table.insert(argv, i + 1, inline)
    end
    if a == "-h" or a == "--help" or a == "help" then
      o.help = true
    elseif a == "--version" then
      o.version = true
    elseif a == "--connection" then
      o.connection = value(a)
    elseif a == "--tenants" then
      o.tenants = true
    elseif a == "--path" then
      o.path = value(a)
    elseif a == "--config" then
      o.config = value(a)
    elseif a == "--steps" then
      local v = value(a)
      o.steps = math.tointeger(tonumber(v))
      if not o.steps or o.steps < 1 then usage_error("--steps needs a positive integer, got " .. v) end
    elseif a:sub(1, 1) == "-" then
      usage_error("unknown option " .. a)
    elseif o.command == nil then
      if not COMMANDS[a] then usage_error("unknown command '" .. a .. "'") end
      o.command = a
    elseif o.command == "make:migration" and o.name == nil then
      o.name = a
    else
      usage_error("unexpected argument '" .. a .. "'")
    end
    i = i + 1
  end
  if o.help or o.version then return o end
  if o.steps and o.command ~= "rollback" then usage_error("--steps only applies to rollback") end
  if o.command == "make:migration" then
    if o.name == nil then usage_error("make:migration needs a NAME, e.g. create_users_table") end
    if o.tenants or o.connection then
      usage_error("make:migration takes --path (or --config), not --connection or --tenants")
    end
  end
  return o
end

--- Loads the configuration file.
function M.load_config(file)
  local chunk, err = loadfile(file, "t")
  if not chunk then
    local f = io.open(file, "r")
    if not f then
      config_error("no %s in the current folder (see ormed --help)", file)
    end
    f:close()
    config_error("%s does not compile: %s", file, tostring(err))
  end
  local ok, cfg = pcall(chunk)
  if not ok then config_error("%s failed: %s", file, tostring(cfg)) end
  if type(cfg) ~= "table" then config_error("%s must return a table", file) end
  if cfg.connections ~= nil and type(cfg.connections) ~= "table" then
    config_error("%s: connections must be a table of name = { url = ... }", file)
  end
  return cfg
end

local function sorted_names(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = tostring(k) end
  table.sort(names)
  return names
end

-- The connection name to use.
local function pick_connection(cfg, wanted)
  local conns = cfg.connections or {}
  local names = sorted_names(conns)
  local name = wanted or cfg.default or (#names == 1 and names[1]) or "primary"
  if conns[name] == nil then
    config_error("unknown connection '%s' (the config has: %s)", name,
      #names > 0 and table.concat(names, ", ") or "none")
  end
  return name, conns[name]
end

local function adapter_of(name, c)
  if type(c) ~= "table" then config_error("connection '%s' must be a table", name) end
  if c.driver then return c.driver end
  if type(c.url) == "string" then return orm.driver_from_url(c.url) end
  config_error("connection '%s' needs a url or a driver", name)
end

local function one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

local function error_line(err)
  if type(err) == "table" and err.cli then return "ormed: " .. err.message end
  if orm.Error.is(err) then return one_line(tostring(err)) end
  return "ormed: " .. one_line(err)
end

-- {==== output ====}

-- Rows as lines whose columns line up (two spaces between columns; the
-- last column is not padded); widths: the least width of each column.
local function aligned(rows, widths)
  widths = widths or {}
  for _, r in ipairs(rows) do
    for c, v in ipairs(r) do widths[c] = math.max(widths[c] or 0, #v) end
  end
  local lines = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for c, v in ipairs(r) do
      cells[c] = c < #r and v .. string.rep(" ", widths[c] - #v) or v
    end
    lines[#lines + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return lines
end

-- An applied-at time as "YYYY-MM-DD HH:MM:SS" (UTC), whatever the driver
-- returned (ISO 8601 with or without a T, fractions or a Z).
local function applied_at(v)
  if v == nil then return "" end
  local d, t = tostring(v):match("^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d:%d%d:%d%d)")
  return d and (d .. " " .. t) or tostring(v)
end

local function status_state(s)
  if s.missing then return "Missing" end
  if s.changed then return "Changed" end
  return s.applied and "Ran" or "Pending"
end

-- The status table: Status, Batch, Migration, Applied at.
local function status_lines(result)
  if #result == 0 then return { "No migrations." } end
  local rows = { { "Status", "Batch", "Migration", "Applied at" } }
  for _, s in ipairs(result) do
    rows[#rows + 1] = { status_state(s), s.batch and tostring(s.batch) or "", s.id,
      applied_at(s.applied_at) }
  end
  local lines = aligned(rows, { #"Pending", #"Batch" })  -- alike whatever the states
  local notes = {}
  for _, s in ipairs(result) do
    if s.missing then notes[#notes + 1] = "Missing: " .. s.id .. " was applied but its file is gone." end
    if s.changed then notes[#notes + 1] = "Changed: " .. s.id .. " was edited after it was applied." end
  end
  for _, n in ipairs(notes) do lines[#lines + 1] = n end
  return lines
end

local function duration(ms)
  if ms >= 1000 then return string.format("%.2f s", ms / 1000) end
  return string.format("%.1f ms", ms)
end

-- One line per migration as it runs: "Migrated     <id>  (1.2 ms)".
local function progress_line(ev)
  local verb
  if not ev.ok then verb = "Failed"
  elseif ev.direction == "up" then verb = "Migrated"
  else verb = "Rolled back" end
  return string.format("%-11s  %s  (%s)", verb, ev.id, duration(ev.ms))
end

-- The closing lines of a command (the migrations were printed as they ran).
local function report_lines(command, result, prefix, out)
  if command == "status" then
    for _, l in ipairs(status_lines(result)) do out(prefix .. l) end
  elseif #result == 0 then
    local up = command == "migrate" or command == "fresh"
    out(prefix .. (up and "Nothing to migrate." or "Nothing to roll back."))
  end
end

local function call(runner, command, opts)
  if command == "rollback" then return runner:rollback({ steps = opts.steps }) end
  return runner[command](runner)
end

-- {==== make:migration ====}

local TEMPLATE_CREATE = [[
-- Migration %s: creates the table %s.
return {
  up = function(schema)
    schema:create_table("%s", function(t)
      t:id()
      t:timestamps()
    end)
  end,
  down = function(schema)
    schema:drop_table("%s")
  end,
}
]]

local TEMPLATE_ALTER = [[
-- Migration %s: changes the table %s.
return {
  up = function(schema)
    schema:alter_table("%s", function(t)
      -- t:string("nick", 40):nullable()
    end)
  end,
  down = function(schema)
    schema:alter_table("%s", function(t)
      -- t:drop_column("nick")
    end)
  end,
}
]]

local TEMPLATE_PLAIN = [[
-- Migration %s.
return {
  up = function(schema, ds)   -- schema: ds:schema(); ds: the data source
  end,
  down = function(schema, ds) -- undoes up
  end,
}
]]

-- create_users_table, CreateUsersTable, create-users -> create_users_table
local function snake_name(name)
  local s = name:gsub("(%l)(%u)", "%1_%2"):gsub("[-%s]+", "_"):lower()
  if not s:match("^[%a][%w_]*$") then
    usage_error("a migration name is letters, digits and underscores, starting with a letter; got '"
      .. name .. "'")
  end
  return s
end

local function template(name, id)
  local created = name:match("^create_([%w_]-)_table$") or name:match("^create_([%w_]+)$")
  if created then return string.format(TEMPLATE_CREATE, id, created, created, created) end
  local altered = name:match("_to_([%w_]-)_table$") or name:match("_to_([%w_]+)$")
    or name:match("_from_([%w_]-)_table$") or name:match("_from_([%w_]+)$")
  if altered then return string.format(TEMPLATE_ALTER, id, altered, altered, altered) end
  return string.format(TEMPLATE_PLAIN, id)
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Writes <path>/<YYYYMMDDHHMMSS>_<name>.lua (UTC; one second later than a
-- migration of the folder with the same stamp, so ids stay unique).
local function make_migration(path, raw_name, out)
  local name = snake_name(raw_name)
  if not core.list_dir(path) then
    os.execute("mkdir -p " .. shell_quote(path))
    if not core.list_dir(path) then config_error("cannot create the migrations folder %s", path) end
  end
  local taken = {}
  for _, entry in ipairs(core.list_dir(path)) do
    local stamp = entry:match("^(%d+)_")
    if stamp then taken[stamp] = true end
  end
  local t = os.time()
  local stamp = os.date("!%Y%m%d%H%M%S", t)
  while taken[stamp] do
    t = t + 1
    stamp = os.date("!%Y%m%d%H%M%S", t)
  end
  local id = stamp .. "_" .. name
  local file = path .. "/" .. id .. ".lua"
  local existing = io.open(file, "r")
  if existing then
    existing:close()
    config_error("%s already exists", file)
  end
  local f, err = io.open(file, "w")
  if not f then config_error("cannot write %s: %s", file, tostring(err)) end
  f:write(template(name, id))
  f:close()
  out("Created " .. file)
  return 0
end

-- {==== commands ====}

local function run_connection(cfg, opts, out)
  local name, c = pick_connection(cfg, opts.connection)
  local ds = orm.DataSource({ name = name, driver = adapter_of(name, c), pool = { max = 2 } })
  ds:init()
  local path = opts.path or c.migrations or cfg.migrations or "migrations"
  local ok, res = pcall(function()
    local runner = Migrator({ data_source = ds, path = path, table = cfg.table,
      on_migration = function(ev) out(progress_line(ev)) end })
    if opts.command == "fresh" then
      runner:files() -- refuse a bad folder before saying anything
      runner.schema:drop_all_tables()
      out("Dropped all tables.")
      return runner:migrate()
    end
    return call(runner, opts.command, opts)
  end)
  ds:dispose()
  if not ok then error(res, 0) end
  report_lines(opts.command, res, "", out)
  return 0
end

local function tenant_ids(t)
  local ids = t.ids
  if type(ids) == "function" then ids = ids() end
  if type(ids) ~= "table" then config_error("tenants.ids must be a list or a function returning one") end
  return ids
end

local function run_tenants(cfg, opts, out, err_out)
  local t = cfg.tenants
  if type(t) ~= "table" or type(t.driver) ~= "function" then
    config_error("--tenants needs tenants = { driver = function(id) ... end, ids = {...} } "
      .. "in the config")
  end
  local tenants = orm.TenantManager({ driver = t.driver, prefix = "tenant:", pool = { max = 2 } })
  local failed_early = {}
  for _, id in ipairs(tenant_ids(t)) do
    local ok, e = pcall(tenants.register, tenants, id)
    if not ok then failed_early[#failed_early + 1] = { tenant = id, ok = false, error = e } end
  end
  local path = opts.path or t.migrations or cfg.migrations or "migrations"
  local ok, report = pcall(function()
    local runner = Migrator.for_tenants(tenants, { path = path, table = cfg.table,
      on_migration = function(ev) out("[tenant " .. tostring(ev.tenant) .. "] " .. progress_line(ev)) end })
    return call(runner, opts.command, opts)
  end)
  tenants:dispose()
  if not ok then error(report, 0) end
  for _, e in ipairs(failed_early) do report[#report + 1] = e end
  local failures = 0
  for _, e in ipairs(report) do
    local prefix = "[tenant " .. tostring(e.tenant) .. "] "
    if e.ok then
      report_lines(opts.command, e.result, prefix, out)
    else
      failures = failures + 1
      local line = prefix .. "FAILED: " .. error_line(e.error)
      out(line)
      err_out(line)
    end
  end
  out(string.format("%d tenant(s): %d ok, %d failed.", #report, #report - failures, failures))
  return failures > 0 and 1 or 0
end

-- The folder make:migration writes to: --path, else the configuration's
-- (when there is one), else "migrations".
local function migrations_folder(opts)
  if opts.path then return opts.path end
  local file = opts.config or "ormed.config.lua"
  local f = io.open(file, "r")
  if not f then
    if opts.config then config_error("cannot read %s", file) end
    return "migrations"
  end
  f:close()
  local cfg = M.load_config(file)
  local name = cfg.default or "primary"
  local c = type(cfg.connections) == "table" and cfg.connections[name]
  return type(c) == "table" and c.migrations or cfg.migrations or "migrations"
end

--- main(argv, out?, err_out?): runs the command; returns the exit code.
-- out / err_out receive one line each (default: stdout / stderr, flushed
-- line by line so progress shows as it happens).
function M.main(argv, out, err_out)
  out = out or function(s)
    io.stdout:write(s, "\n")
    io.stdout:flush()
  end
  err_out = err_out or function(s) io.stderr:write(s, "\n") end
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local ok, code = pcall(function()
    local opts = M.parse(args)
    if opts.help then
      out(M.USAGE)
      return 0
    end
    if opts.version then
      out(orm._VERSION)
      return 0
    end
    if not opts.command then
      err_out(M.USAGE)
      return 2
    end
    if opts.command == "make:migration" then
      return make_migration(migrations_folder(opts), opts.name, out)
    end
    local cfg = M.load_config(opts.config or "ormed.config.lua")
    if opts.tenants then return run_tenants(cfg, opts, out, err_out) end
    return run_connection(cfg, opts, out)
  end)
  if ok then return code end
  err_out(error_line(code))
  return type(code) == "table" and code.cli and code.code or 1
end

return M
