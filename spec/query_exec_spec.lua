-- Execution specs of the query object (core.query) on every driver: each
-- method runs against a real database and reads back what it wrote. The
-- target is the data source's own (pool, or the transaction's connection).
local core = require("ormed.core")
local helper = require("spec.helper")

local NULL = core.null

helper.each_driver(function(drv)
  local ds

  local function target()
    return ds:_target(true)
  end

  local function q(t)
    return core.query(t or "users")
  end

  local function names(rows)
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.name end
    return out
  end

  local function invalid(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    assert.are.equal("invalid_argument", err.kind, tostring(err))
  end

  local function seed()
    q():insert(target(), {
      { name = "ann", email = "ann@x", credits = 10, active = true, team = 1 },
      { name = "bob", email = "bob@x", credits = 20, active = false, team = 1 },
      { name = "cid", email = "cid@x", credits = 30, active = true, team = 2 },
      { name = "dee", email = "dee@x", credits = 40, active = true, team = 2 },
      { name = "eve", email = "eve@x", credits = 50, active = false, team = 3 },
    })
    q():insert(target(), { name = "fay", email = NULL, credits = NULL, active = true, team = 3 })
    local ids = {}
    for _, r in ipairs(q():get(target())) do ids[r.name] = r.id end
    q("posts"):insert(target(), {
      { user_id = ids.ann, score = 5, title = "a1" },
      { user_id = ids.ann, score = 7, title = "a2" },
      { user_id = ids.cid, score = 1, title = "c1" },
    })
    return ids
  end

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "users", {
      { "id", "id" }, { "name", "string", "NOT NULL UNIQUE" }, { "email", "string" },
      { "credits", "integer" }, { "active", "boolean" }, { "team", "integer" },
    })
    drv:create_table(ds, "posts", {
      { "id", "id" }, { "user_id", "bigint" }, { "score", "integer" }, { "title", "string" },
    })
    drv:create_table(ds, "x", { { "id", "id" } })
  end)

  teardown(function()
    drv:drop_table(ds, "users")
    drv:drop_table(ds, "posts")
    drv:drop_table(ds, "x")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM users")
    ds:execute("DELETE FROM posts")
    seed()
  end)

  describe("reads", function()
    it("get returns plain rows with typed values", function()
      local rows = q():where("name", "ann"):get(target())
      assert.are.equal(1, #rows)
      assert.are.equal("ann", rows[1].name)
      assert.are.equal(10, rows[1].credits)
      assert.are.equal("integer", math.type(rows[1].credits))
      assert.are.equal(true, rows[1].active)
      assert.are.same({}, q():where("name", "nobody"):get(target()))
    end)

    it("where forms, groups and or_where", function()
      assert.are.same({ "cid", "dee", "eve" },
        names(q():where("credits", ">=", 30):order_by("name"):get(target())))
      assert.are.same({ "ann", "eve" }, names(q():where({ team = 1, active = true })
        :or_where(function(g) g:where("team", 3):where("credits", "<>", nil) end)
        :order_by("name"):get(target())))
      assert.are.same({ "ann", "cid", "dee" }, names(q():where("active", true)
        :where(function(g) g:where("team", 1):or_where("team", 2) end):order_by("name"):get(target())))
      assert.are.same({ "fay" }, names(q():where("email", nil):get(target())))
      assert.are.same({ "bob", "eve" }, names(q():where_not("active", true):order_by("name"):get(target())))
      assert.are.same({ "bob" }, names(q():where_equals("name", "bob"):get(target())))
    end)

    it("where_in, empty lists, sub-queries", function()
      assert.are.same({ "ann", "cid" }, names(q():where_in("name", { "ann", "cid", "zed" })
        :order_by("name"):get(target())))
      assert.are.same({}, q():where_in("name", {}):get(target()))
      assert.are.equal(6, #q():where_not_in("name", {}):get(target()))
      assert.are.same({ "bob" }, names(q():where_not_in("team", { 2, 3 }):where_not("name", "ann")
        :get(target())))
      assert.are.same({ "ann", "bob" }, names(q():where_in("name", { "ann" }):or_where_in("name", { "bob" })
        :order_by("name"):get(target())))
      local sub = q("posts"):select("user_id"):where("score", ">", 3)
      assert.are.same({ "ann" }, names(q():where_in("id", sub):get(target())))
    end)

    it("null, between, like, ilike, column comparisons", function()
      assert.are.same({ "fay" }, names(q():where_null("credits"):get(target())))
      assert.are.equal(5, #q():where_not_null("credits"):get(target()))
      assert.are.same({ "bob", "cid" }, names(q():where_between("credits", 20, 30):order_by("name")
        :get(target())))
      assert.are.same({ "ann", "dee", "eve", "fay" }, names(q():where_not_between("credits", 20, 30)
        :or_where_null("credits"):order_by("name"):get(target())))
      assert.are.same({ "ann" }, names(q():where_like("email", "an%"):get(target())))
      assert.are.same({ "ann" }, names(q():where("name", "ilike", "AN%"):get(target())))
      assert.are.equal(6, #q():where_column("id", "=", "id"):get(target()))
      assert.are.same({}, q():where_column("id", "<>", "id"):get(target()))
    end)

    it("where_raw with its own bindings, mixed with other filters", function()
      assert.are.same({ "dee" }, names(q():where("active", true)
        :where_raw("credits > ? AND team = ?", { 35, 2 }):get(target())))
      assert.are.same({ "ann", "eve" }, names(q():where_raw("credits = ?", { 10 })
        :or_where_raw("credits = ?", { 50 }):order_by("name"):get(target())))
    end)

    it("where_exists with a correlated sub-query", function()
      local posts = q("posts"):where_column("posts.user_id", "users.id"):where("posts.score", ">", 0)
      assert.are.same({ "ann", "cid" }, names(q():where_exists(posts):order_by("name"):get(target())))
      assert.are.equal(4, #q():where_not_exists(posts):get(target()))
    end)

    it("select, aliases, distinct", function()
      local rows = q():select("name as n", "credits"):where("name", "bob"):get(target())
      assert.are.same({ { n = "bob", credits = 20 } }, rows)
      local teams = q():select("team"):distinct():order_by("team"):get(target())
      assert.are.same({ { team = 1 }, { team = 2 }, { team = 3 } }, teams)
    end)

    it("join and left_join", function()
      local rows = q():select("users.name", "posts.title"):join("posts", "posts.user_id", "=", "users.id")
        :order_by("posts.title"):get(target())
      assert.are.same({ { name = "ann", title = "a1" }, { name = "ann", title = "a2" },
        { name = "cid", title = "c1" } }, rows)
      local left = q("users as u"):select("u.name", "p.title"):left_join("posts as p", "p.user_id", "u.id")
        :where("u.name", "bob"):get(target())
      assert.are.same({ { name = "bob" } }, left)
    end)

    it("group_by and having", function()
      local rows = q():select("team", "count(*) as n", "sum(credits) as total"):group_by("team")
        :having("count(*)", ">", 1):order_by("team"):get(target())
      assert.are.equal(3, #rows)
      assert.are.equal(2, tonumber(rows[1].n))
      assert.are.equal(30, tonumber(rows[1].total))
      assert.are.same({ 1, 2, 3 }, { rows[1].team, rows[2].team, rows[3].team })
    end)

    it("order_by, latest, limit, offset, offset without limit", function()
      assert.are.same({ "eve", "dee" }, names(q():where_not_null("credits"):order_by("credits", "desc")
        :limit(2):get(target())))
      assert.are.same({ "cid", "dee" }, names(q():order_by("name"):limit(2):offset(2):get(target())))
      assert.are.same({ "eve", "fay" }, names(q():order_by("name"):offset(4):get(target())))
      assert.are.same({ "fay", "eve" }, names(q():latest("id"):limit(2):get(target())))
      assert.are.same({}, q():limit(0):get(target()))
    end)

    it("first returns one row or nil, and hydrates", function()
      assert.are.equal("bob", q():order_by("name"):offset(1):first(target()).name)
      assert.is_nil(q():where("name", "zed"):first(target()))
      local mt = { __index = { hello = function(self) return "hi " .. self.name end } }
      local row = q():where("name", "cid"):first(target(), { nil, mt })
      assert.are.equal("hi cid", row:hello())
      local wrapped = q():where("name", "cid"):get(target(), { "attrs", mt })
      assert.are.equal("cid", wrapped[1].attrs.name)
      assert.are.equal(mt, getmetatable(wrapped[1]))
    end)

    it("count, sum, avg, min, max", function()
      assert.are.equal(6, q():count(target()))
      assert.are.equal("integer", math.type(q():count(target())))
      assert.are.equal(5, q():count(target(), "credits"))
      assert.are.equal(3, q():select("team"):distinct():count(target()))
      assert.are.equal(3, q():select("team"):group_by("team"):count(target()))
      assert.are.equal(2, q():limit(2):count(target()))
      assert.are.equal(150, q():sum(target(), "credits"))
      assert.are.equal(0, q():where("name", "zed"):sum(target(), "credits"))
      assert.are.equal(90, q():where_not_null("credits"):order_by("credits", "desc"):limit(2)
        :sum(target(), "users.credits"))
      assert.are.equal(30, q():avg(target(), "credits"))
      assert.are.equal(10, q():min(target(), "credits"))
      assert.are.equal("fay", q():max(target(), "name"))
      assert.is_nil(q():where("name", "zed"):max(target(), "credits"))
    end)

    it("exists", function()
      assert.is_true(q():where("name", "ann"):exists(target()))
      assert.is_false(q():where("name", "zed"):exists(target()))
    end)

    it("pluck", function()
      assert.are.same({ "ann", "bob", "cid" }, q():order_by("name"):limit(3):pluck(target(), "name"))
      local emails = q():order_by("name"):pluck(target(), "email")
      assert.are.equal(NULL, emails[6])
    end)

    it("paginate", function()
      local p = q():order_by("name"):paginate(target(), { page = 2, per_page = 4 })
      assert.are.equal(6, p.total)
      assert.are.equal(2, p.page)
      assert.are.equal(4, p.per_page)
      assert.are.equal(2, p.last_page)
      assert.are.same({ "eve", "fay" }, names(p.items))
      local empty = q():where("name", "zed"):paginate(target())
      assert.are.same({ items = {}, total = 0, page = 1, per_page = 15, last_page = 1 }, empty)
    end)

    it("chunk visits every row in order and stops when fn returns false", function()
      local seen, pages = {}, {}
      assert.is_true(q():chunk(target(), 4, function(rows, page)
        pages[#pages + 1] = page .. ":" .. #rows
        for _, r in ipairs(rows) do seen[#seen + 1] = r.name end
      end))
      assert.are.same({ "1:4", "2:2" }, pages)
      assert.are.same({ "ann", "bob", "cid", "dee", "eve", "fay" }, seen)
      local calls = 0
      assert.is_false(q():order_by("name", "desc"):chunk(target(), 2, function(rows)
        calls = calls + 1
        assert.are.same({ "fay", "eve" }, names(rows))
        return false
      end))
      assert.are.equal(1, calls)
      local limited = {}
      q():order_by("name"):limit(3):chunk(target(), 2, function(rows)
        for _, r in ipairs(rows) do limited[#limited + 1] = r.name end
      end)
      assert.are.same({ "ann", "bob", "cid" }, limited)
    end)

    it("chunk lets errors from fn through and the query stays usable", function()
      local query = q():order_by("name")
      assert.has_error(function() query:chunk(target(), 2, function() error("stop") end) end)
      assert.are.equal(6, #query:get(target()))
    end)
  end)

  describe("writes", function()
    it("insert one row and a list", function()
      local r = q():insert(target(), { name = "gus", credits = 1 })
      assert.are.equal(1, r.affected_rows)
      if drv.name ~= "postgres" then assert.is_number(r.last_insert_id) end
      r = q():insert(target(), { { name = "hal" }, { name = "ivy", credits = 2 }, { name = "jon" } })
      assert.are.equal(3, r.affected_rows)
      assert.are.same({ "hal", "ivy", "jon" }, names(q():where_in("name", { "hal", "ivy", "jon" })
        :order_by("name"):get(target())))
      assert.are.same({ r = 0 }, { r = q():insert(target(), {}).affected_rows })
    end)

    it("insert of many rows is split under the parameter limit", function()
      local rows = {}
      for i = 1, 22000 do rows[i] = { name = "bulk" .. i, credits = i, team = 9 } end
      local r = q():insert(target(), rows)
      assert.are.equal(22000, r.affected_rows)
      assert.are.equal(22000, q():where("team", 9):count(target()))
      assert.are.equal(22000 * 22001 // 2, q():where("team", 9):sum(target(), "credits"))
    end)

    it("insert_get_id returns the new key", function()
      local id = q():insert_get_id(target(), { name = "kim", credits = 3 })
      assert.are.equal("integer", math.type(id))
      assert.are.equal("kim", q():where("id", id):first(target()).name)
      local id2 = q():insert_get_id(target(), { name = "lou" }, "id")
      assert.is_true(id2 > id)
    end)

    it("update returns the affected count", function()
      assert.are.equal(2, q():where("team", 1):update(target(), { credits = 99, email = NULL }))
      assert.are.same({ 99, 99 }, q():where("team", 1):pluck(target(), "credits"))
      assert.is_nil(q():where("name", "ann"):first(target()).email)
      assert.are.equal(0, q():where_in("name", {}):update(target(), { credits = 1 }))
    end)

    it("delete returns the affected count", function()
      assert.are.equal(2, q():where("team", 2):delete(target()))
      assert.are.equal(4, q():count(target()))
      assert.are.equal(0, q():where_in("id", {}):delete(target()))
      assert.are.equal(4, q():delete(target()))
      assert.are.equal(0, q():count(target()))
    end)

    it("increment and decrement, with extra columns", function()
      assert.are.equal(1, q():where("name", "ann"):increment(target(), "credits"))
      assert.are.equal(11, q():where("name", "ann"):first(target()).credits)
      q():where("name", "ann"):increment(target(), "credits", 9, { email = "new@x" })
      local ann = q():where("name", "ann"):first(target())
      assert.are.same({ 20, "new@x" }, { ann.credits, ann.email })
      assert.are.equal(2, q():where("team", 2):decrement(target(), "credits", 5))
      assert.are.same({ 25, 35 }, q():where("team", 2):order_by("name"):pluck(target(), "credits"))
    end)

    it("upsert inserts new rows and updates existing ones", function()
      q():upsert(target(), {
        { name = "ann", email = "ann@new", credits = 11 },
        { name = "zoe", email = "zoe@x", credits = 1 },
      }, "name")
      local ann = q():where("name", "ann"):first(target())
      assert.are.same({ "ann@new", 11 }, { ann.email, ann.credits })
      assert.are.equal(1, q():where("name", "zoe"):count(target()))
      q():upsert(target(), { { name = "bob", email = "bob@new", credits = 0 } }, { "name" }, { "credits" })
      local bob = q():where("name", "bob"):first(target())
      assert.are.same({ "bob@x", 0 }, { bob.email, bob.credits })
      q():upsert(target(), { { name = "cid", email = "cid@new", credits = 0 } }, "name", {})
      assert.are.equal("cid@x", q():where("name", "cid"):first(target()).email)
      assert.are.equal(7, q():count(target()))
    end)

    it("runs on a transaction's connection and rolls back with it", function()
      assert.has_error(function()
        ds:transaction(function()
          q():insert(target(), { name = "tx1" })
          assert.are.equal(1, q():where("name", "tx1"):count(target()))
          error("undo")
        end)
      end)
      assert.are.equal(0, q():where("name", "tx1"):count(target()))
    end)
  end)

  describe("listeners", function()
    it("see each statement; compiling other queries inside one is safe", function()
      local seen, inner = {}, {}
      local running = q():where("team", 2):order_by("name")
      local stop = ds:listen(function(ev)
        seen[#seen + 1] = ev.sql
        inner[#inner + 1] = (q("posts"):where("score", ">", 100):where_in("id", { 1, 2, 3 }):to_sql())
        local ok, err = pcall(running.to_sql, running)
        inner[#inner + 1] = ok and "compiled" or err.kind
      end)
      local rows = running:get(target())
      stop()
      assert.are.same({ "cid", "dee" }, names(rows))
      assert.are.equal(1, #seen)
      assert.truthy(seen[1]:find("ORDER BY", 1, true))
      assert.are.equal('SELECT * FROM "posts" WHERE "score" > ? AND "id" IN (?, ?, ?)', inner[1])
      assert.are.equal("invalid_argument", inner[2])
      assert.are.same({ "cid", "dee" }, names(running:get(target())))
    end)
  end)

  describe("bad input", function()
    it("is refused before anything is sent", function()
      local before = ds:stats().queries
      invalid(function() q():where("name", "===", 1):get(target()) end)
      invalid(function() q():where(7, 1):get(target()) end)
      invalid(function() q():where_in("name", "ann"):get(target()) end)
      invalid(function() q():limit(2.5):get(target()) end)
      invalid(function() q():where("na\0me", 1):get(target()) end)
      invalid(function() q():insert(target(), { { name = "x" }, { name = print } }) end)
      invalid(function() q():update(target(), { ["a\0"] = 1 }) end)
      invalid(function() q():limit(1):delete(target()) end)
      invalid(function() q():upsert(target(), { { name = "x" } }) end)
      invalid(function() q():sum(target()) end)
      assert.are.equal(before, ds:stats().queries)
      assert.are.equal(6, q():count(target()))
    end)
  end)

  describe("hostile strings", function()
    local hostile = { "'; drop table x; --", "`", '"', ") or (1=1", "' OR '1'='1", "\\'", "?" }

    it("as values are stored and matched as plain data", function()
      for i, h in ipairs(hostile) do
        q():insert(target(), { name = h, email = h, team = 100 + i })
        assert.are.equal(h, q():where("name", h):first(target()).email)
        assert.are.same({ h }, q():where_in("name", { h }):pluck(target(), "name"))
        assert.are.same({ h }, q():where_raw("name = ?", { h }):pluck(target(), "email"))
        assert.are.equal(1, q():where("name", h):update(target(), { email = h .. h }))
      end
      assert.are.equal(0, q():where("name", ") or (1=1"):where("name", "ann"):count(target()))
      assert.are.equal(6 + #hostile, q():count(target()))
      assert.are.equal(0, q("x"):count(target()))
    end)

    it("as identifiers never reach the database unquoted", function()
      for _, h in ipairs(hostile) do
        pcall(function() q():where(h, 1):get(target()) end)
        pcall(function() q():select(h):order_by(h):get(target()) end)
        pcall(function() q(h):get(target()) end)
        pcall(function() q():update(target(), { [h] = 1 }) end)
      end
      assert.are.equal(0, q("x"):count(target()))
      assert.are.equal(6, q():count(target()))
    end)
  end)
end)

describe("insert of many rows with a listener", function()
  it("reads each row after the previous batch (and its listeners) has run", function()
    local orm = require("ormed")
    local ds = orm.DataSource({ name = "batch_listener", driver = orm.SqliteDriverAdapter.memory() }):init()
    ds:schema():create_table("wide", function(t) t:string("a", 100); t:string("b", 100) end)
    local per = require("ormed.core").dialect("sqlite").insert_batch // 2 -- rows per statement, two columns
    local rows = {}
    for i = 1, per + 1 do
      rows[i] = { a = ("a"):rep(50) .. i, b = ("b"):rep(50) .. i } -- long strings: owned by the row only
    end
    local batches = 0
    ds:listen(function(ev)
      if not ev.sql:find("^INSERT") then return end
      batches = batches + 1
      -- a listener changes the row of the next batch and frees its old strings
      rows[per + 1].a = "changed"
      rows[per + 1].b = "changed too"
      collectgarbage()
      collectgarbage()
    end)
    ds:table("wide"):insert(rows)
    assert.are.equal(2, batches)
    assert.are.equal(per + 1, ds:table("wide"):count())
    local last = ds:table("wide"):where("b", "changed too"):first()
    assert.are.equal("changed", last and last.a)
    ds:dispose()
  end)
end)
