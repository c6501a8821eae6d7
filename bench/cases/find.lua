-- bench/cases/find.lua: one row by primary key, W.FINDS times (ormed:
-- User:find(id)); the C limit reuses one prepared statement.
local W = require("workload")
local climit = require("climit")

local finds = W.finds

-- The same through LuaDBI, one prepared statement reused.
local function luadbi_finds(dbi, ids)
  local sth = assert(dbi:prepare("SELECT * FROM users WHERE id = ? LIMIT 1"))
  local mt, found = W.instance_mt, 0
  for _, id in ipairs(ids) do
    assert(sth:execute(id))
    local row = sth:fetch(true)
    if row then
      setmetatable(row, mt)
      found = found + 1
    end
  end
  sth:close()
  return found
end

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
    return finds(s.User, s.ids)
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
    return luadbi_finds(ctx.dbi, s.ids)
  end,
  climit = function(ctx, s)
    return (climit.each(ctx.db, "SELECT * FROM users WHERE id = " .. W.ph(ctx.driver, 1)
      .. " LIMIT 1", s.args, W.instance_mt, true))
  end,
  check = function(ctx, s, found)
    local info = "found=" .. tostring(found)
    if ctx.orm and ctx.driver == "sqlite" then
      -- untimed: the C limit and LuaDBI on their own copies of the table in
      -- this process, each alternating with ormed in blocks of 2000 finds
      local few = { table.unpack(s.ids, 1, 2000) }
      local args = {}
      for i, id in ipairs(few) do args[i] = { id } end
      local lim = W.open("climit", "sqlite")
      local dbi = W.open("luadbi", "sqlite")
      W.run_all(lim, W.users_sql("sqlite", W.ROWS))
      W.run_all(dbi, W.users_sql("sqlite", W.ROWS))
      local ormed = function() finds(s.User, few) end
      local sql = "SELECT * FROM users WHERE id = ? LIMIT 1"
      info = info .. (" paired_limit=%.2f paired_dbi=%.2f"):format(
        W.paired(ormed, function() climit.each(lim.db, sql, args, W.instance_mt, true) end, 20),
        W.paired(ormed, function() luadbi_finds(dbi.dbi, few) end, 20))
    end
    return found == W.FINDS, info
  end,
}
