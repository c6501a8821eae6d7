/*
 * orm_pool.h: a thread-safe pool of engine connections for one data source,
 * with acquire timeout, idle expiry, health checks and statistics.
 */
#ifndef ORM_POOL_H
#define ORM_POOL_H

#include <stdint.h>

#include "orm_conn.h"

typedef struct orm_pool orm_pool;

typedef struct orm_pool_opts {
    int max;                /* most open connections (>= 1) */
    int min;                /* connections opened by orm_pool_new and kept */
    double acquire_timeout; /* seconds a caller waits for a free connection */
    double idle_timeout;    /* seconds before an idle connection is closed
                               (0 = never) */
    double health_check;    /* seconds idle after which a checkout pings the
                               connection first (0 = every checkout) */
    double max_lifetime;    /* seconds after its opening when a connection
                               is closed instead of reused, less up to 10%
                               random jitter per connection (0 = never) */
} orm_pool_opts;

typedef struct orm_pool_stats {
    int open;           /* connections open */
    int in_use;         /* checked out */
    int idle;           /* open and free */
    int64_t waits;      /* acquires that had to wait */
    int64_t timeouts;   /* acquires that gave up */
    int64_t queries;    /* statements recorded */
    int64_t errors;     /* failed statements recorded */
    int64_t prepares;   /* statements prepared (cache misses), all conns */
    int64_t expired;    /* connections closed for reaching max_lifetime */
    double total_ms;    /* time spent in recorded statements */
} orm_pool_stats;

/* Creates a pool (copying d's params) and opens opts->min connections.
 * On failure returns the kind (connection_failed for the first open) and
 * *out is NULL. The pool starts with one reference. */
int orm_pool_new(const orm_driver *d, const orm_params *p,
                 const orm_pool_opts *opts, orm_pool **out, orm_error *err);

/* Sets the connections the pool keeps open (clamped to 0..max), for a
 * pool made with min 0 whose caller opens them itself (without blocking:
 * checking them out and back in). */
void orm_pool_set_min(orm_pool *p, int min);

/* Reference counting, so several Lua states / threads can share one pool;
 * the last orm_pool_unref closes and frees it. NULL is fine. */
void orm_pool_ref(orm_pool *p);
void orm_pool_unref(orm_pool *p);

/* Checks out a connection: an idle one (pinged first when it has been idle
 * health_check seconds or more; discarded and replaced when the ping fails
 * or it is past max_lifetime), a new one while
 * fewer than max are open, or waits up to acquire_timeout
 * (ORM_E_POOL_TIMEOUT). A failed open returns connection_failed and leaves
 * the pool usable. ORM_E_NOT_INITIALIZED after orm_pool_close. */
int orm_pool_acquire(orm_pool *p, orm_conn **out, orm_error *err);

/* Checking out without blocking (a host with an event loop):
 * orm_pool_acquire_start checks out as orm_pool_acquire when a connection
 * is free or may be opened (*w NULL), and otherwise queues a wait (*w, in
 * arrival order; *out NULL) whose fd (orm_pool_wait_fd, an eventfd)
 * becomes readable once a released connection, or room to open one, is
 * handed to it. orm_pool_acquire_poll then returns ORM_OK with *out set (w
 * is freed), ORM_OK with *out NULL (not yet: wait again, for at most
 * orm_pool_wait_left seconds), or pool_timeout once acquire_timeout has
 * passed (w is freed). orm_pool_wait_cancel gives a wait up (a connection
 * handed over meanwhile goes back) and frees it. */
typedef struct orm_pool_wait orm_pool_wait;
int orm_pool_acquire_start(orm_pool *p, orm_conn **out, orm_pool_wait **w,
                           int *slot, orm_error *err);
int orm_pool_wait_fd(const orm_pool_wait *w);
double orm_pool_wait_left(const orm_pool_wait *w);
int orm_pool_acquire_poll(orm_pool *p, orm_pool_wait *w, orm_conn **out,
                          int *slot, orm_error *err);

/* *slot = ORM_POOL_SLOT_OPEN from the two above (drivers with open_start):
 * room for a new connection was reserved for the caller, who opens it
 * without blocking:
 * orm_pool_open_start (a failure frees the room), orm_conn_poll until
 * ORM_WAIT_NONE or orm_pool_connect_timeout seconds, then
 * orm_pool_open_done with the outcome (a failure closes c, frees the room
 * and redacts err; err may be NULL). */
#define ORM_POOL_SLOT_OPEN 1
/* *slot = ORM_POOL_SLOT_CHECK (drivers with ping_start): *out is an idle
 * connection due for its health check, which the caller makes without
 * blocking (orm_conn_ping_start); one that fails it is marked broken and
 * released (orm_pool_release closes it), and the caller checks out
 * again. */
#define ORM_POOL_SLOT_CHECK 2
int orm_pool_open_start(orm_pool *p, orm_conn **out, orm_error *err);
void orm_pool_open_done(orm_pool *p, orm_conn *c, int rc, orm_error *err);
double orm_pool_connect_timeout(const orm_pool *p);
void orm_pool_wait_cancel(orm_pool *p, orm_pool_wait *w);

/* Returns a connection. A broken one, one past max_lifetime, or one left
 * inside a transaction (rolled back first), is closed instead of reused. */
void orm_pool_release(orm_pool *p, orm_conn *c);

/* Records one statement for the statistics. */
void orm_pool_record(orm_pool *p, double ms, int failed);

/* orm_pool_release(p, c) (nothing when c is NULL) and, when ms >= 0,
 * orm_pool_record(p, ms, failed), under one lock: the end of a statement
 * that checked out its connection; now is orm_clock(). */
void orm_pool_finish(orm_pool *p, orm_conn *c, double now, double ms,
                     int failed);

void orm_pool_stats_get(orm_pool *p, orm_pool_stats *out);

const orm_driver *orm_pool_driver(const orm_pool *p);

/* Closes idle connections and refuses further acquires; connections still
 * checked out are closed when released. Idempotent. */
void orm_pool_close(orm_pool *p);
int orm_pool_closed(orm_pool *p);

#endif
