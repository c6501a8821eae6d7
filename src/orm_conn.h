/*
 * orm_conn.h: an engine connection: one driver connection, its cache of
 * prepared statements (a repeated SQL text is prepared once per
 * connection), and its transaction depth (savepoints when nested).
 */
#ifndef ORM_CONN_H
#define ORM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "orm_driver.h"

typedef struct orm_conn orm_conn;

/* Opens a connection through driver d. On success *out owns it; on failure
 * returns the kind with err filled (password redacted) and *out is NULL. */
int orm_conn_open(const orm_driver *d, const orm_params *p, orm_conn **out,
                  orm_error *err);

/* As orm_conn_open, without blocking (drivers with open_start): *out is
 * connecting; orm_conn_poll until ORM_WAIT_NONE (the caller enforces the
 * connect timeout and closes it after a failure, whose message it
 * redacts). */
int orm_conn_open_start(const orm_driver *d, const orm_params *p,
                        orm_conn **out, orm_error *err);

/* Finalizes cached statements and closes. NULL is fine. */
void orm_conn_close(orm_conn *c);

const orm_driver *orm_conn_driver(const orm_conn *c);
const orm_dialect *orm_conn_dialect(const orm_conn *c);

/* Round trip to the server. ORM_OK or an error kind. */
int orm_conn_ping(orm_conn *c, orm_error *err);

/* SQL with no parameters and no rows. */
int orm_conn_exec(orm_conn *c, const char *sql, orm_error *err);

/* Takes the prepared statement for `sql` from the cache (preparing it on a
 * miss) and binds `n` values. On success *stmt is ready for
 * orm_conn_step(); the caller must call orm_conn_finish() when done with
 * it, on every path. On failure nothing needs finishing. */
int orm_conn_start(orm_conn *c, const char *sql, size_t len,
                   const orm_value *binds, int n, void **stmt, orm_error *err);

/* ORM_STEP_ROW, ORM_STEP_DONE or ORM_STEP_ERROR (err filled; a lost
 * connection marks c broken). */
int orm_conn_step(orm_conn *c, void *stmt, orm_error *err);

/* Resets the statement and returns it to the cache. */
void orm_conn_finish(orm_conn *c, void *stmt);

/* Transactions: depth 0 -> BEGIN, deeper -> SAVEPOINT orm_sp_<depth>;
 * commit/rollback undo one level (COMMIT / RELEASE SAVEPOINT, ROLLBACK /
 * ROLLBACK TO SAVEPOINT). On failure the depth is unchanged, except that a
 * failed top-level COMMIT or ROLLBACK leaves depth 0: a failed COMMIT is
 * rolled back (or the connection marked broken), never left open, and
 * raises transaction_aborted when the database had aborted the
 * transaction (PostgreSQL after a failed statement), naming that
 * statement's error. */
int orm_conn_begin(orm_conn *c, orm_error *err);
int orm_conn_commit(orm_conn *c, orm_error *err);
int orm_conn_rollback(orm_conn *c, orm_error *err);
int orm_conn_depth(const orm_conn *c);

/* The parts of begin / commit / rollback, for callers that send the
 * statement themselves (without blocking): tx_start puts the statement in
 * orm_conn_tx_sql (invalid_argument when no transaction is open to end),
 * tx_done applies its outcome rc (the depth, a failed COMMIT as above) and
 * returns the final one. */
typedef enum orm_tx_op { ORM_TX_BEGIN, ORM_TX_COMMIT, ORM_TX_ROLLBACK } orm_tx_op;
int orm_conn_tx_start(orm_conn *c, orm_tx_op op, orm_error *err);
int orm_conn_tx_done(orm_conn *c, orm_tx_op op, int rc, orm_error *err);

/* The text of the transaction statement the last begin/commit/rollback
 * sent ("" when it sent none), for listeners and statistics. */
const char *orm_conn_tx_sql(const orm_conn *c);

/* Bulk load through the driver's copy_* calls (orm_driver.h); NULL
 * calls (a driver without them) give invalid_argument. A failure marks a
 * lost connection broken, like a statement's. */
int orm_conn_copy_begin(orm_conn *c, const char *probe, const char *copy,
                        int ncols, orm_error *err);
int orm_conn_copy_rows(orm_conn *c, const orm_value *vals, int nrows,
                       orm_error *err);
int orm_conn_copy_end(orm_conn *c, int64_t *rows, orm_error *err);

