-- spec/migrate_spec.lua: migrations on real databases: migrate, rollback,
-- reset, status and fresh; the ledger; a changed file refused; a failed
-- migration leaving the ledger unchanged; every tenant migrated with a
-- report that goes on past a failing one. Server drivers get databases of
-- their own here, because fresh() drops every table.
local orm = require("ormed")
local helper = require("spec.helper")
local migrator = require("ormed.migrator")

local Migrator = orm.Migrator
local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local counter = 0

local function sh(cmd)
  assert(os.execute(cmd), "command failed: " .. cmd)
end

local function new_dir()
  counter = counter + 1
  local dir = string.format("%s/ormed_mig_%d_%d_%d", tmp, os.time(), math.random(1e6), counter)
  sh("mkdir -p '" .. dir .. "'")
  return dir
end

local function write(dir, name, src)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(src)
  f:close()
end

local TEAMS = [[
return {
  up = function(schema) schema:create_table("mig_teams", function(t) t:id(); t:string("name") end) end,
  down = function(schema) schema:drop_table("mig_teams") end,
}
]]

local USERS = [[
return {
  up = function(schema)
    schema:create_table("mig_users", function(t)
      t:id(); t:string("name"); t:foreign_id("team_id"):references("mig_teams"):on_delete("cascade")
    end)
  end,
  down = function(schema) schema:drop_table("mig_users") end,
}
]]

local POSTS = [[
return {
  up = function(schema)
    schema:create_table("mig_posts", function(t) t:id(); t:foreign_id("user_id"):constrained("mig_users") end)
  end,
  down = function(schema) schema:drop_table("mig_posts") end,
}
]]

local BROKEN = [[
return {
  up = function(schema, ds)
    schema:create_table("mig_broken", function(t) t:id() end)
    ds:execute("INSERT INTO mig_no_such_table (id) VALUES (?)", { 1 })
  end,
  down = function(schema) schema:drop_table("mig_broken") end,
}
]]

local NO_DOWN = [[
return { up = function(schema) schema:create_table("mig_nodown", function(t) t:id() end) end }
]]

