/*
 * drivers/sqlite.c: the SQLite driver: opens files or private in-memory
 * databases, prepares and steps statements with real bound values, maps
 * SQLite's result codes to orm error kinds and BOOLEAN-declared columns to
 * booleans.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "orm_decode.h"
#include "orm_driver.h"

typedef struct sq_stmt {
    sqlite3_stmt *st;
    sqlite3 *db;
    int started;        /* step() has executed it since the last reset */
    int ncols;
    unsigned char *kind;   /* per column: SQ_K_*, from the declared type */
    const char **name;     /* per column: its name (SQLite's, valid until a
                              re-prepare, when sq_columns reads it again) */
    char (*dt)[ORM_DATETIME_MAX]; /* per column: its decoded datetime */
    int reprepared;     /* SQLITE_STMTSTATUS_REPREPARE when ncols was read */
    int64_t changes;
    int64_t last_id;
} sq_stmt;


/* Maps an extended SQLite result code to an orm kind. */
static orm_kind sq_kind(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return ORM_E_UNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return ORM_E_FOREIGN_KEY;
    case SQLITE_CONSTRAINT_NOTNULL:
        return ORM_E_NOT_NULL;
    case SQLITE_NOMEM:
        return ORM_E_NOMEM;
    case SQLITE_INTERRUPT: /* only statement_timeout interrupts */
        return ORM_E_QUERY_TIMEOUT;
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return ORM_E_INVALID_ARGUMENT;
    default:
        return ORM_E_QUERY;
    }
}

static int sq_fail(sqlite3 *db, int rc, orm_error *err)
{
    int xrc = db ? sqlite3_extended_errcode(db) : rc;
    orm_error_set(err, sq_kind(xrc), "%s",
                  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    err->code = xrc;
    if (err->kind == ORM_E_QUERY_TIMEOUT)
        orm_error_set(err, ORM_E_QUERY_TIMEOUT, "the statement ran longer "
                      "than statement_timeout and was interrupted");
    if (err->kind == ORM_E_UNIQUE)
        orm_error_set_sqlstate(err, "23505");
    else if (err->kind == ORM_E_FOREIGN_KEY)
        orm_error_set_sqlstate(err, "23503");
    else if (err->kind == ORM_E_NOT_NULL)
        orm_error_set_sqlstate(err, "23502");
    return err->kind;
}

/* statement_timeout: SQLite has no server, so each statement that starts
 * running (the trace hook) gets a deadline, and the progress handler
 * interrupts it past that deadline (SQLITE_INTERRUPT -> query_timeout). */
typedef struct sq_timer {
    double limit;     /* seconds */
    double deadline;  /* monotonic seconds; 0 = nothing running */
} sq_timer;

static double sq_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sq_timer_trace(unsigned type, void *arg, void *p, void *x)
{
    sq_timer *t = arg;
    (void)p;
    /* a trigger's sub-program reports "-- ..." and keeps the deadline */
    if (type == SQLITE_TRACE_STMT && !(x && ((const char *)x)[0] == '-' &&
                                       ((const char *)x)[1] == '-')) {
        t->deadline = sq_now() + t->limit;
    }
    return 0;
}

static int sq_timer_progress(void *arg)
{
    sq_timer *t = arg;
    return t->deadline > 0 && sq_now() > t->deadline;
}

/* A function that is never called: its destructor frees the timer when
 * the database closes. */
static void sq_timer_fn(sqlite3_context *ctx, int n, sqlite3_value **v)
{
    (void)n;
    (void)v;
    sqlite3_result_null(ctx);
}

static int sq_set_timeout(sqlite3 *db, double seconds)
{
    sq_timer *t;
    if (seconds <= 0)
        return SQLITE_OK;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return SQLITE_NOMEM;
    t->limit = seconds;
    if (sqlite3_create_function_v2(db, "ormed_statement_timeout", 0,
                                   SQLITE_UTF8, t, sq_timer_fn, NULL, NULL,
                                   free) != SQLITE_OK)
        return SQLITE_NOMEM; /* the destructor already freed t */
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, sq_timer_trace, t);
    sqlite3_progress_handler(db, 1000, sq_timer_progress, t);
    return SQLITE_OK;
}

