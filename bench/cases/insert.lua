-- bench/cases/insert.lua: bulk insert of W.ROWS rows in one transaction
-- (ormed: ds:table("users"):insert(list) inside ds:transaction).
local W = require("workload")
local climit = require("climit")

local COLS = { "name", "email", "credits", "active" }

return {
  label = "bulk insert 100k rows, one transaction",
  unit = "ms",
  setup = function(ctx)
    W.run_all(ctx, W.users_sql(ctx.driver, 0))
    return { rows = W.rows(W.ROWS) }
  end,
  ormed = function(ctx, s)
    ctx.ds:transaction(function(tx) tx:table("users"):insert(s.rows) end)
  end,
  luasql = function(ctx, s)
    local conn = ctx.conn
    local fmt = "INSERT INTO users (name, email, credits, active) VALUES ('%s', '%s', %d, %s)"
    conn:setautocommit(false)
    for _, r in ipairs(s.rows) do
      assert(conn:execute(fmt:format(conn:escape(r.name), conn:escape(r.email), r.credits,
        W.bool_sql(r.active))))
    end
    conn:commit()
    conn:setautocommit(true)
  end,
  climit = function(ctx, s)
    if ctx.driver == "postgres" then -- PostgreSQL's fastest bulk load
      climit.pg_copy(ctx.db, "users", COLS, s.rows)
    else
      climit.insert(ctx.db, "users", COLS, s.rows, W.insert_batch(ctx.driver))
    end
  end,
  check = function(ctx)
    local n = ctx.count("SELECT COUNT(*) FROM users")
    return n == W.ROWS, "rows=" .. tostring(n)
  end,
}
