/*
 * orm_conn.c: an engine connection: the driver handle, a small cache of
 * prepared statements keyed by SQL text (least recently used evicted), and
 * the transaction depth with savepoints for nested levels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "orm_conn.h"

#define CONN_CACHE_MAX 128

typedef struct conn_entry {
    char *sql;      /* owned copy of the SQL text */
    size_t len;
    uint64_t hash;
    void *stmt;     /* driver statement */
    uint64_t used;  /* tick of last use, for LRU eviction */
    int busy;       /* handed out by orm_conn_start, not finished yet */
} conn_entry;

struct orm_conn {
    const orm_driver *d;
    void *h;                        /* driver connection */
    conn_entry cache[CONN_CACHE_MAX];
    int ncache;
    uint64_t tick;
    int depth;                      /* open transaction levels */
    char tx_sql[48];                /* the last transaction statement sent */
    int tx_lost;                    /* the server ended ormed's transaction
                                       (MySQL DDL, a deadlock): statements
                                       are refused until it is ended */
    int tx_failed_depth;            /* the level tx_failed happened at */
    char tx_failed[160];            /* first statement error inside the open
                                       transaction, "" when none */
    int broken;
    int64_t prepares;
    double last_used;
    double expires;                 /* max_lifetime deadline, 0 = none */
    double timeout;                 /* statement_timeout the client keeps
                                       (a driver with cancel), 0 = none */
    double deadline;                /* of the non-blocking round trip in
                                       flight, 0 = none */
    int cancelled;                  /* ... which was cancelled */
};

double orm_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CONN_HASH_EDGE 128 /* bytes hashed at each end of long SQL */

/* FNV-1a over 8-byte words (with a shift to mix the high bits down): a
 * statement cache key, confirmed by comparing the text. */
static uint64_t conn_hash_bytes(uint64_t h, const char *p, size_t n)
{
    uint64_t w;
    for (; n >= sizeof w; p += sizeof w, n -= sizeof w) {
        memcpy(&w, p, sizeof w);
        h = (h ^ w) * 1099511628211ULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w ^ n) * 1099511628211ULL;
    return h ^ (h >> 32);
}

/* A word-wise FNV-1a of the SQL text; long texts (multi-row inserts run
 * to hundreds of kilobytes) hash their length and both ends only: equal
 * hashes are always confirmed by comparing the whole text. */
static uint64_t conn_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    if (n <= 2 * CONN_HASH_EDGE)
        return conn_hash_bytes(h, p, n);
    h = conn_hash_bytes(h, (const char *)&n, sizeof n);
    h = conn_hash_bytes(h, p, CONN_HASH_EDGE);
    return conn_hash_bytes(h, p + n - CONN_HASH_EDGE, CONN_HASH_EDGE);
}

/* Opens c through `open` (the driver's blocking or non-blocking open). */
static int conn_open_with(const orm_driver *d, const orm_params *p,
                          int (*open)(const orm_params *, void **, orm_error *),
                          orm_conn **out, orm_error *err)
{
    orm_conn *c = calloc(1, sizeof *c);
    int rc;
    *out = NULL;
    if (c == NULL)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    c->d = d;
    rc = open(p, &c->h, err);
    if (rc != ORM_OK) {
        orm_params_redact(err, p);
        free(c);
        return rc;
    }
    c->last_used = orm_clock();
    c->timeout = d->cancel != NULL ? p->statement_timeout : 0;
    *out = c;
    return ORM_OK;
}

int orm_conn_open(const orm_driver *d, const orm_params *p, orm_conn **out,
                  orm_error *err)
{
    return conn_open_with(d, p, d->open, out, err);
}

int orm_conn_open_start(const orm_driver *d, const orm_params *p,
                        orm_conn **out, orm_error *err)
{
    return conn_open_with(d, p, d->open_start, out, err);
}

