/*
 * bench/climit.c: the Lua module `climit`, the "C limit" of `make bench`:
 * the same work as each benchmark case done by a plain C loop over the
 * database's own C API (sqlite3, libpq, libmysqlclient; see climit_*.c),
 * building the same Lua tables ormed builds: one table per row with the
 * column names as keys (made once per result), SQL NULL left out, booleans
 * as booleans, and a metatable on each row when one is given (the cheapest
 * possible "model instance").
 *
 *   climit.now()                                   monotonic seconds
 *   climit.sqlite_open(path) / pg_open(conninfo) / mysql_open(host, user,
 *       password, database, port)                  a database handle
 *   climit.exec(db, sql)                           SQL without results
 *   climit.insert(db, table, cols, rows, batch)    rows (list of tables) in
 *       one transaction, `batch` rows per INSERT statement (prepared once)
 *   climit.pg_copy(db, table, cols, rows)          the same through COPY
 *       FROM STDIN (PostgreSQL's fastest bulk load)
 *   climit.select(db, sql, mt?)                    list of row tables
 *   climit.each(db, sql, args, mt?, first?, out?)  runs one prepared
 *       statement once per args[i] (a list of bind values); builds the
 *       first row (first) or the list of rows of each run, stored in
 *       out[i] when out is given; returns rows built, the last result
 *   climit.eager(db, parent_sql, child_sql, pk, fk, rel, pmt?, cmt?)
 *       parents with parent[rel] = list of children, in two statements:
 *       child_sql is completed with "(?, ?, ...)" for the parents' keys
 *   climit.pool_cycle(n)                           n checkouts and returns
 *       of a mutex-guarded connection stack (the floor of a pool)
 *
 * Benchmark code: a memory error raised by Lua mid-loop leaks the statement.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "climit.h"

#define CL_DB "climit.db"

typedef struct cl_db {
    const cl_ops *ops;
    void *h; /* NULL once closed */
} cl_db;

/* {==== handles ====} */

static int db_close(lua_State *L)
{
    cl_db *d = luaL_checkudata(L, 1, CL_DB);
    if (d->h != NULL) {
        d->ops->close(d->h);
        d->h = NULL;
    }
    return 0;
}

void *cl_handle(lua_State *L, int idx, const cl_ops *ops)
{
    cl_db *d = luaL_checkudata(L, idx, CL_DB);
    if (d->h == NULL || d->ops != ops)
        luaL_argerror(L, idx, "an open handle of this backend");
    return d->h;
}

void cl_newdb(lua_State *L, const cl_ops *ops, void *h)
{
    cl_db *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->ops = ops;
    d->h = h;
    luaL_setmetatable(L, CL_DB);
}

static cl_db *aux_db(lua_State *L, int idx)
{
    cl_db *d = luaL_checkudata(L, idx, CL_DB);
    luaL_argcheck(L, d->h != NULL, idx, "database is closed");
    return d;
}

static void *aux_prepare(lua_State *L, cl_db *d, const char *sql, size_t len)
{
    void *st = d->ops->prepare(d->h, sql, len);
    if (st == NULL)
        luaL_error(L, "%s: prepare failed: %s", d->ops->name,
                   d->ops->errmsg(d->h));
    return st;
}

static void aux_fail(lua_State *L, cl_db *d, void *st)
{
    const char *msg;
    lua_pushstring(L, d->ops->errmsg(d->h));
    msg = lua_tostring(L, -1);
    d->ops->finalize(st);
    luaL_error(L, "%s: %s", d->ops->name, msg);
}

/* {==== rows ====} */

/* Pushes the column names of st (after its first step); returns the stack
 * index of the first. */
static int aux_keys(lua_State *L, cl_db *d, void *st, int ncols)
{
    int i, base = lua_gettop(L) + 1;
    luaL_checkstack(L, ncols + 8, "too many columns");
    for (i = 0; i < ncols; i++)
        lua_pushstring(L, d->ops->colname(st, i));
    return base;
}

