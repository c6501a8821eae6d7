/*
 * drivers/mysql_async.c: the MySQL / MariaDB driver without blocking, for
 * hosts with an event loop: a bound statement runs through MariaDB
 * Connector/C's non-blocking calls (mysql_stmt_execute_start / _cont, then
 * its rows are buffered with mysql_stmt_store_result_start / _cont, so
 * step() reads them without waiting), and so do transaction statements
 * (mysql_real_query_start / _cont); my_poll tells the caller what to wait
 * for on mysql_get_socket, and a statement is prepared with
 * mysql_stmt_prepare_start / _cont; a connection opens with
 * mysql_real_connect_start / _cont, then its session settings; a ping
 * with mysql_ping_start / _cont.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysql_driver.h"

int my_sockfd(void *conn)
{
    return (int)mysql_get_socket(((my_conn *)conn)->db);
}

/* Whether c can begin an operation: my_lost when it is broken, or still in
 * another one (abandoned: its state is unknown, so c is given up). */
static int mya_free(my_conn *c, orm_error *err)
{
    if (c->broken)
        return my_lost(err);
    if (c->aop != MY_AOP_NONE) {
        c->broken = 1;
        return my_lost(err);
    }
    return ORM_OK;
}

int my_prepare_start(void *conn, const char *sql, size_t len, void **out,
                     orm_error *err)
{
    my_conn *c = conn;
    my_stmt *s;
    int ret = 0, rc;
    *out = NULL;
    if (c->aop != MY_AOP_NONE)
        return mya_free(c, err);
    rc = my_prepare_begin(c, sql, len, &s, err);
    if (rc != ORM_OK)
        return rc;
    *out = s;
    c->cancelled = 0;
    c->aop = MY_AOP_PREPARE;
    c->ast = s;
    c->astatus = mysql_stmt_prepare_start(&ret, s->st, s->sql,
                                          (unsigned long)s->sqllen);
    if (c->astatus == 0) { /* over already */
        c->aop = MY_AOP_NONE;
        c->ast = NULL;
        return ret != 0 ? my_stmt_fail(s, err) : my_prepare_end(s, err);
    }
    return ORM_OK;
}

/* What the library's status asks for, as ORM_WAIT_*. */
static int mya_wait(int status)
{
    int w = 0;
    if (status & MYSQL_WAIT_READ)
        w |= ORM_WAIT_READ;
    if (status & MYSQL_WAIT_WRITE)
        w |= ORM_WAIT_WRITE;
    return w ? w : ORM_WAIT_READ;
}

/* What happened, for _cont: the socket became ready as asked. */
static int mya_ready(const my_conn *c)
{
    return c->astatus & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
}

static int mya_end(my_conn *c, int rc)
{
    c->aop = MY_AOP_NONE;
    c->ast = NULL;
    c->astatus = 0;
    return rc;
}

int my_open_start(const orm_params *p, void **out, orm_error *err)
{
    my_conn *c;
    MYSQL *ret = NULL;
    *out = NULL;
    mysql_library_init(0, NULL, NULL);
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->db = mysql_init(NULL)) == NULL) {
        free(c);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    c->ahost = p->host != NULL ? p->host
               : p->socket != NULL ? "localhost" : MY_DEFAULT_HOST;
    c->aport = p->port > 0 ? (unsigned int)p->port : MY_DEFAULT_PORT;
    if (my_set_options(c->db, p) != 0 || my_cancel_keep(c, p) != 0) {
        my_cancel_free(c);
        mysql_close(c->db);
        free(c);
        return orm_error_set(err, ORM_E_CONNECTION_FAILED,
                             "mysql: cannot set connection options");
    }
    c->aop = MY_AOP_CONNECT;
    c->aconnect = 1;
    c->astatus = mysql_real_connect_start(&ret, c->db, c->ahost, p->user,
                                          p->password, p->database, c->aport,
                                          p->socket, CLIENT_FOUND_ROWS);
    if (c->astatus == 0 && ret == NULL)
        c->astatus = -1; /* failed at once: reported by the first poll */
    *out = c;
    return ORM_OK;
}

/* The connection is open: its session settings, then statement_timeout,
 * each a query started here (ORM_OK), or the failure. */
static int mya_session(my_conn *c, orm_error *err)
{
    const char *next = NULL;
    if (c->aconnect == 1)
        next = my_session_sql;
    else if (c->aconnect == 2 && my_timeout_sql(c->db, c->atimeout, c->asql,
                                                sizeof c->asql))
        next = c->asql; /* the library may read it after this returns */
    c->aop = MY_AOP_NONE;
    if (next == NULL) {
        c->aconnect = 0;
        return ORM_OK;
    }
    c->aconnect++;
    return my_command_start(c, next, err);
}

/* Opening failed: connection_failed, naming the server. */
static int mya_connect_failed(my_conn *c, orm_error *err)
{
    int stage = c->aconnect;
    c->broken = 1;
    c->aconnect = 0;
    mya_end(c, 0);
    return orm_error_set(err, ORM_E_CONNECTION_FAILED,
                         stage <= 1 ? "cannot connect to mysql at %s:%u: %s"
                                    : "mysql at %s:%u: cannot set up the "
                                      "session: %s",
                         c->ahost, c->aport, mysql_error(c->db));
}

