/*
 * orm_pool.c: the connection pool of one data source. Thread-safe (one
 * mutex and condition variable); connections are opened and closed outside
 * the lock. Owns the copied connection parameters and the statistics.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "orm_pool.h"

/* A caller waiting for a connection without blocking (orm_pool_wait). */
struct orm_pool_wait {
    orm_pool_wait *next;  /* queue order: arrival */
    int fd;               /* eventfd, readable once granted */
    int queued;           /* still in the queue */
    int granted;          /* a connection (conn) or a slot to open (NULL) */
    orm_conn *conn;
    double deadline;      /* monotonic seconds: acquire_timeout */
};

struct orm_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const orm_driver *d;
    orm_params params;   /* strings owned by the pool */
    orm_pool_opts opts;
    orm_conn **idle;     /* LIFO stack of free connections */
    int nidle;
    int open;            /* open or being opened */
    int in_use;
    int closed;
    int refs;
    int64_t waits, timeouts, queries, errors, prepares_closed, expired;
    double total_ms;
    uint64_t rng;        /* xorshift state for the max_lifetime jitter */
    orm_pool_wait *qhead, *qtail; /* waits without blocking, FIFO */
};

static char *pool_strdup(const char *s, int *oom)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

static void pool_free_params(orm_params *p)
{
    free((char *)p->driver);
    free((char *)p->host);
    free((char *)p->database);
    free((char *)p->user);
    free((char *)p->password);
    free((char *)p->socket);
    free((char *)p->sslmode);
    free((char *)p->options);
    free((char *)p->path);
}

static int pool_copy_params(orm_params *dst, const orm_params *src)
{
    int oom = 0;
    *dst = *src;
    dst->driver = pool_strdup(src->driver, &oom);
    dst->host = pool_strdup(src->host, &oom);
    dst->database = pool_strdup(src->database, &oom);
    dst->user = pool_strdup(src->user, &oom);
    dst->password = pool_strdup(src->password, &oom);
    dst->socket = pool_strdup(src->socket, &oom);
    dst->sslmode = pool_strdup(src->sslmode, &oom);
    dst->options = pool_strdup(src->options, &oom);
    dst->path = pool_strdup(src->path, &oom);
    return oom ? -1 : 0;
}

/* Closes a connection, counting its prepared statements first. Called
 * with the lock held only for the counter; the close runs outside. */
static void pool_discard(orm_pool *p, orm_conn *c)
{
    pthread_mutex_lock(&p->mu);
    p->prepares_closed += orm_conn_prepares(c);
    pthread_mutex_unlock(&p->mu);
    orm_conn_close(c);
}

/* Gives a newly opened connection its max_lifetime deadline, shortened by
 * up to 10% at random so connections opened together do not all reconnect
 * at once. */
