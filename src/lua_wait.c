/*
 * lua_wait.c: orm.set_waiter and the waiting path of a statement: with a
 * waiter set, a statement on a driver with non-blocking calls is prepared
 * and run without blocking, and every wait for the connection's socket
 * calls the waiter (fd, "r" | "w" | "rw", timeout) through lua_callk, so
 * the waiter may yield the caller's coroutine to the host's event loop:
 * the job's state lives in a to-be-closed userdata on the Lua stack, and a
 * job abandoned in flight (the waiter raised, the coroutine was closed)
 * marks its connection broken and gives it back.
 */
#include <string.h>

#include "lua_ormed.h"

#define WAIT_KEY "ormed.waiter"  /* registry: the waiter, or nil */
#define WAIT_JOB "ormed.wait_job"

typedef enum wait_phase {
    WAIT_START,    /* prepare (or take from the cache) next */
    WAIT_PREPARE,  /* a prepare is in flight */
    WAIT_BIND,     /* bind and send next */
    WAIT_EXEC,     /* the statement is running */
    WAIT_COLLECT,  /* its rows are in memory */
    WAIT_FAILED,   /* over, x.err filled */
    WAIT_DONE      /* handed to orm_lua_run_end: nothing left to undo */
} wait_phase;

typedef struct wait_job {
    orm_lua_runctx x;
    orm_pool *pool;        /* referenced while the job lives */
    int acquired;          /* x.conn came from the pool for this job */
    wait_phase phase;
    const char *sql;       /* a Lua string on the caller's stack */
    size_t len;
    int n;                 /* bound values, copied after the job */
    int tidx, hyd, widx;   /* stack: target, hydration (0), waiter */
    double t0;
    orm_value binds[];     /* their strings live in Lua values too */
} wait_job;

/* __close and __gc: undoes what a job abandoned midway holds. */
static int wait_job_close(lua_State *L)
{
    wait_job *j = luaL_checkudata(L, 1, WAIT_JOB);
    if (j->phase != WAIT_DONE && j->x.conn != NULL) {
        if (j->phase == WAIT_PREPARE || j->phase == WAIT_EXEC)
            orm_conn_set_broken(j->x.conn); /* an answer is still coming */
        if (j->x.stmt != NULL)
            orm_conn_finish(j->x.conn, j->x.stmt);
        if (j->acquired)
            orm_pool_release(j->pool, j->x.conn);
    }
    j->phase = WAIT_DONE;
    j->x.conn = NULL;
    j->x.stmt = NULL;
    if (j->pool != NULL) {
        orm_pool_unref(j->pool);
        j->pool = NULL;
    }
    return 0;
}

/* Advances the job without blocking; returns what to wait for, or
 * ORM_WAIT_NONE once it is over (WAIT_COLLECT or WAIT_FAILED). */
static int wait_advance(wait_job *j)
{
    orm_conn *c = j->x.conn;
    int w = ORM_WAIT_NONE, pending;
    for (;;) {
        switch (j->phase) {
        case WAIT_START:
            if (orm_conn_prepare_start(c, j->sql, j->len, j->n, &j->x.stmt,
                                       &pending, &j->x.err) != ORM_OK)
                break;
            j->phase = pending ? WAIT_PREPARE : WAIT_BIND;
            continue;
        case WAIT_PREPARE:
            if (orm_conn_poll(c, &w, &j->x.err) != ORM_OK)
                break;
            if (w != ORM_WAIT_NONE)
                return w;
            orm_conn_prepared(c, j->sql, j->len, j->x.stmt);
            j->phase = WAIT_BIND;
            continue;
        case WAIT_BIND:
            if (orm_conn_exec_start(c, j->x.stmt, j->binds, j->n,
                                    &j->x.err) != ORM_OK)
                break;
            j->phase = WAIT_EXEC;
            continue;
        case WAIT_EXEC:
            if (orm_conn_poll(c, &w, &j->x.err) != ORM_OK)
                break;
            if (w != ORM_WAIT_NONE)
                return w;
            j->phase = WAIT_COLLECT;
            return ORM_WAIT_NONE;
        default:
            return ORM_WAIT_NONE;
        }
        j->phase = WAIT_FAILED; /* the call that broke out filled x.err */
        j->x.rc = -1;
        return ORM_WAIT_NONE;
    }
}

