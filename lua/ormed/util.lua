-- ormed.util: small helpers shared by the Lua layer.
local M = {}

-- Appends fn to list and returns a function that removes it again
-- (listeners of a data source, event handlers of a model).
function M.add_handler(list, fn)
  list[#list + 1] = fn
  return function()
    for i, f in ipairs(list) do
      if f == fn then table.remove(list, i) return end
    end
  end
end

-- What Model:find's remembered route depends on: `n` changes whenever a
-- connection is registered, replaced, unregistered or made the default, a
-- data source opens or closes its pool, a global scope or a registry scope
-- is added or removed, or a transaction opens. find goes its short way only
-- while `n` is what it was when the route was taken.
M.routes = { n = 0 }

-- Marks every remembered route stale (see M.routes).
function M.routes_changed()
  local r = M.routes
  r.n = r.n + 1
end

-- True when v can name a connection (or a tenant): a string with at least
-- one character that is not white space ("" and "   " are refused).
function M.is_name(v)
  return type(v) == "string" and v:find("%S") ~= nil
end

return M
