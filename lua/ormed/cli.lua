-- ormed.cli: the `ormed` command line (bin/ormed): migrations from a shell.
--
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
-- last batch. Exit codes: 0 success, 1 failure (with --tenants: any tenant
-- failed; every tenant is still reported), 2 bad usage. Errors are one line
-- on stderr.
local orm = require("ormed")
local Migrator = require("ormed.migrator").Migrator

local M = {}

M.USAGE = [[
usage: ormed <command> [options]

commands:
  migrate     apply the pending migrations (one new batch)
  rollback    roll back the last batch (or --steps N migrations)
  reset       roll back every migration
  status      list the migrations, applied or pending
  fresh       drop every table, then apply every migration

options:
  --connection NAME   the connection of ormed.config.lua to use (default: its `default`)
  --tenants           run the command on every tenant of the config's `tenants`
  --path DIR          the migrations folder (default: from the config, else migrations)
  --steps N           rollback: how many migrations to roll back
  --config FILE       the configuration file (default: ./ormed.config.lua)
  -h, --help          show this help

ormed.config.lua returns { connections = { name = { url = "sqlite:app.sqlite" } ... },
default = "name", migrations = "migrations", tenants = { driver = fn(id), ids = {...} } };
see the comment at the top of lua/ormed/cli.lua.]]

local COMMANDS = { migrate = true, rollback = true, reset = true, status = true, fresh = true }

-- A usage or configuration failure: { cli = true, message, code }.
local function usage_error(msg)
  error({ cli = true, code = 2, message = msg }, 0)
end

local function config_error(fmt, ...)
  error({ cli = true, code = 1, message = string.format(fmt, ...) }, 0)
end

-- Parses argv into { command, connection, tenants, path, steps, config, help }.
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
    else
      usage_error("unexpected argument '" .. a .. "'")
    end
    i = i + 1
  end
  if o.steps and o.command ~= "rollback" then usage_error("--steps only applies to rollback") end
  return o
end

-- Loads the configuration file.
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

local function report_lines(command, result, prefix, out)
  if command == "status" then
    if #result == 0 then out(prefix .. "No migrations.") end
    for _, s in ipairs(result) do
      local state = s.applied and "Ran" or "Pending"
      local mark = s.missing and "  (file missing)" or (s.changed and "  (changed since applied)" or "")
      out(string.format("%s%-8s %-6s %s%s", prefix, state, s.batch and tostring(s.batch) or "",
        s.id, mark))
    end
    return
  end
  local verb = (command == "rollback" or command == "reset") and "Rolled back" or "Migrated"
  if command == "fresh" then out(prefix .. "Dropped all tables.") end
  if #result == 0 then
    out(prefix .. (verb == "Migrated" and "Nothing to migrate." or "Nothing to roll back."))
  end
  for _, id in ipairs(result) do out(prefix .. verb .. "  " .. id) end
end

local function call(runner, command, opts)
  if command == "rollback" then return runner:rollback({ steps = opts.steps }) end
  return runner[command](runner)
end

-- {==== commands ====}

local function run_connection(cfg, opts, out)
  local name, c = pick_connection(cfg, opts.connection)
  local ds = orm.DataSource({ name = name, driver = adapter_of(name, c), pool = { max = 2 } })
  ds:init()
  local path = opts.path or c.migrations or cfg.migrations or "migrations"
  local ok, res = pcall(function()
    local runner = Migrator({ data_source = ds, path = path, table = cfg.table })
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
    local runner = Migrator.for_tenants(tenants, { path = path, table = cfg.table })
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

-- main(argv, out?, err_out?): runs the command; returns the exit code.
-- out / err_out receive one line each (default: stdout / stderr).
function M.main(argv, out, err_out)
  out = out or function(s) io.stdout:write(s, "\n") end
  err_out = err_out or function(s) io.stderr:write(s, "\n") end
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local ok, code = pcall(function()
    local opts = M.parse(args)
    if opts.help then
      out(M.USAGE)
      return 0
    end
    if not opts.command then
      err_out(M.USAGE)
      return 2
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
