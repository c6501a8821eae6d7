/*
 * orm_driver.h: the contract between the engine and a database driver.
 * A driver (drivers/<name>.c) fills one `orm_driver` vtable and one
 * `orm_dialect`; nothing above the drivers includes a database's header.
 *
 * Threading: a driver connection and its statements are used by one thread
 * at a time (the pool guarantees it); drivers keep no global mutable state.
 */
#ifndef ORM_DRIVER_H
#define ORM_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "orm_error.h"
#include "orm_value.h"

/* Where to connect. Strings may be NULL (= not given); the driver copies
 * what it needs during open(). */
typedef struct orm_params {
    const char *driver;   /* "sqlite", "postgres", "mysql" */
    const char *host;     /* server host (default 127.0.0.1 / localhost) */
    int port;             /* 0 = driver default */
    const char *database; /* database name (server drivers) */
    const char *user;
    const char *password; /* never copied into an error message */
    const char *socket;   /* unix socket path (mysql) or socket dir (postgres) */
    const char *sslmode;  /* postgres sslmode */
    const char *options;  /* postgres options / extra conninfo */
    const char *path;     /* sqlite file path */
    int memory;           /* sqlite: 1 = private in-memory database */
    int timeout;          /* connect timeout in seconds, 0 = driver default
                             (SQLite: the busy timeout) */
    double statement_timeout; /* seconds each round trip of a statement
                             may take before the client cancels it
                             (query_timeout); 0 = none */
    int unnamed;          /* postgres: 1 = no named prepared statements (every
                             statement goes unnamed, nothing stays on the
                             server between statements: for PgBouncer in
                             transaction mode) */
} orm_params;

typedef enum orm_placeholder {
    ORM_PH_QMARK,  /* ?        (SQLite, MySQL) */
    ORM_PH_DOLLAR  /* $1, $2.. (PostgreSQL) */
} orm_placeholder;

typedef enum orm_upsert_style {
    ORM_UPSERT_ON_CONFLICT,  /* INSERT ... ON CONFLICT (cols) DO UPDATE SET c = excluded.c */
    ORM_UPSERT_ON_DUPLICATE  /* INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c) */
} orm_upsert_style;

/* Column types of the schema builder; each dialect names them (orm_ddl). */
typedef enum orm_coltype {
    ORM_COL_ID,          /* INTEGER PRIMARY KEY AUTOINCREMENT / BIGSERIAL
                            PRIMARY KEY / BIGINT UNSIGNED AUTO_INCREMENT
                            PRIMARY KEY */
    ORM_COL_STRING,      /* VARCHAR(length), length 255 by default */
    ORM_COL_TEXT,        /* TEXT */
    ORM_COL_INTEGER,     /* INTEGER / INTEGER / INT */
    ORM_COL_BIG_INTEGER, /* INTEGER / BIGINT / BIGINT */
    ORM_COL_FOREIGN_ID,  /* INTEGER / BIGINT / BIGINT UNSIGNED: matches id */
    ORM_COL_NUMBER,      /* REAL / DOUBLE PRECISION / DOUBLE */
    ORM_COL_DECIMAL,     /* NUMERIC(p,s) / NUMERIC(p,s) / DECIMAL(p,s),
                            8,2 by default */
    ORM_COL_BOOLEAN,     /* BOOLEAN everywhere (TINYINT(1) on MySQL) */
    ORM_COL_JSON,        /* TEXT / JSONB / JSON */
    ORM_COL_DATE,        /* DATE */
    ORM_COL_DATETIME,    /* DATETIME / TIMESTAMP(6) / DATETIME(6) */
    ORM_COL_BLOB         /* BLOB / BYTEA / LONGBLOB */
} orm_coltype;

#define ORM_COLTYPE_COUNT (ORM_COL_BLOB + 1)

/* Catalog queries of the schema builder; each dialect writes them. */
typedef enum orm_catalog {
    ORM_CAT_HAS_TABLE,  /* (table) -> a row when the table exists */
    ORM_CAT_HAS_COLUMN, /* (table, column) -> a row when it exists */
    ORM_CAT_HAS_INDEX,  /* (table, index) -> a row when it exists */
    ORM_CAT_TABLES,     /* () -> rows { name }, the base tables, sorted */
    ORM_CAT_COLUMNS     /* (table) -> rows { name }, in table order */
} orm_catalog;

#define ORM_CATALOG_COUNT (ORM_CAT_COLUMNS + 1)

