/*
 * drivers/mysql.c: the MySQL / MariaDB driver over libmysqlclient (MariaDB
 * Connector/C). Owns the MYSQL handle of each connection, every prepared
 * MYSQL_STMT opened on it with its parameter and result buffers, the
 * mapping of MySQL error numbers to orm error kinds, and the mapping of
 * result column types to orm values (TINYINT(1) -> bool, exact integers,
 * decimals without silent precision loss, binary -> blob, DATETIME as
 * ISO 8601 UTC text).
 *
 * Sessions run with time_zone '+00:00', charset utf8mb4, STRICT_ALL_TABLES,
 * CLIENT_FOUND_ROWS (changes() counts matched rows, as SQLite and
 * PostgreSQL do) and no automatic reconnect: a lost connection is reported
 * as ORM_E_CONNECTION_LOST and broken() stays 1 for the pool to discard it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mysql.h>

#include "orm_decode.h"
#include "orm_driver.h"

#include "mysql_driver.h"


/* {======================================================================
 * Errors
 * ======================================================================= */

/* The orm kind for a MySQL / MariaDB error number. */
static orm_kind my_kind(unsigned int code)
{
    switch (code) {
    case 1062: /* ER_DUP_ENTRY */
    case 1169: /* ER_DUP_UNIQUE */
    case 1586: /* ER_DUP_ENTRY_WITH_KEY_NAME */
        return ORM_E_UNIQUE;
    case 1216: /* ER_NO_REFERENCED_ROW */
    case 1217: /* ER_ROW_IS_REFERENCED */
    case 1451: /* ER_ROW_IS_REFERENCED_2 */
    case 1452: /* ER_NO_REFERENCED_ROW_2 */
        return ORM_E_FOREIGN_KEY;
    case 1048: /* ER_BAD_NULL_ERROR */
    case 1263: /* ER_WARN_NULL_TO_NOTNULL (strict multi-row insert) */
    case 1364: /* ER_NO_DEFAULT_FOR_FIELD */
        return ORM_E_NOT_NULL;
    case 1053: /* ER_SERVER_SHUTDOWN */
    case 1927: /* ER_CONNECTION_KILLED */
    case 2006: /* CR_SERVER_GONE_ERROR */
    case 2013: /* CR_SERVER_LOST */
    case 2055: /* CR_SERVER_LOST_EXTENDED */
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
        return ORM_E_CONNECTION_LOST;
    case 2008: /* CR_OUT_OF_MEMORY */
        return ORM_E_NOMEM;
    case 1317: /* ER_QUERY_INTERRUPTED (KILL QUERY, the client's cancel) */
    case 1969: /* ER_STATEMENT_TIMEOUT (MariaDB max_statement_time) */
    case 3024: /* ER_QUERY_TIMEOUT (MySQL max_execution_time) */
        return ORM_E_QUERY_TIMEOUT;
    default:
        return ORM_E_QUERY;
    }
}

/* Fills err from an error number, SQLSTATE and text; marks the connection
 * broken when it was lost. Returns the kind. */
static int my_fail(my_conn *c, unsigned int code, const char *state,
                   const char *msg, orm_error *err)
{
    orm_kind k = my_kind(code);
    orm_error_set(err, k, "%s", msg && *msg ? msg : "mysql error");
    err->code = (int)code;
    orm_error_set_sqlstate(err, state);
    if (k == ORM_E_CONNECTION_LOST && c != NULL)
        c->broken = 1;
    return my_timeout_note(c, k, err);
}

int my_conn_fail(my_conn *c, orm_error *err)
{
    return my_fail(c, mysql_errno(c->db), mysql_sqlstate(c->db),
                   mysql_error(c->db), err);
}

int my_stmt_fail(my_stmt *s, orm_error *err)
{
    return my_fail(s->conn, mysql_stmt_errno(s->st), mysql_stmt_sqlstate(s->st),
                   mysql_stmt_error(s->st), err);
}

int my_lost(orm_error *err)
{
    orm_error_set(err, ORM_E_CONNECTION_LOST,
                  "connection to the mysql server was lost");
    err->code = 2013;
    orm_error_set_sqlstate(err, "08S01");
    return ORM_E_CONNECTION_LOST;
}

