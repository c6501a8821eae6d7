/*
 * lua_query.c: the userdata "ormed.query", a thin Lua wrapper over the C
 * query model (orm_query.h). Builder methods change the query and return
 * it; terminal methods take the execution target (a pool or a pinned
 * connection, see lua_ormed.h) as their first argument, compile for its
 * dialect and run through orm_lua_run. No SQL is concatenated in Lua.
 *
 *   core.query(table) -> query
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

#include "lua_ormed.h"
#include "orm_query.h"

/* Compiled SQL and its bindings (borrowing the query's bytes). */
typedef struct query_out {
    orm_buf sql;
    orm_vlist binds;
} query_out;

/* The output buffers every compile of one Lua state shares (an upvalue of
 * the methods), so a fresh query allocates none; a statement being run
 * holds them (busy) and compiles meanwhile use the query's own. */
typedef struct query_scratch {
    query_out out;
    int busy;
} query_scratch;

typedef struct query_ud {
    orm_query q;        /* the model; never moves (userdata memory) */
    query_out own;      /* used while the shared scratch is busy */
    query_out *out;     /* where the last compile went */
    int running;        /* statements of this query in orm_lua_run */
    int holds_scratch;  /* a running statement of this query holds it */
    int closed;         /* 1 after __close */
} query_ud;

/* {==== helpers ====} */

static int aux_raise(lua_State *L, const orm_error *err)
{
    return orm_lua_raise(L, err, NULL, NULL);
}

/* The query at idx, or NULL. Methods carry the query metatable as their
 * upvalue 2, which spares a registry lookup by name per call. */
static query_ud *aux_test(lua_State *L, int idx)
{
    query_ud *u = lua_type(L, idx) == LUA_TUSERDATA ? lua_touserdata(L, idx)
                                                     : NULL;
    int same;
    if (u == NULL || !lua_getmetatable(L, idx))
        return NULL;
    same = lua_rawequal(L, -1, lua_upvalueindex(2));
    lua_pop(L, 1);
    return same ? u : NULL;
}

static query_ud *aux_check(lua_State *L, int idx)
{
    query_ud *u = aux_test(L, idx);
    if (u == NULL)
        luaL_typeerror(L, idx, ORM_LUA_QUERY);
    if (u->closed)
        orm_lua_argerror(L, "query is closed");
    return u;
}

static query_ud *aux_push(lua_State *L)
{
    query_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    orm_query_init(&u->q);
    orm_buf_init(&u->own.sql);
    orm_vlist_init(&u->own.binds);
    u->out = &u->own;
    u->running = 0;
    u->holds_scratch = 0;
    u->closed = 0;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setmetatable(L, -2);
    return u;
}

/* The string at idx. Without n the caller reads it as a C string, so one
 * holding a NUL byte (which would end it early) is refused. */
static const char *aux_str(lua_State *L, int idx, const char *fname,
                           const char *what, size_t *n)
{
    size_t len;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        orm_lua_argerror(L, "%s: %s must be a string, got %s", fname, what,
                         luaL_typename(L, idx));
    s = lua_tolstring(L, idx, &len);
    if (n != NULL)
        *n = len;
    else if (strlen(s) != len)
        orm_lua_argerror(L, "%s: %s contains a NUL byte", fname, what);
    return s;
}

static orm_qop aux_op(lua_State *L, int idx, const char *fname)
{
    size_t n;
    const char *s = aux_str(L, idx, fname, "operator", &n);
    int op = orm_query_op_parse(s, n);
    if (op < 0)
        orm_lua_argerror(L, "%s: operator must be one of %s, got '%.*s'",
                         fname, orm_query_op_names(), (int)(n > 32 ? 32 : n),
                         s);
    return (orm_qop)op;
}

static void aux_value(lua_State *L, int idx, const char *fname, orm_value *v)
{
    orm_error err;
    if (orm_lua_tovalue(L, idx, v, &err) != ORM_OK)
        orm_lua_argerror(L, "%s: %s", fname, err.message);
}

/* Integer argument >= min; nil gives dflt. */
static lua_Integer aux_int(lua_State *L, int idx, const char *fname,
                           const char *what, lua_Integer min,
                           lua_Integer dflt)
{
    int ok = 0;
    lua_Integer n;
    if (lua_isnoneornil(L, idx))
        return dflt;
    n = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &ok) : 0;
    if (!ok || n < min)
        orm_lua_argerror(L, "%s: %s must be an integer >= %d", fname, what,
                         (int)min);
    return n;
}

/* The length of the plain list at idx (keys exactly 1..n), or -1. */
static int aux_list_len(lua_State *L, int idx)
{
    lua_Integer n, count = 0;
    if (!lua_istable(L, idx))
        return -1;
    n = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    return count == n && n <= 0x7fffffff ? (int)n : -1;
}

/* Room for n values: `small` when it fits, else a userdata pushed on the
 * stack (collected with it). */
static orm_value *aux_values(lua_State *L, int n, orm_value *small,
                             int nsmall)
{
    if (n <= nsmall)
        return small;
    return lua_newuserdatauv(L, sizeof(orm_value) * (size_t)n, 0);
}

/* Converts list[1..n] into v. */
static void aux_list_values(lua_State *L, int idx, int n, orm_value *v,
                            const char *fname)
{
    int i;
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        aux_value(L, -1, fname, &v[i]);
        lua_pop(L, 1); /* the list keeps strings alive */
    }
}

typedef struct aux_key {
    const char *s;
    size_t n;
} aux_key;

static int aux_key_cmp(const void *pa, const void *pb)
{
    const aux_key *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (c != 0)
        return c;
    return (a->n > b->n) - (a->n < b->n);
}

/* The string keys of table t, sorted (a userdata pushed on the stack;
 * the table keeps the strings alive). Integer keys are skipped when
 * skip_ints is set; any other key raises. */
static aux_key *aux_keys(lua_State *L, int t, int skip_ints, int *n,
                         const char *fname)
{
    int count = 0;
    aux_key *k;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            count++;
        else if (!(skip_ints && lua_isinteger(L, -1)))
            orm_lua_argerror(L, "%s: column name must be a string, got %s",
                             fname, luaL_typename(L, -1));
    }
    k = lua_newuserdatauv(L, sizeof *k * (size_t)(count ? count : 1), 0);
    count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            k[count].s = lua_tolstring(L, -1, &k[count].n);
            count++;
        }
    }
    qsort(k, (size_t)count, sizeof *k, aux_key_cmp);
    *n = count;
    return k;
}

/* The dialect named or carried by the value at idx (nil = sqlite). */
static const orm_dialect *aux_dialect(lua_State *L, int idx)
{
    const orm_driver *d;
    const char *name = "sqlite";
    if (lua_type(L, idx) == LUA_TUSERDATA)
        return orm_lua_target_dialect(L, idx);
    if (!lua_isnoneornil(L, idx))
        name = aux_str(L, idx, "to_sql", "dialect", NULL);
    d = orm_driver_find(name);
    if (d == NULL)
        orm_lua_argerror(L, "to_sql: unknown dialect '%s' (sqlite, postgres, "
                            "mysql)", name);
    return d->dialect;
}

/* {==== life cycle ====} */

/* core.query(table) */
static int query_new(lua_State *L)
{
    size_t n;
    const char *t = aux_str(L, 1, "query", "table name", &n);
    orm_error err;
    query_ud *u = aux_push(L);
    if (orm_query_set_table(&u->q, t, n, &err) != ORM_OK)
        return aux_raise(L, &err);
    return 1;
}

static void aux_out_free(query_out *o)
{
    orm_buf_free(&o->sql);
    orm_vlist_free(&o->binds);
}

static void aux_release(query_ud *u)
{
    orm_query_clear(&u->q);
    aux_out_free(&u->own);
    u->out = &u->own;
}

