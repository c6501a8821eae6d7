--- ormed.model: orm.model(name, definition), models declared in Lua as data
-- (API.md §2): the class (User:find, User:create, User:query, ...), its
-- instances (attributes read and written as fields, save writing only the
-- changed columns, dirty tracking, casts, mass assignment, events,
-- timestamps, soft deletes) and the connection each instance belongs to.
--
-- Instance layout (see ormed.keys): the row table built in C is kept as
-- loaded in inst[ATTRS]; assigned values go to inst[DIRTY]. Reads look in
-- DIRTY, then ATTRS (cast to the field's type), then the methods, then the
-- relations (loaded lazily). A field named like a method (load, save, ...)
-- stays a field (nil when NULL) and hides the method on its instances, so
-- the model layer calls instance methods through model.methods, never
-- through the instance. Loading therefore copies nothing in Lua and
-- needs no snapshot for dirty tracking. Instances loaded through a data
-- source get that source's metatable (one per model and source), which is
-- how an instance remembers its connection.
-- @module ormed.model
local core = require("ormed.core")
local errors = require("ormed.errors")
local util = require("ormed.util")
local casts = require("ormed.casts")
local K = require("ormed.keys")
local relations = require("ormed.relations")
local ModelQuery = require("ormed.model_query")
local Query = require("ormed.query")
local ConnectionManager = require("ormed.manager")

local ATTRS, DIRTY, CACHE, LOADED = K.ATTRS, K.DIRTY, K.CACHE, K.LOADED
local SOURCE, GONE, NIL, DEFAULT = K.SOURCE, K.GONE, K.NIL, K.DEFAULT
local null = core.null
local json_cast = casts.json
local math_type = math.type
local routes = util.routes -- find's short way: see Model:find

local M = {}

-- The clock of timestamps and soft deletes: seconds since the epoch (may
-- have a fraction). Replaceable, e.g. by tests.
M.clock = os.time

local Model = {}    -- class methods, shared by every model
local Instance = {} -- instance methods, shared by every model

local EVENTS = { creating = true, created = true, updating = true, updated = true, saving = true,
  saved = true, deleting = true, deleted = true, restoring = true, restored = true }

-- {==== connections ====}

local resolve_source

-- The data source for `conn` (a name, a data source, or nil for the
-- model's own connection, else the manager's default); with a role
-- ("read" | "write", opts.role), that data source routing reads that way.
local function resolve(model, conn, role)
  local src = resolve_source(model, conn)
  if role ~= nil then return src:_with_role(role) end
  return src
end

-- The data source of a model given no connection: its own, else the
-- manager's default (found as ConnectionManager:connection() finds it,
-- without the method calls: every query started from the class asks).
local function model_source(model)
  local conn = model.connection -- a field of every model (false: none)
  if conn then return resolve_source(model, conn) end
  local mgr = ConnectionManager.instance
  local e = mgr._entries[mgr._default]
  return e and e.instance or mgr:connection()
end

resolve_source = function(model, conn)
  if conn == nil then
    conn = rawget(model, "connection") -- rawget: no method lookup
    if not conn then return ConnectionManager.instance:connection() end
  end
  local t = type(conn)
  if t == "table" then
    if type(conn._target) ~= "function" then
      errors.check(false, "%s: a connection must be a name or a DataSource / OrmConnection", model.name)
    end
    return conn
  end
  if conn ~= nil and t ~= "string" then
    errors.check(false, "%s: a connection must be a name or a DataSource / OrmConnection, got %s",
      model.name, t)
  end
  return ConnectionManager.instance:connection(conn)
end

local function model_of(inst)
  return getmetatable(inst).__model
end

-- Where this instance reads and writes.
local function source_of(inst)
  local s = rawget(inst, SOURCE)
  if s == nil then
    s = getmetatable(inst).__source
    if s ~= nil then return s end
  elseif s == DEFAULT then
    s = nil
  end
  return resolve(model_of(inst), s)
end

-- True when the row exists in the database (loaded or saved, not deleted).
local function persisted(inst)
  return getmetatable(inst).__source ~= nil and not rawget(inst, GONE)
end

-- {==== attributes ====}

local function cached_json(inst, k, raw)
  local cache = rawget(inst, CACHE)
  if cache == nil then
    cache = {}
    rawset(inst, CACHE, cache)
  end
  local v = cache[k]
  if v == nil then
    v = json_cast.read(raw)
    cache[k] = v
  end
  return v
end

