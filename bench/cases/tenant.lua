-- bench/cases/tenant.lua: the range-query case shared by unscoped.lua and
-- scoped.lua: `User:where("id", ">", start):order_by("id"):limit(20)
-- :get()`, with or without a tenant scope (tenant_id = 3) registered on
-- the data source. LuaSQL and the C limit run the SQL ormed compiles.
local W = require("workload")
local climit = require("climit")

local T = {}

local TENANT = 3

function T.case(scoped)
  local where = scoped and "tenant_id = %s AND id > %s" or "id > %s"
  return {
    label = scoped and "range query x5k, tenant-scoped" or "range query x5k, unscoped",
    unit = "ms",
    -- the scope's own cost: against the same filter written by hand
    target = scoped and { base = 1.1, text = "<= 1.1x the tenant filter written by hand" } or nil,
    setup = function(ctx)
      W.run_all(ctx, W.users_sql(ctx.driver, W.ROWS, true))
      local s = { starts = W.ids(W.RANGES, W.ROWS - 1000) }
      if ctx.orm then
        s.User = W.models(ctx.orm, true)
        -- the same model, never scoped: the tenant filter written by hand
        s.Hand = ctx.orm.model("UserHand", { table = "users", fields = s.User.fields })
        if scoped then
          ctx.ds.context.scope_registry:register_scope(s.User, function(q)
            q:where_equals("tenant_id", TENANT)
          end, "tenant")
        end
      end
      if ctx.db then
        s.args = {}
        for i, x in ipairs(s.starts) do s.args[i] = scoped and { TENANT, x } or { x } end
        s.sql = "SELECT * FROM users WHERE "
          .. (scoped and where:format(W.ph(ctx.driver, 1), W.ph(ctx.driver, 2))
            or where:format(W.ph(ctx.driver, 1)))
          .. " ORDER BY id ASC LIMIT 20"
      end
      return s
    end,
    ormed = function(_, s)
      return T.range(s.User, s.starts)
    end,
    -- the scoped case's base: the tenant filter written in each query
    base = scoped and function(_, s) return T.by_hand(s.Hand, s.starts) end or nil,
    luasql = function(ctx, s)
      local conn, mt, n = ctx.conn, W.instance_mt, 0
      local sql = "SELECT * FROM users WHERE " .. where .. " ORDER BY id ASC LIMIT 20"
      for _, x in ipairs(s.starts) do
        local q = scoped and sql:format(TENANT, x) or sql:format(x, "")
        n = n + #W.luasql_rows(conn, q, mt)
      end
      return n
    end,
    climit = function(ctx, s)
      return (climit.each(ctx.db, s.sql, s.args, W.instance_mt))
    end,
    check = function(ctx, s, n)
      local info = "rows=" .. tostring(n)
      if scoped and ctx.orm and not ctx.base then
        -- untimed: scoped against by hand, alternating blocks in this process
        local few = { table.unpack(s.starts, 1, 500) }
        info = info .. (" paired=%.2f"):format(W.paired(function() T.range(s.User, few) end,
          function() T.by_hand(s.Hand, few) end, 20))
      end
      return n == W.RANGES * 20, info
    end,
  }
end

-- The range queries of the case on model M.
function T.range(M, starts)
  local n = 0
  for _, x in ipairs(starts) do
    n = n + #M:where("id", ">", x):order_by("id"):limit(20):get()
  end
  return n
end

-- The same with the tenant filter written by hand (what the scope adds).
function T.by_hand(M, starts)
  local n = 0
  for _, x in ipairs(starts) do
    n = n + #M:where_equals("tenant_id", TENANT):where("id", ">", x):order_by("id"):limit(20):get()
  end
  return n
end

return T