static query_scratch *aux_scratch(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int scratch_gc(lua_State *L)
{
    query_scratch *sc = lua_touserdata(L, 1);
    aux_out_free(&sc->out);
    return 0;
}

static int query_gc(lua_State *L)
{
    query_ud *u = luaL_checkudata(L, 1, ORM_LUA_QUERY);
    aux_release(u);
    u->closed = 1;
    return 0;
}

/* __close: also the guard that aux_emit marks to-be-closed around a run,
 * so that a running statement's count drops on every exit path. */
static int query_close(lua_State *L)
{
    query_ud *u = luaL_checkudata(L, 1, ORM_LUA_QUERY);
    if (u->running > 0) {
        u->running--;
        if (u->holds_scratch) {
            aux_scratch(L)->busy = 0;
            u->holds_scratch = 0;
        }
        return 0;
    }
    return query_gc(L);
}

static int query_clone(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    orm_error err;
    query_ud *c = aux_push(L);
    if (orm_query_copy(&c->q, &u->q, &err) != ORM_OK)
        return aux_raise(L, &err);
    return 1;
}

static int query_table_name(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    lua_pushstring(L, u->q.table ? u->q.table : "");
    return 1;
}

static int query_tostring(lua_State *L)
{
    query_ud *u = luaL_checkudata(L, 1, ORM_LUA_QUERY);
    lua_pushfstring(L, "ormed.query (%s)%s", u->q.table ? u->q.table : "?",
                    u->closed ? " closed" : "");
    return 1;
}

/* {==== filters ====} */

static int aux_done(lua_State *L, int rc, const orm_error *err)
{
    if (rc != ORM_OK)
        return aux_raise(L, err);
    lua_settop(L, 1);
    return 1;
}

/* col op value at (ci, oi or 0 for "=", vi) into the current group. */
static int aux_compare(lua_State *L, query_ud *u, int use_or, int ci, int oi,
                       orm_qop dflt, int vi, const char *fname)
{
    size_t n;
    const char *col = aux_str(L, ci, fname, "column name", &n);
    orm_qop op = oi ? aux_op(L, oi, fname) : dflt;
    orm_value v;
    orm_error err;
    aux_value(L, vi, fname, &v);
    return orm_query_where(&u->q, use_or, col, n, op, &v, &err) == ORM_OK
               ? 0
               : aux_raise(L, &err);
}

/* where(function(q) ... end): fn runs with q's filters going to a new
 * group; the group is closed again on every exit path. */
static int aux_group(lua_State *L, query_ud *u, int use_or)
{
    orm_qfilter *saved;
    orm_error err;
    int rc;
    if (orm_query_group_begin(&u->q, use_or, &saved, &err) != ORM_OK)
        return aux_raise(L, &err);
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
static int aux_where_table(lua_State *L, query_ud *u, int use_or,
                           const char *fname)
{
    int i, n, len = (int)lua_rawlen(L, 2);
    aux_key *k = aux_keys(L, 2, 1, &n, fname);
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
            aux_compare(L, u, use_or, base + 1, base + 2, ORM_OP_EQ, base + 3,
                        fname);
        else
            aux_compare(L, u, use_or, base + 1, 0, ORM_OP_EQ, base + 2, fname);
        lua_settop(L, base - 1);
    }
    for (i = 0; i < n; i++) {
        orm_value v;
        orm_error err;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, 2);
        aux_value(L, -1, fname, &v);
        if (orm_query_where(&u->q, use_or, k[i].s, k[i].n, ORM_OP_EQ, &v,
                            &err) != ORM_OK)
            return aux_raise(L, &err);
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

/* where / or_where / where_not / where_equals in all their forms. */
static int aux_where(lua_State *L, int use_or, orm_qop dflt, int allow_op,
                     const char *fname)
{
    query_ud *u = aux_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs == 1 && allow_op && lua_type(L, 2) == LUA_TFUNCTION)
        return aux_group(L, u, use_or);
    if (nargs == 1 && allow_op && lua_type(L, 2) == LUA_TTABLE)
        return aux_where_table(L, u, use_or, fname);
    if (nargs == 2)
        aux_compare(L, u, use_or, 2, 0, dflt, 3, fname);
    else if (nargs == 3 && allow_op)
        aux_compare(L, u, use_or, 2, 3, dflt, 4, fname);
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
    return aux_where(L, 0, ORM_OP_EQ, 1, "where");
}

static int query_or_where(lua_State *L)
{
    return aux_where(L, 1, ORM_OP_EQ, 1, "or_where");
}

static int query_where_equals(lua_State *L)
{
    return aux_where(L, 0, ORM_OP_EQ, 0, "where_equals");
}

static int query_or_where_equals(lua_State *L)
{
    return aux_where(L, 1, ORM_OP_EQ, 0, "or_where_equals");
}

static int query_where_not(lua_State *L)
{
    return aux_where(L, 0, ORM_OP_NE, 0, "where_not");
}

static int query_or_where_not(lua_State *L)
{
    return aux_where(L, 1, ORM_OP_NE, 0, "or_where_not");
}

static int query_where_like(lua_State *L)
{
    lua_settop(L, 3);
    aux_compare(L, aux_check(L, 1), 0, 2, 0, ORM_OP_LIKE, 3, "where_like");
    lua_settop(L, 1);
    return 1;
}

static int query_or_where_like(lua_State *L)
{
    lua_settop(L, 3);
    aux_compare(L, aux_check(L, 1), 1, 2, 0, ORM_OP_LIKE, 3, "or_where_like");
    lua_settop(L, 1);
    return 1;
}

static int aux_where_in(lua_State *L, int use_or, int negate,
                        const char *fname)
{
    query_ud *u = aux_check(L, 1);
    orm_value small[16], *v;
    orm_error err;
    size_t n;
    const char *col = aux_str(L, 2, fname, "column name", &n);
    query_ud *sub = aux_test(L, 3);
    int len;
    if (sub != NULL)
        return aux_done(L, orm_query_where_in_sub(&u->q, use_or, negate, col,
                                                  n, &aux_check(L, 3)->q,
                                                  &err),
                        &err);
    len = aux_list_len(L, 3);
    if (len < 0)
        return orm_lua_argerror(L, "%s: values must be a list or a query, "
                                   "got %s", fname, luaL_typename(L, 3));
    v = aux_values(L, len, small, 16);
    aux_list_values(L, 3, len, v, fname);
    return aux_done(L, orm_query_where_in(&u->q, use_or, negate, col, n, v,
                                          len, &err),
                    &err);
}

static int query_where_in(lua_State *L)
{
    return aux_where_in(L, 0, 0, "where_in");
}

static int query_where_not_in(lua_State *L)
{
    return aux_where_in(L, 0, 1, "where_not_in");
}

static int query_or_where_in(lua_State *L)
{
    return aux_where_in(L, 1, 0, "or_where_in");
}

static int query_or_where_not_in(lua_State *L)
{
    return aux_where_in(L, 1, 1, "or_where_not_in");
}

static int aux_where_null(lua_State *L, int use_or, int negate,
                          const char *fname)
{
    query_ud *u = aux_check(L, 1);
    orm_error err;
    size_t n;
    const char *col = aux_str(L, 2, fname, "column name", &n);
    return aux_done(L, orm_query_where_null(&u->q, use_or, negate, col, n,
                                            &err),
                    &err);
}

static int query_where_null(lua_State *L)
{
    return aux_where_null(L, 0, 0, "where_null");
}

static int query_where_not_null(lua_State *L)
{
    return aux_where_null(L, 0, 1, "where_not_null");
}

static int query_or_where_null(lua_State *L)
{
    return aux_where_null(L, 1, 0, "or_where_null");
}

static int query_or_where_not_null(lua_State *L)
{
    return aux_where_null(L, 1, 1, "or_where_not_null");
}

static int aux_where_between(lua_State *L, int use_or, int negate,
                             const char *fname)
{
    query_ud *u = aux_check(L, 1);
    orm_value lo, hi;
    orm_error err;
    size_t n;
    const char *col = aux_str(L, 2, fname, "column name", &n);
    lua_settop(L, 4);
    aux_value(L, 3, fname, &lo);
    aux_value(L, 4, fname, &hi);
    return aux_done(L, orm_query_where_between(&u->q, use_or, negate, col, n,
                                               &lo, &hi, &err),
                    &err);
}

static int query_where_between(lua_State *L)
{
    return aux_where_between(L, 0, 0, "where_between");
}

static int query_where_not_between(lua_State *L)
{
    return aux_where_between(L, 0, 1, "where_not_between");
}

static int query_or_where_between(lua_State *L)
{
    return aux_where_between(L, 1, 0, "or_where_between");
}

static int query_or_where_not_between(lua_State *L)
{
    return aux_where_between(L, 1, 1, "or_where_not_between");
}

/* where_column(a, b) or where_column(a, op, b) */
static int aux_where_column(lua_State *L, int use_or, const char *fname)
{
    query_ud *u = aux_check(L, 1);
    int three = lua_gettop(L) >= 4;
    size_t an, bn;
    const char *a = aux_str(L, 2, fname, "column name", &an);
    orm_qop op = three ? aux_op(L, 3, fname) : ORM_OP_EQ;
    const char *b = aux_str(L, three ? 4 : 3, fname, "column name", &bn);
    orm_error err;
    return aux_done(L, orm_query_where_column(&u->q, use_or, a, an, op, b, bn,
                                              &err),
                    &err);
}

static int query_where_column(lua_State *L)
{
    return aux_where_column(L, 0, "where_column");
}

static int query_or_where_column(lua_State *L)
{
    return aux_where_column(L, 1, "or_where_column");
}

static int aux_where_raw(lua_State *L, int use_or, const char *fname)
{
    query_ud *u = aux_check(L, 1);
    orm_value small[16], *v;
    orm_error err;
    size_t n;
    const char *sql = aux_str(L, 2, fname, "SQL", &n);
    int len = lua_isnoneornil(L, 3) ? 0 : aux_list_len(L, 3);
    if (len < 0)
        return orm_lua_argerror(L, "%s: bindings must be a list, got %s",
                                fname, luaL_typename(L, 3));
    v = aux_values(L, len, small, 16);
    aux_list_values(L, 3, len, v, fname);
    return aux_done(L, orm_query_where_raw(&u->q, use_or, sql, n, v, len,
                                           &err),
                    &err);
}

static int query_where_raw(lua_State *L)
{
    return aux_where_raw(L, 0, "where_raw");
}

static int query_or_where_raw(lua_State *L)
{
    return aux_where_raw(L, 1, "or_where_raw");
}

static int aux_where_exists(lua_State *L, int use_or, int negate,
                            const char *fname)
{
    query_ud *u = aux_check(L, 1);
    orm_error err;
    if (!aux_test(L, 2))
        return orm_lua_argerror(L, "%s: expected a query, got %s", fname,
                                luaL_typename(L, 2));
    return aux_done(L, orm_query_where_exists(&u->q, use_or, negate,
                                              &aux_check(L, 2)->q, &err),
                    &err);
}

static int query_where_exists(lua_State *L)
{
    return aux_where_exists(L, 0, 0, "where_exists");
}

static int query_where_not_exists(lua_State *L)
{
    return aux_where_exists(L, 0, 1, "where_not_exists");
}

static int query_or_where_exists(lua_State *L)
{
    return aux_where_exists(L, 1, 0, "or_where_exists");
}

static int query_or_where_not_exists(lua_State *L)
{
    return aux_where_exists(L, 1, 1, "or_where_not_exists");
}

/* {==== shape ====} */

typedef int (*aux_add_name)(orm_query *q, const char *s, size_t n,
                            orm_error *err);

/* Adds every name of (...) or of one list argument. */
static int aux_names(lua_State *L, aux_add_name add, const char *fname)
{
    query_ud *u = aux_check(L, 1);
    int i, top = lua_gettop(L), list = top == 2 && lua_istable(L, 2);
    int n = list ? aux_list_len(L, 2) : top - 1;
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
        s = aux_str(L, idx, fname, "column name", &len);
        if (add(&u->q, s, len, &err) != ORM_OK)
            return aux_raise(L, &err);
        if (list)
            lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

static int query_select(lua_State *L)
{
    orm_query_select_reset(&aux_check(L, 1)->q);
    return aux_names(L, orm_query_select, "select");
}

static int query_add_select(lua_State *L)
{
    return aux_names(L, orm_query_select, "add_select");
}

static int query_group_by(lua_State *L)
{
    return aux_names(L, orm_query_group_by, "group_by");
}

static int query_distinct(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    orm_query_distinct(&u->q, lua_isnone(L, 2) || lua_toboolean(L, 2));
    lua_settop(L, 1);
    return 1;
}

/* join(t, a, b) or join(t, a, op, b) */
static int aux_join(lua_State *L, int left, const char *fname)
{
    query_ud *u = aux_check(L, 1);
    int four = lua_gettop(L) >= 5;
    size_t tn, an, bn;
    const char *t = aux_str(L, 2, fname, "table name", &tn);
    const char *a = aux_str(L, 3, fname, "column name", &an);
    orm_qop op = four ? aux_op(L, 4, fname) : ORM_OP_EQ;
    const char *b = aux_str(L, four ? 5 : 4, fname, "column name", &bn);
    orm_error err;
    return aux_done(L, orm_query_join(&u->q, left, t, tn, a, an, op, b, bn,
                                      &err),
                    &err);
}

static int query_join(lua_State *L)
{
    return aux_join(L, 0, "join");
}

static int query_left_join(lua_State *L)
{
    return aux_join(L, 1, "left_join");
}

/* having(col, v) or having(col, op, v) */
static int query_having(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    int three = lua_gettop(L) >= 4;
    size_t n;
    const char *col = aux_str(L, 2, "having", "column name", &n);
    orm_qop op = three ? aux_op(L, 3, "having") : ORM_OP_EQ;
    orm_value v;
    orm_error err;
    aux_value(L, three ? 4 : 3, "having", &v);
    return aux_done(L, orm_query_having(&u->q, col, n, op, &v, &err), &err);
}

/* 1 when s (n bytes) is `lower` in any case. */
static int aux_ieq(const char *s, size_t n, const char *lower)
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
    query_ud *u = aux_check(L, 1);
    size_t n, dn = 3;
    const char *col = aux_str(L, 2, "order_by", "column name", &n);
    const char *dir = "asc";
    orm_error err;
    if (!lua_isnoneornil(L, 3))
        dir = aux_str(L, 3, "order_by", "direction", &dn);
    if (!aux_ieq(dir, dn, "asc") && !aux_ieq(dir, dn, "desc"))
        return orm_lua_argerror(L, "order_by: direction must be \"asc\" or "
                                   "\"desc\"");
    return aux_done(L, orm_query_order_by(&u->q, col, n,
                                          aux_ieq(dir, dn, "desc"), &err),
                    &err);
}

/* latest(col?) / oldest(col?): order by col (default created_at). */
static int aux_latest(lua_State *L, int desc, const char *fname)
{
    query_ud *u = aux_check(L, 1);
    size_t n = 10;
    const char *col = "created_at";
    orm_error err;
    if (!lua_isnoneornil(L, 2))
        col = aux_str(L, 2, fname, "column name", &n);
    return aux_done(L, orm_query_order_by(&u->q, col, n, desc, &err), &err);
}

static int query_latest(lua_State *L)
{
    return aux_latest(L, 1, "latest");
}

static int query_oldest(lua_State *L)
{
    return aux_latest(L, 0, "oldest");
}

static int query_reorder(lua_State *L)
{
    orm_query_order_reset(&aux_check(L, 1)->q);
    lua_settop(L, 1);
    return 1;
}

static int query_limit(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    orm_query_limit(&u->q, aux_int(L, 2, "limit", "limit", 0, -1));
    lua_settop(L, 1);
    return 1;
}

static int query_offset(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    orm_query_offset(&u->q, aux_int(L, 2, "offset", "offset", 0, -1));
    lua_settop(L, 1);
    return 1;
}

/* {==== compiling and running ====} */

/* Where a compiled statement goes: run on a target (tidx != 0), or
 * collected as sql, bindings pairs into the list at `out`. */
typedef struct aux_sink {
    int tidx;               /* target stack index, or 0 to collect */
    int out;                /* collect: stack index of the list */
    const orm_dialect *d;
    lua_Integer affected;   /* writes: sum of affected_rows */
    int has_id;
    lua_Integer last_id;    /* writes: last last_insert_id seen */
} aux_sink;

/* A compile must not overwrite the SQL a running statement of this query
 * still reads (a listener calling back into the query). */
static void aux_idle(lua_State *L, query_ud *u)
{
    if (u->running > 0)
        orm_lua_argerror(L, "query is in use by a running statement");
}

/* Picks the output of the next compile: the shared scratch when free. */
static query_out *aux_out(lua_State *L, query_ud *u)
{
    query_scratch *sc = aux_scratch(L);
    aux_idle(L, u);
    u->out = sc->busy ? &u->own : &sc->out;
    return u->out;
}

static void aux_compile(lua_State *L, query_ud *u, const orm_dialect *d,
                        const orm_compile_opts *o)
{
    orm_error err;
    query_out *out = aux_out(L, u);
    if (orm_compile_select(&u->q, d, o, &out->sql, &out->binds, &err) !=
        ORM_OK)
        aux_raise(L, &err);
}

static void aux_compile_write(lua_State *L, query_ud *u, const orm_dialect *d)
{
    orm_error err;
    query_out *out = aux_out(L, u);
    if (orm_compile_write(&u->q, d, &out->sql, &out->binds, &err) != ORM_OK)
        aux_raise(L, &err);
}

static void aux_push_binds(lua_State *L, const orm_vlist *b)
{
    int i;
    lua_createtable(L, b->n, 0);
    for (i = 0; i < b->n; i++) {
        if (b->v[i].type == ORM_NULL)
            orm_lua_pushnull(L);
        else
            orm_lua_pushvalue(L, &b->v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* Runs u's compiled statement and pushes its result (returns 1), or
 * collects it (returns 0, pushes nothing). While it runs, the query (at
 * index 1) sits in a to-be-closed slot whose __close drops u->running,
 * whichever way orm_lua_run exits. */
static int aux_emit(lua_State *L, query_ud *u, aux_sink *s, orm_lua_mode mode,
                    int hyd)
{
    query_out *o = u->out;
    int g;
    if (s->tidx == 0) {
        int n = (int)lua_rawlen(L, s->out);
        lua_pushlstring(L, o->sql.p, o->sql.len);
        lua_rawseti(L, s->out, n + 1);
        aux_push_binds(L, &o->binds);
        lua_rawseti(L, s->out, n + 2);
        return 0;
    }
    g = lua_gettop(L) + 1;
    lua_pushvalue(L, 1);
    lua_toclose(L, g);
    u->running++;
    if (o != &u->own) {
        aux_scratch(L)->busy = 1;
        u->holds_scratch = 1;
    }
    orm_lua_run(L, s->tidx, o->sql.p, o->sql.len, o->binds.v, o->binds.n,
                mode, hyd);
    lua_closeslot(L, g);
    lua_remove(L, g);
    return 1;
}

/* Adds the { affected_rows, last_insert_id } on top to s and pops it. */
static void aux_absorb(lua_State *L, aux_sink *s)
{
    lua_getfield(L, -1, "affected_rows");
    s->affected += lua_tointeger(L, -1);
    lua_getfield(L, -2, "last_insert_id");
    if (!lua_isnil(L, -1)) {
        s->has_id = 1;
        s->last_id = lua_tointeger(L, -1);
    }
    lua_pop(L, 3);
}

static void aux_write_emit(lua_State *L, query_ud *u, aux_sink *s)
{
    aux_compile_write(L, u, s->d);
    if (aux_emit(L, u, s, ORM_LUA_EXEC, 0))
        aux_absorb(L, s);
}

static int aux_hyd(lua_State *L, int idx)
{
    return lua_istable(L, idx) ? idx : 0;
}

/* A numeric string on top (decimals from PostgreSQL / MySQL) becomes a
 * number. */
static void aux_numeric(lua_State *L)
{
    if (lua_type(L, -1) == LUA_TSTRING &&
        lua_stringtonumber(L, lua_tostring(L, -1)) != 0)
        lua_remove(L, -2);
}

/* {==== reads ====} */

typedef enum aux_opkind {
    OP_GET, OP_FIRST, OP_COUNT, OP_SUM, OP_AVG, OP_MIN, OP_MAX, OP_EXISTS,
    OP_PLUCK, OP_PAGINATE, OP_CHUNK, OP_INSERT, OP_INSERT_GET_ID, OP_UPDATE,
    OP_DELETE, OP_INCREMENT, OP_DECREMENT, OP_UPSERT, OP_CHUNK_BY_ID
} aux_opkind;

static const char *const op_names[] = {
    "get", "first", "count", "sum", "avg", "min", "max", "exists", "pluck",
    "paginate", "chunk", "insert", "insert_get_id", "update", "delete",
    "increment", "decrement", "upsert", "chunk_by_id", NULL
};

static int aux_get(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    aux_compile(L, u, s->d, NULL);
    return aux_emit(L, u, s, ORM_LUA_ROWS, aux_hyd(L, a));
}

static int aux_first(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    orm_compile_opts o;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = 1;
    o.offset = u->q.offset;
    aux_compile(L, u, s->d, &o);
    return aux_emit(L, u, s, ORM_LUA_FIRST, aux_hyd(L, a));
}

/* count / sum / avg / min / max / exists, column at a. */
static int aux_aggregate(lua_State *L, query_ud *u, aux_sink *s, int a,
                         orm_qagg agg)
{
    orm_compile_opts o;
    const char *fname = op_names[OP_COUNT + (agg - ORM_AGG_COUNT)];
    memset(&o, 0, sizeof o);
    o.agg = agg;
    if (agg != ORM_AGG_EXISTS && (agg != ORM_AGG_COUNT || !lua_isnoneornil(L, a)))
        o.agg_col = aux_str(L, a, fname, "column name", NULL);
    aux_compile(L, u, s->d, &o);
    if (!aux_emit(L, u, s, ORM_LUA_VALUE, 0))
        return 0;
    aux_numeric(L);
    if (agg == ORM_AGG_EXISTS)
        lua_pushboolean(L, lua_isnumber(L, -1) ? lua_tonumber(L, -1) != 0
                                                : lua_toboolean(L, -1));
    else if ((agg == ORM_AGG_COUNT || agg == ORM_AGG_SUM) && lua_isnil(L, -1))
        lua_pushinteger(L, 0);
    else
        return 1;
    lua_remove(L, -2);
    return 1;
}

static int aux_pluck(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    orm_compile_opts o;
    memset(&o, 0, sizeof o);
    o.only_col = aux_str(L, a, "pluck", "column name", NULL);
    aux_compile(L, u, s->d, &o);
    return aux_emit(L, u, s, ORM_LUA_COLUMN, 0);
}

static lua_Integer aux_field_int(lua_State *L, int t, const char *k,
                                 lua_Integer dflt)
{
    lua_Integer v;
    if (lua_isnoneornil(L, t))
        return dflt;
    lua_getfield(L, t, k);
    v = aux_int(L, -1, "paginate", k, 1, dflt);
    lua_pop(L, 1);
    return v;
}

/* paginate({ page =, per_page = }, hyd?) */
static int aux_paginate(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    orm_compile_opts o;
    lua_Integer page, per, total;
    if (!lua_isnoneornil(L, a) && !lua_istable(L, a))
        return orm_lua_argerror(L, "paginate: expected { page =, per_page = }");
    page = aux_field_int(L, a, "page", 1);
    per = aux_field_int(L, a, "per_page", 15);
    if (page - 1 > LUA_MAXINTEGER / per)
        return orm_lua_argerror(L, "paginate: page %lld of %lld rows starts "
                                   "past the largest offset",
                                (long long)page, (long long)per);
    memset(&o, 0, sizeof o);
    o.agg = ORM_AGG_COUNT;
    o.set_window = 1;
    o.limit = o.offset = -1;
    aux_compile(L, u, s->d, &o);
    if (aux_emit(L, u, s, ORM_LUA_VALUE, 0)) {
        aux_numeric(L);
        total = lua_tointeger(L, -1);
        lua_pop(L, 1);
    } else {
        total = 0;
    }
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = per;
    o.offset = (page - 1) * per;
    aux_compile(L, u, s->d, &o);
    if (!aux_emit(L, u, s, ORM_LUA_ROWS, aux_hyd(L, a + 1)))
        return 0;
    lua_createtable(L, 0, 5);
    lua_insert(L, -2);
    lua_setfield(L, -2, "items");
    lua_pushinteger(L, total);
    lua_setfield(L, -2, "total");
    lua_pushinteger(L, page);
    lua_setfield(L, -2, "page");
    lua_pushinteger(L, per);
    lua_setfield(L, -2, "per_page");
    lua_pushinteger(L, total > 0 ? total / per + (total % per != 0) : 1);
    lua_setfield(L, -2, "last_page");
    return 1;
}

/* Compiles chunk number `page` (from 1) of n rows, ordered by the query's
 * order or else by the first column. Returns the LIMIT used (0: past the
 * query's own limit). */
static lua_Integer aux_chunk_compile(lua_State *L, query_ud *u, aux_sink *s,
                                     lua_Integer n, lua_Integer page)
{
    orm_compile_opts o;
    lua_Integer skip, lim = n;
    if (page - 1 > LUA_MAXINTEGER / n)
        return 0;
    skip = (page - 1) * n;
    if (u->q.limit >= 0 && u->q.limit - skip < lim)
        lim = u->q.limit - skip > 0 ? u->q.limit - skip : 0;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = lim;
    o.offset = (u->q.offset > 0 ? u->q.offset : 0) + skip;
    o.default_order = 1;
    aux_compile(L, u, s->d, &o);
    return lim;
}

/* Paging state of chunk / chunk_by_id. */
typedef struct aux_pager {
    lua_Integer n;       /* rows per chunk */
    int fn;              /* stack index of the callback */
    int hyd;             /* hydration table index, or 0 */
    const char *key;     /* key column: pages by key (NULL: by OFFSET) */
    int last;            /* stack slot holding the last key seen (nil) */
    lua_Integer seen;    /* rows handed out so far */
} aux_pager;

/* 1 when chunk may page by `key`: the query is not ordered, or only by
 * the key ascending, and has no OFFSET. */
static int aux_keyset_ok(const query_ud *u, const char *key)
{
    const orm_qorder *ord = u->q.orders.first;
    const char *dot;
    if (u->q.offset > 0 || u->q.groups.n > 0 || u->q.distinct)
        return 0;
    if (u->q.orders.n == 0)
        return 1;
    if (u->q.orders.n != 1 || ord->desc || ord->col == NULL)
        return 0;
    dot = strrchr(ord->col, '.');
    return strcmp(dot ? dot + 1 : ord->col, key) == 0;
}

/* Compiles the next keyed page: rows after the last key seen. Returns
 * the LIMIT used (0: past the query's own limit). */
static lua_Integer aux_keyed_compile(lua_State *L, query_ud *u, aux_sink *s,
                                     aux_pager *p)
{
    orm_compile_opts o;
    orm_value after;
    lua_Integer lim = p->n;
    if (u->q.limit >= 0 && u->q.limit - p->seen < lim)
        lim = u->q.limit - p->seen > 0 ? u->q.limit - p->seen : 0;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = lim;
    o.offset = -1;
    o.key_col = p->key;
    if (!lua_isnil(L, p->last)) {
        aux_value(L, p->last, "chunk", &after);
        o.key_after = &after;
    }
    if (lim > 0)
        aux_compile(L, u, s->d, &o);
    return lim;
}

/* Keeps the key of the last row of the page on top in p->last. */
static void aux_keep_last_key(lua_State *L, aux_pager *p, lua_Integer got)
{
    const char *dot = strrchr(p->key, '.');
    lua_rawgeti(L, -1, got);
    if (p->hyd) {
        lua_getfield(L, p->hyd, "key");
        if (!lua_isnil(L, -1)) {
            lua_rawget(L, -2);
            lua_remove(L, -2);
        } else
            lua_pop(L, 1);
    }
    lua_getfield(L, -1, dot ? dot + 1 : p->key);
    if (lua_isnil(L, -1))
        orm_lua_argerror(L, "chunk: the rows do not include the key column "
                            "'%s' to page by", p->key);
    lua_replace(L, p->last);
    lua_pop(L, 1);
}

/* Runs the paging loop: fn(rows, page) per page; true, or false when fn
 * returned false. */
static int aux_page_loop(lua_State *L, query_ud *u, aux_sink *s, aux_pager *p)
{
    lua_Integer page, lim;
    for (page = 1;; page++) {
        lua_Integer got;
        lim = p->key ? aux_keyed_compile(L, u, s, p)
                     : aux_chunk_compile(L, u, s, p->n, page);
        if (lim <= 0)
            break;
        aux_emit(L, u, s, ORM_LUA_ROWS, p->hyd);
        got = (lua_Integer)lua_rawlen(L, -1);
        if (got == 0)
            break;
        p->seen += got;
        if (p->key)
            aux_keep_last_key(L, p, got);
        lua_pushvalue(L, p->fn);
        lua_insert(L, -2);
        lua_pushinteger(L, page);
        lua_call(L, 2, 1);
        if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
            lua_pushboolean(L, 0);
            return 1;
        }
        lua_pop(L, 1);
        if (got < lim)
            break;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* run: chunk(n, fn, hyd?, key?); collect: chunk(n, page?). Pages by key
 * (default "id") when the query allows it (aux_keyset_ok), else by
 * OFFSET. */
static int aux_chunk(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    aux_pager p;
    memset(&p, 0, sizeof p);
    p.n = aux_int(L, a, "chunk", "size", 1, 0);
    if (p.n == 0)
        return orm_lua_argerror(L, "chunk: size must be an integer >= 1");
    if (s->tidx == 0) {
        aux_chunk_compile(L, u, s, p.n, aux_int(L, a + 1, "chunk", "page", 1, 1));
        return aux_emit(L, u, s, ORM_LUA_ROWS, 0);
    }
    luaL_checktype(L, a + 1, LUA_TFUNCTION);
    p.fn = a + 1;
    p.hyd = aux_hyd(L, a + 2);
    p.key = lua_isnoneornil(L, a + 3) ? "id"
                                      : aux_str(L, a + 3, "chunk", "key", NULL);
    if (!aux_keyset_ok(u, p.key))
        p.key = NULL;
    lua_pushnil(L);
    p.last = lua_gettop(L);
    return aux_page_loop(L, u, s, &p);
}

/* chunk_by_id(n, fn, column?, hyd?): pages by the column (default "id"),
 * ascending, whatever the query's order: rows that fn updates out of the
 * query's filter never make it skip others. */
static int aux_chunk_by_id(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    aux_pager p;
    memset(&p, 0, sizeof p);
    p.n = aux_int(L, a, "chunk_by_id", "size", 1, 0);
    if (p.n == 0)
        return orm_lua_argerror(L, "chunk_by_id: size must be an integer >= 1");
    luaL_checktype(L, a + 1, LUA_TFUNCTION);
    p.fn = a + 1;
    p.key = lua_isnoneornil(L, a + 2)
                ? "id"
                : aux_str(L, a + 2, "chunk_by_id", "column name", NULL);
    p.hyd = aux_hyd(L, a + 3);
    if (u->q.offset > 0)
        return orm_lua_argerror(L, "chunk_by_id: the query has an offset; "
                                   "paging by key cannot honour it");
    if (s->tidx == 0)
        return orm_lua_argerror(L, "chunk_by_id: needs a target");
    lua_pushnil(L);
    p.last = lua_gettop(L);
    return aux_page_loop(L, u, s, &p);
}

/* {==== writes ====} */

/* State of an insert / upsert of many rows, sent in batches that share
 * one column set and stay under the dialect's parameter limit. */
typedef struct aux_rows {
    orm_qwrite_kind kind;
    const char *fname;
    int cols;       /* stack slot: list of the current columns (strings) */
    int tmpslot;    /* stack slot: userdata holding tmp, ckey, okey, perm */
    const void **ckey; /* ckey[c]: the string object of cols[c] (kept by
                          cols) */
    const void **okey; /* the keys in the order the last row listed them */
    int *perm;      /* perm[j]: index in cols of okey[j] */
    int nordered;   /* entries in okey; 0 when unknown */
    int ncols;      /* -1 before the first row */
    int per_stmt;   /* rows per statement */
    int pending;    /* rows in the payload */
    orm_value *tmp; /* the values of the row being read */
    int cidx;       /* 0, or the slot of an all-or-nothing group's
                       connection (orm_lua_atomic_new) */
    int copy;       /* 1: rows go through the dialect's bulk load */
    int copysql;    /* stack slot: the open load's COPY text, or nil */
    double t0;      /* clock when the open load started */
    int tidx;       /* the caller's target */
    int unique;     /* upsert: stack index of unique_by */
    int update;     /* upsert: stack index of update_columns (may be nil) */
} aux_rows;

/* A string or a list of strings at idx (nil allowed when opt): calls
 * add for each. */
static void aux_name_args(lua_State *L, query_ud *u, int idx,
                          int (*add)(orm_query *, const char *, size_t,
                                     orm_error *),
                          const char *fname, const char *what)
{
    orm_error err;
    size_t n;
    int i, len;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &n);
        if (add(&u->q, s, n, &err) != ORM_OK)
            aux_raise(L, &err);
        return;
    }
    len = aux_list_len(L, idx);
    if (len < 0)
        orm_lua_argerror(L, "%s: %s must be a column name or a list of them",
                         fname, what);
    for (i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        const char *s = aux_str(L, -1, fname, "column name", &n);
        if (add(&u->q, s, n, &err) != ORM_OK)
            aux_raise(L, &err);
        lua_pop(L, 1);
    }
}

/* 1 when the string at -1 is one of the unique_by names. */
static int aux_is_unique(lua_State *L, aux_rows *x)
{
    int i, len, hit = 0;
    if (lua_type(L, x->unique) == LUA_TSTRING)
        return lua_rawequal(L, -1, x->unique);
    len = (int)lua_rawlen(L, x->unique);
    for (i = 1; i <= len && !hit; i++) {
        lua_rawgeti(L, x->unique, i);
        hit = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
    }
    return hit;
}

static void aux_upsert_cols(lua_State *L, query_ud *u, aux_rows *x)
{
    orm_error err;
    int i;
    aux_name_args(L, u, x->unique, orm_query_write_unique, x->fname,
                  "unique_by");
    if (!lua_isnoneornil(L, x->update)) {
        aux_name_args(L, u, x->update, orm_query_write_update, x->fname,
                      "update_columns");
        return;
    }
    for (i = 1; i <= x->ncols; i++) {
        size_t n;
        const char *s;
        lua_rawgeti(L, x->cols, i);
        s = lua_tolstring(L, -1, &n);
        if (!aux_is_unique(L, x) &&
            orm_query_write_update(&u->q, s, n, &err) != ORM_OK)
            aux_raise(L, &err);
        lua_pop(L, 1);
    }
}

/* Starts a payload for the sorted columns of the row at r. */
static void aux_rows_begin(lua_State *L, query_ud *u, aux_rows *x, int r,
                           int max_params)
{
    orm_error err;
    int i, n;
    aux_key *k = aux_keys(L, r, 0, &n, x->fname);
    x->tmp = lua_newuserdatauv(L, (sizeof(orm_value) + 2 * sizeof(char *) +
                                   sizeof(int)) * (size_t)(n ? n : 1), 0);
    x->ckey = (const void **)(x->tmp + (n ? n : 1));
    x->okey = x->ckey + (n ? n : 1);
    x->perm = (int *)(x->okey + (n ? n : 1));
    lua_replace(L, x->tmpslot);
    x->nordered = 0;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        lua_pushlstring(L, k[i].s, k[i].n);
        x->ckey[i] = lua_topointer(L, -1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, x->cols);
    x->ncols = n;
    orm_query_write_begin(&u->q, x->kind);
    for (i = 0; i < n; i++)
        if (orm_query_write_column(&u->q, k[i].s, k[i].n, &err) != ORM_OK)
            aux_raise(L, &err);
    lua_pop(L, 1); /* the keys */
    if (x->kind == ORM_QW_UPSERT)
        aux_upsert_cols(L, u, x);
    x->per_stmt = n > 0 && max_params / n > 0 ? max_params / n : 1;
    x->pending = 0;
}

/* 1 when the row at r has exactly the current columns; fills x->tmp
 * (strings borrowed from the row). */
static int aux_row_fits(lua_State *L, aux_rows *x, int r)
{
    int i, count = 0;
    if (x->ncols < 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, r)) {
        lua_pop(L, 1);
        count++;
    }
    if (count != x->ncols)
        return 0;
    for (i = 0; i < x->ncols; i++) {
        lua_rawgeti(L, x->cols, i + 1);
        if (lua_rawget(L, r) == LUA_TNIL) {
            lua_pop(L, 1);
            return 0;
        }
        aux_value(L, -1, x->fname, &x->tmp[i]);
        lua_pop(L, 1);
    }
    return 1;
}

/* Notes the order in which the row at r (which fits) lists its keys, so
 * the next rows built alike are read in one pass (aux_row_fast). Keys are
 * matched by their string object: a short string is one object in a Lua
 * state; rows keyed by long strings (over 40 bytes) keep the general
 * path. */
static void aux_row_learn(lua_State *L, aux_rows *x, int r)
{
    int j = 0;
    x->nordered = 0;
    lua_pushnil(L);
    while (lua_next(L, r)) { /* key value */
        const void *k;
        int c;
        lua_pop(L, 1);
        k = lua_topointer(L, -1);
        for (c = 0; c < x->ncols && x->ckey[c] != k; c++)
            ;
        if (c == x->ncols || j == x->ncols) {
            lua_pop(L, 1);
            return;
        }
        x->okey[j] = k;
        x->perm[j++] = c;
    }
    x->nordered = j;
}

/* 1 when the row at r lists exactly the learned keys in the learned order
 * and every value converts; fills x->tmp (strings borrowed from the row).
 * 0 leaves the row to aux_row_fits, which also reports what is wrong. */
static int aux_row_fast(lua_State *L, aux_rows *x, int r)
{
    orm_error err;
    int j = 0;
    if (x->nordered == 0 || x->nordered != x->ncols)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, r)) { /* key value */
        if (j == x->ncols || lua_topointer(L, -2) != x->okey[j] ||
            orm_lua_tovalue(L, -1, &x->tmp[x->perm[j]], &err) != ORM_OK) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1); /* the row keeps strings alive */
        j++;
    }
    return j == x->ncols;
}