/* Turns the driver's bulk load without blocking on or off (see
 * copy_nonblocking in orm_driver.h: orm_conn_poll ends each step); 0 when
 * the driver has none. */
int orm_conn_copy_nonblocking(orm_conn *c, int on);

/* After a statement: checks that the server's transaction state is the
 * one ormed keeps (a raw BEGIN, COMMIT or, on MySQL, DDL can change it
 * behind its back). A transaction opened outside ds:transaction is rolled
 * back (invalid_argument); one ended inside it is noted as for
 * orm_conn_sync_tx (transaction_aborted). ORM_OK when all agrees or the
 * driver cannot tell. */
int orm_conn_check_tx(orm_conn *c, orm_error *err);

/* After a failed statement: notes when the database ended ormed's open
 * transaction (a deadlock rolls it back on MySQL): later statements on the
 * connection are then refused (transaction_aborted) until ormed ends the
 * transaction's levels, which sends nothing and raises
 * transaction_aborted. orm_conn_check_tx does the same after a statement
 * that ended it and succeeded. */
void orm_conn_sync_tx(orm_conn *c);

/* 1 when the connection was lost and must not be reused. */
int orm_conn_broken(const orm_conn *c);

/* How many statements this connection has prepared (cache misses). */
int64_t orm_conn_prepares(const orm_conn *c);

/* Monotonic time (seconds) after which the pool closes the connection
 * instead of reusing it (max_lifetime); 0 = never. Set by the pool. */
double orm_conn_expires(const orm_conn *c);
void orm_conn_set_expires(orm_conn *c, double at);

/* Monotonic time (seconds) of last use, maintained by the pool. */
double orm_conn_last_used(const orm_conn *c);
void orm_conn_touch(orm_conn *c, double now);

/* Without blocking, for hosts with an event loop (drivers with poll):
 * orm_conn_can_poll tells whether the driver has it. prepare_start takes
 * the cached statement for sql (*pending 0) or begins preparing it
 * (*pending 1: orm_conn_poll until ORM_WAIT_NONE, then orm_conn_prepared
 * caches it); exec_start binds n values and begins running it (poll until
 * ORM_WAIT_NONE, then orm_conn_step reads the rows). *wait says what the
 * socket (orm_conn_socket) must be ready for. Failures as orm_conn_start
 * and orm_conn_step; the statement is finished by the caller either way.
 * A connection whose operation was abandoned in flight is marked broken
 * (orm_conn_set_broken) so the pool never lends it again. */
int orm_conn_can_poll(const orm_conn *c);
int orm_conn_socket(const orm_conn *c);
int orm_conn_prepare_start(orm_conn *c, const char *sql, size_t len, int n,
                           void **stmt, int *pending, orm_error *err);
void orm_conn_prepared(orm_conn *c, const char *sql, size_t len, void *stmt);
int orm_conn_exec_start(orm_conn *c, void *stmt, const orm_value *binds,
                        int n, orm_error *err);
int orm_conn_poll(orm_conn *c, int *wait, orm_error *err);
/* After orm_conn_poll asked to wait: *left receives how long the wait may
 * last (seconds; -1 = no limit: no statement_timeout, or a driver without
 * cancel). Each round trip the calls above begin has statement_timeout;
 * at its deadline the statement is cancelled (the driver's cancel, once;
 * its poll then ends with query_timeout) and ORM_CANCEL_GRACE more is
 * allowed; past that the connection is marked broken and query_timeout
 * returned, err filled. ORM_OK otherwise. */
int orm_conn_deadline_left(orm_conn *c, double *left, orm_error *err);
/* orm_conn_poll, then, while the round trip still waits, how long it may
 * (orm_conn_deadline_left): *left is -1 otherwise. ORM_OK or the error
 * kind of either, err filled. What every waiting loop calls. */
int orm_conn_poll_left(orm_conn *c, int *wait, double *left,
                       orm_error *err);
/* Begins SQL with no parameters and no rows (as orm_conn_exec); poll
 * until ORM_WAIT_NONE for its outcome. */
int orm_conn_command_start(orm_conn *c, const char *sql, orm_error *err);
/* Begins a ping (drivers with ping_start); poll until ORM_WAIT_NONE for
 * its outcome. A failed ping is the caller's to turn into connection_lost
 * (and the connection broken), as orm_conn_ping does. */
int orm_conn_ping_start(orm_conn *c, orm_error *err);
void orm_conn_set_broken(orm_conn *c);

/* Monotonic clock in seconds. */
double orm_clock(void);

#endif