/* What differs between databases in DDL (the schema builder, orm_ddl.c). */
typedef struct orm_ddl {
    const char *types[ORM_COLTYPE_COUNT]; /* SQL type of each orm_coltype;
                                             STRING gets (n), DECIMAL (p,s) */
    const char *default_now;       /* DEFAULT clause of use_current() */
    const char *blob_open;         /* a blob literal: blob_open hex blob_close */
    const char *blob_close;
    const char *table_options;     /* after CREATE TABLE t (...), or "" */
    int alter_keys;                /* ALTER TABLE adds primary and foreign
                                      keys and drops foreign keys */
    int add_column_fk_inline;      /* ADD COLUMN carries its foreign key as
                                      a column constraint */
    int drop_index_on_table;       /* DROP INDEX i ON t */
    const char *drop_foreign;      /* " DROP FOREIGN KEY " / " DROP CONSTRAINT " */
    const char *rename_table;      /* "RENAME TABLE " / "ALTER TABLE " */
    const char *rename_to;         /* " TO " / " RENAME TO " */
    int drop_one_per_statement;    /* DROP TABLE takes one table */
    const char *drop_cascade;      /* after DROP TABLE a, b: " CASCADE" or "" */
    const char *fk_checks_off;     /* before dropping every table, or NULL */
    const char *fk_checks_on;      /* after, or NULL */
    const char *catalog[ORM_CATALOG_COUNT]; /* by orm_catalog; ? = bound */
    int max_identifier;            /* longest name in bytes (0: no limit):
                                      longer table and column names are
                                      refused, longer index and key names
                                      shortened with a hash of the whole */
} orm_ddl;

/* What differs between SQL dialects; the compiler reads only this. Each
 * driver defines one, with designated initializers, in its own file. */
typedef struct orm_dialect {
    const char *name;              /* "sqlite", "postgres", "mysql" */
    char quote;                    /* identifier quote: '"' or '`' */
    orm_placeholder placeholder;
    int has_returning;             /* INSERT ... RETURNING supported */
    int has_ilike;                 /* ILIKE exists (else LOWER(a) LIKE LOWER(b)) */
    orm_upsert_style upsert;
    int max_params;                /* bound parameters one statement takes;
                                      more raise invalid_argument */
    int insert_batch;              /* bound values per multi-row INSERT: the
                                      measured best statement size */
    int array_in_over;             /* 0, or: a where_in list longer than this
                                      goes as one array parameter
                                      (col = ANY(?) / col <> ALL(?)) */
    const char *limit_all;         /* LIMIT value meaning "no limit" when only
                                      OFFSET is given, or NULL if OFFSET alone
                                      is valid (PostgreSQL) */
    const char *begin_sql;         /* "BEGIN" / "START TRANSACTION" */
    /* How raw SQL text is scanned for placeholders (orm_sql.c): */
    int backslash_strings;         /* \ escapes a quote in '...' and "..." */
    int escape_strings;            /* E'...' strings take \ escapes */
    int dollar_quotes;             /* $tag$...$tag$ strings */
    int nested_comments;           /* block comments nest */
    int hash_comments;             /* # starts a comment to the line end */
    int copy_from_stdin;           /* COPY t (cols) FROM STDIN bulk loads,
                                      through the driver's copy_* calls */
    orm_ddl ddl;                   /* the schema builder's facts */
    const char *empty_insert;      /* what follows INSERT INTO t for a row
                                      with no columns */
    int transactional_ddl;         /* DDL can be rolled back with the
                                      transaction (not MySQL's implicit
                                      commit) */
    const char *datetime_sep;      /* between date and time in a datetime
                                      bound as text ("T", or " ") */
    const char *datetime_zone;     /* after it ("Z", or "" where the
                                      database refuses a zone) */
    /* Streaming replication (read replicas, lua/ormed/replicas.lua); all
     * NULL when the database has none: */
    const char *position_sql;      /* on the primary: one row, one text
                                      column, a position at or past every
                                      commit made so far */
    const char *replay_position_sql; /* on a replica: the position it has
                                      replayed (visible to new queries) */
    const char *position_kind;     /* how positions compare: "lsn" (hex
                                      HI/LO, PostgreSQL) or "gtid"
                                      (domain-server-seq lists, MariaDB) */
    const char *replica_lag_sql;   /* on a replica: its lag in seconds */
    const char *replica_lag_column; /* the column of replica_lag_sql's row
                                      holding the lag (NULL: the first);
                                      NULL lag = replay stopped */
} orm_dialect;

