/*
 * drivers/postgres.h: what the files of the PostgreSQL driver share
 * (postgres.c: connections, statements, results; postgres_copy.c: bulk
 * load through COPY FROM STDIN). Only the driver includes it.
 */
#ifndef ORM_DRIVERS_POSTGRES_H
#define ORM_DRIVERS_POSTGRES_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "orm_decode.h"
#include "orm_driver.h"

/* Parameters a statement may have: libpq 15 and 16 refuse a
 * ParameterDescription message over 30,000 bytes (4 + 2 + 4 per
 * parameter) and drop the connection. */
#define PG_MAX_PARAMS 7498

/* The longest session settings statement. */
#define PG_SESSION_MAX 192

/* A bulk load in progress on a connection (COPY ... FROM STDIN, text
 * format). */
typedef struct pg_copy {
    int active;             /* the server is in COPY IN for this connection */
    int ncols;              /* values per row */
    unsigned char *kinds;   /* ncols encodings, chosen from the column types */
    int kinds_cap;
    long long rows;         /* rows encoded since copy_begin */
    char *buf;              /* encoded rows not sent yet */
    size_t len, cap;
    int nb;                 /* copy_* only begin their round trips
                               (pg_copy_nonblocking); pg_poll ends them */
    int aphase;             /* PGC_A_*: the one in flight */
    const char *acopy;      /* the COPY statement, after the probe */
    int64_t *arows;         /* where the end puts the rows loaded */
    int64_t adone;          /* ... once the server said */
} pg_copy;

#define PGC_A_PROBE 1       /* the probe's answer */
#define PGC_A_OPEN 2        /* COPY ... FROM STDIN's answer */
#define PGC_A_SEND 3        /* rows being flushed */
#define PGC_A_END 4         /* the end sent: its answer */

typedef struct pg_conn pg_conn;

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

typedef struct pg_col {
    pg_ckind kind;          /* conversion chosen from the column type OID */
    unsigned char *bin;     /* bytea of the current row (PQfreemem) or NULL */
    size_t binlen;          /* bytes in bin */
    char ts[ORM_DATETIME_MAX];     /* timestamp of the current row, ISO 8601 */
} pg_col;

