-- ormed.keys: the private keys of a model instance, shared by the model,
-- query and relation modules. An instance is a table
--   { [ATTRS] = row, [DIRTY] = { col = value | NIL }?, [CACHE] = { col = decoded json }?,
--     [LOADED] = { relation = true }?, [SOURCE] = connection?, [GONE] = true?,
--     <relation> = loaded value, <extra> = value (posts_count, pivot, _private) }
-- whose row table is built (and wrapped) in C while the result is read, so
-- loading copies nothing in Lua; attribute reads and writes go through the
-- model's __index / __newindex.
local function key(name)
  return setmetatable({}, { __name = "ormed.key." .. name, __tostring = function() return name end })
end

return {
  ATTRS = key("attrs"),     -- the row as loaded (or as last saved), database form
  DIRTY = key("dirty"),     -- values assigned since, NIL for nil
  CACHE = key("cache"),     -- decoded json values of ATTRS, read once
  LOADED = key("loaded"),   -- names of the relations loaded (even when empty)
  SOURCE = key("source"),   -- set_connection(): a name, a data source or DEFAULT
  GONE = key("gone"),       -- deleted from the database (hard delete)
  NIL = key("nil"),         -- an assigned nil (SQL NULL) inside DIRTY
  DEFAULT = key("default"), -- set_connection(nil): the model's default connection
}
