/*
 * drivers/postgres.c: the PostgreSQL driver (libpq). Owns connections (a
 * PGconn, its statement-name counter and broken flag), server-side prepared
 * statements with their bound parameters and current result, the mapping of
 * PostgreSQL types to orm_value (timestamps as ISO 8601 UTC, numeric without
 * silent precision loss, bytea as blobs), the mapping of SQLSTATEs and lost
 * connections to orm kinds, and the PostgreSQL dialect.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "orm_driver.h"

/* Type OIDs from the server's catalog (pg_type.dat); they never change. */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_TIMESTAMPOID 1114
#define PG_TIMESTAMPTZOID 1184
#define PG_NUMERICOID 1700

/* Room for a converted timestamp; longer values are returned as PG sent them. */
#define PG_TS_MAX 64

/* How a result column is turned into an orm_value. */
typedef enum pg_ckind {
    PG_C_TEXT,
    PG_C_BOOL,
    PG_C_INT,
    PG_C_DOUBLE,
    PG_C_NUMERIC,
    PG_C_BYTEA,
    PG_C_TIMESTAMP
} pg_ckind;

typedef struct pg_conn {
    PGconn *pg;             /* libpq connection, owned */
    unsigned long next_id;  /* number of the last prepared statement name */
    unsigned long *stale;   /* statements finalized inside an aborted
                               transaction, to DEALLOCATE later */
    int nstale;             /* entries in stale */
    int stale_cap;          /* slots allocated in stale */
    int broken;             /* 1 once the server is known to be gone */
} pg_conn;

typedef struct pg_col {
    pg_ckind kind;          /* conversion chosen from the column type OID */
    unsigned char *bin;     /* bytea of the current row (PQfreemem) or NULL */
    size_t binlen;          /* bytes in bin */
    char ts[PG_TS_MAX];     /* timestamp of the current row, ISO 8601 */
} pg_col;

typedef struct pg_stmt {
    pg_conn *conn;          /* connection it was prepared on (outlives it) */
    unsigned long id;       /* number in the name, "orm_s<id>" */
    char name[32];          /* server-side prepared statement name */
    int prepared;           /* 1 once the server knows `name` */
    int nparams;            /* parameters the statement expects */
    Oid *ptypes;            /* nparams parameter type OIDs */
    const char **pvals;     /* nparams values for PQexecPrepared (NULL = SQL NULL) */
    int *plens;             /* nparams lengths (binary parameters only) */
    int *pfmts;             /* nparams formats: 0 text, 1 binary */
    char *scratch;          /* NUL-terminated text forms of the parameters */
    size_t scratch_cap;     /* bytes allocated for scratch */
    PGresult *res;          /* result of the last execution, or NULL */
    pg_col *cols;           /* per result column state */
    int cols_cap;           /* slots allocated in cols */
    int ncols;              /* columns in res */
    int nrows;              /* rows in res */
    int row;                /* current row, -1 before the first */
    int executed;           /* step() has run the statement since bind/reset */
} pg_stmt;

static const orm_dialect pg_dialect = {
    "postgres", '"', ORM_PH_DOLLAR, 1, ORM_UPSERT_ON_CONFLICT, 65535, NULL,
    "BEGIN",
};

/* {====================================================================
 * Errors
 * ===================================================================== */

/* Fills err with kind k and the first line of msg, without a leading
 * severity ("ERROR:  ") that libpq adds to messages it formats itself. */
static int pg_set_line(orm_error *err, orm_kind k, const char *msg)
{
    size_t n;
    if (msg == NULL || *msg == '\0')
        msg = "unknown PostgreSQL error";
    n = strspn(msg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n > 0 && strncmp(msg + n, ":  ", 3) == 0)
        msg += n + 3;
    n = strcspn(msg, "\r\n");
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\t'))
        n--;
    return orm_error_set(err, k, "%.*s", (int)n, msg);
}

/* 1 when a SQLSTATE says the session is over: class 08 (connection
 * exception) or 57P01..57P03 (admin/crash shutdown, cannot connect now). */
