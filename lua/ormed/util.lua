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

-- True when v can name a connection (or a tenant): a string with at least
-- one character that is not white space ("" and "   " are refused).
function M.is_name(v)
  return type(v) == "string" and v:find("%S") ~= nil
end

return M
