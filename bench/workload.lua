-- bench/workload.lua: what every benchmark case shares: the databases
-- (SQLite in memory; PostgreSQL and MySQL from ORMED_TEST_POSTGRES /
-- ORMED_TEST_MYSQL), one connection per implementation (ormed, LuaSQL, the
-- C limit), the schema users(id, name, email, credits, active) and
-- posts(id, user_id, title, body) with the SQL that fills them, the ormed
-- models, a deterministic id sequence and the clock.
local climit = require("climit")

local W = {}

W.ROWS = tonumber(os.getenv("BENCH_ROWS")) or 100000 -- users rows
W.FINDS = 20000       -- find(id) calls
W.EAGER_USERS = 1000  -- eager-load parents
W.EAGER_POSTS = 10    -- posts per parent
W.COMPILES = 20000    -- query builds
W.RANGES = 5000       -- tenant / unscoped range queries
W.now = climit.now

-- Rows per INSERT statement of the C limit's bulk insert: the fastest
-- plain approach measured per database (bench/RESULTS.md): multi-row
-- statements of 1000 rows (4000 on MySQL). One reused single-row INSERT
-- is about 1.5x slower on SQLite, and statements as large as the parameter
-- limit allows cost more than they save (SQLite builds a program that
-- grows with the values; PostgreSQL takes 4x longer with 16k-row
-- statements). BENCH_INSERT_BATCH overrides it, to explore.
local INSERT_ROWS = { sqlite = 1000, postgres = 1000, mysql = 4000 }

function W.insert_batch(driver)
  return tonumber(os.getenv("BENCH_INSERT_BATCH")) or INSERT_ROWS[driver]
end

-- Placeholder n in the driver's own syntax.
function W.ph(driver, n)
  return driver == "postgres" and ("$" .. n) or "?"
end

-- {==== drivers ====}

local URL_ENV = { postgres = "ORMED_TEST_POSTGRES", mysql = "ORMED_TEST_MYSQL" }

-- { user, password, host, port, database } of a server URL.
local function parse_url(url)
  local user, pass, host, port, db = url:match("^%w+://([^:@]*):?([^@]*)@([^:/]+):?(%d*)/([^?]*)")
  if not user then error("bench: cannot read the database URL " .. url) end
  return { user = user, password = pass ~= "" and pass or nil, host = host,
    port = tonumber(port), database = db }
end

-- The URL of a server driver, or nil when none is configured.
function W.url(driver)
  local env = URL_ENV[driver]
  return env and os.getenv(env) or nil
end

-- {==== schema ====}

local DDL = {
  sqlite = {
    id = "INTEGER PRIMARY KEY", str = "VARCHAR(255)", int = "INTEGER", bool = "BOOLEAN",
    text = "TEXT",
  },
  postgres = {
    id = "BIGSERIAL PRIMARY KEY", str = "VARCHAR(255)", int = "INTEGER", bool = "BOOLEAN",
    text = "TEXT",
  },
  mysql = {
    id = "BIGINT AUTO_INCREMENT PRIMARY KEY", str = "VARCHAR(255)", int = "INTEGER",
    bool = "BOOLEAN", text = "TEXT",
  },
}

-- Fresh planner statistics after a bulk fill (PostgreSQL otherwise plans
-- the tenant range query with a sequential scan).
local ANALYZE = { sqlite = "ANALYZE %s", postgres = "ANALYZE %s", mysql = "ANALYZE TABLE %s" }

-- A row source of n integers x, as the FROM part of a SELECT.
local function series(driver, n)
  if driver == "postgres" then return ("generate_series(1, %d) AS s(x)"):format(n) end
  if driver == "mysql" then return ("(SELECT seq AS x FROM seq_1_to_%d) AS s"):format(n) end
  return ("(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "
    .. "SELECT x FROM c) AS s"):format(n)
end

local function concat(driver, ...)
  if driver == "mysql" then return "CONCAT(" .. table.concat({ ... }, ", ") .. ")" end
  return table.concat({ ... }, " || ")
end