static int my_nomem(orm_error *err)
{
    return orm_error_set(err, ORM_E_NOMEM, "out of memory");
}

/* }====================================================================== */

/* {======================================================================
 * Connections
 * ======================================================================= */

/* Session settings every connection gets right after connecting. */
const char my_session_sql[] =
    "SET time_zone = '+00:00', SESSION sql_mode = "
    "CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')";

int my_set_options(MYSQL *db, const orm_params *p)
{
    unsigned int timeout = p->timeout > 0 ? (unsigned int)p->timeout
                                          : MY_DEFAULT_TIMEOUT;
    my_bool off = 0, on = 1;
    return mysql_options(db, MYSQL_OPT_NONBLOCK, 0) ||
           mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) ||
           mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
           mysql_options(db, MYSQL_OPT_RECONNECT, &off) ||
           mysql_options(db, MYSQL_REPORT_DATA_TRUNCATION, &on);
}

/* The server's timer, a backstop ORM_SERVER_TIMER_MARGIN past the
 * client's deadline: MariaDB's max_statement_time (every statement, lock
 * waits included) or MySQL's max_execution_time (read-only SELECTs). */
int my_timeout_sql(MYSQL *db, double seconds, char *sql, size_t size)
{
    const char *info = mysql_get_server_info(db);
    sql[0] = '\0';
    if (seconds <= 0)
        return 0;
    seconds += ORM_SERVER_TIMER_MARGIN;
    if (info != NULL && strstr(info, "MariaDB") != NULL)
        snprintf(sql, size, "SET SESSION max_statement_time = %.6f", seconds);
    else
        snprintf(sql, size, "SET SESSION max_execution_time = %ld",
                 (long)(seconds * 1000.0 + 0.5) > 0
                     ? (long)(seconds * 1000.0 + 0.5) : 1L);
    return 1;
}

static int my_set_timeout(MYSQL *db, double seconds)
{
    char sql[96];
    if (!my_timeout_sql(db, seconds, sql, sizeof sql))
        return 0;
    return mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0;
}

static int my_open(const orm_params *p, void **out, orm_error *err)
{
    my_conn *c = NULL;
    const char *host = p->host;
    unsigned int port = p->port > 0 ? (unsigned int)p->port : MY_DEFAULT_PORT;
    int rc = ORM_OK;

    *out = NULL;
    if (host == NULL)
        host = p->socket != NULL ? "localhost" : MY_DEFAULT_HOST;
    mysql_library_init(0, NULL, NULL);
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->db = mysql_init(NULL)) == NULL) {
        rc = my_nomem(err);
        goto cleanup;
    }
    if (my_set_options(c->db, p) != 0 || my_cancel_keep(c, p) != 0) {
        rc = orm_error_set(err, ORM_E_CONNECTION_FAILED,
                           "mysql: cannot set connection options");
        goto cleanup;
    }
    if (mysql_real_connect(c->db, host, p->user, p->password, p->database,
                           port, p->socket, CLIENT_FOUND_ROWS) == NULL) {
        my_conn_fail(c, err);
        rc = orm_error_set(err, ORM_E_CONNECTION_FAILED,
                           "cannot connect to mysql at %s:%u: %s", host, port,
                           mysql_error(c->db));
        goto cleanup;
    }
    if (mysql_real_query(c->db, my_session_sql, sizeof my_session_sql - 1)) {
        my_conn_fail(c, err);
        rc = orm_error_set(err, ORM_E_CONNECTION_FAILED,
                           "mysql: cannot set up the session: %s",
                           mysql_error(c->db));
        goto cleanup;
    }
    if (my_set_timeout(c->db, p->statement_timeout)) {
        my_conn_fail(c, err);
        rc = orm_error_set(err, ORM_E_CONNECTION_FAILED,
                           "mysql: cannot set statement_timeout: %s",
                           mysql_error(c->db));
        goto cleanup;
    }
    *out = c;
    return ORM_OK;