-- The __index and __newindex of a model's instances.
local function accessors(model)
  local fields_cast, methods, rels = model._casts, model.methods, model.relations

  local function lazy_relation(inst, k)
    local loaded = rawget(inst, LOADED)
    if loaded and loaded[k] then return nil end
    methods.load(inst, k)
    return rawget(inst, k)
  end

  local function index(inst, k)
    local dirty = rawget(inst, DIRTY)
    if dirty ~= nil then
      local v = dirty[k]
      if v ~= nil then
        if v == NIL then return nil end
        return v
      end
    end
    local v = rawget(inst, ATTRS)[k]
    if v ~= nil then
      local c = fields_cast[k]
      if c == nil then return v end
      if c == json_cast then return cached_json(inst, k, v) end
      return c.read(v)
    end
    if fields_cast[k] ~= nil then return nil end -- a declared field, NULL or unset
    local m = methods[k]
    if m ~= nil then return m end
    if rels[k] ~= nil then return lazy_relation(inst, k) end
    return nil
  end

  local function newindex(inst, k, v)
    if type(k) ~= "string" or k:byte(1) == 95 or rels[k] ~= nil then
      rawset(inst, k, v)
      return
    end
    if v == nil or v == null then
      v = NIL
    else
      local c = fields_cast[k]
      if c then v = c.write(v, k) end
    end
    local dirty = rawget(inst, DIRTY)
    if dirty == nil then
      dirty = {}
      rawset(inst, DIRTY, dirty)
    end
    dirty[k] = v
  end

  return index, newindex
end

-- The value of attribute k as loaded (cast), or nil.
local function original(model, inst, k)
  local raw = rawget(inst, ATTRS)[k]
  if raw == nil then return nil end
  local c = model._casts[k]
  if c == nil then return raw end
  local v = c.read(raw) -- false is a value (a boolean field), not "unread"
  if v == nil then return raw end
  return v
end

-- True when the assigned value v (NIL for nil) differs from the loaded one.
local function differs(model, inst, k, v)
  local raw = rawget(inst, ATTRS)[k]
  if v == NIL or raw == nil then return (v == NIL) ~= (raw == nil) end
  local c = model._casts[k]
  if c == json_cast then
    return casts.json.stored(v) ~= casts.json.stored(c.read(raw))
  end
  return v ~= original(model, inst, k)
end

-- The changed attributes: { col = value | NIL }. A json value read and
-- then changed in place counts too.
local function changes_of(inst)
  local model = model_of(inst)
  local out = {}
  local dirty = rawget(inst, DIRTY)
  if dirty then
    for k, v in next, dirty do
      if differs(model, inst, k, v) then out[k] = v end
    end
  end
  local cache = rawget(inst, CACHE)
  if cache then
    for k, v in next, cache do
      if out[k] == nil and (dirty == nil or dirty[k] == nil) and type(v) == "table"
          and differs(model, inst, k, v) then
        out[k] = v
      end
    end
  end
  return out
end

-- Makes `values` ({ col = value | NIL }) the loaded state.
local function merge(model, inst, values)
  local attrs = rawget(inst, ATTRS)
  local cache = rawget(inst, CACHE)
  for k, v in pairs(values) do
    if v == NIL then
      attrs[k] = nil
      if cache then cache[k] = nil end
    else
      local c = model._casts[k]
      attrs[k] = c and c.stored(v) or v
      if c == json_cast then
        if cache == nil then
          cache = {}
          rawset(inst, CACHE, cache)
        end
        cache[k] = v
      end
    end
  end
  rawset(inst, DIRTY, nil)
end

-- Database values for { col = value | NIL } (orm.null for NIL).
local function db_values(model, values, dialect)
  local out = {}
  for k, v in pairs(values) do
    out[k] = v == NIL and null or casts.to_db(model._casts[k], v, dialect)
  end
  return out
end

-- {==== events ====}

-- Calls the handlers of `event`; false when one returned false.
local function fire(model, event, inst)
  local list = model._events[event]
  if list == nil then return true end
  for _, fn in ipairs(list) do
    if fn(inst) == false then return false end
  end
  return true
end

-- {==== mass assignment ====}

local function list_names(set)
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function check_fillable(model, k)
  errors.check(type(k) == "string", "%s: attribute names must be strings, got %s", model.name, type(k))
  local why
  if model.guarded and (model.guarded[k] or model.guarded["*"]) then
    why = "guarded"
  elseif model.fillable and not model.fillable[k] then
    why = "not fillable (fillable: " .. list_names(model.fillable) .. ")"
  end
  if why then
    error(errors.Error({ kind = "mass_assignment", model = model.name,
      message = string.format("%s: '%s' cannot be mass assigned: it is %s", model.name, k, why) }), 4)
  end
end