static int pg_state_lost(const char *s)
{
    if (s == NULL)
        return 0;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

/* Fills err from a failed result (or from the connection when res is
 * NULL) and returns the kind. A lost server marks the connection broken. */
static int pg_fail(pg_conn *c, const PGresult *res, orm_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    orm_kind k = orm_error_kind_from_sqlstate(state, ORM_E_QUERY);
    if (msg == NULL && res)
        msg = PQresultErrorMessage(res);
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(c->pg);
    if (res == NULL || PQstatus(c->pg) == CONNECTION_BAD || pg_state_lost(state)) {
        k = ORM_E_CONNECTION_LOST;
        c->broken = 1;
    }
    if (k == ORM_OK)
        k = ORM_E_QUERY;
    err->code = 0;
    orm_error_set_sqlstate(err, state);
    return pg_set_line(err, k, msg);
}

static int pg_lost(orm_error *err)
{
    err->code = 0;
    orm_error_set_sqlstate(err, NULL);
    return orm_error_set(err, ORM_E_CONNECTION_LOST,
                         "the connection to the PostgreSQL server was lost");
}

static int pg_nomem(orm_error *err)
{
    return orm_error_set(err, ORM_E_NOMEM, "out of memory");
}

/* 1 when res is a successful command or query result. */
static int pg_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
           st == PGRES_EMPTY_QUERY;
}

/* }==================================================================== */

/* {====================================================================
 * Connections
 * ===================================================================== */

static void pg_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Appends key=val to the conninfo arrays when val is given. */
static void pg_kv(const char **keys, const char **vals, int *n,
                  const char *key, const char *val)
{
    if (val == NULL || *val == '\0')
        return;
    keys[*n] = key;
    vals[*n] = val;
    (*n)++;
}

/* Session settings every connection gets: UTC timestamps in ISO form and
 * floats printed with enough digits to read back exactly. */
#define PG_SESSION_SQL                                              \
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "            \
    "SET extra_float_digits = 3"