/* Starts a bulk load of the payload's columns on the group's connection. */
static void aux_copy_begin(lua_State *L, query_ud *u, aux_sink *s,
                           aux_rows *x)
{
    orm_buf copy, probe;
    orm_error err;
    int rc;
    orm_buf_init(&copy);
    orm_buf_init(&probe);
    rc = orm_compile_copy(&u->q, s->d, &copy, &probe, &err);
    if (rc == ORM_OK) {
        lua_pushlstring(L, copy.p, copy.len);
        lua_replace(L, x->copysql);
        lua_pushlstring(L, probe.p, probe.len);
    }
    orm_buf_free(&copy);
    orm_buf_free(&probe);
    if (rc != ORM_OK)
        aux_raise(L, &err);
    x->t0 = orm_lua_copy_begin(L, s->tidx, lua_tostring(L, -1),
                               lua_tostring(L, x->copysql), x->ncols);
    lua_pop(L, 1);
}

/* Finishes the open bulk load, if any. */
static void aux_copy_end(lua_State *L, aux_sink *s, aux_rows *x)
{
    if (!x->copy || lua_isnil(L, x->copysql))
        return;
    s->affected += (lua_Integer)orm_lua_copy_end(L, s->tidx,
                                                 lua_tostring(L, x->copysql),
                                                 x->t0);
    lua_pushnil(L);
    lua_replace(L, x->copysql);
}

