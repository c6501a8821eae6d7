/*
 * drivers/postgres.c: the PostgreSQL driver (libpq). Owns connections (a
 * PGconn, its statement-name counter and broken flag), server-side prepared
 * statements (or unnamed ones, for poolers in transaction mode; a named one
 * the server lost or DDL invalidated is prepared again) with their bound
 * parameters and current result, the mapping of
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

#include "orm_decode.h"
#include "postgres.h"

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
int pg_fail(pg_conn *c, const PGresult *res, orm_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    orm_kind k = orm_error_kind_from_sqlstate(state, ORM_E_QUERY);
    if (state != NULL && strcmp(state, "57014") == 0) /* query_canceled */
        k = ORM_E_QUERY_TIMEOUT;
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
    pg_set_line(err, k, msg);
    orm_error_set_sqlstate(err, state);
    return pg_timeout_note(c, k, err);
}

int pg_lost(orm_error *err)
{
    err->code = 0;
    orm_error_set_sqlstate(err, NULL);
    return orm_error_set(err, ORM_E_CONNECTION_LOST,
                         "the connection to the PostgreSQL server was lost");
}

int pg_nomem(orm_error *err)
{
    return orm_error_set(err, ORM_E_NOMEM, "out of memory");
}

/* 1 when res is a successful command or query result. */
int pg_ok(const PGresult *res)
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

/* The session settings, with the server's statement_timeout as a backstop
 * (ORM_SERVER_TIMER_MARGIN past the client's deadline, for what the client
 * does not watch) when one is given, except with unnamed statements: a
 * pooler in transaction mode would leak a session SET to other clients. */
void pg_session_sql(const orm_params *p, char *sql, size_t size)
{
    long ms = (long)((p->statement_timeout + ORM_SERVER_TIMER_MARGIN) *
                     1000.0 + 0.5);
    if (p->statement_timeout <= 0 || p->unnamed) {
        snprintf(sql, size, "%s", PG_SESSION_SQL);
        return;
    }
    snprintf(sql, size, "%s; SET statement_timeout = %ld", PG_SESSION_SQL, ms);
}

/* Fills the conninfo arrays (NULL-terminated) for p; port and timeout are
 * the caller's buffers for the numbers. */
void pg_conninfo(const orm_params *p, const char **keys, const char **vals,
                 char *port, char *timeout)
{
    const char *host = p->host && *p->host ? p->host : "127.0.0.1";
    int n = 0;
    if (p->socket && *p->socket)
        host = p->socket;
    snprintf(port, 16, "%d", p->port);
    snprintf(timeout, 16, "%d", p->timeout > 0 ? p->timeout : 10);
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
}

static int pg_open(const orm_params *p, void **out, orm_error *err)
{
    const char *keys[16], *vals[16];
    char port[16], timeout[16], session[PG_SESSION_MAX];
    PGconn *pg = NULL;
    PGresult *res = NULL;
    pg_conn *c = NULL;
    int rc = ORM_OK;

    *out = NULL;
    pg_conninfo(p, keys, vals, port, timeout);
    pg = PQconnectdbParams(keys, vals, 0);
    if (pg == NULL)
        return pg_nomem(err);
    if (PQstatus(pg) != CONNECTION_OK) {
        rc = pg_set_line(err, ORM_E_CONNECTION_FAILED, PQerrorMessage(pg));
        goto fail;
    }
    PQsetNoticeProcessor(pg, pg_ignore_notice, NULL);
    pg_session_sql(p, session, sizeof session);
    res = PQexec(pg, session);
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
    c->unnamed = p->unnamed;
    c->timeout = p->statement_timeout;
    *out = c;
    return ORM_OK;

fail:
    err->code = 0;
    orm_error_set_sqlstate(err, NULL);
    orm_params_redact(err, p);
    PQclear(res);
    PQfinish(pg);
    return rc;
}

