/*
 * bench/climit_pg.c: the libpq backend of the C limit: PQprepare once,
 * PQexecPrepared with text parameters per run, rows read from the PGresult
 * with the column conversion ormed's driver applies (bool -> boolean,
 * int2/4/8 -> integer, float4/8 -> number, anything else -> string).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "climit.h"

#define PG_BOOLOID 16
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701

enum { K_TEXT, K_BOOL, K_INT, K_FLOAT };

typedef struct pg_param {
    const char *p;   /* value text, or NULL for SQL NULL */
    int inbuf;       /* the text is buf (which moves when params grow) */
    char buf[32];    /* numbers are written here */
} pg_param;

typedef struct pg_st {
    PGconn *pg;
    char name[32];
    int nparams;         /* highest parameter bound */
    int cap;
    pg_param *params;
    const char **vals;
    PGresult *res;
    int row, nrows, ncols;
    unsigned char *kinds;
} pg_st;

static unsigned long pg_counter;

static void pg_ph(luaL_Buffer *b, int n)
{
    char buf[16];
    snprintf(buf, sizeof buf, "$%d", n);
    luaL_addstring(b, buf);
}

static int pg_exec(void *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    int st = PQresultStatus(res);
    PQclear(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
}

static void *pg_prepare(void *db, const char *sql, size_t len)
{
    pg_st *s = calloc(1, sizeof *s);
    PGresult *res;
    (void)len;
    if (s == NULL)
        return NULL;
    s->pg = db;
    snprintf(s->name, sizeof s->name, "cl%lu", ++pg_counter);
    res = PQprepare(db, s->name, sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        free(s);
        return NULL;
    }
    PQclear(res);
    s->row = -1;
    return s;
}

static int pg_grow(pg_st *s, int i)
{
    int cap = s->cap ? s->cap : 8;
    pg_param *p;
    const char **v;
    while (cap < i)
        cap *= 2;
    p = realloc(s->params, (size_t)cap * sizeof *p);
    if (p == NULL)
        return -1;
    s->params = p;
    v = realloc(s->vals, (size_t)cap * sizeof *v);
    if (v == NULL)
        return -1;
    s->vals = v;
    s->cap = cap;
    return 0;
}

static void pg_bind(void *stmt, int i, lua_State *L, int idx)
{
    pg_st *s = stmt;
    pg_param *p;
    if (i > s->cap && pg_grow(s, i) != 0)
        luaL_error(L, "out of memory");
    p = &s->params[i - 1];
    if (i > s->nparams)
        s->nparams = i;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(p->buf, sizeof p->buf, "%lld",
                     (long long)lua_tointeger(L, idx));
        else
            snprintf(p->buf, sizeof p->buf, "%.17g", lua_tonumber(L, idx));
        p->p = NULL;
        p->inbuf = 1;
        return;
    case LUA_TBOOLEAN:
        p->p = lua_toboolean(L, idx) ? "t" : "f";
        break;
    case LUA_TSTRING:
        p->p = lua_tostring(L, idx);
        break;
    default:
        p->p = NULL;
    }
    p->inbuf = 0;
}

static int pg_kind(Oid t)
{
    switch (t) {
    case PG_BOOLOID:
        return K_BOOL;
    case PG_INT2OID:
    case PG_INT4OID:
    case PG_INT8OID:
        return K_INT;
    case PG_FLOAT4OID:
    case PG_FLOAT8OID:
        return K_FLOAT;
    default:
        return K_TEXT;
    }
}