typedef struct pg_stmt {
    pg_conn *conn;          /* connection it was prepared on (outlives it) */
    unsigned long id;       /* number in the name, "orm_s<id>" */
    char name[32];          /* server-side prepared statement name */
    char *sql;              /* the SQL text (unnamed runs, re-prepares) */
    int prepared;           /* 1 once the server knows `name` */
    int typed;              /* 0 = parameter types not described (unnamed
                               statements with too many parameters) */
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

struct pg_conn {
    PGconn *pg;             /* libpq connection, owned */
    unsigned long next_id;  /* number of the last prepared statement name */
    unsigned long *stale;   /* statements finalized inside a transaction,
                               to DEALLOCATE once none is open */
    int nstale;             /* entries in stale */
    int stale_cap;          /* slots allocated in stale */
    int broken;             /* 1 once the server is known to be gone */
    int unnamed;            /* 1 = unnamed statements only (prepared_statements
                               = false): nothing stays on the server */
    pg_copy copy;           /* bulk load state */
    int aop;                /* non-blocking operation in flight (PG_AOP_*) */
    pg_stmt *ast;           /* its statement */
    PGresult *ares;         /* its kept result (a description, a result) */
    PGresult *abad;         /* its first failed result */
    int acount;             /* results seen */
    int anulls;             /* NULL results in a row (pipeline) */
    int acommit;            /* the command is a COMMIT */
    int aconnect;           /* 1 = the command is the session settings of
                               a connection being opened; 2 = PQconnectPoll
                               was called */
    char asession[PG_SESSION_MAX]; /* the session settings to send */
    int anonblock;          /* 1 once used without blocking: a finalized
                               statement's DEALLOCATE waits in `stale`
                               for the next prepare to send it along */
    int askip;              /* that prepare's syncs before its own */
    double timeout;         /* statement_timeout (seconds), 0 = none */
    int cancelled;          /* the round trip in flight was cancelled */
    int expired;            /* ... and gave no answer: given up (broken) */
};

/* The deadline of a blocking round trip (postgres_wait.c). */
typedef struct pg_deadline {
    double at;              /* monotonic seconds; 0 = none */
} pg_deadline;

#define PG_AOP_NONE 0
#define PG_AOP_PREPARE 1    /* prepare and describe, in a pipeline */
#define PG_AOP_EXEC 2       /* run a bound statement */
#define PG_AOP_COMMAND 3    /* run SQL with no parameters (BEGIN, COMMIT) */
#define PG_AOP_CONNECT 4    /* PQconnectPoll, then the session settings */
#define PG_AOP_COPY 5       /* a step of a bulk load (copy.aphase) */

/* postgres.c */

/* Fills err from a failed result (or from the connection when res is
 * NULL) and returns the kind; a lost server marks c broken. */
int pg_fail(pg_conn *c, const PGresult *res, orm_error *err);
/* The connection_lost error; returns its kind. */
int pg_lost(orm_error *err);
/* The out_of_memory error; returns its kind. */
int pg_nomem(orm_error *err);
/* 1 when res is a successful command or query result. */
int pg_ok(const PGresult *res);
/* 1 when the connection is known to be lost. */
int pg_broken(void *conn);
/* Writes d in the shortest form that reads back as the same double. */
void pg_format_double(char *buf, size_t size, double d);

/* A new statement for sql (len bytes), not yet known to the server:
 * refuses NUL bytes and parameters past PG_MAX_PARAMS. */
int pg_stmt_new(pg_conn *c, const char *sql, size_t len, pg_stmt **out,
                orm_error *err);
/* Fills the conninfo arrays (16 slots, NULL-terminated) for p; port and
 * timeout are the caller's 16-byte buffers for the numbers. */
void pg_conninfo(const orm_params *p, const char **keys, const char **vals,
                 char *port, char *timeout);
/* The session settings statement for p (size >= PG_SESSION_MAX). */
void pg_session_sql(const orm_params *p, char *sql, size_t size);
/* Allocates the per-parameter arrays for n parameters (0 or -1). */
int pg_alloc_params(pg_stmt *st, int n);
/* The highest $n in sql. */
int pg_count_params(const char *sql);
/* Keeps res as the statement's result (the rows step() reads). */
int pg_take_result(pg_stmt *st, PGresult *res, orm_error *err);
/* The driver's finalize. */
void pg_finalize(void *stmt);

/* postgres_async.c: the driver's socket / prepare_start / exec_start /
 * poll (see orm_driver.h). */
int pg_socket(void *conn);
int pg_prepare_start(void *conn, const char *sql, size_t len, void **out,
                     orm_error *err);
int pg_exec_start(void *stmt, orm_error *err);
int pg_poll(void *conn, int *wait, orm_error *err);
int pg_command_start(void *conn, const char *sql, orm_error *err);
int pg_open_start(const orm_params *p, void **out, orm_error *err);
int pg_ping_start(void *conn, orm_error *err);
/* Drops what an operation left (at close). */
void pg_async_free(pg_conn *c);

/* postgres_wait.c: statement_timeout on the blocking calls, and the
 * driver's cancel (see orm_driver.h; the engine calls it from a waiter's
 * loop, so it waits 50 ms at most for PQcancel, which goes on on its own
 * thread: the statement's grace runs through the waiter meanwhile). */
int pg_cancel(void *conn, orm_error *err);
/* Starts the deadline of a round trip (none without a timeout). */
void pg_deadline_start(pg_conn *c, pg_deadline *d);
/* Waits until a result can be read without blocking, cancelling the
 * statement at the deadline; 0, or -1 when the connection was given up
 * (broken, expired). */
int pg_deadline_wait(pg_conn *c, pg_deadline *d);
/* PQexec, PQprepare, PQdescribePrepared, and PQexecPrepared (or
 * PQexecParams for an unnamed connection) of st, bounded by the
 * connection's statement_timeout when it has one. */
PGresult *pg_q_exec(pg_conn *c, const char *sql);
PGresult *pg_q_prepare(pg_conn *c, const char *name, const char *sql, int n,
                       const Oid *types);
PGresult *pg_q_describe(pg_conn *c, const char *name);
PGresult *pg_q_run(pg_conn *c, const pg_stmt *st);
/* The end of pg_fail: a cancelled or given-up round trip's error says
 * statement_timeout. Returns the kind. */
int pg_timeout_note(pg_conn *c, int k, orm_error *err);

/* postgres_copy.c: the driver's copy_begin / copy_rows / copy_end (see
 * orm_driver.h). */
int pg_copy_begin(void *conn, const char *probe, const char *copy, int ncols,
                  orm_error *err);
int pg_copy_rows(void *conn, const orm_value *vals, int nrows, orm_error *err);
int pg_copy_end(void *conn, int64_t *rows, orm_error *err);

/* The driver's copy_nonblocking, and pg_poll's part for a load's step in
 * flight (PG_AOP_COPY). */
void pg_copy_nonblocking(void *conn, int on);
int pg_copy_poll(pg_conn *c, int *wait, orm_error *err);
/* Checks the connection can start an operation, in nonblocking mode
 * (postgres_async.c). */
int pg_async_ready(pg_conn *c, orm_error *err);

/* Ends a load left open (an error between copy_begin and copy_end) so the
 * connection can run other commands; nothing when none is open. */
void pg_copy_abort(pg_conn *c);

/* Frees the load's buffers (at close). */
void pg_copy_free(pg_copy *cp);

#endif