static int pg_open(const orm_params *p, void **out, orm_error *err)
{
    const char *keys[16], *vals[16];
    char port[16], timeout[16];
    const char *host = p->host && *p->host ? p->host : "127.0.0.1";
    PGconn *pg = NULL;
    PGresult *res = NULL;
    pg_conn *c = NULL;
    int n = 0, rc = ORM_OK;

    *out = NULL;
    if (p->socket && *p->socket)
        host = p->socket;
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(timeout, sizeof timeout, "%d", p->timeout > 0 ? p->timeout : 10);
    pg_kv(keys, vals, &n, "host", host);
    pg_kv(keys, vals, &n, "port", p->port > 0 ? port : NULL);
    pg_kv(keys, vals, &n, "dbname", p->database);
    pg_kv(keys, vals, &n, "user", p->user);
    pg_kv(keys, vals, &n, "password", p->password);
    pg_kv(keys, vals, &n, "sslmode", p->sslmode);
    pg_kv(keys, vals, &n, "options", p->options);
    pg_kv(keys, vals, &n, "connect_timeout", timeout);
    pg_kv(keys, vals, &n, "client_encoding", "UTF8");
    pg_kv(keys, vals, &n, "fallback_application_name", "ormed");
    keys[n] = vals[n] = NULL;

    pg = PQconnectdbParams(keys, vals, 0);
    if (pg == NULL)
        return pg_nomem(err);
    if (PQstatus(pg) != CONNECTION_OK) {
        rc = pg_set_line(err, ORM_E_CONNECTION_FAILED, PQerrorMessage(pg));
        goto fail;
    }
    PQsetNoticeProcessor(pg, pg_ignore_notice, NULL);
    res = PQexec(pg, PG_SESSION_SQL);
    if (!pg_ok(res)) {
        rc = pg_set_line(err, ORM_E_CONNECTION_FAILED,
                         res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = pg_nomem(err);
        goto fail;
    }
    PQclear(res);
    c->pg = pg;
    *out = c;
    return ORM_OK;

fail:
    err->code = 0;
    orm_error_set_sqlstate(err, NULL);
    orm_error_redact(err, p->password,
                     (const char *const[]){p->user, host, p->database,
                                           p->socket},
                     4);
    PQclear(res);
    PQfinish(pg);
    return rc;
}

static void pg_close(void *conn)
{
    pg_conn *c = conn;
    if (c == NULL)
        return;
    PQfinish(c->pg);
    free(c->stale);
    free(c);
}

static int pg_broken(void *conn)
{
    pg_conn *c = conn;
    if (!c->broken && PQstatus(c->pg) == CONNECTION_BAD)
        c->broken = 1;
    return c->broken;
}

/* 1 when a DEALLOCATE can run now: the connection is up and not inside
 * an aborted transaction (where every command but ROLLBACK fails). */
static int pg_can_deallocate(pg_conn *c)
{
    PGTransactionStatusType ts;
    if (pg_broken(c))
        return 0;
    ts = PQtransactionStatus(c->pg);
    return ts == PQTRANS_IDLE || ts == PQTRANS_INTRANS;
}

static void pg_deallocate(pg_conn *c, unsigned long id)
{
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE orm_s%lu", id);
    PQclear(PQexec(c->pg, sql));
}

/* Deallocates the statements whose finalize had to wait, when it can. */
static void pg_flush_stale(pg_conn *c)
{
    while (c->nstale > 0 && pg_can_deallocate(c))
        pg_deallocate(c, c->stale[--c->nstale]);
}

/* An empty query is a full round trip that even works inside an aborted
 * transaction. */
static int pg_ping(void *conn, orm_error *err)
{
    pg_conn *c = conn;
    PGresult *res;
    int rc = ORM_OK;
    if (pg_broken(c))
        return pg_lost(err);
    res = PQexec(c->pg, "");
    if (!pg_ok(res)) {
        pg_fail(c, res, err);
        c->broken = 1;
        rc = err->kind = ORM_E_CONNECTION_LOST;
    }
    PQclear(res);
    return rc;
}

static int pg_exec(void *conn, const char *sql, orm_error *err)
{
    pg_conn *c = conn;
    PGresult *res;
    int rc = ORM_OK;
    if (pg_broken(c))
        return pg_lost(err);
    res = PQexec(c->pg, sql);
    if (!pg_ok(res))
        rc = pg_fail(c, res, err);
    PQclear(res);
    if (rc == ORM_OK)
        pg_flush_stale(c);
    return rc;
}

/* }==================================================================== */

/* {====================================================================
 * Statements: prepare, bind, finalize
 * ===================================================================== */

/* Frees the decoded bytea values of the current row. */
static void pg_free_row(pg_stmt *st)
{
    int i;
    for (i = 0; i < st->ncols; i++) {
        if (st->cols[i].bin) {
            PQfreemem(st->cols[i].bin);
            st->cols[i].bin = NULL;
        }
    }
}

static void pg_reset(void *stmt)
{
    pg_stmt *st = stmt;
    pg_free_row(st);
    PQclear(st->res);
    st->res = NULL;
    st->ncols = st->nrows = 0;
    st->row = -1;
    st->executed = 0;
}

/* Frees the server side of statement `id` now, or remembers it for later
 * (if even that fails for lack of memory, the server frees it when the
 * connection closes). */
static void pg_release(pg_conn *c, unsigned long id)
{
    if (pg_can_deallocate(c)) {
        pg_deallocate(c, id);
        return;
    }
    if (pg_broken(c))
        return;
    if (c->nstale == c->stale_cap) {
        int cap = c->stale_cap ? 2 * c->stale_cap : 8;
        unsigned long *s = realloc(c->stale, (size_t)cap * sizeof *s);
        if (s == NULL)
            return;
        c->stale = s;
        c->stale_cap = cap;
    }
    c->stale[c->nstale++] = id;
}

static void pg_finalize(void *stmt)
{
    pg_stmt *st = stmt;
    if (st == NULL)
        return;
    pg_reset(st);
    if (st->prepared)
        pg_release(st->conn, st->id);
    free(st->ptypes);
    free(st->pvals);
    free(st->plens);
    free(st->pfmts);
    free(st->scratch);
    free(st->cols);
    free(st);
}

/* Allocates the per-parameter arrays for n parameters (all NULL values). */
static int pg_alloc_params(pg_stmt *st, int n)
{
    size_t m = n > 0 ? (size_t)n : 1;
    st->nparams = n;
    st->ptypes = calloc(m, sizeof *st->ptypes);
    st->pvals = calloc(m, sizeof *st->pvals);
    st->plens = calloc(m, sizeof *st->plens);
    st->pfmts = calloc(m, sizeof *st->pfmts);
    return st->ptypes && st->pvals && st->plens && st->pfmts ? 0 : -1;
}

static int pg_prepare(void *conn, const char *sql, size_t len, void **out,
                      orm_error *err)
{
    pg_conn *c = conn;
    pg_stmt *st = NULL;
    PGresult *res = NULL;
    int i, rc = ORM_OK;

    *out = NULL;
    if (pg_broken(c))
        return pg_lost(err);
    if (memchr(sql, '\0', len) != NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "SQL text contains a NUL byte");
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return pg_nomem(err);
    pg_flush_stale(c);
    st->conn = c;
    st->row = -1;
    st->id = ++c->next_id;
    snprintf(st->name, sizeof st->name, "orm_s%lu", st->id);
    res = PQprepare(c->pg, st->name, sql, 0, NULL);
    if (!pg_ok(res)) {
        rc = pg_fail(c, res, err);
        goto fail;
    }
    st->prepared = 1;
    PQclear(res);
    res = PQdescribePrepared(c->pg, st->name);
    if (!pg_ok(res)) {
        rc = pg_fail(c, res, err);
        goto fail;
    }
    if (pg_alloc_params(st, PQnparams(res)) != 0) {
        rc = pg_nomem(err);
        goto fail;
    }
    for (i = 0; i < st->nparams; i++)
        st->ptypes[i] = PQparamtype(res, i);
    PQclear(res);
    *out = st;
    return ORM_OK;

fail:
    PQclear(res);
    pg_finalize(st);
    return rc;
}

static int pg_nparams(void *stmt)
{
    return ((pg_stmt *)stmt)->nparams;
}

static int pg_is_intoid(Oid t)
{
    return t == PG_INT2OID || t == PG_INT4OID || t == PG_INT8OID ||
           t == PG_NUMERICOID;
}

/* Text bytes a parameter needs in scratch (0 when sent without a copy).
 * Refuses text with NUL bytes unless the parameter is a bytea. */
static int pg_param_size(const pg_stmt *st, int i, const orm_value *v,
                         size_t *size, orm_error *err)
{
    switch (v->type) {
    case ORM_BOOL:
        *size = 2;
        return ORM_OK;
    case ORM_INT:
    case ORM_DOUBLE:
        *size = 32;
        return ORM_OK;
    case ORM_TEXT:
    case ORM_BLOB:
        if (st->ptypes[i] == PG_BYTEAOID) {
            *size = 0;
            return ORM_OK;
        }
        if (v->u.s.n > 0 && memchr(v->u.s.p, '\0', v->u.s.n) != NULL)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "parameter %d contains a NUL byte, which "
                                 "PostgreSQL text cannot hold (use a bytea "
                                 "column for binary data)", i + 1);
        if (v->u.s.n > (size_t)0x3fffffff)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "parameter %d is larger than 1 GB", i + 1);
        *size = v->u.s.n + 1;
        return ORM_OK;
    default:
        *size = 0;
        return ORM_OK;
    }
}

