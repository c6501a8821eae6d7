--- ormed.errors: orm.Error, the one error value every failure raises.
-- Error values are tables { kind, message, connection?, sql?, sqlstate?, code? }
-- whose metatable is orm.Error itself (shared with the C engine), so
-- getmetatable(err) == orm.Error and tostring(err) gives one readable line.
-- @module ormed.errors
local core = require("ormed.core")

local Error = core.Error
Error.__index = Error

local M = {}

--- orm.Error: the error value every failure raises, a table with `kind`,
-- `message` and, where they apply, `connection`, `sql`, `sqlstate` and
-- `code`. Kinds: connection_not_found, not_initialized, connection_failed,
-- connection_lost, pool_timeout, cross_connection_transaction, query,
-- unique_violation, foreign_key_violation, not_null_violation,
-- model_not_found, mass_assignment, invalid_argument, migration_changed,
-- migration_failed, migration_missing.
-- @type Error

--- Builds an error value from a table of fields (kind and message required).
function Error.new(fields)
  local e = {}
  for k, v in pairs(fields) do e[k] = v end
  e.kind = e.kind or "query"
  e.message = e.message or e.kind
  return setmetatable(e, Error)
end

--- True when v is an orm.Error (optionally of the given kind).
function Error.is(v, kind)
  return getmetatable(v) == Error and (kind == nil or v.kind == kind)
end

setmetatable(Error, {
  __call = function(_, fields) return Error.new(fields) end,
})

M.Error = Error

--- Module functions.
-- @section functions


--- Raises an orm.Error of `kind` with a formatted message.
function M.raise(kind, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(Error.new({ kind = kind, message = msg }), 2)
end

--- Raises invalid_argument unless cond holds.
function M.check(cond, fmt, ...)
  if not cond then
    error(Error.new({ kind = "invalid_argument",
      message = select("#", ...) > 0 and string.format(fmt, ...) or fmt }), 2)
  end
  return cond
end

return M
