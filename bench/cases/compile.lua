-- bench/cases/compile.lua: the cost of building a query and compiling it
-- to SQL + bindings, per query (ormed: ds:table(...) with five filters,
-- order and limit, then to_sql()). LuaSQL users format the SQL string by
-- hand with conn:escape; there is no C-limit counterpart.
local W = require("workload")

local M
M = {
  label = "query build + compile (plain)",
  unit = "us/op",
  ops = function() return W.COMPILES end,
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, 0))
    return {}
  end,
  ormed = function(ctx)
    return M.plain(ctx.ds, W.COMPILES)
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
  check = function(ctx, _, sql)
    local info = "ok"
    if ctx.ds then -- untimed: against formatting by hand, alternating in this process
      info = ("paired=%.2f"):format(W.paired(function() M.plain(ctx.ds, 2000) end,
        function() M.by_hand(2000) end, 20))
    end
    return type(sql) == "string" and sql:find("LIMIT 10", 1, true) ~= nil, info
  end,
}

-- n plain queries built and compiled; the last SQL.
function M.plain(ds, n)
  local sql
  for i = 1, n do
    sql = ds:table("users"):select("id", "name"):where("active", true)
      :where("credits", ">", i % 1000):where_in("id", { i, i + 1, i + 2 })
      :where("name", "<>", "o'neil"):order_by("name"):limit(10):to_sql()
  end
  return sql
end

-- The same SQL formatted by hand n times, escaping with gsub (in the
-- ormed process, which has no LuaSQL connection to escape with).
function M.by_hand(n)
  local sql
  local fmt = "SELECT id, name FROM users WHERE active = %s AND credits > %d AND id IN "
    .. "(%d, %d, %d) AND name <> '%s' ORDER BY name ASC LIMIT 10"
  for i = 1, n do
    sql = fmt:format("1", i % 1000, i, i + 1, i + 2, (("o'neil"):gsub("'", "''")))
  end
  return sql
end

return M
