-- bench/cases/compile_model.lua: as compile.lua through a model query
-- (User:where(...)...:to_sql()), which also records its builder calls for
-- global scopes.
local W = require("workload")

return {
  label = "query build + compile (model)",
  unit = "us/op",
  ops = function() return W.COMPILES end,
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, 0))
    if ctx.orm then return { User = W.models(ctx.orm) } end
    return {}
  end,
  ormed = function(_, s)
    local User, sql = s.User, nil
    for i = 1, W.COMPILES do
      sql = User:select("id", "name"):where("active", true):where("credits", ">", i % 1000)
        :where_in("id", { i, i + 1, i + 2 }):where("name", "<>", "o'neil"):order_by("name")
        :limit(10):to_sql()
    end
    return sql
  end,
  luasql = function(ctx)
    local conn, sql = ctx.conn, nil
    local fmt = "SELECT id, name FROM users WHERE active = %s AND credits > %d AND id IN "
      .. "(%d, %d, %d) AND name <> '%s' ORDER BY name ASC LIMIT 10"
    for i = 1, W.COMPILES do
      sql = fmt:format(W.bool_sql(true), i % 1000, i, i + 1, i + 2, conn:escape("o'neil"))
    end
    return sql
  end,
  check = function(_, _, sql)
    return type(sql) == "string" and sql:find("LIMIT 10", 1, true) ~= nil, "ok"
  end,
}
