/*
 * lua_query.c: the userdata "ormed.query", a thin Lua wrapper over the C
 * query model (orm_query.h). Builder methods change the query and return
 * it; terminal methods take the execution target (a pool or a pinned
 * connection, see lua_ormed.h) as their first argument, compile for its
 * dialect and run through orm_lua_run. No SQL is concatenated in Lua.
 *
 *   core.query(table) -> query (made in lua_query_object.c, with the
 *   front ends' query objects)
 *
 * Filters (each also as or_<name>, joined by OR):
 *   where(col, v) | where(col, op, v) | where{ col = v, {col, op, v}, ... }
 *   | where(function(q) ... end)  (a parenthesised group; q is the query,
 *   whose where-methods add to the group while fn runs); nil / orm.null
 *   with = is IS NULL, with <> / != IS NOT NULL.
 *   where_equals(col, v), where_not(col, v), where_in(col, list | query),
 *   where_not_in, where_null(col), where_not_null, where_between(col, lo,
 *   hi), where_not_between, where_like(col, pattern), where_column(a, [op,]
 *   b), where_raw(sql, bindings?), where_exists(query), where_not_exists.
 * Shape: select(...) (names or one list; replaces), add_select(...),
 *   distinct(), join(t, a, [op,] b), left_join(...), group_by(...),
 *   having(col, [op,] v), order_by(col, "asc"|"desc"), latest(col?),
 *   oldest(col?), reorder(), limit(n|nil), offset(n|nil), clone(),
 *   table_name().
 * Reads (target first; hyd = hydration table, see orm_lua_run):
 *   get(t, hyd?), first(t, hyd?), count(t, col?), sum(t, col), avg, min,
 *   max, exists(t), pluck(t, col), paginate(t, {page=, per_page=}, hyd?)
 *   -> { items, total, page, per_page, last_page }, chunk(t, n, fn, hyd?)
 *   -> true, or false when fn returned false (fn(rows, page)).
 * Writes: insert(t, row | rows) -> { affected_rows, last_insert_id },
 *   insert_get_id(t, row, pk?) -> id, update(t, values) -> n,
 *   delete(t) -> n, increment(t, col, by?, extra?) -> n, decrement(...),
 *   upsert(t, rows, unique_by, update_columns?) -> n.
 * SQL without running: to_sql(dialect?) -> sql, bindings (the SELECT);
 *   to_sql_for(kind, dialect, ...) -> sql, bindings[, sql, bindings ...]:
 *   kind is the name of a terminal method and `...` its arguments after
 *   the target (paginate gives the count and the page statement, chunk
 *   the statement of chunk number `page`, default 1, insert and upsert
 *   every batch). A dialect is "sqlite" | "postgres" | "mysql", or a
 *   target; nil means sqlite.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_query.h"

/* {==== helpers ====} */

int lq_raise(lua_State *L, const orm_error *err)
{
    return orm_lua_raise(L, err, NULL, NULL);
}

query_ud *lq_test(lua_State *L, int idx)
{
    query_ud *u;
    if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof *u)
        return NULL;
    u = lua_touserdata(L, idx);
    return u->magic == LQ_MAGIC ? u : NULL;
}

/* The query of a Lua query object (its raw field _q, upvalue 3 of the
 * methods), or NULL: the Lua front ends install the builder methods
 * themselves, so `q:where(...)` reaches C without a Lua frame and returns
 * the object. */
static query_ud *lq_wrapped(lua_State *L, int idx)
{
    query_ud *u;
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_rawget(L, idx);
    u = lq_test(L, -1);
    lua_pop(L, 1); /* the object keeps its query alive */
    return u;
}

query_ud *lq_check(lua_State *L, int idx)
{
    query_ud *u = lua_type(L, idx) == LUA_TTABLE ? lq_wrapped(L, idx)
                                                  : lq_test(L, idx);
    if (u == NULL)
        orm_lua_argerror(L, "a query method needs the query as argument #%d "
                         "(called with ':'?), got %s", idx,
                         luaL_typename(L, idx));
    if (u->closed)
        orm_lua_argerror(L, "query is closed");
    return u;
}

/* {==== filters ====} */

static int lq_done(lua_State *L, int rc, const orm_error *err)
{
    if (rc != ORM_OK)
        return lq_raise(L, err);
    lua_settop(L, 1);
    return 1;
}

