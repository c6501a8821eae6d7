/*
 * drivers/postgres_copy.c: bulk load for the PostgreSQL driver: COPY ...
 * FROM STDIN in text format, each value encoded for its column's type
 * (learned from a probe SELECT), rows sent in large chunks; without
 * blocking too (pg_copy_nonblocking: each step's round trips are sent
 * with the connection in nonblocking mode and ended by pg_copy_poll).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres.h"

#define PGC_BOOLOID 16
#define PGC_BYTEAOID 17
#define PGC_INT8OID 20
#define PGC_INT2OID 21
#define PGC_INT4OID 23
#define PGC_NUMERICOID 1700

/* Bytes gathered before they go to the server. */
#define PGC_CHUNK (256 * 1024)

/* How a value is written for its column. */
enum { PGC_K_TEXT, PGC_K_BYTEA, PGC_K_NUMBER };

void pg_copy_free(pg_copy *cp)
{
    free(cp->kinds);
    free(cp->buf);
    memset(cp, 0, sizeof *cp);
}

/* Makes room for n more bytes in the buffer; -1 when out of memory. */
static int pgc_reserve(pg_copy *cp, size_t n)
{
    char *p;
    size_t cap;
    if (cp->len + n <= cp->cap)
        return 0;
    cap = cp->cap ? cp->cap : PGC_CHUNK + 1024;
    while (cap < cp->len + n)
        cap *= 2;
    p = realloc(cp->buf, cap);
    if (p == NULL)
        return -1;
    cp->buf = p;
    cp->cap = cap;
    return 0;
}

/* Ends the COPY at the server: with msg, as a failure that rolls it back;
 * the final result is read and dropped. Without blocking, that round trip
 * is not made: the connection is left unusable instead. */
static void pgc_finish(pg_conn *c, const char *msg)
{
    PGresult *res;
    c->copy.active = 0;
    c->copy.len = 0;
    if (c->copy.nb) {
        c->broken = 1;
        pg_async_free(c);
        PQsetnonblocking(c->pg, 0);
        return;
    }
    if (PQputCopyEnd(c->pg, msg) < 0)
        c->broken = 1;
    while ((res = PQgetResult(c->pg)) != NULL)
        PQclear(res);
}

void pg_copy_abort(pg_conn *c)
{
    if (c->copy.active)
        pgc_finish(c, "the load was abandoned");
}

/* The encodings of the columns of the probe's result. */
static int pgc_kinds(pg_copy *cp, const PGresult *res, int ncols)
{
    int i;
    if (ncols > cp->kinds_cap) {
        unsigned char *k = realloc(cp->kinds, (size_t)ncols);
        if (k == NULL)
            return -1;
        cp->kinds = k;
        cp->kinds_cap = ncols;
    }
    for (i = 0; i < ncols; i++) {
        Oid t = PQftype(res, i);
        cp->kinds[i] = t == PGC_BYTEAOID ? PGC_K_BYTEA
                       : (t == PGC_INT2OID || t == PGC_INT4OID ||
                          t == PGC_INT8OID || t == PGC_NUMERICOID)
                           ? PGC_K_NUMBER
                           : PGC_K_TEXT;
    }
    cp->ncols = ncols;
    return 0;
}

void pg_copy_nonblocking(void *conn, int on)
{
    ((pg_conn *)conn)->copy.nb = on;
}

/* A step without blocking failed (res, or the connection): the load is
 * over; one whose rows were being sent leaves the connection unusable. */
static int pgc_async_fail(pg_conn *c, const PGresult *res, orm_error *err)
{
    int rc = pg_fail(c, res, err);
    if (c->copy.active && !c->broken)
        c->broken = 1; /* in COPY IN, mid-stream */
    c->copy.active = 0;
    c->copy.len = 0;
    pg_async_free(c);
    PQsetnonblocking(c->pg, 0);
    return rc;
}

/* The step is over. */
static int pgc_async_done(pg_conn *c)
{
    pg_async_free(c);
    PQsetnonblocking(c->pg, 0);
    return ORM_OK;
}