/* The new handle of a statement prepared again is prepared (ret its
 * outcome): its parameters are bound, as my_reprepare does, and the run
 * begins. */
static int mya_reprepared(my_conn *c, my_stmt *s, int ret, orm_error *err)
{
    int r = 0;
    if (ret != 0)
        return mya_end(c, my_stmt_fail(s, err));
    if ((int)mysql_stmt_param_count(s->st) != s->nparams)
        return mya_end(c, orm_error_set(err, ORM_E_QUERY, "statement changed "
                                                          "its parameters"));
    if (s->nparams > 0 && mysql_stmt_bind_param(s->st, s->pbind) != 0)
        return mya_end(c, my_stmt_fail(s, err));
    s->unprepared = 0;
    c->aop = MY_AOP_EXEC;
    c->astatus = mysql_stmt_execute_start(&r, s->st);
    (void)r; /* read again when the operation is over */
    return ORM_OK;
}

/* my_reprepare without blocking: a new handle, prepared with
 * mysql_stmt_prepare_start / _cont (my_poll), then run. */
static int mya_reprepare_start(my_conn *c, my_stmt *s, orm_error *err)
{
    MYSQL_STMT *st = mysql_stmt_init(c->db);
    my_bool on = 1;
    int ret = 0;
    s->unprepared = 1;
    if (st == NULL) /* the old handle stays, unprepared is retried */
        return mya_end(c, orm_error_set(err, ORM_E_NOMEM, "out of memory"));
    if (s->meta != NULL) {
        mysql_free_result(s->meta);
        s->meta = NULL;
    }
    mysql_stmt_close(s->st);
    s->st = st;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    c->aop = MY_AOP_REPREPARE;
    c->ast = s;
    c->astatus = mysql_stmt_prepare_start(&ret, st, s->sql,
                                          (unsigned long)s->sqllen);
    return c->astatus == 0 ? mya_reprepared(c, s, ret, err) : ORM_OK;
}

int my_exec_start(void *stmt, orm_error *err)
{
    my_stmt *s = stmt;
    my_conn *c = s->conn;
    int ret = 0;
    if (mya_free(c, err) != ORM_OK)
        return err->kind;
    s->started = 1;
    c->cancelled = 0;
    c->anonblock = 1;
    c->aop = MY_AOP_EXEC;
    c->ast = s;
    c->atries = 0;
    if (s->unprepared) /* my_bind left it to the run */
        return mya_reprepare_start(c, s, err);
    c->astatus = mysql_stmt_execute_start(&ret, s->st);
    (void)ret; /* read again when the operation is over */
    return ORM_OK;
}

int my_command_start(void *conn, const char *sql, orm_error *err)
{
    my_conn *c = conn;
    int ret = 0;
    if (mya_free(c, err) != ORM_OK)
        return err->kind;
    c->aop = MY_AOP_QUERY;
    c->cancelled = 0;
    c->astatus = mysql_real_query_start(&ret, c->db, sql,
                                        (unsigned long)strlen(sql));
    if (c->astatus == 0 && ret != 0)
        return mya_end(c, my_conn_fail(c, err));
    return ORM_OK;
}

/* The ping failed: connection_lost, as my_ping. */
static int mya_ping_failed(my_conn *c, orm_error *err)
{
    my_conn_fail(c, err);
    err->kind = ORM_E_CONNECTION_LOST;
    c->broken = 1;
    return mya_end(c, ORM_E_CONNECTION_LOST);
}

int my_ping_start(void *conn, orm_error *err)
{
    my_conn *c = conn;
    int ret = 0;
    if (mya_free(c, err) != ORM_OK)
        return err->kind;
    c->aop = MY_AOP_PING;
    c->astatus = mysql_ping_start(&ret, c->db);
    if (c->astatus == 0 && ret != 0)
        return mya_ping_failed(c, err);
    return ORM_OK;
}

/* The rows are buffered (ret the outcome of mysql_stmt_store_result):
 * the result columns are bound, or the failure is the run's (one the
 * server interrupted, statement_timeout, is prepared again at its next
 * run, as my_step does). */
static int mya_stored(my_conn *c, my_stmt *s, int ret, orm_error *err)
{
    if (ret == 0)
        return mya_end(c, my_bind_columns(s, err));
    s->done = 1;
    if (my_stmt_fail(s, err) == ORM_E_QUERY_TIMEOUT)
        s->unprepared = 1;
    return mya_end(c, err->kind);
}

/* The statement ran (mysql_stmt_execute gave 0, or rc its failure): what
 * my_execute does next, without blocking for the rows. Returns ORM_OK with
 * the next operation started (or none left), or the error kind. */