/* Sends the payload through the open bulk load (opening it first). */
static void aux_copy_send(lua_State *L, query_ud *u, aux_sink *s, aux_rows *x)
{
    if (lua_isnil(L, x->copysql))
        aux_copy_begin(L, u, s, x);
    orm_lua_copy_rows(L, s->tidx, lua_tostring(L, x->copysql), x->t0,
                      u->q.write.vals, u->q.write.nrows);
}

/* Sends the payload. When rows remain after it (more), the statements of
 * the list run as one group, all or nothing: in a transaction, or a
 * savepoint when the target is already one. */
static void aux_rows_flush(lua_State *L, query_ud *u, aux_sink *s,
                           aux_rows *x, int more)
{
    if (x->pending == 0)
        return;
    if ((more || x->copy) && x->cidx != 0 && s->tidx != x->cidx) {
        orm_lua_atomic_begin(L, x->cidx, x->tidx);
        s->tidx = x->cidx;
    }
    if (x->copy && x->ncols > 0)
        aux_copy_send(L, u, s, x);
    else
        aux_write_emit(L, u, s);
    orm_query_write_rows_reset(&u->q);
    x->pending = 0;
}

/* Adds the row at r to the payload, flushing first when the columns
 * change or the batch is full. */
static void aux_rows_add(lua_State *L, query_ud *u, aux_sink *s, aux_rows *x,
                         int r, int i)
{
    orm_error err;
    if (!lua_istable(L, r))
        orm_lua_argerror(L, "%s: row %d must be a table, got %s", x->fname, i,
                         luaL_typename(L, r));
    /* A full batch goes out before this row is read: sending it runs the
     * listeners, which may change the rows still to come. */
    if (x->pending >= x->per_stmt)
        aux_rows_flush(L, u, s, x, 1);
    if (aux_row_fast(L, x, r)) {
        /* read in the learned key order */
    } else if (!aux_row_fits(L, x, r)) {
        aux_rows_flush(L, u, s, x, 1);
        aux_copy_end(L, s, x);
        aux_rows_begin(L, u, x, r, s->d->insert_batch < s->d->max_params
                                       ? s->d->insert_batch
                                       : s->d->max_params);
        if (!aux_row_fits(L, x, r))
            orm_lua_argerror(L, "%s: row %d has a non-string key", x->fname, i);
        aux_row_learn(L, x, r);
    } else
        aux_row_learn(L, x, r);
    /* The row's strings are borrowed: the list of rows (on the stack)
     * keeps them, and no Lua code runs until the batch is sent (a flush
     * above re-reads this row after the listeners ran). */
    if (orm_query_write_values_ref(&u->q, x->tmp, x->ncols, &err) != ORM_OK)
        aux_raise(L, &err);
    if (orm_query_write_end_row(&u->q, &err) != ORM_OK)
        aux_raise(L, &err);
    x->pending++;
}

