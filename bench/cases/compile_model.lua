-- bench/cases/compile_model.lua: as compile.lua through a model query
-- (User:where(...)...:to_sql()), which also records its builder calls for
-- global scopes.
local W = require("workload")
local plain = require("cases.compile")

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
  -- the same hand-formatted SQL as compile.lua, for the same ratio
  luasql = plain.luasql,
  check = plain.check,
}
