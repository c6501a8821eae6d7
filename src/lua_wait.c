/*
 * lua_wait.c: orm.set_waiter and the waiting path of a statement: with a
 * waiter set, a statement checks a connection out of the pool without
 * blocking (and opens one without blocking, on a driver with open_start),
 * is prepared and run without blocking on a driver with non-blocking calls
 * (as usual on the others), and every wait (the connection's socket, a
 * pool wait's eventfd) calls the waiter (fd, "r" | "w" | "rw", timeout)
 * through lua_callk, with the time left before the wait's deadline
 * (connect_timeout, acquire_timeout, statement_timeout: past the last one
 * the statement is cancelled, orm_conn_deadline_left), so
 * the waiter may yield the caller's coroutine to the host's event loop:
 * the job's state lives in a to-be-closed userdata on the Lua stack, and a
 * job abandoned in flight (the waiter raised, the coroutine was closed)
 * marks its connection broken and gives it back. The same for the health
 * check of an idle connection, pool:ping(), a read replica's failover,
 * transaction statements, a new pool's min connections and the steps of a
 * bulk load.
 */
#include <string.h>

#include "lua_ormed.h"

#define WAIT_KEY "ormed.waiter"  /* registry: the waiter, or nil */
#define WAIT_JOB "ormed.wait_job"

typedef enum wait_phase {
    WAIT_ACQUIRE,  /* check a connection out of the pool */
    WAIT_CONNECT,  /* opening a new one (x.conn), until `deadline` */
    WAIT_CHECK,    /* the health-check ping of an idle one is in flight */
    WAIT_NOCONN,   /* no connection: x.err filled, raised as is */
    WAIT_START,    /* prepare (or take from the cache) next */
    WAIT_PREPARE,  /* a prepare is in flight */
    WAIT_BIND,     /* bind and send next */
    WAIT_EXEC,     /* the statement is running */
    WAIT_PING,     /* pool:ping()'s ping is in flight */
    WAIT_COLLECT,  /* its rows are in memory */
    WAIT_SYNC,     /* a driver without non-blocking calls: run it as usual */
    WAIT_FAILED,   /* over, x.err filled */
    WAIT_DONE      /* handed to orm_lua_run_finish: nothing left to undo */
} wait_phase;

typedef struct wait_job {
    orm_lua_runctx x;
    orm_pool *pool;        /* referenced while the job lives */
    int acquired;          /* x.conn came from the pool for this job */
    orm_pool_wait *pw;     /* a queued wait for a pooled connection */
    int acquire_only;      /* pool:acquire(): stop once connected */
    int ping_only;         /* pool:ping(): ping once connected */
    int sync;              /* the driver only blocks (SQLite, MySQL) */
    int cidx;              /* ... and the conn userdata to fill */
    double deadline;       /* WAIT_CONNECT: connect_timeout */
    int fd;                /* what the waiter waits on */
    double timeout;        /* seconds, < 0 = none */
    wait_phase phase;
    const char *sql;       /* a Lua string on the caller's stack */
    size_t len;
    int n;                 /* bound values, copied after the job */
    int tidx, hyd, widx;   /* stack: target, hydration (0), waiter */
    orm_lua_post post;     /* the shaping of the result */
    double t0;
    orm_value binds[];     /* their strings live in Lua values too */
} wait_job;