cleanup:
    orm_error_redact(err, p->password,
                     (const char *const[]){p->user, host, p->database,
                                           p->socket},
                     4);
    if (c != NULL) {
        my_cancel_free(c);
        mysql_close(c->db);
    }
    free(c);
    return rc;
}

static void my_stmt_free(my_stmt *s);

static void my_close(void *conn)
{
    my_conn *c = conn;
    if (c == NULL)
        return;
    my_cancel_free(c);
    while (c->stmts != NULL)
        my_stmt_free(c->stmts);
    mysql_close(c->db);
    free(c);
}

static int my_ping(void *conn, orm_error *err)
{
    my_conn *c = conn;
    if (c->broken)
        return my_lost(err);
    if (my_q_ping(c) == 0) /* within statement_timeout */
        return ORM_OK;
    my_conn_fail(c, err);
    err->kind = ORM_E_CONNECTION_LOST;
    c->broken = 1;
    return ORM_E_CONNECTION_LOST;
}

/* Reads and drops every result the last query produced. */
int my_drain(my_conn *c, orm_error *err)
{
    for (;;) {
        MYSQL_RES *res = mysql_store_result(c->db);
        if (res != NULL)
            mysql_free_result(res);
        else if (mysql_field_count(c->db) != 0)
            return my_conn_fail(c, err);
        switch (mysql_next_result(c->db)) {
        case -1:
            return ORM_OK;
        case 0:
            break;
        default:
            return my_conn_fail(c, err);
        }
    }
}

static int my_exec(void *conn, const char *sql, orm_error *err)
{
    my_conn *c = conn;
    if (c->broken)
        return my_lost(err);
    if (my_q_query(c, sql, strlen(sql)) != 0)
        return my_conn_fail(c, err);
    return my_drain(c, err);
}

static int my_broken(void *conn)
{
    return ((my_conn *)conn)->broken;
}

/* From the status flags of the server's last reply. */
static int my_in_transaction(void *conn)
{
    my_conn *c = conn;
    unsigned int status = 0;
    if (c->broken ||
        mariadb_get_infov(c->db, MARIADB_CONNECTION_SERVER_STATUS, &status))
        return -1;
    return (status & SERVER_STATUS_IN_TRANS) ? 1 : 0;
}

/* }====================================================================== */

/* {======================================================================
 * Statements: prepare, bind, finalize
 * ======================================================================= */

static void my_link(my_conn *c, my_stmt *s)
{
    s->conn = c;
    s->prev = NULL;
    s->next = c->stmts;
    if (c->stmts != NULL)
        c->stmts->prev = s;
    c->stmts = s;
}

