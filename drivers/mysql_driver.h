/*
 * drivers/mysql_driver.h: what the files of the MySQL / MariaDB driver share
 * (mysql.c: connections, statements, results; mysql_async.c: running
 * statements with MariaDB Connector/C's non-blocking calls). Only the
 * driver includes it.
 */
#ifndef ORM_DRIVERS_MYSQL_DRIVER_H
#define ORM_DRIVERS_MYSQL_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "orm_decode.h"
#include "orm_driver.h"

#if !defined(MARIADB_PACKAGE_VERSION_ID) && MYSQL_VERSION_ID >= 80000
#include <stdbool.h>
typedef bool my_bool; /* MySQL 8's client library dropped the typedef */
#endif

#define MY_DEFAULT_HOST "127.0.0.1"
#define MY_DEFAULT_PORT 3306
#define MY_DEFAULT_TIMEOUT 10
#define MY_MIN_BUF 64  /* smallest result buffer for a string column */

struct my_stmt;

typedef struct my_conn {
    MYSQL *db;
    int broken;             /* 1 once the server connection was lost */
    struct my_stmt *stmts;  /* statements prepared on it, not finalized */
    int aop;                /* non-blocking operation in flight (MY_AOP_*) */
    struct my_stmt *ast;    /* its statement */
    int astatus;            /* what the library waits for (MYSQL_WAIT_*) */
    int atries;             /* runs of the statement (prepared again once) */
    int aconnect;           /* opening: 1 connecting, 2 session settings,
                               3 statement_timeout */
    double atimeout;        /* statement_timeout, set once connected */
    char asql[96];          /* the statement_timeout statement in flight */
    const char *ahost;      /* for the error message */
    unsigned int aport;
    int cancelled;          /* the round trip in flight was cancelled */
    int expired;            /* ... and gave no answer: given up (broken) */
    struct {
        char *host, *user, *password, *socket;
        unsigned int port;
    } kill;                 /* where KILL QUERY connects (with a timeout) */
    int anonblock;          /* 1 once a statement ran without blocking: one
                               to prepare again (unprepared) is prepared
                               by the next run, without blocking there */
} my_conn;

/* The deadline of a blocking round trip (mysql_wait.c). */
typedef struct my_deadline {
    double at;              /* monotonic seconds; 0 = none */
} my_deadline;

#define MY_AOP_NONE 0
#define MY_AOP_EXEC 1       /* mysql_stmt_execute_start / _cont */
#define MY_AOP_STORE 2      /* mysql_stmt_store_result_start / _cont */
#define MY_AOP_QUERY 3      /* mysql_real_query_start / _cont */
#define MY_AOP_PREPARE 4    /* mysql_stmt_prepare_start / _cont */
#define MY_AOP_CONNECT 5    /* mysql_real_connect_start / _cont */
#define MY_AOP_PING 6       /* mysql_ping_start / _cont */
#define MY_AOP_REPREPARE 7  /* mysql_stmt_prepare_start / _cont of a new
                               handle, then the run */

#define MY_NEW_STMT_METADATA 2057 /* CR_NEW_STMT_METADATA */

/* How column() turns a fetched column into an orm value. */
typedef enum my_ckind {
    MY_C_BOOL,     /* TINYINT(1) fetched as int64 */
    MY_C_INT,      /* signed integer types, and unsigned up to 32 bits */
    MY_C_UINT,     /* unsigned BIGINT: text when above INT64_MAX */
    MY_C_BIT,      /* BIT(n) fetched as raw bytes, read as unsigned int */
    MY_C_FLOAT,    /* FLOAT: shortest decimal that round-trips */
    MY_C_DOUBLE,
    MY_C_DECIMAL,  /* fetched as text, then int, double or text */
    MY_C_DATETIME, /* MYSQL_TIME -> "YYYY-MM-DDTHH:MM:SS[.f]Z" */
    MY_C_DATE,     /* MYSQL_TIME -> "YYYY-MM-DD" */
    MY_C_BLOB,     /* binary strings */
    MY_C_TEXT      /* everything else, fetched as text */
} my_ckind;

typedef struct my_col {
    my_ckind kind;
    unsigned decimals;   /* fractional second digits (datetime) */
    char *buf;           /* string columns: fetched bytes + NUL */
    unsigned long cap;   /* bytes allocated in buf */
    unsigned long len;   /* length of the current value */
    my_bool isnull;
    my_bool trunc;       /* set by the library when buf was too small */
    union {
        long long i;
        double d;
        float f;
        MYSQL_TIME t;
    } num;               /* fixed-size columns land here */
    char fmt[ORM_DATETIME_MAX]; /* formatted number / date of the current row */
} my_col;

typedef union my_param {
    long long i;
    double d;
    signed char b;
} my_param;