/* What a non-blocking call waits for on the connection's socket. */
#define ORM_WAIT_NONE 0   /* nothing: the operation is over */
#define ORM_WAIT_READ 1
#define ORM_WAIT_WRITE 2  /* with ORM_WAIT_READ: either */

/* Step results. */
#define ORM_STEP_ERROR (-1)
#define ORM_STEP_DONE 0
#define ORM_STEP_ROW 1

typedef struct orm_driver {
    const char *name;             /* "sqlite", "postgres", "mysql" */
    const orm_dialect *dialect;

    /* Opens a connection. On success stores the driver's handle in *out and
     * returns ORM_OK. On failure returns the kind (ORM_E_CONNECTION_FAILED
     * for refused/unreachable/bad credentials), fills err (no password in
     * the message) and leaves *out NULL with nothing leaked. */
    int (*open)(const orm_params *p, void **out, orm_error *err);

    /* Closes a connection and every statement still prepared on it.
     * NULL is fine. */
    void (*close)(void *conn);

    /* Checks the connection answers (a round trip for servers). ORM_OK or
     * ORM_E_CONNECTION_LOST. */
    int (*ping)(void *conn, orm_error *err);

    /* Runs SQL with no parameters and no result rows (BEGIN, SAVEPOINT,
     * DDL). Returns ORM_OK or the error kind. */
    int (*exec)(void *conn, const char *sql, orm_error *err);

    /* Prepares `sql` (len bytes, NUL-terminated as well) into *out.
     * Placeholders are the dialect's. Returns ORM_OK or the error kind
     * (ORM_E_QUERY for syntax errors, with sqlstate when known). */
    int (*prepare)(void *conn, const char *sql, size_t len, void **out,
                   orm_error *err);

    /* Number of parameters the statement expects. */
    int (*nparams)(void *stmt);

    /* Binds n values (n == nparams) for the next execution. The values'
     * bytes are only guaranteed valid until the first step() returns.
     * Returns ORM_OK or ORM_E_INVALID_ARGUMENT. */
    int (*bind)(void *stmt, const orm_value *vals, int n, orm_error *err);

    /* The first call after bind() executes the statement; each call then
     * moves to the next row. Returns ORM_STEP_ROW, ORM_STEP_DONE, or
     * ORM_STEP_ERROR with err filled (kind mapped from the database's code /
     * SQLSTATE; ORM_E_CONNECTION_LOST when the server went away). */
    int (*step)(void *stmt, orm_error *err);

    /* Result columns; valid once step() returned ROW or DONE. */
    int (*ncols)(void *stmt);
    const char *(*colname)(void *stmt, int i);

    /* The value of column i in the current row. Text/blob bytes stay valid
     * until the next step(), reset() or finalize(). Types: SQL NULL ->
     * ORM_NULL; boolean columns -> ORM_BOOL; integer columns -> ORM_INT
     * (exact int64); float columns -> ORM_DOUBLE; decimals that a double
     * cannot hold exactly -> ORM_TEXT; binary -> ORM_BLOB; everything else
     * (text, json, dates as ISO 8601) -> ORM_TEXT. */
    void (*column)(void *stmt, int i, orm_value *out);

    /* Rows changed by the last execution, and the auto-increment id it
     * generated (0 when none or when the database has no such notion). */
    int64_t (*changes)(void *stmt);
    int64_t (*last_id)(void *stmt);

    /* Drops the current result so the statement can be bound and run
     * again. Never fails. */
    void (*reset)(void *stmt);

    /* Frees a statement. NULL is fine. */
    void (*finalize)(void *stmt);

    /* 1 when the connection is known to be unusable (lost); the pool then
     * discards it instead of reusing it. */
    int (*broken)(void *conn);

    /* Bulk load, for dialects with copy_from_stdin (NULL elsewhere).
     * copy_begin runs `probe` (a SELECT of the target columns returning no
     * row, to learn their types) and starts `copy` (COPY ... FROM STDIN);
     * copy_rows sends nrows rows of ncols values (row by row, ncols as
     * given to copy_begin), encoded for each column's type; copy_end
     * finishes the load and stores the rows loaded in *rows. After any
     * failure the load is over (the driver ends it with the server), and
     * any other call on the connection first ends a load left open. */
    int (*copy_begin)(void *conn, const char *probe, const char *copy,
                      int ncols, orm_error *err);
    int (*copy_rows)(void *conn, const orm_value *vals, int nrows,
                     orm_error *err);
    int (*copy_end)(void *conn, int64_t *rows, orm_error *err);

    /* Non-blocking use, for hosts with an event loop (all NULL where the
     * driver only blocks: SQLite). prepare_start begins preparing sql (as
     * prepare; *out is usable once the operation is over) and exec_start
     * begins running a bound statement. poll then advances the operation
     * in flight without blocking and stores in *wait what the socket
     * (socket()) must be ready for before the next poll, or ORM_WAIT_NONE
     * when it is over: an executed statement's rows are then read by step()
     * without waiting. Each returns ORM_OK or the error kind (the operation
     * is then over; a statement prepare_start returned is finalized by the
     * caller). An operation abandoned in flight leaves the connection
     * unusable: the caller marks it broken. */
    int (*socket)(void *conn);
    int (*prepare_start)(void *conn, const char *sql, size_t len, void **out,
                         orm_error *err);
    int (*exec_start)(void *stmt, orm_error *err);
    int (*poll)(void *conn, int *wait, orm_error *err);
    /* Begins SQL with no parameters and no rows, as exec (poll gives its
     * outcome: ORM_OK or the error kind exec would return). */
    int (*command_start)(void *conn, const char *sql, orm_error *err);
    /* Begins opening a connection, as open (poll until ORM_WAIT_NONE; the
     * caller enforces the connect timeout, and closes the handle after a
     * failure). */
    int (*open_start)(const orm_params *p, void **out, orm_error *err);
    /* 1 when the server has a transaction open on the connection, 0 when
     * not, -1 when it cannot tell (no call to the server). */
    int (*in_transaction)(void *conn);
    /* Begins a ping without blocking, as ping (with poll; NULL where the
     * driver only blocks). */
    int (*ping_start)(void *conn, orm_error *err);
    /* Bulk load without blocking (drivers with poll and copy_*; NULL
     * elsewhere): while on, copy_begin, copy_rows and copy_end only begin
     * their round trips (ORM_OK), and poll ends them (ORM_WAIT_NONE, or
     * the error kind, the load then over); copy_end's *rows is filled then,
     * so it must stay valid until. */
    void (*copy_nonblocking)(void *conn, int on);

    /* Asks the server, from another connection, to cancel what runs on
     * conn (PostgreSQL: PQcancel; MySQL / MariaDB: KILL QUERY from a
     * short-lived second connection opened with the same parameters).
     * The call that waits for the statement (step, exec, poll) then ends
     * with query_timeout, or as usual when it was over already. ORM_OK
     * when the server took the request; otherwise the kind, err filled
     * (no password). NULL where the driver bounds statements itself
     * (SQLite). A driver with cancel bounds the round trips of its own
     * blocking prepare, step and exec by params->statement_timeout the
     * same way (see ORM_CANCEL_GRACE); the engine bounds the non-blocking
     * ones (orm_conn_deadline_left). */
    int (*cancel)(void *conn, orm_error *err);
} orm_driver;

