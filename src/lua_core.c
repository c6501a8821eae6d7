/*
 * lua_core.c: the module `ormed.core`: its table, orm.Error values raised
 * from engine errors, orm.null and orm.blob, and the conversions between
 * Lua values and the engine's tagged values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lua_ormed.h"
#include "orm_conn.h"

/* {==== errors ====} */

static void aux_setfield_str(lua_State *L, int t, const char *k, const char *v)
{
    if (v == NULL || *v == '\0')
        return;
    t = lua_absindex(L, t);
    lua_pushstring(L, v);
    lua_setfield(L, t, k);
}

int orm_lua_raise(lua_State *L, const orm_error *err, const char *connection,
                  const char *sql)
{
    lua_createtable(L, 0, 6);
    aux_setfield_str(L, -1, "kind", orm_error_kind_name(err->kind));
    lua_pushstring(L, err->message);
    lua_setfield(L, -2, "message");
    aux_setfield_str(L, -1, "connection", connection);
    aux_setfield_str(L, -1, "sql", sql);
    aux_setfield_str(L, -1, "sqlstate", err->sqlstate);
    if (err->code != 0) {
        lua_pushinteger(L, err->code);
        lua_setfield(L, -2, "code");
    }
    luaL_setmetatable(L, ORM_LUA_ERROR);
    return lua_error(L);
}

int orm_lua_argerror(lua_State *L, const char *fmt, ...)
{
    orm_error err;
    va_list ap;
    orm_error_clear(&err);
    err.kind = ORM_E_INVALID_ARGUMENT;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return orm_lua_raise(L, &err, NULL, NULL);
}

/* __tostring of orm.Error: "ormed <kind>: <message> (connection ..., ...)" */
static int error_tostring(lua_State *L)
{
    luaL_Buffer b;
    int extra = 0;
    static const char *const keys[] = {"connection", "sqlstate", "code", NULL};
    int i;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "ormed ");
    lua_getfield(L, 1, "kind");
    luaL_addstring(&b, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    luaL_addstring(&b, ": ");
    lua_getfield(L, 1, "message");
    luaL_addstring(&b, lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    for (i = 0; keys[i]; i++) {
        lua_getfield(L, 1, keys[i]);
        if (lua_isstring(L, -1)) {
            luaL_addstring(&b, extra++ ? ", " : " (");
            luaL_addstring(&b, keys[i]);
            luaL_addchar(&b, ' ');
            luaL_addstring(&b, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    if (extra)
        luaL_addchar(&b, ')');
    lua_getfield(L, 1, "sql");
    if (lua_isstring(L, -1)) {
        size_t n;
        const char *sql = lua_tolstring(L, -1, &n);
        luaL_addstring(&b, " in: ");
        luaL_addlstring(&b, sql, n > 300 ? 300 : n);
        if (n > 300)
            luaL_addstring(&b, "...");
    }
    lua_pop(L, 1);
    luaL_pushresult(&b);
    return 1;
}

/* {==== values ====} */

void orm_lua_pushnull(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

int orm_lua_tovalue(lua_State *L, int idx, orm_value *out, orm_error *err)
{
    size_t n;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        *out = orm_value_null();
        return ORM_OK;
    case LUA_TBOOLEAN:
        *out = orm_value_bool(lua_toboolean(L, idx));
        return ORM_OK;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            *out = orm_value_int((int64_t)lua_tointeger(L, idx));
        else
            *out = orm_value_double((double)lua_tonumber(L, idx));
        return ORM_OK;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        *out = orm_value_text(s, n);
        return ORM_OK;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            *out = orm_value_null();
            return ORM_OK;
        }
        break;
    case LUA_TTABLE:
        if (lua_getmetatable(L, idx)) {
            int isblob;
            luaL_getmetatable(L, ORM_LUA_BLOB);
            isblob = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            if (isblob) {
                lua_getfield(L, idx, "bytes");
                s = lua_tolstring(L, -1, &n);
                lua_pop(L, 1); /* the blob table keeps the string alive */
                if (s != NULL) {
                    *out = orm_value_blob(s, n);
                    return ORM_OK;
                }
            }
        }
        break;
    default:
        break;
    }
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "cannot bind a value of type %s",
                         luaL_typename(L, idx));
}

void orm_lua_pushvalue(lua_State *L, const orm_value *v)
{
    switch (v->type) {
    case ORM_NULL:
        lua_pushnil(L);
        break;
    case ORM_BOOL:
        lua_pushboolean(L, v->u.b);
        break;
    case ORM_INT:
        lua_pushinteger(L, (lua_Integer)v->u.i);
        break;
    case ORM_DOUBLE:
        lua_pushnumber(L, (lua_Number)v->u.d);
        break;
    case ORM_TEXT:
    case ORM_BLOB:
        lua_pushlstring(L, v->u.s.p, v->u.s.n);
        break;
    }
}

void orm_lua_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    if (methods != NULL) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    if (gc != NULL) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}

/* core.blob(s): marks a string to be bound as binary data. */
static int core_blob(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "bytes");
    luaL_setmetatable(L, ORM_LUA_BLOB);
    return 1;
}

