/*
 * lua_run.c: orm_lua_run, the one path every statement takes: check out,
 * bind, step, build Lua tables (column keys made once per result), check
 * in, record statistics, notify listeners, raise orm.Error; and the
 * targets' run / _find methods.
 */
#include <string.h>

#include "lua_ormed.h"
#include "orm_pool.h"
#include "orm_sql.h"

typedef orm_lua_runctx run_ctx;

/* Pushes the key and the metatable of the hydration table at idx;
 * raises invalid_argument (naming fname) for a table that is not one. */
static void run_hyd_push(lua_State *L, int idx, const char *fname)
{
    int key = lua_rawgeti(L, idx, 1);
    if (lua_rawgeti(L, idx, 2) != LUA_TTABLE || key == LUA_TNUMBER)
        orm_lua_argerror(L, "%s: the table given is not a hydration table "
                         "{ key or nil, metatable } (to choose columns, use "
                         "select)", fname);
}

/* Wraps the row on top of the stack: hyd is the stack index of the pair
 * (key, metatable) read once per result; a nil key means the row itself
 * gets the metatable, otherwise setmetatable({ [key] = row }, mt). */
static void run_hydrate(lua_State *L, int hyd)
{
    if (!lua_isnil(L, hyd)) {
        lua_createtable(L, 0, 1); /* row inst */
        lua_pushvalue(L, hyd);    /* row inst key */
        lua_pushvalue(L, -3);     /* row inst key row */
        lua_rawset(L, -3);        /* row inst */
        lua_remove(L, -2);        /* inst */
    }
    lua_pushvalue(L, hyd + 1);
    lua_setmetatable(L, -2);
}

/* Builds one row table from the current row; keys are at stack index
 * keys+i; hyd as for run_hydrate (0 = plain rows). */
static void run_row(lua_State *L, run_ctx *x, int keys, int ncols, int hyd)
{
    const orm_driver *d = orm_conn_driver(x->conn);
    int i;
    lua_createtable(L, 0, ncols);
    for (i = 0; i < ncols; i++) {
        orm_value v;
        d->column(x->stmt, i, &v);
        if (v.type == ORM_NULL)
            continue;
        lua_pushvalue(L, keys + i);
        orm_lua_pushvalue(L, &v);
        lua_rawset(L, -3);
    }
    if (hyd)
        run_hydrate(L, hyd);
}

static void run_first_column(lua_State *L, run_ctx *x)
{
    orm_value v;
    orm_conn_driver(x->conn)->column(x->stmt, 0, &v);
    if (v.type == ORM_NULL && x->mode == ORM_LUA_COLUMN)
        orm_lua_pushnull(L);
    else
        orm_lua_pushvalue(L, &v);
}

/* Pushes the column names of the result (after the first step). Returns
 * the stack index of the first. */
static int run_keys(lua_State *L, run_ctx *x, int ncols)
{
    const orm_driver *d = orm_conn_driver(x->conn);
    int i, base = lua_gettop(L) + 1;
    luaL_checkstack(L, ncols + 8, "too many result columns");
    for (i = 0; i < ncols; i++)
        lua_pushstring(L, d->colname(x->stmt, i));
    return base;
}

/* Protected: steps the statement and leaves the result on the stack.
 * Arguments: light userdata ctx, hydration table or nil. */