/* 1 when a list of n rows (at a) takes more than one INSERT, judged by
 * its first row's columns: then a bulk load is worth its round trips. */
static int aux_copy_pays(lua_State *L, const orm_dialect *d, int a, int n)
{
    int cols = 0;
    if (lua_rawgeti(L, a, 1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            cols++;
        }
    }
    lua_pop(L, 1);
    return cols > 0 && (lua_Integer)n * cols > d->insert_batch;
}

static int aux_has_keys(lua_State *L, int t)
{
    lua_pushnil(L);
    if (!lua_next(L, t))
        return 0;
    lua_pop(L, 2);
    return 1;
}

/* Sends one row or a list of rows (the table at a; a table with a
 * non-empty array part is a list). */
static void aux_rows_send(lua_State *L, query_ud *u, aux_sink *s,
                          aux_rows *x, int a)
{
    int i, n;
    if (!lua_istable(L, a))
        orm_lua_argerror(L, "%s: expected a row or a list of rows, got %s",
                         x->fname, luaL_typename(L, a));
    lua_pushnil(L);
    x->cols = lua_gettop(L);
    lua_pushnil(L);
    x->tmpslot = lua_gettop(L);
    x->nordered = 0;
    x->ncols = -1;
    x->pending = 0;
    lua_pushnil(L);
    x->copysql = lua_gettop(L);
    n = (int)lua_rawlen(L, a);
    x->tidx = s->tidx;
    x->cidx = n > 1 && s->tidx != 0 ? orm_lua_atomic_new(L) : 0;
    x->copy = x->cidx != 0 && x->kind == ORM_QW_INSERT &&
              s->d->copy_from_stdin && aux_copy_pays(L, s->d, a, n);
    if (n == 0 && aux_has_keys(L, a)) {
        aux_rows_add(L, u, s, x, a, 1);
    }
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, a, i);
        aux_rows_add(L, u, s, x, lua_gettop(L), i);
        lua_pop(L, 1);
    }
    aux_rows_flush(L, u, s, x, 0);
    aux_copy_end(L, s, x);
    if (x->cidx != 0)
        orm_lua_atomic_commit(L, x->cidx);
}