static int blob_tostring(lua_State *L)
{
    lua_getfield(L, 1, "bytes");
    return 1;
}

/* core.is_blob(v) */
static int core_is_blob(lua_State *L)
{
    int isblob = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, ORM_LUA_BLOB);
        isblob = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, isblob);
    return 1;
}

/* core.clock(): seconds on a monotonic clock (for durations: the time a
 * migration took, as the `ormed` command prints it). */
static int core_clock(lua_State *L)
{
    lua_pushnumber(L, orm_clock());
    return 1;
}

static void core_setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* Sets t[k] = s on the table on top; nothing when s is NULL. */
static void core_setstr(lua_State *L, const char *k, const char *s)
{
    if (s == NULL)
        return;
    lua_pushstring(L, s);
    lua_setfield(L, -2, k);
}

/* core.dialect(name): the facts of a driver's dialect the Lua layer may
 * need, as a table; nil for an unknown name. */
static int core_dialect(lua_State *L)
{
    const orm_driver *d = orm_driver_find(luaL_checkstring(L, 1));
    if (d == NULL)
        return 0;
    lua_createtable(L, 0, 15);
    lua_pushstring(L, d->dialect->name);
    lua_setfield(L, -2, "name");
    core_setint(L, "max_params", d->dialect->max_params);
    core_setint(L, "insert_batch", d->dialect->insert_batch);
    core_setint(L, "array_in_over", d->dialect->array_in_over);
    lua_pushboolean(L, d->dialect->has_returning);
    lua_setfield(L, -2, "has_returning");
    lua_pushboolean(L, d->dialect->transactional_ddl);
    lua_setfield(L, -2, "transactional_ddl");
    lua_pushstring(L, d->dialect->datetime_sep);
    lua_setfield(L, -2, "datetime_sep");
    lua_pushstring(L, d->dialect->datetime_zone);
    lua_setfield(L, -2, "datetime_zone");
    core_setstr(L, "position_sql", d->dialect->position_sql);
    core_setstr(L, "replay_position_sql", d->dialect->replay_position_sql);
    core_setstr(L, "position_kind", d->dialect->position_kind);
    core_setstr(L, "replica_lag_sql", d->dialect->replica_lag_sql);
    core_setstr(L, "replica_lag_column", d->dialect->replica_lag_column);
    return 1;
}

static const luaL_Reg core_funcs[] = {
    {"blob", core_blob},
    {"dialect", core_dialect},
    {"is_blob", core_is_blob},
    {"clock", core_clock},
    {NULL, NULL},
};

int luaopen_ormed_core(lua_State *L)
{
    luaL_newmetatable(L, ORM_LUA_ERROR);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, "orm.Error");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    luaL_newmetatable(L, ORM_LUA_BLOB);
    lua_pushcfunction(L, blob_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newlib(L, core_funcs);
    orm_lua_pushnull(L);
    lua_setfield(L, -2, "null");
    luaL_getmetatable(L, ORM_LUA_ERROR);
    lua_setfield(L, -2, "Error");
    luaL_getmetatable(L, ORM_LUA_BLOB);
    lua_setfield(L, -2, "Blob");
    orm_lua_open_pool(L);
    orm_lua_open_query(L);
    orm_lua_open_schema(L);
    orm_lua_open_wait(L);
    orm_lua_open_atomic(L);
    return 1;
}