static void my_unlink(my_stmt *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->conn->stmts = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* Frees a statement and everything it owns, unlinking it first. */
static void my_stmt_free(my_stmt *s)
{
    int i;
    if (s->conn != NULL)
        my_unlink(s);
    if (s->meta != NULL)
        mysql_free_result(s->meta);
    if (s->st != NULL)
        mysql_stmt_close(s->st);
    for (i = 0; i < s->colcap; i++)
        free(s->cols[i].buf);
    free(s->cols);
    free(s->rbind);
    free(s->pbind);
    free(s->pval);
    free(s->plen);
    free(s->sql);
    free(s);
}

/* Allocates the parameter arrays for n parameters. 0 or -1. */
static int my_alloc_params(my_stmt *s, int n)
{
    s->nparams = n;
    if (n == 0)
        return 0;
    s->pbind = calloc((size_t)n, sizeof *s->pbind);
    s->pval = calloc((size_t)n, sizeof *s->pval);
    s->plen = calloc((size_t)n, sizeof *s->plen);
    return s->pbind && s->pval && s->plen ? 0 : -1;
}

int my_prepare_begin(my_conn *c, const char *sql, size_t len, my_stmt **out,
                     orm_error *err)
{
    my_stmt *s;
    my_bool on = 1;
    int rc = ORM_OK;

    *out = NULL;
    if (c->broken)
        return my_lost(err);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return my_nomem(err);
    my_link(c, s);
    s->st = mysql_stmt_init(c->db);
    if (s->st == NULL) {
        rc = my_conn_fail(c, err);
        goto cleanup;
    }
    mysql_stmt_attr_set(s->st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    s->sql = malloc(len + 1);
    if (s->sql == NULL) {
        rc = my_nomem(err);
        goto cleanup;
    }
    memcpy(s->sql, sql, len);
    s->sql[len] = '\0';
    s->sqllen = len;
    *out = s;
    return ORM_OK;

cleanup:
    my_stmt_free(s);
    return rc;
}

int my_prepare_end(my_stmt *s, orm_error *err)
{
    if (my_alloc_params(s, (int)mysql_stmt_param_count(s->st)) != 0)
        return my_nomem(err);
    return ORM_OK;
}

int my_prepare(void *conn, const char *sql, size_t len, void **out,
               orm_error *err)
{
    my_stmt *s;
    int rc = my_prepare_begin(conn, sql, len, &s, err);
    *out = NULL;
    if (rc != ORM_OK)
        return rc;
    if (my_q_prepare(s, sql, len) != 0)
        rc = my_stmt_fail(s, err);
    else
        rc = my_prepare_end(s, err);
    if (rc != ORM_OK) {
        my_stmt_free(s);
        return rc;
    }
    *out = s;
    return ORM_OK;
}

static int my_nparams(void *stmt)
{
    return ((my_stmt *)stmt)->nparams;
}

/* Points bind b at value v, copying scalars into *slot. */
static void my_bind_one(MYSQL_BIND *b, my_param *slot, unsigned long *len,
                        const orm_value *v)
{
    memset(b, 0, sizeof *b);
    switch (v->type) {
    case ORM_NULL:
        b->buffer_type = MYSQL_TYPE_NULL;
        break;
    case ORM_BOOL:
        slot->b = v->u.b ? 1 : 0;
        b->buffer_type = MYSQL_TYPE_TINY;
        b->buffer = &slot->b;
        break;
    case ORM_INT:
        slot->i = (long long)v->u.i;
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &slot->i;
        break;
    case ORM_DOUBLE:
        slot->d = v->u.d;
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &slot->d;
        break;
    case ORM_TEXT:
    case ORM_BLOB:
        *len = (unsigned long)v->u.s.n;
        b->buffer_type = v->type == ORM_TEXT ? MYSQL_TYPE_STRING
                                             : MYSQL_TYPE_BLOB;
        b->buffer = (void *)(v->u.s.n > 0 ? v->u.s.p : "");
        b->buffer_length = *len;
        b->length = len;
        break;
    }
}

static void my_reset(void *stmt);
int my_reprepare(my_stmt *s, orm_error *err);

static int my_bind(void *stmt, const orm_value *vals, int n, orm_error *err)
{
    my_stmt *s = stmt;
    int i;
    if (s->started)
        my_reset(s);
    if (s->unprepared && !s->conn->anonblock && my_reprepare(s, err) != ORM_OK)
        return err->kind;
    if (n != s->nparams)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "statement expects %d bindings, got %d",
                             s->nparams, n);
    if (n == 0)
        return ORM_OK;
    for (i = 0; i < n; i++) {
        if ((int)vals[i].type < ORM_NULL || vals[i].type > ORM_BLOB)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "binding %d has an unknown type", i + 1);
        if (vals[i].type >= ORM_TEXT && vals[i].u.s.n > 0xFFFFFFFFu)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "binding %d is too long for mysql", i + 1);
        my_bind_one(&s->pbind[i], &s->pval[i], &s->plen[i], &vals[i]);
    }
    if (s->unprepared) /* bound once the run prepares it again */
        return ORM_OK;
    if (mysql_stmt_bind_param(s->st, s->pbind) != 0) {
        my_stmt_fail(s, err);
        err->kind = ORM_E_INVALID_ARGUMENT;
        return ORM_E_INVALID_ARGUMENT;
    }
    return ORM_OK;
}

static void my_reset(void *stmt)
{
    my_stmt *s = stmt;
    if (s->meta != NULL) {
        mysql_free_result(s->meta);
        s->meta = NULL;
    }
    if (s->started)
        mysql_stmt_free_result(s->st);
    s->started = 0;
    s->done = 0;
    s->ncols = 0;
}