void orm_conn_close(orm_conn *c)
{
    int i;
    if (c == NULL)
        return;
    for (i = 0; i < c->ncache; i++) {
        c->d->finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    c->d->close(c->h);
    free(c);
}

const orm_driver *orm_conn_driver(const orm_conn *c)
{
    return c->d;
}

const orm_dialect *orm_conn_dialect(const orm_conn *c)
{
    return c->d->dialect;
}

static void conn_note_tx_error(orm_conn *c, const orm_error *err);

/* Records a failure: a lost connection is never reused, and the first
 * failure the server saw inside a transaction is kept for COMMIT. */
static int conn_fail_err(orm_conn *c, int rc, const orm_error *err)
{
    if (rc == ORM_E_CONNECTION_LOST || c->d->broken(c->h))
        c->broken = 1;
    if (rc != ORM_E_INVALID_ARGUMENT)
        conn_note_tx_error(c, err);
    return rc;
}

int orm_conn_ping(orm_conn *c, orm_error *err)
{
    int rc = c->d->ping(c->h, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_exec(orm_conn *c, const char *sql, orm_error *err)
{
    int rc = c->d->exec(c->h, sql, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

static conn_entry *conn_lookup(orm_conn *c, const char *sql, size_t len,
                               uint64_t h)
{
    int i;
    for (i = 0; i < c->ncache; i++) {
        conn_entry *e = &c->cache[i];
        if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0)
            return e;
    }
    return NULL;
}

/* A slot for a new entry: a free one, or the least recently used idle one
 * (finalized). NULL when every entry is busy. */
static conn_entry *conn_slot(orm_conn *c)
{
    conn_entry *victim = NULL;
    int i;
    if (c->ncache < CONN_CACHE_MAX)
        return &c->cache[c->ncache++];
    for (i = 0; i < c->ncache; i++)
        if (!c->cache[i].busy && (!victim || c->cache[i].used < victim->used))
            victim = &c->cache[i];
    if (victim) {
        c->d->finalize(victim->stmt);
        free(victim->sql);
        memset(victim, 0, sizeof *victim);
    }
    return victim;
}

static void conn_cache_put(orm_conn *c, const char *sql, size_t len,
                           uint64_t h, void *stmt);

/* Prepares sql, caching it when possible. */
static int conn_prepare(orm_conn *c, const char *sql, size_t len,
                        void **stmt, orm_error *err)
{
    uint64_t h = conn_hash(sql, len);
    conn_entry *e = conn_lookup(c, sql, len, h);
    int rc;
    if (e && !e->busy) {
        e->busy = 1;
        e->used = ++c->tick;
        *stmt = e->stmt;
        return ORM_OK;
    }
    rc = c->d->prepare(c->h, sql, len, stmt, err);
    if (rc != ORM_OK)
        return conn_fail_err(c, rc, err);
    c->prepares++;
    if (e)  /* the cached twin is busy: this one stays uncached */
        return ORM_OK;
    conn_cache_put(c, sql, len, h, *stmt);
    return ORM_OK;
}

/* Caches a statement just prepared (busy); nothing when there is no room. */
static void conn_cache_put(orm_conn *c, const char *sql, size_t len,
                           uint64_t h, void *stmt)
{
    conn_entry *e;
    char *copy = malloc(len + 1);
    e = copy ? conn_slot(c) : NULL;
    if (e == NULL) {
        free(copy);
        return;
    }
    memcpy(copy, sql, len);
    copy[len] = '\0';
    e->sql = copy;
    e->len = len;
    e->hash = h;
    e->stmt = stmt;
    e->used = ++c->tick;
    e->busy = 1;
}

static conn_entry *conn_entry_of(orm_conn *c, void *stmt)
{
    int i;
    for (i = 0; i < c->ncache; i++)
        if (c->cache[i].stmt == stmt)
            return &c->cache[i];
    return NULL;
}

void orm_conn_finish(orm_conn *c, void *stmt)
{
    conn_entry *e = conn_entry_of(c, stmt);
    if (e == NULL) {
        c->d->finalize(stmt);
        return;
    }
    c->d->reset(stmt);
    e->busy = 0;
}

/* What every start checks: the connection is up, n values fit. */
static int conn_can_start(orm_conn *c, int n, orm_error *err)
{
    if (c->broken)
        return orm_error_set(err, ORM_E_CONNECTION_LOST,
                             "connection was lost");
    if (c->tx_lost)
        return orm_error_set(err, ORM_E_TX_ABORTED,
                             "the database ended the transaction after an "
                             "earlier statement (a deadlock, or DDL on "
                             "MySQL): nothing runs on it until it is ended");
    if (n > c->d->dialect->max_params)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "the statement has %d bound values; %s takes "
                             "at most %d in one statement",
                             n, c->d->dialect->name,
                             c->d->dialect->max_params);
    return ORM_OK;
}

int orm_conn_start(orm_conn *c, const char *sql, size_t len,
                   const orm_value *binds, int n, void **stmt, orm_error *err)
{
    int rc;
    *stmt = NULL;
    rc = conn_can_start(c, n, err);
    if (rc != ORM_OK)
        return rc;
    rc = conn_prepare(c, sql, len, stmt, err);
    if (rc != ORM_OK)
        return rc;
    rc = c->d->bind(*stmt, binds, n, err);
    if (rc != ORM_OK) {
        orm_conn_finish(c, *stmt);
        *stmt = NULL;
        return conn_fail_err(c, rc, err);
    }
    return ORM_OK;
}

/* Notes the first statement error of an open transaction, which a
 * database that aborts the transaction (PostgreSQL) reports at COMMIT. */
static void conn_note_tx_error(orm_conn *c, const orm_error *err)
{
    size_t n;
    if (c->depth == 0 || c->tx_failed[0] != '\0')
        return;
    c->tx_failed_depth = c->depth;
    n = strnlen(err->message, sizeof c->tx_failed - 1);
    memcpy(c->tx_failed, err->message, n);
    c->tx_failed[n] = '\0';
}

int orm_conn_step(orm_conn *c, void *stmt, orm_error *err)
{
    int rc = c->d->step(stmt, err);
    if (rc == ORM_STEP_ERROR)
        conn_fail_err(c, err->kind, err);
    return rc;
}


int orm_conn_tx_start(orm_conn *c, orm_tx_op op, orm_error *err)
{
    if (op != ORM_TX_BEGIN && c->tx_lost) {
        /* the server already ended the transaction: every level ormed
         * still counts ends here, nothing is sent */
        c->tx_sql[0] = '\0';
        c->depth = 0;
        c->tx_lost = 0;
        return orm_error_set(err, ORM_E_TX_ABORTED,
                             "the database had ended the transaction (a "
                             "deadlock, or DDL on MySQL): it was not %s as "
                             "one", op == ORM_TX_COMMIT ? "committed"
                                                        : "kept");
    }
    if (op == ORM_TX_BEGIN) {
        if (c->depth == 0)
            snprintf(c->tx_sql, sizeof c->tx_sql, "%s",
                     c->d->dialect->begin_sql);
        else
            snprintf(c->tx_sql, sizeof c->tx_sql, "SAVEPOINT orm_sp_%d",
                     c->depth);
        return ORM_OK;
    }
    if (c->depth == 0) {
        c->tx_sql[0] = '\0';
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "no transaction is open");
    }
    if (c->depth == 1)
        snprintf(c->tx_sql, sizeof c->tx_sql, "%s",
                 op == ORM_TX_COMMIT ? "COMMIT" : "ROLLBACK");
    else
        snprintf(c->tx_sql, sizeof c->tx_sql, "%s orm_sp_%d",
                 op == ORM_TX_COMMIT ? "RELEASE SAVEPOINT"
                                     : "ROLLBACK TO SAVEPOINT",
                 c->depth - 1);
    return ORM_OK;
}

/* A failed COMMIT may leave the transaction open (SQLite keeps it after a
 * deferred foreign key fails): it is rolled back, or the connection is
 * marked broken so the pool never lends it inside a transaction. The
 * error names the statement that made PostgreSQL abort it. */
static int conn_commit_failed(orm_conn *c, int rc, orm_error *err)
{
    orm_error e2;
    if (rc == ORM_E_TX_ABORTED && c->tx_failed[0] != '\0') {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n,
                 " (the first failure: %s)", c->tx_failed);
    }
    if (!c->broken && rc != ORM_E_TX_ABORTED &&
        c->d->exec(c->h, "ROLLBACK", &e2) != ORM_OK)
        c->broken = 1;
    return rc;
}

int orm_conn_tx_done(orm_conn *c, orm_tx_op op, int rc, orm_error *err)
{
    if (op == ORM_TX_BEGIN) {
        if (rc == ORM_OK && c->depth++ == 0)
            c->tx_failed[0] = '\0';
        return rc;
    }
    if (c->depth == 1) {
        c->depth = 0;
        if (rc != ORM_OK && op == ORM_TX_COMMIT)
            return conn_commit_failed(c, rc, err);
        if (rc != ORM_OK && !c->broken)
            c->broken = 1; /* a failed ROLLBACK: the state is unknown */
        return rc;
    }
    if (rc == ORM_OK) {
        if (op == ORM_TX_ROLLBACK && c->tx_failed_depth >= c->depth)
            c->tx_failed[0] = '\0'; /* that failure was rolled back */
        c->depth--;
    }
    return rc;
}

/* One transaction step, blocking. */
static int conn_tx(orm_conn *c, orm_tx_op op, orm_error *err)
{
    int rc = orm_conn_tx_start(c, op, err);
    if (rc != ORM_OK)
        return rc;
    return orm_conn_tx_done(c, op, orm_conn_exec(c, c->tx_sql, err), err);
}

int orm_conn_begin(orm_conn *c, orm_error *err)
{
    return conn_tx(c, ORM_TX_BEGIN, err);
}

const char *orm_conn_tx_sql(const orm_conn *c)
{
    return c->tx_sql;
}

int orm_conn_commit(orm_conn *c, orm_error *err)
{
    return conn_tx(c, ORM_TX_COMMIT, err);
}

int orm_conn_rollback(orm_conn *c, orm_error *err)
{
    return conn_tx(c, ORM_TX_ROLLBACK, err);
}

static int conn_no_copy(orm_error *err)
{
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "this driver has no bulk load");
}

