-- The query objects of both front ends are C query userdata (a plain
-- query of class Query, a model query of its model's class) and Model:find
-- remembers its route: what users rely on still holds, on every driver.
-- Model:find with a key that is not an integer field (a string key, a
-- model without fields) finds through a query instead of looping; a read
-- given a table that is not a hydration table raises instead of setting a
-- wrong metatable on every row; a model query's view of a group (what a
-- group function of a model with converted filters gets) clones, runs and
-- is collected like a query; a query method called with '.', a value that
-- is not a query or a list, and a sub-query on another data source raise
-- orm.Error; a query closes as a to-be-closed variable.
local orm = require("ormed")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, Item, Code

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "qo_items", { { "id", "id" }, { "grp", "integer" }, { "name", "string" },
      { "at", "datetime" } })
    drv:create_table(ds, "qo_codes", { { "code", "string", "NOT NULL UNIQUE" }, { "name", "string" } })
    -- a datetime field: the model's filters convert values, so its group
    -- functions get a view of the group
    Item = orm.model("QoItem" .. drv.name, { table = "qo_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string", at = "datetime" } })
    Code = orm.model("QoCode" .. drv.name, { table = "qo_codes", connection = ds.name,
      primary_key = "code", fields = { code = "string", name = "string" } })
    ds:table("qo_items"):insert({ { grp = 1, name = "a" }, { grp = 1, name = "b" }, { grp = 2, name = "c" } })
    ds:table("qo_codes"):insert({ { code = "k1", name = "one" }, { code = "k2", name = "two" } })
  end)

  teardown(function()
    drv:drop_table(ds, "qo_items")
    drv:drop_table(ds, "qo_codes")
    ds:dispose()
  end)

  it("Model:find by a string key finds the row, also once the route is remembered", function()
    assert.are.equal("one", Code:find("k1").name)
    assert.are.equal("two", Code:find("k2").name)
    assert.is_nil(Code:find("nope"))
    assert.is_nil(Code:find(nil))
    assert.are.equal("one", Code:find("k1").name)
  end)

  it("Model:find on a model whose key is no integer field takes a float that is an integer", function()
    local Loose = orm.model("QoLoose" .. drv.name, { table = "qo_items", connection = ds.name,
      fields = { name = "string" } })
    assert.are.equal("a", Loose:find(1).name)
    assert.are.equal("b", Loose:find(2.0).name)
    assert.is_nil(Loose:find(99.0))
    assert.are.equal("a", Loose:find(1).name)
  end)

  it("a read given a table that is not a hydration table raises invalid_argument", function()
    local q = ds:table("qo_items"):order_by("id")
    for _, call in ipairs({
      function() return q:get({ "id", "name" }) end,
      function() return q:first({ "id" }) end,
      function() return q:chunk(2, function() end, { 1, {} }) end,
      function() return q:paginate({ page = 1, per_page = 2 }, { "x", "y" }) end,
    }) do
      local err = helper.error_of(call)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("hydration table", err.message)
    end
    assert.are.same({ "a", "b", "c" }, q:pluck("name")) -- the query is not left running
    local mt = { __index = { hi = function(r) return "hi " .. r.name end } }
    assert.are.equal("hi a", q:first({ nil, mt }):hi())
  end)

  it("clone() in a group function of a model query gives a model query on the group", function()
    local copy, names
    local rows = Item:where(function(g)
      g:where("grp", 1)
      copy = g:clone():where("name", "b")
    end):order_by("name"):pluck("name")
    assert.are.same({ "a", "b" }, rows) -- the copy's filter stays in the copy
    names = copy:pluck("name")
    assert.are.same({ "b" }, names)
    assert.are.equal("qo_items", copy:table_ref())
    assert.are.equal(Item, copy._model)
  end)

  it("a read in a group function runs the group's query, which stays usable", function()
    local n, first
    local q = Item:where(function(g)
      g:where("grp", 1)
      n = g:count()
      first = g:order_by("name"):first()
    end)
    assert.are.equal(2, n)
    assert.are.equal("a", first.name)
    assert.are.equal(2, q:count())
    assert.are.equal(2, #q:get())
  end)

  it("a view of a group is a valid sub-query, and its finalizer and __close leave it alone", function()
    local view, n
    Item:where(function(g)
      view = g
      g:where("grp", 2)
      n = ds:table("qo_items"):where_in("id", g:clone():select("id")):count()
    end)
    assert.are.equal(1, n)
    assert.is_table(view)
    local mt = getmetatable(view)
    assert.is_true(pcall(mt.__gc, view))
    assert.is_true(pcall(mt.__close, view))
  end)

  it("a query method called with '.' raises invalid_argument, not a Lua error", function()
    local q = ds:table("qo_items")
    local err = helper.error_of(function() return q.where("name", "a") end)
    assert.are.equal("invalid_argument", err.kind)
    assert.matches("':'", err.message)
    err = helper.error_of(function() return Code:query().where_in("code", { "k1" }) end)
    assert.are.equal("invalid_argument", err.kind)
  end)

  it("orm.null or another userdata given as a list or a sub-query raises invalid_argument", function()
    for _, v in ipairs({ orm.null, io.stdout }) do
      for _, call in ipairs({
        function() return ds:table("qo_items"):where_in("id", v):get() end,
        function() return ds:table("qo_items"):where_not_exists(v):get() end,
        function() return Item:where_in("id", v):get() end,
        function() return Item:where_exists(v):get() end,
        function() return Code:or_where_not_in("code", v):get() end,
      }) do
        assert.are.equal("invalid_argument", helper.error_of(call).kind)
      end
    end
  end)

  it("a sub-query on another data source is refused by either front end", function()
    local other = drv:data_source()
    local calls = {
      function() return ds:table("qo_items"):where_in("id", Item:query({ connection = other }):select("id")) end,
      function() return Item:where_in("id", other:table("qo_items"):select("id")) end,
      function() return Code:where_in("code", Code:query({ connection = other }):select("code")) end,
      function() return Item:where_not_in("id", Item:query({ connection = other }):select("id")) end,
      function() return Item:where_exists(other:table("qo_items")) end,
      function() return ds:table("qo_items"):or_where_exists(Item:query({ connection = other })) end,
    }
    for i, call in ipairs(calls) do
      local err = helper.error_of(call)
      assert.are.equal("invalid_argument", err.kind, "call " .. i)
      assert.matches(other.name, err.message)
    end
    other:dispose()
    -- on the same data source, each front end in the other
    assert.are.same({ "c" }, Item:where_in("id", ds:table("qo_items"):select("id"):where("grp", 2))
      :pluck("name"))
    assert.are.equal(2, ds:table("qo_items"):where_in("id", Item:select("id"):where("grp", 1)):count())
  end)

  it("a model whose connection is a data source follows its dispose and init", function()
    local own = drv:data_source()
    drv:create_table(own, "qo_own", { { "id", "id" }, { "name", "string" } })
    own:table("qo_own"):insert({ name = "x" })
    local Own = orm.model("QoOwn" .. drv.name, { table = "qo_own", connection = own,
      fields = { id = "integer", name = "string" } })
    assert.are.equal("x", Own:find(1).name)
    assert.are.equal("x", Own:find(1).name) -- the remembered route
    own:dispose()
    assert.are.equal("not_initialized", helper.error_of(function() return Own:find(1) end).kind)
    own:init()
    assert.are.equal("x", Own:find(1).name)
    drv:drop_table(own, "qo_own")
    own:dispose()
  end)

  it("find in a coroutine the transaction resumes reads through it, after a remembered route", function()
    assert.are.equal("a", Item:find(1).name)
    assert.are.equal("a", Item:find(1).name)
    local ok = pcall(ds.transaction, ds, function()
      ds:table("qo_items"):where("id", 1):update({ name = "in tx" })
      local co = coroutine.wrap(function() return Item:find(1).name end)
      assert.are.equal("in tx", co())
      error("roll back")
    end)
    assert.is_false(ok)
    assert.are.equal("a", Item:find(1).name)
  end)

  it("a model query with a global scope pages, chunks, inserts and finds through a waiter", function()
    local socket = require("socket")
    local Scoped = orm.model("QoScoped" .. drv.name, { table = "qo_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string", at = "datetime" } })
    Scoped:add_global_scope("grp1", function(q) q:where("grp", 1) end)
    local calls = 0
    orm.set_waiter(function(fd, mode, timeout) -- blocks: a host without a loop
      calls = calls + 1
      if fd == nil then return socket.sleep(timeout or 0) end
      local o = { getfd = function() return fd end, dirty = function() return false end }
      socket.select(mode:find("r", 1, true) and { o } or {}, mode:find("w", 1, true) and { o } or {},
        timeout or 5)
    end)
    local ok, err = pcall(coroutine.wrap(function()
      local page = Scoped:order_by("name"):paginate({ page = 2, per_page = 1 })
      assert.are.equal(2, page.total)
      assert.are.equal("b", page.items[1].name)
      for _, method in ipairs({ "chunk", "chunk_by_id" }) do
        local seen = {}
        local q = Scoped:where(function(g) g:where("at", nil) end)
        q[method](q, 1, function(rows, n) seen[#seen + 1] = n .. rows[1].name end)
        assert.are.same({ "1a", "2b" }, seen, method)
      end
      Scoped:query():insert({ { grp = 1, name = "w1" }, { grp = 2, name = "w2" } })
      assert.are.equal(3, Scoped:count())
      assert.are.equal(2, Scoped:where_in("name", { "w1", "w2" }):without_global_scope("grp1"):delete())
      assert.are.equal("a", Scoped:find(1).name)
      assert.is_nil(Scoped:find(3)) -- grp 2: the scope holds
    end))
    orm.set_waiter(nil)
    assert(ok, err)
    if drv.name ~= "sqlite" then assert.is_true(calls > 0) end
  end)

  it("a sub-query whose scope yields (a query through a waiter) works in a coroutine", function()
    local Yielding = orm.model("QoYield" .. drv.name, { table = "qo_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" } })
    local ran = 0
    Yielding:add_global_scope("grp1", function(q)
      ran = ran + ds:table("qo_items"):where("grp", 2):count()
      coroutine.yield("scope") -- a host loop's turn, as a waiter gives it
      q:where("grp", 1)
    end)
    for _, method in ipairs({ "where_in", "or_where_in", "where_not_in", "or_where_not_in" }) do
      local co = coroutine.wrap(function()
        local q = ds:table("qo_items")
        if method:find("^or_") then q:where("id", 0) end
        return q[method](q, "id", Yielding:select("id")):order_by("name"):pluck("name")
      end)
      assert.are.equal("scope", co())
      local names = co()
      assert.are.same(method:find("not", 1, true) and { "c" } or { "a", "b" }, names, method)
    end
    assert.are.equal(4, ran)
  end)

  it("a clone keeps with(), lifted scopes and the alias, and each copy changes alone", function()
    local name = "QoNode" .. drv.name
    local Node = orm.model(name, { table = "qo_items", connection = ds.name,
      fields = { id = "integer", grp = "integer", name = "string" },
      relations = { parent = orm.belongs_to(name, { foreign_key = "grp" }) } })
    local q = Node:where("grp", 1):order_by("id")
    local c = q:clone():with("parent")
    assert.is_nil(rawget(q:get()[1], "parent")) -- not loaded: the original has no with()
    assert.are.equal("a", rawget(c:get()[2], "parent").name)
    local cc = c:clone():where("name", "b")
    assert.are.equal("a", rawget(cc:first(), "parent").name)
    assert.are.equal(2, #c:get()) -- the copy's filter stays in the copy
    Node:add_global_scope("grp2", function(g) g:where("grp", 2) end)
    local base = Node:query()
    local all = base:clone():without_global_scope("grp2")
    assert.are.equal(1, base:count())
    assert.are.equal(3, all:count())
    local again = all:clone():where("grp", 1)
    assert.are.equal(2, again:count())
    assert.are.equal(3, all:count())
    local aliased = Node:_query_on(ds, "n2"):without_global_scopes():where("n2.grp", 1)
    local ac = aliased:clone()
    assert.are.equal("n2", ac:table_ref())
    assert.are.equal(2, ac:count())
    assert.are.equal(1, ac:where("n2.name", "a"):count())
    assert.are.equal(2, aliased:count())
  end)

  it("tostring gives a plain query's table and a model query's SQL", function()
    local q = ds:table("qo_items"):where("grp", 1)
    assert.are.equal("ormed.query (qo_items)", tostring(q))
    local s = tostring(Item:where("grp", 1))
    assert.matches("^ormed.ModelQuery%(QoItem" .. drv.name .. "%): SELECT ", s)
    assert.matches("qo_items", s)
  end)

  it("a query is a to-be-closed value; once closed it raises invalid_argument", function()
    local plain, model
    do
      local q <close> = ds:table("qo_items")
      local m <close> = Item:query()
      plain, model = q, m
      assert.are.equal(3, q:count())
      assert.are.equal(3, m:count())
    end
    assert.matches("closed", tostring(plain))
    assert.matches("^ormed.ModelQuery%(QoItem" .. drv.name .. "%): %(no SQL: query is closed%)$", tostring(model))
    assert.are.equal("invalid_argument", helper.error_of(function() return plain:count() end).kind)
    assert.are.equal("invalid_argument", helper.error_of(function() return model:count() end).kind)
  end)
end)
