-- bench/cases/eager.lua: 1k users with 10 posts each, the posts loaded in
-- one more statement (ormed: User:with{ "posts" }:get()). The N+1 loop it
-- is measured against is bench/cases/nplus1.lua.
local W = require("workload")
local climit = require("climit")

local PARENT_SQL = "SELECT * FROM users"
local CHILD_SQL = "SELECT * FROM posts WHERE user_id IN "

return {
  label = "eager load 1k users x 10 posts",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.EAGER_USERS))
    W.run_all(ctx, W.posts_sql(ctx.driver, W.EAGER_USERS, W.EAGER_POSTS))
    if ctx.orm then
      local User = W.models(ctx.orm)
      return { User = User, queries = ctx.ds:stats().queries }
    end
    return {}
  end,
  ormed = function(_, s)
    return s.User:with({ "posts" }):get()
  end,
  luasql = function(ctx)
    local mt = W.instance_mt
    local users = W.luasql_rows(ctx.conn, PARENT_SQL, mt)
    local by_id, ids = {}, {}
    for i, u in ipairs(users) do
      local list = {}
      u.posts = list
      by_id[tonumber(u.id)] = list
      ids[i] = string.format("%d", u.id)
    end
    local cur = ctx.conn:execute(CHILD_SQL .. "(" .. table.concat(ids, ", ") .. ")")
    local row = cur:fetch({}, "a")
    while row do
      setmetatable(row, mt)
      local list = by_id[tonumber(row.user_id)]
      list[#list + 1] = row
      row = cur:fetch({}, "a")
    end
    cur:close()
    return users
  end,
  climit = function(ctx)
    return climit.eager(ctx.db, PARENT_SQL, CHILD_SQL, "id", "user_id", "posts", W.instance_mt,
      W.instance_mt)
  end,
  check = function(ctx, s, users)
    local posts = 0
    for _, u in ipairs(users) do posts = posts + #u.posts end
    local ok = #users == W.EAGER_USERS and posts == W.EAGER_USERS * W.EAGER_POSTS
    local info = ("users=%d posts=%d"):format(#users, posts)
    if ctx.ds then
      local q = ctx.ds:stats().queries - s.queries
      ok = ok and q == 2
      info = info .. " queries=" .. q
    end
    return ok, info
  end,
}
