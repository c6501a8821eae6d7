-- Golden specs of the query compiler: for every method of the query object
-- and each dialect, the exact SQL and bindings (no database needed); then
-- bad input (raised as invalid_argument) and hostile strings (which never
-- change a statement's shape).
local core = require("ormed.core")

local DIALECTS = { "sqlite", "postgres", "mysql" }
local NULL = core.null

local function q(t)
  return core.query(t or "users")
end

-- Every statement a call produces: { {sql, bindings}, ... }.
local function statements(query, dialect, kind, ...)
  local out = { query:to_sql_for(kind, dialect, ...) }
  local list = {}
  for i = 1, #out, 2 do
    list[#list + 1] = { out[i], out[i + 1] }
  end
  return list
end

-- expect(build, kind, args, { sqlite = sql, postgres = sql, mysql = sql }, binds)
-- kind nil means to_sql (the SELECT); binds may be a per-dialect table.
local function expect(build, kind, args, sqls, binds)
  for _, d in ipairs(DIALECTS) do
    local sql, got
    if kind then
      local list = statements(build(), d, kind, table.unpack(args, 1, args.n or #args))
      assert.are.equal(1, #list, d .. ": one statement expected")
      sql, got = list[1][1], list[1][2]
    else
      sql, got = build():to_sql(d)
    end
    assert.are.equal(sqls[d], sql, d)
    assert.are.same(binds[d] or binds, got, d)
  end
end

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

local function invalid(f, ...)
  local err = err_of(f, ...)
  assert.are.equal("table", type(err), tostring(err))
  assert.are.equal("invalid_argument", err.kind, tostring(err.message))
  return err
end

describe("query compile", function()
  describe("where", function()
    it("(col, value) compares with =", function()
      expect(function() return q():where("name", "ann") end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "name" = ?',
        postgres = 'SELECT * FROM "users" WHERE "name" = $1',
        mysql = "SELECT * FROM `users` WHERE `name` = ?",
      }, { "ann" })
    end)

    it("(col, op, value) takes every operator of the list", function()
      local ops = { "=", "<>", "!=", "<", "<=", ">", ">=" }
      for _, op in ipairs(ops) do
        expect(function() return q():where("credits", op, 5) end, nil, {}, {
          sqlite = 'SELECT * FROM "users" WHERE "credits" ' .. op .. " ?",
          postgres = 'SELECT * FROM "users" WHERE "credits" ' .. op .. " $1",
          mysql = "SELECT * FROM `users` WHERE `credits` " .. op .. " ?",
        }, { 5 })
      end
    end)

    it("like and not like in any case", function()
      expect(function() return q():where("name", "LIKE", "a%"):where("name", "not like", "%z") end,
        nil, {}, {
          sqlite = 'SELECT * FROM "users" WHERE "name" LIKE ? AND "name" NOT LIKE ?',
          postgres = 'SELECT * FROM "users" WHERE "name" LIKE $1 AND "name" NOT LIKE $2',
          mysql = "SELECT * FROM `users` WHERE `name` LIKE ? AND `name` NOT LIKE ?",
        }, { "a%", "%z" })
    end)

    it("ilike is ILIKE on PostgreSQL and LOWER() LIKE LOWER() elsewhere", function()
      expect(function() return q():where("name", "ilike", "A%") end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE LOWER("name") LIKE LOWER(?)',
        postgres = 'SELECT * FROM "users" WHERE "name" ILIKE $1',
        mysql = "SELECT * FROM `users` WHERE LOWER(`name`) LIKE LOWER(?)",
      }, { "A%" })
    end)

    it("nil and orm.null with = are IS NULL, with <> / != IS NOT NULL", function()
      expect(function()
        return q():where("a", nil):where("b", NULL):where("c", "<>", nil):where("d", "!=", NULL)
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" IS NULL AND "b" IS NULL AND "c" IS NOT NULL'
          .. ' AND "d" IS NOT NULL',
        postgres = 'SELECT * FROM "users" WHERE "a" IS NULL AND "b" IS NULL AND "c" IS NOT NULL'
          .. ' AND "d" IS NOT NULL',
        mysql = "SELECT * FROM `users` WHERE `a` IS NULL AND `b` IS NULL AND `c` IS NOT NULL"
          .. " AND `d` IS NOT NULL",
      }, {})
    end)

    it("binds booleans, floats, integers and blobs as values", function()
      local blob = core.blob("\0\1")
      local sql, binds = q():where("a", true):where("b", 1.5):where("c", 7):where("d", blob):to_sql()
      assert.are.equal('SELECT * FROM "users" WHERE "a" = ? AND "b" = ? AND "c" = ? AND "d" = ?', sql)
      assert.are.same({ true, 1.5, 7, "\0\1" }, binds)
      assert.are.equal("integer", math.type(binds[3]))
      assert.are.equal("float", math.type(binds[2]))
    end)

    it("{ col = v } adds one = per key in sorted order, list entries first", function()
      expect(function()
        return q():where({ { "age", ">", 18 }, { "team", 3 }, zeta = 1, alpha = "x", mid = NULL })
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "age" > ? AND "team" = ? AND "alpha" = ?'
          .. ' AND "mid" IS NULL AND "zeta" = ?',
        postgres = 'SELECT * FROM "users" WHERE "age" > $1 AND "team" = $2 AND "alpha" = $3'
          .. ' AND "mid" IS NULL AND "zeta" = $4',
        mysql = "SELECT * FROM `users` WHERE `age` > ? AND `team` = ? AND `alpha` = ?"
          .. " AND `mid` IS NULL AND `zeta` = ?",
      }, { 18, 3, "x", 1 })
    end)

    it("function(q) makes a parenthesised group, nested ones too", function()
      expect(function()
        return q():where("active", true):where(function(g)
          g:where("role", "admin"):or_where(function(h)
            h:where("role", "editor"):where("credits", ">", 10)
          end)
        end):where("team", 1)
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "active" = ? AND ("role" = ? OR ("role" = ?'
          .. ' AND "credits" > ?)) AND "team" = ?',
        postgres = 'SELECT * FROM "users" WHERE "active" = $1 AND ("role" = $2 OR ("role" = $3'
          .. ' AND "credits" > $4)) AND "team" = $5',
        mysql = "SELECT * FROM `users` WHERE `active` = ? AND (`role` = ? OR (`role` = ?"
          .. " AND `credits` > ?)) AND `team` = ?",
      }, { true, "admin", "editor", 10, 1 })
    end)

    it("leaves an empty group out", function()
      expect(function() return q():where(function() end):where("a", 1) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ?',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1',
        mysql = "SELECT * FROM `users` WHERE `a` = ?",
      }, { 1 })
    end)

    it("restores the outer group when the group function raises", function()
      local query = q()
      assert.has_error(function()
        query:where(function(g) g:where("a", 1); error("boom") end)
      end)
      query:where("b", 2)
      assert.are.equal('SELECT * FROM "users" WHERE ("a" = ?) AND "b" = ?', query:to_sql())
    end)
  end)

  describe("or_where", function()
    it("joins with OR in every form", function()
      expect(function()
        return q():where("a", 1):or_where("b", ">", 2):or_where({ c = 3 }):or_where(function(g)
          g:where("d", 4):where("e", 5)
        end)
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? OR "b" > ? OR "c" = ? OR ("d" = ? AND "e" = ?)',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 OR "b" > $2 OR "c" = $3 OR ("d" = $4'
          .. ' AND "e" = $5)',
        mysql = "SELECT * FROM `users` WHERE `a` = ? OR `b` > ? OR `c` = ? OR (`d` = ? AND `e` = ?)",
      }, { 1, 2, 3, 4, 5 })
    end)
  end)

  describe("where_equals / where_not", function()
    it("compile to = and <>", function()
      expect(function() return q():where_equals("a", 1):where_not("b", 2):or_where_not("c", 3) end,
        nil, {}, {
          sqlite = 'SELECT * FROM "users" WHERE "a" = ? AND "b" <> ? OR "c" <> ?',
          postgres = 'SELECT * FROM "users" WHERE "a" = $1 AND "b" <> $2 OR "c" <> $3',
          mysql = "SELECT * FROM `users` WHERE `a` = ? AND `b` <> ? OR `c` <> ?",
        }, { 1, 2, 3 })
    end)
  end)

  describe("where_in / where_not_in", function()
    it("binds every element", function()
      expect(function() return q():where_in("id", { 1, 2, 3 }):where_not_in("team", { "x", NULL }) end,
        nil, {}, {
          sqlite = 'SELECT * FROM "users" WHERE "id" IN (?, ?, ?) AND "team" NOT IN (?, ?)',
          postgres = 'SELECT * FROM "users" WHERE "id" IN ($1, $2, $3) AND "team" NOT IN ($4, $5)',
          mysql = "SELECT * FROM `users` WHERE `id` IN (?, ?, ?) AND `team` NOT IN (?, ?)",
        }, { 1, 2, 3, "x", NULL })
    end)

    it("an empty list is always false (IN) or always true (NOT IN)", function()
      expect(function() return q():where_in("id", {}):or_where_not_in("id", {}) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE 1 = 0 OR 1 = 1',
        postgres = 'SELECT * FROM "users" WHERE 1 = 0 OR 1 = 1',
        mysql = "SELECT * FROM `users` WHERE 1 = 0 OR 1 = 1",
      }, {})
    end)

    it("or_where_in joins with OR", function()
      expect(function() return q():where("a", 1):or_where_in("b", { 2 }) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? OR "b" IN (?)',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 OR "b" IN ($2)',
        mysql = "SELECT * FROM `users` WHERE `a` = ? OR `b` IN (?)",
      }, { 1, 2 })
    end)

    it("takes a sub-query, numbering its placeholders in order", function()
      expect(function()
        local sub = q("posts"):select("user_id"):where("score", ">", 10)
        return q():where("active", true):where_in("id", sub):where("team", 2)
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "active" = ? AND "id" IN (SELECT "user_id" FROM "posts"'
          .. ' WHERE "score" > ?) AND "team" = ?',
        postgres = 'SELECT * FROM "users" WHERE "active" = $1 AND "id" IN (SELECT "user_id" FROM'
          .. ' "posts" WHERE "score" > $2) AND "team" = $3',
        mysql = "SELECT * FROM `users` WHERE `active` = ? AND `id` IN (SELECT `user_id` FROM `posts`"
          .. " WHERE `score` > ?) AND `team` = ?",
      }, { true, 10, 2 })
    end)
  end)

  describe("where_null / where_not_null", function()
    it("compile to IS [NOT] NULL, or_ forms with OR", function()
      expect(function()
        return q():where_null("a"):where_not_null("b"):or_where_null("c"):or_where_not_null("d")
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" IS NULL AND "b" IS NOT NULL OR "c" IS NULL'
          .. ' OR "d" IS NOT NULL',
        postgres = 'SELECT * FROM "users" WHERE "a" IS NULL AND "b" IS NOT NULL OR "c" IS NULL'
          .. ' OR "d" IS NOT NULL',
        mysql = "SELECT * FROM `users` WHERE `a` IS NULL AND `b` IS NOT NULL OR `c` IS NULL"
          .. " OR `d` IS NOT NULL",
      }, {})
    end)
  end)

  describe("where_between", function()
    it("binds both ends", function()
      expect(function()
        return q():where_between("credits", 1, 10):where_not_between("age", 20, 30)
          :or_where_between("x", "a", "b")
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "credits" BETWEEN ? AND ? AND "age" NOT BETWEEN ? AND ?'
          .. ' OR "x" BETWEEN ? AND ?',
        postgres = 'SELECT * FROM "users" WHERE "credits" BETWEEN $1 AND $2 AND "age" NOT BETWEEN'
          .. ' $3 AND $4 OR "x" BETWEEN $5 AND $6',
        mysql = "SELECT * FROM `users` WHERE `credits` BETWEEN ? AND ? AND `age` NOT BETWEEN ? AND ?"
          .. " OR `x` BETWEEN ? AND ?",
      }, { 1, 10, 20, 30, "a", "b" })
    end)
  end)

  describe("where_like", function()
    it("compiles to LIKE", function()
      expect(function() return q():where_like("name", "%an%"):or_where_like("email", "%@x") end,
        nil, {}, {
          sqlite = 'SELECT * FROM "users" WHERE "name" LIKE ? OR "email" LIKE ?',
          postgres = 'SELECT * FROM "users" WHERE "name" LIKE $1 OR "email" LIKE $2',
          mysql = "SELECT * FROM `users` WHERE `name` LIKE ? OR `email` LIKE ?",
        }, { "%an%", "%@x" })
    end)
  end)

  describe("where_column", function()
    it("compares two columns, = by default", function()
      expect(function()
        return q():where_column("updated_at", ">", "created_at"):or_where_column("a.x", "b.y")
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "updated_at" > "created_at" OR "a"."x" = "b"."y"',
        postgres = 'SELECT * FROM "users" WHERE "updated_at" > "created_at" OR "a"."x" = "b"."y"',
        mysql = "SELECT * FROM `users` WHERE `updated_at` > `created_at` OR `a`.`x` = `b`.`y`",
      }, {})
    end)
  end)

  describe("where_raw", function()
    it("keeps its text, numbers its ? on PostgreSQL, skips quoted ? and unescapes ??", function()
      expect(function()
        return q():where("a", 1):where_raw("lower(name) = ? OR note = '?' OR tags ?? 'x'", { "bo" })
          :or_where_raw("credits > ?", { 5 })
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? AND (lower(name) = ? OR note = \'?\''
          .. " OR tags ? 'x') OR (credits > ?)",
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 AND (lower(name) = $2 OR note = \'?\''
          .. " OR tags ? 'x') OR (credits > $3)",
        mysql = "SELECT * FROM `users` WHERE `a` = ? AND (lower(name) = ? OR note = '?'"
          .. " OR tags ? 'x') OR (credits > ?)",
      }, { 1, "bo", 5 })
    end)

    it("leaves ? alone in quoted identifiers and comments", function()
      expect(function() return q():where_raw('"q?" = ? /* ? */ OR `x?` = ?', { 1, 2 }) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE ("q?" = ? /* ? */ OR `x?` = ?)',
        postgres = 'SELECT * FROM "users" WHERE ("q?" = $1 /* ? */ OR `x?` = $2)',
        mysql = 'SELECT * FROM `users` WHERE ("q?" = ? /* ? */ OR `x?` = ?)',
      }, { 1, 2 })
    end)

    it("takes no bindings", function()
      assert.are.equal('SELECT * FROM "users" WHERE (1 = 1)', (q():where_raw("1 = 1"):to_sql()))
    end)
  end)

  describe("where_exists", function()
    it("wraps a sub-query, with NOT and OR forms", function()
      expect(function()
        local posts = q("posts"):where_column("posts.user_id", "users.id"):where("posts.score", ">", 3)
        return q():where("a", 1):where_exists(posts):or_where_not_exists(q("bans"):where("x", 2))
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? AND EXISTS (SELECT * FROM "posts" WHERE'
          .. ' "posts"."user_id" = "users"."id" AND "posts"."score" > ?) OR NOT EXISTS'
          .. ' (SELECT * FROM "bans" WHERE "x" = ?)',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 AND EXISTS (SELECT * FROM "posts" WHERE'
          .. ' "posts"."user_id" = "users"."id" AND "posts"."score" > $2) OR NOT EXISTS'
          .. ' (SELECT * FROM "bans" WHERE "x" = $3)',
        mysql = "SELECT * FROM `users` WHERE `a` = ? AND EXISTS (SELECT * FROM `posts` WHERE"
          .. " `posts`.`user_id` = `users`.`id` AND `posts`.`score` > ?) OR NOT EXISTS"
          .. " (SELECT * FROM `bans` WHERE `x` = ?)",
      }, { 1, 3, 2 })
    end)

    it("copies the sub-query: changing it later changes nothing", function()
      local sub = q("posts"):where("x", 1)
      local outer = q():where_exists(sub)
      sub:where("y", 2)
      assert.are.equal('SELECT * FROM "users" WHERE EXISTS (SELECT * FROM "posts" WHERE "x" = ?)',
        (outer:to_sql()))
    end)
  end)

  describe("select / distinct", function()
    it("quotes names, keeps * and t.*, aliases and aggregate calls", function()
      expect(function()
        return q("users as u"):select("u.*", "name as n", "COUNT(*) AS total", "max(u.credits) as top")
      end, nil, {}, {
        sqlite = 'SELECT "u".*, "name" AS "n", COUNT(*) AS "total", MAX("u"."credits") AS "top"'
          .. ' FROM "users" AS "u"',
        postgres = 'SELECT "u".*, "name" AS "n", COUNT(*) AS "total", MAX("u"."credits") AS "top"'
          .. ' FROM "users" AS "u"',
        mysql = "SELECT `u`.*, `name` AS `n`, COUNT(*) AS `total`, MAX(`u`.`credits`) AS `top`"
          .. " FROM `users` AS `u`",
      }, {})
    end)

    it("takes a list, replaces the previous list; add_select appends; distinct", function()
      expect(function() return q():select("x"):select({ "id", "name" }):add_select("email"):distinct() end,
        nil, {}, {
          sqlite = 'SELECT DISTINCT "id", "name", "email" FROM "users"',
          postgres = 'SELECT DISTINCT "id", "name", "email" FROM "users"',
          mysql = "SELECT DISTINCT `id`, `name`, `email` FROM `users`",
        }, {})
    end)
  end)

  describe("join / left_join", function()
    it("compile INNER and LEFT joins, = by default", function()
      expect(function()
        return q():join("posts", "posts.user_id", "=", "users.id")
          :left_join("teams as t", "t.id", "users.team_id"):where("t.name", "x")
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" INNER JOIN "posts" ON "posts"."user_id" = "users"."id"'
          .. ' LEFT JOIN "teams" AS "t" ON "t"."id" = "users"."team_id" WHERE "t"."name" = ?',
        postgres = 'SELECT * FROM "users" INNER JOIN "posts" ON "posts"."user_id" = "users"."id"'
          .. ' LEFT JOIN "teams" AS "t" ON "t"."id" = "users"."team_id" WHERE "t"."name" = $1',
        mysql = "SELECT * FROM `users` INNER JOIN `posts` ON `posts`.`user_id` = `users`.`id`"
          .. " LEFT JOIN `teams` AS `t` ON `t`.`id` = `users`.`team_id` WHERE `t`.`name` = ?",
      }, { "x" })
    end)
  end)

  describe("group_by / having", function()
    it("compile GROUP BY and HAVING with bound values", function()
      expect(function()
        return q():select("team", "count(*) as n"):group_by("team", "role")
          :having("count(*)", ">", 2):having("team", "<>", 9)
      end, nil, {}, {
        sqlite = 'SELECT "team", COUNT(*) AS "n" FROM "users" GROUP BY "team", "role"'
          .. ' HAVING COUNT(*) > ? AND "team" <> ?',
        postgres = 'SELECT "team", COUNT(*) AS "n" FROM "users" GROUP BY "team", "role"'
          .. ' HAVING COUNT(*) > $1 AND "team" <> $2',
        mysql = "SELECT `team`, COUNT(*) AS `n` FROM `users` GROUP BY `team`, `role`"
          .. " HAVING COUNT(*) > ? AND `team` <> ?",
      }, { 2, 9 })
    end)

    it("numbers WHERE placeholders before HAVING ones", function()
      local sql, binds = q():where("a", 1):group_by({ "b" }):having("b", 2):to_sql("postgres")
      assert.are.equal('SELECT * FROM "users" WHERE "a" = $1 GROUP BY "b" HAVING "b" = $2', sql)
      assert.are.same({ 1, 2 }, binds)
    end)
  end)

  describe("order_by / latest / oldest / reorder", function()
    it("compile ASC and DESC", function()
      expect(function()
        return q():order_by("name"):order_by("credits", "DESC"):latest():oldest("id"):latest("t.x")
      end, nil, {}, {
        sqlite = 'SELECT * FROM "users" ORDER BY "name" ASC, "credits" DESC, "created_at" DESC,'
          .. ' "id" ASC, "t"."x" DESC',
        postgres = 'SELECT * FROM "users" ORDER BY "name" ASC, "credits" DESC, "created_at" DESC,'
          .. ' "id" ASC, "t"."x" DESC',
        mysql = "SELECT * FROM `users` ORDER BY `name` ASC, `credits` DESC, `created_at` DESC,"
          .. " `id` ASC, `t`.`x` DESC",
      }, {})
    end)

    it("reorder drops the order", function()
      assert.are.equal('SELECT * FROM "users" ORDER BY "b" ASC',
        (q():order_by("a"):reorder():order_by("b"):to_sql()))
    end)
  end)

  describe("limit / offset", function()
    it("compile LIMIT and OFFSET as integers", function()
      expect(function() return q():limit(10):offset(20) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" LIMIT 10 OFFSET 20',
        postgres = 'SELECT * FROM "users" LIMIT 10 OFFSET 20',
        mysql = "SELECT * FROM `users` LIMIT 10 OFFSET 20",
      }, {})
    end)

    it("OFFSET without LIMIT uses the dialect's no-limit value", function()
      expect(function() return q():offset(5) end, nil, {}, {
        sqlite = 'SELECT * FROM "users" LIMIT -1 OFFSET 5',
        postgres = 'SELECT * FROM "users" OFFSET 5',
        mysql = "SELECT * FROM `users` LIMIT 18446744073709551615 OFFSET 5",
      }, {})
    end)

    it("nil removes them; limit(0) stays", function()
      assert.are.equal('SELECT * FROM "users" LIMIT 0', (q():limit(3):offset(2):offset(nil):limit(0):to_sql()))
      assert.are.equal('SELECT * FROM "users"', (q():limit(3):limit(nil):to_sql()))
    end)
  end)

  describe("get / first", function()
    it("get is the plain SELECT", function()
      expect(function() return q():where("a", 1):order_by("id"):limit(3) end, "get", {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? ORDER BY "id" ASC LIMIT 3',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 ORDER BY "id" ASC LIMIT 3',
        mysql = "SELECT * FROM `users` WHERE `a` = ? ORDER BY `id` ASC LIMIT 3",
      }, { 1 })
    end)

    it("first is LIMIT 1, keeping the offset", function()
      expect(function() return q():where("a", 1):offset(4):limit(50) end, "first", {}, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? LIMIT 1 OFFSET 4',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 LIMIT 1 OFFSET 4',
        mysql = "SELECT * FROM `users` WHERE `a` = ? LIMIT 1 OFFSET 4",
      }, { 1 })
    end)
  end)

  describe("aggregates", function()
    it("count(*) and count(col) drop the order", function()
      expect(function() return q():where("a", 1):order_by("id") end, "count", {}, {
        sqlite = 'SELECT COUNT(*) AS "aggregate" FROM "users" WHERE "a" = ?',
        postgres = 'SELECT COUNT(*) AS "aggregate" FROM "users" WHERE "a" = $1',
        mysql = "SELECT COUNT(*) AS `aggregate` FROM `users` WHERE `a` = ?",
      }, { 1 })
      expect(function() return q() end, "count", { "users.email" }, {
        sqlite = 'SELECT COUNT("users"."email") AS "aggregate" FROM "users"',
        postgres = 'SELECT COUNT("users"."email") AS "aggregate" FROM "users"',
        mysql = "SELECT COUNT(`users`.`email`) AS `aggregate` FROM `users`",
      }, {})
    end)

    it("sum, avg, min, max", function()
      for _, fn in ipairs({ "sum", "avg", "min", "max" }) do
        local up = fn:upper()
        expect(function() return q():where("a", 1) end, fn, { "credits" }, {
          sqlite = "SELECT " .. up .. '("credits") AS "aggregate" FROM "users" WHERE "a" = ?',
          postgres = "SELECT " .. up .. '("credits") AS "aggregate" FROM "users" WHERE "a" = $1',
          mysql = "SELECT " .. up .. "(`credits`) AS `aggregate` FROM `users` WHERE `a` = ?",
        }, { 1 })
      end
    end)

    it("wrap a query with DISTINCT, GROUP BY or LIMIT as a sub-select", function()
      expect(function() return q():select("team"):distinct():where("a", 1) end, "count", {}, {
        sqlite = 'SELECT COUNT(*) AS "aggregate" FROM (SELECT DISTINCT "team" FROM "users"'
          .. ' WHERE "a" = ?) AS "aggregate_table"',
        postgres = 'SELECT COUNT(*) AS "aggregate" FROM (SELECT DISTINCT "team" FROM "users"'
          .. ' WHERE "a" = $1) AS "aggregate_table"',
        mysql = "SELECT COUNT(*) AS `aggregate` FROM (SELECT DISTINCT `team` FROM `users`"
          .. " WHERE `a` = ?) AS `aggregate_table`",
      }, { 1 })
      expect(function() return q():order_by("credits", "desc"):limit(3) end, "sum", { "users.credits" }, {
        sqlite = 'SELECT SUM("credits") AS "aggregate" FROM (SELECT * FROM "users" ORDER BY'
          .. ' "credits" DESC LIMIT 3) AS "aggregate_table"',
        postgres = 'SELECT SUM("credits") AS "aggregate" FROM (SELECT * FROM "users" ORDER BY'
          .. ' "credits" DESC LIMIT 3) AS "aggregate_table"',
        mysql = "SELECT SUM(`credits`) AS `aggregate` FROM (SELECT * FROM `users` ORDER BY"
          .. " `credits` DESC LIMIT 3) AS `aggregate_table`",
      }, {})
      expect(function() return q():select("team"):group_by("team") end, "count", {}, {
        sqlite = 'SELECT COUNT(*) AS "aggregate" FROM (SELECT "team" FROM "users" GROUP BY "team")'
          .. ' AS "aggregate_table"',
        postgres = 'SELECT COUNT(*) AS "aggregate" FROM (SELECT "team" FROM "users" GROUP BY "team")'
          .. ' AS "aggregate_table"',
        mysql = "SELECT COUNT(*) AS `aggregate` FROM (SELECT `team` FROM `users` GROUP BY `team`)"
          .. " AS `aggregate_table`",
      }, {})
    end)

    it("exists wraps the query in EXISTS()", function()
      expect(function() return q():where("a", 1):order_by("id") end, "exists", {}, {
        sqlite = 'SELECT EXISTS(SELECT * FROM "users" WHERE "a" = ?) AS "exists"',
        postgres = 'SELECT EXISTS(SELECT * FROM "users" WHERE "a" = $1) AS "exists"',
        mysql = "SELECT EXISTS(SELECT * FROM `users` WHERE `a` = ?) AS `exists`",
      }, { 1 })
    end)
  end)

  describe("pluck", function()
    it("selects one column", function()
      expect(function() return q():select("a", "b"):where("a", 1):order_by("b") end, "pluck", { "email" }, {
        sqlite = 'SELECT "email" FROM "users" WHERE "a" = ? ORDER BY "b" ASC',
        postgres = 'SELECT "email" FROM "users" WHERE "a" = $1 ORDER BY "b" ASC',
        mysql = "SELECT `email` FROM `users` WHERE `a` = ? ORDER BY `b` ASC",
      }, { 1 })
    end)
  end)

  describe("paginate", function()
    it("is a count without order or window, then the page", function()
      for _, d in ipairs(DIALECTS) do
        local list = statements(q():where("a", 1):order_by("id"):limit(99), d, "paginate",
          { page = 3, per_page = 20 })
        assert.are.equal(2, #list)
        local want = {
          sqlite = { 'SELECT COUNT(*) AS "aggregate" FROM "users" WHERE "a" = ?',
            'SELECT * FROM "users" WHERE "a" = ? ORDER BY "id" ASC LIMIT 20 OFFSET 40' },
          postgres = { 'SELECT COUNT(*) AS "aggregate" FROM "users" WHERE "a" = $1',
            'SELECT * FROM "users" WHERE "a" = $1 ORDER BY "id" ASC LIMIT 20 OFFSET 40' },
          mysql = { "SELECT COUNT(*) AS `aggregate` FROM `users` WHERE `a` = ?",
            "SELECT * FROM `users` WHERE `a` = ? ORDER BY `id` ASC LIMIT 20 OFFSET 40" },
        }
        assert.are.equal(want[d][1], list[1][1])
        assert.are.equal(want[d][2], list[2][1])
        assert.are.same({ 1 }, list[1][2])
        assert.are.same({ 1 }, list[2][2])
      end
    end)

    it("defaults to page 1 of 15", function()
      local list = statements(q(), "sqlite", "paginate")
      assert.are.equal('SELECT * FROM "users" LIMIT 15', list[2][1])
    end)
  end)

  describe("chunk", function()
    it("orders by the first column when there is no order", function()
      expect(function() return q():where("a", 1) end, "chunk", { 100, 3 }, {
        sqlite = 'SELECT * FROM "users" WHERE "a" = ? ORDER BY 1 LIMIT 100 OFFSET 200',
        postgres = 'SELECT * FROM "users" WHERE "a" = $1 ORDER BY 1 LIMIT 100 OFFSET 200',
        mysql = "SELECT * FROM `users` WHERE `a` = ? ORDER BY 1 LIMIT 100 OFFSET 200",
      }, { 1 })
    end)

    it("keeps the query's order, and its offset as the start", function()
      expect(function() return q():order_by("name"):offset(5) end, "chunk", { 10 }, {
        sqlite = 'SELECT * FROM "users" ORDER BY "name" ASC LIMIT 10 OFFSET 5',
        postgres = 'SELECT * FROM "users" ORDER BY "name" ASC LIMIT 10 OFFSET 5',
        mysql = "SELECT * FROM `users` ORDER BY `name` ASC LIMIT 10 OFFSET 5",
      }, {})
    end)
  end)

  describe("insert", function()
    it("one row, columns in sorted order", function()
      expect(q, "insert", { { name = "ann", credits = 5, active = true } }, {
        sqlite = 'INSERT INTO "users" ("active", "credits", "name") VALUES (?, ?, ?)',
        postgres = 'INSERT INTO "users" ("active", "credits", "name") VALUES ($1, $2, $3)',
        mysql = "INSERT INTO `users` (`active`, `credits`, `name`) VALUES (?, ?, ?)",
      }, { true, 5, "ann" })
    end)

    it("a list of rows in one statement", function()
      expect(q, "insert", { { { name = "a", credits = 1 }, { name = "b", credits = NULL } } }, {
        sqlite = 'INSERT INTO "users" ("credits", "name") VALUES (?, ?), (?, ?)',
        postgres = 'INSERT INTO "users" ("credits", "name") VALUES ($1, $2), ($3, $4)',
        mysql = "INSERT INTO `users` (`credits`, `name`) VALUES (?, ?), (?, ?)",
      }, { 1, "a", NULL, "b" })
    end)

    it("starts a new statement when the columns change", function()
      local list = statements(q(), "postgres", "insert",
        { { a = 1, b = 2 }, { a = 3, b = 4 }, { a = 5 }, { b = 6, a = 7 } })
      assert.are.same({
        { 'INSERT INTO "users" ("a", "b") VALUES ($1, $2), ($3, $4)', { 1, 2, 3, 4 } },
        { 'INSERT INTO "users" ("a") VALUES ($1)', { 5 } },
        { 'INSERT INTO "users" ("a", "b") VALUES ($1, $2)', { 7, 6 } },
      }, list)
    end)

    it("splits into statements of the dialect's best size, never over its parameter limit", function()
      local rows = {}
      for i = 1, 22000 do rows[i] = { a = i, b = "x", c = NULL } end
      local limits = { sqlite = 32766, postgres = 7498, mysql = 65535 }
      for _, d in ipairs(DIALECTS) do
        local facts = require("ormed.core").dialect(d)
        assert.are.equal(limits[d], facts.max_params, d)
        local list = statements(q(), d, "insert", rows)
        local per = math.min(facts.insert_batch, facts.max_params) // 3 -- the measured best size
        assert.are.equal(math.ceil(22000 / per), #list, d)
        local total = 0
        for i, st in ipairs(list) do
          assert.is_true(#st[2] <= limits[d], d)
          assert.are.equal(i < #list and per * 3 or (22000 - per * (#list - 1)) * 3, #st[2])
          total = total + #st[2]
        end
        assert.are.equal(66000, total)
        assert.are.equal(list[#list][2][#list[#list][2]], NULL)
        if d == "postgres" then
          assert.truthy(list[1][1]:find("($" .. (per * 3 - 2) .. ", $" .. (per * 3 - 1)
            .. ", $" .. (per * 3) .. ")", 1, true))
        end
      end
    end)

    it("an empty list compiles nothing", function()
      assert.are.equal(0, #statements(q(), "sqlite", "insert", {}))
    end)
  end)

  describe("insert_get_id", function()
    it("uses RETURNING where the dialect has it", function()
      expect(q, "insert_get_id", { { name = "a" } }, {
        sqlite = 'INSERT INTO "users" ("name") VALUES (?) RETURNING "id"',
        postgres = 'INSERT INTO "users" ("name") VALUES ($1) RETURNING "id"',
        mysql = "INSERT INTO `users` (`name`) VALUES (?)",
      }, { "a" })
      expect(q, "insert_get_id", { { name = "a" }, "uid" }, {
        sqlite = 'INSERT INTO "users" ("name") VALUES (?) RETURNING "uid"',
        postgres = 'INSERT INTO "users" ("name") VALUES ($1) RETURNING "uid"',
        mysql = "INSERT INTO `users` (`name`) VALUES (?)",
      }, { "a" })
    end)

    it("an empty row inserts the defaults", function()
      expect(q, "insert_get_id", { {} }, {
        sqlite = 'INSERT INTO "users" DEFAULT VALUES RETURNING "id"',
        postgres = 'INSERT INTO "users" DEFAULT VALUES RETURNING "id"',
        mysql = "INSERT INTO `users` () VALUES ()",
      }, {})
    end)
  end)

  describe("update", function()
    it("sets columns in sorted order before the WHERE values", function()
      expect(function() return q():where("id", 7):order_by("id") end, "update",
        { { name = "b", credits = NULL } }, {
          sqlite = 'UPDATE "users" SET "credits" = ?, "name" = ? WHERE "id" = ?',
          postgres = 'UPDATE "users" SET "credits" = $1, "name" = $2 WHERE "id" = $3',
          mysql = "UPDATE `users` SET `credits` = ?, `name` = ? WHERE `id` = ?",
        }, { NULL, "b", 7 })
    end)

    it("without a filter updates every row", function()
      expect(q, "update", { { a = 1 } }, {
        sqlite = 'UPDATE "users" SET "a" = ?',
        postgres = 'UPDATE "users" SET "a" = $1',
        mysql = "UPDATE `users` SET `a` = ?",
      }, { 1 })
    end)
  end)

  describe("delete", function()
    it("compiles DELETE with the WHERE", function()
      expect(function() return q():where_in("id", { 1, 2 }) end, "delete", {}, {
        sqlite = 'DELETE FROM "users" WHERE "id" IN (?, ?)',
        postgres = 'DELETE FROM "users" WHERE "id" IN ($1, $2)',
        mysql = "DELETE FROM `users` WHERE `id` IN (?, ?)",
      }, { 1, 2 })
    end)
  end)

  describe("increment / decrement", function()
    it("add or subtract, 1 by default, with extra columns", function()
      expect(function() return q():where("id", 1) end, "increment", { "credits" }, {
        sqlite = 'UPDATE "users" SET "credits" = "credits" + ? WHERE "id" = ?',
        postgres = 'UPDATE "users" SET "credits" = "credits" + $1 WHERE "id" = $2',
        mysql = "UPDATE `users` SET `credits` = `credits` + ? WHERE `id` = ?",
      }, { 1, 1 })
      expect(function() return q():where("id", 1) end, "decrement", { "credits", 2.5, { note = "x" } }, {
        sqlite = 'UPDATE "users" SET "credits" = "credits" - ?, "note" = ? WHERE "id" = ?',
        postgres = 'UPDATE "users" SET "credits" = "credits" - $1, "note" = $2 WHERE "id" = $3',
        mysql = "UPDATE `users` SET `credits` = `credits` - ?, `note` = ? WHERE `id` = ?",
      }, { 2.5, "x", 1 })
    end)
  end)

  describe("upsert", function()
    local rows = { { email = "a@x", name = "a", credits = 1 }, { email = "b@x", name = "b", credits = 2 } }

    it("updates every other column by default", function()
      expect(q, "upsert", { rows, "email" }, {
        sqlite = 'INSERT INTO "users" ("credits", "email", "name") VALUES (?, ?, ?), (?, ?, ?)'
          .. ' ON CONFLICT ("email") DO UPDATE SET "credits" = excluded."credits",'
          .. ' "name" = excluded."name"',
        postgres = 'INSERT INTO "users" ("credits", "email", "name") VALUES ($1, $2, $3),'
          .. ' ($4, $5, $6) ON CONFLICT ("email") DO UPDATE SET "credits" = excluded."credits",'
          .. ' "name" = excluded."name"',
        mysql = "INSERT INTO `users` (`credits`, `email`, `name`) VALUES (?, ?, ?), (?, ?, ?)"
          .. " ON DUPLICATE KEY UPDATE `credits` = VALUES(`credits`), `name` = VALUES(`name`)",
      }, { 1, "a@x", "a", 2, "b@x", "b" })
    end)

    it("updates the listed columns, with several unique columns", function()
      expect(q, "upsert", { { rows[1] }, { "email", "name" }, { "credits" } }, {
        sqlite = 'INSERT INTO "users" ("credits", "email", "name") VALUES (?, ?, ?)'
          .. ' ON CONFLICT ("email", "name") DO UPDATE SET "credits" = excluded."credits"',
        postgres = 'INSERT INTO "users" ("credits", "email", "name") VALUES ($1, $2, $3)'
          .. ' ON CONFLICT ("email", "name") DO UPDATE SET "credits" = excluded."credits"',
        mysql = "INSERT INTO `users` (`credits`, `email`, `name`) VALUES (?, ?, ?)"
          .. " ON DUPLICATE KEY UPDATE `credits` = VALUES(`credits`)",
      }, { 1, "a@x", "a" })
    end)

    it("an empty update list does nothing on conflict", function()
      expect(q, "upsert", { { rows[1] }, "email", {} }, {
        sqlite = 'INSERT INTO "users" ("credits", "email", "name") VALUES (?, ?, ?)'
          .. ' ON CONFLICT ("email") DO NOTHING',
        postgres = 'INSERT INTO "users" ("credits", "email", "name") VALUES ($1, $2, $3)'
          .. ' ON CONFLICT ("email") DO NOTHING',
        mysql = "INSERT INTO `users` (`credits`, `email`, `name`) VALUES (?, ?, ?)"
          .. " ON DUPLICATE KEY UPDATE `email` = `email`",
      }, { 1, "a@x", "a" })
    end)
  end)

  describe("identifiers", function()
    it("double embedded quote characters", function()
      expect(function() return q('we"ird`tab'):select('co"l', "c`l"):where('x"y', 1) end, nil, {}, {
        sqlite = 'SELECT "co""l", "c`l" FROM "we""ird`tab" WHERE "x""y" = ?',
        postgres = 'SELECT "co""l", "c`l" FROM "we""ird`tab" WHERE "x""y" = $1',
        mysql = 'SELECT `co"l`, `c``l` FROM `we"ird``tab` WHERE `x"y` = ?',
      }, { 1 })
    end)

    it("an alias is only read in select lists and table names", function()
      assert.are.equal('SELECT * FROM "users" WHERE "a as b" = ?', (q():where("a as b", 1):to_sql()))
      assert.are.equal('SELECT * FROM "users" ORDER BY "a as b" ASC', (q():order_by("a as b"):to_sql()))
    end)

    it("a write never aliases its table", function()
      assert.are.equal('DELETE FROM "users" WHERE "u"."id" = ?',
        (q("users as u"):where("u.id", 1):to_sql_for("delete", "sqlite")))
    end)
  end)

  describe("clone / table_name / to_sql", function()
    it("clone is a deep copy", function()
      local a = q():where("a", 1):where(function(g) g:where("b", 2) end)
        :where_exists(q("p"):where("c", 3)):order_by("id"):limit(2)
      local b = a:clone()
      a:where("z", 9)
      b:where("y", 8)
      assert.are.equal('SELECT * FROM "users" WHERE "a" = ? AND ("b" = ?) AND EXISTS (SELECT * FROM'
        .. ' "p" WHERE "c" = ?) AND "y" = ? ORDER BY "id" ASC LIMIT 2', (b:to_sql()))
      assert.are.equal('SELECT * FROM "users" WHERE "a" = ? AND ("b" = ?) AND EXISTS (SELECT * FROM'
        .. ' "p" WHERE "c" = ?) AND "z" = ? ORDER BY "id" ASC LIMIT 2', (a:to_sql()))
      a = nil -- luacheck: ignore 311
      collectgarbage()
      assert.are.same({ 1, 2, 3, 8 }, select(2, b:to_sql()))
    end)

    it("table_name gives the table", function()
      assert.are.equal("users as u", q("users as u"):table_name())
    end)

    it("to_sql defaults to sqlite; NULL bindings come back as orm.null", function()
      local sql, binds = q():where_in("a", { NULL, 1 }):to_sql()
      assert.are.equal('SELECT * FROM "users" WHERE "a" IN (?, ?)', sql)
      assert.are.equal(2, #binds)
      assert.are.equal(NULL, binds[1])
    end)

    it("to_sql_for reports an unknown kind or dialect", function()
      invalid(function() q():to_sql_for("explode", "sqlite") end)
      invalid(function() q():to_sql("oracle") end)
    end)

    it("a closed query refuses use", function()
      local x = q()
      getmetatable(x).__close(x)
      getmetatable(x).__close(x)
      invalid(function() x:where("a", 1) end)
    end)
  end)

  describe("bad input", function()
    it("an operator outside the list", function()
      for _, op in ipairs({ "==", "; drop", "LIKE2", "in", "", "not  like", "is" }) do
        invalid(function() q():where("a", op, 1) end)
      end
      invalid(function() q():where_column("a", "=>", "b") end)
      invalid(function() q():join("t", "a", "<=>", "b") end)
      invalid(function() q():having("a", "~", 1) end)
      invalid(function() q():where("a", 5, 1) end)
    end)

    it("a column name that is not a string", function()
      invalid(function() q():where(1, 2) end)
      invalid(function() q():where({}, "=", 2) end)
      invalid(function() q():where({ [true] = 1 }) end)
      invalid(function() q():where_in(3, { 1 }) end)
      invalid(function() q():where_null(nil) end)
      invalid(function() q():select("a", 2) end)
      invalid(function() q():order_by(false) end)
      invalid(function() q():group_by({ 1 }) end)
      invalid(function() q():to_sql_for("update", "sqlite", { [1] = 2 }) end)
      invalid(function() q():to_sql_for("insert", "sqlite", { { [2.5] = 1 } }) end)
      invalid(function() core.query(42) end)
    end)

    it("a non-list for where_in", function()
      invalid(function() q():where_in("a", "1,2") end)
      invalid(function() q():where_in("a", 12) end)
      invalid(function() q():where_in("a", { a = 1 }) end)
      invalid(function() q():where_in("a", { 1, nil, 3 }) end)
      invalid(function() q():where_not_in("a") end)
      invalid(function() q():where_raw("a = ?", "x") end)
    end)

    it("a limit or offset that is not a non-negative integer", function()
      for _, v in ipairs({ 1.5, "10", -1, true, {} }) do
        invalid(function() q():limit(v) end)
        invalid(function() q():offset(v) end)
      end
      assert.are.equal('SELECT * FROM "users" LIMIT 2', (q():limit(2.0):to_sql()))
    end)

    it("an identifier containing NUL, or empty, or with an empty dotted part", function()
      for _, bad in ipairs({ "a\0b", "", "a..b", ".a", "a." }) do
        invalid(function() q():where(bad, 1) end)
        invalid(function() q():select(bad) end)
        invalid(function() q():order_by(bad) end)
        invalid(function() core.query(bad) end)
        invalid(function() q():join(bad, "a", "b") end)
        invalid(function() q():to_sql_for("update", "sqlite", { [bad] = 1 }) end)
      end
      invalid(function() q():where_raw("a = 1\0") end)
      invalid(function() q():select("x as ") end)
      invalid(function() core.query(" as t") end)
      invalid(function() q():select("count()") end)
    end)

    it("a value that cannot be bound", function()
      for _, v in ipairs({ {}, print, coroutine.create(print), io.stdout }) do
        invalid(function() q():where("a", v) end)
        invalid(function() q():where_in("a", { v }) end)
        invalid(function() q():to_sql_for("insert", "sqlite", { a = v }) end)
      end
    end)

    it("other misuse", function()
      invalid(function() q():where("a", ">", nil) end)
      invalid(function() q():where("a") end)
      invalid(function() q():where("a", "=", 1, 2) end)
      invalid(function() q():where({ { "a" } }) end)
      invalid(function() q():where({ "a" }) end)
      invalid(function() q():order_by("a", "sideways") end)
      invalid(function() q():where_raw("a = ? and b = ?", { 1 }) end)
      invalid(function() q():where_exists("users") end)
      invalid(function() q():to_sql_for("sum", "sqlite") end)
      invalid(function() q():to_sql_for("upsert", "sqlite", { { a = 1 } }) end)
      invalid(function() q():to_sql_for("update", "sqlite", {}) end)
      invalid(function() q():limit(1):to_sql_for("delete", "sqlite") end)
      invalid(function() q():join("t", "a", "b"):to_sql_for("update", "sqlite", { a = 1 }) end)
      invalid(function() q():to_sql_for("paginate", "sqlite", { page = 0 }) end)
      invalid(function() q():to_sql_for("chunk", "sqlite", 0) end)
      invalid(function() q():to_sql_for("increment", "sqlite", "a", "many") end)
    end)

    it("leaves the query as it was after a refused call", function()
      local x = q():where("a", 1)
      invalid(function() x:where("b", "bogus", 1) end)
      invalid(function() x:where_in("c", "nope") end)
      assert.are.equal('SELECT * FROM "users" WHERE "a" = ?', (x:to_sql()))
    end)
  end)

  describe("hostile strings", function()
    local hostile = { "'; drop table x; --", "`", '"', ") or (1=1", "' OR '1'='1", "?", "$1",
      "\\", "a\0b" }

    it("as values never change the statement, only the bindings", function()
      for _, d in ipairs(DIALECTS) do
        local base = q():where("name", "x"):where_in("id", { "x" }):where_raw("a = ?", { "x" })
          :where_between("b", "x", "x"):to_sql(d)
        for _, h in ipairs(hostile) do
          local sql, binds = q():where("name", h):where_in("id", { h }):where_raw("a = ?", { h })
            :where_between("b", h, h):to_sql(d)
          assert.are.equal(base, sql)
          assert.are.same({ h, h, h, h, h }, binds)
          local ins = statements(q(), d, "insert", { name = h })
          assert.are.equal(statements(q(), d, "insert", { name = "x" })[1][1], ins[1][1])
          assert.are.same({ h }, ins[1][2])
        end
      end
    end)

    it("as identifiers stay one quoted identifier", function()
      local cases = {
        { "x; drop table x; --", '"x; drop table x; --"', "`x; drop table x; --`" },
        { 'a" OR "1"="1', '"a"" OR ""1""=""1"', '`a" OR "1"="1`' },
        { "a` OR 1=1 -- ", '"a` OR 1=1 -- "', "`a`` OR 1=1 -- `" },
        { ") or (1=1", '") or (1=1"', "`) or (1=1`" },
        { "'; drop table x; --", '"\'; drop table x; --"', "`'; drop table x; --`" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal('SELECT * FROM "users" WHERE ' .. c[2] .. " = ?", (q():where(c[1], 1):to_sql()))
        assert.are.equal("SELECT * FROM `users` WHERE " .. c[3] .. " = ?",
          (q():where(c[1], 1):to_sql("mysql")))
        assert.are.equal("SELECT " .. c[2] .. ' FROM "users" ORDER BY ' .. c[2] .. " DESC",
          (q():select(c[1]):order_by(c[1], "desc"):to_sql("postgres")))
        assert.are.equal("SELECT * FROM " .. c[2], (core.query(c[1]):to_sql()))
        assert.are.equal("INSERT INTO `users` (" .. c[3] .. ") VALUES (?)",
          (q():to_sql_for("insert", "mysql", { [c[1]] = 1 })))
      end
    end)
  end)
end)
