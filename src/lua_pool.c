/*
 * lua_pool.c: the userdata `ormed.pool` (a data source's connection pool)
 * and `ormed.conn` (one checked-out connection, used for transactions):
 * targets of statements (lua_run.c runs them), transactions, all-or-nothing
 * groups and the bulk-load steps.
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

/* u, raising not_initialized when its pool was closed. */
static pool_ud *aux_openpool(lua_State *L, pool_ud *u)
{
    if (u->pool == NULL) {
        orm_error e;
        orm_error_clear(&e);
        orm_error_set(&e, ORM_E_NOT_INITIALIZED, "data source is disposed");
        orm_lua_raise(L, &e, NULL, NULL);
    }
    return u;
}

static pool_ud *aux_checkpool(lua_State *L, int idx)
{
    return aux_openpool(L, luaL_checkudata(L, idx, ORM_LUA_POOL));
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
    /* tidx was checked to be a target: a pool's user value is its info
     * table, a conn's is its pool */
    if (lua_getiuservalue(L, tidx, 1) == LUA_TUSERDATA) {
        lua_getiuservalue(L, -1, 1);
        lua_remove(L, -2);
    }
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

void orm_lua_target_info(lua_State *L, int tidx)
{
    aux_pushinfo(L, tidx);
}

orm_pool *orm_lua_target_pool(lua_State *L, int tidx, orm_conn **held)
{
    pool_ud *pu = luaL_testudata(L, tidx, ORM_LUA_POOL); /* the usual one */
    conn_ud *cu;
    *held = NULL;
    if (pu != NULL)
        return aux_openpool(L, pu)->pool;
    cu = aux_checkconn(L, tidx);
    *held = cu->conn;
    return cu->pool;
}

const char *orm_lua_target_name(lua_State *L, int tidx)
{
    return aux_name(L, tidx);
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
    orm_lua_notify(L, 2, e->sql, strlen(e->sql), NULL, 0, e->ms, 0, e->err);
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
    orm_lua_notify(L, cidx, copy, strlen(copy), NULL, 0, ms, 0, err);
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
    orm_lua_notify(L, cidx, copy, strlen(copy), NULL, 0, ms, rows, &err);
}

static const luaL_Reg pool_methods[] = {
    {"run", orm_lua_target_run}, {"_find", orm_lua_target_find},
    {"acquire", pool_acquire},
    {"stats", pool_stats},     {"ping", pool_ping},
    {"close", pool_close},     {"closed", pool_closed},
    {"info", pool_info},       {"dialect", target_dialect},
    {NULL, NULL},
};

static const luaL_Reg conn_methods[] = {
    {"run", orm_lua_target_run}, {"_find", orm_lua_target_find},
    {"release", conn_release},
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
