--- ormed.query: the Lua query object, a thin wrapper over the C query
-- (core.query) that knows where to run: its source (a DataSource or
-- OrmConnection) picks the target at execution time (the coroutine's
-- transaction connection, or the pool). Builder methods change the C query
-- and return self; terminal methods run it. The model layer extends this.
-- @module ormed.query
local core = require("ormed.core")
local errors = require("ormed.errors")

--- A query on a plain table (`ds:table("users")`): builder methods change
-- the query and return it (calls chain), read and write methods run it on
-- the query's data source. Rows are plain Lua tables. Every value is a bound
-- parameter. A model's query (ormed.model_query) has every method here.
-- @type Query

local Query = {}
Query.__index = Query

-- Every method of the C query, by kind ("build", "read", "write",
-- "other"): the lists below are derived from it, never copied.
local KINDS = core.query_methods

-- A query on `table_name` run through `source`.
function Query.new(source, table_name)
  return setmetatable({ _q = core.query(table_name), _source = source }, Query)
end

--- The C query, for code that composes queries (where_exists).
function Query:c_query()
  return self._q
end

-- A Lua query object (this one or a model's) given as a sub-query stands
-- for its C query.
local function unwrap(v)
  if type(v) == "table" and type(v.c_query) == "function" then return v:c_query() end
  return v
end

for name, kind in pairs(KINDS) do
  if kind == "build" then
    Query[name] = function(self, ...)
      local q = self._q
      q[name](q, ...)
      return self
    end
  elseif kind == "read" or kind == "write" then
    local write = kind == "write"
    Query[name] = function(self, ...)
      local q = self._q
      return q[name](q, self._source:_target(write), ...)
    end
  end
end

for _, name in ipairs({ "where_in", "where_not_in", "or_where_in", "or_where_not_in" }) do
  Query[name] = function(self, col, list)
    local q = self._q
    q[name](q, col, unwrap(list))
    return self
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

--- where(col, value), where(col, op, value), where{ col = value, ... } or where(function(q) ...
-- end) (a parenthesised group): a filter ANDed with the others.
-- @function Query:where

--- or_where(...): as where, joined with OR.
-- @function Query:or_where

--- where_equals(col, value): col = value.
-- @function Query:where_equals

--- where_not(col, value): col <> value.
-- @function Query:where_not

--- where_in(col, list_or_query): col IN (...).
-- @function Query:where_in

--- where_not_in(col, list_or_query): col NOT IN (...).
-- @function Query:where_not_in

--- or_where_in(col, list): as where_in, joined with OR.
-- @function Query:or_where_in

--- or_where_not_in(col, list): as where_not_in, joined with OR.
-- @function Query:or_where_not_in

--- where_null(col): col IS NULL.
-- @function Query:where_null

--- where_not_null(col): col IS NOT NULL.
-- @function Query:where_not_null

--- or_where_null(col): as where_null, joined with OR.
-- @function Query:or_where_null

--- or_where_not_null(col): as where_not_null, joined with OR.
-- @function Query:or_where_not_null

--- where_between(col, lo, hi): col BETWEEN lo AND hi.
-- @function Query:where_between

--- where_like(col, pattern): col LIKE pattern.
-- @function Query:where_like

--- where_column(a, op, b): compares two columns.
-- @function Query:where_column

--- where_raw(sql, bindings?): a raw SQL filter (? placeholders).
-- @function Query:where_raw

--- or_where_raw(sql, bindings?): as where_raw, joined with OR.
-- @function Query:or_where_raw

--- where_exists(query): EXISTS (sub-query).
-- @function Query:where_exists

--- where_not_exists(query): NOT EXISTS (sub-query).
-- @function Query:where_not_exists

--- or_where_exists(query): as where_exists, joined with OR.
-- @function Query:or_where_exists

--- or_where_not_exists(query): as where_not_exists, joined with OR.
-- @function Query:or_where_not_exists

--- select(col, ...): the columns to read (default *).
-- @function Query:select

--- distinct(): SELECT DISTINCT.
-- @function Query:distinct

--- join(table, a, op, b): an inner join.
-- @function Query:join

--- left_join(table, a, op, b): a left join.
-- @function Query:left_join

--- group_by(col, ...).
-- @function Query:group_by

--- having(col, op, value).
-- @function Query:having

--- order_by(col, direction?): direction "asc" (default) or "desc".
-- @function Query:order_by

--- latest(col?): order_by(col or "created_at", "desc").
-- @function Query:latest

--- limit(n).
-- @function Query:limit

--- offset(n).
-- @function Query:offset

--- get(): the matching rows, as plain tables.
-- @function Query:get

--- first(): the first matching row, or nil.
-- @function Query:first

--- count(col?): the number of matching rows.
-- @function Query:count

--- sum(col): the sum of col over the matching rows.
-- @function Query:sum

--- avg(col): the average of col.
-- @function Query:avg

--- min(col): the smallest col.
-- @function Query:min

--- max(col): the largest col.
-- @function Query:max

--- exists(): true when a row matches.
-- @function Query:exists

--- pluck(col): the values of one column, as a list.
-- @function Query:pluck

--- paginate{ page = 1, per_page = 20 }: { items, total, page, per_page, last_page }.
-- @function Query:paginate

--- chunk(n, fn): fn(rows, page) for each page of n rows; stops when fn returns false.
-- @function Query:chunk

--- insert(row_or_rows): inserts one row or a list (batched under the driver's parameter limit);
-- returns { affected_rows, last_insert_id }.
-- @function Query:insert

--- insert_get_id(row, key?): inserts one row; returns its new id.
-- @function Query:insert_get_id

--- update(values): updates the matching rows; returns the number of rows changed.
-- @function Query:update

--- delete(): deletes the matching rows; returns their number.
-- @function Query:delete

--- increment(col, n?, extra?): adds n (default 1) to col in the matching rows.
-- @function Query:increment

--- decrement(col, n?, extra?): subtracts n (default 1).
-- @function Query:decrement

--- upsert(rows, unique_by, update_columns?): inserts rows, updating those whose unique_by columns already exist.
-- @function Query:upsert


--- The first row; raises model_not_found.
function Query:first_or_fail(...)
  local row = self:first(...)
  if row == nil then
    errors.raise("model_not_found", "no row in '%s' matches the query", self._q:table_name())
  end
  return row
end

--- find(id, key?): the row whose key (default "id") is id, or nil.
function Query:find(id, key)
  return self:where(key or "id", id):first()
end

--- A copy of this query, to build on without changing it.
function Query:clone()
  local c = setmetatable({}, getmetatable(self))
  for k, v in pairs(self) do c[k] = v end
  c._q = self._q:clone()
  return c
end

--- to_sql(): sql, bindings for this query's connection dialect.
function Query:to_sql(...)
  return self._q:to_sql(select("#", ...) > 0 and ... or self._source:_target(false))
end

--- The table this query reads.
function Query:table_name()
  return self._q:table_name()
end

return Query
