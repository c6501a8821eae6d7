-- bench/cases/nplus1.lua: the N+1 loop the eager load is measured
-- against: 1k users, then one query per user for its posts (ormed:
-- Post:where("user_id", u.id):get() per user).
local W = require("workload")
local climit = require("climit")

return {
  label = "N+1 loop, 1k users x 10 posts",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.EAGER_USERS))
    W.run_all(ctx, W.posts_sql(ctx.driver, W.EAGER_USERS, W.EAGER_POSTS))
    if ctx.orm then
      local User, Post = W.models(ctx.orm)
      return { User = User, Post = Post, queries = ctx.ds:stats().queries }
    end
    return {}
  end,
  ormed = function(_, s)
    local Post = s.Post
    local users = s.User:all()
    for _, u in ipairs(users) do
      u.posts = Post:where("user_id", u.id):get()
    end
    return users
  end,
  luasql = function(ctx)
    local mt, conn = W.instance_mt, ctx.conn
    local users = W.luasql_rows(conn, "SELECT * FROM users", mt)
    for _, u in ipairs(users) do
      u.posts = W.luasql_rows(conn, "SELECT * FROM posts WHERE user_id = "
        .. string.format("%d", u.id), mt)
    end
    return users
  end,
  climit = function(ctx)
    local mt = W.instance_mt
    local users = climit.select(ctx.db, "SELECT * FROM users", mt)
    local args, out = {}, {}
    for i, u in ipairs(users) do args[i] = { u.id } end
    climit.each(ctx.db, "SELECT * FROM posts WHERE user_id = " .. W.ph(ctx.driver, 1), args, mt,
      false, out)
    for i, u in ipairs(users) do u.posts = out[i] end
    return users
  end,
  check = function(ctx, s, users)
    local posts = 0
    for _, u in ipairs(users) do posts = posts + #u.posts end
    local ok = #users == W.EAGER_USERS and posts == W.EAGER_USERS * W.EAGER_POSTS
    local info = ("users=%d posts=%d"):format(#users, posts)
    if ctx.ds then info = info .. " queries=" .. (ctx.ds:stats().queries - s.queries) end
    return ok, info
  end,
}
