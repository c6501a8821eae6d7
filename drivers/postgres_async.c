/*
 * drivers/postgres_async.c: the PostgreSQL driver without blocking, for
 * hosts with an event loop: a statement is prepared (prepare and describe
 * under one Sync, a pipeline) and run (PQsendQueryPrepared /
 * PQsendQueryParams) with the connection in nonblocking mode, and pg_poll
 * advances the operation in flight (PQflush, PQconsumeInput, PQisBusy,
 * PQgetResult), telling the caller what to wait for on PQsocket; a ping
 * is an empty query sent the same way. The blocking calls of postgres.c
 * stay as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres.h"

static void pga_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The driver's open_start: PQconnectStartParams; pg_poll goes on with
 * PQconnectPoll, then sends the session settings. */
int pg_open_start(const orm_params *p, void **out, orm_error *err)
{
    const char *keys[16], *vals[16];
    char port[16], timeout[16];
    pg_conn *c;
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return pg_nomem(err);
    pg_conninfo(p, keys, vals, port, timeout);
    c->pg = PQconnectStartParams(keys, vals, 0);
    if (c->pg == NULL) {
        free(c);
        return pg_nomem(err);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        orm_error_set(err, ORM_E_CONNECTION_FAILED, "%s", PQerrorMessage(c->pg));
        orm_params_redact(err, p);
        PQfinish(c->pg);
        free(c);
        return ORM_E_CONNECTION_FAILED;
    }
    PQsetNoticeProcessor(c->pg, pga_ignore_notice, NULL);
    c->unnamed = p->unnamed;
    c->timeout = p->statement_timeout;
    c->aop = PG_AOP_CONNECT;
    pg_session_sql(p, c->asession, sizeof c->asession);
    *out = c;
    return ORM_OK;
}

int pg_socket(void *conn)
{
    return PQsocket(((pg_conn *)conn)->pg);
}

/* Ends the operation in flight: back to blocking mode. */
static void pga_end(pg_conn *c)
{
    c->askip = 0;
    c->aop = PG_AOP_NONE;
    c->ast = NULL;
    c->acount = c->anulls = 0;
    PQsetnonblocking(c->pg, 0);
}

void pg_async_free(pg_conn *c)
{
    PQclear(c->ares);
    PQclear(c->abad);
    c->ares = c->abad = NULL;
    c->aop = PG_AOP_NONE;
}

/* Fails the operation: the connection is lost when libpq says so. */
static int pga_fail(pg_conn *c, const PGresult *res, orm_error *err)
{
    int rc = pg_fail(c, res, err);
    if (c->aop == PG_AOP_PREPARE && PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF &&
        !PQexitPipelineMode(c->pg))
        c->broken = 1;
    pg_async_free(c);
    pga_end(c);
    return rc;
}

int pg_async_ready(pg_conn *c, orm_error *err)
{
    pg_copy_abort(c);
    if (pg_broken(c))
        return pg_lost(err);
    if (c->aop != PG_AOP_NONE) {
        c->broken = 1; /* an abandoned operation: state unknown */
        return pg_lost(err);
    }
    if (PQsetnonblocking(c->pg, 1) != 0)
        return pg_fail(c, NULL, err);
    c->anonblock = 1;
    c->cancelled = 0;
    return ORM_OK;
}

/* In the pipeline of a prepare: the DEALLOCATEs of the statements
 * finalized since (pg_release), each under its own Sync, whose results
 * pg_poll skips (a failure is ignored, as pg_deallocate ignores it).
 * Outside a transaction only: inside one they wait. 0, or -1 when libpq
 * refused to queue them. */
static int pga_send_stale(pg_conn *c)
{
    char sql[48];
    /* asked once: in the pipeline libpq reports ACTIVE after the first */
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return 0;
    while (c->nstale > 0) {
        snprintf(sql, sizeof sql, "DEALLOCATE orm_s%lu", c->stale[--c->nstale]);
        if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0) ||
            !PQpipelineSync(c->pg))
            return -1;
        c->askip++;
    }
    return 0;
}

