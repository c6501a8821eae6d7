/*
 * lua_ormed.h: what the files of the Lua binding (src/lua_*.c, the module
 * `ormed.core`) share. Only these files include lua.h.
 *
 * Targets: statements run on a "target", a userdata at some stack index:
 *   ORM_LUA_POOL ("ormed.pool"): a data source's pool; each statement checks
 *       a connection out and returns it.
 *   ORM_LUA_CONN ("ormed.conn"): one checked-out connection (a transaction).
 */
#ifndef LUA_ORMED_H
#define LUA_ORMED_H

#include <lua.h>
#include <lauxlib.h>

#include "orm_buf.h"
#include "orm_driver.h"
#include "orm_error.h"
#include "orm_pool.h"
#include "orm_value.h"

#define ORM_LUA_POOL "ormed.pool"
#define ORM_LUA_CONN "ormed.conn"
#define ORM_LUA_QUERY "ormed.query"
#define ORM_LUA_ERROR "ormed.Error"   /* registry key of orm.Error's metatable */
#define ORM_LUA_BLOB "ormed.Blob"     /* metatable of orm.blob(s) values */

/* How orm_lua_run shapes what it pushes. */
typedef enum orm_lua_mode {
    ORM_LUA_ROWS,   /* a list of row tables (column name -> value) */
    ORM_LUA_FIRST,  /* the first row table, or nil */
    ORM_LUA_VALUE,  /* the first column of the first row, or nil */
    ORM_LUA_COLUMN, /* a list of the first column of every row (NULL -> orm.null) */
    ORM_LUA_EXEC    /* { affected_rows = n, last_insert_id = id|nil } */
} orm_lua_mode;

/* What orm_lua_run_wait makes of the result before returning it (the
 * terminal methods' own shaping, done there since after a waiter that
 * yielded nothing returns to the method). */
typedef enum orm_lua_post {
    ORM_LUA_POST_NONE,     /* as it is */
    ORM_LUA_POST_NUMBER,   /* a numeric string becomes a number (avg) */
    ORM_LUA_POST_EXACT,    /* only an integer string becomes a number: a
                              decimal the decoder kept as text stays text
                              (min, max) */
    ORM_LUA_POST_TOTAL,    /* as EXACT, nil becomes 0 (count, sum) */
    ORM_LUA_POST_EXISTS,   /* a boolean: a nonzero number or a true value */
    ORM_LUA_POST_AFFECTED, /* the result's affected_rows */
    ORM_LUA_POST_LAST_ID   /* the result's last_insert_id */
} orm_lua_post;

/* {==== lua_core.c ====} */

/* Raises an orm.Error built from err, with `connection` and `sql` fields
 * when non-NULL. Never returns. */
int orm_lua_raise(lua_State *L, const orm_error *err, const char *connection,
                  const char *sql);

/* Raises an orm.Error of kind invalid_argument with a formatted message. */
int orm_lua_argerror(lua_State *L, const char *fmt, ...);

/* Converts the Lua value at idx into *out. Strings are borrowed from the
 * Lua stack (keep them there). nil and orm.null -> ORM_NULL, booleans ->
 * ORM_BOOL, integers -> ORM_INT, floats -> ORM_DOUBLE, strings -> ORM_TEXT,
 * orm.blob(s) -> ORM_BLOB. Anything else returns ORM_E_INVALID_ARGUMENT
 * with err filled (naming the Lua type). */
int orm_lua_tovalue(lua_State *L, int idx, orm_value *out, orm_error *err);

/* Pushes v: ORM_NULL -> nil, booleans, integers, numbers, strings. */
void orm_lua_pushvalue(lua_State *L, const orm_value *v);

/* Pushes orm.null (a light userdata NULL). */
void orm_lua_pushnull(lua_State *L);

/* Registers the metatable `name` of a userdata class: __index = methods
 * (none when NULL), and `gc` (when not NULL) as both __gc and __close, so
 * the one idempotent close serves both. Leaves the stack as it was. */
void orm_lua_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction gc);

/* {==== lua_pool.c ====} */

/* The dialect of the target at tidx (raises when it is not a target or is
 * closed). */
const orm_dialect *orm_lua_target_dialect(lua_State *L, int tidx);

/* Runs `sql` with `n` bound values on the target at stack index tidx and
 * pushes one result shaped by `mode`; returns 1. With hyd != 0 (a stack
 * index of a table { key, mt }: [1] a key or nil, [2] a metatable) each
 * row table is "hydrated": with no key the row gets metatable mt; with a
 * key the row is wrapped as setmetatable({ [key] = row }, mt). Records statistics,
 * notifies listeners, raises orm.Error (with connection name and sql) on
 * failure. When a pool target cannot reach its server (connection_failed
 * or connection_lost) and its info table has a `failover` function (a read
 * replica's), the statement runs again on the pool that function returns,
 * which replaces the target in its stack slot. The bytes of binds must
 * stay valid during the call. */