/* Writes d in the shortest form that reads back as the same double. */
static void pg_format_double(char *buf, size_t size, double d)
{
    int prec;
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, "%s", d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
    snprintf(buf, size, "%.17g", d);
}

/* Sets parameter i from v, writing its text form at p; returns the byte
 * after what was written. */
static char *pg_param_fill(pg_stmt *st, int i, const orm_value *v, char *p)
{
    st->pvals[i] = p;
    st->plens[i] = 0;
    st->pfmts[i] = 0;
    switch (v->type) {
    case ORM_NULL:
        st->pvals[i] = NULL;
        return p;
    case ORM_BOOL:
        p[0] = pg_is_intoid(st->ptypes[i]) ? (v->u.b ? '1' : '0')
                                            : (v->u.b ? 't' : 'f');
        p[1] = '\0';
        return p + 2;
    case ORM_INT:
        snprintf(p, 32, "%lld", (long long)v->u.i);
        return p + 32;
    case ORM_DOUBLE:
        pg_format_double(p, 32, v->u.d);
        return p + 32;
    case ORM_TEXT:
    case ORM_BLOB:
        if (st->ptypes[i] == PG_BYTEAOID) {
            st->pvals[i] = v->u.s.n > 0 ? v->u.s.p : "";
            st->plens[i] = (int)v->u.s.n;
            st->pfmts[i] = 1;
            return p;
        }
        if (v->u.s.n > 0)
            memcpy(p, v->u.s.p, v->u.s.n);
        p[v->u.s.n] = '\0';
        return p + v->u.s.n + 1;
    }
    st->pvals[i] = NULL;
    return p;
}

