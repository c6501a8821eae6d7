--- ormed.model_query: the query of a model. Builder calls go straight to the
-- C query (core.query) and return the query; reads hydrate instances in C
-- (the model's metatable is set while each row table is built) and then
-- eager-load the relations asked for with with() / with_count().
--
-- Global scopes (soft deletes, the model's own, and those registered on the
-- data source's context.scope_registry) are applied when the query runs,
-- so without_global_scope() works at any point. They must be ANDed with
-- the user's filters as a whole (`a OR b` must not become `a OR b AND s`):
-- the query runs as a copy of its C query whose WHERE holds the scopes
-- first and the user's filters as one parenthesised group (the engine's
-- scope_begin / scope_end), with nothing recorded or replayed.
-- @module ormed.model_query
local core = require("ormed.core")
local errors = require("ormed.errors")
local casts = require("ormed.casts")
local K = require("ormed.keys")
local relations = require("ormed.relations")
local Query = require("ormed.query")

--- The query of a model (`User:query()`, `User:where(...)`): every method
-- of a plain Query (ormed.query: filters, shape, reads, writes) with
-- instances instead of rows, plus relations, scopes and soft deletes. A
-- scope of the model is a method too: `User:query():active()`.
-- @type ModelQuery

local null = core.null
local plain_query, source_of, state_of = core.plain_query, core.query_source, core.query_state
local C = Query.C -- the C query methods: a model query is a C query of its model's class

local ModelQuery = {}

local SOFT_DELETES = "soft_deletes"

-- {==== construction ====}

-- The scopes registered for model on a data source's scope registry, or
-- nil (none, or no registry).
local function registry_scopes(source, model)
  local ctx = source.context
  local reg = ctx and ctx.scope_registry
  if reg == nil then return nil end
  local by = rawget(reg, "_by_model") -- the data source's own registry
  if by then return by[model] end
  return reg:scopes_for(model)
end

-- A model query is a query userdata of its model's class (core.plain_query:
-- its source is a user value, _model a field of the class); the fields a
-- query sets for itself (_alias, _dialect, _removed, _only_trashed, _with,
-- _counts) live in its state table (core.query_state). A view of a group
-- (below) is a table { _q, _source, _alias } of the same class.

-- The field k of this query's own (nil when it never set one).
local function own(self, k)
  local st = state_of(self)
  return st and rawget(st, k)
end

-- Sets this query's own field k.
local function set_own(self, k, v)
  state_of(self, true)[k] = v
end

-- The C query the builders of self change: self, or a view's group.
local function cq_of(self)
  if type(self) == "table" then return self._q end
  return self
end

--- A query of `model` run through `source` (a DataSource or OrmConnection),
-- its table named `alias` in the SQL when given (a sub-query on the table
-- of its outer query).
function ModelQuery.new(model, source, alias)
  if alias == nil then return plain_query(source, model.table, model._query_mt) end
  local q = plain_query(source, model.table .. " as " .. alias, model._query_mt)
  set_own(q, "_alias", alias)
  return q
end

--- The name that qualifies this query's columns: its alias or table.
function ModelQuery:table_ref()
  return own(self, "_alias") or self._model.table
end

-- A view of self whose builder calls go to `cq` (a group being built):
-- what global scope functions receive, and the group functions of a
-- model whose filters convert values (the others get the query itself).
local function nested(self, cq)
  return setmetatable({ _q = cq, _source = source_of(self), _alias = own(self, "_alias") },
    getmetatable(self))
end

-- {==== builder calls ====}

