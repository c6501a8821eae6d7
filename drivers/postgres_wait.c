/*
 * drivers/postgres_wait.c: statement_timeout kept by the client on
 * PostgreSQL. With a timeout, each blocking round trip is sent with
 * PQsend* and its answer awaited on PQsocket with poll() until the
 * deadline; past it the statement is cancelled (PQcancel, which PgBouncer
 * forwards to the server connection running it; on a thread of its own,
 * waited for ORM_CANCEL_GRACE seconds at most) and its results drained;
 * no answer ORM_CANCEL_GRACE seconds after the deadline gives the
 * connection up.
 * Without a timeout the plain blocking libpq calls run, as fast as ever.
 * Also the driver's cancel, and the error of a cancelled statement.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "postgres.h"

static double pgw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A PQcancel running on a thread of its own, so the caller waits for it
 * ORM_CANCEL_GRACE seconds at most (libpq 15's PQcancel has no timeout: a
 * stalled network would hold it forever). Whoever of the two is left
 * frees it. */
typedef struct pgw_cancel {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    PGcancel *cn;
    int done;               /* PQcancel returned */
    int abandoned;          /* the caller stopped waiting */
    int ok;                 /* what PQcancel returned */
    char msg[256];          /* its error */
} pgw_cancel;

static void pgw_cancel_free(pgw_cancel *k)
{
    PQfreeCancel(k->cn);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

static void *pgw_cancel_run(void *arg)
{
    pgw_cancel *k = arg;
    int ok = PQcancel(k->cn, k->msg, sizeof k->msg), left;
    pthread_mutex_lock(&k->mu);
    k->ok = ok;
    k->done = 1;
    left = k->abandoned;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (left)
        pgw_cancel_free(k);
    return NULL;
}

/* Waits for k until `until` (monotonic seconds): 1 when PQcancel
 * returned (k is the caller's to free), 0 when it did not (k is left to
 * its thread). */
static int pgw_cancel_wait(pgw_cancel *k, double until)
{
    struct timespec ts;
    int done;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&k->mu);
    while (!k->done && pthread_cond_timedwait(&k->cv, &k->mu, &ts) == 0)
        ;
    done = k->done;
    k->abandoned = !done;
    pthread_mutex_unlock(&k->mu);
    return done;
}

/* A new cancel of c's statement, its condition on the monotonic clock. */
static pgw_cancel *pgw_cancel_new(pg_conn *c)
{
    pthread_condattr_t ca;
    pgw_cancel *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->cn = PQgetCancel(c->pg);
    if (k->cn == NULL) {
        free(k);
        return NULL;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

/* The driver's cancel: PQcancel (a new connection to the server, or to
 * the pooler, carrying the session's cancel key), given ORM_CANCEL_GRACE
 * seconds. */
/* How long the engine's cancel (a waiter's loop is held meanwhile) waits
 * for PQcancel: on a reachable server it is done in a round trip; when it
 * is not, the statement's grace runs through the waiter instead and the
 * cancel finishes on its thread. */
#define PGW_LOOP_CANCEL_WAIT 0.05

/* Sends the cancel of c's statement from a thread of its own and waits
 * `wait` seconds at most for PQcancel to return. */
static int pgw_cancel_send(pg_conn *c, double wait, orm_error *err)
{
    pgw_cancel *k;
    pthread_attr_t ta;
    pthread_t th;
    int rc;
    c->cancelled = 1;
    k = pgw_cancel_new(c);
    if (k == NULL)
        return pg_lost(err);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &ta, pgw_cancel_run, k);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        pgw_cancel_free(k);
        return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                             "could not cancel the statement: no thread");
    }
    if (!pgw_cancel_wait(k, pgw_now() + wait))
        return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                             "could not cancel the statement: no answer");
    rc = k->ok ? ORM_OK
               : orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                               "could not cancel the statement: %.*s",
                               (int)strcspn(k->msg, "\r\n"), k->msg);
    pgw_cancel_free(k);
    return rc;
}

int pg_cancel(void *conn, orm_error *err)
{
    return pgw_cancel_send(conn, PGW_LOOP_CANCEL_WAIT, err);
}

void pg_deadline_start(pg_conn *c, pg_deadline *d)
{
    c->cancelled = 0;
    d->at = c->timeout > 0 ? pgw_now() + c->timeout : 0;
}

