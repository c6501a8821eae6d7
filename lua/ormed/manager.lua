--- ormed.manager: ConnectionManager, the registry of named connections.
-- One namespace holds data sources (registered by DataSource:init) and
-- connections built on demand by a builder (ConnectionManager:register).
-- An unknown name always raises connection_not_found; nothing falls back.
-- @module ormed.manager
local errors = require("ormed.errors")
local util = require("ormed.util")

--- The registry of named connections: `orm.ConnectionManager.instance`
-- (where data sources register) or `orm.ConnectionManager()` (a new one).
-- @type ConnectionManager

local ConnectionManager = {}
ConnectionManager.__index = ConnectionManager

local function new_manager()
  return setmetatable({ _entries = {}, _default = nil }, ConnectionManager)
end

local function check_name(name)
  errors.check(util.is_name(name),
    "a connection name must be a string that is not empty or blank, got %s",
    type(name) == "string" and string.format("%q", name) or type(name))
end

--- Sorted list of registered names.
function ConnectionManager:names()
  local out = {}
  for name in pairs(self._entries) do out[#out + 1] = name end
  table.sort(out)
  return out
end

--- has(name): true when a connection is registered under name.
function ConnectionManager:has(name)
  return self._entries[name] ~= nil
end

local function not_found(self, name)
  local names = self:names()
  error(errors.Error({ kind = "connection_not_found", connection = tostring(name),
    message = string.format("no connection named '%s' (registered: %s)", tostring(name),
      #names > 0 and table.concat(names, ", ") or "none") }), 3)
end

local function add(self, name, entry, replace)
  check_name(name)
  local old = self._entries[name]
  if old and not replace then
    errors.raise("invalid_argument",
      "a connection named '%s' is already registered (pass replace = true to replace it)", name)
  end
  if old and old.instance and old.instance ~= entry.instance and old.instance.dispose then
    old.instance:dispose()
  end
  self._entries[name] = entry
  if self._default == nil then self._default = name end
  util.routes_changed()
end

--- register(name, config, builder, opts?): builder(config) makes the
-- connection the first time it is asked for. opts.replace (or
-- config.replace) allows taking a used name.
function ConnectionManager:register(name, config, builder, opts)
  errors.check(type(builder) == "function", "register('%s', config, builder) needs a builder function",
    tostring(name))
  local replace = (opts and opts.replace) or (type(config) == "table" and config.replace)
  add(self, name, { config = config or { name = name }, builder = builder }, replace)
  return self
end

--- Registers an existing connection object (a DataSource) under its name.
function ConnectionManager:add_instance(name, instance, replace)
  add(self, name, { instance = instance, config = { name = name } }, replace)
  return self
end

--- Removes a name; a connection it built is disposed. Unknown names raise.
function ConnectionManager:unregister(name, instance)
  local e = self._entries[name]
  if e == nil then not_found(self, name) end
  if instance and e.instance ~= instance then return self end
  self._entries[name] = nil
  if self._default == name then self._default = nil end
  util.routes_changed()
  if e.instance and e.instance ~= instance and e.instance.dispose then
    e.instance:dispose()
  end
  return self
end

--- The connection object registered as `name` (built on first use), or the
-- default connection when name is nil.
function ConnectionManager:connection(name)
  if name == nil then
    name = self._default
    if name == nil then
      error(errors.Error({ kind = "connection_not_found",
        message = "no default connection: initialise a DataSource or call set_default_connection" }), 2)
    end
  end
  local e = self._entries[name]
  if e == nil then not_found(self, name) end
  if e.instance == nil then
    local inst = e.builder(e.config)
    errors.check(type(inst) == "table", "the builder of '%s' returned %s, not a connection",
      name, type(inst))
    e.instance = inst
    util.routes_changed()
    if inst.init then inst:init() end
  end
  return e.instance
end

--- get_connection(name?): the same as connection(name).
-- @function ConnectionManager:get_connection

ConnectionManager.get_connection = ConnectionManager.connection

--- use(name, fn): fn(conn), returning what fn returns.
function ConnectionManager:use(name, fn)
  errors.check(type(fn) == "function", "use(name, fn) needs a function")
  return fn(self:connection(name))
end

--- set_default_connection(name): the connection used when none is named (it must be registered).
function ConnectionManager:set_default_connection(name)
  if self._entries[name] == nil then not_found(self, name) end
  self._default = name
  util.routes_changed()
  return self
end

--- The name of the default connection, or nil.
function ConnectionManager:default_connection_name()
  return self._default
end

setmetatable(ConnectionManager, { __call = function() return new_manager() end })

ConnectionManager.instance = new_manager()

return ConnectionManager
