/*
 * bench/climit.h: what the C-limit benchmark module shares between its
 * generic loops (climit.c) and its three backends (climit_sqlite.c,
 * climit_pg.c, climit_mysql.c). A backend is a handful of direct calls into
 * the database's own C API; the loops call them and build the same Lua
 * tables ormed builds (column-name keys made once per result). This is
 * benchmark code: it never runs inside the library.
 */
#ifndef CLIMIT_H
#define CLIMIT_H

#include <lua.h>
#include <lauxlib.h>

#define CL_ROW 1
#define CL_DONE 0
#define CL_ERROR (-1)

typedef struct cl_ops {
    const char *name;
    /* Appends placeholder number n (1-based) to b. */
    void (*ph)(luaL_Buffer *b, int n);
    /* Runs SQL without results; 0 or -1 (errmsg tells why). */
    int (*exec)(void *db, const char *sql);
    /* A statement for sql, or NULL (errmsg tells why). */
    void *(*prepare)(void *db, const char *sql, size_t len);
    /* Binds the Lua value at idx as parameter i (1-based); the value must
     * stay on the stack (or in a table) until the statement is reset. */
    void (*bind)(void *st, int i, lua_State *L, int idx);
    /* Executes (first call) or advances: CL_ROW, CL_DONE or CL_ERROR. */
    int (*step)(void *st);
    int (*ncols)(void *st);
    const char *(*colname)(void *st, int i);
    /* Pushes column i of the current row and returns 1, or pushes nothing
     * and returns 0 for SQL NULL. */
    int (*push)(lua_State *L, void *st, int i);
    /* Ready to bind and run again. */
    void (*reset)(void *st);
    void (*finalize)(void *st);
    const char *(*errmsg)(void *db);
    void (*close)(void *db);
} cl_ops;

/* Pushes a new database userdata owning handle h (closed by ops->close in
 * __gc). */
void cl_newdb(lua_State *L, const cl_ops *ops, void *h);

/* The handle of the open database at idx, which must belong to ops. */
void *cl_handle(lua_State *L, int idx, const cl_ops *ops);

/* Backend registration: each adds its open function to the table on top. */
void cl_open_sqlite(lua_State *L);
void cl_open_pg(lua_State *L);
void cl_open_mysql(lua_State *L);

#endif
