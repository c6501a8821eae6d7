-- spec/helper.lua: runs specs once per driver on real databases.
--   local helper = require("spec.helper")
--   helper.each_driver(function(drv) ... end)   -- describe("[sqlite] ...")
-- drv.name is "sqlite" | "postgres" | "mysql"; drv.adapter() a fresh
-- driver adapter; drv.data_source(name?, pool?) an initialised DataSource;
-- drv.create_table(ds, name, columns) and drv.drop_table(ds, name).
-- PostgreSQL and MariaDB come from ORMED_TEST_POSTGRES / ORMED_TEST_MYSQL
-- (set by scripts/with-servers.sh). A driver whose URL is missing gets a
-- failing spec, never a silent skip. ORMED_TEST_DRIVERS=sqlite,... limits
-- the run to the drivers it names, and says so.
local orm = require("ormed")
local busted = require("busted")
local describe, it = busted.describe, busted.it

local helper = {}

local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local counter = 0

local function wanted(name)
  local list = os.getenv("ORMED_TEST_DRIVERS")
  return list == nil or ("," .. list .. ","):find("," .. name .. ",", 1, true) ~= nil
end

local Driver = {}
Driver.__index = Driver

function Driver:data_source(name, pool)
  counter = counter + 1
  local ds = orm.DataSource({ name = name or (self.name .. "_ds" .. counter),
    driver = self.adapter(), pool = pool })
  return ds:init()
end

function Driver.drop_table(_, ds, name)
  ds:schema():drop_table(name, { if_exists = true })
end

-- Schema builder methods for the column types of create_table.
local BUILDERS = { bigint = "big_integer" }

-- create_table(ds, "users", { {"id","id"}, {"name","string","NOT NULL UNIQUE"}, ... })
-- through the schema builder; columns are nullable unless "NOT NULL".
function Driver:create_table(ds, name, columns)
  self:drop_table(ds, name)
  ds:schema():create_table(name, function(t)
    for _, c in ipairs(columns) do
      local col, ty, mods = c[1], c[2], c[3] or ""
      if ty == "id" then
        t:id(col)
      else
        local b
        if ty == "decimal" then
          b = t:decimal(col, 30, 10)
        else
          b = t[BUILDERS[ty] or ty](t, col)
        end
        if not mods:find("NOT NULL", 1, true) then b:nullable() end
        if mods:find("UNIQUE", 1, true) then b:unique() end
      end
    end
  end)
end

local function sqlite_driver()
  counter = counter + 1
  local dir = tmp
  return setmetatable({ name = "sqlite", adapter = function()
    counter = counter + 1
    return orm.SqliteDriverAdapter.file(string.format("%s/ormed_spec_%d_%d.sqlite",
      dir, os.time(), counter))
  end }, Driver)
end

local function server_driver(name, env)
  local url = os.getenv(env)
  return setmetatable({ name = name, url = url, adapter = function()
    return orm.driver_from_url(url)
  end }, Driver)
end

-- The drivers this run covers (sqlite first).
function helper.drivers()
  local list = {}
  if wanted("sqlite") then list[#list + 1] = sqlite_driver() end
  if wanted("postgres") then list[#list + 1] = server_driver("postgres", "ORMED_TEST_POSTGRES") end
  if wanted("mysql") then list[#list + 1] = server_driver("mysql", "ORMED_TEST_MYSQL") end
  return list
end

local announced = false

-- True when this run covers every named driver. A driver left out by
-- ORMED_TEST_DRIVERS is reported on stderr, never skipped silently.
function helper.covers(...)
  for _, name in ipairs({ ... }) do
    if not wanted(name) then
      io.stderr:write("spec/helper: specs that need " .. table.concat({ ... }, " and ")
        .. " left out by ORMED_TEST_DRIVERS=" .. os.getenv("ORMED_TEST_DRIVERS") .. "\n")
      return false
    end
  end
  return true
end

-- Runs fn(drv) inside describe("[driver] ...") for every driver.
function helper.each_driver(fn)
  if not announced and os.getenv("ORMED_TEST_DRIVERS") then
    announced = true
    io.stderr:write("spec/helper: drivers limited by ORMED_TEST_DRIVERS="
      .. os.getenv("ORMED_TEST_DRIVERS") .. "\n")
  end
  for _, drv in ipairs(helper.drivers()) do
    describe("[" .. drv.name .. "]", function()
      if drv.name ~= "sqlite" and not drv.url then
        it("has a server to run on", function()
          error(drv.name .. ": no server URL (set ORMED_TEST_" .. drv.name:upper()
            .. " or run the specs through make test)")
        end)
        return
      end
      fn(drv)
    end)
  end
end

-- s quoted for a POSIX shell.
function helper.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The bytes of a file, or nil when it cannot be read.
function helper.read_file(file)
  local f = io.open(file, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The error a function raises (fails the spec when it raises nothing).
function helper.error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, got none")
  return err
end

return helper
