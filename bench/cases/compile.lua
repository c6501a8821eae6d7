-- bench/cases/compile.lua: the cost of building a query and compiling it
-- to SQL + bindings, per query (ormed: ds:table(...) with five filters,
-- order and limit, then to_sql()). LuaSQL users format the SQL string by
-- hand with conn:escape; there is no C-limit counterpart.
local W = require("workload")

return {
  label = "query build + compile (plain)",
  unit = "us/op",
  ops = function() return W.COMPILES end,
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, 0))
    return {}
  end,
  ormed = function(ctx)
    local ds, sql = ctx.ds, nil
    for i = 1, W.COMPILES do
      sql = ds:table("users"):select("id", "name"):where("active", true)
        :where("credits", ">", i % 1000):where_in("id", { i, i + 1, i + 2 })
        :where("name", "<>", "o'neil"):order_by("name"):limit(10):to_sql()
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
