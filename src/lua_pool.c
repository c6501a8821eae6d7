/*
 * lua_pool.c: the userdata `ormed.pool` (a data source's connection pool)
 * and `ormed.conn` (one checked-out connection, used for transactions), and
 * orm_lua_run, the one path every statement takes: check out, bind, step,
 * build Lua tables (column keys made once per result), check in, record
 * statistics, notify listeners, raise orm.Error.
 */
#include <string.h>

#include "lua_ormed.h"
#include "orm_pool.h"
#include "orm_sql.h"

typedef struct pool_ud {
    orm_pool *pool; /* NULL once closed */
} pool_ud;

typedef struct conn_ud {
    orm_conn *conn; /* NULL once released */
    orm_pool *pool; /* referenced while conn is held */
} conn_ud;

/* {==== parameters ====} */

static const char *aux_optstr(lua_State *L, int t, const char *k,
                              const char *alt)
{
    const char *s;
    lua_getfield(L, t, k);
    if (lua_isnil(L, -1) && alt != NULL) {
        lua_pop(L, 1);
        lua_getfield(L, t, alt);
    }
    s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the table keeps the string alive */
    return s;
}

static lua_Number aux_optnum(lua_State *L, int t, const char *k, lua_Number d)
{
    lua_Number n;
    lua_getfield(L, t, k);
    n = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : d;
    lua_pop(L, 1);
    return n;
}

static int aux_optbool(lua_State *L, int t, const char *k)
{
    int b;
    lua_getfield(L, t, k);
    b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

static void aux_params(lua_State *L, int t, orm_params *p)
{
    memset(p, 0, sizeof *p);
    p->driver = aux_optstr(L, t, "driver", NULL);
    p->host = aux_optstr(L, t, "host", NULL);
    p->port = (int)aux_optnum(L, t, "port", 0);
    p->database = aux_optstr(L, t, "database", NULL);
    p->user = aux_optstr(L, t, "username", "user");
    p->password = aux_optstr(L, t, "password", NULL);
    p->socket = aux_optstr(L, t, "socket", NULL);
    p->sslmode = aux_optstr(L, t, "sslmode", NULL);
    p->options = aux_optstr(L, t, "options", NULL);
    p->path = aux_optstr(L, t, "path", NULL);
    p->memory = aux_optbool(L, t, "memory");
    p->timeout = (int)aux_optnum(L, t, "timeout", 0);
    lua_getfield(L, t, "prepared_statements");
    p->unnamed = lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1);
    lua_pop(L, 1);
}

/* {==== targets ====} */

static pool_ud *aux_checkpool(lua_State *L, int idx)
{
    pool_ud *u = luaL_checkudata(L, idx, ORM_LUA_POOL);
    if (u->pool == NULL) {
        orm_error e;
        orm_error_clear(&e);
        orm_error_set(&e, ORM_E_NOT_INITIALIZED, "data source is disposed");
        orm_lua_raise(L, &e, NULL, NULL);
    }
    return u;
}

static conn_ud *aux_checkconn(lua_State *L, int idx)
{
    conn_ud *u = luaL_checkudata(L, idx, ORM_LUA_CONN);
    if (u->conn == NULL)
        orm_lua_argerror(L, "connection was already released");
    return u;
}

/* Pushes the info table of a target (the pool's user value; a conn's pool
 * is its user value). */
static void aux_pushinfo(lua_State *L, int tidx)
{
    if (luaL_testudata(L, tidx, ORM_LUA_CONN)) {
        lua_getiuservalue(L, tidx, 1);
        lua_getiuservalue(L, -1, 1);
        lua_remove(L, -2);
    } else
        lua_getiuservalue(L, tidx, 1);
}

/* The connection name of a target, for messages (NULL when unnamed); the
 * string stays valid while the info table holds it. */
static const char *aux_name(lua_State *L, int tidx)
{
    const char *s;
    aux_pushinfo(L, tidx);
    lua_getfield(L, -1, "name");
    s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 2);
    return s;
}

const orm_dialect *orm_lua_target_dialect(lua_State *L, int tidx)
{
    conn_ud *c = luaL_testudata(L, tidx, ORM_LUA_CONN);
    if (c != NULL)
        return orm_conn_dialect(aux_checkconn(L, tidx)->conn);
    return orm_pool_driver(aux_checkpool(L, tidx)->pool)->dialect;
}

/* {==== running statements ====} */

