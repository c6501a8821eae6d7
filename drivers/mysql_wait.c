/*
 * drivers/mysql_wait.c: statement_timeout kept by the client on MySQL /
 * MariaDB. With a timeout, each blocking round trip of a statement
 * (prepare, execute, store the rows, a plain query) runs through MariaDB
 * Connector/C's non-blocking calls, waiting on mysql_get_socket with
 * poll() until the deadline; past it the statement is cancelled (KILL
 * QUERY from a short-lived second connection opened with the same
 * parameters, whose connect, read and write time out after
 * ORM_CANCEL_GRACE seconds) and its answer read; no answer ORM_CANCEL_GRACE
 * seconds after the deadline gives the connection up. Without a timeout
 * the plain blocking calls run, as fast as ever. Also the driver's cancel,
 * and the error of a cancelled statement.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/socket.h>

#include "mysql_driver.h"

static double myw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *myw_dup(const char *s)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = malloc(strlen(s) + 1);
    if (d != NULL)
        strcpy(d, s);
    return d;
}

int my_cancel_keep(my_conn *c, const orm_params *p)
{
    c->atimeout = p->statement_timeout;
    if (p->statement_timeout <= 0)
        return 0;
    c->kill.host = myw_dup(p->host != NULL ? p->host
                           : p->socket != NULL ? "localhost" : MY_DEFAULT_HOST);
    c->kill.user = myw_dup(p->user);
    c->kill.password = myw_dup(p->password);
    c->kill.socket = myw_dup(p->socket);
    c->kill.port = p->port > 0 ? (unsigned int)p->port : MY_DEFAULT_PORT;
    return c->kill.host == NULL || (p->user && !c->kill.user) ||
           (p->password && !c->kill.password) ||
           (p->socket && !c->kill.socket);
}

void my_cancel_free(my_conn *c)
{
    if (c->expired) /* no statement close may wait for its answer */
        shutdown((int)mysql_get_socket(c->db), SHUT_RDWR);
    free(c->kill.host);
    free(c->kill.user);
    if (c->kill.password != NULL)
        memset(c->kill.password, 0, strlen(c->kill.password));
    free(c->kill.password);
    free(c->kill.socket);
    memset(&c->kill, 0, sizeof c->kill);
}

/* The driver's cancel: KILL QUERY <thread id> from a second connection. */
int my_cancel(void *conn, orm_error *err)
{
    my_conn *c = conn;
    unsigned int secs = (unsigned int)ORM_CANCEL_GRACE;
    char sql[48];
    MYSQL *k;
    int rc = ORM_OK;
    c->cancelled = 1;
    if (c->kill.host == NULL)
        return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                             "could not cancel the statement: no "
                             "statement_timeout");
    k = mysql_init(NULL);
    if (k == NULL)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    mysql_options(k, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(k, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(k, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    snprintf(sql, sizeof sql, "KILL QUERY %lu", mysql_thread_id(c->db));
    if (mysql_real_connect(k, c->kill.host, c->kill.user, c->kill.password,
                           NULL, c->kill.port, c->kill.socket, 0) == NULL ||
        mysql_real_query(k, sql, (unsigned long)strlen(sql)) != 0) {
        rc = orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                           "could not cancel the statement: %s",
                           mysql_error(k));
        orm_error_redact(err, c->kill.password,
                         (const char *const[]){c->kill.user, c->kill.host,
                                               c->kill.socket},
                         3);
    }
    mysql_close(k);
    return rc;
}

void my_deadline_start(my_conn *c, my_deadline *d)
{
    double limit = c->cancelled ? ORM_CANCEL_GRACE : c->atimeout;
    d->at = c->atimeout > 0 ? myw_now() + limit : 0;
}

int my_deadline_wait(my_conn *c, my_deadline *d, int status)
{
    struct pollfd pfd;
    orm_error ignored;
    double left;
    int ms, n, lib = -1;
    for (;;) {
        left = d->at - myw_now();
        if (left <= 0 && c->cancelled) { /* no answer to the cancel either */
            c->broken = c->expired = 1;
            return -1;
        }
        if (left <= 0) { /* the grace counts from the deadline */
            d->at = myw_now() + ORM_CANCEL_GRACE;
            my_cancel(c, &ignored); /* its outcome is the statement's */
            continue;
        }
        ms = (int)(left * 1000.0) + 1;
        if (status & MYSQL_WAIT_TIMEOUT) {
            lib = (int)mysql_get_timeout_value_ms(c->db);
            if (lib < ms)
                ms = lib;
        }
        pfd.fd = (int)mysql_get_socket(c->db);
        pfd.events = (short)(((status & MYSQL_WAIT_READ) ? POLLIN : 0) |
                             ((status & MYSQL_WAIT_WRITE) ? POLLOUT : 0) |
                             ((status & MYSQL_WAIT_EXCEPT) ? POLLPRI : 0));
        pfd.revents = 0;
        n = poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 || n < 0)
            return ((pfd.revents & (POLLIN | POLLHUP | POLLERR))
                        ? MYSQL_WAIT_READ : 0) |
                   ((pfd.revents & POLLOUT) ? MYSQL_WAIT_WRITE : 0) |
                   ((pfd.revents & POLLPRI) ? MYSQL_WAIT_EXCEPT : 0) |
                   (n < 0 ? MYSQL_WAIT_READ : 0);
        if (lib >= 0 && ms == lib)
            return MYSQL_WAIT_TIMEOUT; /* the library's own timeout */
    }
}