static void my_finalize(void *stmt)
{
    if (stmt != NULL)
        my_stmt_free(stmt);
}

/* }====================================================================== */

/* {======================================================================
 * Execution and result buffers
 * ======================================================================= */

static int my_is_string_type(enum enum_field_types t)
{
    switch (t) {
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_GEOMETRY:
        return 1;
    default:
        return 0;
    }
}

/* How a column of field type f is fetched and turned into a value. */
static my_ckind my_col_kind(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
        if (f->length == 1)
            return MY_C_BOOL;
        return MY_C_INT;
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
        return MY_C_INT;
    case MYSQL_TYPE_LONGLONG:
        return f->flags & UNSIGNED_FLAG ? MY_C_UINT : MY_C_INT;
    case MYSQL_TYPE_BIT:
        return MY_C_BIT;
    case MYSQL_TYPE_FLOAT:
        return MY_C_FLOAT;
    case MYSQL_TYPE_DOUBLE:
        return MY_C_DOUBLE;
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL:
        return MY_C_DECIMAL;
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
        return MY_C_DATETIME;
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
        return MY_C_DATE;
    default:
        if (my_is_string_type(f->type) && f->charsetnr == 63)
            return MY_C_BLOB;
        return MY_C_TEXT;
    }
}

/* Makes col->buf hold at least want bytes. 0 or -1. */
static int my_col_grow(my_col *col, unsigned long want)
{
    char *p;
    if (want < MY_MIN_BUF)
        want = MY_MIN_BUF;
    if (col->cap >= want)
        return 0;
    p = realloc(col->buf, want);
    if (p == NULL)
        return -1;
    col->buf = p;
    col->cap = want;
    return 0;
}

/* Sets up column i's kind, buffer and result bind. 0 or -1 (no memory). */
static int my_col_setup(my_col *col, MYSQL_BIND *b, const MYSQL_FIELD *f)
{
    memset(b, 0, sizeof *b);
    col->kind = my_col_kind(f);
    col->decimals = f->decimals <= 6 ? f->decimals : 6;
    b->is_null = &col->isnull;
    b->length = &col->len;
    b->error = &col->trunc;
    switch (col->kind) {
    case MY_C_BOOL:
    case MY_C_INT:
    case MY_C_UINT:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &col->num.i;
        b->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
        return 0;
    case MY_C_FLOAT:
        b->buffer_type = MYSQL_TYPE_FLOAT;
        b->buffer = &col->num.f;
        return 0;
    case MY_C_DOUBLE:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &col->num.d;
        return 0;
    case MY_C_DATETIME:
    case MY_C_DATE:
        b->buffer_type = col->kind == MY_C_DATE ? MYSQL_TYPE_DATE
                                                : MYSQL_TYPE_DATETIME;
        b->buffer = &col->num.t;
        b->buffer_length = sizeof col->num.t;
        return 0;
    default:
        if (my_col_grow(col, f->max_length + 1) != 0)
            return -1;
        b->buffer_type = col->kind == MY_C_BLOB ? MYSQL_TYPE_BLOB
                                                : MYSQL_TYPE_STRING;
        b->buffer = col->buf;
        b->buffer_length = col->cap;
        return 0;
    }
}

/* Makes room for n result columns. 0 or -1. */
static int my_cols_reserve(my_stmt *s, int n)
{
    MYSQL_BIND *rb;
    my_col *cols;
    if (n <= s->colcap)
        return 0;
    rb = realloc(s->rbind, (size_t)n * sizeof *rb);
    if (rb == NULL)
        return -1;
    s->rbind = rb;
    cols = realloc(s->cols, (size_t)n * sizeof *cols);
    if (cols == NULL)
        return -1;
    memset(cols + s->colcap, 0, (size_t)(n - s->colcap) * sizeof *cols);
    s->cols = cols;
    s->colcap = n;
    return 0;
}

/* After a statement with a result executed: buffers its rows on the client
 * and binds one result buffer per column. */