/* A statement cancelled at its deadline (statement_timeout) has this many
 * seconds more to answer; after that its connection is given up (marked
 * broken, query_timeout raised): a network stall is bounded too. */
#define ORM_CANCEL_GRACE 2.0

/* Where the server's own per-session timer is kept as a backstop (for
 * what the client does not watch), it runs this many seconds past
 * statement_timeout, so the client's cancel normally comes first. */
#define ORM_SERVER_TIMER_MARGIN 1.0

/* Redacts p's password from err's message where it stands as a password
 * (orm_error_redact), telling it which values the message may show as
 * themselves: the user, host, database and socket. */
static inline void orm_params_redact(orm_error *err, const orm_params *p)
{
    const char *const shown[] = {p->user, p->host, p->database, p->socket};
    orm_error_redact(err, p->password, shown, 4);
}

/* The dialects of the built-in drivers (drivers/<name>_dialect.c). */
extern const orm_dialect orm_sqlite_dialect;
extern const orm_dialect orm_postgres_dialect;
extern const orm_dialect orm_mysql_dialect;

/* Drivers built into the engine (drivers/registry.c). */
extern const orm_driver orm_sqlite_driver;
extern const orm_driver orm_postgres_driver;
extern const orm_driver orm_mysql_driver;

/* The driver called `name` ("sqlite", "postgres"/"postgresql"/"pg",
 * "mysql"/"mariadb"), or NULL. */
const orm_driver *orm_driver_find(const char *name);

#endif