static int sq_open(const orm_params *p, void **out, orm_error *err)
{
    sqlite3 *db = NULL;
    const char *path = p->memory || p->path == NULL ? ":memory:" : p->path;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    *out = NULL;
    if (rc != SQLITE_OK) {
        orm_error_set(err, ORM_E_CONNECTION_FAILED, "cannot open %s: %s",
                      path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        err->code = rc;
        sqlite3_close(db);
        return err->kind;
    }
    sqlite3_extended_result_codes(db, 1);
    /* "name" is an identifier, never a string literal in disguise */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_busy_timeout(db, p->timeout > 0 ? p->timeout * 1000 : 5000);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (sq_set_timeout(db, p->statement_timeout) != SQLITE_OK) {
        sqlite3_close(db);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    *out = db;
    return ORM_OK;
}

static void sq_close(void *conn)
{
    sqlite3_close_v2((sqlite3 *)conn);
}

static int sq_exec(void *conn, const char *sql, orm_error *err)
{
    sqlite3 *db = conn;
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? ORM_OK : sq_fail(db, rc, err);
}

static int sq_ping(void *conn, orm_error *err)
{
    return sq_exec(conn, "SELECT 1", err);
}

/* 1 when the text after a statement holds another one (not only white
 * space, semicolons and comments). */
static int sq_more_statements(sqlite3 *db, const char *tail, const char *end)
{
    sqlite3_stmt *next = NULL;
    int rc;
    if (tail == NULL || tail >= end)
        return 0;
    rc = sqlite3_prepare_v2(db, tail, (int)(end - tail), &next, NULL);
    sqlite3_finalize(next);
    return rc != SQLITE_OK || next != NULL;
}

static int sq_prepare(void *conn, const char *sql, size_t len, void **out,
                      orm_error *err)
{
    sqlite3 *db = conn;
    sq_stmt *s;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc;
    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "SQL text is larger than 2 GB");
    rc = sqlite3_prepare_v3(db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st,
                            &tail);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, err);
    if (st == NULL)
        return orm_error_set(err, ORM_E_QUERY, "empty statement");
    if (sq_more_statements(db, tail, sql + len)) {
        sqlite3_finalize(st);
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "the SQL holds more than one statement; run "
                             "them one at a time");
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        sqlite3_finalize(st);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    s->st = st;
    s->db = db;
    s->ncols = -1;
    *out = s;
    return ORM_OK;
}

static int sq_nparams(void *stmt)
{
    return sqlite3_bind_parameter_count(((sq_stmt *)stmt)->st);
}

static int sq_bind_one(sqlite3_stmt *st, int i, const orm_value *v)
{
    switch (v->type) {
    case ORM_NULL:
        return sqlite3_bind_null(st, i);
    case ORM_BOOL:
        return sqlite3_bind_int(st, i, v->u.b);
    case ORM_INT:
        return sqlite3_bind_int64(st, i, v->u.i);
    case ORM_DOUBLE:
        return sqlite3_bind_double(st, i, v->u.d);
    case ORM_TEXT:
        return sqlite3_bind_text64(st, i, v->u.s.p, v->u.s.n, SQLITE_STATIC,
                                   SQLITE_UTF8);
    case ORM_BLOB:
        return sqlite3_bind_blob64(st, i, v->u.s.n ? v->u.s.p : "",
                                   v->u.s.n, SQLITE_STATIC);
    }
    return SQLITE_MISUSE;
}

static int sq_bind(void *stmt, const orm_value *vals, int n, orm_error *err)
{
    sq_stmt *s = stmt;
    int i, want = sqlite3_bind_parameter_count(s->st);
    if (n != want)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "statement expects %d bindings, got %d", want, n);
    for (i = 0; i < n; i++) {
        int rc;
        if (vals[i].type == ORM_DOUBLE && vals[i].u.d != vals[i].u.d)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "binding #%d is NaN, which SQLite would store "
                                 "as NULL", i + 1);
        rc = sq_bind_one(s->st, i + 1, &vals[i]);
        if (rc != SQLITE_OK)
            return sq_fail(s->db, rc, err);
    }
    return ORM_OK;
}

/* How a column's values are read, from its declared type: BOOLEAN as
 * booleans; DECIMAL / NUMERIC and DATETIME / TIMESTAMP held as text
 * through the engine's one decoder (orm_decode.h). */
enum { SQ_K_PLAIN, SQ_K_BOOL, SQ_K_DECIMAL, SQ_K_DATETIME };

/* Notes how each result column is read (sq_kind_of): once per statement, and
 * again after SQLite prepared it anew because the schema changed (a cached
 * SELECT * then has the table's new columns). */
static int sq_kind_of(const char *t)
{
    if (t == NULL)
        return SQ_K_PLAIN;
    if (strcasecmp(t, "BOOLEAN") == 0 || strcasecmp(t, "BOOL") == 0)
        return SQ_K_BOOL;
    if (strncasecmp(t, "NUMERIC", 7) == 0 || strncasecmp(t, "DECIMAL", 7) == 0)
        return SQ_K_DECIMAL;
    if (strncasecmp(t, "DATETIME", 8) == 0 || strncasecmp(t, "TIMESTAMP", 9) == 0)
        return SQ_K_DATETIME;
    return SQ_K_PLAIN;
}