-- "a, b" or "none", for messages.
local function scope_names(model)
  local names = {}
  for s in pairs(model.scopes) do names[#names + 1] = s end
  table.sort(names)
  return #names > 0 and table.concat(names, ", ") or "none"
end

-- The value to bind for `v` compared (with operator op, "=" when nil) to
-- column `col`: blob fields bind bytes, datetime fields take ISO strings or
-- epoch seconds and bind the dialect's form (MySQL has no "T...Z").
local function filter_value(self, col, v, op)
  if type(col) ~= "string" or v == nil or v == null then return v end
  if type(op) == "string" and op:lower():find("like", 1, true) then return v end
  local c = self._model._cast_of[col]
  if c == false or type(v) == "table" and getmetatable(v) then return v end
  local dialect = own(self, "_dialect")
  if dialect == nil then
    dialect = source_of(self):dialect()
    set_own(self, "_dialect", dialect)
  end
  return casts.to_db(c, c.write(v, col), dialect)
end

local function filter_list(self, col, list)
  if type(list) ~= "table" or getmetatable(list) then return list end
  local out = {}
  for i, v in ipairs(list) do out[i] = filter_value(self, col, v) end
  return out
end

local function filter_table(self, t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" then
      out[k] = filter_value(self, k, v)
    elseif type(v) == "table" and #v == 2 then
      out[k] = { v[1], filter_value(self, v[1], v[2]) }
    elseif type(v) == "table" and #v == 3 then
      out[k] = { v[1], v[2], filter_value(self, v[1], v[3], v[2]) }
    else
      out[k] = v
    end
  end
  return out
end

local COMPARE = { where = true, or_where = true, where_equals = true, or_where_equals = true,
  where_not = true, or_where_not = true }
local LISTS = { where_in = true, where_not_in = true, or_where_in = true, or_where_not_in = true }
local BETWEEN = { where_between = true, where_not_between = true, or_where_between = true,
  or_where_not_between = true }

-- Converts, in place, filter values of typed fields in args (a packed
-- argument list) and model queries given as sub-queries.
local function cast_args(self, name, args)
  local a, b = args[1], args[2]
  if self._model._filter_casts_any then
    if COMPARE[name] then
      if args.n == 1 and type(a) == "table" then
        args[1] = filter_table(self, a)
      elseif args.n == 2 then
        args[2] = filter_value(self, a, b)
      elseif args.n >= 3 then
        args[3] = filter_value(self, a, args[3], b)
      end
    elseif LISTS[name] then
      args[2] = filter_list(self, a, b)
    elseif BETWEEN[name] then
      args[2], args[3] = filter_value(self, a, b), filter_value(self, a, args[3])
    end
  end
  for i = 1, 2 do
    args[i] = Query.sub_query(source_of(self), args[i], name)
  end
end

-- Runs one recorded or new builder call (args: a packed list) on the C
-- query `cq`; a function argument (a group) gets a query view of the group.
local function apply(self, cq, name, args)
  local f = C[name]
  if f == nil then
    errors.raise("invalid_argument", "%s query: no method or scope '%s' (scopes: %s)",
      self._model.name, tostring(name), scope_names(self._model))
  end
  local fn = args[1]
  if type(fn) == "function" then
    return f(cq, function(inner) fn(nested(self, inner)) end, table.unpack(args, 2, args.n))
  end
  return f(cq, table.unpack(args, 1, args.n))
end

-- A builder method: forwards to C, records the call, returns self (or
-- what C returned when it is not the query: table_name(), ...).
local function builder(name, model)
  local compare = COMPARE[name] or LISTS[name] or BETWEEN[name]
  local sub_query = name:find("exists", 1, true) or LISTS[name]
  local c_method = core.query_methods[name] == "build" and Query.C[name]
  if c_method and not sub_query and not (compare and model._filter_casts_any) then
    -- no value to convert: the C method, which returns self (a group's
    -- function gets self, whose calls go to the group while it runs)
    return c_method
  end
  if c_method and LISTS[name] and not model._filter_casts_any then
    return c_method -- it gives a query object as the list to Query.sub_query
  end
  return function(self, a1, ...)
    local cq = cq_of(self)
    local r
    local casts_args = sub_query or compare and self._model._filter_casts_any
    if casts_args or type(a1) == "function" or type(a1) == "table" and a1.c_query then
      local args = table.pack(a1, ...)
      if casts_args then cast_args(self, name, args) end
      r = apply(self, cq, name, args)
    else -- nothing to convert: straight to C
      local f = C[name]
      if f == nil then apply(self, cq, name, { n = 0 }) end -- raises, naming the scopes
      r = f(cq, a1, ...)
    end
    if r ~= cq then return r end
    return self
  end
end

-- {==== scopes ====}

local function soft_scope(model, only)
  local col = "." .. model.soft_delete
  if only then return function(q) q:where_not_null(q:table_ref() .. col) end end
  return function(q) q:where_null(q:table_ref() .. col) end
end

-- Applies to cq, through view, the scopes of list not removed: each
-- scope's filters in a group of their own. Returns how many applied.
local function apply_scopes(cq, view, list, removed)
  local n = 0
  for _, s in ipairs(list) do
    if not (removed and removed[s.id]) then
      cq:_scope_group()
      s.fn(view)
      n = n + 1
    end
  end
  return n
end

-- The C query to run: self (a view: its group's query), or, with global
-- scopes (the model's own, the data source's registry, only_trashed), a
-- copy of it whose WHERE is the scopes first, then the caller's filters
-- as one group (one engine operation: orm_query_scope_begin / _end).
function ModelQuery:_compiled()
  local model, source, st = self._model, source_of(self), state_of(self)
  local removed, trashed = st and st._removed, st and st._only_trashed
  if model._global_scopes[1] == nil and not trashed then
    local ctx = source.context -- the usual case first: no scope at all
    local reg = ctx and ctx.scope_registry
    local by = reg and reg._by_model
    if reg == nil or by and by[model] == nil then return cq_of(self) end
  end
  local scopes, reg = model._global_scopes, nil
  if removed ~= true then reg = registry_scopes(source, model) end
  if not trashed and (removed == true or scopes[1] == nil and (reg == nil or reg[1] == nil)) then
    return cq_of(self) -- no scope at all
  end
  local cq = C.clone(self, true):_scope_begin() -- a bare copy, run once
  local view = nested(self, cq) -- its builder calls go to cq, a copy run once
  if removed ~= true then
    apply_scopes(cq, view, scopes, removed)
    if reg then apply_scopes(cq, view, reg, removed) end
  end
  if trashed then
    cq:_scope_group()
    soft_scope(model, true)(view)
  end
  return cq:_scope_end()
end

ModelQuery.c_query = ModelQuery._compiled

--- without_global_scope(id, ...): this query without the named global scopes.
function ModelQuery:without_global_scope(...)
  local removed = own(self, "_removed")
  if removed == true then return self end
  removed = removed or {}
  for i = 1, select("#", ...) do removed[select(i, ...)] = true end
  set_own(self, "_removed", removed)
  return self
end

--- This query without any global scope (soft deletes included).
function ModelQuery:without_global_scopes()
  set_own(self, "_removed", true)
  return self
end

local function check_soft(self, what)
  if not self._model.soft_delete then
    errors.raise("invalid_argument", "%s: %s needs a model with soft_deletes", self._model.name, what)
  end
end

--- Includes soft-deleted rows.
function ModelQuery:with_trashed()
  check_soft(self, "with_trashed()")
  return self:without_global_scope(SOFT_DELETES)
end

--- Only soft-deleted rows.
function ModelQuery:only_trashed()
  check_soft(self, "only_trashed()")
  self:without_global_scope(SOFT_DELETES)
  set_own(self, "_only_trashed", true)
  return self
end

--- scope(name, ...): applies the model's local scope `name`.
function ModelQuery:scope(name, ...)
  local fn = self._model.scopes[name]
  if fn == nil then
    errors.raise("invalid_argument", "%s has no scope '%s' (scopes: %s)", self._model.name,
      tostring(name), scope_names(self._model))
  end
  fn(self, ...)
  return self
end

-- {==== relations ====}

--- with{ "posts", "posts.comments" } | with("posts", fn) | with{ posts = fn }
function ModelQuery:with(spec, fn, ...)
  set_own(self, "_with", relations.add_with(self._model, own(self, "_with"), spec, fn, ...))
  return self
end

--- with_count("posts") | with_count{ "posts", comments = fn }
function ModelQuery:with_count(spec, fn)
  set_own(self, "_counts", relations.add_counts(self._model, own(self, "_counts"), spec, fn))
  return self
end

local function where_has(self, name, fn, method)
  local sub = relations.exists_query(self._model, name, source_of(self), self:table_ref())
  if fn then fn(sub) end
  return self[method](self, sub:_compiled())
end

--- where_has(relation, fn?): rows with at least one related row (matching fn(q) when given).
function ModelQuery:where_has(name, fn) return where_has(self, name, fn, "where_exists") end
--- or_where_has(relation, fn?): as where_has, joined with OR.
function ModelQuery:or_where_has(name, fn) return where_has(self, name, fn, "or_where_exists") end
--- where_doesnt_have(relation, fn?): rows with no related row (matching fn(q)).
function ModelQuery:where_doesnt_have(name, fn) return where_has(self, name, fn, "where_not_exists") end

-- Loads what with() / with_count() asked for into `list`; returns list.
local function finish(self, list)
  local with, counts = own(self, "_with"), own(self, "_counts")
  if #list > 0 then
    if with then relations.eager(self._model, list, with, source_of(self)) end
    if counts then relations.count(self._model, list, counts, source_of(self)) end
  end
  return list
end

-- True when with() or with_count() asked for something.
local function loads(self)
  local st = state_of(self)
  return st ~= nil and (st._with ~= nil or st._counts ~= nil)
end

-- {==== reads ====}

--- The instances the query matches (relations of with() loaded, one query per level).
function ModelQuery:get()
  local src = source_of(self)
  local rows = C.get(self:_compiled(), src:_target(false), self._model:_hydration(src))
  if loads(self) then finish(self, rows) end
  return rows
end

--- The first instance, or nil.
function ModelQuery:first()
  local src = source_of(self)
  local inst = C.first(self:_compiled(), src:_target(false), self._model:_hydration(src))
  if inst ~= nil and loads(self) then finish(self, { inst }) end
  return inst
end

-- The value of `id` as the model's primary key: under an integer key a
-- string or float that is not an integer is false (no row can have it).
local function key_value(model, id)
  if math.type(id) == "integer" or model._casts[model.primary_key] ~= casts.integer then
    return id
  end
  if type(id) == "string" then return math.tointeger(tonumber(id)) or false end
  if type(id) == "number" then return math.tointeger(id) or false end
  return id
end
ModelQuery.key_value = key_value

-- The instance of query q (changed) whose primary key is id, or nil.
local function find_in(q, id)
  local m = q._model
  id = key_value(m, id)
  if id == false then return nil end
  return q:where(m.table .. "." .. m.primary_key, id):first()
end
ModelQuery.find_in = find_in

--- find(id): the instance with this primary key, or nil (also for a string
-- that is not an integer under an integer key). The query it is called on
-- is left as it was.
function ModelQuery:find(id)
  return find_in(self:clone(), id)
end

-- Raises model_not_found: "<Model> not found (<what>)".
local function not_found(model, what)
  error(errors.Error({ kind = "model_not_found", model = model.name,
    message = string.format("%s not found (%s)", model.name, what) }), 3)
end
ModelQuery.not_found = not_found

--- find_or_fail(id): the instance with this primary key; raises model_not_found.
function ModelQuery:find_or_fail(id)
  local inst = self:find(id)
  if inst == nil then not_found(self._model, self._model.primary_key .. " = " .. tostring(id)) end
  return inst
end

--- The first instance; raises model_not_found.
function ModelQuery:first_or_fail()
  local inst = self:first()
  if inst == nil then not_found(self._model, "no row matches the query") end
  return inst
end

for _, name in ipairs({ "count", "sum", "avg", "min", "max", "exists" }) do
  local c_method = C[name]
  ModelQuery[name] = function(self, ...)
    return c_method(self:_compiled(), source_of(self):_target(false), ...)
  end
end

--- The values of one column, read as the field's type.
function ModelQuery:pluck(col)
  local values = C.pluck(self:_compiled(), source_of(self):_target(false), col)
  local c = type(col) == "string" and self._model._casts[col:match("([^%.]+)$")]
  if c then
    for i, v in ipairs(values) do
      if v ~= null then values[i] = c.read(v) end
    end
  end
  return values
end

--- paginate{ page, per_page } -> { items, total, page, per_page, last_page };
-- raises invalid_argument when the query has its own limit or offset.
function ModelQuery:paginate(opts)
  Query.check_paginate(self, self._model.name .. ": paginate")
  local src = source_of(self)
  local page = C.paginate(self:_compiled(), src:_target(false), opts or {}, self._model:_hydration(src))
  finish(self, page.items)
  return page
end

--- chunk(n, fn): fn(instances, page) per chunk; stops when fn returns false.
-- Pages by the primary key when the query is unordered or ordered by it.
function ModelQuery:chunk(n, fn)
  errors.check(type(fn) == "function", "chunk(n, fn) needs a function")
  local src = source_of(self)
  return C.chunk(self:_compiled(), src:_target(false), n, function(rows, page)
    finish(self, rows)
    return fn(rows, page)
  end, self._model:_hydration(src), self._model.table .. "." .. self._model.primary_key)
end

--- chunk_by_id(n, fn, column?): pages by column (default: the primary key)
-- whatever the order, so fn may update rows out of the query's filter.
function ModelQuery:chunk_by_id(n, fn, column)
  errors.check(type(fn) == "function", "chunk_by_id(n, fn, column?) needs a function")
  local src = source_of(self)
  return C.chunk_by_id(self:_compiled(), src:_target(false), n, function(rows, page)
    finish(self, rows)
    return fn(rows, page)
  end, column or (self._model.table .. "." .. self._model.primary_key), self._model:_hydration(src))
end

--- to_sql() -> sql, bindings (for this query's connection dialect)
function ModelQuery:to_sql(dialect)
  local source = source_of(self)
  return C.to_sql(self:_compiled(), dialect or source._dialect_name or source:_target(false))
end

--- A copy of this query, to build on without changing it.
function ModelQuery:clone()
  local c = C.clone(self) -- its class and source; its own fields copied below
  local st = state_of(self)
  if type(self) == "table" then -- a view of a group: a query on the group's filters
    st = { _alias = rawget(self, "_alias") }
  end
  if st then
    local cs = state_of(c, true)
    for k, v in pairs(st) do cs[k] = v end
    if type(st._removed) == "table" then
      cs._removed = {}
      for k, v in pairs(st._removed) do cs._removed[k] = v end
    end
    cs._with = relations.copy_tree(st._with)
    cs._counts = st._counts and { table.unpack(st._counts) }
  end
  return c
end

-- {==== writes ====}

--- The created instance, or false when a creating/saving handler cancelled it.
function ModelQuery:create(attrs)
  local inst = self._model:_new_on(source_of(self), attrs)
  if self._model.methods.save(inst) == false then return false end
  return inst
end

-- Database values of a row of attributes (casts, timestamps on insert).
local function db_row(self, row, now)
  local m, dialect = self._model, source_of(self):dialect()
  local out = {}
  for k, v in pairs(row) do
    local c = m._casts[k]
    out[k] = casts.to_db(c, (c and v ~= null) and c.write(v, k) or v, dialect)
  end
  if now then
    for _, col in ipairs({ m.created_at, m.updated_at }) do
      if col and out[col] == nil then out[col] = casts.to_db(casts.datetime, now, dialect) end
    end
  end
  return out
end

local function db_rows(self, rows)
  local now = self._model:_timestamps_now()
  if rows[1] == nil and next(rows) ~= nil then return db_row(self, rows, now) end
  local out = {}
  for i, r in ipairs(rows) do out[i] = db_row(self, r, now) end
  return out
end

--- insert(row_or_rows): inserts rows without events (timestamps filled; batched under the driver's parameter limit).
function ModelQuery:insert(rows)
  errors.check(type(rows) == "table", "insert(row_or_rows) needs a table")
  return C.insert(self, source_of(self):_target(true), db_rows(self, rows))
end

--- insert_get_id(row, pk?): inserts one row; returns its new id.
function ModelQuery:insert_get_id(row, pk)
  return C.insert_get_id(self, source_of(self):_target(true), db_rows(self, row),
    pk or self._model.primary_key)
end

-- A copy of row with updated_at set to now (when the model has it and row
-- does not set it).
local function touch(self, row)
  local m = self._model
  if not m.updated_at then return row end
  local t = {}
  for k, v in pairs(row or {}) do t[k] = v end
  if t[m.updated_at] == nil then
    t[m.updated_at] = casts.to_db(casts.datetime, m:_timestamps_now(), source_of(self):dialect())
  end
  return t
end

--- update(values): updates every matching row (updated_at too); returns n.
function ModelQuery:update(values)
  errors.check(type(values) == "table", "update(values) needs a table")
  return C.update(self:_compiled(), source_of(self):_target(true), touch(self, db_row(self, values)))
end

--- increment(col, n?, extra?): adds n (default 1) to col in the matched rows.
function ModelQuery:increment(col, by, extra)
  return C.increment(self:_compiled(), source_of(self):_target(true), col, by, touch(self, extra))
end

--- decrement(col, n?, extra?): subtracts n (default 1) from col in the matched rows.
function ModelQuery:decrement(col, by, extra)
  return C.decrement(self:_compiled(), source_of(self):_target(true), col, by, touch(self, extra))
end

--- delete(): soft when the model has soft deletes; returns the row count.
function ModelQuery:delete()
  local m = self._model
  if m.soft_delete then
    return self:update({ [m.soft_delete] = m:_timestamps_now() })
  end
  return C.delete(self:_compiled(), source_of(self):_target(true))
end

--- Deletes the matched rows for good, even with soft deletes.
function ModelQuery:force_delete()
  return C.delete(self:_compiled(), source_of(self):_target(true))
end

--- restore(): un-deletes the soft-deleted rows that match; returns n.
function ModelQuery:restore()
  check_soft(self, "restore()")
  local q = self:clone():only_trashed()
  return q:update({ [self._model.soft_delete] = null })
end

local function name_list(v)
  if type(v) == "string" then return { v } end
  return v
end

-- The columns an upsert updates by default: every column of the rows but
-- the unique ones and created_at.
local function upsert_columns(m, rows, unique_by)
  local skip, seen, out = { [m.created_at or false] = true }, {}, {}
  for _, c in ipairs(unique_by) do skip[c] = true end
  for _, r in ipairs(rows) do
    for k in pairs(r) do
      if not skip[k] and not seen[k] then
        seen[k] = true
        out[#out + 1] = k
      end
    end
  end
  table.sort(out)
  return out
end

--- upsert(rows, unique_by, update_columns?): inserts rows (timestamps
-- filled), updating update_columns (default: every column but unique_by
-- and created_at; updated_at always) of the rows that exist. Returns n.
function ModelQuery:upsert(rows, unique_by, update_columns)
  local m = self._model
  errors.check(type(rows) == "table" and next(rows) ~= nil,
    "%s: upsert(rows, unique_by, update_columns) needs rows", m.name)
  unique_by = name_list(unique_by)
  errors.check(type(unique_by) == "table" and #unique_by > 0,
    "%s: upsert(rows, unique_by, ...) needs the unique column(s)", m.name)
  if rows[1] == nil then rows = { rows } end
  local out = db_rows(self, rows)
  local update = name_list(update_columns)
  if update == nil then
    update = upsert_columns(m, out, unique_by)
  elseif m.updated_at then
    local has = {}
    for _, c in ipairs(update) do has[c] = true end
    if not has[m.updated_at] then update = { m.updated_at, table.unpack(update) } end
  end
  return C.upsert(self, source_of(self):_target(true), out, unique_by, update)
end

-- {==== the metatable of a model's queries ====}

--- Methods, then the model's local scopes (q:active()), then C builders.
-- A method found once is kept in the metatable's __index table, so each
-- later call finds it with one table lookup.
function ModelQuery.metatable_for(model)
  -- what every query of model has until it sets its own: its model, and
  -- no scope lifted or asked for (fields found here, not by a function)
  local methods = setmetatable({ _model = model, _removed = false, _only_trashed = false },
    { __index = function(t, name)
      local m = ModelQuery[name]
      if m == nil and model.scopes[name] ~= nil then
        m = function(self, ...) return self:scope(name, ...) end
      elseif m == nil then
        if type(name) ~= "string" or name:byte(1) == 95 then return nil end -- "_"
        m = builder(name, model)
      end
      rawset(t, name, m)
      return m
    end })
  return {
    __name = "ormed.ModelQuery",
    __index = methods,
    __gc = Query.__gc, __close = Query.__close, -- C's, as for every query userdata
    __tostring = function(self)
      -- never raises (a closed query, a data source not initialised): the
      -- reason instead of the SQL
      local ok, sql = pcall(ModelQuery.to_sql, self)
      if not ok then sql = "(no SQL: " .. tostring(type(sql) == "table" and sql.message or sql) .. ")" end
      return "ormed.ModelQuery(" .. model.name .. "): " .. sql
    end,
  }
end

ModelQuery.SOFT_DELETES = SOFT_DELETES
ModelQuery.registry_scopes = registry_scopes
ModelQuery.soft_scope = soft_scope
ModelQuery.keys = K

return ModelQuery
