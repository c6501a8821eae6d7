-- ormed.relations: relations declared as data (orm.has_one("Profile"),
-- orm.has_many, orm.belongs_to, orm.belongs_to_many), the related model
-- resolved lazily by name (so definitions may refer to each other in any
-- order), and everything done with them in one place: eager loading (one
-- `WHERE key IN (...)` query per relation level, IN lists batched under
-- the driver's parameter limit), counts, EXISTS sub-queries for
-- where_has, and the pivot writes of belongs_to_many (attach, detach, sync).
local core = require("ormed.core")
local errors = require("ormed.errors")
local K = require("ormed.keys")
local Query = require("ormed.query")

local ATTRS, LOADED = K.ATTRS, K.LOADED

local relations = {}

-- Models by name, filled by orm.model.
relations.models = {}

-- How many values one IN list may bind, per dialect (the drivers allow
-- 32766 on SQLite >= 3.32 and 65535 on PostgreSQL and MySQL; the margin
-- leaves room for the bindings of constraints and scopes).
-- Keys per eager-load statement, by dialect name: derived from the
-- dialect's facts (an array parameter takes any number; else nine tenths
-- of the parameter limit, leaving room for the scopes' bindings).
-- Assignable, per dialect, to force smaller batches.
relations.IN_LIMIT = setmetatable({}, { __index = function(_, name)
  local f = core.dialect(name)
  if f == nil then return 1000 end
  return f.array_in_over > 0 and 50000 or f.max_params * 9 // 10
end })

local Relation = {}
Relation.__index = Relation

local KINDS = { has_one = true, has_many = true, belongs_to = true, belongs_to_many = true }

local function constructor(kind)
  return function(model_name, opts)
    errors.check(type(model_name) == "string" and model_name ~= "",
      "orm.%s(model_name, opts?) needs the related model's name", kind)
    errors.check(opts == nil or type(opts) == "table", "orm.%s: opts must be a table", kind)
    local r = { kind = kind, model_name = model_name }
    for k, v in pairs(opts or {}) do r[k] = v end
    return setmetatable(r, Relation)
  end
end

relations.has_one = constructor("has_one")
relations.has_many = constructor("has_many")
relations.belongs_to = constructor("belongs_to")
relations.belongs_to_many = constructor("belongs_to_many")

function relations.is_relation(v)
  return getmetatable(v) == Relation and KINDS[v.kind] == true
end

-- "BlogPost" -> "blog_post"
function relations.snake(name)
  return (name:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end

-- A copy of def bound to `parent` under `name`.
function relations.bind(parent, name, def)
  errors.check(relations.is_relation(def),
    "model %s: relation '%s' must be made by orm.has_one/has_many/belongs_to/belongs_to_many",
    parent.name, tostring(name))
  local r = {}
  for k, v in pairs(def) do r[k] = v end
  r.name, r.parent = name, parent
  return setmetatable(r, Relation)
end

-- {==== resolution ====}

function Relation:related()
  local m = relations.models[self.model_name]
  if m == nil then
    errors.raise("invalid_argument", "relation '%s' of %s refers to model '%s', which is not defined",
      self.name, self.parent.name, self.model_name)
  end
  return m
end

-- The relation `name` of `model`, or invalid_argument naming the ones it has.
function relations.get(model, name)
  local r = model.relations[name]
  if r == nil then
    local names = {}
    for n in pairs(model.relations) do names[#names + 1] = n end
    table.sort(names)
    errors.raise("invalid_argument", "%s has no relation '%s' (relations: %s)", model.name,
      tostring(name), #names > 0 and table.concat(names, ", ") or "none")
  end
  return r
end

local function singular_key(model)
  return relations.snake(model.name) .. "_id"
end

-- The keys of the relation with defaults filled in, and the related model:
--   has_*:           foreign_key (on related), local_key (on parent)
--   belongs_to:      foreign_key (on parent), owner_key (on related)
--   belongs_to_many: pivot, foreign_key / related_key (on pivot),
--                    parent_key, related_pk
-- Cached while the related model stays the one registered under its name.
local function keys_of(rel)
  local related = rel:related()
  local k = rel._keys
  if k and k.related == related then return k end
  local parent = rel.parent
  if rel.kind == "belongs_to" then
    k = { foreign_key = rel.foreign_key or (rel.name .. "_id"),
      owner_key = rel.owner_key or related.primary_key }
  elseif rel.kind == "belongs_to_many" then
    local a, b = relations.snake(parent.name), relations.snake(related.name)
    k = { pivot = rel.pivot or (a < b and a .. "_" .. b or b .. "_" .. a),
      foreign_key = rel.foreign_key or singular_key(parent),
      related_key = rel.related_key or singular_key(related),
      parent_key = rel.parent_key or parent.primary_key,
      related_pk = rel.related_pk or related.primary_key }
  else
    k = { foreign_key = rel.foreign_key or singular_key(parent),
      local_key = rel.local_key or parent.primary_key }
  end
  k.related = related
  rel._keys = k
  return k
end

Relation.keys = keys_of

function Relation:is_single()
  return self.kind == "has_one" or self.kind == "belongs_to"
end

-- The parent attribute whose values select the related rows.
local function parent_attr(rel, k)
  if rel.kind == "belongs_to" then return k.foreign_key end
  if rel.kind == "belongs_to_many" then return k.parent_key end
  return k.local_key
end

local PIVOT = "pivot_"

-- A query of the related model, limited to rows that belong to `keys` (or
-- not limited when keys is nil), its table named `alias` when given;
-- returns the query, the qualified column that holds the parent key, and
-- the result column that holds it.
local function related_query(rel, source, keys, alias)
  local k = keys_of(rel)
  local related = k.related
  local q = related:_query_on(source, alias)
  local tref = q:table_ref()
  local col, out
  if rel.kind == "belongs_to_many" then
    col = k.pivot .. "." .. k.foreign_key
    out = PIVOT .. k.foreign_key
    q:join(k.pivot, tref .. "." .. k.related_pk, "=", k.pivot .. "." .. k.related_key)
    local sel = { tref .. ".*", col .. " as " .. out,
      k.pivot .. "." .. k.related_key .. " as " .. PIVOT .. k.related_key }
    for _, c in ipairs(rel.pivot_columns or {}) do
      sel[#sel + 1] = k.pivot .. "." .. c .. " as " .. PIVOT .. c
    end
    q:select(sel)
  else
    out = rel.kind == "belongs_to" and k.owner_key or k.foreign_key
    col = tref .. "." .. out
  end
  if keys then q:where_in(col, keys) end
  return q, col, out
end

-- {==== eager loading ====}

-- A comparable key: integral numbers as integers (1.0 and 1 match).
local function norm(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  return v
end

-- The key that matches related rows with their parents: as norm, and a
-- string that is the decimal form of an integer ("42") as that integer,
-- so a string foreign-key column finds the rows of an integer key (as the
-- database's own comparison does on SQLite and MySQL).
local function match_key(v)
  local tv = type(v)
  if tv == "number" then return math.tointeger(v) or v end
  if tv == "string" then
    local n = math.tointeger(tonumber(v))
    if n ~= nil and string.format("%d", n) == v then return n end
  end
  return v
end

local function mark_loaded(inst, name, value)
  rawset(inst, name, value)
  local loaded = rawget(inst, LOADED)
  if loaded == nil then
    loaded = {}
    rawset(inst, LOADED, loaded)
  end
  loaded[name] = true
end

-- Parent instances grouped by key: keys (list, the values to bind),
-- by_key (match_key(key) -> parents).
local function group_parents(parents, attr)
  local keys, by_key = {}, {}
  for _, p in ipairs(parents) do
    local key = norm(p[attr])
    if key ~= nil then
      local mk = match_key(key)
      local list = by_key[mk]
      if list == nil then
        list = {}
        by_key[mk] = list
        keys[#keys + 1] = key
      end
      list[#list + 1] = p
    end
  end
  return keys, by_key
end

-- Calls fn(batch) for slices of keys that fit one statement.
local function each_batch(source, keys, fn)
  local limit = relations.IN_LIMIT[source:dialect()]
  if #keys <= limit then
    if #keys > 0 then fn(keys) end
    return
  end
  for i = 1, #keys, limit do
    fn(table.move(keys, i, math.min(i + limit - 1, #keys), 1, {}))
  end
end

-- Moves the pivot columns of a belongs_to_many row into inst.pivot.
local function take_pivot(rel, k, inst)
  local row = rawget(inst, ATTRS)
  local pivot = {}
  local cols = { k.foreign_key, k.related_key }
  for _, c in ipairs(rel.pivot_columns or {}) do cols[#cols + 1] = c end
  for _, c in ipairs(cols) do
    pivot[c] = row[PIVOT .. c]
    row[PIVOT .. c] = nil
  end
  rawset(inst, "pivot", pivot)
end

-- Loads relation `rel` of `parents` (one query per batch of keys) and
-- returns every related instance loaded.
local function load_relation(rel, parents, node, source)
  local k = keys_of(rel)
  local single = rel:is_single()
  local keys, by_key = group_parents(parents, parent_attr(rel, k))
  for _, p in ipairs(parents) do mark_loaded(p, rel.name, (not single) and {} or nil) end
  local all, name, pivot = {}, rel.name, rel.kind == "belongs_to_many"
  each_batch(source, keys, function(batch)
    local q, _, out = related_query(rel, source, batch)
    if node.constraint then node.constraint(q) end
    for _, inst in ipairs(q:get()) do
      all[#all + 1] = inst
      local owners = by_key[match_key(rawget(inst, ATTRS)[out])]
      if pivot then take_pivot(rel, k, inst) end
      if owners then
        for i = 1, #owners do
          local p = owners[i]
          if not single then
            local list = rawget(p, name)
            list[#list + 1] = inst
          elseif rawget(p, name) == nil then
            rawset(p, name, inst)
          end
        end
      end
    end
  end)
  return all
end

-- eager(model, instances, tree, source): loads the relation tree (from
-- add_with) into the instances, one query per relation level and batch.
function relations.eager(model, instances, tree, source)
  for _, node in ipairs(tree) do
    local rel = relations.get(model, node.name)
    local loaded = load_relation(rel, instances, node, source)
    if #node > 0 and #loaded > 0 then
      relations.eager(keys_of(rel).related, loaded, node, source)
    end
  end
end

-- {==== with() trees ====}
-- A tree is a list of nodes { name, constraint?, <child nodes>... }.

local function child(node, name)
  for _, c in ipairs(node) do
    if c.name == name then return c end
  end
  local c = { name = name }
  node[#node + 1] = c
  return c
end

-- Adds "a.b.c" (each part checked against its model) with constraint fn
-- (for the last part) to tree.
local function add_path(model, tree, path, fn)
  errors.check(type(path) == "string" and path ~= "", "with(): a relation name must be a string")
  local node, m = tree, model
  for part in path:gmatch("[^%.]+") do
    local rel = relations.get(m, part)
    node = child(node, part)
    m = keys_of(rel).related
  end
  if fn ~= nil then
    errors.check(type(fn) == "function", "with('%s', fn): fn must be a function", path)
    node.constraint = fn
  end
end

-- with(spec, fn?, ...): spec is a name ("posts.comments"), or a list of
-- names and name = fn entries; more names may follow a name. Returns tree.
function relations.add_with(model, tree, spec, fn, ...)
  tree = tree or {}
  if type(spec) == "table" then
    for key, v in pairs(spec) do
      if type(key) == "number" then add_path(model, tree, v) else add_path(model, tree, key, v) end
    end
  elseif type(fn) == "string" then
    add_path(model, tree, spec)
    relations.add_with(model, tree, fn, ...)
  else
    add_path(model, tree, spec, fn)
  end
  return tree
end

function relations.copy_tree(tree)
  if tree == nil then return nil end
  local c = { name = tree.name, constraint = tree.constraint }
  for i, n in ipairs(tree) do c[i] = relations.copy_tree(n) end
  return c
end

-- {==== counts ====}

-- with_count spec -> list of { name, field, constraint }; "posts" counts
-- into posts_count, "posts as published" into published.
function relations.add_counts(model, list, spec, fn)
  list = list or {}
  local function add(name, f)
    errors.check(type(name) == "string", "with_count(): a relation name must be a string")
    local rel, alias = name:match("^%s*([%w_]+)%s+[aA][sS]%s+([%w_]+)%s*$")
    relations.get(model, rel or name)
    errors.check(f == nil or type(f) == "function", "with_count('%s', fn): fn must be a function", name)
    list[#list + 1] = { name = rel or name, field = alias or (name .. "_count"), constraint = f }
  end
  if type(spec) == "table" then
    for key, v in pairs(spec) do
      if type(key) == "number" then add(v) else add(key, v) end
    end
  else
    add(spec, fn)
  end
  return list
end

local COUNT_KEY, COUNT = "ormed_key", "ormed_count"

-- Sets <name>_count on every instance (one grouped query per relation).
function relations.count(model, instances, list, source)
  for _, c in ipairs(list) do
    local rel = relations.get(model, c.name)
    local keys, by_key = group_parents(instances, parent_attr(rel, keys_of(rel)))
    local field = c.field
    for _, p in ipairs(instances) do rawset(p, field, 0) end
    each_batch(source, keys, function(batch)
      local q, col = related_query(rel, source, batch)
      if c.constraint then c.constraint(q) end
      q:select(col .. " as " .. COUNT_KEY, "count(*) as " .. COUNT):group_by(col)
      for _, row in ipairs(Query.C.get(q:_compiled(), source:_target(false))) do
        local n = row[COUNT]
        for _, p in ipairs(by_key[match_key(row[COUNT_KEY])] or {}) do
          rawset(p, field, math.tointeger(n) or n)
        end
      end
    end)
  end
end

-- {==== where_has ====}

-- A query of the related model correlated with the parent table (named
-- parent_ref in the outer query), for where_has / where_doesnt_have. A
-- related table that is the parent's own gets an alias.
function relations.exists_query(model, name, source, parent_ref)
  local rel = relations.get(model, name)
  local k = keys_of(rel)
  local alias = k.related.table == parent_ref and (parent_ref .. "_related") or nil
  local q, col = related_query(rel, source, nil, alias)
  if rel.kind == "belongs_to_many" then q:select(col) end
  q:where_column(col, "=", parent_ref .. "." .. parent_attr(rel, k))
  return q
end

-- A query of the related rows of one instance (inst:related("posts")).
function relations.query_for(inst, name, source)
  local rel = relations.get(getmetatable(inst).__model, name)
  local key = inst[parent_attr(rel, keys_of(rel))]
  return (related_query(rel, source, { key == nil and core.null or key }))
end

-- {==== pivot writes ====}

local function pivot_relation(model, name, what)
  local rel = relations.get(model, name)
  if rel.kind ~= "belongs_to_many" then
    errors.raise("invalid_argument", "%s(): %s.%s is a %s relation; %s works on belongs_to_many",
      what, model.name, name, rel.kind, what)
  end
  return rel, keys_of(rel)
end

local function is_instance(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__model ~= nil
end

-- ids: one id or instance, a list of them, or { [id] = pivot_values };
-- returns a list of { id, values? }.
local function id_list(ids, k)
  if type(ids) ~= "table" or is_instance(ids) then
    return { { id = is_instance(ids) and ids[k.related_pk] or ids } }
  end
  local out = {}
  for key, v in pairs(ids) do
    if type(v) == "table" and not is_instance(v) then
      out[#out + 1] = { id = key, values = v, order = math.huge }
    else
      out[#out + 1] = { id = is_instance(v) and v[k.related_pk] or v, order = key }
    end
  end
  table.sort(out, function(a, b) return a.order < b.order end)
  return out
end

local function owner_key(inst, rel, k, what)
  local key = inst[k.parent_key]
  if key == nil then
    errors.raise("invalid_argument", "%s(): the %s has no %s yet (save it first)",
      what, rel.parent.name, k.parent_key)
  end
  return key
end

local function forget(inst, name)
  rawset(inst, name, nil)
  local loaded = rawget(inst, LOADED)
  if loaded then loaded[name] = nil end
end

local function insert_pivot(source, k, key, entries, pivot_values)
  local rows = {}
  for _, e in ipairs(entries) do
    local row = { [k.foreign_key] = key, [k.related_key] = e.id }
    for c, v in pairs(pivot_values or {}) do row[c] = v end
    for c, v in pairs(e.values or {}) do row[c] = v end
    rows[#rows + 1] = row
  end
  if #rows == 0 then return 0 end
  return Query.new(source, k.pivot):insert(rows).affected_rows
end

-- attach(inst, source, name, ids, pivot_values?): inserts pivot rows;
-- returns n.
function relations.attach(inst, source, name, ids, pivot_values)
  local rel, k = pivot_relation(getmetatable(inst).__model, name, "attach")
  local key = owner_key(inst, rel, k, "attach")
  forget(inst, name)
  return insert_pivot(source, k, key, id_list(ids, k), pivot_values)
end

-- detach(inst, source, name, ids?): deletes pivot rows (all of them
-- without ids); returns n.
function relations.detach(inst, source, name, ids)
  local rel, k = pivot_relation(getmetatable(inst).__model, name, "detach")
  local q = Query.new(source, k.pivot):where(k.foreign_key, owner_key(inst, rel, k, "detach"))
  forget(inst, name)
  if ids ~= nil then
    local list = {}
    for _, e in ipairs(id_list(ids, k)) do list[#list + 1] = e.id end
    if #list == 0 then return 0 end
    q:where_in(k.related_key, list)
  end
  return q:delete()
end

-- sync(inst, source, name, ids): makes the pivot hold exactly ids (in one
-- transaction); returns { attached = {...}, detached = {...} }.
function relations.sync(inst, source, name, ids)
  local rel, k = pivot_relation(getmetatable(inst).__model, name, "sync")
  local key = owner_key(inst, rel, k, "sync")
  forget(inst, name)
  return source:transaction(function()
    -- ids compared as the database compares them: "1" is the row of 1
    local current = {} -- match_key(id) -> the id as stored
    for _, id in ipairs(Query.new(source, k.pivot):where(k.foreign_key, key):pluck(k.related_key)) do
      current[match_key(id)] = id
    end
    local wanted, adds, result = {}, {}, { attached = {}, detached = {} }
    for _, e in ipairs(id_list(ids, k)) do
      local id = match_key(e.id)
      if not wanted[id] and current[id] == nil then
        adds[#adds + 1] = e
        result.attached[#result.attached + 1] = norm(e.id)
      end
      wanted[id] = true
    end
    for id, stored in pairs(current) do
      if not wanted[id] then result.detached[#result.detached + 1] = stored end
    end
    table.sort(result.detached, function(a, b) return tostring(a) < tostring(b) end)
    if #result.detached > 0 then
      Query.new(source, k.pivot):where(k.foreign_key, key)
        :where_in(k.related_key, result.detached):delete()
    end
    insert_pivot(source, k, key, adds)
    return result
  end)
end

return relations
