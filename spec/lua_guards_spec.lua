-- The Lua layer's answers to the hostile round (spec/hostile_round_spec.lua),
-- beyond what that file asserts: find on a clone, sub-queries tied to their
-- data source, paginate and a query's own limit/offset, callbacks and
-- argument types checked, pool options validated, dates that exist, integer
-- keys, stored values a cast cannot read, string foreign keys, and
-- coroutine.close inside a transaction.
local helper = require("spec.helper")
local orm = require("ormed")

local function kind_of(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return "no error" end
  if type(err) ~= "table" then return "raw: " .. tostring(err) end
  return err.kind
end

helper.each_driver(function(drv)
  local ds, Row, Ref

  setup(function()
    ds = drv:data_source(nil, { max = 2, acquire_timeout = 2 })
    drv:create_table(ds, "lg_rows", { { "id", "id" }, { "name", "string" }, { "ref", "string" },
      { "day", "date" } })
    Row = orm.model("LgRow" .. drv.name, { table = "lg_rows", connection = ds.name,
      fields = { id = "integer", name = "string", ref = "string", day = "date" },
      relations = { refs = orm.has_many("LgRef" .. drv.name, { foreign_key = "ref" }) } })
    Ref = orm.model("LgRef" .. drv.name, { table = "lg_rows", connection = ds.name,
      fields = { id = "integer", name = "string", ref = "string" },
      relations = { owner = orm.belongs_to("LgRow" .. drv.name, { foreign_key = "ref" }) } })
  end)

  teardown(function()
    drv:drop_table(ds, "lg_rows")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM lg_rows")
    local rows = {}
    for i = 1, 6 do rows[i] = { name = "r" .. i } end
    ds:table("lg_rows"):insert(rows)
  end)

  local function ids()
    return ds:table("lg_rows"):order_by("id"):pluck("id")
  end

  describe("find", function()
    it("find_or_fail leaves its query unchanged and still raises model_not_found", function()
      local q = Row:query():where("name", "like", "r%")
      local id = ids()[2]
      assert.are.equal(id, q:find_or_fail(id).id)
      assert.are.equal("model_not_found", kind_of(q.find_or_fail, q, -1))
      assert.are.equal(6, q:count())
      local pq = ds:table("lg_rows"):where("name", "like", "r%")
      assert.are.equal(id, pq:find(id).id)
      assert.are.equal(6, pq:count())
    end)

    it("under an integer key: a decimal string finds its row, any other string nothing", function()
      local id = ids()[1]
      assert.are.equal(id, Row:find(tostring(id)).id)
      assert.are.equal(id, Row:query():find(tostring(id)).id)
      assert.is_nil(Row:find(tostring(id) .. "abc"))
      assert.is_nil(Row:find(id + 0.5))
      assert.is_nil(Row:query():find(tostring(id) .. " OR 1=1"))
      assert.are.equal("model_not_found", kind_of(Row.find_or_fail, Row, tostring(id) .. "x"))
      assert.are.equal(0, Row:destroy({ tostring(id) .. "x", "1 OR 1=1" }))
      assert.are.equal(1, Row:destroy({ tostring(id), "nope" }))
      assert.are.equal(5, ds:table("lg_rows"):count())
    end)
  end)

  describe("sub-queries", function()
    local other
    setup(function()
      other = orm.DataSource({ name = "lg_other_" .. drv.name,
        driver = orm.SqliteDriverAdapter.memory() }):init()
      other:schema():create_table("lg_rows", function(t)
        t:id()
        t:string("name"):nullable()
        t:string("ref"):nullable()
      end)
    end)
    teardown(function() other:dispose() end)

    it("from the same data source run; from another one raise invalid_argument naming both", function()
      assert.are.equal(6, ds:table("lg_rows"):where_in("id", ds:table("lg_rows"):select("id")):count())
      assert.are.equal(6, Row:query():where_in("id", Row:query():select("id")):count())
      local OtherRow = orm.model("LgOther" .. drv.name, { table = "lg_rows", connection = other.name,
        fields = { id = "integer", name = "string" } })
      local subs = {
        function() return other:table("lg_rows"):select("id") end,
        function() return OtherRow:query():select("id") end,
      }
      for _, sub in ipairs(subs) do
        for _, m in ipairs({ "where_in", "where_not_in", "or_where_in", "or_where_not_in" }) do
          local err = helper.error_of(function() ds:table("lg_rows")[m](ds:table("lg_rows"), "id", sub()) end)
          assert.are.equal("invalid_argument", err.kind, tostring(err))
          assert.truthy(err.message:find(other.name, 1, true), err.message)
          assert.truthy(err.message:find(ds.name, 1, true), err.message)
          local q = Row:query()
          assert.are.equal("invalid_argument", kind_of(q[m], q, "id", sub()))
        end
        for _, m in ipairs({ "where_exists", "where_not_exists", "or_where_exists", "or_where_not_exists" }) do
          local q, mq = ds:table("lg_rows"), Row:query()
          assert.are.equal("invalid_argument", kind_of(q[m], q, sub()))
          assert.are.equal("invalid_argument", kind_of(mq[m], mq, sub()))
        end
      end
    end)
  end)

  describe("paginate", function()
    it("refuses a query's own limit or offset on plain and model queries; offset(0) is none", function()
      for _, q in ipairs({ ds:table("lg_rows"):limit(2), ds:table("lg_rows"):offset(1),
        Row:query():limit(2), Row:query():offset(3) }) do
        assert.are.equal("invalid_argument", kind_of(q.paginate, q, { page = 1, per_page = 2 }))
      end
      assert.are.equal(6, ds:table("lg_rows"):offset(0):paginate({ page = 1, per_page = 4 }).total)
      assert.are.equal(6, Row:query():limit(2):limit(nil):paginate({ page = 2, per_page = 4 }).total)
      local page = Row:query():order_by("id"):paginate({ page = 2, per_page = 4 })
      assert.are.equal(2, #page.items)
    end)
  end)

  describe("callbacks and argument types", function()
    it("chunk and chunk_by_id without a function raise invalid_argument", function()
      for _, q in ipairs({ ds:table("lg_rows"), Row:query() }) do
        assert.are.equal("invalid_argument", kind_of(q.chunk, q, 2))
        assert.are.equal("invalid_argument", kind_of(q.chunk_by_id, q, 2, "nope"))
      end
      local seen = 0
      ds:table("lg_rows"):chunk_by_id(4, function(rows) seen = seen + #rows end)
      assert.are.equal(6, seen)
    end)

    it("select, execute and orm.blob check their arguments", function()
      assert.are.equal("invalid_argument", kind_of(ds.select, ds, "SELECT 1", 5))
      assert.are.equal("invalid_argument", kind_of(ds.execute, ds, 42))
      assert.are.equal("invalid_argument", kind_of(orm.blob, nil))
      assert.are.equal(1, #ds:select("SELECT 1 AS one"))
    end)
  end)

  describe("pool options", function()
    it("are refused when unknown or out of range, wherever they are given", function()
      local bad = { { maximum = 3 }, { min = 3, max = 2 }, { min = 1.5 }, { max = 100001 },
        { idle_timeout = -1 }, { health_check = 1 / 0 }, { leak_timeout = 0 }, { max = "2" } }
      for _, pool in ipairs(bad) do
        assert.are.equal("invalid_argument", kind_of(drv.data_source, drv, nil, pool))
        assert.are.equal("invalid_argument", kind_of(orm.TenantManager,
          { driver = function() return drv.adapter() end, pool = pool }))
        assert.are.equal("invalid_argument", kind_of(orm.ConnectionConfig,
          { name = "lg_cfg", pool = pool }))
        assert.are.equal("invalid_argument", kind_of(orm.OrmConnection,
          { name = "lg_oc", driver = drv.adapter(), pool = pool }))
      end
      local ok = drv:data_source(nil, { max = 3.0, min = 0, idle_timeout = 0, max_lifetime = 0.5,
        leak_timeout = 30 })
      assert.are.equal(3, ok.pool_options.max)
      assert.are.equal("integer", math.type(ok.pool_options.max))
      ok:dispose()
    end)
  end)

  describe("dates", function()
    it("refuse days, months and times that do not exist; leap days are kept", function()
      for _, d in ipairs({ "2023-02-29", "2024-04-31", "2024-00-10", "2024-01-00" }) do
        assert.are.equal("invalid_argument", kind_of(Row.create, Row, { day = d }), d)
      end
      local leap = Row:create({ day = "2024-02-29" })
      assert.are.equal("2024-02-29", Row:find(leap.id).day)
      local Stamp = orm.model("LgStamp" .. drv.name, { table = "lg_rows", connection = ds.name,
        fields = { id = "integer", day = "datetime" } })
      for _, t in ipairs({ "2024-01-01T24:00:00Z", "2024-01-01T10:60:00Z", "2024-01-01 10:00:60",
        "2100-02-29T00:00:00Z" }) do
        assert.are.equal("invalid_argument", kind_of(function() Stamp:new().day = t end), t)
      end
      local s = Stamp:new()
      s.day = "2000-02-29 23:59:59"
      assert.are.equal("2000-02-29T23:59:59Z", s.day)
    end)
  end)

  describe("stored values a cast cannot read", function()
    it("come back as stored; the usual forms are still cast", function()
      ds:table("lg_rows"):insert({ { name = "n1", ref = "12.5" }, { name = "n2", ref = "no" },
        { name = "n3", ref = "abc" }, { name = "n4", ref = "maybe" }, { name = "n5", ref = "7" } })
      local Cast = orm.model("LgCast" .. drv.name, { table = "lg_rows", connection = ds.name,
        fields = { id = "integer", name = "string", ref = "number" } })
      local Flag = orm.model("LgFlag" .. drv.name, { table = "lg_rows", connection = ds.name,
        fields = { id = "integer", name = "string", ref = "boolean" } })
      local function read(M, name) return M:query():where("name", name):first().ref end
      assert.are.equal(12.5, read(Cast, "n1"))
      assert.are.equal("abc", read(Cast, "n3"))
      assert.are.equal(7, read(Cast, "n5"))
      assert.are.equal(false, read(Flag, "n2"))
      assert.are.equal("maybe", read(Flag, "n4"))
      assert.are.same({ 12.5, "abc" }, Cast:query():where_in("name", { "n1", "n3" }):order_by("name"):pluck("ref"))
    end)
  end)

  describe("a boolean field loaded as false", function()
    it("has false as its original value, and assigning false again changes nothing", function()
      local Flag = orm.model("LgBool" .. drv.name, { table = "lg_rows", connection = ds.name,
        fields = { id = "integer", name = "string", ref = "boolean" } })
      ds:table("lg_rows"):where("name", "r1"):update({ ref = "0" })
      local f = Flag:query():where("name", "r1"):first()
      assert.are.equal(false, f.ref)
      assert.are.equal(false, f:get_original("ref"))
      f.ref = false
      assert.is_false(f:is_dirty("ref"))
      f.ref = true
      assert.is_true(f:is_dirty("ref"))
    end)
  end)

  describe("string foreign keys", function()
    it("match integer keys in with(), lazy loads, with_count and belongs_to", function()
      local list = ids()
      ds:table("lg_rows"):where("id", list[2]):update({ ref = tostring(list[1]) })
      ds:table("lg_rows"):where("id", list[3]):update({ ref = tostring(list[1]) })
      ds:table("lg_rows"):where("id", list[4]):update({ ref = "0" .. tostring(list[1]) })
      local first = Row:query():with("refs"):with_count("refs"):where("id", list[1]):first()
      assert.are.equal(2, #first.refs)
      assert.are.equal(2, first.refs_count)
      assert.are.equal(2, #Row:find(list[1]).refs)
      local child = Ref:query():with("owner"):where("id", list[2]):first()
      assert.are.equal(list[1], child.owner.id)
    end)
  end)

  describe("coroutine.close inside a transaction", function()
    it("rolls a nested level back to its savepoint and keeps the outer one", function()
      ds:transaction(function()
        ds:table("lg_rows"):insert({ name = "outer" })
        local co = coroutine.create(function()
          ds:transaction(function()
            ds:table("lg_rows"):insert({ name = "inner" })
            coroutine.yield()
          end)
        end)
        assert.is_true((coroutine.resume(co)))
        assert.is_true((coroutine.close(co)))
        ds:table("lg_rows"):insert({ name = "after" })
      end)
      assert.are.same({ "after", "outer" },
        ds:table("lg_rows"):where_in("name", { "outer", "inner", "after" }):order_by("name"):pluck("name"))
      assert.are.equal(0, ds:stats().in_use)
    end)

    it("rolls the whole transaction back and frees the connection; the data source works on", function()
      local co = coroutine.create(function()
        ds:transaction(function()
          ds:table("lg_rows"):insert({ name = "gone" })
          ds:transaction(function()
            ds:table("lg_rows"):insert({ name = "gone too" })
            coroutine.yield()
          end)
        end)
      end)
      assert.is_true((coroutine.resume(co)))
      assert.are.equal(1, ds:stats().in_use)
      assert.is_true((coroutine.close(co)))
      assert.are.equal(0, ds:stats().in_use)
      assert.is_false(ds:in_transaction())
      assert.are.equal(0, ds:table("lg_rows"):where_in("name", { "gone", "gone too" }):count())
      ds:transaction(function() ds:table("lg_rows"):insert({ name = "next" }) end)
      assert.are.equal(1, ds:table("lg_rows"):where("name", "next"):count())
    end)
  end)
end)