int pg_copy_poll(pg_conn *c, int *wait, orm_error *err)
{
    pg_copy *cp = &c->copy;
    PGresult *res;
    int f = PQflush(c->pg);
    if (f < 0 || !PQconsumeInput(c->pg))
        return pgc_async_fail(c, NULL, err);
    if (f == 1) { /* more to send: writable, or readable (to drain) */
        *wait = ORM_WAIT_READ | ORM_WAIT_WRITE;
        return ORM_OK;
    }
    if (cp->aphase == PGC_A_SEND)
        return pgc_async_done(c);
    while (!PQisBusy(c->pg)) {
        res = PQgetResult(c->pg);
        if (res != NULL && cp->aphase == PGC_A_OPEN &&
            PQresultStatus(res) == PGRES_COPY_IN) {
            PQclear(res);
            cp->active = 1;
            cp->len = 0;
            cp->rows = 0;
            return pgc_async_done(c);
        }
        if (res != NULL) { /* the first failure, else the first result */
            if (!pg_ok(res) && c->abad == NULL)
                c->abad = res;
            else if (pg_ok(res) && c->ares == NULL)
                c->ares = res;
            else
                PQclear(res);
            continue;
        }
        if (c->abad != NULL || c->ares == NULL)
            return pgc_async_fail(c, c->abad, err);
        if (cp->aphase == PGC_A_END) {
            *cp->arows = strtoll(PQcmdTuples(c->ares), NULL, 10);
            return pgc_async_done(c);
        }
        /* the probe answered: the columns' encodings, then the COPY */
        if (PQnfields(c->ares) != cp->ncols) {
            orm_error_set(err, ORM_E_QUERY, "COPY: the probe returned %d "
                          "columns, not %d", PQnfields(c->ares), cp->ncols);
            pgc_async_done(c);
            return ORM_E_QUERY;
        }
        if (pgc_kinds(cp, c->ares, cp->ncols) != 0) {
            pgc_async_done(c);
            return pg_nomem(err);
        }
        PQclear(c->ares);
        c->ares = NULL;
        cp->aphase = PGC_A_OPEN;
        if (!PQsendQuery(c->pg, cp->acopy))
            return pgc_async_fail(c, NULL, err);
        *wait = ORM_WAIT_READ | ORM_WAIT_WRITE;
        return ORM_OK;
    }
    *wait = ORM_WAIT_READ;
    return ORM_OK;
}

/* copy_begin without blocking: the probe goes first (pg_copy_poll). */
static int pgc_begin_start(pg_conn *c, const char *probe, const char *copy,
                           int ncols, orm_error *err)
{
    int rc = pg_async_ready(c, err);
    if (rc != ORM_OK)
        return rc;
    c->aop = PG_AOP_COPY;
    c->copy.aphase = PGC_A_PROBE;
    c->copy.acopy = copy;
    c->copy.ncols = ncols;
    if (!PQsendQuery(c->pg, probe))
        return pgc_async_fail(c, NULL, err);
    return ORM_OK;
}

int pg_copy_begin(void *conn, const char *probe, const char *copy, int ncols,
                  orm_error *err)
{
    pg_conn *c = conn;
    PGresult *res;
    int rc;
    if (c->copy.nb)
        return pgc_begin_start(c, probe, copy, ncols, err);
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    res = pg_q_exec(c, probe); /* within statement_timeout */
    if (!pg_ok(res) || PQnfields(res) != ncols) {
        rc = pg_ok(res) ? orm_error_set(err, ORM_E_QUERY, "COPY: the probe "
                                        "returned %d columns, not %d",
                                        PQnfields(res), ncols)
                        : pg_fail(c, res, err);
        PQclear(res);
        return rc;
    }
    rc = pgc_kinds(&c->copy, res, ncols);
    PQclear(res);
    if (rc != 0)
        return pg_nomem(err);
    res = pg_q_exec(c, copy);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(c, res, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    c->copy.active = 1;
    c->copy.len = 0;
    c->copy.rows = 0;
    return ORM_OK;
}

/* Appends the decimal digits of i. */
static void pgc_int(pg_copy *cp, int64_t i)
{
    char tmp[24];
    int n = 0;
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0)
        cp->buf[cp->len++] = '-';
    while (n)
        cp->buf[cp->len++] = tmp[--n];
}

/* Appends text, escaping what COPY's text format reads specially. */
static void pgc_text(pg_copy *cp, const char *p, size_t n)
{
    size_t i;
    char *o = cp->buf + cp->len;
    for (i = 0; i < n; i++) {
        char ch = p[i];
        switch (ch) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        default: *o++ = ch;
        }
    }
    cp->len = (size_t)(o - cp->buf);
}

/* Appends bytes as bytea's hex input (\x..., its backslash escaped). */
static void pgc_bytea(pg_copy *cp, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    char *o = cp->buf + cp->len;
    *o++ = '\\';
    *o++ = '\\';
    *o++ = 'x';
    for (i = 0; i < n; i++) {
        *o++ = hex[(unsigned char)p[i] >> 4];
        *o++ = hex[(unsigned char)p[i] & 15];
    }
    cp->len = (size_t)(o - cp->buf);
}

/* Bytes value v may take once encoded (an upper bound). */
static size_t pgc_size(const orm_value *v)
{
    if (v->type == ORM_TEXT || v->type == ORM_BLOB)
        return 2 * v->u.s.n + 4;
    return 40;
}