static int aux_insert(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    aux_rows x;
    memset(&x, 0, sizeof x);
    x.kind = ORM_QW_INSERT;
    x.fname = "insert";
    aux_rows_send(L, u, s, &x, a);
    if (s->tidx == 0)
        return 0;
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, s->affected);
    lua_setfield(L, -2, "affected_rows");
    if (s->has_id) {
        lua_pushinteger(L, s->last_id);
        lua_setfield(L, -2, "last_insert_id");
    }
    return 1;
}

/* upsert(rows, unique_by, update_columns?) */
static int aux_upsert(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    aux_rows x;
    memset(&x, 0, sizeof x);
    x.kind = ORM_QW_UPSERT;
    x.fname = "upsert";
    x.unique = a + 1;
    x.update = a + 2;
    if (lua_type(L, x.unique) != LUA_TSTRING && aux_list_len(L, x.unique) < 1)
        return orm_lua_argerror(L, "upsert: unique_by must be a column name "
                                   "or a non-empty list of them");
    if (!lua_isnoneornil(L, x.update) && aux_list_len(L, x.update) < 0)
        return orm_lua_argerror(L, "upsert: update_columns must be a list");
    aux_rows_send(L, u, s, &x, a);
    if (s->tidx == 0)
        return 0;
    lua_pushinteger(L, s->affected);
    return 1;
}

