-- spec/model_relations_spec.lua: has_one, has_many, belongs_to and
-- belongs_to_many; eager loading with one query per relation level
-- (statements counted through the data source's listener), batching of IN
-- lists, constraints, with_count, where_has, lazy and explicit loading,
-- and the pivot writes attach / detach / sync, on every driver.
local helper = require("spec.helper")
local orm = require("ormed")
local relations = require("ormed.relations")

helper.each_driver(function(drv)
  describe("relations", function()
    local ds, User, Post, Comment, Profile, Role, Team

    local function define()
      -- Declared before the models they name: resolved by name later.
      Post = orm.model("Post", {
        fields = { id = "integer", user_id = "integer", title = "string", published = "boolean" },
        soft_deletes = true,
        relations = { author = orm.belongs_to("User", { foreign_key = "user_id" }),
          comments = orm.has_many("Comment") },
      })
      Comment = orm.model("Comment", { fields = { post_id = "integer", body = "string" },
        relations = { post = orm.belongs_to("Post") } })
      User = orm.model("User", {
        fields = { id = "integer", name = "string", team_id = "integer" },
        relations = {
          posts = orm.has_many("Post", { foreign_key = "user_id" }),
          profile = orm.has_one("Profile"),
          team = orm.belongs_to("Team"),
          roles = orm.belongs_to_many("Role", { pivot = "role_user", pivot_columns = { "level" } }),
        },
      })
      Profile = orm.model("Profile", { fields = { user_id = "integer", bio = "string" } })
      Role = orm.model("Role", { fields = { name = "string" },
        relations = { users = orm.belongs_to_many("User", { pivot = "role_user" }) } })
      Team = orm.model("Team", { fields = { name = "string" },
        relations = { members = orm.has_many("User") } })
    end

    setup(function()
      ds = drv:data_source()
      orm.ConnectionManager.instance:set_default_connection(ds.name)
      drv:create_table(ds, "teams", { { "id", "id" }, { "name", "string" } })
      drv:create_table(ds, "users", { { "id", "id" }, { "name", "string" }, { "team_id", "integer" } })
      drv:create_table(ds, "posts", { { "id", "id" }, { "user_id", "integer" }, { "title", "string" },
        { "published", "boolean" }, { "deleted_at", "datetime" } })
      drv:create_table(ds, "comments", { { "id", "id" }, { "post_id", "integer" }, { "body", "string" } })
      drv:create_table(ds, "profiles", { { "id", "id" }, { "user_id", "integer" }, { "bio", "string" } })
      drv:create_table(ds, "roles", { { "id", "id" }, { "name", "string" } })
      drv:create_table(ds, "role_user", { { "user_id", "integer" }, { "role_id", "integer" },
        { "level", "integer" } })
    end)

    teardown(function()
      for _, t in ipairs({ "role_user", "roles", "profiles", "comments", "posts", "users", "teams" }) do
        drv:drop_table(ds, t)
      end
      ds:dispose()
    end)

    local saved_limits

    before_each(function()
      for _, t in ipairs({ "role_user", "roles", "profiles", "comments", "posts", "users", "teams" }) do
        ds:table(t):delete()
      end
      define()
      saved_limits = {}
      for k, v in pairs(relations.IN_LIMIT) do saved_limits[k] = v end
    end)

    after_each(function()
      for k in pairs(relations.IN_LIMIT) do relations.IN_LIMIT[k] = nil end -- back to the derived limits
      for k, v in pairs(saved_limits) do relations.IN_LIMIT[k] = v end
    end)

    -- The SQL statements fn sends.
    local function statements(fn)
      local list = {}
      local stop = ds:listen(function(e) list[#list + 1] = e.sql end)
      local ok, err = pcall(fn)
      stop()
      assert(ok, err)
      return list
    end

    -- users u1..un, each with `posts` posts, each with 2 comments.
    local function seed(n, posts)
      local team = Team:create({ name = "core" })
      local users = {}
      for i = 1, n do
        local u = User:create({ name = "u" .. i, team_id = i % 2 == 1 and team.id or nil })
        users[i] = u
        Profile:create({ user_id = u.id, bio = "bio " .. i })
        for j = 1, posts do
          local p = Post:create({ user_id = u.id, title = "p" .. i .. "." .. j, published = j == 1 })
          Comment:create({ post_id = p.id, body = "c1" })
          Comment:create({ post_id = p.id, body = "c2" })
        end
      end
      return users, team
    end

    it("eager-loads has_many, has_one and belongs_to with one query each", function()
      seed(4, 3)
      local users
      local sent = statements(function()
        users = User:query():order_by("id"):with({ "posts", "profile", "team" }):get()
      end)
      assert.are.equal(4, #sent)
      assert.are.equal(4, #users)
      for i, u in ipairs(users) do
        assert.are.equal(3, #u.posts)
        assert.are.equal("p" .. i .. ".1", u.posts[1].title)
        assert.are.equal("bio " .. i, u.profile.bio)
        if i % 2 == 1 then assert.are.equal("core", u.team.name) else assert.is_nil(u.team) end
      end
      -- reading loaded relations sends nothing more (even a nil belongs_to)
      sent = statements(function()
        for _, u in ipairs(users) do assert.is_not_nil(u.posts); local _, _ = u.profile, u.team end
      end)
      assert.are.equal(0, #sent)
    end)

    it("loads nested relations level by level, without N+1", function()
      seed(5, 4)
      local users
      local sent = statements(function()
        users = User:with({ "posts", "posts.comments", "posts.author" }):get()
      end)
      assert.are.equal(4, #sent) -- users, posts, comments, authors
      local n = 0
      for _, u in ipairs(users) do
        for _, p in ipairs(u.posts) do
          assert.are.equal(2, #p.comments)
          assert.are.equal(u.id, p.author.id)
          n = n + #p.comments
        end
      end
      assert.are.equal(40, n)
    end)

    it("runs the N+1 loop without eager loading (what with() avoids)", function()
      seed(3, 1)
      local sent = statements(function()
        for _, u in ipairs(User:all()) do assert.are.equal(1, #u.posts) end
      end)
      assert.are.equal(4, #sent)
    end)

    it("batches IN lists under the parameter limit", function()
      seed(7, 1)
      relations.IN_LIMIT[drv.name] = 3
      local users
      local sent = statements(function() users = User:with("posts"):get() end)
      assert.are.equal(1 + 3, #sent) -- 7 keys in batches of 3
      for _, u in ipairs(users) do assert.are.equal(1, #u.posts) end
    end)

    it("applies a constraint to the relation query", function()
      seed(2, 3)
      local users = User:query():order_by("id"):with("posts", function(q)
        q:where("published", true)
      end):get()
      assert.are.equal(1, #users[1].posts)
      assert.are.equal("p1.1", users[1].posts[1].title)
      users = User:query():order_by("id"):with({ posts = function(q) q:order_by("id", "desc") end }):get()
      assert.are.equal("p1.3", users[1].posts[1].title)
    end)

    it("applies the related model's global scopes (soft deletes)", function()
      local users = seed(1, 3)
      Post:where("title", "p1.2"):delete()
      local u = User:with("posts"):find(users[1].id)
      assert.are.equal(2, #u.posts)
    end)

    it("loads belongs_to_many through the pivot with pivot columns", function()
      local users = seed(3, 0)
      local admin, editor = Role:create({ name = "admin" }), Role:create({ name = "editor" })
      users[1]:attach("roles", { admin.id, editor }, { level = 1 })
      users[2]:attach("roles", { [admin.id] = { level = 9 } })
      local list
      local sent = statements(function() list = User:query():order_by("id"):with("roles"):get() end)
      assert.are.equal(2, #sent)
      assert.are.equal(2, #list[1].roles)
      assert.are.equal(1, #list[2].roles)
      assert.are.equal(0, #list[3].roles)
      assert.are.equal(9, list[2].roles[1].pivot.level)
      assert.are.equal(list[2].id, list[2].roles[1].pivot.user_id)
      assert.is_nil(rawget(list[2].roles[1], "pivot_user_id"))
      assert.is_nil(list[2].roles[1]:to_table().pivot_user_id)
      assert.are.equal(9, list[2].roles[1]:to_table().pivot.level)
      local r = Role:with("users"):where("name", "admin"):first()
      assert.are.equal(2, #r.users)
    end)

    it("attaches, detaches and syncs pivot rows", function()
      local users = seed(1, 0)
      local u = users[1]
      local r = {}
      for i = 1, 4 do r[i] = Role:create({ name = "r" .. i }) end
      assert.are.equal(2, u:attach("roles", { r[1].id, r[2].id }))
      assert.are.equal(2, #u.roles)
      assert.are.equal(1, u:detach("roles", r[1].id))
      assert.are.equal(1, #u.roles)
      local result = u:sync("roles", { r[3].id, r[4], r[2].id })
      table.sort(result.attached)
      assert.are.same({ r[3].id, r[4].id }, result.attached)
      assert.are.same({}, result.detached)
      result = u:sync("roles", { r[1].id })
      assert.are.same({ r[1].id }, result.attached)
      assert.are.equal(3, #result.detached)
      assert.are.equal(1, #u.roles)
      assert.are.equal("r1", u.roles[1].name)
      -- ids as strings (a web form's) are the same rows: nothing changes
      result = u:sync("roles", { tostring(r[1].id), tostring(r[1].id) })
      assert.are.same({ attached = {}, detached = {} }, result)
      assert.are.equal(1, #u.roles)
      assert.are.equal(1, u:detach("roles"))
      assert.are.equal(0, #u.roles)
      local err = helper.error_of(function() u:attach("posts", 1) end)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("belongs_to_many", err.message)
      err = helper.error_of(function() User:new({ name = "x" }):attach("roles", 1) end)
      assert.are.equal("invalid_argument", err.kind)
    end)

    it("counts related rows with with_count", function()
      seed(3, 2)
      Post:where("title", "p2.1"):delete()
      local users
      local sent = statements(function()
        users = User:query():order_by("id"):with_count("posts"):with_count("posts as published", function(q)
          q:where("published", true)
        end):get()
      end)
      assert.are.equal(3, #sent)
      -- trashed posts are not counted: u2's published post is deleted
      assert.are.same({ 2, 1, 2 }, { users[1].posts_count, users[2].posts_count, users[3].posts_count })
      assert.are.same({ 1, 0, 1 }, { users[1].published, users[2].published, users[3].published })
      local none = User:create({ name = "lonely" })
      assert.are.equal(0, User:with_count("posts"):find(none.id).posts_count)
      local roles = User:with_count("roles"):find(none.id)
      assert.are.equal(0, roles.roles_count)
      assert.are.equal(0, roles:to_table().roles_count)
    end)

    it("filters parents with where_has and where_doesnt_have", function()
      local users = seed(3, 1)
      Post:create({ user_id = users[2].id, title = "special" })
      local found = User:where_has("posts", function(q) q:where("title", "special") end):get()
      assert.are.equal(1, #found)
      assert.are.equal(users[2].id, found[1].id)
      local lonely = User:create({ name = "lonely" })
      local without = User:where_doesnt_have("posts"):get()
      assert.are.equal(1, #without)
      assert.are.equal(lonely.id, without[1].id)
      assert.are.equal(2, User:where_has("team"):count())
      users[1]:attach("roles", Role:create({ name = "admin" }))
      assert.are.equal(users[1].id, User:where_has("roles", function(q)
        q:where("roles.name", "admin")
      end):first().id)
      assert.are.equal(1, Post:where_has("author", function(q) q:where("name", "u3") end):count())
    end)

    it("loads relations lazily with load() and on first read", function()
      local users = seed(2, 2)
      local u = User:find(users[1].id)
      local sent = statements(function() u:load({ "posts", "posts.comments" }) end)
      assert.are.equal(2, #sent)
      assert.are.equal(2, #u.posts)
      assert.are.equal(2, #u.posts[1].comments)
      local v = User:find(users[2].id)
      sent = statements(function() assert.are.equal("bio 2", v.profile.bio) end)
      assert.are.equal(1, #sent)
      sent = statements(function() assert.are.equal("bio 2", v.profile.bio) end)
      assert.are.equal(0, #sent)
      local t = u:to_table()
      assert.are.equal(2, #t.posts)
      assert.are.equal("c1", t.posts[1].comments[1].body)
      assert.is_nil(getmetatable(t.posts[1]))
      assert.are.equal(2, #User:find(users[1].id):related("posts"):get())
    end)

    it("eager-loads a list of instances with load_many", function()
      seed(3, 1)
      local list = User:all()
      local sent = statements(function() User:load_many(list, "posts") end)
      assert.are.equal(1, #sent)
      for _, u in ipairs(list) do assert.are.equal(1, #u.posts) end
    end)

    it("relates a table to itself (eager loads and where_has)", function()
      drv:create_table(ds, "employees", { { "id", "id" }, { "name", "string" },
        { "manager_id", "integer" }, { "deleted_at", "datetime" } })
      local Employee = orm.model("Employee", {
        fields = { name = "string", manager_id = "integer" },
        soft_deletes = true,
        relations = { manager = orm.belongs_to("Employee"),
          reports = orm.has_many("Employee", { foreign_key = "manager_id" }) },
      })
      local boss = Employee:create({ name = "boss" })
      local mid = Employee:create({ name = "mid", manager_id = boss.id })
      local leaf = Employee:create({ name = "leaf", manager_id = mid.id })
      local gone = Employee:create({ name = "gone", manager_id = leaf.id })
      gone:delete()
      local function names(list)
        local t = {}
        for i, e in ipairs(list) do t[i] = e.name end
        table.sort(t)
        return t
      end
      assert.are.same({ "boss", "mid" }, names(Employee:where_has("reports"):get()))
      assert.are.same({ "boss" }, names(Employee:where_doesnt_have("manager"):get()))
      assert.are.same({ "leaf" }, names(Employee:where_has("manager", function(q)
        q:where_has("manager")
      end):get()))
      assert.are.same({ "mid" }, names(Employee:where_has("reports", function(q)
        q:where("name", "leaf")
      end):get()))
      local top = Employee:with("reports.reports.reports"):find(boss.id)
      assert.are.equal("leaf", top.reports[1].reports[1].name)
      assert.are.same({}, top.reports[1].reports[1].reports)
      drv:drop_table(ds, "employees")
    end)

    it("raises invalid_argument naming the model and its relations", function()
      local err = helper.error_of(function() User:with("comments") end)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("User has no relation 'comments'", err.message)
      assert.matches("posts, profile, roles, team", err.message, 1, true)
      err = helper.error_of(function() User:with("posts.tags") end)
      assert.matches("Post has no relation 'tags'", err.message)
      err = helper.error_of(function() User:new():load("nope") end)
      assert.are.equal("invalid_argument", err.kind)
      err = helper.error_of(function() User:where_has("nope") end)
      assert.are.equal("invalid_argument", err.kind)
      err = helper.error_of(function() User:with_count("nope") end)
      assert.are.equal("invalid_argument", err.kind)
      orm.model("Ghost", { relations = { soul = orm.has_one("Spirit") } })
      err = helper.error_of(function() orm.model("Ghost", {
        relations = { soul = orm.has_one("Spirit") } }):with("soul") end)
      assert.matches("model 'Spirit', which is not defined", err.message)
    end)
  end)
end)