-- The statements that (re)create users (with tenant_id when asked) and,
-- when n_users is given, fill it with n rows: name 'user<x>', email
-- 'user<x>@example.com', credits x % 1000, active when x is even,
-- tenant_id x % 10 + 1.
function W.users_sql(driver, n, with_tenant)
  local t = DDL[driver]
  local drop = driver == "postgres" and "DROP TABLE IF EXISTS posts, users CASCADE"
    or "DROP TABLE IF EXISTS posts"
  local out = { drop }
  if driver ~= "postgres" then out[#out + 1] = "DROP TABLE IF EXISTS users" end
  out[#out + 1] = ("CREATE TABLE users (id %s, name %s NOT NULL, email %s NOT NULL, "
    .. "credits %s NOT NULL, active %s NOT NULL%s)"):format(t.id, t.str, t.str, t.int, t.bool,
    with_tenant and (", tenant_id " .. t.int .. " NOT NULL") or "")
  if with_tenant then
    out[#out + 1] = "CREATE INDEX users_tenant_id ON users (tenant_id, id)"
  end
  if n and n > 0 then
    out[#out + 1] = ("INSERT INTO users (name, email, credits, active%s) SELECT %s, %s, x %% 1000, "
      .. "%s%s FROM %s"):format(with_tenant and ", tenant_id" or "",
      concat(driver, "'user'", "x"), concat(driver, "'user'", "x", "'@example.com'"),
      driver == "postgres" and "x % 2 = 0" or "(x % 2) = 0",
      with_tenant and ", x % 10 + 1" or "", series(driver, n))
    out[#out + 1] = ANALYZE[driver]:format("users")
  end
  return out
end

-- The statements that create posts(id, user_id, title, body) with an index
-- on user_id and fill it with per_user posts for each of n_users users.
function W.posts_sql(driver, n_users, per_user)
  local t = DDL[driver]
  return {
    ("CREATE TABLE posts (id %s, user_id %s NOT NULL, title %s NOT NULL, body %s)")
      :format(t.id, t.int, t.str, t.text),
    "CREATE INDEX posts_user_id ON posts (user_id)",
    ("INSERT INTO posts (user_id, title, body) SELECT (x - 1) %% %d + 1, %s, %s FROM %s")
      :format(n_users, concat(driver, "'post'", "x"), concat(driver, "'the body of post '", "x"),
      series(driver, n_users * per_user)),
    ANALYZE[driver]:format("posts"),
  }
end

-- {==== connections ====}

-- ctx for impl ("ormed" | "luasql" | "climit") on driver: ctx.exec(sql),
-- ctx.count(sql) (the first column of the first row, a number), and the
-- handle: ctx.ds, ctx.conn (+ ctx.env) or ctx.db.
function W.open(impl, driver)
  local ctx = { impl = impl, driver = driver }
  local url = W.url(driver)
  if driver ~= "sqlite" and not url then error("bench: no server URL for " .. driver) end
  if impl == "ormed" then
    local orm = require("ormed")
    ctx.orm = orm
    local adapter = driver == "sqlite" and orm.SqliteDriverAdapter.memory() or orm.driver_from_url(url)
    ctx.ds = orm.DataSource({ name = "bench", driver = adapter }):init()
    ctx.exec = function(sql) ctx.ds:execute(sql) end
    ctx.count = function(sql)
      local _, v = next(ctx.ds:select(sql)[1])
      return tonumber(v)
    end
  elseif impl == "luadbi" then -- LuaDBI (Debian lua-dbi-sqlite3): SQLite only
    if driver ~= "sqlite" then os.exit(2) end
    ctx.dbi = assert(require("DBI").Connect("SQLite3", ":memory:"))
    ctx.dbi:autocommit(true)
    ctx.exec = function(sql)
      local sth = assert(ctx.dbi:prepare(sql))
      assert(sth:execute())
      sth:close()
    end
    ctx.count = function(sql)
      local sth = assert(ctx.dbi:prepare(sql))
      assert(sth:execute())
      local row = sth:fetch(false)
      sth:close()
      return tonumber(row and row[1])
    end
  elseif impl == "luasql" then
    local u = url and parse_url(url)
    if driver == "sqlite" then
      ctx.env = require("luasql.sqlite3").sqlite3()
      ctx.conn = assert(ctx.env:connect(":memory:"))
    elseif driver == "postgres" then
      ctx.env = require("luasql.postgres").postgres()
      ctx.conn = assert(ctx.env:connect(u.database, u.user, u.password, u.host, u.port))
    else
      ctx.env = require("luasql.mysql").mysql()
      ctx.conn = assert(ctx.env:connect(u.database, u.user, u.password, u.host, u.port))
    end
    ctx.connect = function()
      if driver == "sqlite" then return assert(ctx.env:connect(":memory:")) end
      return assert(ctx.env:connect(u.database, u.user, u.password, u.host, u.port))
    end
    ctx.exec = function(sql)
      local r, err = ctx.conn:execute(sql)
      if not r then error("luasql: " .. tostring(err) .. "\n" .. sql) end
      if type(r) == "userdata" then r:close() end
    end
    ctx.count = function(sql)
      local cur = assert(ctx.conn:execute(sql))
      local v = cur:fetch()
      cur:close()
      return tonumber(v)
    end
  else
    if driver == "sqlite" then
      ctx.db = climit.sqlite_open(":memory:")
    elseif driver == "postgres" then
      ctx.db = climit.pg_open(url)
    else
      local u = parse_url(url)
      ctx.db = climit.mysql_open(u.host, u.user, u.password, u.database, u.port)
    end
    ctx.exec = function(sql) climit.exec(ctx.db, sql) end
    ctx.count = function(sql)
      local _, v = next(climit.select(ctx.db, sql)[1])
      return tonumber(v)
    end
  end
  return ctx
end

-- Runs a list of statements on ctx.
-- User:find(id) for each id (the find cases); how many were found.
function W.finds(User, ids)
  local found = 0
  for _, id in ipairs(ids) do
    if User:find(id) then found = found + 1 end
  end
  return found
end

function W.run_all(ctx, list)
  for _, sql in ipairs(list) do ctx.exec(sql) end
end

-- The rows of sql through a LuaSQL connection, as tables keyed by column
-- name (with metatable mt when given): what a LuaSQL user writes.
function W.luasql_rows(conn, sql, mt)
  local cur = assert(conn:execute(sql))
  local list, n = {}, 0
  local row = cur:fetch({}, "a")
  while row do
    n = n + 1
    if mt then setmetatable(row, mt) end
    list[n] = row
    row = cur:fetch({}, "a")
  end
  cur:close()
  return list
end

-- The SQL literal of a boolean, for hand-written SQL.
function W.bool_sql(b)
  return b and "TRUE" or "FALSE"
end

-- {==== models ====}

-- User (users) and Post (posts), with User.posts = has_many(Post).
function W.models(orm, with_tenant)
  local fields = { id = "integer", name = "string", email = "string", credits = "integer",
    active = "boolean" }
  if with_tenant then fields.tenant_id = "integer" end
  local User = orm.model("User", { table = "users", fields = fields,
    relations = { posts = orm.has_many("Post", { foreign_key = "user_id" }) } })
  local Post = orm.model("Post", { table = "posts",
    fields = { id = "integer", user_id = "integer", title = "string", body = "text" } })
  return User, Post
end

-- The metatable LuaSQL and the C limit give rows that stand for model
-- instances (the cheapest possible instance: a row with a metatable).
W.instance_mt = { __index = function() return nil end }

-- {==== data ====}

-- n ids in [1, max], the same pseudo-random sequence in every process.
function W.ids(n, max)
  local out, x = {}, 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    out[i] = x % max + 1
  end
  return out
end

-- n rows to insert: { name, email, credits, active }.
function W.rows(n)
  local out = {}
  for i = 1, n do
    out[i] = { name = "user" .. i, email = "user" .. i .. "@example.com", credits = i % 1000,
      active = i % 2 == 0 }
  end
  return out
end

-- {==== paired timing ====}

-- The time of a() over the time of b(), both run `rounds` times in one
-- process, alternating (a then b, then b then a): on a machine shared with
-- other work, load that comes and goes falls on both alike, which
-- separate processes (the medians of run.lua) cannot promise.
function W.paired(a, b, rounds)
  local ta, tb = 0, 0
  for r = 1, rounds do
    local first, second = a, b
    if r % 2 == 0 then first, second = b, a end
    local t0 = W.now()
    first()
    local t1 = W.now()
    second()
    local t2 = W.now()
    if first == a then ta, tb = ta + t1 - t0, tb + t2 - t1 else ta, tb = ta + t2 - t1, tb + t1 - t0 end
  end
  return ta / tb
end

return W
