/*
 * drivers/sqlite_dialect.c: the SQLite dialect: everything the engine and the Lua
 * layer need to know about this database's SQL, in one description
 * (orm_dialect, orm_driver.h).
 */
#include <stddef.h>

#include "orm_driver.h"

const orm_dialect orm_sqlite_dialect = {
    .name = "sqlite",
    .quote = '"',
    .placeholder = ORM_PH_QMARK,
    .has_returning = 1,
    .has_ilike = 0,
    .upsert = ORM_UPSERT_ON_CONFLICT,
    .max_params = 32766, /* SQLITE_MAX_VARIABLE_NUMBER since 3.32 */
    .insert_batch = 4096,
    .array_in_over = 0,
    .limit_all = "-1",
    .begin_sql = "BEGIN",
    .empty_insert = " DEFAULT VALUES",
    .transactional_ddl = 1,
    .datetime_sep = "T",
    .datetime_zone = "Z",
    .ddl = {
        .types = {
            [ORM_COL_ID] = "INTEGER PRIMARY KEY AUTOINCREMENT",
            [ORM_COL_STRING] = "VARCHAR",
            [ORM_COL_TEXT] = "TEXT",
            [ORM_COL_INTEGER] = "INTEGER",
            [ORM_COL_BIG_INTEGER] = "INTEGER",
            [ORM_COL_FOREIGN_ID] = "INTEGER",
            [ORM_COL_NUMBER] = "REAL",
            [ORM_COL_DECIMAL] = "NUMERIC",
            [ORM_COL_BOOLEAN] = "BOOLEAN",
            [ORM_COL_JSON] = "TEXT",
            [ORM_COL_DATE] = "DATE",
            [ORM_COL_DATETIME] = "DATETIME",
            [ORM_COL_BLOB] = "BLOB",
        },
        .default_now = " DEFAULT CURRENT_TIMESTAMP",
        .blob_open = "X'",
        .blob_close = "'",
        .table_options = "",
        .alter_keys = 0,
        .add_column_fk_inline = 1,
        .drop_index_on_table = 0,
        .drop_foreign = NULL,
        .rename_table = "ALTER TABLE ",
        .rename_to = " RENAME TO ",
        .drop_one_per_statement = 1,
        .drop_cascade = "",
        .fk_checks_off = "PRAGMA defer_foreign_keys = ON",
        .fk_checks_on = NULL,
        .catalog = {
            [ORM_CAT_HAS_TABLE] = "SELECT 1 AS found FROM sqlite_master WHERE "
                                  "type = 'table' AND name = ?",
            [ORM_CAT_HAS_COLUMN] = "SELECT 1 AS found FROM pragma_table_info(?) "
                                   "WHERE name = ?",
            [ORM_CAT_HAS_INDEX] = "SELECT 1 AS found FROM sqlite_master WHERE "
                                  "type = 'index' AND tbl_name = ? AND name = ?",
            [ORM_CAT_TABLES] = "SELECT name FROM sqlite_master WHERE type = "
                               "'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE "
                               "'\\' ORDER BY name",
            [ORM_CAT_COLUMNS] = "SELECT name FROM pragma_table_info(?) ORDER BY cid",
        },
    },
};
