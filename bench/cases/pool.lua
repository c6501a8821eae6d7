-- bench/cases/pool.lua: one connection checked out of the pool and
-- returned (ormed: the data source's pool userdata, acquire() then
-- release()). LuaSQL has no pool: its counterpart opens and closes a
-- connection. The C limit pops and pushes a mutex-guarded stack.
local climit = require("climit")

local N_POOL = 100000

return {
  label = "pool checkout + return",
  unit = "us/op",
  ops = function(impl, driver)
    if impl == "luasql" then return driver == "sqlite" and 5000 or 200 end
    return N_POOL
  end,
  setup = function()
    return {}
  end,
  ormed = function(ctx)
    local pool = ctx.ds._pool
    for _ = 1, N_POOL do pool:acquire():release() end
    return true
  end,
  luasql = function(ctx)
    local n = ctx.driver == "sqlite" and 5000 or 200
    for _ = 1, n do ctx.connect():close() end
    return true
  end,
  climit = function()
    return climit.pool_cycle(N_POOL) == N_POOL
  end,
  check = function(_, _, ok)
    return ok == true, "ok"
  end,
}