static void conn_deadline_start(orm_conn *c);

int orm_conn_copy_begin(orm_conn *c, const char *probe, const char *copy,
                        int ncols, orm_error *err)
{
    int rc;
    if (c->d->copy_begin == NULL)
        return conn_no_copy(err);
    if (c->broken)
        return orm_error_set(err, ORM_E_CONNECTION_LOST, "connection was lost");
    conn_deadline_start(c); /* each step of a load polled through a waiter */
    rc = c->d->copy_begin(c->h, probe, copy, ncols, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_copy_rows(orm_conn *c, const orm_value *vals, int nrows,
                       orm_error *err)
{
    int rc;
    if (c->d->copy_rows == NULL)
        return conn_no_copy(err);
    conn_deadline_start(c);
    rc = c->d->copy_rows(c->h, vals, nrows, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_copy_end(orm_conn *c, int64_t *rows, orm_error *err)
{
    int rc;
    if (c->d->copy_end == NULL)
        return conn_no_copy(err);
    conn_deadline_start(c);
    rc = c->d->copy_end(c->h, rows, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_copy_nonblocking(orm_conn *c, int on)
{
    if (c->d->copy_nonblocking == NULL)
        return 0;
    c->d->copy_nonblocking(c->h, on);
    return 1;
}

int orm_conn_check_tx(orm_conn *c, orm_error *err)
{
    orm_error e2;
    int open = c->d->in_transaction ? c->d->in_transaction(c->h) : -1;
    if (open < 0 || open == (c->depth > 0))
        return ORM_OK;
    if (open) {
        if (c->d->exec(c->h, "ROLLBACK", &e2) != ORM_OK)
            c->broken = 1;
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "the statement opened a transaction, which was "
                             "rolled back: use ds:transaction(fn) for "
                             "transactions");
    }
    c->tx_lost = 1;
    return orm_error_set(err, ORM_E_TX_ABORTED,
                         "the statement ended the open transaction (MySQL "
                         "commits it before DDL): what it wrote before is "
                         "committed; run schema changes and transaction "
                         "statements outside ds:transaction");
}

void orm_conn_sync_tx(orm_conn *c)
{
    if (c->depth > 0 && !c->broken && c->d->in_transaction &&
        c->d->in_transaction(c->h) == 0)
        c->tx_lost = 1;
}

int orm_conn_depth(const orm_conn *c)
{
    return c->depth;
}

int orm_conn_broken(const orm_conn *c)
{
    /* the driver's word too: a call whose result it ignores (a DEALLOCATE
     * after COMMIT) may have given its connection up */
    return c->broken || (c->d->broken != NULL && c->d->broken(c->h));
}

int64_t orm_conn_prepares(const orm_conn *c)
{
    return c->prepares;
}

double orm_conn_expires(const orm_conn *c)
{
    return c->expires;
}

void orm_conn_set_expires(orm_conn *c, double at)
{
    c->expires = at;
}

double orm_conn_last_used(const orm_conn *c)
{
    return c->last_used;
}

void orm_conn_touch(orm_conn *c, double now)
{
    c->last_used = now;
}

/* {==== without blocking (orm_driver.h: socket, prepare_start, ...) ====} */

/* A non-blocking round trip begins: its deadline, statement_timeout. */
static void conn_deadline_start(orm_conn *c)
{
    c->cancelled = 0;
    c->deadline = c->timeout > 0 ? orm_clock() + c->timeout : 0;
}

int orm_conn_deadline_left(orm_conn *c, double *left, orm_error *err)
{
    orm_error ignored;
    double now = orm_clock();
    *left = -1;
    if (c->deadline <= 0)
        return ORM_OK;
    if (now >= c->deadline && !c->cancelled) { /* the grace counts from the
                                                  deadline */
        c->cancelled = 1;
        c->deadline = now + ORM_CANCEL_GRACE;
        c->d->cancel(c->h, &ignored); /* the statement's answer tells */
        now = orm_clock();
    }
    if (now >= c->deadline) { /* no answer to the cancel */
        c->broken = 1;
        c->deadline = 0;
        orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                      "statement_timeout (%gs) passed and the server did "
                      "not answer its cancel within %gs: the connection is "
                      "closed", c->timeout, ORM_CANCEL_GRACE);
        return conn_fail_err(c, ORM_E_QUERY_TIMEOUT, err);
    }
    *left = c->deadline - now;
    return ORM_OK;
}

int orm_conn_poll_left(orm_conn *c, int *wait, double *left,
                       orm_error *err)
{
    int rc = orm_conn_poll(c, wait, err);
    *left = -1;
    if (rc == ORM_OK && *wait != ORM_WAIT_NONE)
        rc = orm_conn_deadline_left(c, left, err);
    return rc;
}

int orm_conn_can_poll(const orm_conn *c)
{
    return c->d->poll != NULL;
}

int orm_conn_socket(const orm_conn *c)
{
    return c->d->socket(c->h);
}

int orm_conn_prepare_start(orm_conn *c, const char *sql, size_t len, int n,
                           void **stmt, int *pending, orm_error *err)
{
    conn_entry *e;
    int rc;
    *stmt = NULL;
    *pending = 0;
    rc = conn_can_start(c, n, err);
    if (rc != ORM_OK)
        return rc;
    e = conn_lookup(c, sql, len, conn_hash(sql, len));
    if (e && !e->busy) {
        e->busy = 1;
        e->used = ++c->tick;
        *stmt = e->stmt;
        return ORM_OK;
    }
    rc = c->d->prepare_start(c->h, sql, len, stmt, err);
    if (rc != ORM_OK) {
        c->d->finalize(*stmt);
        *stmt = NULL;
        return conn_fail_err(c, rc, err);
    }
    *pending = 1;
    conn_deadline_start(c);
    return ORM_OK;
}

void orm_conn_prepared(orm_conn *c, const char *sql, size_t len, void *stmt)
{
    uint64_t h = conn_hash(sql, len);
    c->prepares++;
    if (conn_lookup(c, sql, len, h) == NULL)
        conn_cache_put(c, sql, len, h, stmt);
}

int orm_conn_command_start(orm_conn *c, const char *sql, orm_error *err)
{
    int rc;
    if (c->broken)
        return orm_error_set(err, ORM_E_CONNECTION_LOST,
                             "connection was lost");
    rc = c->d->command_start(c->h, sql, err);
    conn_deadline_start(c);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_exec_start(orm_conn *c, void *stmt, const orm_value *binds,
                        int n, orm_error *err)
{
    int rc = c->d->bind(stmt, binds, n, err);
    if (rc == ORM_OK)
        rc = c->d->exec_start(stmt, err);
    conn_deadline_start(c);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_ping_start(orm_conn *c, orm_error *err)
{
    int rc;
    if (c->broken)
        return orm_error_set(err, ORM_E_CONNECTION_LOST,
                             "connection was lost");
    rc = c->d->ping_start(c->h, err);
    conn_deadline_start(c); /* a ping waits no longer than a statement */
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

int orm_conn_poll(orm_conn *c, int *wait, orm_error *err)
{
    int rc = c->d->poll(c->h, wait, err);
    return rc == ORM_OK ? rc : conn_fail_err(c, rc, err);
}

void orm_conn_set_broken(orm_conn *c)
{
    c->broken = 1;
}