static int pg_bind(void *stmt, const orm_value *vals, int n, orm_error *err)
{
    pg_stmt *st = stmt;
    size_t need = 0, size = 0;
    char *p;
    int i, rc;

    pg_reset(st);
    if (n != st->nparams)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "statement expects %d parameters, got %d",
                             st->nparams, n);
    for (i = 0; i < n; i++) {
        rc = pg_param_size(st, i, &vals[i], &size, err);
        if (rc != ORM_OK)
            return rc;
        need += size;
    }
    if (need > st->scratch_cap) {
        p = realloc(st->scratch, need);
        if (p == NULL)
            return pg_nomem(err);
        st->scratch = p;
        st->scratch_cap = need;
    }
    p = st->scratch;
    for (i = 0; i < n; i++)
        p = pg_param_fill(st, i, &vals[i], p);
    return ORM_OK;
}

/* }==================================================================== */

/* {====================================================================
 * Statements: execution and results
 * ===================================================================== */

static pg_ckind pg_kind_of(Oid t)
{
    switch (t) {
    case PG_BOOLOID:
        return PG_C_BOOL;
    case PG_INT2OID:
    case PG_INT4OID:
    case PG_INT8OID:
    case PG_OIDOID:
        return PG_C_INT;
    case PG_FLOAT4OID:
    case PG_FLOAT8OID:
        return PG_C_DOUBLE;
    case PG_NUMERICOID:
        return PG_C_NUMERIC;
    case PG_BYTEAOID:
        return PG_C_BYTEA;
    case PG_TIMESTAMPOID:
    case PG_TIMESTAMPTZOID:
        return PG_C_TIMESTAMP;
    default:
        return PG_C_TEXT;
    }
}

/* Keeps res as the statement's result and sets up its columns. */
static int pg_take_result(pg_stmt *st, PGresult *res, orm_error *err)
{
    int i, n = PQnfields(res);
    if (n > st->cols_cap) {
        pg_col *cols = realloc(st->cols, (size_t)n * sizeof *cols);
        if (cols == NULL) {
            PQclear(res);
            return pg_nomem(err);
        }
        st->cols = cols;
        st->cols_cap = n;
    }
    for (i = 0; i < n; i++) {
        st->cols[i].kind = pg_kind_of(PQftype(res, i));
        st->cols[i].bin = NULL;
        st->cols[i].binlen = 0;
    }
    st->res = res;
    st->ncols = n;
    st->nrows = PQntuples(res);
    st->row = -1;
    return ORM_OK;
}