/* The job is over: reads the rows, then the common end of a run. */
static int wait_finish(lua_State *L, wait_job *j)
{
    if (j->phase == WAIT_COLLECT) {
        lua_pushcfunction(L, orm_lua_run_collect);
        lua_pushlightuserdata(L, &j->x);
        if (j->hyd)
            lua_pushvalue(L, j->hyd);
        else
            lua_pushnil(L);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK)
            j->x.rc = -2;
    }
    if (j->x.stmt != NULL)
        orm_conn_finish(j->x.conn, j->x.stmt);
    j->x.stmt = NULL;
    j->phase = WAIT_DONE;
    return orm_lua_run_end(L, j->tidx, j->pool, j->acquired, &j->x, j->sql,
                           j->len, j->binds, j->n, j->t0);
}

/* The loop, and its continuation after a waiter that yielded. */
static int wait_k(lua_State *L, int status, lua_KContext ctx)
{
    wait_job *j = lua_touserdata(L, (int)ctx);
    int w;
    (void)status;
    while ((w = wait_advance(j)) != ORM_WAIT_NONE) {
        lua_pushvalue(L, j->widx);
        lua_pushinteger(L, orm_conn_socket(j->x.conn));
        lua_pushstring(L, w == ORM_WAIT_READ    ? "r"
                          : w == ORM_WAIT_WRITE ? "w"
                                                : "rw");
        lua_pushnil(L); /* no deadline: statement_timeout is the server's */
        lua_callk(L, 3, 0, ctx, wait_k);
    }
    return wait_finish(L, j);
}

int orm_lua_run_wait(lua_State *L, int tidx, const char *sql, size_t len,
                     const orm_value *binds, int n, orm_lua_mode mode, int hyd)
{
    int widx = lua_gettop(L), jidx;
    orm_conn *held;
    orm_pool *pool;
    wait_job *j;
    tidx = lua_absindex(L, tidx);
    hyd = hyd ? lua_absindex(L, hyd) : 0;
    pool = orm_lua_target_pool(L, tidx, &held);
    if (orm_pool_driver(pool)->poll == NULL) { /* SQLite: synchronous */
        lua_pop(L, 1);
        return orm_lua_run(L, tidx, sql, len, binds, n, mode, hyd);
    }
    j = lua_newuserdatauv(L, sizeof *j + (size_t)n * sizeof(orm_value), 0);
    memset(j, 0, sizeof *j);
    j->phase = WAIT_DONE;
    luaL_setmetatable(L, WAIT_JOB);
    jidx = lua_gettop(L);
    lua_toclose(L, jidx);
    orm_pool_ref(pool);
    j->pool = pool;
    j->x.mode = mode;
    orm_error_clear(&j->x.err);
    j->sql = sql;
    j->len = len;
    j->n = n;
    if (n > 0)
        memcpy(j->binds, binds, (size_t)n * sizeof *binds);
    j->tidx = tidx;
    j->hyd = hyd;
    j->widx = widx;
    j->x.conn = held;
    if (held == NULL) {
        if (orm_pool_acquire(pool, &j->x.conn, &j->x.err) != ORM_OK)
            return orm_lua_raise(L, &j->x.err, orm_lua_target_name(L, tidx),
                                 NULL);
        j->acquired = 1;
    }
    j->phase = WAIT_START;
    j->t0 = orm_clock();
    return wait_k(L, LUA_OK, (lua_KContext)jidx);
}

int orm_lua_waiter(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, WAIT_KEY) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    return 0;
}

/* core.set_waiter(fn | nil) */
static int wait_set(lua_State *L)
{
    if (!lua_isnoneornil(L, 1) && !lua_isfunction(L, 1) &&
        !luaL_getmetafield(L, 1, "__call"))
        return orm_lua_argerror(L, "set_waiter expects a function "
                                   "(fd, mode, timeout) or nil, got %s",
                                luaL_typename(L, 1));
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, WAIT_KEY);
    return 0;
}

/* core.get_waiter(): the waiter, or nil. */
static int wait_get(lua_State *L)
{
    if (!orm_lua_waiter(L))
        lua_pushnil(L);
    return 1;
}

void orm_lua_open_wait(lua_State *L)
{
    luaL_newmetatable(L, WAIT_JOB);
    lua_pushcfunction(L, wait_job_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, wait_job_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, wait_set);
    lua_setfield(L, -2, "set_waiter");
    lua_pushcfunction(L, wait_get);
    lua_setfield(L, -2, "get_waiter");
}
