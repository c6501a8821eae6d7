/*
 * bench/climit_mysql.c: the libmysqlclient (MariaDB Connector/C) backend
 * of the C limit, over the text protocol: a statement is its SQL with `?`
 * marks; each run splices the escaped values in, sends it with
 * mysql_real_query and streams rows with mysql_use_result, converting as
 * ormed's driver does (TINYINT(1) -> boolean, integer types -> integer,
 * FLOAT/DOUBLE -> number, anything else -> string).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "climit.h"

enum { K_TEXT, K_BOOL, K_INT, K_FLOAT };

typedef struct my_param {
    char *buf;       /* the literal, spliced as is */
    size_t len, cap;
} my_param;

typedef struct my_st {
    MYSQL *db;
    char *sql;           /* with ? marks */
    size_t len;
    int nmarks;
    my_param *params;    /* nmarks */
    char *text;          /* the spliced statement */
    size_t textcap;
    MYSQL_RES *res;
    int ran;
    MYSQL_ROW row;
    unsigned long *lengths;
    int ncols;
    unsigned char *kinds;
    MYSQL_FIELD *fields;
} my_st;

static void my_ph(luaL_Buffer *b, int n)
{
    (void)n;
    luaL_addchar(b, '?');
}

static int my_exec(void *db, const char *sql)
{
    MYSQL_RES *res;
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0)
        return -1;
    res = mysql_store_result(db);
    mysql_free_result(res);
    return 0;
}

static void *my_prepare(void *db, const char *sql, size_t len)
{
    my_st *s = calloc(1, sizeof *s);
    size_t i;
    if (s == NULL)
        return NULL;
    s->db = db;
    s->sql = malloc(len + 1);
    if (s->sql == NULL) {
        free(s);
        return NULL;
    }
    memcpy(s->sql, sql, len + 1);
    s->len = len;
    for (i = 0; i < len; i++)
        s->nmarks += sql[i] == '?';
    s->params = calloc((size_t)s->nmarks + 1, sizeof *s->params);
    if (s->params == NULL) {
        free(s->sql);
        free(s);
        return NULL;
    }
    return s;
}

static int my_reserve(my_param *p, size_t need)
{
    char *b;
    if (need <= p->cap)
        return 0;
    b = realloc(p->buf, need);
    if (b == NULL)
        return -1;
    p->buf = b;
    p->cap = need;
    return 0;
}

static void my_bind(void *stmt, int i, lua_State *L, int idx)
{
    my_st *s = stmt;
    my_param *p;
    size_t n;
    const char *str;
    if (i < 1 || i > s->nmarks)
        luaL_error(L, "mysql: parameter %d out of range", i);
    p = &s->params[i - 1];
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (my_reserve(p, 32) != 0)
            luaL_error(L, "out of memory");
        if (lua_isinteger(L, idx))
            p->len = (size_t)snprintf(p->buf, 32, "%lld",
                                      (long long)lua_tointeger(L, idx));
        else
            p->len = (size_t)snprintf(p->buf, 32, "%.17g",
                                      lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        if (my_reserve(p, 2) != 0)
            luaL_error(L, "out of memory");
        p->buf[0] = lua_toboolean(L, idx) ? '1' : '0';
        p->len = 1;
        break;
    case LUA_TSTRING:
        str = lua_tolstring(L, idx, &n);
        if (my_reserve(p, 2 * n + 3) != 0)
            luaL_error(L, "out of memory");
        p->buf[0] = '\'';
        p->len = 1 + mysql_real_escape_string(s->db, p->buf + 1, str,
                                              (unsigned long)n);
        p->buf[p->len++] = '\'';
        break;
    default:
        if (my_reserve(p, 5) != 0)
            luaL_error(L, "out of memory");
        memcpy(p->buf, "NULL", 4);
        p->len = 4;
    }
}

/* Splices the parameters into s->text; -1 when out of memory. */
static int my_splice(my_st *s, size_t *outlen)
{
    size_t need = s->len + 1, i, o = 0;
    int k = 0;
    for (i = 0; i < (size_t)s->nmarks; i++)
        need += s->params[i].len;
    if (need > s->textcap) {
        char *t = realloc(s->text, need);
        if (t == NULL)
            return -1;
        s->text = t;
        s->textcap = need;
    }
    for (i = 0; i < s->len; i++) {
        if (s->sql[i] == '?') {
            memcpy(s->text + o, s->params[k].buf, s->params[k].len);
            o += s->params[k++].len;
        } else
            s->text[o++] = s->sql[i];
    }
    s->text[o] = '\0';
    *outlen = o;
    return 0;
}

