-- spec/schema_compile_spec.lua: the DDL the schema builder compiles, exact
-- text per dialect (no database), and what it refuses.
local core = require("ormed.core")
local orm = require("ormed")
local schema = require("ormed.schema")

local function create(dialect, name, fn) return schema.compile(dialect, "create", name, fn) end
local function alter(dialect, name, fn) return schema.compile(dialect, "alter", name, fn) end

-- The orm.Error raised by f (fails when f raises nothing or something else).
local function refused(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error")
  assert.is_true(orm.Error.is(err, "invalid_argument"), "not an invalid_argument orm.Error: "
    .. tostring(err))
  if pattern then assert.matches(pattern, err.message) end
  return err
end

local function users(t)
  t:id(); t:string("name", 100); t:integer("credits"):default(0); t:boolean("active")
  t:json("settings"):nullable(); t:foreign_id("team_id"):references("teams"):on_delete("cascade")
  t:timestamps(); t:soft_deletes(); t:unique{ "name", "team_id" }
end

describe("schema compile: create_table", function()
  it("compiles the API example for SQLite", function()
    assert.same({
      'CREATE TABLE "users" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "name" VARCHAR(100) NOT NULL, '
        .. '"credits" INTEGER NOT NULL DEFAULT 0, "active" BOOLEAN NOT NULL, "settings" TEXT, '
        .. '"team_id" INTEGER NOT NULL, "created_at" DATETIME, "updated_at" DATETIME, '
        .. '"deleted_at" DATETIME, CONSTRAINT "users_team_id_foreign" FOREIGN KEY ("team_id") '
        .. 'REFERENCES "teams" ("id") ON DELETE CASCADE)',
      'CREATE UNIQUE INDEX "users_name_team_id_unique" ON "users" ("name", "team_id")',
    }, create("sqlite", "users", users))
  end)

  it("compiles the API example for PostgreSQL", function()
    assert.same({
      'CREATE TABLE "users" ("id" BIGSERIAL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, '
        .. '"credits" INTEGER NOT NULL DEFAULT 0, "active" BOOLEAN NOT NULL, "settings" JSONB, '
        .. '"team_id" BIGINT NOT NULL, "created_at" TIMESTAMP(6), "updated_at" TIMESTAMP(6), '
        .. '"deleted_at" TIMESTAMP(6), CONSTRAINT "users_team_id_foreign" FOREIGN KEY ("team_id") '
        .. 'REFERENCES "teams" ("id") ON DELETE CASCADE)',
      'CREATE UNIQUE INDEX "users_name_team_id_unique" ON "users" ("name", "team_id")',
    }, create("postgres", "users", users))
  end)

  it("compiles the API example for MySQL", function()
    assert.same({
      "CREATE TABLE `users` (`id` BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
        .. "`name` VARCHAR(100) NOT NULL, `credits` INT NOT NULL DEFAULT 0, "
        .. "`active` BOOLEAN NOT NULL, `settings` JSON, `team_id` BIGINT UNSIGNED NOT NULL, "
        .. "`created_at` DATETIME(6), `updated_at` DATETIME(6), `deleted_at` DATETIME(6), "
        .. "CONSTRAINT `users_team_id_foreign` FOREIGN KEY (`team_id`) REFERENCES `teams` (`id`) "
        .. "ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      "CREATE UNIQUE INDEX `users_name_team_id_unique` ON `users` (`name`, `team_id`)",
    }, create("mysql", "users", users))
  end)

  local function every_type(t)
    t:id(); t:string("s"); t:string("s40", 40); t:text("tx"); t:integer("i"); t:big_integer("bi")
    t:foreign_id("f_id"); t:number("n"); t:decimal("d"); t:decimal("d2", 12, 4); t:boolean("b")
    t:json("j"); t:date("dt"); t:datetime("ts"); t:blob("bl")
  end

  it("maps every column type per dialect", function()
    local expected = {
      sqlite = 'CREATE TABLE "all" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "s" VARCHAR(255) NOT NULL, '
        .. '"s40" VARCHAR(40) NOT NULL, "tx" TEXT NOT NULL, "i" INTEGER NOT NULL, '
        .. '"bi" INTEGER NOT NULL, "f_id" INTEGER NOT NULL, "n" REAL NOT NULL, '
        .. '"d" NUMERIC(8,2) NOT NULL, "d2" NUMERIC(12,4) NOT NULL, "b" BOOLEAN NOT NULL, '
        .. '"j" TEXT NOT NULL, "dt" DATE NOT NULL, "ts" DATETIME NOT NULL, "bl" BLOB NOT NULL)',
      postgres = 'CREATE TABLE "all" ("id" BIGSERIAL PRIMARY KEY, "s" VARCHAR(255) NOT NULL, '
        .. '"s40" VARCHAR(40) NOT NULL, "tx" TEXT NOT NULL, "i" INTEGER NOT NULL, '
        .. '"bi" BIGINT NOT NULL, "f_id" BIGINT NOT NULL, "n" DOUBLE PRECISION NOT NULL, '
        .. '"d" NUMERIC(8,2) NOT NULL, "d2" NUMERIC(12,4) NOT NULL, "b" BOOLEAN NOT NULL, '
        .. '"j" JSONB NOT NULL, "dt" DATE NOT NULL, "ts" TIMESTAMP(6) NOT NULL, "bl" BYTEA NOT NULL)',
      mysql = "CREATE TABLE `all` (`id` BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
        .. "`s` VARCHAR(255) NOT NULL, `s40` VARCHAR(40) NOT NULL, `tx` TEXT NOT NULL, "
        .. "`i` INT NOT NULL, `bi` BIGINT NOT NULL, `f_id` BIGINT UNSIGNED NOT NULL, "
        .. "`n` DOUBLE NOT NULL, `d` DECIMAL(8,2) NOT NULL, `d2` DECIMAL(12,4) NOT NULL, "
        .. "`b` BOOLEAN NOT NULL, `j` JSON NOT NULL, `dt` DATE NOT NULL, `ts` DATETIME(6) NOT NULL, "
        .. "`bl` LONGBLOB NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    }
    for dialect, sql in pairs(expected) do
      assert.same({ sql }, create(dialect, "all", every_type))
    end
  end)

  it("accepts driver aliases and connection-less dialect names", function()
    assert.same(create("postgres", "t", function(t) t:integer("a") end),
      create("postgresql", "t", function(t) t:integer("a") end))
    assert.same(create("mysql", "t", function(t) t:integer("a") end),
      create("mariadb", "t", function(t) t:integer("a") end))
  end)

  it("writes column modifiers: nullable, unique, index, primary, use_current", function()
    local function fn(t)
      t:string("code", 8):primary()
      t:string("email"):unique()
      t:integer("rank"):index():nullable()
      t:integer("level"):nullable():nullable(false)
      t:datetime("seen_at"):use_current()
    end
    assert.same({
      'CREATE TABLE "codes" ("code" VARCHAR(8) NOT NULL PRIMARY KEY, "email" VARCHAR(255) NOT NULL, '
        .. '"rank" INTEGER, "level" INTEGER NOT NULL, "seen_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)',
      'CREATE UNIQUE INDEX "codes_email_unique" ON "codes" ("email")',
      'CREATE INDEX "codes_rank_index" ON "codes" ("rank")',
    }, create("sqlite", "codes", fn))
    local my = create("mysql", "codes", fn)
    assert.matches("`seen_at` DATETIME%(6%) NOT NULL DEFAULT CURRENT_TIMESTAMP%(6%)%)", my[1])
    assert.equal("CREATE INDEX `codes_rank_index` ON `codes` (`rank`)", my[3])
  end)

  it("writes composite keys, named indexes and table-level foreign keys", function()
    local function fn(t)
      t:foreign_id("role_id"); t:foreign_id("user_id"); t:string("scope", 20)
      t:primary{ "role_id", "user_id" }
      t:index({ "scope", "user_id" }, "role_user_by_scope")
      t:unique("scope")
      t:foreign("user_id"):references("users"):on_delete("set null"):on_update("CASCADE")
      t:foreign({ "role_id", "scope" }, "role_scope_fk"):references("roles", { "id", "scope" })
        :on_delete("no_action")
    end
    assert.same({
      'CREATE TABLE "role_user" ("role_id" BIGINT NOT NULL, "user_id" BIGINT NOT NULL, '
        .. '"scope" VARCHAR(20) NOT NULL, PRIMARY KEY ("role_id", "user_id"), '
        .. 'CONSTRAINT "role_user_user_id_foreign" FOREIGN KEY ("user_id") REFERENCES "users" ("id") '
        .. 'ON DELETE SET NULL ON UPDATE CASCADE, CONSTRAINT "role_scope_fk" FOREIGN KEY '
        .. '("role_id", "scope") REFERENCES "roles" ("id", "scope") ON DELETE NO ACTION)',
      'CREATE INDEX "role_user_by_scope" ON "role_user" ("scope", "user_id")',
      'CREATE UNIQUE INDEX "role_user_scope_unique" ON "role_user" ("scope")',
    }, create("postgres", "role_user", fn))
  end)

  it("guesses the referenced table with constrained()", function()
    local sql = create("sqlite", "posts", function(t)
      t:foreign_id("author_id"):constrained("users"):on_delete("restrict")
      t:foreign_id("team_id"):constrained()
    end)
    assert.matches('CONSTRAINT "posts_author_id_foreign" FOREIGN KEY %("author_id"%) REFERENCES '
      .. '"users" %("id"%) ON DELETE RESTRICT', sql[1])
    assert.matches('CONSTRAINT "posts_team_id_foreign" FOREIGN KEY %("team_id"%) REFERENCES '
      .. '"teams" %("id"%)%)$', sql[1])
    refused(function()
      create("sqlite", "posts", function(t) t:integer("owner"):constrained() end)
    end, "cannot guess")
  end)

  it("chains modifiers on the handle a column method returns", function()
    local t = core.schema_blueprint("x", "create")
    local c = t:integer("a")
    assert.equal(c, c:nullable())
    assert.equal(c, c:default(3))
    assert.equal("x", t:table_name())
    assert.same({ 'CREATE TABLE "x" ("a" INTEGER DEFAULT 3)' }, t:compile("sqlite"))
  end)
end)

describe("schema compile: defaults", function()
  local function default_sql(dialect, col, v)
    local t = core.schema_blueprint("d", "create")
    t[col](t, "c"):default(v)
    return t:compile(dialect)[1]
  end

  it("renders numbers, booleans and NULL as literals", function()
    assert.equal('CREATE TABLE "d" ("c" INTEGER NOT NULL DEFAULT -42)', default_sql("sqlite", "integer", -42))
    assert.equal('CREATE TABLE "d" ("c" BIGINT NOT NULL DEFAULT 9223372036854775807)',
      default_sql("postgres", "big_integer", math.maxinteger))
    assert.equal('CREATE TABLE "d" ("c" REAL NOT NULL DEFAULT 0.5)', default_sql("sqlite", "number", 0.5))
    assert.equal('CREATE TABLE "d" ("c" BOOLEAN NOT NULL DEFAULT TRUE)', default_sql("sqlite", "boolean", true))
    assert.equal("CREATE TABLE `d` (`c` BOOLEAN NOT NULL DEFAULT FALSE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      default_sql("mysql", "boolean", false))
    assert.equal('CREATE TABLE "d" ("c" INTEGER NOT NULL DEFAULT NULL)', default_sql("sqlite", "integer", orm.null))
  end)

  it("quotes strings with embedded quotes doubled, backslashes per dialect", function()
    local hostile = "it's'); DROP TABLE d; --\\"
    assert.equal([[CREATE TABLE "d" ("c" TEXT NOT NULL DEFAULT 'it''s''); DROP TABLE d; --\')]],
      default_sql("sqlite", "text", hostile))
    assert.equal([[CREATE TABLE "d" ("c" TEXT NOT NULL DEFAULT E'it''s''); DROP TABLE d; --\\')]],
      default_sql("postgres", "text", hostile))
    assert.equal([[CREATE TABLE `d` (`c` TEXT NOT NULL DEFAULT 'it''s''); DROP TABLE d; --\\') ]]
      .. "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", default_sql("mysql", "text", hostile))
    assert.equal([[CREATE TABLE "d" ("c" VARCHAR(255) NOT NULL DEFAULT 'plain')]],
      default_sql("postgres", "string", "plain"))
  end)

  it("writes blobs as hex", function()
    assert.equal([[CREATE TABLE "d" ("c" BLOB NOT NULL DEFAULT X'00ff27')]],
      default_sql("sqlite", "blob", orm.blob("\0\255'")))
    assert.equal([[CREATE TABLE "d" ("c" BYTEA NOT NULL DEFAULT decode('00ff27', 'hex'))]],
      default_sql("postgres", "blob", orm.blob("\0\255'")))
  end)

  it("refuses defaults that cannot be literals", function()
    refused(function() default_sql("sqlite", "text", "a\0b") end, "NUL")
    refused(function() default_sql("sqlite", "number", 0 / 0) end, "NaN")
    refused(function() default_sql("sqlite", "number", math.huge) end, "infinite")
    refused(function() default_sql("sqlite", "json", {}) end, "table")
    refused(function() default_sql("sqlite", "id", 1) end, "id column")
    refused(function()
      create("sqlite", "d", function(t) t:datetime("c"):use_current():default("2024-01-01") end)
    end, "both")
    refused(function() create("sqlite", "d", function(t) t:date("c"):use_current() end) end, "datetime")
  end)
end)

describe("schema compile: alter_table", function()
  local function fn(t)
    t:string("nick", 40):nullable(); t:rename_column("credits", "points"); t:drop_column("active")
    t:index{ "nick" }; t:drop_index("users_nick_index")
  end

  it("compiles the API example per dialect", function()
    assert.same({
      'ALTER TABLE "users" ADD COLUMN "nick" VARCHAR(40)',
      'ALTER TABLE "users" RENAME COLUMN "credits" TO "points"',
      'ALTER TABLE "users" DROP COLUMN "active"',
      'CREATE INDEX "users_nick_index" ON "users" ("nick")',
      'DROP INDEX "users_nick_index"',
    }, alter("sqlite", "users", fn))
    assert.same(alter("sqlite", "users", fn), alter("postgres", "users", fn))
    assert.same({
      "ALTER TABLE `users` ADD COLUMN `nick` VARCHAR(40)",
      "ALTER TABLE `users` RENAME COLUMN `credits` TO `points`",
      "ALTER TABLE `users` DROP COLUMN `active`",
      "CREATE INDEX `users_nick_index` ON `users` (`nick`)",
      "DROP INDEX `users_nick_index` ON `users`",
    }, alter("mysql", "users", fn))
  end)

  it("adds a column with its index and foreign key", function()
    local function add(t)
      t:foreign_id("team_id"):nullable():unique():references("teams"):on_delete("cascade")
    end
    assert.same({
      'ALTER TABLE "users" ADD COLUMN "team_id" INTEGER CONSTRAINT "users_team_id_foreign" '
        .. 'REFERENCES "teams" ("id") ON DELETE CASCADE',
      'CREATE UNIQUE INDEX "users_team_id_unique" ON "users" ("team_id")',
    }, alter("sqlite", "users", add))
    assert.same({
      'ALTER TABLE "users" ADD COLUMN "team_id" BIGINT',
      'CREATE UNIQUE INDEX "users_team_id_unique" ON "users" ("team_id")',
      'ALTER TABLE "users" ADD CONSTRAINT "users_team_id_foreign" FOREIGN KEY ("team_id") '
        .. 'REFERENCES "teams" ("id") ON DELETE CASCADE',
    }, alter("postgres", "users", add))
    assert.same({
      "ALTER TABLE `users` ADD COLUMN `team_id` BIGINT UNSIGNED",
      "CREATE UNIQUE INDEX `users_team_id_unique` ON `users` (`team_id`)",
      "ALTER TABLE `users` ADD CONSTRAINT `users_team_id_foreign` FOREIGN KEY (`team_id`) "
        .. "REFERENCES `teams` (`id`) ON DELETE CASCADE",
    }, alter("mysql", "users", add))
  end)

  it("drops keys by name or by their columns, and several columns at once", function()
    local function drops(t)
      t:drop_unique{ "email" }; t:drop_index{ "a", "b" }; t:drop_foreign{ "team_id" }
      t:drop_foreign("custom_fk"); t:drop_column{ "a", "b" }; t:drop_timestamps(); t:drop_soft_deletes()
    end
    assert.same({
      'DROP INDEX "users_email_unique"',
      'DROP INDEX "users_a_b_index"',
      'ALTER TABLE "users" DROP CONSTRAINT "users_team_id_foreign"',
      'ALTER TABLE "users" DROP CONSTRAINT "custom_fk"',
      'ALTER TABLE "users" DROP COLUMN "a"',
      'ALTER TABLE "users" DROP COLUMN "b"',
      'ALTER TABLE "users" DROP COLUMN "created_at"',
      'ALTER TABLE "users" DROP COLUMN "updated_at"',
      'ALTER TABLE "users" DROP COLUMN "deleted_at"',
    }, alter("postgres", "users", drops))
    local my = alter("mysql", "users", drops)
    assert.equal("ALTER TABLE `users` DROP FOREIGN KEY `users_team_id_foreign`", my[3])
  end)

  it("adds keys to existing columns on PostgreSQL and MySQL", function()
    local function keys(t)
      t:primary{ "a", "b" }; t:foreign("c_id"):references("cs")
    end
    assert.same({
      'ALTER TABLE "t" ADD PRIMARY KEY ("a", "b")',
      'ALTER TABLE "t" ADD CONSTRAINT "t_c_id_foreign" FOREIGN KEY ("c_id") REFERENCES "cs" ("id")',
    }, alter("postgres", "t", keys))
    assert.equal("ALTER TABLE `t` ADD PRIMARY KEY (`a`, `b`)", alter("mysql", "t", keys)[1])
  end)

  it("refuses on SQLite what it cannot do to an existing table", function()
    refused(function() alter("sqlite", "t", function(t) t:drop_foreign{ "a" } end) end, "sqlite cannot")
    refused(function() alter("sqlite", "t", function(t) t:foreign("a"):references("x") end) end,
      "sqlite cannot")
    refused(function() alter("sqlite", "t", function(t) t:primary("a") end) end, "sqlite cannot")
  end)

  it("compiles an empty alter to nothing", function()
    assert.same({}, alter("postgres", "t", function() end))
  end)
end)

describe("schema compile: identifiers and refusals", function()
  it("quotes hostile identifiers by doubling the quote", function()
    assert.same({ 'CREATE TABLE "we""ird" ("co""l" INTEGER NOT NULL)' },
      create("sqlite", 'we"ird', function(t) t:integer('co"l') end))
    assert.same({ "CREATE TABLE `we``ird` (`co``l` INT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" },
      create("mysql", "we`ird", function(t) t:integer("co`l") end))
    assert.same({ 'DROP TABLE "x""; DROP TABLE y; --"' }, core.schema_drop("postgres", 'x"; DROP TABLE y; --'))
  end)

  it("refuses empty names and NUL bytes", function()
    refused(function() create("sqlite", "", function(t) t:integer("a") end) end, "table name")
    refused(function() create("sqlite", "a\0b", function(t) t:integer("a") end) end, "NUL")
    refused(function() create("sqlite", "t", function(t) t:integer("a\0") end) end, "NUL")
    refused(function() create("sqlite", "t", function(t) t:integer("") end) end, "column name")
    refused(function() create("sqlite", "t", function(t) t:integer("a"):references("") end) end)
    refused(function() create("sqlite", "t", function(t) t:integer("a"); t:index({ "a" }, "") end) end)
    refused(function() core.schema_drop("sqlite", "a\0b") end, "NUL")
    refused(function() core.schema_rename("sqlite", "a", "") end)
    refused(function() core.schema_ledger("sqlite", "", "select") end)
  end)

  it("refuses bad arguments with messages naming the method", function()
    refused(function() create("sqlite", "t", function() end) end, "at least one column")
    refused(function() create("sqlite", "t", function(t) t:rename_column("a", "b") end) end, "alter_table")
    refused(function() create("sqlite", "t", function(t) t:drop_column("a") end) end, "alter_table")
    refused(function() create("sqlite", "t", function(t) t:integer("a"):on_delete("explode") end) end,
      "unknown foreign key action 'explode'")
    refused(function() create("sqlite", "t", function(t) t:integer("a"):on_delete("cascade") end) end,
      "without references")
    refused(function() create("sqlite", "t", function(t) t:integer("a"); t:foreign("a") end) end,
      "no references")
    refused(function() create("sqlite", "t", function(t) t:string("a", 0) end) end, "length")
    refused(function() create("sqlite", "t", function(t) t:decimal("a", 10, 11) end) end, "scale")
    refused(function() create("sqlite", "t", function(t) t:integer(42) end) end, "integer: the column name")
    refused(function() create("sqlite", "t", function(t) t:index({}) end) end, "list of column names")
    refused(function() create("sqlite", "t", function(t) t:index({ "a", 3 }) end) end, "column 2")
    refused(function() create("sqlite", "t", function(t) t:index("a"):nullable() end) end, "not a column")
    refused(function() create("oracle", "t", function(t) t:integer("a") end) end, "unknown dialect")
    refused(function() schema.compile("sqlite", "create", "t", nil) end, "needs a function")
  end)
end)

describe("schema compile: other statements", function()
  it("drops and renames tables", function()
    assert.same({ 'DROP TABLE "users"' }, core.schema_drop("sqlite", "users"))
    assert.same({ "DROP TABLE IF EXISTS `users`" }, core.schema_drop("mysql", "users", true))
    assert.same({ 'ALTER TABLE "a" RENAME TO "b"' }, core.schema_rename("postgres", "a", "b"))
    assert.same({ "RENAME TABLE `a` TO `b`" }, core.schema_rename("mysql", "a", "b"))
  end)

  it("drops every table whatever links them", function()
    local s, after = core.schema_drop_all("sqlite", { "a", "b" })
    assert.same({ "PRAGMA defer_foreign_keys = ON", 'DROP TABLE IF EXISTS "a"',
      'DROP TABLE IF EXISTS "b"' }, s)
    assert.same({}, after)
    s, after = core.schema_drop_all("postgres", { "a", "b" })
    assert.same({ 'DROP TABLE IF EXISTS "a", "b" CASCADE' }, s)
    assert.same({}, after)
    s, after = core.schema_drop_all("mysql", { "a", "b" })
    assert.same({ "SET FOREIGN_KEY_CHECKS = 0", "DROP TABLE IF EXISTS `a`, `b`" }, s)
    assert.same({ "SET FOREIGN_KEY_CHECKS = 1" }, after)
    s, after = core.schema_drop_all("mysql", {})
    assert.same({}, s)
    assert.same({}, after)
  end)

  it("writes the ledger statements with bound parameters", function()
    assert.equal('SELECT "id", "checksum", "batch", "applied_at" FROM "orm_migrations" '
      .. 'ORDER BY "batch", "id"', core.schema_ledger("sqlite", "orm_migrations", "select"))
    assert.equal("INSERT INTO `m` (`id`, `checksum`, `batch`, `applied_at`) VALUES (?, ?, ?, ?)",
      core.schema_ledger("mysql", "m", "insert"))
    assert.equal('DELETE FROM "m" WHERE "id" = ?', core.schema_ledger("postgres", "m", "delete"))
  end)

  it("has catalog queries that bind the names they look for", function()
    for _, d in ipairs{ "sqlite", "postgres", "mysql" } do
      local has_col = core.schema_catalog(d, "has_column")
      assert.equal(2, select(2, has_col:gsub("%?", "?")), d)
      assert.equal(1, select(2, core.schema_catalog(d, "has_table"):gsub("%?", "?")), d)
      assert.equal(0, select(2, core.schema_catalog(d, "tables"):gsub("%?", "?")), d)
    end
    assert.matches("pragma_table_info", core.schema_catalog("sqlite", "columns"))
    assert.matches("current_schema%(%)", core.schema_catalog("postgres", "has_table"))
    assert.matches("DATABASE%(%)", core.schema_catalog("mysql", "has_index"))
  end)

  it("lists a folder, or says why it cannot", function()
    local dir = (os.getenv("ORMED_TEST_TMP") or "/tmp") .. "/ormed_listdir_" .. os.time() .. math.random(1e6)
    assert.is_true(os.execute("mkdir -p '" .. dir .. "' && touch '" .. dir .. "/b.lua' '" .. dir .. "/a.txt'"))
    local names = core.list_dir(dir)
    table.sort(names)
    assert.same({ "a.txt", "b.lua" }, names)
    local none, msg = core.list_dir(dir .. "/missing")
    assert.is_nil(none)
    assert.matches("missing: No such file", msg)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