int orm_lua_run(lua_State *L, int tidx, const char *sql, size_t len,
                const orm_value *binds, int n, orm_lua_mode mode, int hyd);

/* The stack index of the hydration table (see orm_lua_run) at idx, or 0
 * when idx holds no table; raises invalid_argument (naming fname) for a
 * table that is not one ([2] not a table, or a number as [1]), which
 * would otherwise set a wrong metatable or key on every row. */
int orm_lua_hydration(lua_State *L, int idx, const char *fname);

/* The parts of orm_lua_run, for the waiting path (lua_wait.c). */
typedef struct orm_lua_runctx {
    orm_conn *conn;
    void *stmt;
    orm_lua_mode mode;
    int rc;           /* last step result; -1 failed before a step, -2 a
                         Lua error is on the stack */
    int64_t rows;     /* rows read */
    orm_error err;
} orm_lua_runctx;

/* The pool of the target at tidx, and in *held the connection a conn
 * target holds (NULL for a pool target). Raises on a closed target. */
orm_pool *orm_lua_target_pool(lua_State *L, int tidx, orm_conn **held);
/* The connection name of the target (NULL when unnamed). */
const char *orm_lua_target_name(lua_State *L, int tidx);
/* Pushes the info table of the target at tidx (checked to be one): name,
 * listeners, node, failover. */
void orm_lua_target_info(lua_State *L, int tidx);
/* target:run(sql, bindings?, mode?, hydrate?) and target:_find(sql, key,
 * hydrate?): the methods of pools and conns (lua_run.c). */
int orm_lua_target_run(lua_State *L);
/* Calls every listener of the target at tidx with one event table
 * { connection, node, sql, bindings, duration_ms, rows, error? }. */
void orm_lua_notify(lua_State *L, int tidx, const char *sql, size_t len,
                    const orm_value *binds, int n, double ms, int64_t rows,
                    const orm_error *err);
int orm_lua_target_find(lua_State *L);
/* Protected (lua_pcall): arguments light userdata orm_lua_runctx, the
 * hydration table or nil; steps the started statement and pushes its
 * result shaped by the mode. */
int orm_lua_run_collect(lua_State *L);
/* Ends a statement: checks the server's transaction state agrees with
 * ormed's (orm_conn_check_tx), returns a connection it checked out,
 * counts the statement and tells listeners. 1 when it succeeded (its
 * result on top), 0 when it failed (nil on top); raises a Lua error the
 * collector caught. */
int orm_lua_run_finish(lua_State *L, int tidx, orm_pool *pool, int acquired,
                       orm_lua_runctx *x, const char *sql, size_t len,
                       const orm_value *binds, int n, double t0);
/* A statement on a pool target failed to reach its server: when the pool's
 * info table has a `failover` function (a read replica's, set by
 * lua/ormed/replicas.lua), calls it with the error kind and message; when
 * it returns another pool, puts that pool in the target's stack slot and
 * returns 1 (run the statement again there), else 0. */
int orm_lua_failover(lua_State *L, int tidx, const orm_error *err);
/* The end of a transaction step on the conn target at cidx: records and
 * reports its statement, then pushes the depth (returns 1) or raises. */
int orm_lua_tx_end(lua_State *L, int cidx, int rc, orm_error *err, double t0);
/* The connection the conn target at cidx holds (raises once released). */
orm_conn *orm_lua_conn_of(lua_State *L, int cidx);

/* Fills the conn userdata at cidx with c, checked out of pool. */
void orm_lua_conn_set(lua_State *L, int cidx, orm_pool *pool, orm_conn *c);

/* {==== lua_wait.c ====} */

/* Pushes the waiter set with orm.set_waiter and returns 1, or pushes
 * nothing and returns 0 when none is set or the running coroutine cannot
 * yield here (the main thread, or under a C call such as a chunk
 * callback): the calls then block as without a waiter. */
int orm_lua_waiter(lua_State *L);

/* As orm_lua_run, for a caller that returns its result straight to Lua
 * (`return orm_lua_run_wait(...)`) while a waiter is set: every wait on a
 * driver with non-blocking calls goes through the waiter, called with
 * lua_callk, so a waiter may yield. binds must stay valid in Lua values
 * on the stack (their strings). Leaves the waiter on the stack. */
int orm_lua_run_wait(lua_State *L, int tidx, const char *sql, size_t len,
                     const orm_value *binds, int n, orm_lua_mode mode, int hyd,
                     orm_lua_post post);
void orm_lua_open_wait(lua_State *L);

/* pool:acquire() while a waiter is set (the waiter on top): checks out a
 * connection for the conn userdata at cidx (of the pool at pidx), waiting
 * for a free one through the waiter, in arrival order, up to
 * acquire_timeout (pool_timeout). Returns 1 with the conn pushed. */
int orm_lua_acquire_wait(lua_State *L, int pidx, int cidx);