static int pg_execute(pg_stmt *st, orm_error *err)
{
    pg_conn *c = st->conn;
    PGresult *res;
    int rc;
    if (pg_broken(c))
        return pg_lost(err);
    res = PQexecPrepared(c->pg, st->name, st->nparams, st->pvals, st->plens,
                         st->pfmts, 0);
    if (pg_ok(res))
        return pg_take_result(st, res, err);
    rc = pg_fail(c, res, err);
    PQclear(res);
    return rc;
}

/* Decodes the bytea columns of the current row. */
static int pg_decode_row(pg_stmt *st, orm_error *err)
{
    int i;
    for (i = 0; i < st->ncols; i++) {
        pg_col *col = &st->cols[i];
        if (col->kind != PG_C_BYTEA || PQgetisnull(st->res, st->row, i))
            continue;
        col->bin = PQunescapeBytea(
            (const unsigned char *)PQgetvalue(st->res, st->row, i),
            &col->binlen);
        if (col->bin == NULL)
            return pg_nomem(err);
    }
    return ORM_OK;
}

static int pg_step(void *stmt, orm_error *err)
{
    pg_stmt *st = stmt;
    if (!st->executed) {
        st->executed = 1;
        if (pg_execute(st, err) != ORM_OK)
            return ORM_STEP_ERROR;
    }
    pg_free_row(st);
    if (st->res == NULL || st->row >= st->nrows)
        return ORM_STEP_DONE;
    if (++st->row >= st->nrows)
        return ORM_STEP_DONE;
    if (pg_decode_row(st, err) != ORM_OK)
        return ORM_STEP_ERROR;
    return ORM_STEP_ROW;
}

static int pg_ncols(void *stmt)
{
    return ((pg_stmt *)stmt)->ncols;
}

static const char *pg_colname(void *stmt, int i)
{
    pg_stmt *st = stmt;
    if (st->res == NULL || i < 0 || i >= st->ncols)
        return NULL;
    return PQfname(st->res, i);
}

/* 1 when the decimal text s ([-]digits[.digits], as numeric_out writes it)
 * reads as a double that prints back to the same significant digits, so
 * nothing is lost; *d receives the double. */
static int pg_decimal_exact(const char *s, double *d)
{
    const char *p = s + (*s == '-' || *s == '+');
    const char *dot = strchr(p, '.');
    size_t intlen = dot ? (size_t)(dot - p) : strlen(p);
    size_t total = strlen(p) - (dot != NULL), k;
    long first = -1, last = -1;
    char back[48], *end, *q;
    int n, exp10;

    errno = 0;
    *d = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE)
        return 0;
    if (isnan(*d) || isinf(*d))
        return 1; /* NaN, Infinity, -Infinity */
    for (k = 0; k < total; k++) {
        char ch = k < intlen ? p[k] : p[k + 1];
        if (ch < '0' || ch > '9')
            return 0;
        if (ch != '0') {
            if (first < 0)
                first = (long)k;
            last = (long)k;
        }
    }
    if (first < 0)
        return 1; /* zero */
    n = (int)(last - first + 1);
    if (n > 17)
        return 0;
    exp10 = (int)intlen - (int)first - 1;
    snprintf(back, sizeof back, "%.*e", n - 1, fabs(*d));
    q = back;
    for (k = (size_t)first; k <= (size_t)last; k++, q++) {
        char ch = k < intlen ? p[k] : p[k + 1];
        if (*q == '.')
            q++;
        if (*q != ch)
            return 0;
    }
    if (*q == '.')
        q++;
    return *q == 'e' && atoi(q + 1) == exp10;
}

/* numeric: an int64 when integral and in range, a double when one holds it
 * exactly, the text otherwise. */
static void pg_numeric(const char *s, int len, orm_value *out)
{
    char *end;
    double d;
    if (strchr(s, '.') == NULL) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && end == s + len && end != s) {
            *out = orm_value_int((int64_t)v);
            return;
        }
    }
    if (pg_decimal_exact(s, &d))
        *out = orm_value_double(d);
    else
        *out = orm_value_text(s, (size_t)len);
}

