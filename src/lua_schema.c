/* src/lua_schema.c: placeholder until the schema builder lands. */
#include "lua_ormed.h"
void orm_lua_open_schema(lua_State *L) { (void)L; }