/* Pushes the current row as a table (keys at keys..keys+ncols-1; metatable
 * at mt when mt != 0). */
static void aux_row(lua_State *L, cl_db *d, void *st, int keys, int ncols,
                    int mt)
{
    int i;
    lua_createtable(L, 0, ncols);
    for (i = 0; i < ncols; i++) {
        lua_pushvalue(L, keys + i);
        if (d->ops->push(L, st, i))
            lua_rawset(L, -3);
        else
            lua_pop(L, 1);
    }
    if (mt) {
        lua_pushvalue(L, mt);
        lua_setmetatable(L, -2);
    }
}

/* Steps st to the end, appending every row to the list at `list`. Returns
 * the row count; keys are pushed (once) at *keys when *keys == 0. */
static lua_Integer aux_rows(lua_State *L, cl_db *d, void *st, int list,
                            int *keys, int *ncols, int mt)
{
    lua_Integer n = 0;
    int rc = d->ops->step(st);
    while (rc == CL_ROW) {
        if (*keys == 0) {
            *ncols = d->ops->ncols(st);
            *keys = aux_keys(L, d, st, *ncols);
        }
        aux_row(L, d, st, *keys, *ncols, mt);
        lua_rawseti(L, list, ++n);
        rc = d->ops->step(st);
    }
    if (rc == CL_ERROR)
        aux_fail(L, d, st);
    return n;
}

static int aux_optmt(lua_State *L, int idx)
{
    return lua_istable(L, idx) ? idx : 0;
}

/* {==== module functions ====} */

static int cl_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int cl_exec(lua_State *L)
{
    cl_db *d = aux_db(L, 1);
    if (d->ops->exec(d->h, luaL_checkstring(L, 2)) != 0)
        return luaL_error(L, "%s: %s", d->ops->name, d->ops->errmsg(d->h));
    return 0;
}

/* The INSERT statement for `rows` rows of the columns in the list at 3. */
static void *aux_insert_stmt(lua_State *L, cl_db *d, int rows, int ncols)
{
    luaL_Buffer b;
    int r, c, n = 0;
    void *st;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "INSERT INTO ");
    luaL_addstring(&b, luaL_checkstring(L, 2));
    luaL_addstring(&b, " (");
    for (c = 1; c <= ncols; c++) {
        if (c > 1)
            luaL_addstring(&b, ", ");
        lua_rawgeti(L, 3, c);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, ") VALUES ");
    for (r = 0; r < rows; r++) {
        luaL_addstring(&b, r ? ", (" : "(");
        for (c = 0; c < ncols; c++) {
            if (c)
                luaL_addstring(&b, ", ");
            d->ops->ph(&b, ++n);
        }
        luaL_addchar(&b, ')');
    }
    luaL_pushresult(&b);
    st = aux_prepare(L, d, lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_pop(L, 1);
    return st;
}

/* Binds rows first..first+count-1 of the list at 4 and runs st. */
static void aux_insert_run(lua_State *L, cl_db *d, void *st, int first,
                           int count, int ncols)
{
    int r, c, p = 0;
    for (r = first; r < first + count; r++) {
        lua_rawgeti(L, 4, r);
        for (c = 1; c <= ncols; c++) {
            lua_rawgeti(L, 3, c);
            lua_rawget(L, -2);
            d->ops->bind(st, ++p, L, -1);
            lua_pop(L, 1); /* the row table keeps strings alive */
        }
        lua_pop(L, 1);
    }
    if (d->ops->step(st) == CL_ERROR)
        aux_fail(L, d, st);
    d->ops->reset(st);
}