int orm_lua_run_collect(lua_State *L)
{
    run_ctx *x = lua_touserdata(L, 1);
    int hyd = 0;
    int ncols, keys = 0, list;
    if (lua_istable(L, 2)) { /* key and metatable, read once */
        run_hyd_push(L, 2, "run");
        hyd = lua_gettop(L) - 1;
    }
    lua_Integer n = 0;
    x->rc = orm_conn_step(x->conn, x->stmt, &x->err);
    if (x->rc == ORM_STEP_ERROR)
        return 0;
    if (x->mode == ORM_LUA_EXEC) {
        const orm_driver *d = orm_conn_driver(x->conn);
        while (x->rc == ORM_STEP_ROW)
            x->rc = orm_conn_step(x->conn, x->stmt, &x->err);
        if (x->rc == ORM_STEP_ERROR)
            return 0;
        lua_createtable(L, 0, 2);
        x->rows = d->changes(x->stmt);
        lua_pushinteger(L, (lua_Integer)x->rows);
        lua_setfield(L, -2, "affected_rows");
        if (d->last_id(x->stmt) != 0) {
            lua_pushinteger(L, (lua_Integer)d->last_id(x->stmt));
            lua_setfield(L, -2, "last_insert_id");
        }
        return 1;
    }
    if (x->mode == ORM_LUA_FIRST || x->mode == ORM_LUA_VALUE) {
        if (x->rc != ORM_STEP_ROW) {
            lua_pushnil(L);
            return 1;
        }
        x->rows = 1;
        if (x->mode == ORM_LUA_VALUE) {
            run_first_column(L, x);
            return 1;
        }
        ncols = orm_conn_driver(x->conn)->ncols(x->stmt);
        keys = run_keys(L, x, ncols);
        run_row(L, x, keys, ncols, hyd);
        return 1;
    }
    lua_newtable(L);
    list = lua_gettop(L);
    if (x->rc != ORM_STEP_ROW)
        return 1;
    ncols = orm_conn_driver(x->conn)->ncols(x->stmt);
    if (x->mode == ORM_LUA_ROWS)
        keys = run_keys(L, x, ncols);
    while (x->rc == ORM_STEP_ROW) {
        if (x->mode == ORM_LUA_ROWS)
            run_row(L, x, keys, ncols, hyd);
        else
            run_first_column(L, x);
        lua_rawseti(L, list, ++n);
        x->rc = orm_conn_step(x->conn, x->stmt, &x->err);
    }
    x->rows = n;
    lua_settop(L, list);
    return 1;
}

