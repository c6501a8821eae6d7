-- bench/cases/find.lua: one row by primary key, W.FINDS times (ormed:
-- User:find(id)); the C limit reuses one prepared statement.
local W = require("workload")
local climit = require("climit")

return {
  label = "find(id) 20k times",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS))
    local s = { ids = W.ids(W.FINDS, W.ROWS) }
    if ctx.orm then s.User = W.models(ctx.orm) end
    if ctx.db then
      s.args = {}
      for i, id in ipairs(s.ids) do s.args[i] = { id } end
    end
    return s
  end,
  ormed = function(_, s)
    local User, found = s.User, 0
    for _, id in ipairs(s.ids) do
      if User:find(id) then found = found + 1 end
    end
    return found
  end,
  luasql = function(ctx, s)
    local conn, mt, found = ctx.conn, W.instance_mt, 0
    for _, id in ipairs(s.ids) do
      local cur = conn:execute("SELECT * FROM users WHERE id = " .. id .. " LIMIT 1")
      local row = cur:fetch({}, "a")
      cur:close()
      if row then
        setmetatable(row, mt)
        found = found + 1
      end
    end
    return found
  end,
  -- LuaDBI with one prepared statement reused (a second peer)
  luadbi = function(ctx, s)
    local sth = assert(ctx.dbi:prepare("SELECT * FROM users WHERE id = ? LIMIT 1"))
    local mt, found = W.instance_mt, 0
    for _, id in ipairs(s.ids) do
      assert(sth:execute(id))
      local row = sth:fetch(true)
      if row then
        setmetatable(row, mt)
        found = found + 1
      end
    end
    sth:close()
    return found
  end,
  climit = function(ctx, s)
    return (climit.each(ctx.db, "SELECT * FROM users WHERE id = " .. W.ph(ctx.driver, 1)
      .. " LIMIT 1", s.args, W.instance_mt, true))
  end,
  check = function(_, _, found)
    return found == W.FINDS, "found=" .. tostring(found)
  end,
}
