-- spec/cli_spec.lua: the `ormed` command (bin/ormed) run as a process in a
-- temporary folder holding an ormed.config.lua on SQLite: exit codes,
-- output, errors, tenants, and the installed layout finding its modules.
local orm = require("ormed")
local helper = require("spec.helper")

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

-- The lines of s with the varying parts made fixed: a migration's time
-- "(1.2 ms)" becomes "(T)", an applied-at datetime becomes "AT".
local function fixed(s)
  local out = {}
  for _, l in ipairs(lines(s)) do
    l = l:gsub("%(%d+%.%d+ m?s%)$", "(T)")
    l = l:gsub("%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", "AT")
    out[#out + 1] = l
  end
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
    assert.matches("make:migration NAME", out)
    assert.equal("", err)
    out, err, code = ormed(dir, "--version")
    assert.equal(0, code, err)
    assert.same({ orm._VERSION }, lines(out))
  end)

  it("exits 2 on bad usage, with a one-line error", function()
    local _, err, code = ormed(dir, "")
    assert.equal(2, code)
    assert.matches("usage: ormed", err)
    _, err, code = ormed(dir, "frobnicate")
    assert.equal(2, code)
    assert.same({ "ormed: unknown command 'frobnicate' (see ormed --help)" }, lines(err))
    _, err, code = ormed(dir, "migrate --bogus")
    assert.equal(2, code)
    assert.same({ "ormed: unknown option --bogus (see ormed --help)" }, lines(err))
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
    -- one line per migration, with its time
    assert.matches("^Migrated     20240101000000_create_teams  %(%d+%.%d ms%)\n", out)
    assert.same({ "Migrated     20240101000000_create_teams  (T)",
      "Migrated     20240102000000_create_users  (T)" }, fixed(out))
    assert.same({ "orm_migrations", "teams", "users" }, tables_of(dir .. "/app.sqlite"))
    out, err, code = ormed(dir, "migrate")
    assert.equal(0, code, err)
    assert.same({ "Nothing to migrate." }, lines(out))
    out, err, code = ormed(dir, "rollback --steps=1")
    assert.equal(0, code, err)
    assert.same({ "Rolled back  20240102000000_create_users  (T)" }, fixed(out))
    out, err, code = ormed(dir, "status")
    assert.equal(0, code, err)
    -- an aligned table, with the time each migration was applied
    assert.same({
      "Status   Batch  Migration                    Applied at",
      "Ran      1      20240101000000_create_teams  AT",
      "Pending         20240102000000_create_users",
    }, fixed(out))
    assert.matches("Ran      1      20240101000000_create_teams  %d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d\n", out)
    out, err, code = ormed(dir, "fresh")
    assert.equal(0, code, err)
    assert.same({ "Dropped all tables.", "Migrated     20240101000000_create_teams  (T)",
      "Migrated     20240102000000_create_users  (T)" }, fixed(out))
    out, err, code = ormed(dir, "reset")
    assert.equal(0, code, err)
    assert.same({ "Rolled back  20240102000000_create_users  (T)",
      "Rolled back  20240101000000_create_teams  (T)" }, fixed(out))
    out, err, code = ormed(dir, "rollback")
    assert.equal(0, code, err)
    assert.same({ "Nothing to roll back." }, lines(out))
  end)

  it("picks the connection and the folder it is told", function()
    local out, err, code = ormed(dir, "migrate --connection other")
    assert.equal(0, code, err)
    assert.same({ "Migrated     20240301000000_create_teams  (T)" }, fixed(out))
    assert.same({ "orm_migrations", "teams" }, tables_of(dir .. "/other.sqlite"))
    out, err, code = ormed(dir, "migrate --path other_migrations")
    assert.equal(0, code, err)
    assert.same({ "Migrated     20240301000000_create_teams  (T)" }, fixed(out))
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
    assert.same({
      "Status   Batch  Migration                    Applied at",
      "Changed  1      20240101000000_create_teams  AT",
      "Ran      1      20240102000000_create_users  AT",
      "Changed: 20240101000000_create_teams was edited after it was applied.",
    }, fixed(out))
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
    local l = fixed(out)
    assert.same({
      "[tenant a] Migrated     20240101000000_create_teams  (T)",
      "[tenant a] Migrated     20240102000000_create_users  (T)",
      "[tenant b] Failed       20240101000000_create_teams  (T)",
      "[tenant c] Migrated     20240101000000_create_teams  (T)",
      "[tenant c] Migrated     20240102000000_create_users  (T)",
    }, { l[1], l[2], l[3], l[4], l[5] })
    assert.matches("^%[tenant b%] FAILED: ormed migration_failed: migration "
      .. ".*20240101000000_create_teams%.lua failed %(up%)", l[6])
    assert.equal("3 tenant(s): 2 ok, 1 failed.", l[7])
    assert.matches("%[tenant b%] FAILED", err)
    assert.same({ "orm_migrations", "teams", "users" }, tables_of(dir .. "/tenant_c.sqlite"))
    out, err, code = ormed(dir, "status --tenants")
    assert.equal(0, code, err)
    assert.matches("%[tenant a%] Ran      1      20240102000000_create_users", out)
    assert.matches("%[tenant b%] Pending         20240101000000_create_teams\n", out)
  end)

  it("finds the modules it was installed with", function()
    local prefix = dir .. "/prefix"
    local luadir, libdir = prefix .. "/share/lua/5.4", prefix .. "/lib/lua/5.4"
    local share, lib = luadir .. "/ormed", libdir .. "/ormed"
    local core_so = assert(package.searchpath("ormed.core", package.cpath))
    sh(table.concat({
      "mkdir -p " .. q(share) .. " " .. q(lib) .. " " .. q(prefix .. "/bin"),
      "cp " .. root .. "/lua/ormed/*.lua " .. q(share),
      "cp " .. q(core_so) .. " " .. q(lib .. "/core.so"),
      -- the substitution make install does
      "sed -e 's|@LUADIR@|" .. luadir .. "|' -e 's|@LIBDIR@|" .. libdir .. "|' " .. q(bin)
        .. " > " .. q(prefix .. "/bin/ormed"),
      "chmod 755 " .. q(prefix .. "/bin/ormed"),
    }, " && "))
    local out, err, code = ormed(dir, "migrate", "env -u LUA_PATH -u LUA_CPATH", q(prefix .. "/bin/ormed"))
    assert.equal(0, code, err)
    assert.same({ "Migrated     20240101000000_create_teams  (T)",
      "Migrated     20240102000000_create_users  (T)" }, fixed(out))
    local makefile = read(root .. "/Makefile")
    assert.truthy(makefile:find("sed -e 's|@LUADIR@|$(LUADIR)|' -e 's|@LIBDIR@|$(LIBDIR)|' bin/ormed "
      .. "> $(DESTDIR)$(BINDIR)/ormed", 1, true))
  end)
