-- examples/quickstart.lua: ormed in five minutes, on a SQLite file (no
-- server). Run it with `make example`, or from this folder after `make`:
--   LUA_PATH="../lua/?.lua;../lua/?/init.lua;;" LUA_CPATH="../build/?.so;;" lua5.4 quickstart.lua
local orm = require("ormed")

os.remove("quickstart.sqlite")
local db = orm.DataSource({
  name = "primary",
  driver = orm.SqliteDriverAdapter.file("quickstart.sqlite"),
}):init()

-- Tables, written once for SQLite, PostgreSQL and MySQL.
local schema = db:schema()
schema:create_table("users", function(t)
  t:id(); t:string("name", 100); t:string("email"):unique()
  t:integer("credits"):default(0); t:boolean("active"):default(true)
  t:json("settings"):nullable(); t:timestamps()
end)
schema:create_table("posts", function(t)
  t:id(); t:foreign_id("user_id"):references("users"):on_delete("cascade")
  t:string("title"); t:timestamps(); t:soft_deletes()
end)

-- Models: plain Lua tables of data.
local User = orm.model("User", {
  fields = { id = "integer", name = "string", email = "string", credits = "integer",
    active = "boolean", settings = "json" },
  timestamps = true,
  fillable = { "name", "email", "credits", "active", "settings" },
  relations = { posts = orm.has_many("Post") },
  scopes = { active = function(q) return q:where("active", true) end },
})
local Post = orm.model("Post", {
  fields = { id = "integer", user_id = "integer", title = "string" },
  timestamps = true,
  soft_deletes = true,
  relations = { author = orm.belongs_to("User", { foreign_key = "user_id" }) },
})

-- Create and change: attributes are fields; save() writes what changed.
local ann = User:create({ name = "Ann", email = "ann@example.org", credits = 10,
  settings = { theme = "dark" } })
User:create({ name = "Bob", email = "bob@example.org", active = false })
ann.credits = ann.credits + 5
print("dirty before save:", orm.json.encode(ann:get_dirty()))
ann:save()

for i = 1, 3 do Post:create({ user_id = ann.id, title = "Post " .. i }) end

-- Query: every value is a bound parameter, compiled in C.
local rich = User:where("credits", ">", 5):order_by("name"):get()
print(("%d user(s) with more than 5 credits: %s (theme %s)"):format(#rich, rich[1].name,
  rich[1].settings.theme))
print("active users:", User:query():active():count())
print("SQL:", (User:where("credits", ">", 5):to_sql()))

-- Relations, eager-loaded in one query per level.
local users = User:query():with({ "posts" }):order_by("id"):get()
for _, u in ipairs(users) do print(("  %s has %d posts"):format(u.name, #u.posts)) end

-- Soft deletes: gone from queries, still in the table.
Post:where("title", "Post 2"):first():delete()
print("posts:", Post:count(), "with trashed:", Post:query():with_trashed():count())

-- Transactions commit, or roll back and re-raise.
local ok, err = pcall(db.transaction, db, function()
  User:where("name", "Ann"):decrement("credits", 5)
  error(orm.Error({ kind = "invalid_argument", message = "changed my mind" }))
end)
print("transaction rolled back:", not ok, tostring(err), "credits still",
  User:find(ann.id).credits)

-- Errors are orm.Error values with a kind.
local _, dup = pcall(User.create, User, { name = "Ann again", email = "ann@example.org" })
print("duplicate email ->", dup.kind)

-- Plain tables and raw SQL are there too.
print("raw:", db:select("SELECT COUNT(*) AS n FROM users WHERE credits >= ?", { 0 })[1].n, "users")
print("stats:", orm.json.encode(db:stats()))

db:dispose()
os.remove("quickstart.sqlite")