static int mya_executed(my_conn *c, my_stmt *s, int failed, orm_error *err)
{
    my_ulonglong rows;
    int ret = 0;
    if (failed) {
        if (mysql_stmt_errno(s->st) != MY_NEW_STMT_METADATA ||
            c->atries++ > 0 || !my_reads_only(s))
            goto fail;
        goto again; /* DDL changed its columns: prepared again, run again */
    }
    rows = mysql_stmt_affected_rows(s->st);
    s->changes = rows == (my_ulonglong)~0ULL ? 0 : (int64_t)rows;
    s->last_id = (int64_t)mysql_stmt_insert_id(s->st);
    s->meta = mysql_stmt_result_metadata(s->st);
    if (s->meta != NULL && c->atries == 0 && my_names_changed(s) &&
        my_reads_only(s)) {
        c->atries++;
        mysql_stmt_store_result(s->st);
        goto again;
    }
    if (s->meta == NULL) {
        s->done = 1;
        return mya_end(c, mysql_stmt_errno(s->st) != 0 ? my_stmt_fail(s, err)
                                                       : ORM_OK);
    }
    s->changes = 0;
    s->last_id = 0;
    if (s->st->state != MYSQL_STMT_WAITING_USE_OR_STORE) /* came along */
        return mya_end(c, my_bind_columns(s, err));
    c->aop = MY_AOP_STORE;
    c->astatus = mysql_stmt_store_result_start(&ret, s->st);
    if (c->astatus == 0)
        return mya_stored(c, s, ret, err);
    return ORM_OK;

again:
    return mya_reprepare_start(c, s, err);

fail:
    if (mysql_stmt_errno(s->st) == MY_NEW_STMT_METADATA)
        s->unprepared = 1; /* it ran: prepared again at its next run */
    my_stmt_fail(s, err);
    if (err->kind == ORM_E_QUERY_TIMEOUT)
        s->unprepared = 1; /* see my_step */
    return mya_end(c, err->kind);
}

int my_poll(void *conn, int *wait, orm_error *err)
{
    my_conn *c = conn;
    my_stmt *s = c->ast;
    int ret = 0, rc;
    my_bool bret = 0;
    MYSQL *mret = NULL;
    *wait = ORM_WAIT_NONE;
    for (;;) {
        switch (c->aop) {
        case MY_AOP_NONE:
            return ORM_OK;
        case MY_AOP_CONNECT:
            if (c->astatus == -1)
                return mya_connect_failed(c, err);
            if (c->astatus != 0) {
                c->astatus = mysql_real_connect_cont(&mret, c->db,
                                                     mya_ready(c));
                if (c->astatus != 0)
                    break;
                if (mret == NULL)
                    return mya_connect_failed(c, err);
            }
            if (mya_session(c, err) != ORM_OK)
                return mya_connect_failed(c, err);
            continue;
        case MY_AOP_EXEC:
            if (c->astatus != 0) {
                c->astatus = mysql_stmt_execute_cont(&ret, s->st, mya_ready(c));
                if (c->astatus != 0)
                    break;
            } else
                ret = (int)mysql_stmt_errno(s->st) != 0;
            rc = mya_executed(c, s, ret != 0, err);
            if (rc != ORM_OK) {
                s->done = 1;
                if (rc == ORM_E_QUERY_TIMEOUT)
                    s->unprepared = 1; /* see my_step */
                return rc;
            }
            continue;
        case MY_AOP_STORE:
            c->astatus = mysql_stmt_store_result_cont(&ret, s->st,
                                                      mya_ready(c));
            if (c->astatus != 0)
                break;
            return mya_stored(c, s, ret, err);
        case MY_AOP_PREPARE:
            c->astatus = mysql_stmt_prepare_cont(&ret, s->st, mya_ready(c));
            if (c->astatus != 0)
                break;
            return mya_end(c, ret != 0 ? my_stmt_fail(s, err)
                                       : my_prepare_end(s, err));
        case MY_AOP_QUERY:
            if (c->astatus != 0) {
                c->astatus = mysql_real_query_cont(&ret, c->db, mya_ready(c));
                if (c->astatus != 0)
                    break;
                if (ret != 0)
                    return c->aconnect ? mya_connect_failed(c, err)
                                       : mya_end(c, my_conn_fail(c, err));
            }
            (void)bret;
            /* BEGIN / COMMIT give no rows; anything else is drained */
            rc = my_drain(c, err);
            if (c->aconnect == 0)
                return mya_end(c, rc);
            if (rc != ORM_OK || mya_session(c, err) != ORM_OK)
                return mya_connect_failed(c, err);
            continue;
        case MY_AOP_REPREPARE:
            c->astatus = mysql_stmt_prepare_cont(&ret, s->st, mya_ready(c));
            if (c->astatus != 0)
                break;
            rc = mya_reprepared(c, s, ret, err);
            if (rc != ORM_OK) {
                s->done = 1;
                return rc;
            }
            continue;
        case MY_AOP_PING:
            if (c->astatus != 0) {
                c->astatus = mysql_ping_cont(&ret, c->db, mya_ready(c));
                if (c->astatus != 0)
                    break;
                if (ret != 0)
                    return mya_ping_failed(c, err);
            }
            return mya_end(c, ORM_OK);
        default:
            return mya_end(c, ORM_OK);
        }
        *wait = mya_wait(c->astatus);
        return ORM_OK;
    }
}