/* __close and __gc: undoes what a job abandoned midway holds. */
static int wait_job_close(lua_State *L)
{
    wait_job *j = luaL_checkudata(L, 1, WAIT_JOB);
    if (j->pw != NULL) {
        orm_pool_wait_cancel(j->pool, j->pw);
        j->pw = NULL;
    }
    if (j->phase == WAIT_CONNECT) { /* a connection half opened */
        orm_pool_open_done(j->pool, j->x.conn, ORM_E_CONNECTION_FAILED, NULL);
        j->x.conn = NULL;
    }
    if (j->phase != WAIT_DONE && j->x.conn != NULL) {
        if (j->phase == WAIT_PREPARE || j->phase == WAIT_EXEC ||
            j->phase == WAIT_CHECK || j->phase == WAIT_PING)
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
    int w = ORM_WAIT_NONE, pending, slot, rc;
    orm_error e;
    for (;;) {
        orm_conn *c = j->x.conn;
        j->fd = c != NULL && orm_conn_can_poll(c) ? orm_conn_socket(c) : -1;
        j->timeout = -1;
        switch (j->phase) {
        case WAIT_ACQUIRE:
            if ((j->pw == NULL
                     ? orm_pool_acquire_start(j->pool, &j->x.conn, &j->pw,
                                              &slot, &j->x.err)
                     : orm_pool_acquire_poll(j->pool, j->pw, &j->x.conn,
                                             &slot, &j->x.err)) != ORM_OK) {
                j->pw = NULL; /* freed by the pool */
                j->phase = WAIT_NOCONN;
                return ORM_WAIT_NONE;
            }
            if (slot == ORM_POOL_SLOT_OPEN) { /* room: open one */
                j->pw = NULL;
                if (orm_pool_open_start(j->pool, &j->x.conn, &j->x.err) !=
                    ORM_OK) {
                    j->phase = WAIT_NOCONN;
                    return ORM_WAIT_NONE;
                }
                j->deadline = orm_clock() + orm_pool_connect_timeout(j->pool);
                j->phase = WAIT_CONNECT;
                continue;
            }
            if (j->x.conn == NULL) {
                j->fd = orm_pool_wait_fd(j->pw);
                j->timeout = orm_pool_wait_left(j->pw);
                return ORM_WAIT_READ;
            }
            j->pw = NULL;
            if (slot == ORM_POOL_SLOT_CHECK) { /* rested: ping it first */
                j->phase = WAIT_CHECK;
                if (orm_conn_ping_start(j->x.conn, &e) == ORM_OK)
                    continue;
                orm_conn_set_broken(j->x.conn);
            }
            if (orm_conn_broken(j->x.conn)) { /* unfit: close it, again */
                orm_pool_release(j->pool, j->x.conn);
                j->x.conn = NULL;
                j->phase = WAIT_ACQUIRE;
                continue;
            }
            j->t0 = orm_clock();
            j->phase = WAIT_START;
            continue;
        case WAIT_CHECK:
            if (orm_conn_poll_left(c, &w, &j->timeout, &e) != ORM_OK) {
                orm_conn_set_broken(c); /* failed, or past statement_timeout */
                j->phase = WAIT_ACQUIRE;
                orm_pool_release(j->pool, c);
                j->x.conn = NULL;
                continue;
            }
            if (w != ORM_WAIT_NONE)
                return w;
            j->t0 = orm_clock();
            j->phase = WAIT_START;
            continue;
        case WAIT_CONNECT:
            rc = orm_conn_poll(c, &w, &j->x.err);
            if (rc == ORM_OK && w != ORM_WAIT_NONE && orm_clock() >= j->deadline)
                rc = orm_error_set(&j->x.err, ORM_E_CONNECTION_FAILED,
                                   "could not connect within %gs",
                                   orm_pool_connect_timeout(j->pool));
            if (rc != ORM_OK) {
                j->x.err.kind = ORM_E_CONNECTION_FAILED;
                orm_pool_open_done(j->pool, c, rc, &j->x.err);
                j->x.conn = NULL;
                j->phase = WAIT_NOCONN;
                return ORM_WAIT_NONE;
            }
            if (w != ORM_WAIT_NONE) {
                j->timeout = j->deadline - orm_clock();
                return w;
            }
            orm_pool_open_done(j->pool, c, ORM_OK, NULL);
            j->t0 = orm_clock();
            j->phase = WAIT_START;
            continue;
        case WAIT_START:
            if (j->acquire_only)
                return ORM_WAIT_NONE;
            if (j->sync) {
                j->phase = WAIT_SYNC;
                return ORM_WAIT_NONE;
            }
            if (j->ping_only) {
                if (orm_conn_ping_start(c, &j->x.err) != ORM_OK)
                    break;
                j->phase = WAIT_PING;
                continue;
            }
            if (orm_conn_prepare_start(c, j->sql, j->len, j->n, &j->x.stmt,
                                       &pending, &j->x.err) != ORM_OK)
                break;
            j->phase = pending ? WAIT_PREPARE : WAIT_BIND;
            continue;
        case WAIT_PREPARE:
            if (orm_conn_poll_left(c, &w, &j->timeout, &j->x.err) != ORM_OK)
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
        case WAIT_PING:
            if (orm_conn_poll_left(c, &w, &j->timeout, &j->x.err) != ORM_OK)
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

/* Shapes the result on top (orm_lua_post), leaving one value. */
static void wait_post(lua_State *L, orm_lua_post post)
{
    switch (post) {
    case ORM_LUA_POST_NONE:
        return;
    case ORM_LUA_POST_AFFECTED:
    case ORM_LUA_POST_LAST_ID:
        lua_getfield(L, -1, post == ORM_LUA_POST_AFFECTED ? "affected_rows"
                                                          : "last_insert_id");
        lua_remove(L, -2);
        return;
    default:
        break;
    }
    if (lua_type(L, -1) == LUA_TSTRING &&
        lua_stringtonumber(L, lua_tostring(L, -1)) != 0) {
        if (post != ORM_LUA_POST_NUMBER && post != ORM_LUA_POST_EXISTS &&
            !lua_isinteger(L, -1))
            lua_pop(L, 1); /* keeps every digit as text */
        else
            lua_remove(L, -2);
    }
    if (post == ORM_LUA_POST_EXISTS) {
        lua_pushboolean(L, lua_isnumber(L, -1) ? lua_tonumber(L, -1) != 0
                                               : lua_toboolean(L, -1));
        lua_remove(L, -2);
    } else if (post == ORM_LUA_POST_TOTAL && lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushinteger(L, 0);
    }
}

/* pool:ping()'s job is over (WAIT_COLLECT, WAIT_FAILED, or WAIT_SYNC for
 * a driver without ping_start): as pool_ping, gives the connection back
 * and pushes true, or raises connection_lost. */
static int wait_pinged(lua_State *L, wait_job *j)
{
    int rc = j->phase == WAIT_COLLECT ? ORM_OK : -1;
    if (j->phase == WAIT_SYNC)
        rc = orm_conn_ping(j->x.conn, &j->x.err);
    else if (rc != ORM_OK) { /* what the blocking ping makes of a failure */
        j->x.err.kind = ORM_E_CONNECTION_LOST;
        orm_conn_set_broken(j->x.conn);
    }
    orm_pool_release(j->pool, j->x.conn);
    j->x.conn = NULL;
    j->phase = WAIT_DONE;
    if (rc != ORM_OK)
        return orm_lua_raise(L, &j->x.err, orm_lua_target_name(L, j->tidx),
                             NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* The job is over: reads the rows, then the common end of a run; returns
 * 1 with the result on top, or, when the statement could not reach a read
 * replica and runs again on the pool the replica's failover gave
 * (orm_lua_failover, as orm_lua_run does), -1. */
static int wait_finish(lua_State *L, wait_job *j)
{
    if (j->phase == WAIT_NOCONN) {
        j->phase = WAIT_DONE;
        if (j->acquired && !j->acquire_only && !j->ping_only &&
            orm_lua_failover(L, j->tidx, &j->x.err))
            return -1;
        return orm_lua_raise(L, &j->x.err, orm_lua_target_name(L, j->tidx),
                             NULL);
    }
    if (j->acquire_only) { /* the conn userdata takes the connection */
        orm_lua_conn_set(L, j->cidx, j->pool, j->x.conn);
        j->x.conn = NULL;
        j->phase = WAIT_DONE;
        lua_pushvalue(L, j->cidx);
        return 1;
    }
    if (j->ping_only)
        return wait_pinged(L, j);
    if (j->phase == WAIT_SYNC) {
        j->x.rc = -1;
        if (orm_conn_start(j->x.conn, j->sql, j->len, j->binds, j->n,
                           &j->x.stmt, &j->x.err) == ORM_OK) {
            j->x.rc = 0;
            j->phase = WAIT_COLLECT;
        }
    }
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
    if (!orm_lua_run_finish(L, j->tidx, j->pool, j->acquired, &j->x, j->sql,
                            j->len, j->binds, j->n, j->t0)) {
        if (j->acquired && orm_lua_failover(L, j->tidx, &j->x.err))
            return -1;
        lua_pushlstring(L, j->sql, j->len); /* may not be NUL-terminated */
        return orm_lua_raise(L, &j->x.err, orm_lua_target_name(L, j->tidx),
                             lua_tostring(L, -1));
    }
    wait_post(L, j->post);
    return 1;
}

/* Starts the job again on the pool now at its target's slot (a replica's
 * failover), from the checkout. */
static void wait_restart(lua_State *L, wait_job *j, int jidx)
{
    orm_conn *held;
    orm_pool *pool;
    lua_settop(L, jidx);
    pool = orm_lua_target_pool(L, j->tidx, &held);
    orm_pool_ref(pool);
    orm_pool_unref(j->pool);
    j->pool = pool;
    j->sync = orm_pool_driver(pool)->poll == NULL;
    j->x.conn = NULL;
    j->x.stmt = NULL;
    j->x.rc = 0;
    j->x.rows = 0;
    orm_error_clear(&j->x.err);
    j->phase = WAIT_ACQUIRE;
    j->t0 = orm_clock();
}

/* Calls the waiter at widx with (fd, mode, timeout or nil); k continues
 * after a waiter that yielded. */
static void wait_call(lua_State *L, int widx, int fd, int w, double timeout,
                      lua_KContext ctx, lua_KFunction k)
{
    lua_pushvalue(L, widx);
    lua_pushinteger(L, fd);
    lua_pushstring(L, w == ORM_WAIT_READ ? "r" : w == ORM_WAIT_WRITE ? "w" : "rw");
    if (timeout >= 0) /* a deadline: connect_timeout, acquire_timeout or
                         statement_timeout (orm_conn_deadline_left) */
        lua_pushnumber(L, timeout);
    else
        lua_pushnil(L);
    lua_callk(L, 3, 0, ctx, k);
}

/* The loop, and its continuation after a waiter that yielded. */
static int wait_k(lua_State *L, int status, lua_KContext ctx)
{
    wait_job *j = lua_touserdata(L, (int)ctx);
    int w, r;
    (void)status;
    for (;;) {
        while ((w = wait_advance(j)) != ORM_WAIT_NONE)
            wait_call(L, j->widx, j->fd, w, j->timeout, ctx, wait_k);
        if ((r = wait_finish(L, j)) >= 0)
            return r;
        wait_restart(L, j, (int)ctx);
    }
}

/* Pushes a new job for `pool` (nbinds bound values of room), in a
 * to-be-closed slot, with the waiter at widx; *jidx receives its index. */
static wait_job *wait_job_new(lua_State *L, orm_pool *pool, int nbinds,
                              int widx, int *jidx)
{
    wait_job *j = lua_newuserdatauv(L, sizeof *j + (size_t)nbinds *
                                               sizeof(orm_value), 0);
    memset(j, 0, sizeof *j);
    j->phase = WAIT_DONE;
    luaL_setmetatable(L, WAIT_JOB);
    *jidx = lua_gettop(L);
    lua_toclose(L, *jidx);
    orm_pool_ref(pool);
    j->pool = pool;
    orm_error_clear(&j->x.err);
    j->widx = widx;
    return j;
}

int orm_lua_run_wait(lua_State *L, int tidx, const char *sql, size_t len,
                     const orm_value *binds, int n, orm_lua_mode mode, int hyd,
                     orm_lua_post post)
{
    int widx = lua_gettop(L), jidx;
    orm_conn *held;
    orm_pool *pool;
    wait_job *j;
    tidx = lua_absindex(L, tidx);
    hyd = hyd ? lua_absindex(L, hyd) : 0;
    pool = orm_lua_target_pool(L, tidx, &held);
    j = wait_job_new(L, pool, n, widx, &jidx);
    j->x.mode = mode;
    j->sql = sql;
    j->len = len;
    j->n = n;
    if (n > 0)
        memcpy(j->binds, binds, (size_t)n * sizeof *binds);
    j->tidx = tidx;
    j->hyd = hyd;
    j->post = post;
    j->sync = orm_pool_driver(pool)->poll == NULL;
    j->x.conn = held;
    j->acquired = held == NULL;
    j->phase = held == NULL ? WAIT_ACQUIRE : WAIT_START;
    j->t0 = orm_clock();
    return wait_k(L, LUA_OK, (lua_KContext)jidx);
}

/* {==== pool:acquire() with a waiter ====} */

int orm_lua_acquire_wait(lua_State *L, int pidx, int cidx)
{
    int widx = lua_gettop(L), jidx;
    orm_conn *held;
    orm_pool *pool = orm_lua_target_pool(L, pidx, &held);
    wait_job *j = wait_job_new(L, pool, 0, widx, &jidx);
    j->tidx = pidx;
    j->cidx = cidx;
    j->acquire_only = 1;
    j->acquired = 1;
    j->phase = WAIT_ACQUIRE;
    return wait_k(L, LUA_OK, (lua_KContext)jidx);
}

/* {==== pool:ping() with a waiter ====} */

int orm_lua_ping_wait(lua_State *L, int pidx)
{
    int widx = lua_gettop(L), jidx;
    orm_conn *held;
    orm_pool *pool = orm_lua_target_pool(L, pidx, &held);
    wait_job *j = wait_job_new(L, pool, 0, widx, &jidx);
    j->tidx = pidx;
    j->ping_only = 1;
    j->acquired = 1;
    j->sync = orm_pool_driver(pool)->ping_start == NULL;
    j->phase = WAIT_ACQUIRE;
    return wait_k(L, LUA_OK, (lua_KContext)jidx);
}

/* {==== conn:begin() / commit() / rollback() with a waiter ====} */

#define WAIT_TX "ormed.wait_tx"

typedef struct wait_tx {
    orm_conn *conn;   /* NULL once nothing is in flight */
    orm_tx_op op;
    int cidx, widx;
    double t0;
    orm_error err;
} wait_tx;

static int wait_tx_close(lua_State *L)
{
    wait_tx *t = luaL_checkudata(L, 1, WAIT_TX);
    if (t->conn != NULL) /* abandoned in flight: the state is unknown */
        orm_conn_set_broken(t->conn);
    t->conn = NULL;
    return 0;
}

static int wait_tx_k(lua_State *L, int status, lua_KContext ctx)
{
    wait_tx *t = lua_touserdata(L, (int)ctx);
    int w = ORM_WAIT_NONE, rc;
    orm_conn *c = t->conn;
    double left;
    (void)status;
    while ((rc = orm_conn_poll_left(c, &w, &left, &t->err)) == ORM_OK &&
           w != ORM_WAIT_NONE)
        wait_call(L, t->widx, orm_conn_socket(c), w, left, ctx, wait_tx_k);
    t->conn = NULL;
    rc = orm_conn_tx_done(c, t->op, rc, &t->err);
    return orm_lua_tx_end(L, t->cidx, rc, &t->err, t->t0);
}

int orm_lua_tx_wait(lua_State *L, int cidx, orm_tx_op op)
{
    int widx = lua_gettop(L), tidx, rc;
    orm_conn *c = orm_lua_conn_of(L, cidx);
    wait_tx *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, WAIT_TX);
    tidx = lua_gettop(L);
    lua_toclose(L, tidx);
    t->op = op;
    t->cidx = cidx;
    t->widx = widx;
    t->t0 = orm_clock();
    orm_error_clear(&t->err);
    rc = orm_conn_tx_start(c, op, &t->err);
    if (rc == ORM_OK) {
        rc = orm_conn_command_start(c, orm_conn_tx_sql(c), &t->err);
        if (rc == ORM_OK) {
            t->conn = c;
            return wait_tx_k(L, LUA_OK, (lua_KContext)tidx);
        }
        rc = orm_conn_tx_done(c, op, rc, &t->err);
    }
    return orm_lua_tx_end(L, cidx, rc, &t->err, t->t0);
}

/* {==== a new pool's min connections, opened through the waiter ====} */

#define WAIT_FILL "ormed.pool_fill"

/* orm_lua_fill_wait's guard (to-be-closed): user value 1 the pool, 2 the
 * connections checked out so far; gives them back, and closes the pool
 * unless it is `done`. */
typedef struct wait_fill {
    int done;
    int got, want;  /* connections checked out, to check out */
} wait_fill;

static int wait_fill_close(lua_State *L)
{
    wait_fill *f = luaL_checkudata(L, 1, WAIT_FILL);
    int i, n;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 2);
    n = lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : 0;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        lua_getfield(L, -1, "release");
        lua_insert(L, -2);
        lua_pcall(L, 1, 0, 0);
    }
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 2);
    if (!f->done) {
        f->done = 1;
        lua_getiuservalue(L, 1, 1);
        lua_getfield(L, -1, "close");
        lua_insert(L, -2);
        lua_pcall(L, 1, 0, 0);
    }
    return 0;
}

/* The stack while filling: ctx the pool, ctx + 1 the guard, ctx + 2 the
 * connections checked out (the last one on top when resumed). */
static int wait_fill_k(lua_State *L, int status, lua_KContext ctx)
{
    int pidx = (int)ctx;
    wait_fill *f = lua_touserdata(L, pidx + 1);
    if (status == LUA_YIELD) /* the checkout yielded: its conn on top */
        lua_rawseti(L, pidx + 2, ++f->got);
    while (f->got < f->want) {
        lua_getfield(L, pidx, "acquire"); /* a new one: none is idle */
        lua_pushvalue(L, pidx);
        lua_callk(L, 1, 1, ctx, wait_fill_k);
        lua_rawseti(L, pidx + 2, ++f->got);
    }
    f->done = 1;
    lua_closeslot(L, pidx + 1); /* back in the pool, idle */
    lua_pushvalue(L, pidx);
    return 1;
}

int orm_lua_fill_wait(lua_State *L, int pidx, int min)
{
    wait_fill *f;
    pidx = lua_absindex(L, pidx);
    lua_settop(L, pidx);
    f = lua_newuserdatauv(L, sizeof *f, 2);
    f->done = 0;
    f->got = 0;
    f->want = min;
    luaL_setmetatable(L, WAIT_FILL);
    lua_pushvalue(L, pidx);
    lua_setiuservalue(L, pidx + 1, 1);
    lua_toclose(L, pidx + 1);
    lua_createtable(L, min, 0);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, pidx + 1, 2);
    return wait_fill_k(L, LUA_OK, (lua_KContext)pidx);
}

/* {==== a bulk load's steps with a waiter ====} */

#define WAIT_COPY "ormed.wait_copy"

typedef struct wait_copy {
    orm_conn *conn;   /* NULL once nothing is in flight */
    double t0;
    int64_t rows;     /* the end's answer */
    orm_error err;
} wait_copy;

/* __close and __gc: a step abandoned in flight leaves the connection
 * unusable. */
static int wait_copy_close(lua_State *L)
{
    wait_copy *t = luaL_checkudata(L, 1, WAIT_COPY);
    if (t->conn != NULL) {
        orm_conn_set_broken(t->conn);
        orm_conn_copy_nonblocking(t->conn, 0);
    }
    t->conn = NULL;
    return 0;
}

/* The stack of wait_copy_fn: 1 the conn target, 2 the step, 3 the COPY
 * statement, 4 the load's clock, 5 the probe or the rows, 6 n, 7 the
 * waiter, 8 the state (ctx). */
static int wait_copy_k(lua_State *L, int status, lua_KContext ctx)
{
    wait_copy *t = lua_touserdata(L, (int)ctx);
    orm_conn *c = t->conn;
    int w = ORM_WAIT_NONE, rc = ORM_OK, op = (int)lua_tointeger(L, 2);
    (void)status;
    if (c != NULL) {
        double left;
        while ((rc = orm_conn_poll_left(c, &w, &left, &t->err)) == ORM_OK &&
               w != ORM_WAIT_NONE)
            wait_call(L, 7, orm_conn_socket(c), w, left, ctx, wait_copy_k);
        t->conn = NULL;
        orm_conn_copy_nonblocking(c, 0);
    }
    if (rc != ORM_OK || t->err.kind != ORM_OK)
        return orm_lua_copy_fail(L, 1, lua_tostring(L, 3), t->t0, &t->err);
    if (op == ORM_LUA_COPY_BEGIN) {
        lua_pushnumber(L, t->t0);
        return 1;
    }
    if (op == ORM_LUA_COPY_ROWS)
        return 0;
    orm_lua_copy_ended(L, 1, lua_tostring(L, 3), t->t0, t->rows);
    lua_pushinteger(L, (lua_Integer)t->rows);
    return 1;
}

/* (conn, step, copy, t0, probe | rows, n): see orm_lua_copy_push. */
static int wait_copy_fn(lua_State *L)
{
    orm_conn *c = orm_lua_conn_of(L, 1);
    int op = (int)lua_tointeger(L, 2), n = (int)lua_tointeger(L, 6), rc, nb;
    wait_copy *t;
    lua_settop(L, 6);
    if (!orm_lua_waiter(L))
        lua_pushnil(L); /* cannot yield here: the waits block */
    t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, WAIT_COPY);
    lua_toclose(L, 8);
    orm_error_clear(&t->err);
    t->t0 = op == ORM_LUA_COPY_BEGIN ? orm_clock() : lua_tonumber(L, 4);
    nb = !lua_isnil(L, 7) && orm_conn_copy_nonblocking(c, 1);
    if (op == ORM_LUA_COPY_BEGIN)
        rc = orm_conn_copy_begin(c, lua_tostring(L, 5), lua_tostring(L, 3), n,
                                 &t->err);
    else if (op == ORM_LUA_COPY_ROWS)
        rc = orm_conn_copy_rows(c, lua_touserdata(L, 5), n, &t->err);
    else
        rc = orm_conn_copy_end(c, &t->rows, &t->err);
    if (rc == ORM_OK && nb)
        t->conn = c; /* wait_copy_k polls it to its end */
    else if (nb)
        orm_conn_copy_nonblocking(c, 0);
    return wait_copy_k(L, LUA_OK, 8);
}

int orm_lua_copy_push(lua_State *L, int cidx, int op, const char *probe,
                      const char *copy, double t0, const orm_value *vals,
                      int n)
{
    lua_pushcfunction(L, wait_copy_fn);
    lua_pushvalue(L, cidx);
    lua_pushinteger(L, op);
    lua_pushstring(L, copy);
    lua_pushnumber(L, t0);
    if (op == ORM_LUA_COPY_BEGIN)
        lua_pushstring(L, probe);
    else
        lua_pushlightuserdata(L, (void *)vals);
    lua_pushinteger(L, n);
    return 6;
}

int orm_lua_waiter(lua_State *L)
{
    if (!lua_isyieldable(L)) /* the main thread, or under a C call */
        return 0;
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
    lua_getfield(L, LUA_REGISTRYINDEX, WAIT_KEY);
    return 1;
}

void orm_lua_open_wait(lua_State *L)
{
    luaL_newmetatable(L, WAIT_TX);
    lua_pushcfunction(L, wait_tx_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, wait_tx_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    orm_lua_newclass(L, WAIT_FILL, NULL, wait_fill_close);
    orm_lua_newclass(L, WAIT_COPY, NULL, wait_copy_close);
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