static int my_kind(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
        return f->length == 1 ? K_BOOL : K_INT;
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
        return K_INT;
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
        return K_FLOAT;
    default:
        return K_TEXT;
    }
}

static int my_run(my_st *s)
{
    size_t len;
    int i;
    s->ran = 1;
    if (my_splice(s, &len) != 0 ||
        mysql_real_query(s->db, s->text, (unsigned long)len) != 0)
        return CL_ERROR;
    s->res = mysql_use_result(s->db);
    if (s->res == NULL)
        return mysql_field_count(s->db) == 0 ? CL_DONE : CL_ERROR;
    s->ncols = (int)mysql_num_fields(s->res);
    s->fields = mysql_fetch_fields(s->res);
    free(s->kinds);
    s->kinds = malloc((size_t)s->ncols + 1);
    if (s->kinds == NULL)
        return CL_ERROR;
    for (i = 0; i < s->ncols; i++)
        s->kinds[i] = (unsigned char)my_kind(&s->fields[i]);
    return CL_DONE;
}

static int my_step(void *stmt)
{
    my_st *s = stmt;
    if (!s->ran && my_run(s) == CL_ERROR)
        return CL_ERROR;
    if (s->res == NULL)
        return CL_DONE;
    s->row = mysql_fetch_row(s->res);
    if (s->row == NULL)
        return mysql_errno(s->db) ? CL_ERROR : CL_DONE;
    s->lengths = mysql_fetch_lengths(s->res);
    return CL_ROW;
}

static int my_ncols(void *stmt)
{
    return ((my_st *)stmt)->ncols;
}

static const char *my_colname(void *stmt, int i)
{
    return ((my_st *)stmt)->fields[i].name;
}

static int my_push(lua_State *L, void *stmt, int i)
{
    my_st *s = stmt;
    const char *v = s->row[i];
    if (v == NULL)
        return 0;
    switch (s->kinds[i]) {
    case K_BOOL:
        lua_pushboolean(L, v[0] != '0');
        break;
    case K_INT:
        lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
        break;
    case K_FLOAT:
        lua_pushnumber(L, strtod(v, NULL));
        break;
    default:
        lua_pushlstring(L, v, s->lengths[i]);
    }
    return 1;
}

static void my_reset(void *stmt)
{
    my_st *s = stmt;
    if (s->res != NULL) {
        mysql_free_result(s->res); /* reads what is left */
        s->res = NULL;
    }
    s->ran = 0;
}

static void my_finalize(void *stmt)
{
    my_st *s = stmt;
    int i;
    my_reset(s);
    for (i = 0; i < s->nmarks; i++)
        free(s->params[i].buf);
    free(s->params);
    free(s->kinds);
    free(s->text);
    free(s->sql);
    free(s);
}

static const char *my_errmsg(void *db)
{
    return mysql_error(db);
}

static void my_close(void *db)
{
    mysql_close(db);
}

static const cl_ops my_ops = {
    "mysql", my_ph,    my_exec,     my_prepare, my_bind,
    my_step, my_ncols, my_colname,  my_push,    my_reset,
    my_finalize, my_errmsg, my_close,
};

/* climit.mysql_open(host, user, password, database, port) */
static int my_open(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    const char *user = luaL_optstring(L, 2, NULL);
    const char *pw = luaL_optstring(L, 3, NULL);
    const char *dbname = luaL_optstring(L, 4, NULL);
    unsigned int port = (unsigned int)luaL_optinteger(L, 5, 0);
    MYSQL *db = mysql_init(NULL);
    if (db == NULL)
        return luaL_error(L, "out of memory");
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(db, host, user, pw, dbname, port, NULL, 0) ==
        NULL) {
        lua_pushstring(L, mysql_error(db));
        mysql_close(db);
        return lua_error(L);
    }
    cl_newdb(L, &my_ops, db);
    return 1;
}

void cl_open_mysql(lua_State *L)
{
    lua_pushcfunction(L, my_open);
    lua_setfield(L, -2, "mysql_open");
}