--- A model instance: attributes read and written as fields
-- (`user.credits = user.credits + 10`), loaded relations as fields
-- (`user.posts`), and these methods.
-- @type Instance

-- {==== instance methods ====}

--- fill(attrs): assigns attrs (raising mass_assignment for a guarded one,
-- before assigning anything); returns the instance.
function Instance:fill(attrs)
  local model = model_of(self)
  errors.check(type(attrs) == "table", "%s:fill(attrs) needs a table", model.name)
  for k in pairs(attrs) do check_fillable(model, k) end
  for k, v in pairs(attrs) do self[k] = v end
  return self
end

local function stamp(inst, col, now)
  if col and (rawget(inst, DIRTY) == nil or rawget(inst, DIRTY)[col] == nil) then inst[col] = now end
end

-- The row to insert: the attributes of a deleted row plus the assigned ones.
local function insert_values(inst)
  local model = model_of(inst)
  local values = {}
  if rawget(inst, GONE) then
    for k in pairs(rawget(inst, ATTRS)) do values[k] = original(model, inst, k) end
  end
  for k, v in pairs(rawget(inst, DIRTY) or {}) do values[k] = v end
  for k, v in pairs(values) do
    if v == NIL then values[k] = nil end
  end
  return values
end

local function insert_row(inst, model, src)
  if not fire(model, "creating", inst) then return false end
  local now = model:_timestamps_now()
  stamp(inst, model.created_at, now)
  stamp(inst, model.updated_at, now)
  local values = insert_values(inst)
  local row = db_values(model, values, src:dialect())
  local pk = model.primary_key
  local q = Query.new(src, model.table)
  if row[pk] ~= nil then
    q:insert(row)
  else
    values[pk] = q:insert_get_id(row, pk)
  end
  rawset(inst, ATTRS, {})
  rawset(inst, CACHE, nil)
  rawset(inst, GONE, nil)
  merge(model, inst, values)
  setmetatable(inst, model:_imt(src))
  fire(model, "created", inst)
  return true
end

local function key_of(inst, model, what)
  local id = rawget(inst, ATTRS)[model.primary_key]
  if id == nil then
    errors.raise("invalid_argument", "%s:%s(): the instance was loaded without its primary key '%s'",
      model.name, what, model.primary_key)
  end
  return id
end

-- A plain query of the instance's row on src.
local function row_query(src, inst, model, what)
  return Query.new(src, model.table):where(model.primary_key, key_of(inst, model, what))
end

local function update_row(inst, model, src)
  if next(changes_of(inst)) == nil then return true end
  if not fire(model, "updating", inst) then return false end
  local changes = changes_of(inst)
  local col = model.updated_at
  if col and changes[col] == nil then changes[col] = model:_timestamps_now() end
  row_query(src, inst, model, "save"):update(db_values(model, changes, src:dialect()))
  merge(model, inst, changes)
  fire(model, "updated", inst)
  return true
end

--- save(): inserts a new instance, or updates only the changed columns.
-- Returns true, or false when an event handler cancelled it.
function Instance:save()
  local model = model_of(self)
  local src = source_of(self)
  if not fire(model, "saving", self) then return false end
  local ok
  if persisted(self) then
    ok = update_row(self, model, src)
  else
    ok = insert_row(self, model, src)
  end
  if not ok then return false end
  fire(model, "saved", self)
  return true
end

--- update(attrs): fill + save.
function Instance:update(attrs)
  local methods = model_of(self).methods
  return methods.save(methods.fill(self, attrs))
end

local function hard_delete(inst, model)
  if not persisted(inst) or not fire(model, "deleting", inst) then return false end
  row_query(source_of(inst), inst, model, "delete"):delete()
  rawset(inst, GONE, true)
  fire(model, "deleted", inst)
  return true
end

--- delete(): sets deleted_at when the model has soft deletes, else deletes
-- the row. Returns true, or false (not saved, or cancelled).
function Instance:delete()
  local model = model_of(self)
  local col = model.soft_delete
  if not col then return hard_delete(self, model) end
  if not persisted(self) or not fire(model, "deleting", self) then return false end
  local now = model:_timestamps_now()
  local src = source_of(self)
  row_query(src, self, model, "delete"):update({ [col] = casts.to_db(casts.datetime, now, src:dialect()) })
  merge(model, self, { [col] = now })
  fire(model, "deleted", self)
  return true
end

--- Deletes the row for good, even when the model has soft deletes.
function Instance:force_delete()
  return hard_delete(self, model_of(self))
end