/* Rewrites PG's ISO timestamp "YYYY-MM-DD HH:MM:SS[.f][+HH[:MM]]" as
 * "YYYY-MM-DDTHH:MM:SS[.f]Z" (or a "+HH:MM" offset when not UTC) into buf.
 * Returns the length, or -1 to keep PG's text (infinity, BC, odd forms). */
static int pg_iso_timestamp(const char *s, int len, char *buf)
{
    const char *sp = memchr(s, ' ', (size_t)len);
    const char *off;
    int n, i;
    if (sp == NULL || len + 8 > PG_TS_MAX || memchr(sp + 1, ' ', (size_t)(len - (sp + 1 - s))))
        return -1;
    for (off = sp + 1; off < s + len && *off != '+' && *off != '-'; off++)
        ;
    n = (int)(off - s);
    memcpy(buf, s, (size_t)n);
    buf[sp - s] = 'T';
    if (off == s + len) {
        buf[n++] = 'Z';
        buf[n] = '\0';
        return n;
    }
    for (i = 1; off + i < s + len && (off[i] == '0' || off[i] == ':'); i++)
        ;
    if (off + i == s + len) {
        buf[n++] = 'Z';
    } else {
        memcpy(buf + n, off, (size_t)(s + len - off));
        n += (int)(s + len - off);
        if (s + len - off == 3) { /* "+05" -> "+05:00" */
            memcpy(buf + n, ":00", 3);
            n += 3;
        }
    }
    buf[n] = '\0';
    return n;
}

static void pg_column(void *stmt, int i, orm_value *out)
{
    pg_stmt *st = stmt;
    pg_col *col;
    const char *s;
    char *end;
    int len, n;

    if (st->res == NULL || i < 0 || i >= st->ncols || st->row < 0 ||
        st->row >= st->nrows || PQgetisnull(st->res, st->row, i)) {
        *out = orm_value_null();
        return;
    }
    col = &st->cols[i];
    s = PQgetvalue(st->res, st->row, i);
    len = PQgetlength(st->res, st->row, i);
    switch (col->kind) {
    case PG_C_BOOL:
        *out = orm_value_bool(s[0] == 't');
        return;
    case PG_C_INT: {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && end == s + len && end != s) {
            *out = orm_value_int((int64_t)v);
            return;
        }
        break;
    }
    case PG_C_DOUBLE:
        *out = orm_value_double(strtod(s, NULL));
        return;
    case PG_C_NUMERIC:
        pg_numeric(s, len, out);
        return;
    case PG_C_BYTEA:
        *out = orm_value_blob(col->bin ? (const char *)col->bin : "", col->binlen);
        return;
    case PG_C_TIMESTAMP:
        n = pg_iso_timestamp(s, len, col->ts);
        if (n >= 0) {
            *out = orm_value_text(col->ts, (size_t)n);
            return;
        }
        break;
    case PG_C_TEXT:
        break;
    }
    *out = orm_value_text(s, (size_t)len);
}

/* Rows the last execution inserted, updated or deleted (a plain SELECT,
 * whose command tag counts the rows it read, changed none). */
static int64_t pg_changes(void *stmt)
{
    pg_stmt *st = stmt;
    if (st->res == NULL ||
        (PQresultStatus(st->res) == PGRES_TUPLES_OK &&
         strncmp(PQcmdStatus(st->res), "SELECT", 6) == 0))
        return 0;
    return (int64_t)strtoll(PQcmdTuples(st->res), NULL, 10);
}

/* PostgreSQL has no "last insert id": the compiler uses RETURNING. */
static int64_t pg_last_id(void *stmt)
{
    (void)stmt;
    return 0;
}

/* }==================================================================== */

const orm_driver orm_postgres_driver = {
    "postgres", &pg_dialect,
    pg_open,    pg_close,   pg_ping,     pg_exec,    pg_prepare,
    pg_nparams, pg_bind,    pg_step,     pg_ncols,   pg_colname,
    pg_column,  pg_changes, pg_last_id,  pg_reset,   pg_finalize,
    pg_broken,
};
