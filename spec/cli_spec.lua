-- spec/cli_spec.lua: the `ormed` command (bin/ormed) run as a process in a
-- temporary folder holding an ormed.config.lua on SQLite: exit codes,
-- output, errors, tenants, and the installed layout finding its modules.
local orm = require("ormed")

local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local root = io.popen("pwd"):read("l")
local bin = root .. "/bin/ormed"
local counter = 0

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Plain shell utilities run without the sanitizer preload of `make asan`
-- (their own exit-time allocations are not ours to judge).
local function sh(cmd)
  assert(os.execute("env -u LD_PRELOAD sh -c " .. q(cmd)), "command failed: " .. cmd)
end

-- package.path / cpath with relative entries made absolute, so the child
-- process loads the modules this spec loads, whatever its folder.
local function absolute(path)
  local out = {}
  for entry in path:gmatch("[^;]+") do
    out[#out + 1] = entry:sub(1, 1) == "/" and entry or (root .. "/" .. entry)
  end
  return table.concat(out, ";")
end

local ENV = "LUA_PATH=" .. q(absolute(package.path)) .. " LUA_CPATH=" .. q(absolute(package.cpath))

local function read(file)
  local f = io.open(file, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function write(file, src)
  local f = assert(io.open(file, "wb"))
  f:write(src)
  f:close()
end

-- Runs `ormed <args>` in dir: stdout, stderr, exit code.
local function ormed(dir, args, env, command)
  local errfile = dir .. "/.stderr"
  local p = io.popen(string.format("cd %s && %s %s %s 2>%s", q(dir), env or ENV,
    command or q(bin), args, q(errfile)))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, read(errfile), code
end

local TEAMS = [[
return {
  up = function(schema) schema:create_table("teams", function(t) t:id(); t:string("name") end) end,
  down = function(schema) schema:drop_table("teams") end,
}
]]

local USERS = [[
return {
  up = function(schema)
    schema:create_table("users", function(t) t:id(); t:foreign_id("team_id"):constrained() end)
  end,
  down = function(schema) schema:drop_table("users") end,
}
]]

local CONFIG = [[
local orm = require("ormed")
return {
  connections = {
    primary = { url = "sqlite:app.sqlite" },
    other = { driver = orm.SqliteDriverAdapter.file("other.sqlite"), migrations = "other_migrations" },
  },
  default = "primary",
  tenants = {
    driver = function(id) return orm.SqliteDriverAdapter.file("tenant_" .. id .. ".sqlite") end,
    ids = function() return { "a", "b", "c" } end,
  },
}
]]

local function new_project()
  counter = counter + 1
  local dir = string.format("%s/ormed_cli_%d_%d_%d", tmp, os.time(), math.random(1e6), counter)
  sh("mkdir -p " .. q(dir .. "/migrations") .. " " .. q(dir .. "/other_migrations"))
  write(dir .. "/ormed.config.lua", CONFIG)
  write(dir .. "/migrations/20240101000000_create_teams.lua", TEAMS)
  write(dir .. "/migrations/20240102000000_create_users.lua", USERS)
  write(dir .. "/other_migrations/20240301000000_create_teams.lua", TEAMS)
  return dir
end

-- The tables of a SQLite file (a DataSource opened and closed around).
local function tables_of(file)
  counter = counter + 1
  local ds = orm.DataSource({ name = "cli_probe" .. counter, driver = orm.SqliteDriverAdapter.file(file) })
  ds:init()
  local list = ds:schema():tables()
  ds:dispose()
  return list
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("ormed command", function()
  local dir

  before_each(function() dir = new_project() end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("prints its help with --help and exits 0", function()
    local out, err, code = ormed(dir, "--help")
    assert.equal(0, code)
    assert.matches("usage: ormed <command>", out)
    assert.matches("migrate", out)
    assert.matches("%-%-connection NAME", out)
    assert.equal("", err)
  end)

  it("exits 2 on bad usage, with a one-line error", function()
    local _, err, code = ormed(dir, "")
    assert.equal(2, code)
    assert.matches("usage: ormed", err)
    _, err, code = ormed(dir, "frobnicate")
    assert.equal(2, code)
    assert.same({ "ormed: unknown command 'frobnicate'" }, lines(err))
    _, err, code = ormed(dir, "migrate --bogus")
    assert.equal(2, code)
    assert.same({ "ormed: unknown option --bogus" }, lines(err))
    _, err, code = ormed(dir, "migrate --steps 2")
    assert.equal(2, code)
    assert.matches("only applies to rollback", err)
    _, err, code = ormed(dir, "rollback --steps x")
    assert.equal(2, code)
    assert.matches("positive integer", err)
    _, err, code = ormed(dir, "status --connection")
    assert.equal(2, code)
    assert.matches("needs a value", err)
  end)

  it("migrates, reports status, rolls back and starts fresh", function()
    local out, err, code = ormed(dir, "migrate")
    assert.equal(0, code, err)
    assert.same({ "Migrated  20240101000000_create_teams", "Migrated  20240102000000_create_users" },
      lines(out))
    assert.same({ "orm_migrations", "teams", "users" }, tables_of(dir .. "/app.sqlite"))
    out, err, code = ormed(dir, "migrate")
    assert.equal(0, code, err)
    assert.same({ "Nothing to migrate." }, lines(out))
    out, err, code = ormed(dir, "rollback --steps=1")
    assert.equal(0, code, err)
    assert.same({ "Rolled back  20240102000000_create_users" }, lines(out))
    out, err, code = ormed(dir, "status")
    assert.equal(0, code, err)
    assert.same({ "Ran      1      20240101000000_create_teams",
      "Pending         20240102000000_create_users" }, lines(out))
    out, err, code = ormed(dir, "fresh")
    assert.equal(0, code, err)
    assert.same({ "Dropped all tables.", "Migrated  20240101000000_create_teams",
      "Migrated  20240102000000_create_users" }, lines(out))
    out, err, code = ormed(dir, "reset")
    assert.equal(0, code, err)
    assert.same({ "Rolled back  20240102000000_create_users", "Rolled back  20240101000000_create_teams" },
      lines(out))
    out, err, code = ormed(dir, "rollback")
    assert.equal(0, code, err)
    assert.same({ "Nothing to roll back." }, lines(out))
  end)

  it("picks the connection and the folder it is told", function()
    local out, err, code = ormed(dir, "migrate --connection other")
    assert.equal(0, code, err)
    assert.same({ "Migrated  20240301000000_create_teams" }, lines(out))
    assert.same({ "orm_migrations", "teams" }, tables_of(dir .. "/other.sqlite"))
    out, err, code = ormed(dir, "migrate --path other_migrations")
    assert.equal(0, code, err)
    assert.same({ "Migrated  20240301000000_create_teams" }, lines(out))
    out, err, code = ormed(dir, "status --connection nope")
    assert.equal(1, code)
    assert.equal("", out)
    assert.same({ "ormed: unknown connection 'nope' (the config has: other, primary)" }, lines(err))
  end)

  it("fails with exit 1 and one line when a migration file changed", function()
    assert.equal(0, select(3, ormed(dir, "migrate")))
    write(dir .. "/migrations/20240101000000_create_teams.lua", TEAMS .. "-- changed\n")
    local out, err, code = ormed(dir, "migrate")
    assert.equal(1, code)
    assert.equal("", out)
    local l = lines(err)
    assert.equal(1, #l)
    assert.matches("^ormed migration_changed: .*20240101000000_create_teams%.lua was changed", l[1])
    out, err, code = ormed(dir, "status")
    assert.equal(0, code, err)
    assert.matches("Ran      1      20240101000000_create_teams  %(changed since applied%)", out)
  end)

  it("fails with exit 1 without a config, or with a broken one", function()
    sh("rm " .. q(dir .. "/ormed.config.lua"))
    local _, err, code = ormed(dir, "status")
    assert.equal(1, code)
    assert.same({ "ormed: no ormed.config.lua in the current folder (see ormed --help)" }, lines(err))
    write(dir .. "/ormed.config.lua", "return {")
    _, err, code = ormed(dir, "status")
    assert.equal(1, code)
    assert.matches("^ormed: ormed.config.lua does not compile", err)
    write(dir .. "/elsewhere.lua", "return { connections = { x = { url = 'sqlite:x.sqlite' } } }")
    _, err, code = ormed(dir, "status --config elsewhere.lua")
    assert.equal(0, code, err)
  end)

  it("migrates every tenant, reports each, and exits 1 when one failed", function()
    -- tenant b already has a table the first migration creates
    counter = counter + 1
    local b = orm.DataSource({ name = "cli_tenant_b" .. counter,
      driver = orm.SqliteDriverAdapter.file(dir .. "/tenant_b.sqlite") }):init()
    b:schema():create_table("teams", function(t) t:id() end)
    b:dispose()
    local out, err, code = ormed(dir, "migrate --tenants")
    assert.equal(1, code)
    local l = lines(out)
    assert.same({
      "[tenant a] Migrated  20240101000000_create_teams",
      "[tenant a] Migrated  20240102000000_create_users",
    }, { l[1], l[2] })
    assert.matches("^%[tenant b%] FAILED: ormed migration_failed: migration "
      .. ".*20240101000000_create_teams%.lua failed %(up%)", l[3])
    assert.same({
      "[tenant c] Migrated  20240101000000_create_teams",
      "[tenant c] Migrated  20240102000000_create_users",
      "3 tenant(s): 2 ok, 1 failed.",
    }, { l[4], l[5], l[6] })
    assert.matches("%[tenant b%] FAILED", err)
    assert.same({ "orm_migrations", "teams", "users" }, tables_of(dir .. "/tenant_c.sqlite"))
    out, err, code = ormed(dir, "status --tenants")
    assert.equal(0, code, err)
    assert.matches("%[tenant a%] Ran      1      20240102000000_create_users", out)
    assert.matches("%[tenant b%] Pending         20240101000000_create_teams", out)
  end)

  it("finds the modules it was installed with", function()
    local prefix = dir .. "/prefix"
    local share, lib = prefix .. "/share/lua/5.4/ormed", prefix .. "/lib/lua/5.4/ormed"
    local core_so = assert(package.searchpath("ormed.core", package.cpath))
    sh(table.concat({
      "mkdir -p " .. q(share) .. " " .. q(lib) .. " " .. q(prefix .. "/bin"),
      "cp " .. root .. "/lua/ormed/*.lua " .. q(share),
      "cp " .. q(core_so) .. " " .. q(lib .. "/core.so"),
      -- the substitution make install does
      "sed 's|@PREFIX@|" .. prefix .. "|' " .. q(bin) .. " > " .. q(prefix .. "/bin/ormed"),
      "chmod 755 " .. q(prefix .. "/bin/ormed"),
    }, " && "))
    local out, err, code = ormed(dir, "migrate", "env -u LUA_PATH -u LUA_CPATH", q(prefix .. "/bin/ormed"))
    assert.equal(0, code, err)
    assert.same({ "Migrated  20240101000000_create_teams", "Migrated  20240102000000_create_users" },
      lines(out))
    local makefile = read(root .. "/Makefile")
    assert.truthy(makefile:find("sed 's|@PREFIX@|$(PREFIX)|' bin/ormed > $(DESTDIR)$(PREFIX)/bin/ormed",
      1, true))
  end)
end)