/* Appends `col = value` for every key of the table at t, sorted. */
static void aux_sets(lua_State *L, query_ud *u, int t, const char *fname)
{
    orm_error err;
    int i, n;
    aux_key *k = aux_keys(L, t, 0, &n, fname);
    for (i = 0; i < n; i++) {
        orm_value v;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, t);
        aux_value(L, -1, fname, &v);
        if (orm_query_write_set(&u->q, k[i].s, k[i].n, ORM_QS_VALUE, &v,
                                &err) != ORM_OK)
            aux_raise(L, &err);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* insert_get_id(row, pk?) */
static int aux_insert_get_id(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    orm_error err;
    size_t pn = 2;
    const char *pk = "id";
    int i, n, returning = s->d->has_returning;
    aux_key *k;
    luaL_checktype(L, a, LUA_TTABLE);
    if (!lua_isnoneornil(L, a + 1))
        pk = aux_str(L, a + 1, "insert_get_id", "key name", &pn);
    orm_query_write_begin(&u->q, ORM_QW_INSERT);
    k = aux_keys(L, a, 0, &n, "insert_get_id");
    for (i = 0; i < n && orm_query_write_column(&u->q, k[i].s, k[i].n, &err)
                             == ORM_OK; i++)
        ;
    if (i < n)
        return aux_raise(L, &err);
    for (i = 0; i < n; i++) {
        orm_value v;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, a);
        aux_value(L, -1, "insert_get_id", &v);
        if (orm_query_write_value(&u->q, &v, &err) != ORM_OK)
            return aux_raise(L, &err);
        lua_pop(L, 1);
    }
    if (orm_query_write_end_row(&u->q, &err) != ORM_OK ||
        orm_query_write_returning(&u->q, pk, pn, &err) != ORM_OK)
        return aux_raise(L, &err);
    aux_compile_write(L, u, s->d);
    if (!aux_emit(L, u, s, returning ? ORM_LUA_VALUE : ORM_LUA_EXEC, 0))
        return 0;
    if (!returning)
        lua_getfield(L, -1, "last_insert_id");
    return 1;
}

static int aux_affected(lua_State *L, aux_sink *s)
{
    if (s->tidx == 0)
        return 0;
    lua_pushinteger(L, s->affected);
    return 1;
}

/* update(values) */
static int aux_update(lua_State *L, query_ud *u, aux_sink *s, int a)
{
    if (!lua_istable(L, a))
        return orm_lua_argerror(L, "update: expected a table of column = "
                                   "value, got %s", luaL_typename(L, a));
    orm_query_write_begin(&u->q, ORM_QW_UPDATE);
    aux_sets(L, u, a, "update");
    aux_write_emit(L, u, s);
    return aux_affected(L, s);
}

static int aux_delete(lua_State *L, query_ud *u, aux_sink *s)
{
    orm_query_write_begin(&u->q, ORM_QW_DELETE);
    aux_write_emit(L, u, s);
    return aux_affected(L, s);
}