/* pool:ping() while a waiter is set (on top), for the pool at pidx:
 * checks a connection out and pings it, each wait through the waiter.
 * Returns 1 with true pushed, or raises as pool:ping(). */
int orm_lua_ping_wait(lua_State *L, int pidx);

/* core.pool_new while a waiter is set (not on the stack), for a driver
 * with open_start: the new pool (made with min 0, then orm_pool_set_min)
 * at pidx, the top of the stack, opens its min connections by checking them out through
 * the waiter (pool:acquire(), called with lua_callk) and back in. Returns
 * 1 with the pool pushed; a failure closes the pool and raises as the
 * checkout does. */
int orm_lua_fill_wait(lua_State *L, int pidx, int min);

/* conn:begin() / commit() / rollback() while a waiter is set (on top) and
 * the driver has non-blocking calls: the statement's wait goes through
 * the waiter. Returns as orm_lua_tx_end. */
int orm_lua_tx_wait(lua_State *L, int cidx, orm_tx_op op);

/* All-or-nothing groups of statements. orm_lua_atomic_new pushes an idle
 * guard, in a to-be-closed slot, and an empty slot above it for the
 * group's connection; it returns the empty slot's index, cidx.
 * orm_lua_atomic_begin(L, cidx, tidx) starts the group on the target at
 * tidx (a pool: a connection is checked out and BEGIN sent; a connection:
 * a savepoint) and puts the connection target in cidx; later calls do
 * nothing. orm_lua_atomic_commit commits a begun group (raising, after a
 * rollback, when COMMIT or RELEASE fails) and closes the guard's slot.
 * Whichever way the caller's frame ends first, the guard rolls a begun
 * group back and returns a checked-out connection. */
int orm_lua_atomic_new(lua_State *L);
void orm_lua_atomic_begin(lua_State *L, int cidx, int tidx);
void orm_lua_atomic_commit(lua_State *L, int cidx);
/* The same steps for a caller whose waits go through the waiter: each
 * pushes a call (the function, then its arguments; returns their number)
 * that sends its statements (the checkout, BEGIN or SAVEPOINT; COMMIT or
 * RELEASE; ROLLBACK or ROLLBACK TO, whose failure it ignores), for the
 * caller to make with lua_callk or lua_pcallk (no result), so it may
 * yield; the caller then calls orm_lua_atomic_begin (which only puts the
 * begun group's connection in cidx) or orm_lua_atomic_commit (which only
 * closes the guard's slot). */
int orm_lua_atomic_begin_push(lua_State *L, int cidx, int tidx);
int orm_lua_atomic_commit_push(lua_State *L, int cidx);
int orm_lua_atomic_rollback_push(lua_State *L, int cidx);

/* Bulk load on the connection target at cidx (a dialect with
 * copy_from_stdin): begin runs the probe and starts `copy`, returning the
 * clock at the start; rows sends nrows rows; end finishes and returns the
 * rows loaded, counting the load as one statement and telling listeners
 * (sql = copy, no bindings). Each raises orm.Error on failure, after
 * counting and reporting it; the load is then over. */
double orm_lua_copy_begin(lua_State *L, int cidx, const char *probe,
                          const char *copy, int ncols);
void orm_lua_copy_rows(lua_State *L, int cidx, const char *copy, double t0,
                       const orm_value *vals, int nrows);
int64_t orm_lua_copy_end(lua_State *L, int cidx, const char *copy, double t0);
/* The ends of those: a failed step (counts it, tells listeners, raises
 * err), and a finished load of `rows` rows (counts it, tells listeners). */
int orm_lua_copy_fail(lua_State *L, int cidx, const char *copy, double t0,
                      const orm_error *err);
void orm_lua_copy_ended(lua_State *L, int cidx, const char *copy, double t0,
                        int64_t rows);

/* A step of a bulk load while a waiter is set (lua_wait.c), pushed as a
 * call (the function, then its arguments; returns their number) for the
 * caller to make with lua_callk or lua_pcallk, so that its round trips go
 * through the waiter and may yield (drivers with copy_nonblocking):
 * ORM_LUA_COPY_BEGIN (probe, ncols = n) returns the clock at its start,
 * ORM_LUA_COPY_ROWS (n rows at vals, which stay valid until it is over)
 * nothing, and ORM_LUA_COPY_END the rows loaded. Failures as the steps
 * above. */
enum { ORM_LUA_COPY_BEGIN, ORM_LUA_COPY_ROWS, ORM_LUA_COPY_END };
int orm_lua_copy_push(lua_State *L, int cidx, int op, const char *probe,
                      const char *copy, double t0, const orm_value *vals,
                      int n);

/* {==== registration: each file adds its functions to the module table
 * at the top of the stack ====} */
void orm_lua_open_pool(lua_State *L);
void orm_lua_open_query(lua_State *L);
void orm_lua_open_schema(lua_State *L);
void orm_lua_open_atomic(lua_State *L);

#endif
