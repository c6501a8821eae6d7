-- bench/cases/models.lua: W.ROWS rows into model instances (ormed:
-- User:all()); LuaSQL and the C limit give each row table a metatable.
local W = require("workload")
local climit = require("climit")

return {
  label = "select 100k rows into model instances",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS))
    if ctx.orm then return { User = W.models(ctx.orm) } end
    return {}
  end,
  ormed = function(_, s)
    return s.User:all()
  end,
  luasql = function(ctx)
    return W.luasql_rows(ctx.conn, "SELECT * FROM users", W.instance_mt)
  end,
  climit = function(ctx)
    return climit.select(ctx.db, "SELECT * FROM users", W.instance_mt)
  end,
  check = function(_, _, rows)
    return #rows == W.ROWS and rows[W.ROWS].email ~= nil, "rows=" .. #rows
  end,
}
