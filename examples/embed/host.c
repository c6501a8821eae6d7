/*
 * examples/embed/host.c: a C program that embeds Lua 5.4 and ormed. The
 * host opens a Lua state, points package.path/cpath at ormed, runs a Lua
 * script that defines models and queries, and reads the result back in C.
 * Build and run with `make embed` at the repository root.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *const host_script =
    "local orm = require('ormed')\n"
    "local db = orm.DataSource{ name = 'host', driver = orm.SqliteDriverAdapter.memory() }:init()\n"
    "db:schema():create_table('jobs', function(t) t:id(); t:string('name'); t:integer('runs') end)\n"
    "local Job = orm.model('Job', { fields = { id = 'integer', name = 'string', runs = 'integer' } })\n"
    "for i = 1, 3 do Job:create{ name = 'job ' .. i, runs = i * 10 } end\n"
    "return Job:query():sum('runs'), Job:count()\n";

/* Sets package.path / package.cpath from the ORMED_ROOT folder. */
static int host_paths(lua_State *L, const char *root)
{
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pushfstring(L, "%s/build/?.so;", root);
    lua_getfield(L, -2, "cpath");
    lua_concat(L, 2);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    return 0;
}

int main(void)
{
    const char *root = getenv("ORMED_ROOT") ? getenv("ORMED_ROOT") : ".";
    lua_State *L = luaL_newstate();
    int rc = EXIT_SUCCESS;
    if (L == NULL)
        return EXIT_FAILURE;
    luaL_openlibs(L);
    host_paths(L, root);
    if (luaL_loadstring(L, host_script) != LUA_OK ||
        lua_pcall(L, 0, 2, 0) != LUA_OK) {
        /* errors are orm.Error tables: luaL_tolstring uses their __tostring */
        fprintf(stderr, "host: %s\n", luaL_tolstring(L, -1, NULL));
        rc = EXIT_FAILURE;
    } else {
        printf("host: %lld runs over %lld jobs, read back in C\n",
               (long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
    }
    lua_close(L);
    return rc;
}