static void pool_set_lifetime(orm_pool *p, orm_conn *c)
{
    double jitter;
    if (p->opts.max_lifetime <= 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    jitter = (double)(p->rng >> 11) / 9007199254740992.0; /* [0, 1) */
    pthread_mutex_unlock(&p->mu);
    orm_conn_set_expires(c, orm_clock() +
                                p->opts.max_lifetime * (1.0 - 0.1 * jitter));
}

/* 1 when c is past its max_lifetime deadline. */
static int pool_too_old(const orm_conn *c, double now)
{
    double at = orm_conn_expires(c);
    return at > 0 && now >= at;
}

static void pool_destroy(orm_pool *p)
{
    int i;
    for (i = 0; i < p->nidle; i++)
        orm_conn_close(p->idle[i]);
    free(p->idle);
    pool_free_params(&p->params);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int orm_pool_new(const orm_driver *d, const orm_params *params,
                 const orm_pool_opts *opts, orm_pool **out, orm_error *err)
{
    orm_pool *p = calloc(1, sizeof *p);
    int i;
    *out = NULL;
    if (p == NULL)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->d = d;
    p->refs = 1;
    p->rng = ((uint64_t)(uintptr_t)p ^ (uint64_t)(orm_clock() * 1e9)) | 1;
    p->opts = *opts;
    if (p->opts.max < 1)
        p->opts.max = 1;
    if (params->memory)
        p->opts.max = 1; /* each connection would be a separate database */
    if (p->opts.min > p->opts.max)
        p->opts.min = p->opts.max;
    if (p->opts.min < 0)
        p->opts.min = 0;
    p->idle = calloc((size_t)p->opts.max, sizeof *p->idle);
    if (p->idle == NULL || pool_copy_params(&p->params, params) != 0) {
        pool_destroy(p);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    for (i = 0; i < p->opts.min; i++) {
        orm_conn *c;
        int rc = orm_conn_open(d, &p->params, &c, err);
        if (rc != ORM_OK) {
            pool_destroy(p);
            return rc;
        }
        pool_set_lifetime(p, c);
        p->idle[p->nidle++] = c;
        p->open++;
    }
    *out = p;
    return ORM_OK;
}

void orm_pool_set_min(orm_pool *p, int min)
{
    pthread_mutex_lock(&p->mu);
    p->opts.min = min < 0 ? 0 : min > p->opts.max ? p->opts.max : min;
    pthread_mutex_unlock(&p->mu);
}

void orm_pool_ref(orm_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->refs++;
    pthread_mutex_unlock(&p->mu);
}

void orm_pool_unref(orm_pool *p)
{
    int last;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last)
        pool_destroy(p);
}

/* Takes idle connections unused for longer than idle_timeout (keeping min
 * open), and those past max_lifetime, off the stack; the caller closes
 * them outside the lock. */
static int pool_expire(orm_pool *p, double now, orm_conn **out, int max)
{
    int i, j, n = 0, old;
    if (p->opts.idle_timeout <= 0 && p->opts.max_lifetime <= 0)
        return 0;
    for (i = 0, j = 0; i < p->nidle; i++) {
        orm_conn *c = p->idle[i];
        old = pool_too_old(c, now);
        if (n < max && (old || (p->opts.idle_timeout > 0 &&
                                p->open > p->opts.min &&
                                now - orm_conn_last_used(c) >
                                    p->opts.idle_timeout))) {
            out[n++] = c;
            p->open--;
            p->expired += old;
        } else
            p->idle[j++] = c;
    }
    p->nidle = j;
    return n;
}

static void pool_deadline(struct timespec *ts, double secs)
{
    double whole;
    double frac = modf(secs, &whole);
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)(frac * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Pings a connection taken from the idle stack when it has rested a while
 * (with defer, leaves that ping to the caller: 1). Returns 0 when it is
 * fit to hand out, -1 when broken, -2 when past its max_lifetime. */
static int pool_healthy(orm_conn *c, double now, double after, int defer)
{
    orm_error e;
    if (orm_conn_broken(c))
        return -1;
    if (pool_too_old(c, now))
        return -2;
    if (after > 0 && now - orm_conn_last_used(c) < after)
        return 0;
    if (defer)
        return 1;
    return orm_conn_ping(c, &e) == ORM_OK ? 0 : -1;
}

/* Opens a new connection for a slot already counted in open/in_use. */
/* Under the lock: hands c (or, when c is NULL and there is room, a slot to
 * open) to the first queued wait. Returns 1 when it did. */
static int pool_grant(orm_pool *p, orm_conn *c)
{
    orm_pool_wait *w = p->qhead;
    uint64_t one = 1;
    if (w == NULL || p->closed || (c == NULL && p->open >= p->opts.max))
        return 0;
    p->qhead = w->next;
    if (p->qhead == NULL)
        p->qtail = NULL;
    w->queued = 0;
    w->granted = 1;
    w->conn = c;
    p->in_use++;
    if (c == NULL)
        p->open++;
    if (write(w->fd, &one, sizeof one) < 0) {
        /* the counter cannot overflow: the waiter reads `granted` anyway */
    }
    return 1;
}

/* A connection the pool made room for could not be opened: the room goes
 * to the next wait. */
static void pool_open_failed(orm_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->open--;
    p->in_use--;
    pool_grant(p, NULL);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int pool_open_slot(orm_pool *p, orm_conn **out, orm_error *err)
{
    int rc = orm_conn_open(p->d, &p->params, out, err);
    if (rc == ORM_OK)
        pool_set_lifetime(p, *out);
    else {
        pool_open_failed(p);
    }
    return rc;
}

/* orm_pool_acquire; with check, an idle connection due for its health
 * check is handed out unpinged, *check set. */
static int pool_acquire(orm_pool *p, orm_conn **out, orm_error *err,
                        int *check)
{
    struct timespec deadline;
    int waited = 0;
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closed) {
            pthread_mutex_unlock(&p->mu);
            return orm_error_set(err, ORM_E_NOT_INITIALIZED,
                                 "data source is disposed");
        }
        if (p->nidle > 0) {
            orm_conn *c = p->idle[--p->nidle];
            double now = orm_clock();
            int fit;
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            fit = pool_healthy(c, now, p->opts.health_check, check != NULL);
            if (fit >= 0) {
                if (check != NULL)
                    *check = fit;
                *out = c;
                return ORM_OK;
            }
            pool_discard(p, c);
            pthread_mutex_lock(&p->mu);
            p->open--;
            p->in_use--;
            p->expired += fit == -2;
            continue;
        }
        if (p->open < p->opts.max) {
            p->open++;
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            return pool_open_slot(p, out, err);
        }
        if (!waited) {
            waited = 1;
            p->waits++;
            pool_deadline(&deadline, p->opts.acquire_timeout);
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT &&
            p->nidle == 0 && p->open >= p->opts.max) {
            p->timeouts++;
            pthread_mutex_unlock(&p->mu);
            return orm_error_set(err, ORM_E_POOL_TIMEOUT,
                                 "no free connection within %gs (max %d, all "
                                 "in use)",
                                 p->opts.acquire_timeout, p->opts.max);
        }
    }
}

int orm_pool_acquire(orm_pool *p, orm_conn **out, orm_error *err)
{
    return pool_acquire(p, out, err, NULL);
}

void orm_pool_release(orm_pool *p, orm_conn *c)
{
    orm_pool_finish(p, c, orm_clock(), -1, 0);
}

void orm_pool_record(orm_pool *p, double ms, int failed)
{
    pthread_mutex_lock(&p->mu);
    p->queries++;
    p->errors += failed != 0;
    p->total_ms += ms;
    pthread_mutex_unlock(&p->mu);
}

void orm_pool_finish(orm_pool *p, orm_conn *c, double now, double ms,
                     int failed)
{
    orm_conn *expired[8];
    int n, i, drop, old;
    orm_error e;
    if (c == NULL) {
        if (ms >= 0)
            orm_pool_record(p, ms, failed);
        return;
    }
    while (!orm_conn_broken(c) && orm_conn_depth(c) > 0)
        if (orm_conn_rollback(c, &e) != ORM_OK)
            break;
    old = pool_too_old(c, now);
    drop = orm_conn_broken(c) || orm_conn_depth(c) > 0 || old;
    orm_conn_touch(c, now);
    pthread_mutex_lock(&p->mu);
    if (ms >= 0) { /* orm_pool_record under the same lock */
        p->queries++;
        p->errors += failed != 0;
        p->total_ms += ms;
    }
    p->in_use--;
    p->expired += old && !orm_conn_broken(c);
    if (drop || p->closed) {
        p->open--;
        pool_grant(p, NULL);
    } else if (!pool_grant(p, c))
        p->idle[p->nidle++] = c;
    n = pool_expire(p, now, expired, 8);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (drop || p->closed)
        pool_discard(p, c);
    for (i = 0; i < n; i++)
        pool_discard(p, expired[i]);
}

void orm_pool_stats_get(orm_pool *p, orm_pool_stats *out)
{
    int i;
    pthread_mutex_lock(&p->mu);
    out->open = p->open;
    out->in_use = p->in_use;
    out->idle = p->nidle;
    out->waits = p->waits;
    out->timeouts = p->timeouts;
    out->queries = p->queries;
    out->errors = p->errors;
    out->total_ms = p->total_ms;
    out->prepares = p->prepares_closed;
    out->expired = p->expired;
    for (i = 0; i < p->nidle; i++)
        out->prepares += orm_conn_prepares(p->idle[i]);
    pthread_mutex_unlock(&p->mu);
}

const orm_driver *orm_pool_driver(const orm_pool *p)
{
    return p->d;
}

void orm_pool_close(orm_pool *p)
{
    orm_pool_wait *w;
    orm_conn **idle;
    int n, i;
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->closed = 1;
    for (w = p->qhead; w != NULL; w = w->next) { /* they see `closed` */
        uint64_t one = 1;
        if (write(w->fd, &one, sizeof one) < 0) {
            /* nothing to do: the waiter times out */
        }
    }
    idle = p->idle;
    n = p->nidle;
    p->nidle = 0;
    p->open -= n;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < n; i++)
        pool_discard(p, idle[i]);
}

int orm_pool_closed(orm_pool *p)
{
    int closed;
    pthread_mutex_lock(&p->mu);
    closed = p->closed;
    pthread_mutex_unlock(&p->mu);
    return closed;
}

/* {==== waiting without blocking ====} */

/* Under the lock: takes w out of the queue. */
static void pool_unqueue(orm_pool *p, orm_pool_wait *w)
{
    orm_pool_wait **pp = &p->qhead, *prev = NULL;
    while (*pp != NULL && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == w) {
        *pp = w->next;
        if (p->qtail == w)
            p->qtail = prev;
    }
    w->queued = 0;
}

static void pool_wait_free(orm_pool_wait *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

int orm_pool_acquire_start(orm_pool *p, orm_conn **out, orm_pool_wait **wp,
                           int *slot, orm_error *err)
{
    orm_pool_wait *w;
    int check = 0, rc;
    *out = NULL;
    *wp = NULL;
    *slot = 0;
    pthread_mutex_lock(&p->mu);
    if (!p->closed && p->qhead == NULL && p->nidle == 0 &&
        p->open < p->opts.max && p->d->open_start != NULL) {
        p->open++; /* room: the caller opens it (orm_pool_open_start) */
        p->in_use++;
        pthread_mutex_unlock(&p->mu);
        *slot = ORM_POOL_SLOT_OPEN;
        return ORM_OK;
    }
    if (p->closed || (p->qhead == NULL &&
                      (p->nidle > 0 || p->open < p->opts.max))) {
        pthread_mutex_unlock(&p->mu); /* no wait: the usual checkout */
        rc = pool_acquire(p, out, err, p->d->ping_start ? &check : NULL);
        if (check)
            *slot = ORM_POOL_SLOT_CHECK;
        return rc;
    }
    w = calloc(1, sizeof *w);
    if (w != NULL)
        w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w == NULL || w->fd < 0) {
        pthread_mutex_unlock(&p->mu);
        if (w != NULL)
            free(w);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    w->queued = 1;
    w->deadline = orm_clock() + p->opts.acquire_timeout;
    if (p->qtail != NULL)
        p->qtail->next = w;
    else
        p->qhead = w;
    p->qtail = w;
    p->waits++;
    pthread_mutex_unlock(&p->mu);
    *wp = w;
    return ORM_OK;
}

int orm_pool_wait_fd(const orm_pool_wait *w)
{
    return w->fd;
}

double orm_pool_wait_left(const orm_pool_wait *w)
{
    double left = w->deadline - orm_clock();
    return left > 0 ? left : 0;
}

int orm_pool_acquire_poll(orm_pool *p, orm_pool_wait *w, orm_conn **out,
                          int *slot, orm_error *err)
{
    int granted, closed;
    orm_conn *c;
    *out = NULL;
    *slot = 0;
    pthread_mutex_lock(&p->mu);
    granted = w->granted;
    c = w->conn;
    closed = p->closed;
    if (!granted && (closed || orm_clock() >= w->deadline)) {
        pool_unqueue(p, w);
        p->timeouts += !closed;
    }
    pthread_mutex_unlock(&p->mu);
    if (granted) {
        pool_wait_free(w);
        if (c != NULL) {
            *out = c;
            return ORM_OK;
        }
        if (p->d->open_start != NULL) {
            *slot = ORM_POOL_SLOT_OPEN;
            return ORM_OK;
        }
        return pool_open_slot(p, out, err);
    }
    if (!closed && w->queued)
        return ORM_OK; /* not yet: wait again */
    pool_wait_free(w);
    if (closed)
        return orm_error_set(err, ORM_E_NOT_INITIALIZED,
                             "data source is disposed");
    return orm_error_set(err, ORM_E_POOL_TIMEOUT,
                         "no free connection within %gs (max %d, all in use)",
                         p->opts.acquire_timeout, p->opts.max);
}

void orm_pool_wait_cancel(orm_pool *p, orm_pool_wait *w)
{
    int granted;
    orm_conn *c;
    if (w == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    if (w->queued)
        pool_unqueue(p, w);
    granted = w->granted;
    c = w->conn;
    if (granted && c == NULL) { /* a slot it will not open */
        p->open--;
        p->in_use--;
        pool_grant(p, NULL);
    }
    pthread_mutex_unlock(&p->mu);
    pool_wait_free(w);
    if (granted && c != NULL)
        orm_pool_release(p, c);
}

int orm_pool_open_start(orm_pool *p, orm_conn **out, orm_error *err)
{
    int rc = orm_conn_open_start(p->d, &p->params, out, err);
    if (rc != ORM_OK)
        orm_pool_open_done(p, NULL, rc, err);
    return rc;
}

void orm_pool_open_done(orm_pool *p, orm_conn *c, int rc, orm_error *err)
{
    if (rc == ORM_OK) {
        pool_set_lifetime(p, c);
        return;
    }
    orm_conn_close(c);
    if (err != NULL)
        orm_params_redact(err, &p->params);
    pool_open_failed(p);
}

double orm_pool_connect_timeout(const orm_pool *p)
{
    return p->params.timeout > 0 ? p->params.timeout : 10;
}