int my_bind_result(my_stmt *s, orm_error *err)
{
    if (my_q_store(s) != 0)
        return my_stmt_fail(s, err);
    return my_bind_columns(s, err);
}

int my_bind_columns(my_stmt *s, orm_error *err)
{
    MYSQL_FIELD *fields;
    int i, n;
    n = (int)mysql_num_fields(s->meta);
    fields = mysql_fetch_fields(s->meta);
    if (my_cols_reserve(s, n) != 0)
        return my_nomem(err);
    for (i = 0; i < n; i++)
        if (my_col_setup(&s->cols[i], &s->rbind[i], &fields[i]) != 0)
            return my_nomem(err);
    s->ncols = n;
    if (mysql_stmt_bind_result(s->st, s->rbind) != 0)
        return my_stmt_fail(s, err);
    return ORM_OK;
}


/* 1 when the statement only reads, so running it twice changes nothing. */
int my_reads_only(const my_stmt *s)
{
    static const char *const heads[] = {"SELECT", "WITH", "SHOW", "VALUES",
                                        "TABLE", "(", NULL};
    const char *p = s->sql;
    int i;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    for (i = 0; heads[i] != NULL; i++)
        if (strncasecmp(p, heads[i], strlen(heads[i])) == 0)
            return 1;
    return 0;
}

/* 1 when the result the server just sent names its columns differently
 * from the statement's metadata: the server re-prepared it after DDL
 * replaced a column, and the client library updates types but keeps the
 * old names (it only notices a changed column count, as error 2057). */
int my_names_changed(my_stmt *s)
{
    MYSQL *db = s->conn->db;
    MYSQL_FIELD *was;
    unsigned int i, n;
    if (s->meta == NULL || db->fields == NULL)
        return 0;
    n = mysql_num_fields(s->meta);
    if (db->field_count != n)
        return 0;
    was = mysql_fetch_fields(s->meta);
    for (i = 0; i < n; i++)
        if (db->fields[i].name == NULL || was[i].name == NULL ||
            strcmp(db->fields[i].name, was[i].name) != 0)
            return 1;
    return 0;
}

/* Prepares the statement again from its SQL text (the server changed its
 * result columns) and binds the same parameters. */
int my_reprepare(my_stmt *s, orm_error *err)
{
    MYSQL_STMT *st;
    my_bool on = 1;
    s->unprepared = 1;
    if (s->meta != NULL) {
        mysql_free_result(s->meta);
        s->meta = NULL;
    }
    st = mysql_stmt_init(s->conn->db);
    if (st == NULL)
        return my_nomem(err); /* the old handle stays, unprepared is retried */
    mysql_stmt_close(s->st);
    s->st = st;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    if (mysql_stmt_prepare(st, s->sql, (unsigned long)s->sqllen) != 0)
        return my_stmt_fail(s, err);
    if ((int)mysql_stmt_param_count(st) != s->nparams)
        return orm_error_set(err, ORM_E_QUERY, "statement changed its parameters");
    if (s->nparams > 0 && mysql_stmt_bind_param(st, s->pbind) != 0)
        return my_stmt_fail(s, err);
    s->unprepared = 0;
    return ORM_OK;
}

/* Runs the statement. A reading statement whose result columns DDL changed
 * since it was prepared (the library's error 2057, or the same number of
 * columns under other names) is prepared again and run once more; a writing
 * one (INSERT ... RETURNING) has run already: its 2057 is raised and it is
 * prepared again at its next run. */
