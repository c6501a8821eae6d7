-- examples/models.lua: models and relations on SQLite, in memory.
-- Run from this folder (after `make` at the root):
--   LUA_PATH="../lua/?.lua;../lua/?/init.lua;;" LUA_CPATH="../build/?.so;;" lua5.4 models.lua
local orm = require("ormed")

local db = orm.DataSource({ name = "primary", driver = orm.SqliteDriverAdapter.memory() }):init()

local schema = db:schema()
schema:create_table("teams", function(t) t:id(); t:string("name") end)
schema:create_table("users", function(t)
  t:id(); t:string("name"); t:string("email"):nullable(); t:integer("credits"):default(0)
  t:boolean("active"):nullable(); t:json("settings"):nullable(); t:integer("team_id"):nullable()
  t:string("password"):nullable(); t:timestamps()
end)
schema:create_table("posts", function(t)
  t:id(); t:integer("user_id"):nullable(); t:string("title"):nullable()
  t:boolean("published"):nullable(); t:timestamps(); t:soft_deletes()
end)
schema:create_table("comments", function(t)
  t:id(); t:integer("post_id"):nullable(); t:string("body"):nullable()
end)
schema:create_table("roles", function(t) t:id(); t:string("name"):nullable() end)
schema:create_table("role_user", function(t) t:integer("user_id"); t:integer("role_id") end)

-- Models may name each other before they exist: relations resolve by name.
local User = orm.model("User", {
  fields = { id = "integer", name = "string", email = "string", credits = "integer",
    active = "boolean", settings = "json", team_id = "integer", password = "string" },
  timestamps = true,
  fillable = { "name", "email", "credits", "active", "settings", "team_id", "password" },
  hidden = { "password" },
  relations = {
    posts = orm.has_many("Post"),
    team = orm.belongs_to("Team"),
    roles = orm.belongs_to_many("Role"),   -- pivot role_user, keys user_id / role_id
  },
  scopes = { active = function(q) q:where("active", true) end },
})

local Post = orm.model("Post", {
  fields = { user_id = "integer", title = "string", published = "boolean" },
  timestamps = true,
  soft_deletes = true,
  relations = { author = orm.belongs_to("User", { foreign_key = "user_id" }),
    comments = orm.has_many("Comment") },
})

local Comment = orm.model("Comment", { fields = { post_id = "integer", body = "string" } })
local Team = orm.model("Team", { fields = { name = "string" } })
local Role = orm.model("Role", { fields = { name = "string" } })

-- Events: a "*ing" handler returning false cancels the write.
User:on("saving", function(u)
  if u.email == nil then u.email = u.name:lower() .. "@example.org" end
end)

-- Create, read, update: attributes are plain fields; save writes changed columns only.
local team = Team:create({ name = "Core" })
local ann = User:create({ name = "Ann", credits = 10, active = true, team_id = team.id,
  settings = { theme = "dark" }, password = "s3cret" })
local bob = User:create({ name = "Bob", credits = 3, active = false })

ann.credits = ann.credits + 5
print("dirty:", ann:is_dirty("credits"), "changes:", orm.json.encode(ann:get_dirty()))
ann:save()
print("Ann has", User:find(ann.id).credits, "credits, theme", User:find(ann.id).settings.theme)

for i = 1, 3 do
  local p = Post:create({ user_id = ann.id, title = "Post " .. i, published = i ~= 2 })
  Comment:create({ post_id = p.id, body = "Nice post " .. i })
end
Post:create({ user_id = bob.id, title = "Bob's post", published = true })

-- Relations, eager-loaded with one query per level (count them).
local statements = 0
local stop = db:listen(function() statements = statements + 1 end)
local users = User:query():order_by("id"):with({ "posts", "posts.comments", "team" }):get()
stop()
print(("eager load: %d users in %d statements"):format(#users, statements))
for _, u in ipairs(users) do
  print(("  %s (%s): %d posts"):format(u.name, u.team and u.team.name or "no team", #u.posts))
end

-- Constraints, counts, where_has, scopes.
local published = User:with("posts", function(q) q:where("published", true) end):find(ann.id)
print("published posts of Ann:", #published.posts)
for _, u in ipairs(User:query():order_by("id"):with_count("posts"):get()) do
  print("  " .. u.name .. " posts_count = " .. u.posts_count)
end
print("active users:", User:active():count(), "users with a comment:",
  User:where_has("posts", function(q) q:where_has("comments") end):count())

-- Pivot relations.
local admin, editor = Role:create({ name = "admin" }), Role:create({ name = "editor" })
ann:attach("roles", { admin.id, editor.id })
ann:sync("roles", { editor.id })
print("Ann's roles:", #ann.roles, ann.roles[1].name)

-- Soft deletes.
Post:where("title", "Post 2"):first():delete()
print("posts:", Post:count(), "with trashed:", Post:with_trashed():count())
Post:only_trashed():restore()
print("after restore:", Post:count())

-- to_table leaves hidden fields out.
print("to_table has password?", User:find(ann.id):to_table().password ~= nil)

-- Bad input raises orm.Error values.
local ok, err = pcall(User.create, User, { name = "Eve", is_admin = true })
print(ok, err.kind)
ok, err = pcall(User.find_or_fail, User, 999)
print(ok, err.kind)

db:dispose()
