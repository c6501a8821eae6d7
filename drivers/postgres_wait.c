/*
 * drivers/postgres_wait.c: statement_timeout kept by the client on
 * PostgreSQL. With a timeout, each blocking round trip is sent with
 * PQsend* and its answer awaited on PQsocket with poll() until the
 * deadline; past it the statement is cancelled (PQcancel, which PgBouncer
 * forwards to the server connection running it) and its results drained;
 * no answer ORM_CANCEL_GRACE seconds later gives the connection up.
 * Without a timeout the plain blocking libpq calls run, as fast as ever.
 * Also the driver's cancel, and the error of a cancelled statement.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "postgres.h"

static double pgw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The driver's cancel: PQcancel (a new connection to the server, or to
 * the pooler, carrying the session's cancel key). */
int pg_cancel(void *conn, orm_error *err)
{
    pg_conn *c = conn;
    PGcancel *cn = PQgetCancel(c->pg);
    char msg[256] = "";
    int ok;
    c->cancelled = 1;
    if (cn == NULL)
        return pg_lost(err);
    ok = PQcancel(cn, msg, sizeof msg);
    PQfreeCancel(cn);
    if (ok)
        return ORM_OK;
    msg[strcspn(msg, "\r\n")] = '\0';
    return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                         "could not cancel the statement: %s", msg);
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
        if (left <= 0) {
            pg_cancel(c, &ignored); /* its outcome is the statement's */
            d->at = pgw_now() + ORM_CANCEL_GRACE;
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
