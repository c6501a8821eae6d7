-- luarocks package of ormed: the C engine (ormed.core) and the Lua layer.
rockspec_format = "3.0"
package = "ormed"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "An ORM for Lua 5.4 with a C engine: models, queries, pools, several databases at once",
  detailed = [[
Models and relations declared in Lua, queries compiled in C with bound values,
connection pools, transactions with savepoints, named connections, tenants,
a schema builder and migrations, on SQLite, PostgreSQL and MySQL/MariaDB.]],
  license = "MIT",
}
-- lua-cjson is optional: ormed.json uses it when it is installed (Debian's
-- lua-cjson, or `luarocks install lua-cjson`) and is pure Lua otherwise.
dependencies = { "lua >= 5.4, < 5.5" }
-- The Makefile finds the headers with pkg-config (sqlite3, libpq,
-- mysqlclient): libpq's and MariaDB's headers live in subfolders
-- (/usr/include/postgresql, /usr/include/mariadb on Debian), so only the
-- libraries are checked here.
external_dependencies = {
  SQLITE = { library = "sqlite3" },
  PQ = { library = "pq" },
  MYSQL = { library = "mysqlclient" },
}
build = {
  type = "make",
  build_variables = { CFLAGS = "$(CFLAGS)", LUA_INCDIR = "$(LUA_INCDIR)" },
  install_variables = { PREFIX = "$(PREFIX)", LUADIR = "$(LUADIR)", LIBDIR = "$(LIBDIR)",
                        BINDIR = "$(BINDIR)" },
  copy_directories = {},
}