static int my_execute(my_stmt *s, orm_error *err)
{
    my_ulonglong rows;
    int tries = 0;
    if (s->conn->broken)
        return my_lost(err);
    if (s->unprepared && my_reprepare(s, err) != ORM_OK)
        return err->kind; /* my_bind left it to the run */
again:
    if (my_q_execute(s) != 0) {
        if (mysql_stmt_errno(s->st) != MY_NEW_STMT_METADATA || tries++ > 0)
            return my_stmt_fail(s, err);
        if (!my_reads_only(s)) { /* it ran: raise, prepare at the next run */
            char state[6];
            int code;
            orm_kind k = (orm_kind)my_stmt_fail(s, err);
            code = err->code;
            memcpy(state, err->sqlstate, sizeof state);
            s->unprepared = 1;
            orm_error_set(err, k, "the statement ran, but DDL changed its "
                          "result columns since it was prepared; it is "
                          "prepared again at its next run");
            err->code = code;
            orm_error_set_sqlstate(err, state);
            return k;
        }
        if (my_reprepare(s, err) != ORM_OK)
            return err->kind;
        goto again;
    }
    rows = mysql_stmt_affected_rows(s->st);
    s->changes = rows == (my_ulonglong)~0ULL ? 0 : (int64_t)rows;
    s->last_id = (int64_t)mysql_stmt_insert_id(s->st);
    s->meta = mysql_stmt_result_metadata(s->st);
    if (s->meta != NULL && tries == 0 && my_names_changed(s) &&
        my_reads_only(s)) {
        tries++;
        mysql_stmt_store_result(s->st);
        if (my_reprepare(s, err) != ORM_OK)
            return err->kind;
        goto again;
    }
    if (s->meta == NULL) {
        s->done = 1;
        return mysql_stmt_errno(s->st) != 0 ? my_stmt_fail(s, err) : ORM_OK;
    }
    s->changes = 0;
    s->last_id = 0;
    return my_bind_result(s, err);
}

/* After MYSQL_DATA_TRUNCATED: fetches again, into bigger buffers, every
 * string column the library truncated, and rebinds for the next rows. */
static int my_refetch(my_stmt *s, orm_error *err)
{
    int i, rebind = 0;
    for (i = 0; i < s->ncols; i++) {
        my_col *col = &s->cols[i];
        MYSQL_BIND *b = &s->rbind[i];
        if (col->isnull || !col->trunc || b->buffer != col->buf)
            continue;
        if (my_col_grow(col, col->len + 1) != 0)
            return my_nomem(err);
        b->buffer = col->buf;
        b->buffer_length = col->cap;
        if (mysql_stmt_fetch_column(s->st, b, (unsigned int)i, 0) != 0)
            return my_stmt_fail(s, err);
        rebind = 1;
    }
    if (rebind && mysql_stmt_bind_result(s->st, s->rbind) != 0)
        return my_stmt_fail(s, err);
    return ORM_OK;
}

static int my_step(void *stmt, orm_error *err)
{
    my_stmt *s = stmt;
    int rc;
    if (!s->started) {
        s->started = 1;
        if (my_execute(s, err) != ORM_OK) {
            /* a statement the server interrupted (statement_timeout) hangs
             * the library at its next execution: it is prepared anew */
            if (err->kind == ORM_E_QUERY_TIMEOUT)
                s->unprepared = 1;
            s->done = 1;
            return ORM_STEP_ERROR;
        }
    }
    if (s->done)
        return ORM_STEP_DONE;
    rc = mysql_stmt_fetch(s->st);
    if (rc == 0)
        return ORM_STEP_ROW;
    if (rc == MYSQL_NO_DATA) {
        s->done = 1;
        return ORM_STEP_DONE;
    }
    if (rc == MYSQL_DATA_TRUNCATED && my_refetch(s, err) == ORM_OK)
        return ORM_STEP_ROW;
    if (rc != MYSQL_DATA_TRUNCATED && my_stmt_fail(s, err) == ORM_E_QUERY_TIMEOUT)
        s->unprepared = 1;
    s->done = 1;
    return ORM_STEP_ERROR;
}

static int my_ncols(void *stmt)
{
    return ((my_stmt *)stmt)->ncols;
}

static const char *my_colname(void *stmt, int i)
{
    my_stmt *s = stmt;
    if (s->meta == NULL || i < 0 || i >= s->ncols)
        return NULL;
    return mysql_fetch_fields(s->meta)[i].name;
}

/* }====================================================================== */

/* {======================================================================
 * Column values
 * ======================================================================= */

/* An unsigned 64-bit integer: an int when it fits int64, else its
 * decimal text (formatted into col->fmt). */
