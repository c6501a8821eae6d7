--- ormed.io.luv: a waiter for luv (libuv; luvit and other luv servers):
-- `orm.set_waiter(require("ormed.io.luv"))`. Inside a coroutine, a query
-- waiting on the database starts a uv poll handle on the socket and
-- yields; the loop resumes it when the socket is ready. Outside a
-- coroutine (the main chunk), it runs the loop until the socket is ready,
-- so other callbacks still run meanwhile.
-- @module ormed.io.luv
local uv = require("luv")

local M = {}

--- wait(fd, mode, timeout): returns once the socket fd is ready for mode
-- ("r", "w" or "rw") or timeout seconds (nil: none) have passed.
function M.wait(fd, mode, timeout)
  local co, main = coroutine.running()
  local yielding = not main and coroutine.isyieldable()
  local poll, timer = uv.new_poll(fd), nil
  local done = false
  local function wake()
    if done then return end
    done = true
    poll:stop()
    poll:close()
    if timer then
      timer:stop()
      timer:close()
    end
    if yielding then
      local ok, err = coroutine.resume(co)
      if not ok then error(err, 0) end
    end
  end
  poll:start(mode, function() wake() end)
  if timeout then
    timer = uv.new_timer()
    timer:start(math.max(0, math.floor(timeout * 1000)), 0, wake)
  end
  if yielding then
    coroutine.yield()
  else
    while not done do uv.run("once") end
  end
end

return setmetatable(M, { __call = function(_, fd, mode, timeout) return M.wait(fd, mode, timeout) end })
