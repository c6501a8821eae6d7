-- spec/pgbouncer_spec.lua: ormed behind PgBouncer in transaction pooling
-- mode (scripts/pgbouncer.sh: 2 server connections shared by every client,
-- ORMED_TEST_PGBOUNCER). With prepared_statements = false every statement
-- goes unnamed and nothing stays on the server between statements, so
-- several data sources can alternate statements, transactions and
-- savepoints on the same two server connections.
local orm = require("ormed")
local helper = require("spec.helper")

local PG, PGB = os.getenv("ORMED_TEST_POSTGRES"), os.getenv("ORMED_TEST_PGBOUNCER")
local describe_pg = helper.covers("postgres") and describe or function() end

local function need()
  assert(PG, "ORMED_TEST_POSTGRES is not set: run the specs through make test")
  assert(PGB, "ORMED_TEST_PGBOUNCER is not set: run the specs through make test "
    .. "(scripts/with-servers.sh starts PgBouncer; apt-get install pgbouncer)")
end

local seq = 0
local function source(url, pool)
  seq = seq + 1
  return orm.DataSource({ name = "pgb" .. seq, driver = orm.driver_from_url(url),
    pool = pool or { max = 2, min = 1 } }):init()
end

describe_pg("PostgreSQL prepared_statements = false", function()
  setup(need)

  it("reads the option from a URL and from the adapter table", function()
    local a = orm.driver_from_url("postgres://u:p@127.0.0.1:5432/db?prepared_statements=false")
    assert.is_false(a.params.prepared_statements)
    assert.is_true(orm.driver_from_url("postgres://u@h/db?prepared_statements=true")
      .params.prepared_statements)
    assert.is_nil(orm.driver_from_url("postgres://u@h/db").params.prepared_statements)
    assert.is_false(orm.PostgresDriverAdapter({ host = "h", prepared_statements = false })
      .params.prepared_statements)
    local err = helper.error_of(orm.driver_from_url, "postgres://u@h/db?prepared_statements=maybe")
    assert.equal("invalid_argument", err.kind)
    err = helper.error_of(orm.driver_from_url, "mysql://u@h/db?prepared_statements=false")
    assert.equal("invalid_argument", err.kind)
    assert.matches("PostgreSQL", err.message, 1, true)
  end)

  it("leaves no prepared statement on the server between statements", function()
    local ds = source(PG .. "?prepared_statements=false", { max = 1, min = 1 })
    for i = 1, 3 do
      ds:select("SELECT ?::int AS n", { i })
      ds:execute("SELECT 1 AS one")
    end
    ds:transaction(function() ds:select("SELECT 2 AS two") end)
    assert.same({}, ds:select("SELECT name FROM pg_prepared_statements"))
    ds:dispose()
  end)
end)