static void my_uint_value(my_col *col, uint64_t u, orm_value *out)
{
    int n;
    if (u <= (uint64_t)INT64_MAX) {
        *out = orm_value_int((int64_t)u);
        return;
    }
    n = snprintf(col->fmt, sizeof col->fmt, "%" PRIu64, u);
    *out = orm_value_text(col->fmt, (size_t)n);
}

/* A BIT(n) column's bytes, most significant first. */
static uint64_t my_bits_value(const my_col *col, unsigned long len)
{
    const unsigned char *p = (const unsigned char *)col->buf;
    uint64_t u = 0;
    unsigned long k = len > 8 ? len - 8 : 0;
    for (; k < len; k++)
        u = u << 8 | p[k];
    return u;
}

/* A FLOAT as the double of its shortest decimal form, so 1.1f reads 1.1. */
static double my_float_value(float f)
{
    char tmp[32];
    int prec;
    for (prec = 6; prec < 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        if (strtof(tmp, NULL) == f)
            return strtod(tmp, NULL);
    }
    return (double)f;
}

static void my_time_text(my_col *col, orm_value *out)
{
    const MYSQL_TIME *t = &col->num.t;
    int n;
    if (col->kind == MY_C_DATE) {
        n = snprintf(col->fmt, sizeof col->fmt, "%04u-%02u-%02u", t->year,
                     t->month, t->day);
    } else {
        char raw[ORM_DATETIME_MAX];
        int m = snprintf(raw, sizeof raw, "%04u-%02u-%02u %02u:%02u:%02u.%06lu",
                         t->year, t->month, t->day, t->hour, t->minute,
                         t->second, t->second_part % 1000000);
        n = m > 0 ? orm_decode_datetime(raw, (size_t)m, col->fmt) : -1;
        if (n < 0) /* cannot happen for a MYSQL_TIME; keep it readable */
            n = snprintf(col->fmt, sizeof col->fmt, "%s", raw);
    }
    *out = orm_value_text(col->fmt, (size_t)n);
}

static void my_column(void *stmt, int i, orm_value *out)
{
    my_stmt *s = stmt;
    my_col *col;
    unsigned long len;
    *out = orm_value_null();
    if (i < 0 || i >= s->ncols || s->cols[i].isnull)
        return;
    col = &s->cols[i];
    len = col->len < col->cap ? col->len : col->cap;
    switch (col->kind) {
    case MY_C_BOOL:
        *out = orm_value_bool(col->num.i != 0);
        break;
    case MY_C_INT:
        *out = orm_value_int((int64_t)col->num.i);
        break;
    case MY_C_UINT:
        my_uint_value(col, (uint64_t)col->num.i, out);
        break;
    case MY_C_BIT:
        my_uint_value(col, my_bits_value(col, len), out);
        break;
    case MY_C_FLOAT:
        *out = orm_value_double(my_float_value(col->num.f));
        break;
    case MY_C_DOUBLE:
        *out = orm_value_double(col->num.d);
        break;
    case MY_C_DECIMAL:
        orm_decode_decimal(col->buf, len, out);
        break;
    case MY_C_DATETIME:
    case MY_C_DATE:
        my_time_text(col, out);
        break;
    case MY_C_BLOB:
        *out = orm_value_blob(col->buf, len);
        break;
    case MY_C_TEXT:
        *out = orm_value_text(col->buf, len);
        break;
    }
}

static int64_t my_changes(void *stmt)
{
    return ((my_stmt *)stmt)->changes;
}

static int64_t my_last_id(void *stmt)
{
    return ((my_stmt *)stmt)->last_id;
}

/* }====================================================================== */

const orm_driver orm_mysql_driver = {
    "mysql",    &orm_mysql_dialect, my_open,    my_close,   my_ping,
    my_exec,    my_prepare,  my_nparams, my_bind,    my_step,
    my_ncols,   my_colname,  my_column,  my_changes, my_last_id,
    my_reset,   my_finalize, my_broken,
    NULL,       NULL,        NULL, /* no bulk load */
    my_sockfd,  my_prepare_start, my_exec_start, my_poll,
    my_command_start, my_open_start,
    my_in_transaction, my_ping_start, NULL, /* no bulk load */
    my_cancel,
};
