-- spec/schema_spec.lua: the schema builder on real databases: tables
-- created, altered, renamed and dropped; the catalog (has_table,
-- has_column, has_index, columns); every field type of the model layer
-- round-trips through a created table; keys and foreign keys hold.
local orm = require("ormed")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, schema

  local function drop_all_of_mine()
    -- children first: foreign keys point at sch_teams
    for _, t in ipairs{ "sch_posts", "sch_people", "sch_users", "sch_all", "sch_clubs", "sch_teams", "sch_half",
      "sch_renamed" } do
      schema:drop_table(t, { if_exists = true })
    end
  end

  setup(function()
    ds = drv:data_source()
    schema = ds:schema()
    drop_all_of_mine()
  end)

  teardown(function()
    drop_all_of_mine()
    ds:dispose()
  end)

  local function create_every_type()
    schema:create_table("sch_all", function(t)
      t:id()
      t:integer("i"); t:big_integer("bi"); t:number("n"); t:decimal("d", 12, 4)
      t:string("s", 40); t:text("tx"); t:boolean("b"); t:json("j"); t:date("dt")
      t:datetime("ts"); t:blob("bl")
      t:integer("opt"):nullable()
      t:integer("credits"):default(7); t:boolean("active"):default(true)
      t:string("motto"):default("it's \\ fine"); t:number("ratio"):default(0.25)
      t:datetime("seen_at"):use_current()
    end)
  end

  describe("create_table", function()
    setup(create_every_type)

    it("creates the table with its columns, in order", function()
      assert.is_true(schema:has_table("sch_all"))
      assert.is_false(schema:has_table("sch_nope"))
      assert.is_true(orm.schema(ds):has_table("sch_all"))
      assert.is_true(schema:has_column("sch_all", "bl"))
      assert.is_false(schema:has_column("sch_all", "nope"))
      assert.is_false(schema:has_column("sch_nope", "id"))
      assert.same({ "id", "i", "bi", "n", "d", "s", "tx", "b", "j", "dt", "ts", "bl", "opt",
        "credits", "active", "motto", "ratio", "seen_at" }, schema:columns("sch_all"))
      local found = false
      for _, t in ipairs(schema:tables()) do found = found or t == "sch_all" end
      assert.is_true(found)
    end)

    it("round-trips every field type", function()
      local long = string.rep("é✓-", 6000)
      local bytes = "\0\1\2\255abc\0\r\n'\""
      local json_text = '{"a": 1, "b": [true, null, "x"]}'
      local stamp = drv.name == "mysql" and "2024-01-31 10:20:30.123456" or "2024-01-31T10:20:30.123456Z"
      local rows = {
        { 2147483647, math.maxinteger, 0.1, "1234.5678", "héllo ✓", long, true, json_text,
          "2024-02-29", stamp, orm.blob(bytes) },
        { -2147483648, math.mininteger, -1.5e300, "-0.0001", "", "", false, "[]",
          "1970-01-01", stamp, orm.blob("") },
      }
      for _, r in ipairs(rows) do
        ds:execute("INSERT INTO sch_all (i, bi, n, d, s, tx, b, j, dt, ts, bl) "
          .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r)
      end
      local got = ds:select("SELECT * FROM sch_all ORDER BY id")
      assert.equal(2, #got)
      local a, b = got[1], got[2]
      assert.equal(1, a.id)
      assert.equal(2, b.id)
      assert.equal(2147483647, a.i)
      assert.equal(-2147483648, b.i)
      assert.equal(math.maxinteger, a.bi)
      assert.equal(math.mininteger, b.bi)
      assert.is_true(math.type(a.bi) == "integer")
      assert.equal(0.1, a.n)
      assert.equal(-1.5e300, b.n)
      assert.equal(1234.5678, tonumber(a.d))
      assert.equal(-0.0001, tonumber(b.d))
      assert.equal("héllo ✓", a.s)
      assert.equal("", b.s)
      assert.equal(long, a.tx)
      assert.equal(true, a.b)
      assert.equal(false, b.b)
      assert.equal(json_text, a.j)
      assert.equal("[]", b.j)
      assert.equal("2024-02-29", a.dt)
      assert.equal("1970-01-01", b.dt)
      assert.equal("2024-01-31T10:20:30.123456Z", a.ts)
      assert.equal(bytes, a.bl)
      assert.equal("", b.bl)
      assert.is_nil(a.opt)
    end)

    it("fills defaults", function()
      local row = ds:select("SELECT credits, active, motto, ratio, seen_at FROM sch_all ORDER BY id")[1]
      assert.equal(7, row.credits)
      assert.equal(true, row.active)
      assert.equal("it's \\ fine", row.motto)
      assert.equal(0.25, row.ratio)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d[T ]%d%d:%d%d:%d%d", row.seen_at)
    end)

    it("makes columns NOT NULL unless nullable()", function()
      local err = helper.error_of(ds.execute, ds, "INSERT INTO sch_all (i) VALUES (?)", { 1 })
      assert.is_true(orm.Error.is(err), tostring(err))
      assert.equal("not_null_violation", err.kind)
    end)
  end)

  describe("keys", function()
    setup(function()
      schema:create_table("sch_teams", function(t) t:id(); t:string("name"):unique() end)
      schema:create_table("sch_users", function(t)
        t:id(); t:string("name", 100); t:integer("credits"):default(0); t:boolean("active")
        t:json("settings"):nullable(); t:foreign_id("team_id"):references("sch_teams"):on_delete("cascade")
        t:timestamps(); t:soft_deletes(); t:unique{ "name", "team_id" }
      end)
    end)

    it("creates the named indexes", function()
      assert.is_true(schema:has_index("sch_teams", "sch_teams_name_unique"))
      assert.is_true(schema:has_index("sch_users", "sch_users_name_team_id_unique"))
      assert.is_false(schema:has_index("sch_users", "sch_users_nope_index"))
    end)

    it("gives auto-increment ids and enforces unique and foreign keys", function()
      local t1 = ds:execute("INSERT INTO sch_teams (name) VALUES (?)", { "red" })
      local t2 = ds:execute("INSERT INTO sch_teams (name) VALUES (?)", { "blue" })
      if drv.name ~= "postgres" then -- no insert id without RETURNING there
        assert.equal(1, t1.last_insert_id)
        assert.equal(2, t2.last_insert_id)
      end
      local ids = ds:select("SELECT id FROM sch_teams ORDER BY id")
      assert.same({ { id = 1 }, { id = 2 } }, ids)
      assert.equal("unique_violation",
        helper.error_of(ds.execute, ds, "INSERT INTO sch_teams (name) VALUES (?)", { "red" }).kind)
      ds:execute("INSERT INTO sch_users (name, active, team_id) VALUES (?, ?, ?)", { "ann", true, 1 })
      ds:execute("INSERT INTO sch_users (name, active, team_id) VALUES (?, ?, ?)", { "ann", true, 2 })
      assert.equal("unique_violation", helper.error_of(ds.execute, ds,
        "INSERT INTO sch_users (name, active, team_id) VALUES (?, ?, ?)", { "ann", false, 1 }).kind)
      assert.equal("foreign_key_violation", helper.error_of(ds.execute, ds,
        "INSERT INTO sch_users (name, active, team_id) VALUES (?, ?, ?)", { "bob", false, 99 }).kind)
      local u = ds:select("SELECT * FROM sch_users WHERE team_id = ?", { 1 })[1]
      assert.equal(0, u.credits)
      assert.is_nil(u.created_at)
      assert.is_nil(u.deleted_at)
      ds:execute("DELETE FROM sch_teams WHERE id = ?", { 1 })
      assert.equal(0, #ds:select("SELECT id FROM sch_users WHERE team_id = ?", { 1 }))
      assert.equal(1, #ds:select("SELECT id FROM sch_users WHERE team_id = ?", { 2 }))
    end)
  end)

  describe("alter_table", function()
    setup(function()
      schema:create_table("sch_people", function(t)
        t:id(); t:string("name"); t:integer("credits"); t:boolean("active"):default(false)
      end)
      ds:execute("INSERT INTO sch_people (name, credits) VALUES (?, ?)", { "ann", 5 })
    end)

    it("adds, renames and drops columns and indexes, keeping the rows", function()
      schema:alter_table("sch_people", function(t)
        t:string("nick", 40):nullable(); t:rename_column("credits", "points"); t:drop_column("active")
        t:index{ "nick" }
      end)
      assert.same({ "id", "name", "points", "nick" }, schema:columns("sch_people"))
      assert.is_true(schema:has_index("sch_people", "sch_people_nick_index"))
      local row = ds:select("SELECT * FROM sch_people")[1]
      assert.equal("ann", row.name)
      assert.equal(5, row.points)
      assert.is_nil(row.nick)
      assert.is_nil(row.active)
      schema:alter_table("sch_people", function(t) t:drop_index("sch_people_nick_index") end)
      assert.is_false(schema:has_index("sch_people", "sch_people_nick_index"))
      assert.is_true(schema:has_column("sch_people", "nick"))
    end)

    it("adds a unique column and a foreign key to an existing table", function()
      schema:create_table("sch_clubs", function(t) t:id(); t:string("name"):unique() end)
      schema:alter_table("sch_people", function(t)
        t:string("email"):nullable():unique()
        t:foreign_id("team_id"):nullable():references("sch_clubs"):on_delete("set null")
      end)
      assert.is_true(schema:has_index("sch_people", "sch_people_email_unique"))
      ds:execute("UPDATE sch_people SET email = ?", { "a@x" })
      assert.equal("unique_violation", helper.error_of(ds.execute, ds,
        "INSERT INTO sch_people (name, points, email) VALUES (?, ?, ?)", { "bob", 1, "a@x" }).kind)
      assert.equal("foreign_key_violation", helper.error_of(ds.execute, ds,
        "UPDATE sch_people SET team_id = ?", { 42 }).kind)
      ds:execute("INSERT INTO sch_clubs (name) VALUES (?)", { "red" })
      ds:execute("UPDATE sch_people SET team_id = ?", { 1 })
      ds:execute("DELETE FROM sch_clubs")
      assert.is_nil(ds:select("SELECT team_id FROM sch_people")[1].team_id)
      if drv.name ~= "sqlite" then
        schema:alter_table("sch_people", function(t) t:drop_foreign{ "team_id" } end)
        ds:execute("UPDATE sch_people SET team_id = ?", { 42 })
        assert.equal(42, ds:select("SELECT team_id FROM sch_people")[1].team_id)
      end
    end)
  end)

  describe("drop_table and rename_table", function()
    it("drops, with or without if_exists", function()
      schema:create_table("sch_half", function(t) t:integer("a") end)
      assert.is_true(schema:has_table("sch_half"))
      schema:drop_table("sch_half")
      assert.is_false(schema:has_table("sch_half"))
      local err = helper.error_of(schema.drop_table, schema, "sch_half")
      assert.is_true(orm.Error.is(err, "query"), tostring(err))
      schema:drop_table("sch_half", { if_exists = true })
      schema:drop_table_if_exists("sch_half")
      assert.is_false(schema:has_table("sch_half"))
    end)

    it("renames a table with its rows", function()
      schema:create_table("sch_half", function(t) t:integer("a") end)
      ds:execute("INSERT INTO sch_half (a) VALUES (?)", { 3 })
      schema:rename_table("sch_half", "sch_renamed")
      assert.is_false(schema:has_table("sch_half"))
      assert.equal(3, ds:select("SELECT a FROM sch_renamed")[1].a)
    end)

    it("creates all or nothing where DDL is transactional", function()
      local err = helper.error_of(schema.create_table, schema, "sch_half", function(t)
        t:integer("a"); t:index("a", "sch_half_twice"); t:index("a", "sch_half_twice")
      end)
      assert.is_true(orm.Error.is(err), tostring(err))
      -- MySQL commits each DDL statement: the table stays behind there
      assert.equal(drv.name == "mysql", schema:has_table("sch_half"))
    end)
  end)
end)
