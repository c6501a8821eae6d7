/*
 * bench/climit_sqlite.c: the sqlite3 backend of the C limit: prepared
 * statements stepped directly; INTEGER columns declared BOOLEAN/BOOL become
 * Lua booleans (as ormed's driver does), noted once per statement.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "climit.h"

typedef struct sq_st {
    sqlite3_stmt *st;
    int ncols;              /* -1 until the first step */
    unsigned char *isbool;  /* per column */
} sq_st;

static void sq_ph(luaL_Buffer *b, int n)
{
    (void)n;
    luaL_addchar(b, '?');
}

static int sq_exec(void *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void *sq_prepare(void *db, const char *sql, size_t len)
{
    sq_st *s;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        sqlite3_finalize(st);
        return NULL;
    }
    s->st = st;
    s->ncols = -1;
    return s;
}

static void sq_bind(void *stmt, int i, lua_State *L, int idx)
{
    sqlite3_stmt *st = ((sq_st *)stmt)->st;
    size_t n;
    const char *p;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            sqlite3_bind_int64(st, i, lua_tointeger(L, idx));
        else
            sqlite3_bind_double(st, i, lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        sqlite3_bind_int(st, i, lua_toboolean(L, idx));
        break;
    case LUA_TSTRING:
        p = lua_tolstring(L, idx, &n);
        sqlite3_bind_text64(st, i, p, n, SQLITE_STATIC, SQLITE_UTF8);
        break;
    default:
        sqlite3_bind_null(st, i);
    }
}

static void sq_columns(sq_st *s)
{
    int i;
    s->ncols = sqlite3_column_count(s->st);
    s->isbool = calloc((size_t)s->ncols + 1, 1);
    for (i = 0; s->isbool && i < s->ncols; i++) {
        const char *t = sqlite3_column_decltype(s->st, i);
        s->isbool[i] = t && (strcasecmp(t, "BOOLEAN") == 0 ||
                             strcasecmp(t, "BOOL") == 0);
    }
}

static int sq_step(void *stmt)
{
    sq_st *s = stmt;
    int rc;
    if (s->ncols < 0)
        sq_columns(s);
    rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW)
        return CL_ROW;
    return rc == SQLITE_DONE ? CL_DONE : CL_ERROR;
}

static int sq_ncols(void *stmt)
{
    return ((sq_st *)stmt)->ncols;
}

static const char *sq_colname(void *stmt, int i)
{
    return sqlite3_column_name(((sq_st *)stmt)->st, i);
}

static int sq_push(lua_State *L, void *stmt, int i)
{
    sq_st *s = stmt;
    sqlite3_stmt *st = s->st;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        if (s->isbool && s->isbool[i])
            lua_pushboolean(L, sqlite3_column_int64(st, i) != 0);
        else
            lua_pushinteger(L, sqlite3_column_int64(st, i));
        return 1;
    case SQLITE_FLOAT:
        lua_pushnumber(L, sqlite3_column_double(st, i));
        return 1;
    case SQLITE_TEXT:
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, i),
                        (size_t)sqlite3_column_bytes(st, i));
        return 1;
    case SQLITE_BLOB:
        lua_pushlstring(L, sqlite3_column_blob(st, i),
                        (size_t)sqlite3_column_bytes(st, i));
        return 1;
    default:
        return 0;
    }
}

static void sq_reset(void *stmt)
{
    sqlite3_reset(((sq_st *)stmt)->st);
}

static void sq_finalize(void *stmt)
{
    sq_st *s = stmt;
    sqlite3_finalize(s->st);
    free(s->isbool);
    free(s);
}

static const char *sq_errmsg(void *db)
{
    return sqlite3_errmsg(db);
}

static void sq_close(void *db)
{
    sqlite3_close_v2(db);
}

static const cl_ops sq_ops = {
    "sqlite", sq_ph,    sq_exec,     sq_prepare, sq_bind,
    sq_step,  sq_ncols, sq_colname,  sq_push,    sq_reset,
    sq_finalize, sq_errmsg, sq_close,
};

/* climit.sqlite_open(path): ":memory:" for a private in-memory database. */
static int sq_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        lua_pushstring(L, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return lua_error(L);
    }
    cl_newdb(L, &sq_ops, db);
    return 1;
}

void cl_open_sqlite(lua_State *L)
{
    lua_pushcfunction(L, sq_open);
    lua_setfield(L, -2, "sqlite_open");
}