/* climit.insert(db, table, cols, rows, batch) */
static int cl_insert(lua_State *L)
{
    cl_db *d = aux_db(L, 1);
    int ncols, n, batch, i;
    void *st;
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    ncols = (int)lua_rawlen(L, 3);
    n = (int)lua_rawlen(L, 4);
    batch = (int)luaL_optinteger(L, 5, 1);
    if (batch < 1)
        batch = 1;
    if (d->ops->exec(d->h, "BEGIN") != 0)
        return luaL_error(L, "%s: %s", d->ops->name, d->ops->errmsg(d->h));
    st = aux_insert_stmt(L, d, batch, ncols);
    for (i = 1; i + batch - 1 <= n; i += batch)
        aux_insert_run(L, d, st, i, batch, ncols);
    d->ops->finalize(st);
    if (i <= n) {
        st = aux_insert_stmt(L, d, n - i + 1, ncols);
        aux_insert_run(L, d, st, i, n - i + 1, ncols);
        d->ops->finalize(st);
    }
    if (d->ops->exec(d->h, "COMMIT") != 0)
        return luaL_error(L, "%s: %s", d->ops->name, d->ops->errmsg(d->h));
    lua_pushinteger(L, n);
    return 1;
}

/* climit.select(db, sql, mt?) */
static int cl_select(lua_State *L)
{
    size_t len;
    cl_db *d = aux_db(L, 1);
    const char *sql = luaL_checklstring(L, 2, &len);
    int mt = aux_optmt(L, 3), keys = 0, ncols = 0, list;
    void *st = aux_prepare(L, d, sql, len);
    lua_newtable(L);
    list = lua_gettop(L);
    aux_rows(L, d, st, list, &keys, &ncols, mt);
    d->ops->finalize(st);
    lua_settop(L, list);
    return 1;
}

/* Binds the values of the list at idx. */
static void aux_bind_list(lua_State *L, cl_db *d, void *st, int idx)
{
    int i, n = (int)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        d->ops->bind(st, i, L, -1);
        lua_pop(L, 1); /* the list keeps strings alive */
    }
}

/* climit.each(db, sql, args, mt?, first?, out?) -> rows built, last */
static int cl_each(lua_State *L)
{
    size_t len;
    cl_db *d = aux_db(L, 1);
    const char *sql = luaL_checklstring(L, 2, &len);
    int mt, first, out, keys = 0, ncols = 0, i, n, last;
    lua_Integer rows = 0;
    void *st;
    luaL_checktype(L, 3, LUA_TTABLE);
    mt = aux_optmt(L, 4);
    first = lua_toboolean(L, 5);
    out = lua_istable(L, 6) ? 6 : 0;
    n = (int)lua_rawlen(L, 3);
    st = aux_prepare(L, d, sql, len);
    lua_pushnil(L);
    last = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        aux_bind_list(L, d, st, lua_gettop(L));
        lua_pop(L, 1); /* args (arg 3) keeps the bound strings alive */
        if (first) {
            int rc = d->ops->step(st);
            if (rc == CL_ERROR)
                aux_fail(L, d, st);
            if (rc == CL_ROW) {
                if (keys == 0) {
                    ncols = d->ops->ncols(st);
                    keys = aux_keys(L, d, st, ncols);
                }
                aux_row(L, d, st, keys, ncols, mt);
                rows++;
            } else
                lua_pushnil(L);
        } else {
            int list;
            lua_newtable(L);
            list = lua_gettop(L);
            rows += aux_rows(L, d, st, list, &keys, &ncols, mt);
            if (keys > list) { /* the keys were pushed above the list */
                lua_pushvalue(L, list);
                lua_remove(L, list);
                keys--;
            }
        }
        if (out) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, out, i);
        }
        lua_replace(L, last);
        d->ops->reset(st);
    }
    d->ops->finalize(st);
    lua_pushinteger(L, rows);
    lua_pushvalue(L, last);
    return 2;
}