/* increment(col, by?, extra?) / decrement(...) */
static int aux_increment(lua_State *L, query_ud *u, aux_sink *s, int a,
                         orm_qset_kind kind)
{
    const char *fname = kind == ORM_QS_ADD ? "increment" : "decrement";
    orm_error err;
    orm_value by = orm_value_int(1);
    size_t n;
    const char *col = aux_str(L, a, fname, "column name", &n);
    if (!lua_isnoneornil(L, a + 1)) {
        if (lua_type(L, a + 1) != LUA_TNUMBER)
            return orm_lua_argerror(L, "%s: amount must be a number, got %s",
                                    fname, luaL_typename(L, a + 1));
        aux_value(L, a + 1, fname, &by);
    }
    if (!lua_isnoneornil(L, a + 2) && !lua_istable(L, a + 2))
        return orm_lua_argerror(L, "%s: extra values must be a table", fname);
    orm_query_write_begin(&u->q, ORM_QW_UPDATE);
    if (orm_query_write_set(&u->q, col, n, kind, &by, &err) != ORM_OK)
        return aux_raise(L, &err);
    if (lua_istable(L, a + 2))
        aux_sets(L, u, a + 2, fname);
    aux_write_emit(L, u, s);
    return aux_affected(L, s);
}

/* {==== dispatch ====} */

/* Runs (or collects) terminal operation k; its arguments start at a. */
static int aux_dispatch(lua_State *L, query_ud *u, aux_sink *s, aux_opkind k,
                        int a)
{
    lua_settop(L, a + 3); /* missing optional arguments become nil slots */
    switch (k) {
    case OP_GET: return aux_get(L, u, s, a);
    case OP_FIRST: return aux_first(L, u, s, a);
    case OP_COUNT: return aux_aggregate(L, u, s, a, ORM_AGG_COUNT);
    case OP_SUM: return aux_aggregate(L, u, s, a, ORM_AGG_SUM);
    case OP_AVG: return aux_aggregate(L, u, s, a, ORM_AGG_AVG);
    case OP_MIN: return aux_aggregate(L, u, s, a, ORM_AGG_MIN);
    case OP_MAX: return aux_aggregate(L, u, s, a, ORM_AGG_MAX);
    case OP_EXISTS: return aux_aggregate(L, u, s, a, ORM_AGG_EXISTS);
    case OP_PLUCK: return aux_pluck(L, u, s, a);
    case OP_PAGINATE: return aux_paginate(L, u, s, a);
    case OP_CHUNK: return aux_chunk(L, u, s, a);
    case OP_INSERT: return aux_insert(L, u, s, a);
    case OP_INSERT_GET_ID: return aux_insert_get_id(L, u, s, a);
    case OP_UPDATE: return aux_update(L, u, s, a);
    case OP_DELETE: return aux_delete(L, u, s);
    case OP_INCREMENT: return aux_increment(L, u, s, a, ORM_QS_ADD);
    case OP_DECREMENT: return aux_increment(L, u, s, a, ORM_QS_SUB);
    case OP_UPSERT: return aux_upsert(L, u, s, a);
    case OP_CHUNK_BY_ID: return aux_chunk_by_id(L, u, s, a);
    }
    return 0;
}

/* q:<k>(target, ...) */
static int aux_terminal(lua_State *L, aux_opkind k)
{
    query_ud *u = aux_check(L, 1);
    aux_sink s;
    memset(&s, 0, sizeof s);
    s.tidx = 2;
    s.d = orm_lua_target_dialect(L, 2);
    return aux_dispatch(L, u, &s, k, 3);
}

static int query_get(lua_State *L) { return aux_terminal(L, OP_GET); }
static int query_first(lua_State *L) { return aux_terminal(L, OP_FIRST); }
static int query_count(lua_State *L) { return aux_terminal(L, OP_COUNT); }
static int query_sum(lua_State *L) { return aux_terminal(L, OP_SUM); }
static int query_avg(lua_State *L) { return aux_terminal(L, OP_AVG); }
static int query_min(lua_State *L) { return aux_terminal(L, OP_MIN); }
static int query_max(lua_State *L) { return aux_terminal(L, OP_MAX); }
static int query_exists(lua_State *L) { return aux_terminal(L, OP_EXISTS); }
static int query_pluck(lua_State *L) { return aux_terminal(L, OP_PLUCK); }
static int query_paginate(lua_State *L) { return aux_terminal(L, OP_PAGINATE); }
static int query_chunk(lua_State *L) { return aux_terminal(L, OP_CHUNK); }
static int query_chunk_by_id(lua_State *L)
{
    return aux_terminal(L, OP_CHUNK_BY_ID);
}
static int query_insert(lua_State *L) { return aux_terminal(L, OP_INSERT); }
static int query_update(lua_State *L) { return aux_terminal(L, OP_UPDATE); }
static int query_delete(lua_State *L) { return aux_terminal(L, OP_DELETE); }
static int query_upsert(lua_State *L) { return aux_terminal(L, OP_UPSERT); }

static int query_insert_get_id(lua_State *L)
{
    return aux_terminal(L, OP_INSERT_GET_ID);
}

static int query_increment(lua_State *L)
{
    return aux_terminal(L, OP_INCREMENT);
}

static int query_decrement(lua_State *L)
{
    return aux_terminal(L, OP_DECREMENT);
}

/* to_sql(dialect?) -> sql, bindings */
static int query_to_sql(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    aux_compile(L, u, aux_dialect(L, 2), NULL);
    lua_pushlstring(L, u->out->sql.p, u->out->sql.len);
    aux_push_binds(L, &u->out->binds);
    return 2;
}

/* to_sql_for(kind, dialect, ...) -> sql, bindings[, sql, bindings ...] */
static int query_to_sql_for(lua_State *L)
{
    query_ud *u = aux_check(L, 1);
    aux_sink s;
    size_t n;
    const char *kind = aux_str(L, 2, "to_sql_for", "kind", &n);
    int k, i, len;
    for (k = 0; op_names[k] && strcmp(op_names[k], kind) != 0; k++)
        ;
    if (!op_names[k])
        return orm_lua_argerror(L, "to_sql_for: unknown kind '%s'", kind);
    memset(&s, 0, sizeof s);
    s.d = aux_dialect(L, 3);
    lua_newtable(L);
    lua_replace(L, 2); /* the kind is no longer needed */
    s.out = 2;
    aux_dispatch(L, u, &s, (aux_opkind)k, 4);
    len = (int)lua_rawlen(L, s.out);
    luaL_checkstack(L, len, "too many statements");
    for (i = 1; i <= len; i++)
        lua_rawgeti(L, s.out, i);
    return len;
}

/* {==== registration ====} */

static const luaL_Reg query_methods[] = {
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
    {"clone", query_clone},
    {"table_name", query_table_name},
    {"get", query_get},
    {"first", query_first},
    {"count", query_count},
    {"sum", query_sum},
    {"avg", query_avg},
    {"min", query_min},
    {"max", query_max},
    {"exists", query_exists},
    {"pluck", query_pluck},
    {"paginate", query_paginate},
    {"chunk", query_chunk},
    {"chunk_by_id", query_chunk_by_id},
    {"insert", query_insert},
    {"insert_get_id", query_insert_get_id},
    {"update", query_update},
    {"delete", query_delete},
    {"increment", query_increment},
    {"decrement", query_decrement},
    {"upsert", query_upsert},
    {"to_sql", query_to_sql},
    {"to_sql_for", query_to_sql_for},
    {NULL, NULL},
};

static const luaL_Reg query_meta[] = {
    {"__gc", query_gc},
    {"__close", query_close},
    {"__tostring", query_tostring},
    {NULL, NULL},
};

/* Pushes a new shared scratch. */
static void aux_new_scratch(lua_State *L)
{
    query_scratch *sc = lua_newuserdatauv(L, sizeof *sc, 0);
    orm_buf_init(&sc->out.sql);
    orm_vlist_init(&sc->out.binds);
    sc->busy = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
}

void orm_lua_open_query(lua_State *L)
{
    aux_new_scratch(L);
    luaL_newmetatable(L, ORM_LUA_QUERY); /* upvalues: scratch, metatable */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, query_meta, 2);
    luaL_newlibtable(L, query_methods);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, query_methods, 2);
    lua_setfield(L, -2, "__index");
    lua_pushcclosure(L, query_new, 2);
    lua_setfield(L, -2, "query");
}
