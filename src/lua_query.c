/* src/lua_query.c: placeholder until the query builder lands. */
#include "lua_ormed.h"
void orm_lua_open_query(lua_State *L) { (void)L; }
