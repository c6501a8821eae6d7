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

#include "orm_driver.h"

/* Parameters a statement may have: libpq 15 and 16 refuse a
 * ParameterDescription message over 30,000 bytes (4 + 2 + 4 per
 * parameter) and drop the connection. */
#define PG_MAX_PARAMS 7498

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
} pg_copy;

typedef struct pg_conn {
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
} pg_conn;

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

/* postgres_copy.c: the driver's copy_begin / copy_rows / copy_end (see
 * orm_driver.h). */
int pg_copy_begin(void *conn, const char *probe, const char *copy, int ncols,
                  orm_error *err);
int pg_copy_rows(void *conn, const orm_value *vals, int nrows, orm_error *err);
int pg_copy_end(void *conn, int64_t *rows, orm_error *err);

/* Ends a load left open (an error between copy_begin and copy_end) so the
 * connection can run other commands; nothing when none is open. */
void pg_copy_abort(pg_conn *c);

/* Frees the load's buffers (at close). */
void pg_copy_free(pg_copy *cp);

#endif