static int pg_run(pg_st *s)
{
    int i, st;
    for (i = 0; i < s->nparams; i++)
        s->vals[i] = s->params[i].inbuf ? s->params[i].buf : s->params[i].p;
    s->res = PQexecPrepared(s->pg, s->name, s->nparams, s->vals, NULL, NULL,
                            0);
    st = PQresultStatus(s->res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return CL_ERROR;
    s->nrows = PQntuples(s->res);
    s->ncols = PQnfields(s->res);
    free(s->kinds);
    s->kinds = malloc((size_t)s->ncols + 1);
    if (s->kinds == NULL)
        return CL_ERROR;
    for (i = 0; i < s->ncols; i++)
        s->kinds[i] = (unsigned char)pg_kind(PQftype(s->res, i));
    s->row = -1;
    return CL_DONE;
}

static int pg_step(void *stmt)
{
    pg_st *s = stmt;
    if (s->res == NULL && pg_run(s) == CL_ERROR)
        return CL_ERROR;
    if (s->row + 1 >= s->nrows)
        return CL_DONE;
    s->row++;
    return CL_ROW;
}

static int pg_ncols(void *stmt)
{
    return ((pg_st *)stmt)->ncols;
}

static const char *pg_colname(void *stmt, int i)
{
    return PQfname(((pg_st *)stmt)->res, i);
}

static int pg_push(lua_State *L, void *stmt, int i)
{
    pg_st *s = stmt;
    const char *v;
    if (PQgetisnull(s->res, s->row, i))
        return 0;
    v = PQgetvalue(s->res, s->row, i);
    switch (s->kinds[i]) {
    case K_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    case K_INT:
        lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
        break;
    case K_FLOAT:
        lua_pushnumber(L, strtod(v, NULL));
        break;
    default:
        lua_pushlstring(L, v, (size_t)PQgetlength(s->res, s->row, i));
    }
    return 1;
}

static void pg_reset(void *stmt)
{
    pg_st *s = stmt;
    PQclear(s->res);
    s->res = NULL;
    s->nparams = 0;
}

static void pg_finalize(void *stmt)
{
    pg_st *s = stmt;
    char sql[64];
    pg_reset(s);
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
    PQclear(PQexec(s->pg, sql));
    free(s->kinds);
    free(s->params);
    free(s->vals);
    free(s);
}

static const char *pg_errmsg(void *db)
{
    return PQerrorMessage(db);
}

static void pg_close(void *db)
{
    PQfinish(db);
}

static const cl_ops pg_ops = {
    "postgres", pg_ph,    pg_exec,     pg_prepare, pg_bind,
    pg_step,    pg_ncols, pg_colname,  pg_push,    pg_reset,
    pg_finalize, pg_errmsg, pg_close,
};

/* climit.pg_open(conninfo): a conninfo string or a postgres:// URL. */
static int pg_open(lua_State *L)
{
    PGconn *pg = PQconnectdb(luaL_checkstring(L, 1));
    if (PQstatus(pg) != CONNECTION_OK) {
        lua_pushstring(L, PQerrorMessage(pg));
        PQfinish(pg);
        return lua_error(L);
    }
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    cl_newdb(L, &pg_ops, pg);
    return 1;
}

/* A growable byte buffer for COPY data. */
typedef struct pg_cbuf {
    char *p;
    size_t len, cap;
} pg_cbuf;

static void pg_cput(lua_State *L, pg_cbuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512 * 1024;
        char *p;
        while (cap < b->len + n)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            luaL_error(L, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Appends the Lua value at idx in COPY's text format. */
static void pg_copy_value(lua_State *L, pg_cbuf *b, int idx)
{
    char num[40];
    size_t n, i, run;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            n = (size_t)snprintf(num, sizeof num, "%lld",
                                 (long long)lua_tointeger(L, idx));
        else
            n = (size_t)snprintf(num, sizeof num, "%.17g", lua_tonumber(L, idx));
        pg_cput(L, b, num, n);
        return;
    case LUA_TBOOLEAN:
        pg_cput(L, b, lua_toboolean(L, idx) ? "t" : "f", 1);
        return;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        for (i = 0, run = 0; i < n; i++) {
            const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t"
                            : s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : NULL;
            if (esc == NULL)
                continue;
            pg_cput(L, b, s + run, i - run);
            pg_cput(L, b, esc, 2);
            run = i + 1;
        }
        pg_cput(L, b, s + run, n - run);
        return;
    default:
        pg_cput(L, b, "\\N", 2);
    }
}

/* climit.pg_copy(db, table, cols, rows): BEGIN, COPY, COMMIT. */
static int pg_copy(lua_State *L)
{
    PGconn *pg = cl_handle(L, 1, &pg_ops);
    int ncols, n, r, c, ok;
    pg_cbuf b = {NULL, 0, 0};
    PGresult *res;
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    ncols = (int)lua_rawlen(L, 3);
    n = (int)lua_rawlen(L, 4);
    if (pg_exec(pg, "BEGIN") != 0)
        return luaL_error(L, "postgres: %s", PQerrorMessage(pg));
    lua_pushfstring(L, "COPY %s (", luaL_checkstring(L, 2));
    for (c = 1; c <= ncols; c++) {
        lua_rawgeti(L, 3, c);
        lua_pushstring(L, c < ncols ? ", " : ") FROM STDIN");
    }
    lua_concat(L, 2 * ncols + 1);
    res = PQexec(pg, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        PQclear(res);
        return luaL_error(L, "postgres: %s", PQerrorMessage(pg));
    }
    PQclear(res);
    for (r = 1; r <= n; r++) {
        lua_rawgeti(L, 4, r);
        for (c = 1; c <= ncols; c++) {
            if (c > 1)
                pg_cput(L, &b, "\t", 1);
            lua_rawgeti(L, 3, c);
            lua_rawget(L, -2);
            pg_copy_value(L, &b, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        pg_cput(L, &b, "\n", 1);
        if (b.len >= 256 * 1024 || r == n) {
            if (PQputCopyData(pg, b.p, (int)b.len) != 1)
                return luaL_error(L, "postgres: %s", PQerrorMessage(pg));
            b.len = 0;
        }
    }
    free(b.p);
    if (PQputCopyEnd(pg, NULL) != 1)
        return luaL_error(L, "postgres: %s", PQerrorMessage(pg));
    res = PQgetResult(pg);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    while ((res = PQgetResult(pg)) != NULL)
        PQclear(res);
    if (!ok || pg_exec(pg, "COMMIT") != 0)
        return luaL_error(L, "postgres: %s", PQerrorMessage(pg));
    lua_pushinteger(L, n);
    return 1;
}

void cl_open_pg(lua_State *L)
{
    lua_pushcfunction(L, pg_open);
    lua_setfield(L, -2, "pg_open");
    lua_pushcfunction(L, pg_copy);
    lua_setfield(L, -2, "pg_copy");
}