typedef orm_lua_runctx run_ctx;

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
        lua_getfield(L, 2, "key");
        lua_getfield(L, 2, "mt");
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

/* Calls every listener of the target with one event table. */
static void run_notify(lua_State *L, int tidx, const char *sql, size_t len,
                       const orm_value *binds, int n, double ms,
                       int64_t rows, const orm_error *err)
{
    int i, nl, listeners;
    aux_pushinfo(L, tidx);
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

orm_pool *orm_lua_target_pool(lua_State *L, int tidx, orm_conn **held)
{
    conn_ud *cu = luaL_testudata(L, tidx, ORM_LUA_CONN);
    if (cu != NULL) {
        *held = aux_checkconn(L, tidx)->conn;
        return cu->pool;
    }
    *held = NULL;
    return aux_checkpool(L, tidx)->pool;
}

const char *orm_lua_target_name(lua_State *L, int tidx)
{
    return aux_name(L, tidx);
}

int orm_lua_failover(lua_State *L, int tidx, const orm_error *err)
{
    if (err->kind != ORM_E_CONNECTION_FAILED && err->kind != ORM_E_CONNECTION_LOST)
        return 0;
    aux_pushinfo(L, tidx);
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
    double ms;
    if (ok && orm_conn_check_tx(x->conn, &x->err) != ORM_OK) {
        lua_pop(L, 1); /* the result */
        x->rc = -1;
        ok = 0;
    } else if (!ok && x->conn != NULL)
        orm_conn_sync_tx(x->conn);
    if (acquired)
        orm_pool_release(pool, x->conn);
    ms = (orm_clock() - t0) * 1000.0;
    orm_pool_record(pool, ms, !ok);
    if (x->rc == -2)
        return lua_error(L);
    if (!ok)
        lua_pushnil(L);
    run_notify(L, tidx, sql, len, binds, n, ms, x->rows, &x->err);
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
        return orm_lua_raise(L, &x.err, aux_name(L, tidx), NULL);
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
    return orm_lua_raise(L, &x.err, aux_name(L, tidx), lua_tostring(L, -1));
}

#define AUX_SMALL_BINDS 8

/* Reads the bindings list at idx (nil = none) into a value array: `small`
 * (AUX_SMALL_BINDS values, the caller's) when it fits, else a userdata on
 * the Lua stack, so nothing leaks if a later call raises. Pushes one value
 * either way (nil or the userdata). */
static orm_value *aux_binds(lua_State *L, int idx, orm_value *small, int *n)
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
    if (len <= AUX_SMALL_BINDS) {
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
static int aux_has_qq(const char *sql, size_t len)
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
static const char *aux_portable_sql(lua_State *L, int tidx, const char *sql,
                                    size_t *len)
{
    const orm_dialect *d = orm_lua_target_dialect(L, tidx);
    orm_buf *b;
    if (memchr(sql, ';', *len) != NULL && orm_sql_more_statements(sql, *len, d))
        orm_lua_argerror(L, "the SQL holds more than one statement; run them "
                            "one at a time");
    if (d->placeholder == ORM_PH_QMARK && !aux_has_qq(sql, *len)) {
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

/* target:run(sql, bindings?, mode?, hydrate?): raw SQL with `?` placeholders. */
static int target_run(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    int n;
    orm_value small[AUX_SMALL_BINDS];
    orm_value *v = aux_binds(L, 3, small, &n);
    int mode = luaL_checkoption(L, 4, "rows", run_modes);
    int hyd = lua_istable(L, 5) ? 5 : 0;
    sql = aux_portable_sql(L, 1, sql, &len);
    if (orm_lua_waiter(L))
        return orm_lua_run_wait(L, 1, sql, len, v, n, (orm_lua_mode)mode, hyd,
                                ORM_LUA_POST_NONE);
    return orm_lua_run(L, 1, sql, len, v, n, (orm_lua_mode)mode, hyd);
}

/* {==== ormed.pool ====} */

/* Reads the data source's timeouts (seconds; nil = none) at idx:
 * statement_timeout, and connect_timeout (whole seconds, rounded up, as
 * the client libraries take it). */
static void aux_timeouts(lua_State *L, int idx, orm_params *p)
{
    lua_Number ct;
    if (!lua_istable(L, idx))
        return;
    p->statement_timeout = aux_optnum(L, idx, "statement_timeout", 0);
    ct = aux_optnum(L, idx, "connect_timeout", 0);
    if (ct > 0)
        p->timeout = ct < 1 ? 1 : (int)ct + ((lua_Number)(int)ct < ct);
}

/* core.pool_new(params, opts, timeouts?) */
static int pool_new(lua_State *L)
{
    orm_params p;
    orm_pool_opts o;
    orm_error err;
    const orm_driver *d;
    pool_ud *u;
    int later;
    luaL_checktype(L, 1, LUA_TTABLE);
    aux_params(L, 1, &p);
    aux_timeouts(L, 3, &p);
    d = orm_driver_find(p.driver);
    if (d == NULL)
        return orm_lua_argerror(L, "unknown driver '%s' (sqlite, postgres, "
                                   "mysql)", p.driver ? p.driver : "nil");
    memset(&o, 0, sizeof o);
    if (lua_istable(L, 2)) {
        o.max = (int)aux_optnum(L, 2, "max", 10);
        o.min = (int)aux_optnum(L, 2, "min", 0);
        o.acquire_timeout = aux_optnum(L, 2, "acquire_timeout", 5);
        o.idle_timeout = aux_optnum(L, 2, "idle_timeout", 60);
        o.health_check = aux_optnum(L, 2, "health_check", 2);
        o.max_lifetime = aux_optnum(L, 2, "max_lifetime", 0);
    } else {
        o.max = 10;
        o.acquire_timeout = 5;
        o.idle_timeout = 60;
        o.health_check = 2;
    }
    lua_settop(L, 3);
    u = lua_newuserdatauv(L, sizeof *u, 1);
    u->pool = NULL;
    luaL_setmetatable(L, ORM_LUA_POOL);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    orm_error_clear(&err);
    later = o.min > 0 && d->open_start != NULL && orm_lua_waiter(L);
    if (later) { /* opened through the waiter, once the pool exists */
        lua_pop(L, 1);
        later = o.min;
        o.min = 0;
    }
    if (orm_pool_new(d, &p, &o, &u->pool, &err) != ORM_OK)
        return orm_lua_raise(L, &err, NULL, NULL);
    if (later) {
        orm_pool_set_min(u->pool, later);
        return orm_lua_fill_wait(L, 4, later);
    }
    return 1;
}

/* core.clock(): the engine's monotonic clock in seconds (leak detection). */
static int pool_clock(lua_State *L)
{
    lua_pushnumber(L, orm_clock());
    return 1;
}

static int pool_close(lua_State *L)
{
    pool_ud *u = luaL_checkudata(L, 1, ORM_LUA_POOL);
    if (u->pool != NULL) {
        orm_pool *p = u->pool;
        u->pool = NULL;
        orm_pool_close(p);
        orm_pool_unref(p);
    }
    return 0;
}

static int pool_closed(lua_State *L)
{
    pool_ud *u = luaL_checkudata(L, 1, ORM_LUA_POOL);
    lua_pushboolean(L, u->pool == NULL);
    return 1;
}

static int pool_info(lua_State *L)
{
    luaL_checkudata(L, 1, ORM_LUA_POOL);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int pool_acquire(lua_State *L)
{
    pool_ud *u = aux_checkpool(L, 1);
    orm_error err;
    conn_ud *c = lua_newuserdatauv(L, sizeof *c, 1);
    c->conn = NULL;
    c->pool = NULL;
    luaL_setmetatable(L, ORM_LUA_CONN);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    if (orm_lua_waiter(L))
        return orm_lua_acquire_wait(L, 1, lua_gettop(L) - 1);
    orm_error_clear(&err);
    if (orm_pool_acquire(u->pool, &c->conn, &err) != ORM_OK)
        return orm_lua_raise(L, &err, aux_name(L, 1), NULL);
    c->pool = u->pool;
    orm_pool_ref(c->pool);
    return 1;
}

void orm_lua_conn_set(lua_State *L, int cidx, orm_pool *pool, orm_conn *c)
{
    conn_ud *u = luaL_checkudata(L, cidx, ORM_LUA_CONN);
    u->conn = c;
    u->pool = pool;
    orm_pool_ref(pool);
}

static void aux_setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static int pool_stats(lua_State *L)
{
    pool_ud *u = aux_checkpool(L, 1);
    orm_pool_stats s;
    orm_pool_stats_get(u->pool, &s);
    lua_createtable(L, 0, 9);
    aux_setint(L, "open", s.open);
    aux_setint(L, "in_use", s.in_use);
    aux_setint(L, "idle", s.idle);
    aux_setint(L, "waits", s.waits);
    aux_setint(L, "timeouts", s.timeouts);
    aux_setint(L, "queries", s.queries);
    aux_setint(L, "errors", s.errors);
    aux_setint(L, "prepared", s.prepares);
    aux_setint(L, "expired", s.expired);
    lua_pushnumber(L, s.total_ms);
    lua_setfield(L, -2, "total_ms");
    return 1;
}

static int pool_ping(lua_State *L)
{
    pool_ud *u = aux_checkpool(L, 1);
    orm_conn *c;
    orm_error err;
    int rc;
    lua_settop(L, 1);
    if (orm_lua_waiter(L))
        return orm_lua_ping_wait(L, 1);
    orm_error_clear(&err);
    rc = orm_pool_acquire(u->pool, &c, &err);
    if (rc == ORM_OK) {
        rc = orm_conn_ping(c, &err);
        orm_pool_release(u->pool, c);
    }
    if (rc != ORM_OK)
        return orm_lua_raise(L, &err, aux_name(L, 1), NULL);
    lua_pushboolean(L, 1);
    return 1;
}

static int target_dialect(lua_State *L)
{
    lua_pushstring(L, orm_lua_target_dialect(L, 1)->name);
    return 1;
}

/* {==== ormed.conn ====} */

static int conn_release(lua_State *L)
{
    conn_ud *c = luaL_checkudata(L, 1, ORM_LUA_CONN);
    if (c->conn != NULL) {
        orm_conn *conn = c->conn;
        c->conn = NULL;
        orm_pool_release(c->pool, conn);
        orm_pool_unref(c->pool);
        c->pool = NULL;
    }
    return 0;
}

/* What tx_notify tells listeners. */
typedef struct tx_event {
    const char *sql;
    double ms;
    const orm_error *err;
} tx_event;

/* Protected: run_notify for a transaction statement. Arguments: the event
 * (light userdata), the connection target. */
static int tx_notify(lua_State *L)
{
    tx_event *e = lua_touserdata(L, 1);
    run_notify(L, 2, e->sql, strlen(e->sql), NULL, 0, e->ms, 0, e->err);
    return 0;
}

/* A listener that raises on a transaction statement is ignored: the
 * statement has run, and the transaction's bookkeeping must follow what
 * the database did. */
int orm_lua_tx_end(lua_State *L, int cidx, int rc, orm_error *err, double t0)
{
    conn_ud *c = aux_checkconn(L, cidx);
    double ms = (orm_clock() - t0) * 1000.0;
    const char *sql = orm_conn_tx_sql(c->conn);
    if (*sql != '\0') {
        tx_event e;
        lua_pushstring(L, sql); /* the connection may change it meanwhile */
        sql = lua_tostring(L, -1);
        orm_pool_record(c->pool, ms, rc != ORM_OK);
        e.sql = sql;
        e.ms = ms;
        e.err = err;
        lua_pushcfunction(L, tx_notify);
        lua_pushlightuserdata(L, &e);
        lua_pushvalue(L, cidx);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK)
            lua_pop(L, 1); /* a listener's error: ignored, see above */
    }
    if (rc != ORM_OK)
        return orm_lua_raise(L, err, aux_name(L, cidx), *sql ? sql : NULL);
    lua_pushinteger(L, orm_conn_depth(c->conn));
    return 1;
}

/* Runs one transaction step; the statement it sent (BEGIN, COMMIT,
 * SAVEPOINT...) is counted and reported to listeners like any other. */
static int aux_tx(lua_State *L, orm_tx_op op)
{
    conn_ud *c = aux_checkconn(L, 1);
    orm_error err;
    double t0;
    int rc;
    lua_settop(L, 1);
    if (orm_lua_waiter(L)) {
        if (orm_conn_can_poll(c->conn))
            return orm_lua_tx_wait(L, 1, op);
        lua_pop(L, 1);
    }
    orm_error_clear(&err);
    t0 = orm_clock();
    rc = op == ORM_TX_BEGIN    ? orm_conn_begin(c->conn, &err)
         : op == ORM_TX_COMMIT ? orm_conn_commit(c->conn, &err)
                               : orm_conn_rollback(c->conn, &err);
    return orm_lua_tx_end(L, 1, rc, &err, t0);
}

static int conn_begin(lua_State *L)
{
    return aux_tx(L, ORM_TX_BEGIN);
}

static int conn_commit(lua_State *L)
{
    return aux_tx(L, ORM_TX_COMMIT);
}

static int conn_rollback(lua_State *L)
{
    return aux_tx(L, ORM_TX_ROLLBACK);
}

orm_conn *orm_lua_conn_of(lua_State *L, int cidx)
{
    return aux_checkconn(L, cidx)->conn;
}

static int conn_depth(lua_State *L)
{
    lua_pushinteger(L, orm_conn_depth(aux_checkconn(L, 1)->conn));
    return 1;
}

static int conn_broken(lua_State *L)
{
    conn_ud *c = luaL_checkudata(L, 1, ORM_LUA_CONN);
    lua_pushboolean(L, c->conn == NULL || orm_conn_broken(c->conn));
    return 1;
}

static int conn_pool(lua_State *L)
{
    luaL_checkudata(L, 1, ORM_LUA_CONN);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

/* {==== bulk load ====} */

int orm_lua_copy_fail(lua_State *L, int cidx, const char *copy, double t0,
                      const orm_error *err)
{
    conn_ud *c = aux_checkconn(L, cidx);
    double ms = (orm_clock() - t0) * 1000.0;
    orm_pool_record(c->pool, ms, 1);
    run_notify(L, cidx, copy, strlen(copy), NULL, 0, ms, 0, err);
    return orm_lua_raise(L, err, aux_name(L, cidx), copy);
}

double orm_lua_copy_begin(lua_State *L, int cidx, const char *probe,
                          const char *copy, int ncols)
{
    orm_error err;
    double t0 = orm_clock();
    orm_error_clear(&err);
    if (orm_conn_copy_begin(aux_checkconn(L, cidx)->conn, probe, copy, ncols,
                            &err) != ORM_OK)
        orm_lua_copy_fail(L, cidx, copy, t0, &err);
    return t0;
}

void orm_lua_copy_rows(lua_State *L, int cidx, const char *copy, double t0,
                       const orm_value *vals, int nrows)
{
    orm_error err;
    orm_error_clear(&err);
    if (orm_conn_copy_rows(aux_checkconn(L, cidx)->conn, vals, nrows, &err) !=
        ORM_OK)
        orm_lua_copy_fail(L, cidx, copy, t0, &err);
}

int64_t orm_lua_copy_end(lua_State *L, int cidx, const char *copy, double t0)
{
    orm_error err;
    int64_t rows = 0;
    orm_error_clear(&err);
    if (orm_conn_copy_end(aux_checkconn(L, cidx)->conn, &rows, &err) != ORM_OK)
        orm_lua_copy_fail(L, cidx, copy, t0, &err);
    orm_lua_copy_ended(L, cidx, copy, t0, rows);
    return rows;
}

void orm_lua_copy_ended(lua_State *L, int cidx, const char *copy, double t0,
                        int64_t rows)
{
    orm_error err;
    conn_ud *c = aux_checkconn(L, cidx);
    double ms = (orm_clock() - t0) * 1000.0;
    orm_error_clear(&err);
    orm_pool_record(c->pool, ms, 0);
    run_notify(L, cidx, copy, strlen(copy), NULL, 0, ms, rows, &err);
}

static const luaL_Reg pool_methods[] = {
    {"run", target_run},       {"acquire", pool_acquire},
    {"stats", pool_stats},     {"ping", pool_ping},
    {"close", pool_close},     {"closed", pool_closed},
    {"info", pool_info},       {"dialect", target_dialect},
    {NULL, NULL},
};

static const luaL_Reg conn_methods[] = {
    {"run", target_run},         {"release", conn_release},
    {"begin", conn_begin},       {"commit", conn_commit},
    {"rollback", conn_rollback}, {"depth", conn_depth},
    {"broken", conn_broken},     {"pool", conn_pool},
    {"dialect", target_dialect}, {NULL, NULL},
};

void orm_lua_open_pool(lua_State *L)
{
    orm_lua_newclass(L, ORM_LUA_POOL, pool_methods, pool_close);
    orm_lua_newclass(L, ORM_LUA_CONN, conn_methods, conn_release);
    lua_pushcfunction(L, pool_new);
    lua_setfield(L, -2, "pool_new");
    lua_pushcfunction(L, pool_clock);
    lua_setfield(L, -2, "clock");
}