local function ids(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = s.id end
  return out
end

describe("migrator checksum", function()
  it("is FNV-1a 64 of the bytes", function()
    assert.equal("cbf29ce484222325", migrator.checksum(""))
    assert.equal("af63dc4c8601ec8c", migrator.checksum("a"))
    assert.equal("85944171f73967e8", migrator.checksum("foobar"))
  end)
end)

helper.each_driver(function(drv)
  local admin

  -- A data source on a database of its own (a new file on SQLite).
  local function database(name)
    if drv.name == "sqlite" then return drv:data_source() end
    admin = admin or drv:data_source()
    admin:execute("DROP DATABASE IF EXISTS " .. name)
    admin:execute("CREATE DATABASE " .. name)
    counter = counter + 1
    local url = drv.url:gsub("/[^/?]*(%??[^/]*)$", "/" .. name .. "%1")
    return orm.DataSource({ name = "mig_" .. name .. counter, driver = orm.driver_from_url(url) }):init(), url
  end

  local function drop_database(ds, name)
    ds:dispose()
    if drv.name ~= "sqlite" then admin:execute("DROP DATABASE IF EXISTS " .. name) end
  end

  teardown(function()
    if admin then admin:dispose() end
  end)

  describe("a runner", function()
    local ds, dir, runner, schema

    before_each(function()
      ds = database("ormed_mig_main")
      schema = ds:schema()
      dir = new_dir()
      write(dir, "20240101000000_create_teams.lua", TEAMS)
      write(dir, "20240102000000_create_users.lua", USERS)
      runner = Migrator({ data_source = ds, path = dir })
    end)

    after_each(function()
      drop_database(ds, "ormed_mig_main")
      sh("rm -rf '" .. dir .. "'")
    end)

    it("applies pending migrations in order, once, recording them in the ledger", function()
      assert.same({ "20240101000000_create_teams", "20240102000000_create_users" }, runner:migrate())
      assert.is_true(schema:has_table("orm_migrations"))
      assert.is_true(schema:has_table("mig_teams"))
      assert.is_true(schema:has_table("mig_users"))
      assert.same({}, runner:migrate())
      local st = runner:status()
      assert.same({ "20240101000000_create_teams", "20240102000000_create_users" }, ids(st))
      assert.equal("create_teams", st[1].name)
      for _, s in ipairs(st) do
        assert.is_true(s.applied)
        assert.equal(1, s.batch)
        assert.is_false(s.changed)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d", s.applied_at)
      end
      local rows = ds:select("SELECT id, checksum, batch FROM orm_migrations ORDER BY id")
      assert.same({ id = "20240101000000_create_teams", checksum = migrator.checksum(TEAMS),
        batch = 1 }, rows[1])
    end)

    it("starts a new batch per run and rolls back the last batch or n steps", function()
      runner:migrate()
      write(dir, "20240103000000_create_posts.lua", POSTS)
      local st = runner:status()
      assert.is_false(st[3].applied)
      assert.is_nil(st[3].batch)
      assert.same({ "20240103000000_create_posts" }, runner:migrate())
      assert.equal(2, runner:status()[3].batch)
      assert.same({ "20240103000000_create_posts" }, runner:rollback())
      assert.is_false(schema:has_table("mig_posts"))
      assert.is_true(schema:has_table("mig_users"))
      assert.same({ "20240102000000_create_users", "20240101000000_create_teams" }, runner:rollback())
      assert.same({}, runner:rollback())
      runner:migrate()
      assert.same({ "20240103000000_create_posts", "20240102000000_create_users" },
        runner:rollback{ steps = 2 })
      assert.is_true(schema:has_table("mig_teams"))
      assert.is_false(schema:has_table("mig_users"))
      assert.same({ true, false, false }, { runner:status()[1].applied, runner:status()[2].applied,
        runner:status()[3].applied })
      assert.same({ "20240101000000_create_teams" }, runner:reset())
      assert.same({ "orm_migrations" }, schema:tables())
      assert.equal("invalid_argument", helper.error_of(runner.rollback, runner, { steps = 0 }).kind)
    end)

    it("fresh drops every table, linked or not, then migrates", function()
      runner:migrate()
      ds:execute("INSERT INTO mig_teams (name) VALUES (?)", { "red" })
      ds:execute("INSERT INTO mig_users (name, team_id) VALUES (?, ?)", { "ann", 1 })
      schema:create_table("mig_extra", function(t) t:id(); t:foreign_id("user_id"):references("mig_users") end)
      ds:execute("INSERT INTO mig_extra (user_id) VALUES (?)", { 1 })
      assert.same({ "20240101000000_create_teams", "20240102000000_create_users" }, runner:fresh())
      assert.same({ "mig_teams", "mig_users", "orm_migrations" }, schema:tables())
      assert.equal(0, #ds:select("SELECT id FROM mig_users"))
      for _, s in ipairs(runner:status()) do assert.equal(1, s.batch) end
      -- foreign keys work again after fresh
      assert.equal("foreign_key_violation", helper.error_of(ds.execute, ds,
        "INSERT INTO mig_users (name, team_id) VALUES (?, ?)", { "bob", 9 }).kind)
    end)

    it("refuses a migration file changed after it was applied", function()
      runner:migrate()
      write(dir, "20240101000000_create_teams.lua", TEAMS .. "-- edited\n")
      write(dir, "20240103000000_create_posts.lua", POSTS)
      local err = helper.error_of(runner.migrate, runner)
      assert.is_true(orm.Error.is(err, "migration_changed"), tostring(err))
      assert.matches("20240101000000_create_teams.lua was changed after it was applied", err.message)
      assert.equal("20240101000000_create_teams", err.migration)
      assert.is_false(schema:has_table("mig_posts"))
      assert.is_true(runner:status()[1].changed)
      assert.is_false(runner:status()[2].changed)
      assert.equal("migration_changed", helper.error_of(runner.reset, runner).kind)
      write(dir, "20240101000000_create_teams.lua", TEAMS)
      assert.same({ "20240103000000_create_posts" }, runner:migrate())
    end)

    it("leaves the ledger unchanged when a migration fails, naming the file", function()
      write(dir, "20240103000000_broken.lua", BROKEN)
      write(dir, "20240104000000_create_posts.lua", POSTS)
      local err = helper.error_of(runner.migrate, runner)
      assert.is_true(orm.Error.is(err, "migration_failed"), tostring(err))
      assert.matches("20240103000000_broken.lua failed %(up%)", err.message)
      assert.matches("mig_no_such_table", err.message)
      assert.equal("query", err.cause.kind)
      assert.same({ "20240101000000_create_teams", "20240102000000_create_users" }, err.applied)
      local st = runner:status()
      assert.same({ true, true, false, false }, { st[1].applied, st[2].applied, st[3].applied,
        st[4].applied })
      assert.equal(2, #ds:select("SELECT id FROM orm_migrations"))
      assert.is_false(schema:has_table("mig_posts"))
      -- SQLite and PostgreSQL undo the migration's DDL; MySQL commits DDL as it goes
      assert.equal(drv.name == "mysql", schema:has_table("mig_broken"))
      write(dir, "20240103000000_broken.lua", TEAMS:gsub("mig_teams", "mig_fixed"))
      if drv.name == "mysql" then schema:drop_table("mig_broken") end
      assert.same({ "20240103000000_broken", "20240104000000_create_posts" }, runner:migrate())
    end)

    it("reports what it cannot roll back", function()
      write(dir, "20240103000000_no_down.lua", NO_DOWN)
      runner:migrate()
      local err = helper.error_of(runner.rollback, runner, { steps = 1 })
      assert.is_true(orm.Error.is(err, "migration_failed"), tostring(err))
      assert.matches("no down function", err.message)
      assert.is_true(runner:status()[3].applied)
      sh("rm '" .. dir .. "/20240103000000_no_down.lua'")
      local st = runner:status()
      assert.equal(3, #st)
      assert.is_true(st[3].missing)
      assert.is_true(st[3].applied)
      err = helper.error_of(runner.rollback, runner)
      assert.is_true(orm.Error.is(err, "migration_missing"), tostring(err))
      assert.matches("20240103000000_no_down", err.message)
    end)

    it("refuses a badly named file, a missing folder and a file that is not a migration", function()
      write(dir, "create_things.lua", TEAMS)
      local err = helper.error_of(runner.migrate, runner)
      assert.is_true(orm.Error.is(err, "invalid_argument"), tostring(err))
      assert.matches("create_things.lua is not named YYYYMMDDHHMMSS_name.lua", err.message)
      assert.is_false(schema:has_table("orm_migrations"))
      sh("rm '" .. dir .. "/create_things.lua'")
      write(dir, "20240103000000_odd.lua", "return 42")
      err = helper.error_of(runner.migrate, runner)
      assert.is_true(orm.Error.is(err, "migration_failed"), tostring(err))
      assert.matches("must return", err.message)
      write(dir, "20240103000000_odd.lua", "return {")
      assert.matches("does not compile", helper.error_of(runner.migrate, runner).message)
      local lost = Migrator({ data_source = ds, path = dir .. "/nope" })
      err = helper.error_of(lost.migrate, lost)
      assert.is_true(orm.Error.is(err, "invalid_argument"), tostring(err))
      assert.matches("nope", err.message)
      assert.equal("invalid_argument", helper.error_of(Migrator, { path = dir }).kind)
    end)

    it("keeps its ledger in the table it is given", function()
      local r = Migrator({ data_source = ds, path = dir, table = "my_ledger" })
      r:migrate()
      assert.is_true(schema:has_table("my_ledger"))
      assert.is_false(schema:has_table("orm_migrations"))
      assert.equal(2, #ds:select("SELECT id FROM my_ledger"))
    end)
  end)

  describe("tenants", function()
    local names = { "a", "b", "c" }
    local sources, urls, dir, tenants = {}, {}, nil, nil

    setup(function()
      dir = new_dir()
      write(dir, "20240101000000_create_teams.lua", TEAMS)
      write(dir, "20240102000000_create_users.lua", USERS)
      for _, id in ipairs(names) do
        local ds, url = database("ormed_mig_tenant_" .. id)
        sources[id], urls[id] = ds, url
      end
      -- tenant b already has a table the first migration creates: it fails there
      sources.b:schema():create_table("mig_teams", function(t) t:id() end)
      counter = counter + 1
      tenants = orm.TenantManager({ prefix = "mig_tenant" .. counter .. ":", driver = function(id)
        if drv.name == "sqlite" then return sources[id].driver end
        return orm.driver_from_url(urls[id])
      end })
      for _, id in ipairs(names) do tenants:register(id) end
    end)

    teardown(function()
      tenants:dispose()
      for _, id in ipairs(names) do drop_database(sources[id], "ormed_mig_tenant_" .. id) end
      sh("rm -rf '" .. dir .. "'")
    end)

    it("migrates every tenant and reports each, past a failing one", function()
      local report = Migrator.for_tenants(tenants, { path = dir }):migrate()
      assert.equal(3, #report)
      assert.same({ "a", "b", "c" }, { report[1].tenant, report[2].tenant, report[3].tenant })
      assert.is_true(report[1].ok)
      assert.is_false(report[2].ok)
      assert.is_true(report[3].ok)
      local all = { "20240101000000_create_teams", "20240102000000_create_users" }
      assert.same(all, report[1].applied)
      assert.same(all, report[3].applied)
      assert.same({}, report[2].applied)
      assert.is_true(orm.Error.is(report[2].error, "migration_failed"), tostring(report[2].error))
      assert.matches("20240101000000_create_teams.lua", report[2].error.message)
      assert.is_true(sources.c:schema():has_table("mig_users"))
      assert.is_false(sources.b:schema():has_table("mig_users"))
      local status = Migrator.for_tenants(tenants, { path = dir }):status()
      assert.is_true(status[1].status[2].applied)
      assert.is_false(status[2].status[1].applied)
      local again = Migrator.migrate_tenants(tenants, { path = dir })
      assert.same({}, again[1].applied)
      assert.is_false(again[2].ok)
      local back = Migrator.for_tenants(tenants, { path = dir }):rollback{ steps = 1 }
      assert.same({ "20240102000000_create_users" }, back[3].rolled_back)
      assert.same({}, back[2].rolled_back)
      assert.is_true(back[2].ok)
    end)
  end)
end)