/* Continues a statement's non-blocking call; a connection's. */
typedef int (*myw_stmt_cont)(int *ret, MYSQL_STMT *st, int status);
typedef int (*myw_db_cont)(int *ret, MYSQL *db, int status);

/* Runs a non-blocking call on a statement to its end within the deadline
 * (d started before its _start, status what _start returned): 0 when it
 * succeeded, 1 when it failed, -1 when the connection was given up. */
static int myw_run_stmt(my_stmt *s, my_deadline *d, int status, int *ret,
                        myw_stmt_cont cont)
{
    while (status != 0) {
        status = my_deadline_wait(s->conn, d, status);
        if (status < 0)
            return -1;
        status = cont(ret, s->st, status);
    }
    return *ret != 0;
}

int my_q_execute(my_stmt *s)
{
    my_deadline d;
    int ret = 0;
    s->conn->cancelled = 0; /* a new statement */
    if (s->conn->atimeout <= 0)
        return mysql_stmt_execute(s->st);
    my_deadline_start(s->conn, &d);
    return myw_run_stmt(s, &d, mysql_stmt_execute_start(&ret, s->st), &ret,
                        mysql_stmt_execute_cont);
}

int my_q_store(my_stmt *s)
{
    my_deadline d;
    int ret = 0;
    if (s->conn->atimeout <= 0)
        return mysql_stmt_store_result(s->st);
    my_deadline_start(s->conn, &d);
    return myw_run_stmt(s, &d, mysql_stmt_store_result_start(&ret, s->st),
                        &ret, mysql_stmt_store_result_cont);
}

int my_q_prepare(my_stmt *s, const char *sql, size_t len)
{
    my_deadline d;
    int ret = 0;
    s->conn->cancelled = 0; /* a new statement */
    if (s->conn->atimeout <= 0)
        return mysql_stmt_prepare(s->st, sql, (unsigned long)len);
    my_deadline_start(s->conn, &d);
    return myw_run_stmt(s, &d,
                        mysql_stmt_prepare_start(&ret, s->st, sql,
                                                 (unsigned long)len),
                        &ret, mysql_stmt_prepare_cont);
}

/* Finishes a connection-level call begun with status (its _start's),
 * waiting for the socket until the deadline; what the call returned
 * (0 = success), or -1 when it was given up. */
static int myw_run_db(my_conn *c, my_deadline *d, int status, int *ret,
                      myw_db_cont cont)
{
    while (status != 0) {
        status = my_deadline_wait(c, d, status);
        if (status < 0)
            return -1;
        status = cont(ret, c->db, status);
    }
    return *ret != 0;
}

int my_q_query(my_conn *c, const char *sql, size_t len)
{
    my_deadline d;
    int ret = 0;
    c->cancelled = 0; /* a new statement */
    if (c->atimeout <= 0)
        return mysql_real_query(c->db, sql, (unsigned long)len);
    my_deadline_start(c, &d);
    return myw_run_db(c, &d,
                      mysql_real_query_start(&ret, c->db, sql,
                                             (unsigned long)len),
                      &ret, mysql_real_query_cont);
}

int my_q_ping(my_conn *c)
{
    my_deadline d;
    int ret = 0;
    c->cancelled = 0;
    if (c->atimeout <= 0)
        return mysql_ping(c->db);
    my_deadline_start(c, &d);
    return myw_run_db(c, &d, mysql_ping_start(&ret, c->db), &ret,
                      mysql_ping_cont);
}

int my_timeout_note(my_conn *c, int k, orm_error *err)
{
    char msg[sizeof err->message], state[sizeof err->sqlstate];
    int code = err->code;
    if (c == NULL)
        return k;
    if (c->expired) {
        c->broken = 1;
        return orm_error_set(err, ORM_E_QUERY_TIMEOUT,
                             "statement_timeout (%gs) passed and the server "
                             "did not answer its cancel within %gs: the "
                             "connection is closed", c->atimeout,
                             ORM_CANCEL_GRACE);
    }
    if (!c->cancelled || k != ORM_E_QUERY_TIMEOUT)
        return k;
    snprintf(msg, sizeof msg, "%s", err->message);
    snprintf(state, sizeof state, "%s", err->sqlstate);
    orm_error_set(err, k, "statement_timeout (%gs) passed: %s", c->atimeout,
                  msg);
    orm_error_set_sqlstate(err, state);
    err->code = code;
    return k;
}