--- restore(): clears deleted_at (soft deletes only).
function Instance:restore()
  local model = model_of(self)
  local col = model.soft_delete
  errors.check(col, "%s:restore() needs a model with soft_deletes", model.name)
  if not persisted(self) or not fire(model, "restoring", self) then return false end
  row_query(source_of(self), self, model, "restore"):update({ [col] = null })
  merge(model, self, { [col] = NIL })
  fire(model, "restored", self)
  return true
end

--- trashed(): true when soft-deleted.
function Instance:trashed()
  local col = model_of(self).soft_delete
  return col ~= nil and rawget(self, ATTRS)[col] ~= nil
end

local function forget_relations(inst)
  local loaded = rawget(inst, LOADED)
  if loaded == nil then return end
  for name in pairs(loaded) do rawset(inst, name, nil) end
  rawset(inst, LOADED, nil)
end

--- refresh(): reloads the attributes from the database (assigned values
-- and loaded relations are dropped); returns the instance.
function Instance:refresh()
  local model = model_of(self)
  local id = key_of(self, model, "refresh")
  local fresh = model:query({ connection = source_of(self) }):without_global_scopes()
    :where(model.table .. "." .. model.primary_key, id):first()
  if fresh == nil then ModelQuery.not_found(model, model.primary_key .. " = " .. tostring(id)) end
  rawset(self, ATTRS, rawget(fresh, ATTRS))
  rawset(self, DIRTY, nil)
  rawset(self, CACHE, nil)
  forget_relations(self)
  return self
end

--- is_dirty(col?): whether col (or any attribute) changed since loaded.
function Instance:is_dirty(col)
  local ch = changes_of(self)
  if col ~= nil then return ch[col] ~= nil end
  return next(ch) ~= nil
end

--- get_dirty(): { col = new value } (orm.null for nil).
function Instance:get_dirty()
  local ch = changes_of(self)
  for k, v in pairs(ch) do
    if v == NIL then ch[k] = null end
  end
  return ch
end

--- get_original(col): the value as loaded.
function Instance:get_original(col)
  return original(model_of(self), self, col)
end

local function plain(v)
  if type(v) ~= "table" then return v end
  local mt = getmetatable(v)
  if mt and mt.__model then return mt.__model.methods.to_table(v) end
  if mt == nil and v[1] ~= nil then
    local out = {}
    for i, x in ipairs(v) do out[i] = plain(x) end
    return out
  end
  return v
end

--- to_table(): a plain table of the attributes, loaded relations and extra
-- fields (posts_count, pivot), hidden fields left out.
function Instance:to_table()
  local model = model_of(self)
  local hidden = model.hidden
  local out = {}
  for k in next, rawget(self, ATTRS) do
    if not hidden[k] then out[k] = self[k] end
  end
  for k in next, rawget(self, DIRTY) or {} do
    if not hidden[k] then out[k] = self[k] end
  end
  for k, v in next, self do
    if type(k) == "string" and k:byte(1) ~= 95 and not hidden[k] then out[k] = plain(v) end
  end
  return out
end