/* Appends value v for a column of encoding kind; -1 for text with a NUL
 * byte going to a column that is not bytea. */
static int pgc_value(pg_copy *cp, const orm_value *v, int kind)
{
    switch (v->type) {
    case ORM_NULL:
        memcpy(cp->buf + cp->len, "\\N", 2);
        cp->len += 2;
        return 0;
    case ORM_BOOL:
        cp->buf[cp->len++] = kind == PGC_K_NUMBER ? (v->u.b ? '1' : '0')
                                                  : (v->u.b ? 't' : 'f');
        return 0;
    case ORM_INT:
        pgc_int(cp, v->u.i);
        return 0;
    case ORM_DOUBLE:
        pg_format_double(cp->buf + cp->len, 40, v->u.d);
        cp->len += strlen(cp->buf + cp->len);
        return 0;
    case ORM_TEXT:
    case ORM_BLOB:
        if (kind == PGC_K_BYTEA) {
            pgc_bytea(cp, v->u.s.p, v->u.s.n);
            return 0;
        }
        if (v->u.s.n > 0 && memchr(v->u.s.p, '\0', v->u.s.n) != NULL)
            return -1;
        pgc_text(cp, v->u.s.p, v->u.s.n);
        return 0;
    }
    return 0;
}

/* Sends what the buffer holds (without blocking: queues it in libpq's
 * buffer, and pg_copy_poll flushes it). */
static int pgc_flush(pg_conn *c, orm_error *err)
{
    pg_copy *cp = &c->copy;
    if (cp->nb && cp->len > 0) {
        c->aop = PG_AOP_COPY;
        cp->aphase = PGC_A_SEND;
        if (PQsetnonblocking(c->pg, 1) != 0 ||
            PQputCopyData(c->pg, cp->buf, (int)cp->len) != 1)
            return pgc_async_fail(c, NULL, err);
    } else if (cp->len > 0 &&
               PQputCopyData(c->pg, cp->buf, (int)cp->len) != 1) {
        int rc = pg_fail(c, NULL, err);
        pgc_finish(c, "sending failed");
        return rc;
    }
    cp->len = 0;
    return ORM_OK;
}

int pg_copy_rows(void *conn, const orm_value *vals, int nrows, orm_error *err)
{
    pg_conn *c = conn;
    pg_copy *cp = &c->copy;
    int r, i;
    if (!cp->active)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT, "no COPY is open");
    for (r = 0; r < nrows; r++, vals += cp->ncols) {
        size_t need = 1;
        for (i = 0; i < cp->ncols; i++)
            need += pgc_size(&vals[i]) + 1;
        if (pgc_reserve(cp, need) != 0) {
            pgc_finish(c, "out of memory");
            return pg_nomem(err);
        }
        for (i = 0; i < cp->ncols; i++) {
            if (i > 0)
                cp->buf[cp->len++] = '\t';
            if (pgc_value(cp, &vals[i], cp->kinds[i]) != 0) {
                pgc_finish(c, "a value holds a NUL byte");
                return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                     "row %lld, column %d: text with a NUL "
                                     "byte, which PostgreSQL text cannot "
                                     "hold (use a bytea column)",
                                     cp->rows + r + 1, i + 1);
            }
        }
        cp->buf[cp->len++] = '\n';
        if (cp->len >= PGC_CHUNK && pgc_flush(c, err) != ORM_OK)
            return err->kind;
    }
    cp->rows += nrows;
    return ORM_OK;
}

int pg_copy_end(void *conn, int64_t *rows, orm_error *err)
{
    pg_conn *c = conn;
    pg_deadline d;
    PGresult *res;
    int rc = ORM_OK;
    *rows = 0;
    if (!c->copy.active)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT, "no COPY is open");
    if (pgc_flush(c, err) != ORM_OK)
        return err->kind;
    c->copy.active = 0;
    if (c->copy.nb) { /* pg_copy_poll reads the answer */
        c->aop = PG_AOP_COPY;
        c->copy.aphase = PGC_A_END;
        c->copy.arows = rows;
        if (PQsetnonblocking(c->pg, 1) != 0 || PQputCopyEnd(c->pg, NULL) != 1)
            return pgc_async_fail(c, NULL, err);
        return ORM_OK;
    }
    if (PQputCopyEnd(c->pg, NULL) != 1)
        return pg_fail(c, NULL, err);
    pg_deadline_start(c, &d); /* the answer, within statement_timeout */
    if (pg_deadline_wait(c, &d) != 0)
        return pg_fail(c, NULL, err); /* given up: the connection too */
    res = PQgetResult(c->pg);
    if (!pg_ok(res))
        rc = pg_fail(c, res, err);
    else
        *rows = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    while ((res = PQgetResult(c->pg)) != NULL)
        PQclear(res);
    return rc;
}
