/*
 * lua_query_object.c: the life of a query userdata: core.query (a bare
 * query), the front ends' query objects (core.plain_query: a plain or a
 * model query is the userdata itself, with its source and its own fields
 * as user values), the hand-off of a query
 * object given as a sub-query (core.set_sub_query), the shared compile
 * scratch, and the metamethods: __gc, __close, __tostring, clone.
 */
#include <string.h>

#include "lua_query.h"

/* Pushes a new query userdata with nuv user values and the metatable at
 * stack index mt (0: the bare query's, upvalue 2 of the methods). */
static query_ud *lqo_push_uv(lua_State *L, int nuv, int mt)
{
    query_ud *u = lua_newuserdatauv(L, sizeof *u, nuv);
    u->magic = LQ_MAGIC;
    orm_query_init(&u->q);
    orm_buf_init(&u->own.sql);
    orm_vlist_init(&u->own.binds);
    u->out = &u->own;
    u->running = 0;
    u->holds_scratch = 0;
    u->closed = 0;
    lua_pushvalue(L, mt ? mt : lua_upvalueindex(2));
    lua_setmetatable(L, -2);
    return u;
}

static query_ud *lqo_push(lua_State *L)
{
    return lqo_push_uv(L, 0, 0);
}

void lq_push_source(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    if (t == LUA_TTABLE)
        lua_getfield(L, idx, "_source");
    else if (t == LUA_TUSERDATA && lq_test(L, idx) != NULL)
        lua_getiuservalue(L, idx, 1); /* nil when it has none */
    else
        lua_pushnil(L);
}

/* {==== life cycle ====} */

/* Pushes a new query on the table named at idx (nuv, mt: lqo_push_uv). */
static void lqo_push_on(lua_State *L, int idx, int nuv, int mt)
{
    size_t n;
    const char *t = lq_str(L, idx, "query", "table name", &n);
    orm_error err;
    query_ud *u = lqo_push_uv(L, nuv, mt);
    if (orm_query_set_table(&u->q, t, n, &err) != ORM_OK)
        lq_raise(L, &err);
}

/* core.query(table) */
static int lqo_new(lua_State *L)
{
    lqo_push_on(L, 1, 0, 0);
    return 1;
}

/* A front end's query object: a query userdata with a class (its
 * metatable) and two user values: the source it runs through
 * (core.query_source), and a table of the object's own Lua fields, made
 * when first asked for (core.query_state). */
#define LQO_NUV 2

/* core.plain_query(source, table, mt): a query object of class mt (the
 * plain Query, or a model's query class) on the table, run through
 * source. */
static int lqo_plain(lua_State *L)
{
    luaL_checktype(L, 3, LUA_TTABLE);
    lqo_push_on(L, 2, LQO_NUV, 3);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* core.query_state(q, create?): the table of a query object's own fields
 * (made when create is true; else nil until then); a table q (a model
 * query's view of a group) is its own. */
static int lqo_state(lua_State *L)
{
    int create = lua_toboolean(L, 2);
    lua_settop(L, 1);
    if (lua_type(L, 1) == LUA_TTABLE)
        return 1;
    if (lq_test(L, 1) == NULL)
        return luaL_typeerror(L, 1, ORM_LUA_QUERY);
    if (lua_getiuservalue(L, 1, 2) == LUA_TTABLE || !create)
        return 1;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    if (!lua_setiuservalue(L, 1, 2))
        return luaL_argerror(L, 1, "a bare query has no fields of its own");
    return 1;
}

/* core.query_source(q): the source of a query object (nil for a bare
 * query). */
static int lqo_source(lua_State *L)
{
    lq_push_source(L, 1);
    return 1;
}

/* The registry key of the Lua function that turns a Lua query object
 * given as a sub-query into its C query (Query.sub_query, set by
 * core.set_sub_query). */
static const char LQO_SUB_KEY = 0;

/* core.set_sub_query(fn): fn(outer_source, value, method) -> value */
static int lqo_set_sub(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &LQO_SUB_KEY);
    return 0;
}

/* 1 when the value at idx is a front end's query object (a table with a
 * metatable, or a query userdata whose metatable is not the bare query's),
 * not a list of values or a bare query. */
static int lqo_is_object(lua_State *L, int idx)
{
    int t = lua_type(L, idx), bare;
    if (t != LUA_TTABLE && (t != LUA_TUSERDATA || lq_test(L, idx) == NULL))
        return 0;
    if (!lua_getmetatable(L, idx))
        return 0;
    bare = t == LUA_TUSERDATA && lua_rawequal(L, -1, lua_upvalueindex(2));
    lua_pop(L, 1);
    return !bare;
}

/* A front end's query object at idx is replaced by what the sub-query
 * function makes of it (its C query, once its source is checked), given
 * the source of the query at 1 (nil for a bare query). */
void lq_sub_query(lua_State *L, int idx, const char *fname,
                  lua_KContext ctx, lua_KFunction k)
{
    if (!lqo_is_object(L, idx))
        return;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &LQO_SUB_KEY) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    lq_push_source(L, 1);
    lua_pushvalue(L, idx);
    lua_pushstring(L, fname);
    lua_callk(L, 3, 1, ctx, k); /* may yield: a scope of the sub-query */
    lua_replace(L, idx);
}

