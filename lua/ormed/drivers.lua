--- ormed.drivers: driver adapters (what to connect to), DatabaseConfig and
-- driver_from_url. An adapter is a plain table { driver = name, params = {...} }
-- handed to the C engine when a data source opens its pool.
-- @module ormed.drivers
local errors = require("ormed.errors")

local M = {}

local Adapter = {}
Adapter.__index = Adapter

function Adapter:__tostring()
  local p = self.params
  if p.driver == "sqlite" then
    return "sqlite:" .. (p.memory and ":memory:" or tostring(p.path))
  end
  return string.format("%s://%s@%s:%s/%s", p.driver, tostring(p.username),
    tostring(p.host), tostring(p.port), tostring(p.database))
end

local function adapter(params)
  return setmetatable({ driver = params.driver, params = params }, Adapter)
end

--- orm.DatabaseConfig{ driver = "sqlite", options = { path = ... } }
function M.DatabaseConfig(t)
  errors.check(type(t) == "table", "DatabaseConfig expects a table")
  errors.check(type(t.driver) == "string", "DatabaseConfig needs a driver name")
  return { driver = t.driver, options = t.options or {} }
end

-- prepared_statements: true/false, or "true"/"false"/"1"/"0" from a URL.
local function flag(driver, v)
  if v == nil then return nil end
  if v == true or v == "true" or v == "1" then return true end
  if v == false or v == "false" or v == "0" then
    if driver ~= "postgres" then
      errors.raise("invalid_argument", "prepared_statements = false is a PostgreSQL "
        .. "option (for PgBouncer in transaction mode)")
    end
    return false
  end
  errors.raise("invalid_argument", "prepared_statements must be true or false, got '%s'",
    tostring(v))
end

-- The port as an integer from 1 to 65535 (nil when not given); anything
-- else raises invalid_argument naming it.
local function check_port(driver, port)
  if port == nil then return nil end
  local n = math.tointeger(tonumber(type(port) == "string" and port:match("^%d+$") or
    type(port) == "number" and port or nil))
  if n == nil or n < 1 or n > 65535 then
    errors.raise("invalid_argument", "%s: the port must be a number from 1 to 65535, got '%s'",
      driver, tostring(port))
  end
  return n
end

local function copy_server_params(driver, t)
  errors.check(type(t) == "table", "%s adapter expects a table of options", driver)
  return {
    prepared_statements = flag(driver, t.prepared_statements),
    driver = driver,
    host = t.host,
    port = check_port(driver, t.port),
    database = t.database,
    username = t.username or t.user,
    password = t.password,
    socket = t.socket,
    sslmode = t.sslmode,
    options = t.options,
    timeout = t.timeout,
  }
end

M.SqliteDriverAdapter = {}

--- orm.SqliteDriverAdapter.file(path): a SQLite database in a file (created when missing).
-- @function SqliteDriverAdapter.file
function M.SqliteDriverAdapter.file(path)
  errors.check(type(path) == "string" and path ~= "",
    "SqliteDriverAdapter.file expects a path")
  return adapter({ driver = "sqlite", path = path })
end

--- orm.SqliteDriverAdapter.memory(): an in-memory SQLite database (one connection: each connection
-- would be a separate database).
-- @function SqliteDriverAdapter.memory
function M.SqliteDriverAdapter.memory()
  return adapter({ driver = "sqlite", memory = true })
end

--- orm.SqliteDriverAdapter.custom{ config = orm.DatabaseConfig{ driver = "sqlite", options = { path
-- = ... } | { memory = true } } }.
-- @function SqliteDriverAdapter.custom
function M.SqliteDriverAdapter.custom(t)
  errors.check(type(t) == "table" and type(t.config) == "table",
    "SqliteDriverAdapter.custom expects { config = orm.DatabaseConfig{...} }")
  local o = t.config.options or {}
  if o.memory then return M.SqliteDriverAdapter.memory() end
  return M.SqliteDriverAdapter.file(o.path or o.database)
end

M.PostgresDriverAdapter = setmetatable({}, {
  __call = function(_, t) return adapter(copy_server_params("postgres", t)) end,
})

--- orm.PostgresDriverAdapter{ host, port, database, username, password, socket?, sslmode?, options?
-- }: a PostgreSQL server (libpq).
-- @function PostgresDriverAdapter



M.MySqlDriverAdapter = setmetatable({}, {
  __call = function(_, t) return adapter(copy_server_params("mysql", t)) end,
})

--- orm.MySqlDriverAdapter{ host, port, database, username, password, socket? }: a MySQL or MariaDB
-- server (MariaDB Connector/C).
-- @function MySqlDriverAdapter



local function unescape(s)
  return s and (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- orm.driver_from_url("postgres://user:pass@host:port/db?sslmode=disable"),
-- "mysql://...", "sqlite:path" or "sqlite::memory:".
function M.driver_from_url(url)
  errors.check(type(url) == "string", "driver_from_url expects a string")
  local path = url:match("^sqlite3?:(.*)$")
  if path then
    path = path:gsub("^//", "")
    if path == ":memory:" or path == "" then return M.SqliteDriverAdapter.memory() end
    return M.SqliteDriverAdapter.file(path)
  end
  local scheme, rest = url:match("^(%w+)://(.*)$")
  local driver = ({ postgres = "postgres", postgresql = "postgres",
    mysql = "mysql", mariadb = "mysql" })[scheme or ""]
  if not driver then
    errors.raise("invalid_argument", "unsupported database URL scheme '%s' "
      .. "(postgres://, mysql://, sqlite:)", tostring(scheme))
  end
  local query
  rest, query = rest:match("^([^?]*)%??(.*)$")
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  hostpart = hostpart or rest
  local user, pass
  if auth then user, pass = auth:match("^([^:]*):?(.*)$") end
  local hostport, db = hostpart:match("^([^/]*)/?(.*)$")
  -- host:port, [ipv6]:port; a bare IPv6 address (several colons) has no port
  local host, port = hostport:match("^%[([^%]]*)%]:?(.*)$")
  if not host then
    host, port = hostport:match("^([^:]*):(.*)$")
    if not host or port:find(":", 1, true) then host, port = hostport, nil end
  end
  local t = {
    host = host ~= "" and host or nil,
    port = port ~= "" and check_port(scheme .. " URL", unescape(port)) or nil,
    database = db ~= "" and unescape(db) or nil,
    username = unescape(user),
    password = pass ~= "" and unescape(pass) or nil,
  }
  for k, v in query:gmatch("([^&=]+)=([^&]*)") do t[k] = unescape(v) end
  return adapter(copy_server_params(driver, t))
end

return M