end)

describe("ormed make:migration", function()
  local dir

  before_each(function() dir = new_project() end)
  after_each(function() sh("rm -rf " .. q(dir)) end)

  it("writes a timestamped migration from a template, which then migrates and rolls back", function()
    local before = os.date("!%Y%m%d%H%M%S")
    local out, err, code = ormed(dir, "make:migration CreateProjectsTable")
    assert.equal(0, code, err)
    local file = out:match("^Created (migrations/%d+_create_projects_table%.lua)\n$")
    assert.truthy(file, out)
    local stamp = file:match("(%d+)_")
    assert.equal(14, #stamp)
    assert.is_true(stamp >= before and stamp <= os.date("!%Y%m%d%H%M%S"))
    local src = read(dir .. "/" .. file)
    assert.matches('schema:create_table%("projects"', src)
    assert.matches('schema:drop_table%("projects"%)', src)
    -- a second one in the same second still gets its own, later stamp
    out, err, code = ormed(dir, "make:migration add_owner_to_projects")
    assert.equal(0, code, err)
    local second = out:match("^Created migrations/(%d+)_add_owner_to_projects%.lua\n$")
    assert.truthy(second and second > stamp, out)
    assert.matches('schema:alter_table%("projects"',
      read(dir .. "/migrations/" .. second .. "_add_owner_to_projects.lua"))
    out, err, code = ormed(dir, "migrate")
    assert.equal(0, code, err)
    assert.same({ "Migrated     20240101000000_create_teams  (T)",
      "Migrated     20240102000000_create_users  (T)",
      "Migrated     " .. stamp .. "_create_projects_table  (T)",
      "Migrated     " .. second .. "_add_owner_to_projects  (T)" }, fixed(out))
    assert.same({ "orm_migrations", "projects", "teams", "users" }, tables_of(dir .. "/app.sqlite"))
    out, err, code = ormed(dir, "rollback")
    assert.equal(0, code, err)
    assert.equal(4, #lines(out))
    assert.same({ "orm_migrations" }, tables_of(dir .. "/app.sqlite"))
  end)

  it("writes to --path or the configuration's folder, and needs no configuration", function()
    local out, err, code = ormed(dir, "make:migration seed_teams --path other_migrations")
    assert.equal(0, code, err)
    assert.matches("^Created other_migrations/%d+_seed_teams%.lua\n$", out)
    sh("rm " .. q(dir .. "/ormed.config.lua") .. " && rm -r " .. q(dir .. "/migrations"))
    out, err, code = ormed(dir, "make:migration create_things")
    assert.equal(0, code, err)
    assert.matches("^Created migrations/%d+_create_things%.lua\n$", out)
    write(dir .. "/ormed.config.lua", "return { migrations = 'db/migrate' }")
    out, err, code = ormed(dir, "make:migration create_things")
    assert.equal(0, code, err)
    assert.matches("^Created db/migrate/%d+_create_things%.lua\n$", out)
  end)

  it("exits 2 on a missing or bad name", function()
    local _, err, code = ormed(dir, "make:migration")
    assert.equal(2, code)
    assert.same({ "ormed: make:migration needs a NAME, e.g. create_users_table (see ormed --help)" }, lines(err))
    _, err, code = ormed(dir, "make:migration 'drop users!'")
    assert.equal(2, code)
    assert.matches("^ormed: a migration name is letters, digits and underscores", err)
    _, err, code = ormed(dir, "make:migration a b")
    assert.equal(2, code)
    assert.matches("unexpected argument 'b'", err)
    _, err, code = ormed(dir, "make:migration x --tenants")
    assert.equal(2, code)
    assert.matches("not %-%-connection or %-%-tenants", err)
    local out = ormed(dir, "status")
    assert.same({ "Status   Batch  Migration                    Applied at",
      "Pending         20240101000000_create_teams",
      "Pending         20240102000000_create_users" }, lines(out))
  end)
end)

-- A migration that fails halfway, on every driver: exit 1, its error on
-- stderr, the migrations before it kept and reported, and nothing of it
-- left where the database's DDL is transactional.
helper.each_driver(function(drv)
  describe("ormed migrate with a failing migration", function()
    local dir, ds, suffix

    before_each(function()
      dir = new_project()
      suffix = tostring(counter) .. "_" .. math.random(1e6)
      if drv.url then
        ds = drv:data_source()
      else -- the SQLite file the command's configuration names
        ds = orm.DataSource({ name = "cli_sqlite_" .. suffix,
          driver = orm.SqliteDriverAdapter.file(dir .. "/app.sqlite") }):init()
      end
    end)

    after_each(function()
      local schema = ds:schema()
      for _, t in ipairs({ "cli_ok_" .. suffix, "cli_half_" .. suffix, "cli_ledger_" .. suffix }) do
        schema:drop_table(t, { if_exists = true })
      end
      ds:dispose()
      sh("rm -rf " .. q(dir))
    end)

    it("exits 1, shows its error and keeps what ran before it", function()
      local url = drv.url or ("sqlite:" .. dir .. "/app.sqlite")
      write(dir .. "/ormed.config.lua", string.format(
        "return { connections = { db = { url = %q } }, table = %q, migrations = 'fails' }",
        url, "cli_ledger_" .. suffix))
      sh("mkdir -p " .. q(dir .. "/fails"))
      write(dir .. "/fails/20240101000000_ok.lua", string.format([[
return {
  up = function(schema) schema:create_table(%q, function(t) t:id() end) end,
  down = function(schema) schema:drop_table(%q) end,
}]], "cli_ok_" .. suffix, "cli_ok_" .. suffix))
      write(dir .. "/fails/20240102000000_half.lua", string.format([[
return {
  up = function(schema, ds)
    schema:create_table(%q, function(t) t:id() end)
    ds:execute("INSERT INTO cli_no_such_table (id) VALUES (1)")
  end,
  down = function(schema) schema:drop_table(%q) end,
}]], "cli_half_" .. suffix, "cli_half_" .. suffix))
      local out, err, code = ormed(dir, "migrate")
      assert.equal(1, code, err)
      assert.same({ "Migrated     20240101000000_ok  (T)", "Failed       20240102000000_half  (T)" },
        fixed(out))
      local l = lines(err)
      assert.equal(1, #l, err)
      assert.matches("^ormed migration_failed: migration fails/20240102000000_half%.lua failed %(up%): .*"
        .. "cli_no_such_table", l[1])
      assert.is_true(ds:schema():has_table("cli_ok_" .. suffix))
      -- SQLite and PostgreSQL roll the failed migration back whole; MySQL
      -- commits each DDL statement, so there only the ledger is kept clean
      assert.equal(drv.name == "mysql", ds:schema():has_table("cli_half_" .. suffix))
      out, err, code = ormed(dir, "status")
      assert.equal(0, code, err)
      assert.same({ "Status   Batch  Migration            Applied at",
        "Ran      1      20240101000000_ok    AT",
        "Pending         20240102000000_half" }, fixed(out))
    end)
  end)
end)
