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
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  SQLITE = { header = "sqlite3.h" },
  PQ = { header = "libpq-fe.h" },
  MYSQL = { header = "mysql.h" },
}
build = {
  type = "make",
  build_variables = { CFLAGS = "$(CFLAGS)" },
  install_variables = { PREFIX = "$(PREFIX)" },
  copy_directories = {},
}