int pg_prepare_start(void *conn, const char *sql, size_t len, void **out,
                     orm_error *err)
{
    pg_conn *c = conn;
    pg_stmt *st = NULL;
    const char *name = "";
    int rc;
    *out = NULL;
    rc = pg_async_ready(c, err);
    if (rc == ORM_OK)
        rc = pg_stmt_new(c, sql, len, &st, err);
    if (rc != ORM_OK) {
        PQsetnonblocking(c->pg, 0);
        return rc;
    }
    *out = st;
    if (c->unnamed && pg_count_params(st->sql) > PG_MAX_PARAMS) {
        st->typed = 0; /* not described: the server infers at each run */
        PQsetnonblocking(c->pg, 0);
        return pg_alloc_params(st, pg_count_params(st->sql)) == 0
                   ? ORM_OK : pg_nomem(err);
    }
    if (!c->unnamed) {
        st->id = ++c->next_id;
        snprintf(st->name, sizeof st->name, "orm_s%lu", st->id);
        name = st->name;
    }
    c->aop = PG_AOP_PREPARE;
    c->ast = st;
    if (!PQenterPipelineMode(c->pg) || pga_send_stale(c) != 0 ||
        !PQsendPrepare(c->pg, name, st->sql, 0, NULL) ||
        !PQsendDescribePrepared(c->pg, name) || !PQpipelineSync(c->pg))
        return pga_fail(c, NULL, err);
    return ORM_OK;
}

int pg_exec_start(void *stmt, orm_error *err)
{
    pg_stmt *st = stmt;
    pg_conn *c = st->conn;
    int ok, rc = pg_async_ready(c, err);
    if (rc != ORM_OK)
        return rc;
    st->executed = 1;
    c->aop = PG_AOP_EXEC;
    c->ast = st;
    if (c->unnamed)
        ok = PQsendQueryParams(c->pg, st->sql, st->nparams,
                               st->typed ? NULL : st->ptypes, st->pvals,
                               st->plens, st->pfmts, 0);
    else
        ok = PQsendQueryPrepared(c->pg, st->name, st->nparams, st->pvals,
                                 st->plens, st->pfmts, 0);
    return ok ? ORM_OK : pga_fail(c, NULL, err);
}

int pg_command_start(void *conn, const char *sql, orm_error *err)
{
    pg_conn *c = conn;
    int rc = pg_async_ready(c, err);
    if (rc != ORM_OK)
        return rc;
    c->aop = PG_AOP_COMMAND;
    c->acommit = strcmp(sql, "COMMIT") == 0;
    return PQsendQuery(c->pg, sql) ? ORM_OK : pga_fail(c, NULL, err);
}

/* The driver's ping_start: an empty query, as pg_ping sends. */
int pg_ping_start(void *conn, orm_error *err)
{
    return pg_command_start(conn, "", err);
}

/* The command is over: its outcome, as pg_exec gives it. */
static int pga_commanded(pg_conn *c, orm_error *err)
{
    int rc = ORM_OK;
    if (c->abad != NULL || c->ares == NULL)
        rc = pg_fail(c, c->abad, err);
    else if (c->acommit && strcmp(PQcmdStatus(c->ares), "ROLLBACK") == 0) {
        /* COMMIT of a transaction a failed statement had aborted */
        rc = orm_error_set(err, ORM_E_TX_ABORTED,
                           "the transaction was rolled back, not committed: "
                           "a statement inside it had failed");
        orm_error_set_sqlstate(err, "25P02");
    }
    if (rc != ORM_OK && c->aconnect) { /* the session settings failed */
        err->kind = ORM_E_CONNECTION_FAILED;
        rc = ORM_E_CONNECTION_FAILED;
        c->broken = 1;
    }
    c->aconnect = 0;
    pg_async_free(c);
    pga_end(c);
    return rc;
}

/* Keeps one result of the operation: the first failure, and for a prepare
 * the description (its second result), for a run the first result. */
static void pga_keep(pg_conn *c, PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_PIPELINE_ABORTED || t == PGRES_PIPELINE_SYNC ||
        c->askip > 0) { /* a DEALLOCATE's (pga_send_stale) */
        PQclear(res);
        return;
    }
    c->acount++;
    if (!pg_ok(res)) {
        if (c->abad == NULL)
            c->abad = res;
        else
            PQclear(res);
        return;
    }
    if (c->ares == NULL && (c->aop != PG_AOP_PREPARE || c->acount == 2))
        c->ares = res;
    else
        PQclear(res);
}

