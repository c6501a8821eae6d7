-- bench/cases/select.lua: W.ROWS rows into plain Lua tables
-- (ormed: ds:table("users"):get()).
local W = require("workload")
local climit = require("climit")

return {
  label = "select 100k rows into plain tables",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS))
    return {}
  end,
  ormed = function(ctx)
    return ctx.ds:table("users"):get()
  end,
  luasql = function(ctx)
    return W.luasql_rows(ctx.conn, "SELECT * FROM users")
  end,
  climit = function(ctx)
    return climit.select(ctx.db, "SELECT * FROM users")
  end,
  check = function(_, _, rows)
    return #rows == W.ROWS and rows[W.ROWS].email ~= nil, "rows=" .. #rows
  end,
}