typedef struct my_stmt {
    MYSQL_STMT *st;
    my_conn *conn;
    char *sql;             /* the SQL text, to prepare again after DDL */
    size_t sqllen;         /* bytes in sql */
    int unprepared;        /* 1 when preparing it again failed: retried at
                              the next run */
    struct my_stmt *prev, *next; /* in conn->stmts */
    int nparams;
    MYSQL_BIND *pbind;     /* nparams parameter binds */
    my_param *pval;        /* nparams: copies of scalar parameters */
    unsigned long *plen;   /* nparams: text / blob lengths */
    int started;           /* executed since the last bind / reset */
    int done;              /* no more rows (or no result at all) */
    int ncols;             /* result columns of the current execution */
    int colcap;            /* slots allocated in rbind / cols */
    MYSQL_RES *meta;       /* result metadata (column names), or NULL */
    MYSQL_BIND *rbind;     /* colcap result binds */
    my_col *cols;          /* colcap column buffers */
    int64_t changes;
    int64_t last_id;
} my_stmt;

/* mysql.c */

/* The session settings every connection gets. */
extern const char my_session_sql[];
/* Sets the options every connection gets (nonzero on failure). */
int my_set_options(MYSQL *db, const orm_params *p);
/* The statement that sets statement_timeout (1), or none (0). */
int my_timeout_sql(MYSQL *db, double seconds, char *sql, size_t size);

/* Fill err from the connection's / statement's last error; return the kind
 * (a lost connection marks it broken). */
int my_conn_fail(my_conn *c, orm_error *err);
int my_stmt_fail(my_stmt *s, orm_error *err);
/* The connection_lost error. */
int my_lost(orm_error *err);
/* Reads and drops every result the last query produced. */
int my_drain(my_conn *c, orm_error *err);
/* Buffers the rows of the statement's result (mysql_stmt_store_result),
 * then binds the result buffers for its columns (my_bind_columns, once the
 * rows are buffered). */
int my_bind_result(my_stmt *s, orm_error *err);
int my_bind_columns(my_stmt *s, orm_error *err);
/* 1 when the statement only reads (it may run twice). */
int my_reads_only(const my_stmt *s);
/* 1 when DDL changed the result column names since it was prepared. */
int my_names_changed(my_stmt *s);
/* Prepares the statement again (blocking) with the same parameters. */
int my_reprepare(my_stmt *s, orm_error *err);
/* The parts of prepare around mysql_stmt_prepare: begin makes the
 * statement (NULL and nothing left on failure), end reads its parameters
 * after a successful prepare. */
int my_prepare_begin(my_conn *c, const char *sql, size_t len, my_stmt **out,
                     orm_error *err);
int my_prepare_end(my_stmt *s, orm_error *err);
/* The driver's prepare. */
int my_prepare(void *conn, const char *sql, size_t len, void **out,
               orm_error *err);

/* mysql_async.c: the driver's socket / prepare_start / exec_start / poll /
 * command_start (see orm_driver.h). */
int my_sockfd(void *conn);
int my_prepare_start(void *conn, const char *sql, size_t len, void **out,
                     orm_error *err);
int my_exec_start(void *stmt, orm_error *err);
int my_poll(void *conn, int *wait, orm_error *err);
int my_command_start(void *conn, const char *sql, orm_error *err);
int my_open_start(const orm_params *p, void **out, orm_error *err);
int my_ping_start(void *conn, orm_error *err);

/* mysql_wait.c: statement_timeout on the blocking calls, and the driver's
 * cancel (see orm_driver.h). */
int my_cancel(void *conn, orm_error *err);
/* Keeps p's statement_timeout, and where KILL QUERY connects when there is
 * one (nonzero: no memory); my_cancel_free frees that (at close). */
int my_cancel_keep(my_conn *c, const orm_params *p);
void my_cancel_free(my_conn *c);
/* Starts the deadline of a round trip (none without a timeout): the
 * grace left after a cancel when the statement was cancelled already
 * (its rows are read after it), else statement_timeout. A new statement
 * clears c->cancelled first. */
void my_deadline_start(my_conn *c, my_deadline *d);
/* Waits for what status (a _start / _cont result) asks, cancelling the
 * statement at the deadline: the status for _cont, or -1 when the
 * connection was given up (broken, expired). */
int my_deadline_wait(my_conn *c, my_deadline *d, int status);
/* mysql_stmt_execute, mysql_stmt_store_result, mysql_stmt_prepare and
 * mysql_real_query, bounded by the connection's statement_timeout when it
 * has one: 0 on success, nonzero on failure (read the error as usual). */
int my_q_execute(my_stmt *s);
int my_q_store(my_stmt *s);
int my_q_prepare(my_stmt *s, const char *sql, size_t len);
int my_q_query(my_conn *c, const char *sql, size_t len);
/* mysql_ping, within statement_timeout as my_q_query. */
int my_q_ping(my_conn *c);
/* The end of my_fail: a cancelled or given-up round trip's error says
 * statement_timeout. Returns the kind. */
int my_timeout_note(my_conn *c, int k, orm_error *err);

#endif
