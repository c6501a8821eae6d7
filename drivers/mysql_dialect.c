/*
 * drivers/mysql_dialect.c: the MySQL / MariaDB dialect: everything the engine and the Lua
 * layer need to know about this database's SQL, in one description
 * (orm_dialect, orm_driver.h).
 */
#include <stddef.h>

#include "orm_driver.h"

const orm_dialect orm_mysql_dialect = {
    .name = "mysql",
    .quote = '`',
    .placeholder = ORM_PH_QMARK,
    .has_returning = 0,
    .has_ilike = 0,
    .upsert = ORM_UPSERT_ON_DUPLICATE,
    .max_params = 65535,
    .insert_batch = 16384,
    .array_in_over = 0,
    .limit_all = "18446744073709551615",
    .begin_sql = "START TRANSACTION",
    .backslash_strings = 1,
    .hash_comments = 1,
    .empty_insert = " () VALUES ()",
    /* MariaDB GTIDs (MASTER_USE_GTID=slave_pos); the replica's position is
     * written in the same transaction as what it replays. */
    .position_sql = "SELECT @@gtid_binlog_pos",
    .replay_position_sql = "SELECT @@gtid_slave_pos",
    .position_kind = "gtid",
    .replica_lag_sql = "SHOW SLAVE STATUS",
    .replica_lag_column = "Seconds_Behind_Master",
    .transactional_ddl = 0,
    .datetime_sep = " ",
    .datetime_zone = "",
    .ddl = {
        .types = {
            [ORM_COL_ID] = "BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY",
            [ORM_COL_STRING] = "VARCHAR",
            [ORM_COL_TEXT] = "TEXT",
            [ORM_COL_INTEGER] = "INT",
            [ORM_COL_BIG_INTEGER] = "BIGINT",
            [ORM_COL_FOREIGN_ID] = "BIGINT UNSIGNED",
            [ORM_COL_NUMBER] = "DOUBLE",
            [ORM_COL_DECIMAL] = "DECIMAL",
            [ORM_COL_BOOLEAN] = "BOOLEAN",
            [ORM_COL_JSON] = "JSON",
            [ORM_COL_DATE] = "DATE",
            [ORM_COL_DATETIME] = "DATETIME(6)",
            [ORM_COL_BLOB] = "LONGBLOB",
        },
        .default_now = " DEFAULT CURRENT_TIMESTAMP(6)",
        .blob_open = "X'",
        .blob_close = "'",
        .table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        .alter_keys = 1,
        .add_column_fk_inline = 0,
        .drop_index_on_table = 1,
        .drop_foreign = " DROP FOREIGN KEY ",
        .rename_table = "RENAME TABLE ",
        .rename_to = " TO ",
        .drop_one_per_statement = 0,
        .drop_cascade = "",
        .fk_checks_off = "SET FOREIGN_KEY_CHECKS = 0",
        .fk_checks_on = "SET FOREIGN_KEY_CHECKS = 1",
        .max_identifier = 64,
        /* information_schema names are utf8mb3, so a bound utf8mb4 name
         * with a 4-byte character ("😀") cannot be compared with them
         * ("Illegal mix of collations"): the catalog column is converted
         * to utf8mb4 (such a name then matches nothing). Table names
         * compare exactly, as the server's own lookup does on Linux;
         * column and index names ignore case, as the server does. */
        .catalog = {
            [ORM_CAT_HAS_TABLE] = "SELECT 1 AS found FROM information_schema.tables "
                                  "WHERE table_schema = DATABASE() AND "
                                  "CONVERT(table_name USING utf8mb4) COLLATE "
                                  "utf8mb4_bin = ? AND table_type = 'BASE TABLE'",
            [ORM_CAT_HAS_COLUMN] = "SELECT 1 AS found FROM information_schema.columns "
                                   "WHERE table_schema = DATABASE() AND "
                                   "CONVERT(table_name USING utf8mb4) COLLATE "
                                   "utf8mb4_bin = ? AND CONVERT(column_name USING "
                                   "utf8mb4) = ?",
            [ORM_CAT_HAS_INDEX] = "SELECT 1 AS found FROM information_schema.statistics "
                                  "WHERE table_schema = DATABASE() AND "
                                  "CONVERT(table_name USING utf8mb4) COLLATE "
                                  "utf8mb4_bin = ? AND CONVERT(index_name USING "
                                  "utf8mb4) = ? LIMIT 1",
            [ORM_CAT_TABLES] = "SELECT table_name AS name FROM information_schema.tables "
                               "WHERE table_schema = DATABASE() AND table_type = "
                               "'BASE TABLE' ORDER BY table_name",
            [ORM_CAT_COLUMNS] = "SELECT column_name AS name FROM "
                                "information_schema.columns WHERE table_schema = "
                                "DATABASE() AND CONVERT(table_name USING utf8mb4) "
                                "COLLATE utf8mb4_bin = ? ORDER BY ordinal_position",
        },
    },
};