/* climit.eager(db, parent_sql, child_sql, pk, fk, rel, pmt?, cmt?) */
static int cl_eager(lua_State *L)
{
    size_t len;
    cl_db *d = aux_db(L, 1);
    const char *psql = luaL_checklstring(L, 2, &len);
    int pmt = aux_optmt(L, 7), cmt = aux_optmt(L, 8);
    int keys = 0, ncols = 0, parents, map, i, n;
    luaL_Buffer b;
    void *st;
    luaL_checkstring(L, 3);
    luaL_checkstring(L, 4);
    luaL_checkstring(L, 5);
    luaL_checkstring(L, 6);
    st = aux_prepare(L, d, psql, len);
    lua_newtable(L);
    parents = lua_gettop(L);
    n = (int)aux_rows(L, d, st, parents, &keys, &ncols, pmt);
    d->ops->finalize(st);
    lua_settop(L, parents);
    lua_createtable(L, 0, n); /* key -> children list */
    map = parents + 1;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, lua_tostring(L, 3));
    luaL_addchar(&b, '(');
    for (i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addstring(&b, ", ");
        d->ops->ph(&b, i);
    }
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    st = aux_prepare(L, d, lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_pop(L, 1);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, parents, i);          /* parent */
        lua_newtable(L);                     /* parent list */
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, lua_tostring(L, 6));
        lua_getfield(L, -2, lua_tostring(L, 4)); /* parent list key */
        lua_pushvalue(L, -1);
        lua_pushvalue(L, -3);
        lua_rawset(L, map);                  /* parent list key */
        d->ops->bind(st, i, L, -1);          /* integers: copied */
        lua_pop(L, 3);
    }
    keys = 0;
    {
        int rc = d->ops->step(st);
        while (rc == CL_ROW) {
            if (keys == 0) {
                ncols = d->ops->ncols(st);
                keys = aux_keys(L, d, st, ncols);
            }
            aux_row(L, d, st, keys, ncols, cmt);  /* child */
            lua_getfield(L, -1, lua_tostring(L, 5));
            lua_rawget(L, map);                   /* child list */
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
            lua_pop(L, 2);
            rc = d->ops->step(st);
        }
        if (rc == CL_ERROR)
            aux_fail(L, d, st);
    }
    d->ops->finalize(st);
    lua_settop(L, parents);
    return 1;
}

/* {==== the floor of a pool ====} */

#define CL_POOL_MAX 10

typedef struct cl_pool {
    pthread_mutex_t mu;
    void *idle[CL_POOL_MAX];
    int nidle;
} cl_pool;

/* climit.pool_cycle(n): n checkouts and returns of a mutex-guarded stack
 * of connections (each return stamps a last-used time, as pools do). */
static int cl_pool_cycle(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1), i;
    static int fake[CL_POOL_MAX];
    cl_pool p;
    double stamp = 0;
    int k;
    pthread_mutex_init(&p.mu, NULL);
    for (k = 0; k < CL_POOL_MAX; k++)
        p.idle[k] = &fake[k];
    p.nidle = CL_POOL_MAX;
    for (i = 0; i < n; i++) {
        void *c;
        struct timespec ts;
        pthread_mutex_lock(&p.mu);
        c = p.idle[--p.nidle];
        pthread_mutex_unlock(&p.mu);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        stamp += (double)ts.tv_nsec;
        pthread_mutex_lock(&p.mu);
        p.idle[p.nidle++] = c;
        pthread_mutex_unlock(&p.mu);
    }
    pthread_mutex_destroy(&p.mu);
    lua_pushinteger(L, n);
    lua_pushnumber(L, stamp);
    return 2;
}

static const luaL_Reg cl_funcs[] = {
    {"now", cl_now},       {"exec", cl_exec},
    {"insert", cl_insert}, {"select", cl_select},
    {"each", cl_each},     {"eager", cl_eager},
    {"close", db_close},   {"pool_cycle", cl_pool_cycle},
    {NULL, NULL},
};

int luaopen_climit(lua_State *L)
{
    luaL_newmetatable(L, CL_DB);
    lua_pushcfunction(L, db_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, db_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, cl_funcs);
    cl_open_sqlite(L);
    cl_open_pg(L);
    cl_open_mysql(L);
    return 1;
}