static void pg_close(void *conn)
{
    pg_conn *c = conn;
    if (c == NULL)
        return;
    pg_async_free(c);
    PQfinish(c->pg);
    free(c->stale);
    pg_copy_free(&c->copy);
    free(c);
}

static int pg_in_transaction(void *conn)
{
    switch (PQtransactionStatus(((pg_conn *)conn)->pg)) {
    case PQTRANS_IDLE:
        return 0;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return 1;
    default:
        return -1;
    }
}

int pg_broken(void *conn)
{
    pg_conn *c = conn;
    if (!c->broken && PQstatus(c->pg) == CONNECTION_BAD)
        c->broken = 1;
    return c->broken;
}

/* 1 when a DEALLOCATE can run now: the connection is up and outside a
 * transaction. Inside one it waits: a statement the server lost (26000,
 * after a failover or a pooler changed the session) would make DEALLOCATE
 * fail and abort the caller's transaction. */
static int pg_can_deallocate(pg_conn *c)
{
    if (pg_broken(c))
        return 0;
    return PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

static void pg_deallocate(pg_conn *c, unsigned long id)
{
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE orm_s%lu", id);
    PQclear(pg_q_exec(c, sql));
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
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    res = pg_q_exec(c, ""); /* within statement_timeout */
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
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    res = pg_q_exec(c, sql);
    if (!pg_ok(res))
        rc = pg_fail(c, res, err);
    else if (strcmp(sql, "COMMIT") == 0 &&
             strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* COMMIT of a transaction a failed statement had aborted */
        rc = orm_error_set(err, ORM_E_TX_ABORTED,
                           "the transaction was rolled back, not committed: "
                           "a statement inside it had failed");
        orm_error_set_sqlstate(err, "25P02");
    }
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
 * connection closes): on a connection used without blocking, always later
 * (pg_prepare_start sends it along with the next prepare). */
static void pg_release(pg_conn *c, unsigned long id)
{
    if (!c->anonblock && pg_can_deallocate(c)) {
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

void pg_finalize(void *stmt)
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
    free(st->sql);
    free(st);
}

/* Allocates the per-parameter arrays for n parameters (all NULL values). */
int pg_alloc_params(pg_stmt *st, int n)
{
    size_t m = n > 0 ? (size_t)n : 1;
    st->nparams = n;
    st->ptypes = calloc(m, sizeof *st->ptypes);
    st->pvals = calloc(m, sizeof *st->pvals);
    st->plens = calloc(m, sizeof *st->plens);
    st->pfmts = calloc(m, sizeof *st->pfmts);
    return st->ptypes && st->pvals && st->plens && st->pfmts ? 0 : -1;
}

/* 1 when sql may refer to a parameter past PG_MAX_PARAMS: some `$n`
 * with n over the limit, literals included (an over-estimate, so the
 * server is never asked to describe more than libpq can read). */
static int pg_too_many_params(const char *sql, size_t len)
{
    const char *p = sql, *end = sql + len;
    while ((p = memchr(p, '$', (size_t)(end - p))) != NULL) {
        long n = 0;
        for (p++; p < end && *p >= '0' && *p <= '9' && n <= PG_MAX_PARAMS; p++)
            n = n * 10 + (*p - '0');
        if (n > PG_MAX_PARAMS)
            return 1;
    }
    return 0;
}

/* The highest $n in sql: the parameter count of a statement the server
 * does not describe. */
int pg_count_params(const char *sql)
{
    const char *p = sql;
    long n = 0, v;
    while ((p = strchr(p, '$')) != NULL) {
        char *end;
        p++;
        if (*p < '0' || *p > '9')
            continue;
        v = strtol(p, &end, 10);
        if (v > n && v <= 65535)
            n = v;
        p = end;
    }
    return (int)n;
}

/* Unnamed mode: parses st->sql as the unnamed statement and describes it in
 * one round trip under one Sync (a pipeline), so a pooler in transaction
 * mode keeps both on the same server connection; keeps the parameter types
 * to format the values of every later run (PQexecParams, where the server
 * infers the types again). A statement with more than
 * PG_MAX_PARAMS parameters is not described: the server infers its types
 * at each run, and blobs are sent as bytea. */
static int pg_unnamed_describe(pg_conn *c, pg_stmt *st, orm_error *err)
{
    PGresult *res, *desc = NULL, *bad = NULL;
    int n = pg_count_params(st->sql), k = 0, nulls = 0, synced = 0, i, rc;
    pg_deadline d;
    if (n > PG_MAX_PARAMS) {
        st->typed = 0;
        return pg_alloc_params(st, n) == 0 ? ORM_OK : pg_nomem(err);
    }
    if (!PQenterPipelineMode(c->pg))
        return pg_fail(c, NULL, err);
    if (!PQsendPrepare(c->pg, "", st->sql, 0, NULL) ||
        !PQsendDescribePrepared(c->pg, "") || !PQpipelineSync(c->pg)) {
        rc = pg_fail(c, NULL, err);
        PQexitPipelineMode(c->pg);
        return rc;
    }
    pg_deadline_start(c, &d);
    while (!synced && pg_deadline_wait(c, &d) == 0) {
        res = PQgetResult(c->pg);
        if (res == NULL) {
            if (PQstatus(c->pg) == CONNECTION_BAD || ++nulls > 2)
                break;
            continue;
        }
        nulls = 0;
        switch (PQresultStatus(res)) {
        case PGRES_PIPELINE_SYNC:
            synced = 1;
            PQclear(res);
            break;
        case PGRES_COMMAND_OK:
            if (++k == 2 && desc == NULL) {
                desc = res;
                break;
            }
            PQclear(res);
            break;
        case PGRES_PIPELINE_ABORTED:
            PQclear(res);
            break;
        default:
            if (bad == NULL)
                bad = res;
            else
                PQclear(res);
            break;
        }
    }
    if (!PQexitPipelineMode(c->pg) || !synced)
        c->broken = 1; /* the connection is not in a usable state */
    if (bad != NULL || !synced || desc == NULL) {
        rc = pg_fail(c, c->broken ? NULL : bad, err);
        PQclear(bad);
        PQclear(desc);
        return rc;
    }
    rc = pg_alloc_params(st, PQnparams(desc)) == 0 ? ORM_OK : pg_nomem(err);
    for (i = 0; rc == ORM_OK && i < st->nparams; i++)
        st->ptypes[i] = PQparamtype(desc, i);
    PQclear(desc);
    return rc;
}

int pg_stmt_new(pg_conn *c, const char *sql, size_t len, pg_stmt **out,
                orm_error *err)
{
    pg_stmt *st;
    *out = NULL;
    if (memchr(sql, '\0', len) != NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "SQL text contains a NUL byte");
    if (pg_too_many_params(sql, len))
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "the statement refers to a parameter past $%d; "
                             "postgres takes at most %d in one statement",
                             PG_MAX_PARAMS, PG_MAX_PARAMS);
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return pg_nomem(err);
    st->conn = c;
    st->row = -1;
    st->typed = 1;
    st->sql = malloc(len + 1);
    if (st->sql == NULL) {
        free(st);
        return pg_nomem(err);
    }
    memcpy(st->sql, sql, len + 1);
    *out = st;
    return ORM_OK;
}

static int pg_prepare(void *conn, const char *sql, size_t len, void **out,
                      orm_error *err)
{
    pg_conn *c = conn;
    pg_stmt *st = NULL;
    PGresult *res = NULL;
    int i, rc = ORM_OK;

    *out = NULL;
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    pg_flush_stale(c);
    rc = pg_stmt_new(c, sql, len, &st, err);
    if (rc != ORM_OK)
        return rc;
    if (c->unnamed) {
        rc = pg_unnamed_describe(c, st, err);
        if (rc != ORM_OK)
            goto fail;
        *out = st;
        return ORM_OK;
    }
    st->id = ++c->next_id;
    snprintf(st->name, sizeof st->name, "orm_s%lu", st->id);
    res = pg_q_prepare(c, st->name, sql, 0, NULL);
    if (!pg_ok(res)) {
        rc = pg_fail(c, res, err);
        goto fail;
    }
    st->prepared = 1;
    PQclear(res);
    res = pg_q_describe(c, st->name);
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
void pg_format_double(char *buf, size_t size, double d)
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
        if (!st->typed) /* not described: blobs go as bytea, the rest inferred */
            st->ptypes[i] = vals[i].type == ORM_BLOB ? PG_BYTEAOID : 0;
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
int pg_take_result(pg_stmt *st, PGresult *res, orm_error *err)
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

/* 1 when a named statement failed because the server no longer has it as
 * prepared (26000: the session changed under a pooler or a failover) or
 * because DDL changed its result columns (0A000 "cached plan must not
 * change result type", raised by RevalidateCachedQuery). *gone tells the
 * first case. */
static int pg_stale(const PGresult *res, int *gone)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *fn = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    *gone = state != NULL && strcmp(state, "26000") == 0;
    if (*gone)
        return 1;
    return state != NULL && strcmp(state, "0A000") == 0 &&
           ((fn != NULL && strcmp(fn, "RevalidateCachedQuery") == 0) ||
            (msg != NULL && strstr(msg, "cached plan must not change") != NULL));
}

/* Prepares st again under a new name (its old one deallocated unless the
 * server lost it), with the parameter types it had: no new description. */
static int pg_reprepare(pg_stmt *st, int gone, orm_error *err)
{
    pg_conn *c = st->conn;
    PGresult *res;
    int rc = ORM_OK;
    if (st->prepared && !gone)
        pg_deallocate(c, st->id);
    st->prepared = 0;
    st->id = ++c->next_id;
    snprintf(st->name, sizeof st->name, "orm_s%lu", st->id);
    res = pg_q_prepare(c, st->name, st->sql, st->nparams, st->ptypes);
    if (pg_ok(res))
        st->prepared = 1;
    else
        rc = pg_fail(c, res, err);
    PQclear(res);
    return rc;
}

/* Runs the statement: unnamed (PQexecParams: parse, bind and execute in one
 * round trip) or by name. A named statement the server lost or whose plan
 * DDL invalidated is prepared again and run once more, outside a
 * transaction only (inside one the failure has aborted it). */
static int pg_execute(pg_stmt *st, orm_error *err)
{
    pg_conn *c = st->conn;
    PGresult *res;
    int rc, gone, tries = 0;
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    for (;;) {
        res = pg_q_run(c, st);
        if (pg_ok(res))
            return pg_take_result(st, res, err);
        if (c->unnamed || tries++ > 0 || res == NULL || !pg_stale(res, &gone) ||
            PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            break;
        PQclear(res);
        if (pg_reprepare(st, gone, err) != ORM_OK)
            return err->kind;
    }
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
        orm_decode_decimal(s, (size_t)len, out);
        return;
    case PG_C_BYTEA:
        *out = orm_value_blob(col->bin ? (const char *)col->bin : "", col->binlen);
        return;
    case PG_C_TIMESTAMP:
        n = orm_decode_datetime(s, (size_t)len, col->ts);
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
    "postgres", &orm_postgres_dialect,
    pg_open,    pg_close,   pg_ping,     pg_exec,    pg_prepare,
    pg_nparams, pg_bind,    pg_step,     pg_ncols,   pg_colname,
    pg_column,  pg_changes, pg_last_id,  pg_reset,   pg_finalize,
    pg_broken,  pg_copy_begin, pg_copy_rows, pg_copy_end,
    pg_socket,  pg_prepare_start, pg_exec_start, pg_poll,
    pg_command_start, pg_open_start,
    pg_in_transaction, pg_ping_start, pg_copy_nonblocking,
    pg_cancel,
};