static void lqo_out_free(query_out *o)
{
    orm_buf_free(&o->sql);
    orm_vlist_free(&o->binds);
}

static void lqo_release(query_ud *u)
{
    orm_query_clear(&u->q);
    lqo_out_free(&u->own);
    u->out = &u->own;
}

query_scratch *lq_scratch(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int lqo_scratch_gc(lua_State *L)
{
    query_scratch *sc = lua_touserdata(L, 1);
    lqo_out_free(&sc->out);
    return 0;
}

/* The query at 1 for a metamethod (any front end's metatable). */
static query_ud *lqo_meta_self(lua_State *L)
{
    query_ud *u = lq_test(L, 1);
    if (u == NULL)
        luaL_typeerror(L, 1, ORM_LUA_QUERY);
    return u;
}

int lqo_gc(lua_State *L)
{
    query_ud *u = lq_test(L, 1);
    if (u == NULL)
        return 0; /* a model query's view of a group: a table of its class */
    lqo_release(u);
    u->closed = 1;
    return 0;
}

/* __close: also the guard that lq_emit marks to-be-closed around a run,
 * so that a running statement's count drops on every exit path. */
int lqo_close(lua_State *L)
{
    query_ud *u = lq_test(L, 1);
    if (u == NULL)
        return 0; /* a view of a group: its query is not its own */
    if (u->running > 0) {
        u->running--;
        if (u->holds_scratch) {
            lq_scratch(L)->busy = 0;
            u->holds_scratch = 0;
        }
        return 0;
    }
    return lqo_gc(L);
}

/* clone(): a copy; a front end's query object keeps its class and source */
int lqo_clone(lua_State *L)
{
    query_ud *u = lq_check(L, 1), *c;
    orm_error err;
    int bare = lua_toboolean(L, 2);
    lua_settop(L, 1);
    if (!bare)
        lq_push_source(L, 1); /* nil for a bare query */
    if (!bare && !lua_isnil(L, 2) && lua_getmetatable(L, 1)) {
        /* q source mt; a model query's view of a group clones into a
         * model query of its class on the group's filters */
        c = lqo_push_uv(L, LQO_NUV, 3); /* its own fields: the caller's */
        lua_pushvalue(L, 2);
        lua_setiuservalue(L, -2, 1);
    } else {
        lua_settop(L, 1);
        c = lqo_push(L);
    }
    if (orm_query_copy(&c->q, &u->q, &err) != ORM_OK)
        return lq_raise(L, &err);
    return 1;
}

int lqo_table_name(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    lua_pushstring(L, u->q.table ? u->q.table : "");
    return 1;
}

int lqo_tostring(lua_State *L)
{
    query_ud *u = lqo_meta_self(L);
    lua_pushfstring(L, "ormed.query (%s)%s", u->q.table ? u->q.table : "?",
                    u->closed ? " closed" : "");
    return 1;
}

/* Pushes a new shared scratch. */
void lqo_new_scratch(lua_State *L)
{
    query_scratch *sc = lua_newuserdatauv(L, sizeof *sc, 0);
    orm_buf_init(&sc->out.sql);
    orm_vlist_init(&sc->out.binds);
    sc->busy = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lqo_scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
}

/* Sets core.query, core.plain_query, core.set_sub_query,
 * core.query_source and core.query_state on the module table below the
 * scratch (at base) and the bare query metatable (base + 1). */
void lqo_open(lua_State *L, int base)
{
    lua_pushvalue(L, base);
    lua_pushvalue(L, base + 1);
    lua_pushcclosure(L, lqo_plain, 2);
    lua_setfield(L, base - 1, "plain_query");
    lua_pushvalue(L, base);
    lua_pushvalue(L, base + 1);
    lua_pushcclosure(L, lqo_new, 2);
    lua_setfield(L, base - 1, "query");
    lua_pushcfunction(L, lqo_set_sub);
    lua_setfield(L, base - 1, "set_sub_query");
    lua_pushcfunction(L, lqo_source);
    lua_setfield(L, base - 1, "query_source");
    lua_pushcfunction(L, lqo_state);
    lua_setfield(L, base - 1, "query_state");
}

void lq_push_self(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_pushliteral(L, "_q");
        lua_rawget(L, 1);
    } else {
        lua_pushvalue(L, 1);
    }
}