/* The prepare is over: the statement's parameter types, or the failure. */
static int pga_prepared(pg_conn *c, orm_error *err)
{
    pg_stmt *st = c->ast;
    PGresult *desc = c->ares;
    int i, rc = ORM_OK;
    if (!PQexitPipelineMode(c->pg))
        c->broken = 1;
    if (c->abad != NULL || desc == NULL || c->broken) {
        rc = pg_fail(c, c->broken ? NULL : c->abad, err);
        pg_async_free(c);
        pga_end(c);
        return rc;
    }
    st->prepared = !c->unnamed;
    if (pg_alloc_params(st, PQnparams(desc)) != 0)
        rc = pg_nomem(err);
    for (i = 0; rc == ORM_OK && i < st->nparams; i++)
        st->ptypes[i] = PQparamtype(desc, i);
    pg_async_free(c);
    pga_end(c);
    return rc;
}

/* The run is over: its result becomes the statement's rows. */
static int pga_ran(pg_conn *c, orm_error *err)
{
    pg_stmt *st = c->ast;
    PGresult *res = c->ares;
    int rc;
    if (c->abad != NULL || res == NULL) {
        rc = pg_fail(c, c->abad, err);
        pg_async_free(c);
        pga_end(c);
        return rc;
    }
    c->ares = NULL;
    pg_async_free(c);
    pga_end(c);
    return pg_take_result(st, res, err);
}

/* Opening: PQconnectPoll until connected (waiting as it says; it is first
 * called once the socket is writable), then the session settings. */
static int pga_connect(pg_conn *c, int *wait, orm_error *err)
{
    if (c->aconnect == 0) {
        c->aconnect = 2;
        *wait = ORM_WAIT_WRITE;
        return ORM_OK;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        *wait = ORM_WAIT_READ;
        return ORM_OK;
    case PGRES_POLLING_WRITING:
        *wait = ORM_WAIT_WRITE;
        return ORM_OK;
    case PGRES_POLLING_OK:
        c->aop = PG_AOP_NONE;
        if (pg_command_start(c, c->asession, err) != ORM_OK)
            break;
        c->aconnect = 1;
        *wait = ORM_WAIT_READ; /* the settings' answer */
        return ORM_OK;
    default:
        orm_error_set(err, ORM_E_CONNECTION_FAILED, "%s",
                      PQerrorMessage(c->pg));
        break;
    }
    c->broken = 1;
    c->aop = PG_AOP_NONE;
    err->kind = ORM_E_CONNECTION_FAILED;
    return ORM_E_CONNECTION_FAILED;
}

int pg_poll(void *conn, int *wait, orm_error *err)
{
    pg_conn *c = conn;
    PGresult *res;
    int f;
    *wait = ORM_WAIT_NONE;
    if (c->aop == PG_AOP_NONE)
        return ORM_OK;
    if (c->aop == PG_AOP_CONNECT)
        return pga_connect(c, wait, err);
    if (c->aop == PG_AOP_COPY)
        return pg_copy_poll(c, wait, err);
    f = PQflush(c->pg);
    if (f < 0)
        return pga_fail(c, NULL, err);
    if (!PQconsumeInput(c->pg))
        return pga_fail(c, NULL, err);
    if (f == 1) { /* more to send: writable, or readable (to drain) */
        *wait = ORM_WAIT_READ | ORM_WAIT_WRITE;
        return ORM_OK;
    }
    while (!PQisBusy(c->pg)) {
        res = PQgetResult(c->pg);
        if (res == NULL) {
            if (c->aop == PG_AOP_EXEC)
                return pga_ran(c, err);
            if (c->aop == PG_AOP_COMMAND)
                return pga_commanded(c, err);
            if (PQstatus(c->pg) == CONNECTION_BAD)
                return pga_fail(c, NULL, err);
            if (++c->anulls > 2)
                break; /* between a pipeline's results: read more */
            continue;
        }
        c->anulls = 0;
        if (c->aop == PG_AOP_PREPARE &&
            PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            if (c->askip > 0) { /* a DEALLOCATE's */
                c->askip--;
                continue;
            }
            return pga_prepared(c, err);
        }
        pga_keep(c, res);
    }
    *wait = ORM_WAIT_READ;
    return ORM_OK;
}