/* Pushes a list of the bound values, for listeners. */
static void run_pushbinds(lua_State *L, const orm_value *binds, int n)
{
    int i;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        if (binds[i].type == ORM_NULL)
            orm_lua_pushnull(L);
        else
            orm_lua_pushvalue(L, &binds[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

void orm_lua_notify(lua_State *L, int tidx, const char *sql, size_t len,
                    const orm_value *binds, int n, double ms, int64_t rows,
                    const orm_error *err)
{
    int i, nl, listeners;
    orm_lua_target_info(L, tidx);
    lua_getfield(L, -1, "listeners");
    nl = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    if (nl == 0) {
        lua_pop(L, 2);
        return;
    }
    listeners = lua_gettop(L);
    lua_createtable(L, 0, 6);
    lua_getfield(L, listeners - 1, "name");
    lua_setfield(L, -2, "connection");
    lua_getfield(L, listeners - 1, "node"); /* "primary", "replica1", ... */
    lua_setfield(L, -2, "node");
    lua_pushlstring(L, sql, len);
    lua_setfield(L, -2, "sql");
    run_pushbinds(L, binds, n);
    lua_setfield(L, -2, "bindings");
    lua_pushnumber(L, ms);
    lua_setfield(L, -2, "duration_ms");
    lua_pushinteger(L, (lua_Integer)rows);
    lua_setfield(L, -2, "rows");
    if (err->kind != ORM_OK) {
        lua_pushstring(L, err->message);
        lua_setfield(L, -2, "error");
    }
    for (i = 1; i <= nl; i++) {
        lua_rawgeti(L, listeners, i);
        lua_pushvalue(L, -2);
        lua_call(L, 1, 0);
    }
    lua_pop(L, 3);
}

int orm_lua_failover(lua_State *L, int tidx, const orm_error *err)
{
    if (err->kind != ORM_E_CONNECTION_FAILED && err->kind != ORM_E_CONNECTION_LOST)
        return 0;
    orm_lua_target_info(L, tidx);
    lua_getfield(L, -1, "failover");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_pushstring(L, orm_error_kind_name(err->kind));
    lua_pushstring(L, err->message);
    lua_call(L, 2, 1);
    if (luaL_testudata(L, -1, ORM_LUA_POOL) == NULL) {
        lua_pop(L, 2);
        return 0;
    }
    lua_replace(L, tidx);
    lua_pop(L, 1);
    return 1;
}

int orm_lua_run_finish(lua_State *L, int tidx, orm_pool *pool, int acquired,
                       orm_lua_runctx *x, const char *sql, size_t len,
                       const orm_value *binds, int n, double t0)
{
    int ok = x->rc >= 0;
    double ms, now;
    if (ok && orm_conn_check_tx(x->conn, &x->err) != ORM_OK) {
        lua_pop(L, 1); /* the result */
        x->rc = -1;
        ok = 0;
    } else if (!ok && x->conn != NULL)
        orm_conn_sync_tx(x->conn);
    now = orm_clock();
    ms = (now - t0) * 1000.0;
    orm_pool_finish(pool, acquired ? x->conn : NULL, now, ms, !ok);
    if (x->rc == -2)
        return lua_error(L);
    if (!ok)
        lua_pushnil(L);
    orm_lua_notify(L, tidx, sql, len, binds, n, ms, x->rows, &x->err);
    return ok;
}

int orm_lua_run(lua_State *L, int tidx, const char *sql, size_t len,
                const orm_value *binds, int n, orm_lua_mode mode, int hyd)
{
    run_ctx x;
    orm_pool *pool;
    double t0;
    int acquired, top;
    tidx = lua_absindex(L, tidx);
    hyd = hyd ? lua_absindex(L, hyd) : 0;
    top = lua_gettop(L);
again:
    x.stmt = NULL;
    x.mode = mode;
    x.rc = 0;
    x.rows = 0;
    orm_error_clear(&x.err);
    pool = orm_lua_target_pool(L, tidx, &x.conn);
    acquired = x.conn == NULL;
    if (acquired && orm_pool_acquire(pool, &x.conn, &x.err) != ORM_OK) {
        if (orm_lua_failover(L, tidx, &x.err))
            goto again;
        return orm_lua_raise(L, &x.err, orm_lua_target_name(L, tidx), NULL);
    }
    t0 = orm_clock();
    if (orm_conn_start(x.conn, sql, len, binds, n, &x.stmt, &x.err) == ORM_OK) {
        lua_pushcfunction(L, orm_lua_run_collect);
        lua_pushlightuserdata(L, &x);
        if (hyd)
            lua_pushvalue(L, hyd);
        else
            lua_pushnil(L);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK)
            x.rc = -2; /* a Lua error (memory) is on the stack */
        orm_conn_finish(x.conn, x.stmt);
    } else
        x.rc = -1;
    if (orm_lua_run_finish(L, tidx, pool, acquired, &x, sql, len, binds, n, t0))
        return 1;
    if (acquired && orm_lua_failover(L, tidx, &x.err)) {
        lua_settop(L, top);
        goto again;
    }
    lua_pushlstring(L, sql, len); /* sql may not be NUL-terminated */
    return orm_lua_raise(L, &x.err, orm_lua_target_name(L, tidx), lua_tostring(L, -1));
}

#define RUN_SMALL_BINDS 8

/* Reads the bindings list at idx (nil = none) into a value array: `small`
 * (RUN_SMALL_BINDS values, the caller's) when it fits, else a userdata on
 * the Lua stack, so nothing leaks if a later call raises. Pushes one value
 * either way (nil or the userdata). */
static orm_value *run_binds(lua_State *L, int idx, orm_value *small, int *n)
{
    orm_value *v;
    orm_error err;
    int i, len;
    *n = 0;
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return NULL;
    }
    if (!lua_istable(L, idx))
        orm_lua_argerror(L, "bindings must be a list, got %s",
                         luaL_typename(L, idx));
    len = (int)lua_rawlen(L, idx);
    if (len <= RUN_SMALL_BINDS) {
        v = small;
        lua_pushnil(L);
    } else
        v = lua_newuserdatauv(L, (size_t)len * sizeof *v, 0);
    for (i = 0; i < len; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (orm_lua_tovalue(L, -1, &v[i], &err) != ORM_OK) {
            lua_pop(L, 1);
            orm_lua_argerror(L, "binding #%d: %s", i + 1, err.message);
        }
        lua_pop(L, 1); /* the list keeps strings alive */
    }
    *n = len;
    return v;
}

static const char *const run_modes[] = {"rows", "first", "value", "column",
                                        "exec", NULL};

/* 1 when sql holds `??` (a literal `?` in portable raw SQL). */
static int run_has_qq(const char *sql, size_t len)
{
    const char *p = sql, *end = sql + len;
    while ((p = memchr(p, '?', (size_t)(end - p))) != NULL) {
        if (++p < end && *p == '?')
            return 1;
    }
    return 0;
}

/* Pushes sql rewritten for the target's placeholder style (raw SQL is
 * written with `?` everywhere) and returns it. */
static const char *run_portable_sql(lua_State *L, const orm_dialect *d,
                                    const char *sql, size_t *len)
{
    orm_buf *b;
    if (memchr(sql, ';', *len) != NULL && orm_sql_more_statements(sql, *len, d))
        orm_lua_argerror(L, "the SQL holds more than one statement; run them "
                            "one at a time");
    if (d->placeholder == ORM_PH_QMARK && !run_has_qq(sql, *len)) {
        /* nothing to rewrite: only `??` differs for `?` dialects */
        lua_pushvalue(L, 2);
        return sql;
    }
    b = lua_newuserdatauv(L, sizeof *b, 0); /* scratch, freed below */
    orm_buf_init(b);
    orm_sql_placeholders(sql, *len, d, 1, b);
    if (b->oom) {
        orm_buf_free(b);
        luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, b->p ? b->p : "", b->len);
    orm_buf_free(b);
    lua_remove(L, -2);
    return lua_tolstring(L, -1, len);
}

int orm_lua_hydration(lua_State *L, int idx, const char *fname)
{
    if (!lua_istable(L, idx))
        return 0;
    idx = lua_absindex(L, idx);
    run_hyd_push(L, idx, fname);
    lua_pop(L, 2);
    return idx;
}

/* target:run(sql, bindings?, mode?, hydrate?): raw SQL with `?` placeholders. */
int orm_lua_target_run(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    int n;
    orm_value small[RUN_SMALL_BINDS];
    orm_value *v = run_binds(L, 3, small, &n);
    int mode = luaL_checkoption(L, 4, "rows", run_modes);
    int hyd = orm_lua_hydration(L, 5, "run");
    orm_conn *held;
    orm_pool *pool = orm_lua_target_pool(L, 1, &held);
    sql = run_portable_sql(L, held ? orm_conn_dialect(held)
                                   : orm_pool_driver(pool)->dialect, sql, &len);
    if (orm_lua_waiter(L))
        return orm_lua_run_wait(L, 1, sql, len, v, n, (orm_lua_mode)mode, hyd,
                                ORM_LUA_POST_NONE);
    return orm_lua_run(L, 1, sql, len, v, n, (orm_lua_mode)mode, hyd);
}

/* target:_find(sql, key, hydrate?): run(sql, { key }, "first", hydrate)
 * for SQL the engine compiled for this target (Model:find's statement)
 * and an integer key: no bindings list, no placeholder rewriting. Returns
 * false, running nothing, when the key is not an integer. */
int orm_lua_target_find(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    orm_value v;
    int hyd;
    if (!lua_isinteger(L, 3)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    v = orm_value_int(lua_tointeger(L, 3));
    lua_settop(L, 4);
    hyd = lua_istable(L, 4) ? 4 : 0; /* checked as the rows are read */
    if (orm_lua_waiter(L))
        return orm_lua_run_wait(L, 1, sql, len, &v, 1, ORM_LUA_FIRST, hyd,
                                ORM_LUA_POST_NONE);
    return orm_lua_run(L, 1, sql, len, &v, 1, ORM_LUA_FIRST, hyd);
}