int pg_deadline_wait(pg_conn *c, pg_deadline *d)
{
    struct pollfd pfd;
    orm_error ignored;
    double left;
    if (d->at <= 0)
        return 0;
    while (PQisBusy(c->pg)) {
        left = d->at - pgw_now();
        if (left <= 0 && c->cancelled) { /* no answer to the cancel either */
            c->broken = c->expired = 1;
            return -1;
        }
        if (left <= 0) { /* the grace counts from the deadline */
            d->at = pgw_now() + ORM_CANCEL_GRACE;
            pgw_cancel_send(c, ORM_CANCEL_GRACE, &ignored); /* its outcome is
                                                         the statement's */
            continue;
        }
        pfd.fd = PQsocket(c->pg);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)(left * 1000.0) + 1) < 0 && errno != EINTR)
            return 0; /* PQgetResult reports what went wrong */
        if (!PQconsumeInput(c->pg))
            return 0;
    }
    return 0;
}

/* After a PQsend* call (sent: its return): its results as PQexec gives
 * them (the last one, or the first failure), within the deadline. NULL
 * when sending failed or the connection was given up. */
static PGresult *pgw_results(pg_conn *c, int sent)
{
    PGresult *res, *keep = NULL;
    pg_deadline d;
    ExecStatusType t;
    if (!sent)
        return NULL;
    pg_deadline_start(c, &d);
    for (;;) {
        if (pg_deadline_wait(c, &d) != 0) {
            PQclear(keep);
            return NULL;
        }
        res = PQgetResult(c->pg);
        if (res == NULL)
            return keep;
        t = PQresultStatus(res);
        if (keep != NULL && !pg_ok(keep)) {
            PQclear(res); /* the first failure stays */
        } else {
            PQclear(keep);
            keep = res;
        }
        if (t == PGRES_COPY_IN || t == PGRES_COPY_OUT || t == PGRES_COPY_BOTH)
            return keep;
    }
}

PGresult *pg_q_exec(pg_conn *c, const char *sql)
{
    if (c->timeout <= 0)
        return PQexec(c->pg, sql);
    return pgw_results(c, PQsendQuery(c->pg, sql));
}

PGresult *pg_q_prepare(pg_conn *c, const char *name, const char *sql, int n,
                       const Oid *types)
{
    if (c->timeout <= 0)
        return PQprepare(c->pg, name, sql, n, types);
    return pgw_results(c, PQsendPrepare(c->pg, name, sql, n, types));
}

PGresult *pg_q_describe(pg_conn *c, const char *name)
{
    if (c->timeout <= 0)
        return PQdescribePrepared(c->pg, name);
    return pgw_results(c, PQsendDescribePrepared(c->pg, name));
}

PGresult *pg_q_run(pg_conn *c, const pg_stmt *st)
{
    if (c->unnamed && c->timeout <= 0) /* types inferred anew: DDL may
                                          have changed them */
        return PQexecParams(c->pg, st->sql, st->nparams, NULL, st->pvals,
                            st->plens, st->pfmts, 0);
    if (c->timeout <= 0)
        return PQexecPrepared(c->pg, st->name, st->nparams, st->pvals,
                              st->plens, st->pfmts, 0);
    if (c->unnamed)
        return pgw_results(c, PQsendQueryParams(c->pg, st->sql, st->nparams,
                                                NULL, st->pvals, st->plens,
                                                st->pfmts, 0));
    return pgw_results(c, PQsendQueryPrepared(c->pg, st->name, st->nparams,
                                              st->pvals, st->plens,
                                              st->pfmts, 0));
}

int pg_timeout_note(pg_conn *c, int k, orm_error *err)
{
    char msg[sizeof err->message], state[sizeof err->sqlstate];
    if (c->expired) {
        orm_error_set_sqlstate(err, NULL);
        return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                             "statement_timeout (%gs) passed and the server "
                             "did not answer its cancel within %gs: the "
                             "connection is closed", c->timeout,
                             ORM_CANCEL_GRACE);
    }
    if (!c->cancelled || k != ORM_E_QUERY_TIMEOUT)
        return k;
    snprintf(msg, sizeof msg, "%s", err->message);
    snprintf(state, sizeof state, "%s", err->sqlstate);
    orm_error_set(err, k, "statement_timeout (%gs) passed: %s", c->timeout,
                  msg);
    orm_error_set_sqlstate(err, state);
    return k;
}
