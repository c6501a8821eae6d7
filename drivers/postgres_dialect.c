/*
 * drivers/postgres_dialect.c: the PostgreSQL dialect: everything the engine and the Lua
 * layer need to know about this database's SQL, in one description
 * (orm_dialect, orm_driver.h).
 */
#include <stddef.h>

#include "postgres.h"

const orm_dialect orm_postgres_dialect = {
    .name = "postgres",
    .quote = '"',
    .placeholder = ORM_PH_DOLLAR,
    .has_returning = 1,
    .has_ilike = 1,
    .upsert = ORM_UPSERT_ON_CONFLICT,
    /* libpq before 17 drops the connection when the server describes more
     * parameters than fit a 30,000-byte message (4 bytes each after a
     * 6-byte header), and every prepared statement is described. */
    .max_params = PG_MAX_PARAMS,
    .insert_batch = 4096,
    .array_in_over = 100,
    .limit_all = NULL,
    .begin_sql = "BEGIN",
    .escape_strings = 1,
    .dollar_quotes = 1,
    .nested_comments = 1,
    .copy_from_stdin = 1,
    .empty_insert = " DEFAULT VALUES",
    /* The insert position, not pg_current_wal_lsn(): with
     * synchronous_commit = off a commit returns before its record is
     * written, and only the insert position is sure to be past it. */
    .position_sql = "SELECT pg_current_wal_insert_lsn()::text",
    .replay_position_sql = "SELECT pg_last_wal_replay_lsn()::text",
    .position_kind = "lsn",
    /* Nothing received and not replayed is no lag, however old the last
     * commit (and nothing received yet, just after a start, too). */
    .replica_lag_sql = "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL "
                       "OR pg_last_wal_receive_lsn() <= "
                       "pg_last_wal_replay_lsn() THEN 0 ELSE "
                       "COALESCE(EXTRACT(EPOCH FROM now() - "
                       "pg_last_xact_replay_timestamp()), 0)::float8 END",
    .transactional_ddl = 1,
    .datetime_sep = "T",
    .datetime_zone = "Z",
    .ddl = {
        .types = {
            [ORM_COL_ID] = "BIGSERIAL PRIMARY KEY",
            [ORM_COL_STRING] = "VARCHAR",
            [ORM_COL_TEXT] = "TEXT",
            [ORM_COL_INTEGER] = "INTEGER",
            [ORM_COL_BIG_INTEGER] = "BIGINT",
            [ORM_COL_FOREIGN_ID] = "BIGINT",
            [ORM_COL_NUMBER] = "DOUBLE PRECISION",
            [ORM_COL_DECIMAL] = "NUMERIC",
            [ORM_COL_BOOLEAN] = "BOOLEAN",
            [ORM_COL_JSON] = "JSONB",
            [ORM_COL_DATE] = "DATE",
            [ORM_COL_DATETIME] = "TIMESTAMP(6)",
            [ORM_COL_BLOB] = "BYTEA",
        },
        .default_now = " DEFAULT CURRENT_TIMESTAMP",
        .blob_open = "decode('",
        .blob_close = "', 'hex')",
        .table_options = "",
        .alter_keys = 1,
        .add_column_fk_inline = 0,
        .drop_index_on_table = 0,
        .drop_foreign = " DROP CONSTRAINT ",
        .rename_table = "ALTER TABLE ",
        .rename_to = " RENAME TO ",
        .drop_one_per_statement = 0,
        .drop_cascade = " CASCADE",
        .fk_checks_off = NULL,
        .fk_checks_on = NULL,
        .max_identifier = 63, /* NAMEDATALEN - 1: longer names are cut */
        .catalog = {
            [ORM_CAT_HAS_TABLE] = "SELECT 1 AS found FROM information_schema.tables "
                                  "WHERE table_schema = current_schema() AND "
                                  "table_name = ? AND table_type = 'BASE TABLE'",
            [ORM_CAT_HAS_COLUMN] = "SELECT 1 AS found FROM information_schema.columns "
                                   "WHERE table_schema = current_schema() AND "
                                   "table_name = ? AND column_name = ?",
            [ORM_CAT_HAS_INDEX] = "SELECT 1 AS found FROM pg_indexes WHERE "
                                  "schemaname = current_schema() AND tablename = ? "
                                  "AND indexname = ?",
            [ORM_CAT_TABLES] = "SELECT table_name::text AS name FROM "
                               "information_schema.tables WHERE table_schema = "
                               "current_schema() AND table_type = 'BASE TABLE' "
                               "ORDER BY table_name",
            [ORM_CAT_COLUMNS] = "SELECT column_name::text AS name FROM "
                                "information_schema.columns WHERE table_schema = "
                                "current_schema() AND table_name = ? "
                                "ORDER BY ordinal_position",
        },
    },
};
