-- spec/model_scopes_spec.lua: local scopes, global scopes (declared on the
-- model, added later, or registered on a data source's scope registry, as
-- in the tenant-column pattern) and how they are lifted, and soft deletes,
-- on every driver.
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  describe("scopes", function()
    local ds, Post, Note

    setup(function()
      ds = drv:data_source()
      orm.ConnectionManager.instance:set_default_connection(ds.name)
      drv:create_table(ds, "posts", { { "id", "id" }, { "tenant_id", "string" }, { "title", "string" },
        { "votes", "integer" }, { "active", "boolean" }, { "hidden", "boolean" },
        { "deleted_at", "datetime" } })
      drv:create_table(ds, "notes", { { "id", "id" }, { "body", "string" }, { "removed_at", "datetime" } })
    end)

    teardown(function()
      drv:drop_table(ds, "posts")
      drv:drop_table(ds, "notes")
      ds:dispose()
    end)

    before_each(function()
      ds:table("posts"):delete()
      ds:table("notes"):delete()
      Post = orm.model("Post", {
        fields = { id = "integer", tenant_id = "string", title = "string", votes = "integer",
          active = "boolean", hidden = "boolean" },
        soft_deletes = true,
        scopes = {
          active = function(q) return q:where("active", true) end,
          popular = function(q, min) q:where("votes", ">=", min or 10) end,
        },
      })
      Note = orm.model("Note", { fields = { body = "string" }, soft_deletes = "removed_at" })
    end)

    local function seed()
      local rows = {
        { tenant_id = "t1", title = "a", votes = 1, active = true, hidden = false },
        { tenant_id = "t1", title = "b", votes = 20, active = false, hidden = false },
        { tenant_id = "t2", title = "c", votes = 30, active = true, hidden = true },
        { tenant_id = "t2", title = "d", votes = 5, active = true, hidden = false },
      }
      local out = {}
      for i, r in ipairs(rows) do out[i] = Post:create(r) end
      return out
    end

    local function titles(list)
      local t = {}
      for i, p in ipairs(list) do t[i] = p.title end
      table.sort(t)
      return t
    end

    it("applies local scopes as methods and through scope()", function()
      seed()
      assert.are.same({ "a", "c", "d" }, titles(Post:query():active():get()))
      assert.are.same({ "a", "c", "d" }, titles(Post:query():scope("active"):get()))
      assert.are.same({ "c" }, titles(Post:active():popular():get()))
      assert.are.same({ "c", "d" }, titles(Post:query():active():scope("popular", 5):get()))
      assert.are.same({ "b", "c" }, titles(Post:popular(20):get()))
      local err = helper.error_of(function() Post:query():scope("nope") end)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("active, popular", err.message)
    end)

    it("lets local scopes be used inside where groups", function()
      seed()
      local list = Post:query():where(function(q) q:popular(25):or_where("title", "a") end):get()
      assert.are.same({ "a", "c" }, titles(list))
    end)

    it("applies the model's global scopes until lifted", function()
      local Visible = orm.model("Post", {
        fields = { hidden = "boolean" },
        global_scopes = { visible = function(q) q:where("hidden", false) end },
      })
      seed()
      assert.are.equal(3, Visible:count())
      assert.are.equal(4, Visible:query():without_global_scope("visible"):count())
      Visible:add_global_scope("t1", function(q) q:where("tenant_id", "t1") end)
      assert.are.same({ "a", "b" }, titles(Visible:all()))
      assert.are.same({ "a", "b", "c", "d" }, titles(Visible:query():without_global_scopes():get()))
      assert.are.same({ "a", "b", "d" }, titles(Visible:query():without_global_scope("t1"):get()))
    end)

    describe("registered on the data source", function()
      local current, id

      before_each(function()
        current = "t1"
        id = ds.context.scope_registry:register_scope(Post, function(q)
          q:where_equals("tenant_id", current)
        end, "tenant")
      end)

      after_each(function()
        ds.context.scope_registry:remove_scope(Post, "tenant")
      end)

      it("filters every query of the model through that data source", function()
        assert.are.equal("tenant", id)
        local posts = seed()
        assert.are.same({ "a", "b" }, titles(Post:query():get()))
        assert.are.same({ "a", "b" }, titles(ds:query(Post):get()))
        local sql = Post:query():to_sql()
        assert.matches("tenant_id", sql)
        current = "t2"
        assert.are.same({ "c", "d" }, titles(Post:all()))
        assert.are.equal(2, Post:count())
        -- find(id) too, even for a row of another tenant
        assert.is_nil(Post:find(posts[1].id))
        assert.are.equal("c", Post:find(posts[3].id).title)
        assert.are.same({ "a", "b", "c", "d" }, titles(Post:query():without_global_scope("tenant"):get()))
      end)

      it("keeps an or_where of the query inside the tenant filter", function()
        seed()
        -- (title = c OR title = a) AND tenant, not title = c OR (title = a AND tenant)
        local list = Post:where("title", "c"):or_where("title", "a"):get()
        assert.are.same({ "a" }, titles(list))
        list = Post:where("title", "c"):or_where("title", "a"):without_global_scope("tenant"):get()
        assert.are.same({ "a", "c" }, titles(list))
        assert.are.equal(1, Post:where("votes", ">", 25):or_where("votes", "<", 2):count())
        -- and for a model without global scopes of its own, when the scope
        -- is registered after the query was started
        local Plain = orm.model("PlainPost", { table = "posts" })
        local q = Plain:where("title", "c"):or_where("title", "a")
        ds.context.scope_registry:register_scope(Plain, function(sq)
          sq:where_equals("tenant_id", current)
        end, "tenant")
        assert.are.same({ "a" }, titles(q:get()))
      end)

      it("applies to writes through queries", function()
        seed()
        assert.are.equal(2, Post:query():update({ votes = 0 }))
        assert.are.equal(0, Post:query():without_global_scope("tenant"):where("tenant_id", "t2")
          :where("votes", 0):count())
        assert.are.equal(2, Post:query():delete())
        assert.are.equal(2, Post:query():without_global_scope("tenant"):count())
      end)

      it("does not apply through another data source", function()
        local other = drv:data_source()
        assert.is_nil(Post:query({ connection = other }):to_sql():find("tenant_id", 1, true))
        assert.is_not_nil(Post:query({ connection = ds }):to_sql():find("tenant_id", 1, true))
        other:dispose()
      end)
    end)

    it("soft-deletes instances and hides them", function()
      local posts = seed()
      assert.is_true(posts[1]:delete())
      assert.is_true(posts[1]:trashed())
      assert.is_string(posts[1].deleted_at)
      assert.is_nil(Post:find(posts[1].id))
      assert.are.equal(3, Post:count())
      assert.are.equal(4, Post:with_trashed():count())
      assert.are.same({ "a" }, titles(Post:only_trashed():get()))
      local trashed = Post:with_trashed():find(posts[1].id)
      assert.is_true(trashed:trashed())
      assert.are.equal(1, ds:table("posts"):where("id", posts[1].id):count())
    end)

    it("restores soft-deleted instances and queries", function()
      local posts = seed()
      posts[1]:delete()
      assert.is_true(posts[1]:restore())
      assert.is_false(posts[1]:trashed())
      assert.are.equal("a", Post:find(posts[1].id).title)
      assert.are.equal(3, Post:where("active", true):delete())
      assert.are.equal(1, Post:count())
      assert.are.equal(2, Post:where("votes", ">=", 5):restore())
      assert.are.same({ "b", "c", "d" }, titles(Post:all()))
    end)

    it("force-deletes rows", function()
      local posts = seed()
      assert.is_true(posts[2]:force_delete())
      assert.are.equal(0, ds:table("posts"):where("id", posts[2].id):count())
      posts[3]:delete()
      assert.are.equal(1, Post:only_trashed():force_delete())
      assert.are.equal(2, ds:table("posts"):count())
    end)

    it("uses a custom soft delete column", function()
      local n = Note:create({ body = "x" })
      n:delete()
      assert.is_string(ds:table("notes"):first().removed_at)
      assert.are.equal(0, Note:count())
      assert.are.equal(1, Note:with_trashed():count())
      local err = helper.error_of(function()
        orm.model("Plain", { table = "notes" }):query():with_trashed()
      end)
      assert.are.equal("invalid_argument", err.kind)
    end)
  end)
end)
