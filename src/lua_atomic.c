/*
 * lua_atomic.c: all-or-nothing groups of statements (orm_lua_atomic_*):
 * a guard in a to-be-closed slot that checks a connection out, begins a
 * transaction (or a savepoint on a connection already in one), commits,
 * and on any other exit rolls back and gives the connection back; the
 * begin, commit and rollback also as calls for the caller to make with
 * lua_callk, so that with a waiter their statements may yield. The steps are the targets' own
 * methods (acquire, begin, commit, rollback, release).
 */
#include "lua_ormed.h"

#define ORM_LUA_ATOMIC "ormed.atomic"

/* A group's guard: its user value 1 is the connection target. */
typedef struct atomic_ud {
    int open;      /* begun, neither committed nor rolled back */
    int acquired;  /* the connection was checked out for the group */
} atomic_ud;

/* Pushes method `name` of the target at idx, then the target. */
static void atomic_method(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    lua_pushvalue(L, idx < 0 ? idx - 1 : idx);
}

/* Calls method `name` of the conn target at cidx with no arguments. */
static void atomic_call(lua_State *L, int cidx, const char *name)
{
    atomic_method(L, cidx, name);
    lua_call(L, 1, 0);
}

/* __close / __gc: rolls back a group still open, returns a connection
 * checked out for it. Never raises. */
static int atomic_close(lua_State *L)
{
    atomic_ud *a = luaL_checkudata(L, 1, ORM_LUA_ATOMIC);
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 1);
    if (a->open) {
        a->open = 0;
        atomic_method(L, 2, "rollback");
        lua_pcall(L, 1, 0, 0);
    }
    if (a->acquired) {
        a->acquired = 0;
        atomic_method(L, 2, "release");
        lua_pcall(L, 1, 0, 0);
    }
    return 0;
}

int orm_lua_atomic_new(lua_State *L)
{
    atomic_ud *a = lua_newuserdatauv(L, sizeof *a, 1);
    a->open = a->acquired = 0;
    luaL_setmetatable(L, ORM_LUA_ATOMIC);
    lua_toclose(L, -1);
    lua_pushnil(L);
    return lua_gettop(L);
}

void orm_lua_atomic_begin(lua_State *L, int cidx, int tidx)
{
    atomic_ud *a = luaL_checkudata(L, cidx - 1, ORM_LUA_ATOMIC);
    if (a->open || a->acquired) { /* begun (orm_lua_atomic_begin_k) */
        lua_getiuservalue(L, cidx - 1, 1);
        lua_replace(L, cidx);
        return;
    }
    if (luaL_testudata(L, tidx, ORM_LUA_CONN)) {
        lua_pushvalue(L, tidx);
    } else {
        atomic_method(L, tidx, "acquire");
        lua_call(L, 1, 1);
        a->acquired = 1;
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, cidx - 1, 1);
    lua_replace(L, cidx);
    atomic_call(L, cidx, "begin");
    a->open = 1;
}

/* atomic_begin_fn's continuation: ctx 0 after the checkout (the conn on
 * top), 1 after BEGIN. */
static int atomic_begin_k(lua_State *L, int status, lua_KContext ctx)
{
    atomic_ud *a = lua_touserdata(L, 1);
    (void)status;
    if (ctx == 0) {
        a->acquired = 1;
        lua_setiuservalue(L, 1, 1);
        lua_getiuservalue(L, 1, 1);
        atomic_method(L, -1, "begin");
        lua_remove(L, -3);
        lua_callk(L, 1, 0, 1, atomic_begin_k);
    }
    a->open = 1;
    return 0;
}

/* (guard, target): begins the group, each step called with lua_callk so
 * that with a waiter the checkout and BEGIN may yield. */
static int atomic_begin_fn(lua_State *L)
{
    atomic_ud *a = luaL_checkudata(L, 1, ORM_LUA_ATOMIC);
    if (a->open || a->acquired)
        return 0;
    if (luaL_testudata(L, 2, ORM_LUA_CONN)) {
        lua_pushvalue(L, 2);
        lua_setiuservalue(L, 1, 1);
        atomic_method(L, 2, "begin");
        lua_callk(L, 1, 0, 1, atomic_begin_k);
        return atomic_begin_k(L, LUA_OK, 1);
    }
    atomic_method(L, 2, "acquire");
    lua_callk(L, 1, 1, 0, atomic_begin_k);
    return atomic_begin_k(L, LUA_OK, 0);
}

int orm_lua_atomic_begin_push(lua_State *L, int cidx, int tidx)
{
    lua_pushcfunction(L, atomic_begin_fn);
    lua_pushvalue(L, cidx - 1);
    lua_pushvalue(L, tidx);
    return 2;
}

static int atomic_commit_k(lua_State *L, int status, lua_KContext ctx)
{
    atomic_ud *a = lua_touserdata(L, 1);
    (void)status;
    (void)ctx;
    a->open = 0;
    return 0;
}

/* (guard): commits a begun group, with lua_callk (see above). */
static int atomic_commit_fn(lua_State *L)
{
    atomic_ud *a = luaL_checkudata(L, 1, ORM_LUA_ATOMIC);
    if (!a->open)
        return 0;
    lua_getiuservalue(L, 1, 1);
    atomic_method(L, -1, "commit");
    lua_remove(L, -3);
    lua_callk(L, 1, 0, 0, atomic_commit_k);
    return atomic_commit_k(L, LUA_OK, 0);
}

int orm_lua_atomic_commit_push(lua_State *L, int cidx)
{
    lua_pushcfunction(L, atomic_commit_fn);
    lua_pushvalue(L, cidx - 1);
    return 1;
}

static int atomic_rollback_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)L;
    (void)status; /* a failed ROLLBACK is ignored, as atomic_close does */
    (void)ctx;
    return 0;
}

/* (guard): rolls a begun group back, with lua_pcallk (see above). */
static int atomic_rollback_fn(lua_State *L)
{
    atomic_ud *a = luaL_checkudata(L, 1, ORM_LUA_ATOMIC);
    if (!a->open)
        return 0;
    a->open = 0;
    lua_getiuservalue(L, 1, 1);
    atomic_method(L, -1, "rollback");
    lua_remove(L, -3);
    lua_pcallk(L, 1, 0, 0, 0, atomic_rollback_k);
    return 0;
}

int orm_lua_atomic_rollback_push(lua_State *L, int cidx)
{
    lua_pushcfunction(L, atomic_rollback_fn);
    lua_pushvalue(L, cidx - 1);
    return 1;
}

void orm_lua_atomic_commit(lua_State *L, int cidx)
{
    atomic_ud *a = luaL_checkudata(L, cidx - 1, ORM_LUA_ATOMIC);
    if (a->open) {
        atomic_call(L, cidx, "commit");
        a->open = 0;
    }
    lua_closeslot(L, cidx - 1);
}

void orm_lua_open_atomic(lua_State *L)
{
    orm_lua_newclass(L, ORM_LUA_ATOMIC, NULL, atomic_close);
}