static int sq_columns(sq_stmt *s)
{
    int i, re = sqlite3_stmt_status(s->st, SQLITE_STMTSTATUS_REPREPARE, 0);
    if (s->ncols >= 0 && re == s->reprepared)
        return 0;
    free(s->kind);
    free(s->dt);
    free(s->name);
    s->kind = NULL;
    s->dt = NULL;
    s->name = NULL;
    s->reprepared = re;
    s->ncols = sqlite3_column_count(s->st);
    if (s->ncols == 0)
        return 0;
    s->kind = calloc((size_t)s->ncols, 1);
    s->dt = calloc((size_t)s->ncols, sizeof *s->dt);
    s->name = calloc((size_t)s->ncols, sizeof *s->name);
    if (s->kind == NULL || s->dt == NULL || s->name == NULL) {
        s->ncols = -1;
        return -1;
    }
    for (i = 0; i < s->ncols; i++) {
        s->kind[i] = (unsigned char)sq_kind_of(sqlite3_column_decltype(s->st, i));
        s->name[i] = sqlite3_column_name(s->st, i);
    }
    return 0;
}

static int sq_in_transaction(void *conn)
{
    return sqlite3_get_autocommit((sqlite3 *)conn) ? 0 : 1;
}

static int sq_step(void *stmt, orm_error *err)
{
    sq_stmt *s = stmt;
    int rc;
    rc = sqlite3_step(s->st);
    if (!s->started && sq_columns(s) != 0) /* after a re-prepare by step */
        return orm_error_set(err, ORM_E_NOMEM, "out of memory"),
               ORM_STEP_ERROR;
    if (!s->started) {
        s->started = 1;
        s->changes = sqlite3_changes64(s->db);
        s->last_id = sqlite3_last_insert_rowid(s->db);
    }
    if (rc == SQLITE_ROW)
        return ORM_STEP_ROW;
    if (rc == SQLITE_DONE) {
        s->changes = sqlite3_changes64(s->db);
        s->last_id = sqlite3_last_insert_rowid(s->db);
        return ORM_STEP_DONE;
    }
    sq_fail(s->db, rc, err);
    return ORM_STEP_ERROR;
}

static int sq_ncols(void *stmt)
{
    sq_stmt *s = stmt;
    return s->ncols >= 0 ? s->ncols : sqlite3_column_count(s->st);
}

static const char *sq_colname(void *stmt, int i)
{
    sq_stmt *s = stmt;
    if (s->name && i < s->ncols && s->name[i])
        return s->name[i];
    return sqlite3_column_name(s->st, i);
}

static void sq_column(void *stmt, int i, orm_value *out)
{
    sq_stmt *s = stmt;
    sqlite3_stmt *st = s->st;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        if (s->kind && s->kind[i] == SQ_K_BOOL)
            *out = orm_value_bool(sqlite3_column_int64(st, i) != 0);
        else
            *out = orm_value_int(sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        *out = orm_value_double(sqlite3_column_double(st, i));
        break;
    case SQLITE_TEXT: {
        const char *p = (const char *)sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        int k = s->kind && i < s->ncols ? s->kind[i] : SQ_K_PLAIN, len;
        if (k == SQ_K_DECIMAL) {
            orm_decode_decimal(p, n, out);
        } else if (k == SQ_K_DATETIME &&
                   (len = orm_decode_datetime(p, n, s->dt[i])) >= 0) {
            *out = orm_value_text(s->dt[i], (size_t)len);
        } else
            *out = orm_value_text(p, n);
        break;
    }
    case SQLITE_BLOB: {
        const char *p = sqlite3_column_blob(st, i);
        *out = orm_value_blob(p ? p : "", (size_t)sqlite3_column_bytes(st, i));
        break;
    }
    default:
        *out = orm_value_null();
    }
}

static int64_t sq_changes(void *stmt)
{
    return ((sq_stmt *)stmt)->changes;
}

static int64_t sq_last_id(void *stmt)
{
    return ((sq_stmt *)stmt)->last_id;
}

static void sq_reset(void *stmt)
{
    sq_stmt *s = stmt;
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    s->started = 0;
}

static void sq_finalize(void *stmt)
{
    sq_stmt *s = stmt;
    if (s == NULL)
        return;
    sqlite3_finalize(s->st);
    free(s->kind);
    free(s->dt);
    free(s->name);
    free(s);
}

static int sq_broken(void *conn)
{
    (void)conn;
    return 0;
}

const orm_driver orm_sqlite_driver = {
    "sqlite",   &orm_sqlite_dialect, sq_open,    sq_close,   sq_ping,
    sq_exec,    sq_prepare,  sq_nparams, sq_bind,    sq_step,
    sq_ncols,   sq_colname,  sq_column,  sq_changes, sq_last_id,
    sq_reset,   sq_finalize, sq_broken,
    NULL,       NULL,        NULL, /* no bulk load */
    NULL,       NULL,        NULL,       NULL,
    NULL,       NULL, /* blocking calls only */
    sq_in_transaction, NULL,     NULL,
    NULL, /* statements bounded by the progress handler */
};