--- load(relations, opts?): eager-loads relations into this instance (on
-- opts.connection, else the instance's); returns the instance.
function Instance:load(spec, opts)
  local model = model_of(self)
  local src = (opts and opts.connection) and resolve(model, opts.connection) or source_of(self)
  if opts and opts.role then src = src:_with_role(opts.role) end
  relations.eager(model, { self }, relations.add_with(model, nil, spec), src)
  return self
end

--- related(name): a query of this instance's related rows.
function Instance:related(name)
  return relations.query_for(self, name, source_of(self))
end

--- attach(relation, ids, pivot_values?): adds pivot rows of a belongs_to_many relation.
function Instance:attach(name, ids, pivot_values)
  return relations.attach(self, source_of(self), name, ids, pivot_values)
end

--- detach(relation, ids?): removes pivot rows of a belongs_to_many relation (all when ids is nil).
function Instance:detach(name, ids)
  return relations.detach(self, source_of(self), name, ids)
end

--- sync(relation, ids): makes the pivot rows of a belongs_to_many relation exactly ids.
function Instance:sync(name, ids)
  return relations.sync(self, source_of(self), name, ids)
end

--- set_connection(conn): later save/delete/load go to conn (a name or a
-- data source; nil = the model's default). Returns the instance.
function Instance:set_connection(conn)
  errors.check(conn == nil or type(conn) == "string" or type(conn) == "table",
    "set_connection(name) needs a connection name or a data source")
  rawset(self, SOURCE, conn == nil and DEFAULT or conn)
  return self
end

--- connection_name(): the name of the connection this instance uses.
function Instance:connection_name()
  local s = rawget(self, SOURCE)
  if type(s) == "string" then return s end
  if type(s) == "table" and s ~= DEFAULT then return s.name end
  s = s == nil and getmetatable(self).__source
  if s then return s.name end
  local model = model_of(self)
  return model.connection or ConnectionManager.instance:default_connection_name()
end

local function instance_tostring(inst)
  local model = model_of(inst)
  return string.format("%s(%s=%s)", model.name, model.primary_key, tostring(inst[model.primary_key]))
end

--- A model class, made by `orm.model(name, definition)`: these methods,
-- plus every query method as a shortcut (`User:where(...)`,
-- `User:with{...}`, `User:active()` for a scope), each starting a new query.
-- Call the model (`User{...}`) for a new unsaved instance.
-- @type Model

--- where(...): Model:query():where(...); every filter of ormed.query works the same way on the
-- class (where_in, where_null, ...).
-- @function Model:where


-- {==== class methods ====}

function Model._timestamps_now(_)
  return casts.iso_from_epoch(M.clock())
end

-- The instance metatable for rows of `source` (nil: not saved yet).
function Model:_imt(source)
  if source == nil then return self._base_imt end
  local mt = self._imts[source]
  if mt == nil then
    mt = { __index = self._index, __newindex = self._newindex, __model = self, __source = source,
      __name = "ormed.instance", __tostring = instance_tostring }
    self._imts[source] = mt
  end
  return mt
end

-- The hydration table C uses for rows of `source`.
function Model:_hydration(source)
  local h = self._hyds[source]
  if h == nil then
    h = { ATTRS, self:_imt(source) } -- { key, metatable }: C reads [1] and [2]
    self._hyds[source] = h
  end
  return h
end

-- A new, unsaved instance that will be saved on `source`.
function Model:_new_on(source, attrs)
  local inst = self:new(attrs)
  if source ~= nil then rawset(inst, SOURCE, source) end
  return inst
end

--- new(attrs?) / Model(attrs?): an unsaved instance.
function Model:new(attrs)
  local inst = setmetatable({ [ATTRS] = {} }, self._base_imt)
  if attrs ~= nil then self.methods.fill(inst, attrs) end
  return inst
end

--- query(opts?): a query on this model (`opts.connection`: a name or a data source).
function Model:query(opts)
  return ModelQuery.new(self, resolve(self, opts and opts.connection, opts and opts.role))
end

-- A query on `source` with the table named `alias` (for sub-queries).
function Model:_query_on(source, alias)
  return ModelQuery.new(self, source, alias)
end

--- all(opts?): every instance (scopes applied).
function Model:all(opts)
  return self:query(opts):get()
end

local SOFT_DELETES = ModelQuery.SOFT_DELETES
local registry_scopes = ModelQuery.registry_scopes
local tx_active = require("ormed.datasource")._active -- open transactions, by coroutine

-- The SQL of find(id) on `source`, compiled once by the C builder (false
-- when a scope binds values of its own: find then builds a query).
local function find_sql(model, source)
  local cq = ModelQuery.new(model, source):where(model.table .. "." .. model.primary_key, 0):_compiled()
  local sql, binds = cq:limit(1):to_sql(source:_target(false))
  if #binds ~= 1 then sql = false end
  model._find_sql[source] = sql
  return sql
end

-- find's long way: the data source, the scopes, the statement, the target
-- of this call. Where they are the plain ones (no options, no scope with
-- bindings, no transaction open), it remembers them as the model's route
-- (self._route) for the short way: with the data source's pool, or, where
-- the source picks a server per statement (replicas, leak tracking),
-- without one (the source is asked each time).
local function find_routed(self, id, opts)
  local src
  if opts ~= nil then
    src = resolve(self, opts.connection, opts.role)
  else
    src = model_source(self)
  end
  -- the cached statement serves only where no scope with bindings applies
  local gs = self._global_scopes
  local scoped = gs[1] ~= nil and (gs[2] ~= nil or gs[1].id ~= SOFT_DELETES)
  local ours = true -- the scopes come from nowhere but ormed's own registries
  if not scoped then
    local ctx = src.context
    local reg = ctx and ctx.scope_registry
    if reg then
      local by = reg._by_model -- the data source's own registry
      if by then reg = by[self] else reg, ours = registry_scopes(src, self), false end
      scoped = reg ~= nil and reg[1] ~= nil
    end
  end
  local sql = not scoped and self._find_sql[src]
  if sql == nil then sql = find_sql(self, src) end
  if sql then
    -- a data source's pool (set when it has no replicas and no leak
    -- tracking) when no transaction is open anywhere; else ask the source
    local target = src._plain
    local hyd = self._hyds[src] or self:_hydration(src)
    local tx = next(tx_active) ~= nil
    if opts == nil and ours and not tx then
      self._route = { n = routes.n, conn = rawget(self, "connection"), pool = target, src = src,
        sql = sql, hyd = hyd }
    end
    if not target or tx then target = src:_target(false) end
    -- false: the key is not an integer (C checks it)
    local inst = target:_find(sql, id, hyd)
    if inst ~= false then return inst end
  end
  if math_type(id) ~= "integer" then
    id = ModelQuery.key_value(self, id)
    if id == false then return nil end
    -- the short way only takes an integer: any other key (a model whose
    -- key is not an integer field) goes through a query, as does nil
    if not sql or math_type(id) ~= "integer" then
      return ModelQuery.find_in(ModelQuery.new(self, src), id)
    end
    return find_routed(self, id, opts)
  end
  return ModelQuery.find_in(ModelQuery.new(self, src), id)
end

--- find(id, opts?): the instance with this primary key, or nil. Under an
-- integer primary key, a string or float that is not an integer finds
-- nothing (it is never sent to the database).
function Model:find(id, opts)
  -- the hot path of the ORM: the route the last call took, while nothing
  -- it depends on has changed (util.routes) and the model's connection is
  -- the same; the pool's _find gives false for a key that is not an integer
  local r = self._route
  if opts == nil and r.n == routes.n and self.connection == r.conn then
    local inst = (r.pool or r.src:_target(false)):_find(r.sql, id, r.hyd)
    if inst ~= false then return inst end
  end
  return find_routed(self, id, opts)
end

--- find_or_fail(id, opts?): the instance with this primary key; raises model_not_found.
function Model:find_or_fail(id, opts)
  return self:query(opts):find_or_fail(id)
end

--- first(opts?): the first instance, or nil.
function Model:first(opts)
  return self:query(opts):first()
end

--- first_or_fail(opts?): the first instance; raises model_not_found.
function Model:first_or_fail(opts)
  return self:query(opts):first_or_fail()
end

--- count(opts?): the number of rows (scopes applied).
function Model:count(opts)
  return self:query(opts):count()
end

--- create(attrs, opts?): inserts a new instance and returns it (false when a creating or saving
-- handler cancelled it).
function Model:create(attrs, opts)
  return self:query(opts):create(attrs or {})
end

--- destroy(ids, opts?): deletes (with events) the rows with these ids;
-- returns how many were deleted.
function Model:destroy(ids, opts)
  if type(ids) ~= "table" then ids = { ids } end
  local keys = {}
  for _, id in ipairs(ids) do
    id = ModelQuery.key_value(self, id)
    if id ~= false then keys[#keys + 1] = id end -- not an integer: no row has it
  end
  local n = 0
  if #keys == 0 then return 0 end
  for _, inst in ipairs(self:query(opts):where_in(self.table .. "." .. self.primary_key, keys):get()) do
    if self.methods.delete(inst) then n = n + 1 end
  end
  return n
end

local function merged(a, b)
  local t = {}
  for k, v in pairs(a or {}) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

--- first_or_create(match, values?, opts?): the first row matching, or a new
-- one created from match + values.
function Model:first_or_create(match, values, opts)
  errors.check(type(match) == "table", "%s:first_or_create(match, values) needs a table", self.name)
  local inst = self:query(opts):where(match):first()
  if inst ~= nil then return inst end
  return self:create(merged(match, values), opts)
end

--- update_or_create(match, values, opts?): updates the first row matching
-- with values, or creates one from match + values.
function Model:update_or_create(match, values, opts)
  errors.check(type(match) == "table", "%s:update_or_create(match, values) needs a table", self.name)
  local inst = self:query(opts):where(match):first()
  if inst == nil then return self:create(merged(match, values), opts) end
  self.methods.update(inst, values or {})
  return inst
end

--- upsert(rows, unique_by, update_columns?, opts?): see ModelQuery:upsert.
function Model:upsert(rows, unique_by, update_columns, opts)
  return self:query(opts):upsert(rows, unique_by, update_columns)
end

--- load_many(instances, relations, opts?): eager-loads relations into a
-- list of instances (one query per relation level).
function Model:load_many(list, spec, opts)
  if #list == 0 then return list end
  local src = (opts and opts.connection) and resolve(self, opts.connection) or source_of(list[1])
  if opts and opts.role then src = src:_with_role(opts.role) end
  relations.eager(self, list, relations.add_with(self, nil, spec), src)
  return list
end

--- on(event, fn): fn(instance) around writes; a "*ing" handler returning
-- false cancels the write. Returns a function that removes the handler.
function Model:on(event, fn)
  errors.check(EVENTS[event], "%s:on(event, fn): unknown event '%s' (%s)", self.name,
    tostring(event), list_names(EVENTS))
  errors.check(type(fn) == "function", "%s:on('%s', fn) needs a function", self.name, event)
  local list = self._events[event] or {}
  self._events[event] = list
  return util.add_handler(list, fn)
end

--- add_global_scope(id, fn): fn(query) runs on every query of this model
-- (lift with without_global_scope(id)).
function Model:add_global_scope(id, fn)
  errors.check(type(id) == "string", "%s:add_global_scope(id, fn) needs a string id", self.name)
  errors.check(type(fn) == "function", "%s:add_global_scope('%s', fn) needs a function", self.name, id)
  local list = self._global_scopes
  for i, s in ipairs(list) do
    if s.id == id then table.remove(list, i) break end
  end
  list[#list + 1] = { id = id, fn = fn }
  util.routes_changed()
  return self
end

-- Query methods callable on the class start a query (the class's own
-- methods come first): every method of the C query (core.query_methods)
-- and of the model query, derived, not listed. Not the model query's
-- plumbing.
local NOT_SHORTCUTS = { new = true, metatable_for = true, table_ref = true, c_query = true,
  registry_scopes = true, soft_scope = true, clone = true }
local SHORTCUTS = {}
for name, kind in pairs(core.query_methods) do
  if kind ~= "other" then SHORTCUTS[name] = true end
end
for name, v in pairs(ModelQuery) do
  if type(v) == "function" and name:sub(1, 1) ~= "_" and not NOT_SHORTCUTS[name] then
    SHORTCUTS[name] = true
  end
end

-- One closure per shortcut name, shared by every model.
local plain_query = core.plain_query
local shortcut_fns = setmetatable({}, { __index = function(t, k)
  local f = function(self, ...)
    local q = plain_query(model_source(self), self.table, self._query_mt) -- ModelQuery.new
    return q[k](q, ...)
  end
  t[k] = f
  return f
end })

-- A model class's metatable: what the class offers besides its own fields
-- is Model's methods and the shortcuts (kept in the class's index table
-- once found, so `User:where` is a table lookup), then the model's own
-- scopes (looked up each time: scopes may be added later).
local function model_meta(model)
  local index = setmetatable({}, { __index = function(t, k)
    local v = Model[k]
    if v == nil and SHORTCUTS[k] then v = shortcut_fns[k] end
    if v ~= nil then
      rawset(t, k, v)
      return v
    end
    local scopes = rawget(model, "scopes")
    if scopes and type(k) == "string" and scopes[k] then return shortcut_fns[k] end
    return nil
  end })
  return {
    __name = "ormed.Model",
    __call = function(m, attrs) return m:new(attrs) end,
    __tostring = function(m) return "ormed.Model(" .. m.name .. ")" end,
    __index = index,
  }
end

--- Defining models.
-- @section definition

-- {==== definition ====}

-- "User" -> "users", "BlogPost" -> "blog_posts", "Category" -> "categories"
local function plural(word)
  if word:match("[^aeiou]y$") then return word:sub(1, -2) .. "ies" end
  if word:match("[sxz]$") or word:match("[cs]h$") then return word .. "es" end
  return word .. "s"
end

local function name_set(list, model, what)
  if list == nil then return nil end
  errors.check(type(list) == "table", "model %s: %s must be a list of field names", model, what)
  local set = {}
  for _, v in ipairs(list) do
    errors.check(type(v) == "string", "model %s: %s must be a list of field names", model, what)
    set[v] = true
  end
  return set
end

local function define_fields(m, def)
  m.fields, m._casts, m._filter_casts = {}, {}, {}
  errors.check(def.fields == nil or type(def.fields) == "table",
    "model %s: fields must be a table { name = type }", m.name)
  local function add(col, ty)
    m.fields[col] = ty
    m._casts[col] = casts.get(ty, m.name, col)
  end
  for col, ty in pairs(def.fields or {}) do add(col, ty) end
  local ts = def.timestamps
  if ts then
    local t = type(ts) == "table" and ts or {}
    m.created_at = t.created_at == nil and "created_at" or t.created_at or nil
    m.updated_at = t.updated_at == nil and "updated_at" or t.updated_at or nil
  end
  local sd = def.soft_deletes
  if sd then m.soft_delete = type(sd) == "string" and sd or "deleted_at" end
  for _, col in ipairs({ m.created_at or false, m.updated_at or false, m.soft_delete or false }) do
    if col and not m.fields[col] then add(col, "datetime") end
  end
  -- filter values converted for the database: blob, and datetime (MySQL)
  for col, c in pairs(m._casts) do
    if c == casts.blob or c == casts.datetime then m._filter_casts[col] = c end
  end
  m._filter_casts_any = next(m._filter_casts) ~= nil
  -- the filter cast of a column as written in a query ("users.born_on"), or false
  m._cast_of = setmetatable({}, { __index = function(t, col)
    local c = m._filter_casts[col:match("([^%.]+)$")] or false
    t[col] = c
    return c
  end })
end

local function define_scopes(m, def)
  m.scopes = {}
  for name, fn in pairs(def.scopes or {}) do
    errors.check(type(name) == "string" and type(fn) == "function",
      "model %s: scopes must be { name = function(q, ...) end }", m.name)
    m.scopes[name] = fn
  end
  m._global_scopes = {}
  if m.soft_delete then
    m._global_scopes[1] = { id = ModelQuery.SOFT_DELETES, fn = ModelQuery.soft_scope(m, false) }
  end
  local ids = {}
  for id in pairs(def.global_scopes or {}) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do Model.add_global_scope(m, id, def.global_scopes[id]) end
end

local function define_methods(m, def)
  local methods = {}
  for name, fn in pairs(def.methods or {}) do
    errors.check(type(fn) == "function", "model %s: methods.%s must be a function", m.name, tostring(name))
    methods[name] = fn
  end
  m.methods = setmetatable(methods, { __index = Instance })
end

local KNOWN = { table = true, primary_key = true, fields = true, timestamps = true,
  soft_deletes = true, fillable = true, guarded = true, hidden = true, connection = true,
  relations = true, scopes = true, global_scopes = true, methods = true }

--- orm.model(name, definition): defines (or redefines) the model `name`.
function M.model(name, def)
  errors.check(type(name) == "string" and name:match("^[%a_][%w_]*$"),
    "orm.model(name, definition): name must be an identifier, got %s", tostring(name))
  def = def or {}
  errors.check(type(def) == "table", "orm.model('%s', definition): definition must be a table", name)
  for k in pairs(def) do
    errors.check(KNOWN[k], "orm.model('%s'): unknown option '%s' (%s)", name, tostring(k), list_names(KNOWN))
  end
  local m = { name = name }
  setmetatable(m, model_meta(m))
  m.table = def.table or plural(relations.snake(name))
  m.primary_key = def.primary_key or "id"
  m.connection = def.connection or false -- always a field: find compares it
  define_fields(m, def)
  m.fillable = name_set(def.fillable, name, "fillable")
  m.guarded = name_set(def.guarded, name, "guarded")
  m.hidden = name_set(def.hidden, name, "hidden") or {}
  m.relations = {}
  for rname, rdef in pairs(def.relations or {}) do
    m.relations[rname] = relations.bind(m, rname, rdef)
  end
  define_scopes(m, def)
  define_methods(m, def)
  m._events = {}
  m._imts = setmetatable({}, { __mode = "k" })
  m._hyds = setmetatable({}, { __mode = "k" })
  m._find_sql = setmetatable({}, { __mode = "k" })
  m._route = { n = -1 } -- find's remembered route: none yet
  m._index, m._newindex = accessors(m)
  m._base_imt = { __index = m._index, __newindex = m._newindex, __model = m,
    __name = "ormed.instance", __tostring = instance_tostring }
  m._query_mt = ModelQuery.metatable_for(m)
  relations.models[name] = m
  return m
end

--- The model registered under name, or nil.
function M.get(name)
  return relations.models[name]
end

--- True when v is an instance of a model (of `model` when given).
function M.is_instance(v, model)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__model ~= nil and (model == nil or mt.__model == model) or false
end

--- orm.has_one(Model, { foreign_key?, local_key? }): one related row whose foreign key (default
-- <model>_id) points at this one.
-- @function has_one

--- orm.has_many(Model, { foreign_key?, local_key? }): the related rows whose foreign key points at this one.
-- @function has_many

--- orm.belongs_to(Model, { foreign_key?, owner_key? }): the row this one's foreign key (default
-- <relation>_id) points at.
-- @function belongs_to

--- orm.belongs_to_many(Model, { pivot?, foreign_key?, related_key?, pivot_columns? }): rows linked
-- through a pivot table.
-- @function belongs_to_many


M.has_one = relations.has_one
M.has_many = relations.has_many
M.belongs_to = relations.belongs_to
M.belongs_to_many = relations.belongs_to_many
M.Model = Model
M.Instance = Instance

return M
