--- ormed.io.cqueues: a waiter for cqueues (lua-http and other cqueues
-- servers): `orm.set_waiter(require("ormed.io.cqueues"))`. Inside a
-- coroutine a cqueues controller runs, a query waiting on the database
-- yields to the controller (cqueues.poll); outside one, cqueues.poll blocks
-- the thread as a plain poll would.
-- @module ormed.io.cqueues
local cqueues = require("cqueues")

local M = {}

--- wait(fd, mode, timeout): returns once the socket fd is ready for mode
-- ("r", "w" or "rw") or timeout seconds (nil: none) have passed.
function M.wait(fd, mode, timeout)
  cqueues.poll({ pollfd = fd, events = mode }, timeout)
  -- ormed may close fd next (a pool wait's eventfd, a discarded connection):
  -- cqueues must forget it first
  cqueues.cancel(fd)
end

return setmetatable(M, { __call = function(_, fd, mode, timeout) return M.wait(fd, mode, timeout) end })
