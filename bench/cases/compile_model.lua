-- bench/cases/compile_model.lua: as compile.lua through a model query
-- (User:where(...)...:to_sql()), which also records its builder calls for
-- global scopes.
local W = require("workload")
local plain = require("cases.compile")

-- n model queries built and compiled; the last SQL.
local function model(User, n)
  local sql
  for i = 1, n do
    sql = User:select("id", "name"):where("active", true):where("credits", ">", i % 1000)
      :where_in("id", { i, i + 1, i + 2 }):where("name", "<>", "o'neil"):order_by("name")
      :limit(10):to_sql()
  end
  return sql
end

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
    return model(s.User, W.COMPILES)
  end,
  -- the same hand-formatted SQL as compile.lua, for the same ratio
  luasql = plain.luasql,
  check = function(ctx, s, sql)
    local info = "ok"
    if ctx.ds then -- untimed: against the plain query, alternating in this process
      info = ("paired=%.2f"):format(W.paired(function() model(s.User, 2000) end,
        function() plain.plain(ctx.ds, 2000) end, 20))
    end
    return type(sql) == "string" and sql:find("LIMIT 10", 1, true) ~= nil, info
  end,
}
