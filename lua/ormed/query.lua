-- ormed.query: the Lua query object, a thin wrapper over the C query
-- (core.query) that knows where to run: its source (a DataSource or
-- OrmConnection) picks the target at execution time (the coroutine's
-- transaction connection, or the pool). Builder methods change the C query
-- and return self; terminal methods run it. The model layer extends this.
local core = require("ormed.core")
local errors = require("ormed.errors")

local Query = {}
Query.__index = Query

local BUILDERS = {
  "where", "or_where", "where_equals", "where_not", "where_in", "where_not_in",
  "or_where_in", "or_where_not_in", "where_null", "where_not_null", "or_where_null",
  "or_where_not_null", "where_between", "where_like", "where_column", "where_raw",
  "or_where_raw", "select", "distinct", "join", "left_join", "group_by", "having",
  "order_by", "latest", "limit", "offset",
}

local READS = { "get", "first", "count", "sum", "avg", "min", "max", "exists",
  "pluck", "paginate", "chunk", "chunk_by_id" }

local WRITES = { "insert", "insert_get_id", "update", "delete", "increment",
  "decrement", "upsert" }

-- A query on `table_name` run through `source`.
function Query.new(source, table_name)
  return setmetatable({ _q = core.query(table_name), _source = source }, Query)
end

-- The C query, for code that composes queries (where_exists).
function Query:c_query()
  return self._q
end

-- A Lua query object (this one or a model's) given as a sub-query stands
-- for its C query.
local function unwrap(v)
  if type(v) == "table" and type(v.c_query) == "function" then return v:c_query() end
  return v
end

for _, name in ipairs(BUILDERS) do
  Query[name] = function(self, ...)
    local q = self._q
    q[name](q, ...)
    return self
  end
end

for _, name in ipairs({ "where_in", "where_not_in", "or_where_in", "or_where_not_in" }) do
  Query[name] = function(self, col, list)
    local q = self._q
    q[name](q, col, unwrap(list))
    return self
  end
end

for _, name in ipairs(READS) do
  Query[name] = function(self, ...)
    local q = self._q
    return q[name](q, self._source:_target(false), ...)
  end
end

for _, name in ipairs(WRITES) do
  Query[name] = function(self, ...)
    local q = self._q
    return q[name](q, self._source:_target(true), ...)
  end
end

for _, name in ipairs({ "where_exists", "where_not_exists", "or_where_exists",
  "or_where_not_exists" }) do
  Query[name] = function(self, sub)
    local q = self._q
    q[name](q, unwrap(sub))
    return self
  end
end

function Query:first_or_fail(...)
  local row = self:first(...)
  if row == nil then
    errors.raise("model_not_found", "no row in '%s' matches the query", self._q:table_name())
  end
  return row
end

function Query:find(id, key)
  return self:where(key or "id", id):first()
end

function Query:clone()
  local c = setmetatable({}, getmetatable(self))
  for k, v in pairs(self) do c[k] = v end
  c._q = self._q:clone()
  return c
end

-- to_sql(): sql, bindings for this query's connection dialect.
function Query:to_sql(...)
  return self._q:to_sql(select("#", ...) > 0 and ... or self._source:_target(false))
end

-- Anything else the C query offers is forwarded as a builder.
setmetatable(Query, {
  __index = function(_, name)
    if type(name) ~= "string" or name:sub(1, 1) == "_" then return nil end
    return function(self, ...)
      local q = self._q
      local r = q[name](q, ...)
      if r == q then return self end
      return r
    end
  end,
})

return Query