/* col op value at (ci, oi or 0 for "=", vi) into the current group. */
static int lq_compare(lua_State *L, query_ud *u, int use_or, int ci, int oi,
                       orm_qop dflt, int vi, const char *fname)
{
    size_t n;
    const char *col = lq_str(L, ci, fname, "column name", &n);
    orm_qop op = oi ? lq_op(L, oi, fname) : dflt;
    orm_value v;
    orm_error err;
    lq_value(L, vi, fname, &v);
    return orm_query_where(&u->q, use_or, col, n, op, &v, &err) == ORM_OK
               ? 0
               : lq_raise(L, &err);
}

/* where(function(q) ... end): fn runs with q's filters going to a new
 * group; the group is closed again on every exit path. */
static int lq_group(lua_State *L, query_ud *u, int use_or)
{
    orm_qfilter *saved;
    orm_error err;
    int rc;
    if (orm_query_group_begin(&u->q, use_or, &saved, &err) != ORM_OK)
        return lq_raise(L, &err);
    if (lua_type(L, 1) == LUA_TTABLE) { /* u stays alive whatever fn does */
        lua_pushvalue(L, lua_upvalueindex(3));
        lua_rawget(L, 1);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    rc = lua_pcall(L, 1, 0, 0);
    if (!u->closed)
        orm_query_group_end(&u->q, saved);
    if (rc != LUA_OK)
        return lua_error(L);
    lua_settop(L, 1);
    return 1;
}

/* where{ col = v, {col, op, v}, {col, v} }: list entries in order, then
 * named columns in sorted order. */
static int lq_where_table(lua_State *L, query_ud *u, int use_or,
                           const char *fname)
{
    int i, n, len = (int)lua_rawlen(L, 2);
    lq_key *k = lq_keys(L, 2, 1, &n, fname);
    for (i = 1; i <= len; i++) {
        int base, m;
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            orm_lua_argerror(L, "%s: entry %d must be {column, [op,] value}",
                             fname, i);
        m = (int)lua_rawlen(L, -1);
        if (m != 2 && m != 3)
            orm_lua_argerror(L, "%s: entry %d must be {column, [op,] value}",
                             fname, i);
        base = lua_gettop(L);
        lua_rawgeti(L, base, 1);
        lua_rawgeti(L, base, 2);
        lua_rawgeti(L, base, 3);
        if (m == 3)
            lq_compare(L, u, use_or, base + 1, base + 2, ORM_OP_EQ, base + 3,
                        fname);
        else
            lq_compare(L, u, use_or, base + 1, 0, ORM_OP_EQ, base + 2, fname);
        lua_settop(L, base - 1);
    }
    for (i = 0; i < n; i++) {
        orm_value v;
        orm_error err;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, 2);
        lq_value(L, -1, fname, &v);
        if (orm_query_where(&u->q, use_or, k[i].s, k[i].n, ORM_OP_EQ, &v,
                            &err) != ORM_OK)
            return lq_raise(L, &err);
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

/* where / or_where / where_not / where_equals in all their forms. */
static int lq_where(lua_State *L, int use_or, orm_qop dflt, int allow_op,
                     const char *fname)
{
    query_ud *u = lq_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs == 1 && allow_op && lua_type(L, 2) == LUA_TFUNCTION)
        return lq_group(L, u, use_or);
    if (nargs == 1 && allow_op && lua_type(L, 2) == LUA_TTABLE)
        return lq_where_table(L, u, use_or, fname);
    if (nargs == 2)
        lq_compare(L, u, use_or, 2, 0, dflt, 3, fname);
    else if (nargs == 3 && allow_op)
        lq_compare(L, u, use_or, 2, 3, dflt, 4, fname);
    else
        return orm_lua_argerror(L, "%s: expected (column, value)%s", fname,
                                allow_op ? ", (column, operator, value), a "
                                           "table or a function"
                                         : "");
    lua_settop(L, 1);
    return 1;
}

static int query_where(lua_State *L)
{
    return lq_where(L, 0, ORM_OP_EQ, 1, "where");
}

static int query_or_where(lua_State *L)
{
    return lq_where(L, 1, ORM_OP_EQ, 1, "or_where");
}

static int query_where_equals(lua_State *L)
{
    return lq_where(L, 0, ORM_OP_EQ, 0, "where_equals");
}

static int query_or_where_equals(lua_State *L)
{
    return lq_where(L, 1, ORM_OP_EQ, 0, "or_where_equals");
}

static int query_where_not(lua_State *L)
{
    return lq_where(L, 0, ORM_OP_NE, 0, "where_not");
}

static int query_or_where_not(lua_State *L)
{
    return lq_where(L, 1, ORM_OP_NE, 0, "or_where_not");
}

static int query_where_like(lua_State *L)
{
    lua_settop(L, 3);
    lq_compare(L, lq_check(L, 1), 0, 2, 0, ORM_OP_LIKE, 3, "where_like");
    lua_settop(L, 1);
    return 1;
}

static int query_or_where_like(lua_State *L)
{
    lua_settop(L, 3);
    lq_compare(L, lq_check(L, 1), 1, 2, 0, ORM_OP_LIKE, 3, "or_where_like");
    lua_settop(L, 1);
    return 1;
}

/* where_in and its kin, by ctx = use_or * 2 + negate */
static const char *const lq_in_names[] = {"where_in", "where_not_in",
                                          "or_where_in", "or_where_not_in"};

/* where_in's filter, once the value at 3 is a list or a C query (the
 * continuation of a sub-query function that yielded, whose result is then
 * at 4). */
static int lq_where_in_k(lua_State *L, int status, lua_KContext ctx)
{
    const char *fname = lq_in_names[ctx];
    int use_or = (int)(ctx >> 1), negate = (int)(ctx & 1);
    query_ud *u = lq_check(L, 1), *sub;
    orm_value small[16], *v;
    orm_error err;
    size_t n;
    const char *col = lq_str(L, 2, fname, "column name", &n);
    int len;
    (void)status;
    if (lua_gettop(L) > 3)
        lua_replace(L, 3);
    sub = lq_test(L, 3);
    if (sub != NULL)
        return lq_done(L, orm_query_where_in_sub(&u->q, use_or, negate, col,
                                                  n, &lq_check(L, 3)->q,
                                                  &err),
                        &err);
    len = lq_list_read(L, 3, small, 16, &v, fname);
    if (len < 0)
        return orm_lua_argerror(L, "%s: values must be a list or a query, "
                                   "got %s", fname, luaL_typename(L, 3));
    return lq_done(L, orm_query_where_in(&u->q, use_or, negate, col, n, v,
                                          len, &err),
                    &err);
}

static int lq_where_in(lua_State *L, int use_or, int negate)
{
    lua_KContext ctx = use_or * 2 + negate;
    const char *fname = lq_in_names[ctx];
    size_t n;
    lq_check(L, 1); /* both checked before the sub-query's scopes run */
    lq_str(L, 2, fname, "column name", &n);
    lua_settop(L, 3);
    lq_sub_query(L, 3, fname, ctx, lq_where_in_k);
    return lq_where_in_k(L, LUA_OK, ctx);
}

static int query_where_in(lua_State *L)
{
    return lq_where_in(L, 0, 0);
}

static int query_where_not_in(lua_State *L)
{
    return lq_where_in(L, 0, 1);
}

static int query_or_where_in(lua_State *L)
{
    return lq_where_in(L, 1, 0);
}

static int query_or_where_not_in(lua_State *L)
{
    return lq_where_in(L, 1, 1);
}

static int lq_where_null(lua_State *L, int use_or, int negate,
                          const char *fname)
{
    query_ud *u = lq_check(L, 1);
    orm_error err;
    size_t n;
    const char *col = lq_str(L, 2, fname, "column name", &n);
    return lq_done(L, orm_query_where_null(&u->q, use_or, negate, col, n,
                                            &err),
                    &err);
}

static int query_where_null(lua_State *L)
{
    return lq_where_null(L, 0, 0, "where_null");
}

static int query_where_not_null(lua_State *L)
{
    return lq_where_null(L, 0, 1, "where_not_null");
}

static int query_or_where_null(lua_State *L)
{
    return lq_where_null(L, 1, 0, "or_where_null");
}

static int query_or_where_not_null(lua_State *L)
{
    return lq_where_null(L, 1, 1, "or_where_not_null");
}

static int lq_where_between(lua_State *L, int use_or, int negate,
                             const char *fname)
{
    query_ud *u = lq_check(L, 1);
    orm_value lo, hi;
    orm_error err;
    size_t n;
    const char *col = lq_str(L, 2, fname, "column name", &n);
    lua_settop(L, 4);
    lq_value(L, 3, fname, &lo);
    lq_value(L, 4, fname, &hi);
    return lq_done(L, orm_query_where_between(&u->q, use_or, negate, col, n,
                                               &lo, &hi, &err),
                    &err);
}

static int query_where_between(lua_State *L)
{
    return lq_where_between(L, 0, 0, "where_between");
}

static int query_where_not_between(lua_State *L)
{
    return lq_where_between(L, 0, 1, "where_not_between");
}

static int query_or_where_between(lua_State *L)
{
    return lq_where_between(L, 1, 0, "or_where_between");
}

static int query_or_where_not_between(lua_State *L)
{
    return lq_where_between(L, 1, 1, "or_where_not_between");
}

/* where_column(a, b) or where_column(a, op, b) */
static int lq_where_column(lua_State *L, int use_or, const char *fname)
{
    query_ud *u = lq_check(L, 1);
    int three = lua_gettop(L) >= 4;
    size_t an, bn;
    const char *a = lq_str(L, 2, fname, "column name", &an);
    orm_qop op = three ? lq_op(L, 3, fname) : ORM_OP_EQ;
    const char *b = lq_str(L, three ? 4 : 3, fname, "column name", &bn);
    orm_error err;
    return lq_done(L, orm_query_where_column(&u->q, use_or, a, an, op, b, bn,
                                              &err),
                    &err);
}

static int query_where_column(lua_State *L)
{
    return lq_where_column(L, 0, "where_column");
}

static int query_or_where_column(lua_State *L)
{
    return lq_where_column(L, 1, "or_where_column");
}

static int lq_where_raw(lua_State *L, int use_or, const char *fname)
{
    query_ud *u = lq_check(L, 1);
    orm_value small[16], *v;
    orm_error err;
    size_t n;
    const char *sql = lq_str(L, 2, fname, "SQL", &n);
    int len = lua_isnoneornil(L, 3) ? 0 : lq_list_len(L, 3);
    if (len < 0)
        return orm_lua_argerror(L, "%s: bindings must be a list, got %s",
                                fname, luaL_typename(L, 3));
    v = lq_values(L, len, small, 16);
    lq_list_values(L, 3, len, v, fname);
    return lq_done(L, orm_query_where_raw(&u->q, use_or, sql, n, v, len,
                                           &err),
                    &err);
}

static int query_where_raw(lua_State *L)
{
    return lq_where_raw(L, 0, "where_raw");
}

static int query_or_where_raw(lua_State *L)
{
    return lq_where_raw(L, 1, "or_where_raw");
}

static int lq_where_exists(lua_State *L, int use_or, int negate,
                            const char *fname)
{
    query_ud *u = lq_check(L, 1);
    orm_error err;
    if (!lq_test(L, 2))
        return orm_lua_argerror(L, "%s: expected a query, got %s", fname,
                                luaL_typename(L, 2));
    return lq_done(L, orm_query_where_exists(&u->q, use_or, negate,
                                              &lq_check(L, 2)->q, &err),
                    &err);
}

static int query_where_exists(lua_State *L)
{
    return lq_where_exists(L, 0, 0, "where_exists");
}

static int query_where_not_exists(lua_State *L)
{
    return lq_where_exists(L, 0, 1, "where_not_exists");
}

static int query_or_where_exists(lua_State *L)
{
    return lq_where_exists(L, 1, 0, "or_where_exists");
}

static int query_or_where_not_exists(lua_State *L)
{
    return lq_where_exists(L, 1, 1, "or_where_not_exists");
}

/* {==== shape ====} */

typedef int (*lq_add_name)(orm_query *q, const char *s, size_t n,
             orm_error *err);

/* Adds every name of (...) or of one list argument. */
static int lq_names(lua_State *L, lq_add_name add, const char *fname)
{
    query_ud *u = lq_check(L, 1);
    int i, top = lua_gettop(L), list = top == 2 && lua_istable(L, 2);
    int n = list ? lq_list_len(L, 2) : top - 1;
    orm_error err;
    if (n < 0)
        return orm_lua_argerror(L, "%s: expected names or a list of names",
                                fname);
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *s;
        int idx = i + 1;
        if (list) {
            lua_rawgeti(L, 2, i);
            idx = -1;
        }
        s = lq_str(L, idx, fname, "column name", &len);
        if (add(&u->q, s, len, &err) != ORM_OK)
            return lq_raise(L, &err);
        if (list)
            lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

static int query_select(lua_State *L)
{
    orm_query_select_reset(&lq_check(L, 1)->q);
    return lq_names(L, orm_query_select, "select");
}

static int query_add_select(lua_State *L)
{
    return lq_names(L, orm_query_select, "add_select");
}

static int query_group_by(lua_State *L)
{
    return lq_names(L, orm_query_group_by, "group_by");
}

static int query_distinct(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    orm_query_distinct(&u->q, lua_isnone(L, 2) || lua_toboolean(L, 2));
    lua_settop(L, 1);
    return 1;
}

/* join(t, a, b) or join(t, a, op, b) */
static int lq_join(lua_State *L, int left, const char *fname)
{
    query_ud *u = lq_check(L, 1);
    int four = lua_gettop(L) >= 5;
    size_t tn, an, bn;
    const char *t = lq_str(L, 2, fname, "table name", &tn);
    const char *a = lq_str(L, 3, fname, "column name", &an);
    orm_qop op = four ? lq_op(L, 4, fname) : ORM_OP_EQ;
    const char *b = lq_str(L, four ? 5 : 4, fname, "column name", &bn);
    orm_error err;
    return lq_done(L, orm_query_join(&u->q, left, t, tn, a, an, op, b, bn,
                                      &err),
                    &err);
}

static int query_join(lua_State *L)
{
    return lq_join(L, 0, "join");
}

static int query_left_join(lua_State *L)
{
    return lq_join(L, 1, "left_join");
}

/* having(col, v) or having(col, op, v) */
static int query_having(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    int three = lua_gettop(L) >= 4;
    size_t n;
    const char *col = lq_str(L, 2, "having", "column name", &n);
    orm_qop op = three ? lq_op(L, 3, "having") : ORM_OP_EQ;
    orm_value v;
    orm_error err;
    lq_value(L, three ? 4 : 3, "having", &v);
    return lq_done(L, orm_query_having(&u->q, col, n, op, &v, &err), &err);
}

/* 1 when s (n bytes) is `lower` in any case. */
static int lq_ieq(const char *s, size_t n, const char *lower)
{
    size_t i;
    if (n != strlen(lower))
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return 0;
    }
    return 1;
}

/* order_by(col, dir?) */
static int query_order_by(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    size_t n, dn = 3;
    const char *col = lq_str(L, 2, "order_by", "column name", &n);
    const char *dir = "asc";
    orm_error err;
    if (!lua_isnoneornil(L, 3))
        dir = lq_str(L, 3, "order_by", "direction", &dn);
    if (!lq_ieq(dir, dn, "asc") && !lq_ieq(dir, dn, "desc"))
        return orm_lua_argerror(L, "order_by: direction must be \"asc\" or "
                                   "\"desc\"");
    return lq_done(L, orm_query_order_by(&u->q, col, n,
                                          lq_ieq(dir, dn, "desc"), &err),
                    &err);
}

/* latest(col?) / oldest(col?): order by col (default created_at). */
static int lq_latest(lua_State *L, int desc, const char *fname)
{
    query_ud *u = lq_check(L, 1);
    size_t n = 10;
    const char *col = "created_at";
    orm_error err;
    if (!lua_isnoneornil(L, 2))
        col = lq_str(L, 2, fname, "column name", &n);
    return lq_done(L, orm_query_order_by(&u->q, col, n, desc, &err), &err);
}

static int query_latest(lua_State *L)
{
    return lq_latest(L, 1, "latest");
}

static int query_oldest(lua_State *L)
{
    return lq_latest(L, 0, "oldest");
}

static int query_reorder(lua_State *L)
{
    orm_query_order_reset(&lq_check(L, 1)->q);
    lua_settop(L, 1);
    return 1;
}

static int query_limit(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    orm_query_limit(&u->q, lq_int(L, 2, "limit", "limit", 0, -1));
    lua_settop(L, 1);
    return 1;
}

static int query_offset(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    orm_query_offset(&u->q, lq_int(L, 2, "offset", "offset", 0, -1));
    lua_settop(L, 1);
    return 1;
}

/* q:_limits() -> limit, offset (nil when none; offset 0 is none), for
 * paginate, which sets them itself. */
static int query_limits(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    if (u->q.limit >= 0)
        lua_pushinteger(L, (lua_Integer)u->q.limit);
    else
        lua_pushnil(L);
    if (u->q.offset > 0)
        lua_pushinteger(L, (lua_Integer)u->q.offset);
    else
        lua_pushnil(L);
    return 2;
}

/* {==== registration ====} */

/* q:_scope_begin() / q:_scope_end(): see orm_query_scope_begin. For the
 * model layer's global scopes; not a public method. */
static int query_scope_begin(lua_State *L)
{
    orm_error err;
    query_ud *u = lq_check(L, 1);
    if (orm_query_scope_begin(&u->q, &err) != ORM_OK)
        return lq_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int query_scope_group(lua_State *L)
{
    orm_error err;
    query_ud *u = lq_check(L, 1);
    return lq_done(L, orm_query_scope_group(&u->q, &err), &err);
}

static int query_scope_end(lua_State *L)
{
    orm_query_scope_end(&lq_check(L, 1)->q);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg query_methods[] = {
    {"_scope_begin", query_scope_begin},
    {"_scope_end", query_scope_end},
    {"_scope_group", query_scope_group},
    {"_limits", query_limits},
    {"where", query_where},
    {"or_where", query_or_where},
    {"where_equals", query_where_equals},
    {"or_where_equals", query_or_where_equals},
    {"where_not", query_where_not},
    {"or_where_not", query_or_where_not},
    {"where_in", query_where_in},
    {"where_not_in", query_where_not_in},
    {"or_where_in", query_or_where_in},
    {"or_where_not_in", query_or_where_not_in},
    {"where_null", query_where_null},
    {"where_not_null", query_where_not_null},
    {"or_where_null", query_or_where_null},
    {"or_where_not_null", query_or_where_not_null},
    {"where_between", query_where_between},
    {"where_not_between", query_where_not_between},
    {"or_where_between", query_or_where_between},
    {"or_where_not_between", query_or_where_not_between},
    {"where_like", query_where_like},
    {"or_where_like", query_or_where_like},
    {"where_column", query_where_column},
    {"or_where_column", query_or_where_column},
    {"where_raw", query_where_raw},
    {"or_where_raw", query_or_where_raw},
    {"where_exists", query_where_exists},
    {"where_not_exists", query_where_not_exists},
    {"or_where_exists", query_or_where_exists},
    {"or_where_not_exists", query_or_where_not_exists},
    {"select", query_select},
    {"add_select", query_add_select},
    {"distinct", query_distinct},
    {"join", query_join},
    {"left_join", query_left_join},
    {"group_by", query_group_by},
    {"having", query_having},
    {"order_by", query_order_by},
    {"latest", query_latest},
    {"oldest", query_oldest},
    {"reorder", query_reorder},
    {"limit", query_limit},
    {"offset", query_offset},
    {"clone", lqo_clone},
    {"table_name", lqo_table_name},
    {NULL, NULL},
};

static const luaL_Reg query_meta[] = {
    {"__gc", lqo_gc},
    {"__close", lqo_close},
    {"__tostring", lqo_tostring},
    {NULL, NULL},
};

/* Pushes core.query_methods: every method name of a query -> "build"
 * (changes the query, returns it), "read", "write" or "other", so the Lua
 * front ends derive their method lists from this one table. */
static void lq_push_kinds(lua_State *L)
{
    const luaL_Reg *r;
    lua_newtable(L);
    for (r = query_methods; r->name; r++) {
        int other;
        if (r->name[0] == '_')
            continue; /* the model layer's plumbing */
        other = strcmp(r->name, "clone") == 0 ||
                    strcmp(r->name, "table_name") == 0;
        lua_pushstring(L, other ? "other" : "build");
        lua_setfield(L, -2, r->name);
    }
    for (r = lq_terminal_methods; r->name; r++) {
        lua_pushstring(L, lq_terminal_kind(r->name));
        lua_setfield(L, -2, r->name);
    }
}

/* Pushes the three upvalues of every query method (scratch, metatable,
 * "_q"; see lq_wrapped) from their stack slots. */
static void lq_push_upvalues(lua_State *L, int base)
{
    lua_pushvalue(L, base);
    lua_pushvalue(L, base + 1);
    lua_pushvalue(L, base + 2);
}

void orm_lua_open_query(lua_State *L)
{
    int base;
    lqo_new_scratch(L);
    base = lua_gettop(L);
    luaL_newmetatable(L, ORM_LUA_QUERY);
    lua_pushliteral(L, "_q");
    lua_pushvalue(L, base + 1);
    lq_push_upvalues(L, base);
    luaL_setfuncs(L, query_meta, 3);
    luaL_newlibtable(L, query_methods);
    lq_push_upvalues(L, base);
    luaL_setfuncs(L, query_methods, 3);
    lq_push_upvalues(L, base);
    luaL_setfuncs(L, lq_terminal_methods, 3);
    lua_setfield(L, -2, "__index");
    lua_settop(L, base + 1); /* scratch, metatable */
    lqo_open(L, base);
    lua_settop(L, base - 1); /* the module table */
    lq_push_kinds(L);
    lua_setfield(L, -2, "query_methods");
}