describe_pg("behind PgBouncer (transaction mode, 2 server connections)", function()
  local a, b, c

  setup(function()
    need()
    a = source(PGB .. "?prepared_statements=false")
    b = source(PGB .. "?prepared_statements=false")
    local pg = orm.driver_from_url(PGB).params
    c = orm.DataSource({ name = "pgb_adapter", pool = { max = 2, min = 1 },
      driver = orm.PostgresDriverAdapter({ host = pg.host, port = pg.port,
        database = pg.database, username = pg.username, password = pg.password,
        prepared_statements = false }) }):init()
    a:schema():drop_table("pgb_items", { if_exists = true })
    a:schema():create_table("pgb_items", function(t)
      t:id(); t:string("owner"); t:integer("n"); t:boolean("flag"):nullable()
      t:blob("data"):nullable(); t:decimal("price", 20, 4):nullable()
      t:datetime("at"):nullable()
    end)
  end)

  teardown(function()
    if a then a:schema():drop_table("pgb_items", { if_exists = true }) end
    for _, ds in ipairs({ a, b, c }) do ds:dispose() end
  end)

  before_each(function()
    a:execute("DELETE FROM pgb_items")
  end)

  it("is really a pooler in transaction mode: named statements clash there", function()
    local named = {}
    for i = 1, 3 do named[i] = source(PGB) end
    local ok, err = pcall(function()
      for round = 1, 10 do
        for i = 1, 3 do
          named[i]:select("SELECT ?::int + " .. i .. " AS n", { round })
          named[i]:select("SELECT ?::text AS t" .. i, { "x" })
        end
      end
    end)
    for i = 1, 3 do named[i]:dispose() end
    assert.is_false(ok, "three clients with named statements never clashed on 2 server connections")
    assert.is_truthy(err.sqlstate == "42P05" or err.sqlstate == "26000", tostring(err))
  end)

  it("alternates statements of several data sources", function()
    for round = 1, 8 do
      for i, ds in ipairs({ a, b, c }) do
        ds:execute("INSERT INTO pgb_items (owner, n) VALUES (?, ?)", { "ds" .. i, round })
        assert.equal(round, ds:table("pgb_items"):where("owner", "ds" .. i):count())
        assert.equal(i * round, ds:select("SELECT ?::int * ?::int AS p", { i, round })[1].p)
      end
    end
    assert.equal(24, c:table("pgb_items"):count())
  end)

  it("runs transactions and savepoints while other data sources keep working", function()
    a:transaction(function()
      a:execute("INSERT INTO pgb_items (owner, n) VALUES ('a', 1)")
      -- b runs on the other server connection meanwhile
      assert.equal(0, b:table("pgb_items"):where("owner", "a"):count())
      local ok = pcall(a.transaction, a, function()
        a:execute("INSERT INTO pgb_items (owner, n) VALUES ('a', 2)")
        error("undo the savepoint")
      end)
      assert.is_false(ok)
      a:transaction(function()
        a:execute("INSERT INTO pgb_items (owner, n) VALUES ('a', 3)")
      end)
      -- c writes meanwhile, in a transaction of its own (API.md: a write
      -- through another data source inside a transaction needs one)
      c:transaction(function()
        c:execute("INSERT INTO pgb_items (owner, n) VALUES ('c', 1)")
      end)
      assert.same({ 1, 3 }, a:table("pgb_items"):where("owner", "a"):order_by("n"):pluck("n"))
    end)
    assert.same({ 1, 3 }, b:table("pgb_items"):where("owner", "a"):order_by("n"):pluck("n"))
    assert.equal(1, b:table("pgb_items"):where("owner", "c"):count())
  end)

  it("interleaves two open transactions (one per server connection)", function()
    local function tx(ds, owner)
      return coroutine.wrap(function()
        ds:transaction(function()
          ds:execute("INSERT INTO pgb_items (owner, n) VALUES (?, 1)", { owner })
          coroutine.yield()
          ds:transaction(function() -- a savepoint, after the other client ran
            ds:execute("INSERT INTO pgb_items (owner, n) VALUES (?, 2)", { owner })
          end)
          coroutine.yield()
          assert.equal(2, ds:table("pgb_items"):where("owner", owner):count())
        end)
      end)
    end
    local ta, tb = tx(a, "ta"), tx(b, "tb")
    ta(); tb(); ta(); tb()
    -- (c stays idle while both server connections are held: its statement
    -- would wait in PgBouncer's queue for one of them)
    ta(); tb()
    assert.equal(2, c:table("pgb_items"):where("owner", "ta"):count())
    assert.equal(2, c:table("pgb_items"):where("owner", "tb"):count())
  end)

  it("keeps each client's session settings on shared server connections", function()
    -- ormed sets TimeZone = UTC when it connects; PgBouncer tracks it per
    -- client, so another client's TimeZone never leaks into its results
    local z = source(PGB .. "?prepared_statements=false", { max = 1, min = 1 })
    z:execute("SET TimeZone = 'Asia/Tokyo'")
    local sql = "SELECT current_setting('TimeZone') AS tz, "
      .. "TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t"
    for _ = 1, 4 do
      assert.same({ tz = "UTC", t = "2024-01-01T00:00:00Z" }, a:select(sql)[1])
      assert.same({ tz = "Asia/Tokyo", t = "2024-01-01T09:00:00+09:00" }, z:select(sql)[1])
    end
    z:dispose()
  end)

  it("binds and reads every type, including bytea with NUL bytes", function()
    local blob = orm.blob("\0\1\2\255 bytes")
    a:execute("INSERT INTO pgb_items (owner, n, flag, data, price, at) VALUES (?, ?, ?, ?, ?, ?)",
      { "types", 42, true, blob, 12.5, "2024-05-06T07:08:09Z" })
    local row = b:select("SELECT * FROM pgb_items WHERE owner = ?", { "types" })[1]
    assert.equal(42, row.n)
    assert.is_true(row.flag)
    assert.equal("\0\1\2\255 bytes", tostring(row.data))
    assert.equal(12.5, row.price)
    assert.equal("2024-05-06T07:08:09Z", row.at)
    assert.equal(1, c:table("pgb_items"):where("flag", true):where("n", ">", 41):count())
  end)

  it("reports errors and keeps going", function()
    local err = helper.error_of(a.select, a, "SELEC nonsense")
    assert.equal("query", err.kind)
    assert.equal("42601", err.sqlstate)
    err = helper.error_of(b.transaction, b, function()
      b:execute("INSERT INTO pgb_items (owner, n) VALUES ('rolled back', 1)")
      b:select("SELECT no_such_column FROM pgb_items")
    end)
    assert.equal("42703", err.sqlstate)
    assert.equal(0, a:table("pgb_items"):where("owner", "rolled back"):count())
    assert.equal(1, b:select("SELECT 1 AS one")[1].one)
  end)

  it("sees DDL from another data source in its cached statements", function()
    local insert = "INSERT INTO pgb_items (owner, n, extra) VALUES (?, ?, ?)"
    local select = "SELECT * FROM pgb_items WHERE owner = ? ORDER BY n"
    a:execute("ALTER TABLE pgb_items ADD COLUMN extra text")
    a:execute(insert, { "ddl", 1, "7" })
    assert.equal("7", a:select(select, { "ddl" })[1].extra)
    b:execute("ALTER TABLE pgb_items ALTER COLUMN extra TYPE integer USING extra::integer")
    b:execute("ALTER TABLE pgb_items ADD COLUMN more integer DEFAULT 5")
    for _ = 1, 3 do -- on whichever server connection PgBouncer gives
      a:execute(insert, { "ddl", 2, 8 })
      local rows = a:select(select, { "ddl" })
      assert.same({ 7, 5 }, { rows[1].extra, rows[1].more })
      a:execute("DELETE FROM pgb_items WHERE owner = 'ddl' AND n = 2")
    end
    b:execute("ALTER TABLE pgb_items DROP COLUMN more")
    b:execute("ALTER TABLE pgb_items DROP COLUMN extra")
  end)

  it("runs a statement with more parameters than libpq can describe", function()
    local rows = {}
    for i = 1, 1500 do -- 1500 rows x 5 columns = 7500 parameters
      rows[i] = { owner = "bulk", n = i, flag = i % 2 == 0,
        data = orm.blob("\0" .. i), price = i / 4 }
    end
    a:table("pgb_items"):insert(rows)
    assert.equal(1500, b:table("pgb_items"):where("owner", "bulk"):count())
    local row = c:select("SELECT * FROM pgb_items WHERE owner = 'bulk' AND n = 1234")[1]
    assert.equal("\0" .. "1234", tostring(row.data))
    assert.is_true(row.flag)
    assert.equal(308.5, row.price)
  end)
end)
