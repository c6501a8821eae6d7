--- ormed.query: the plain query object: a C query (core.query) of class
-- Query that knows where to run: its source (a DataSource or
-- OrmConnection, the userdata's user value) picks the target at execution
-- time (the coroutine's transaction connection, or the pool). Builder
-- methods change the query and return it; terminal methods run it. The
-- model layer extends this.
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

local plain_query, source_of = core.plain_query, core.query_source

-- A query on `table_name` run through `source`.
function Query.new(source, table_name)
  return plain_query(source, table_name, Query)
end

--- The C query, for code that composes queries (where_exists): the query itself.
function Query:c_query()
  return self
end

-- The data source a query's source stands for (a role proxy of
-- DataSource:_with_role stands for its data source).
local function base_source(src)
  return type(src) == "table" and rawget(src, "_base") or src
end

-- Query.sub_query(outer_source, v, method): v itself, or, when v is a Lua
-- query object (plain or a model's), its C query. A sub-query is compiled
-- into the outer statement and runs on the outer query's database, so one
-- built on another data source raises invalid_argument naming both.
function Query.sub_query(outer, v, method)
  local inner
  if type(v) == "table" then -- a model query's view of a group, or not a query
    if type(v.c_query) ~= "function" then return v end
    inner = rawget(v, "_source")
  else -- a plain or a model query object has a source, a bare query none
    inner = source_of(v)
    if inner == nil then return v end
  end
  if inner ~= nil and outer ~= nil and base_source(inner) ~= base_source(outer) then
    errors.raise("invalid_argument", "%s: the sub-query is on data source '%s' but this query "
      .. "runs on '%s'; a sub-query runs on its outer query's database, so build it on '%s'",
      method, tostring(inner.name), tostring(outer.name), tostring(outer.name))
  end
  return v:c_query()
end

-- The C methods themselves: a builder method takes the query object (a
-- plain or a model query is a C query; a model query's view of a group
-- holds its group's as `_q`) and returns it, with no Lua frame between.
local CMT = getmetatable(core.query("ormed"))
local C = CMT.__index
Query.C = C
-- what C does for every query userdata: free it, end a run, print it
Query.__gc, Query.__close, Query.__tostring, Query.__name = CMT.__gc, CMT.__close,
  CMT.__tostring, CMT.__name

for name, kind in pairs(KINDS) do
  if kind == "build" then
    Query[name] = C[name]
  elseif kind == "read" or kind == "write" then
    local write, c_method = kind == "write", C[name]
    Query[name] = function(self, ...)
      return c_method(self, source_of(self):_target(write), ...)
    end
  end
end

-- where_in and its kin (the C methods) give a Lua query object passed as
-- the list to this, with the outer query's source.
core.set_sub_query(Query.sub_query)

for _, name in ipairs({ "where_exists", "where_not_exists", "or_where_exists",
  "or_where_not_exists" }) do
  local c_method = C[name]
  Query[name] = function(self, sub)
    return c_method(self, Query.sub_query(source_of(self), sub, name))
  end
end

-- Query.check_paginate(q, what): raises invalid_argument when the query q
-- has its own limit or offset, which paginate would replace.
function Query.check_paginate(q, what)
  local limit, offset = C._limits(q) -- a plain or a model query
  if limit ~= nil or offset ~= nil then
    errors.raise("invalid_argument", "%s: paginate sets the limit and offset itself, but the "
      .. "query has its own (%s); remove them, or use limit/offset without paginate", what,
      limit ~= nil and ("limit " .. tostring(limit)) or ("offset " .. tostring(offset)))
  end
end

--- paginate{ page = 1, per_page = 20 }: { items, total, page, per_page, last_page }; raises
-- invalid_argument when the query has its own limit or offset.
function Query:paginate(...)
  Query.check_paginate(self, "paginate")
  return C.paginate(self, source_of(self):_target(false), ...)
end

--- chunk(n, fn): fn(rows, page) for each page of n rows; stops when fn returns false.
function Query:chunk(n, fn, ...)
  errors.check(type(fn) == "function", "chunk(n, fn) needs a function, got %s", type(fn))
  return C.chunk(self, source_of(self):_target(false), n, fn, ...)
end

--- chunk_by_id(n, fn, column?): fn(rows, page) for each page of n rows, paged by column
-- (default "id") whatever the order; stops when fn returns false.
function Query:chunk_by_id(n, fn, ...)
  errors.check(type(fn) == "function", "chunk_by_id(n, fn, column?) needs a function, got %s",
    type(fn))
  return C.chunk_by_id(self, source_of(self):_target(false), n, fn, ...)
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
    errors.raise("model_not_found", "no row in '%s' matches the query", C.table_name(self))
  end
  return row
end

--- find(id, key?): the row whose key (default "id") is id, or nil. The
-- query it is called on is left as it was.
function Query:find(id, key)
  return self:clone():where(key or "id", id):first()
end

--- A copy of this query (on the same source), to build on without changing it.
function Query:clone()
  return C.clone(self) -- (C's clone(true) makes a bare query: not for users)
end

--- to_sql(dialect?): sql, bindings for this query's connection dialect
-- (the C method: with no dialect, it asks the query's source).
-- @function Query:to_sql
Query.to_sql = C.to_sql

--- table_name(): the table this query reads.
-- @function Query:table_name
Query.table_name = C.table_name

return Query
