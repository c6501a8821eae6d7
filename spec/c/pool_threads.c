/*
 * spec/c/pool_threads.c: a C host sharing one pool between threads. Eight
 * threads check connections out of a pool of three (SQLite file), insert
 * rows in transactions, and check them back in; the program prints what it
 * saw for spec/pool_threads_spec.lua to judge. Usage: pool_threads PATH.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orm_pool.h"

#define THREADS 8
#define ROUNDS 50

typedef struct worker {
    orm_pool *pool;
    int id;
    int failures;
} worker;

/* Runs one statement with n bound values to completion. */
static int run(orm_conn *c, const char *sql, const orm_value *v, int n,
               orm_error *err)
{
    void *stmt;
    int rc = orm_conn_start(c, sql, strlen(sql), v, n, &stmt, err);
    if (rc != ORM_OK)
        return rc;
    while ((rc = orm_conn_step(c, stmt, err)) == ORM_STEP_ROW)
        ;
    orm_conn_finish(c, stmt);
    return rc == ORM_STEP_DONE ? ORM_OK : err->kind;
}

static void *work(void *arg)
{
    worker *w = arg;
    int i;
    for (i = 0; i < ROUNDS; i++) {
        orm_conn *c;
        orm_error err;
        orm_value v[2];
        int rc = orm_pool_acquire(w->pool, &c, &err);
        if (rc != ORM_OK) {
            w->failures++;
            continue;
        }
        v[0] = orm_value_int(w->id);
        v[1] = orm_value_int(i);
        rc = orm_conn_begin(c, &err);
        if (rc == ORM_OK)
            rc = run(c, "INSERT INTO hits (thread, round) VALUES (?, ?)", v, 2,
                     &err);
        if (rc == ORM_OK)
            rc = orm_conn_commit(c, &err);
        else
            orm_conn_rollback(c, &err);
        if (rc != ORM_OK) {
            fprintf(stderr, "thread %d: %s\n", w->id, err.message);
            w->failures++;
        }
        orm_pool_record(w->pool, 0.0, rc != ORM_OK);
        orm_pool_release(w->pool, c);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    orm_params p;
    orm_pool_opts o = {3, 1, 30.0, 0.0, 2.0, 0.0};
    orm_pool *pool;
    orm_conn *c;
    orm_error err;
    orm_pool_stats s;
    pthread_t th[THREADS];
    worker w[THREADS];
    int i, failures = 0;
    if (argc != 2)
        return 2;
    memset(&p, 0, sizeof p);
    p.driver = "sqlite";
    p.path = argv[1];
    p.timeout = 30;
    if (orm_pool_new(&orm_sqlite_driver, &p, &o, &pool, &err) != ORM_OK ||
        orm_pool_acquire(pool, &c, &err) != ORM_OK ||
        orm_conn_exec(c, "PRAGMA journal_mode = WAL", &err) != ORM_OK ||
        orm_conn_exec(c, "CREATE TABLE hits (thread INTEGER, round INTEGER)",
                      &err) != ORM_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    orm_pool_release(pool, c);
    for (i = 0; i < THREADS; i++) {
        w[i].pool = pool;
        w[i].id = i;
        w[i].failures = 0;
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    orm_pool_stats_get(pool, &s);
    printf("failures=%d queries=%lld open=%d in_use=%d idle=%d waits=%lld\n",
           failures, (long long)s.queries, s.open, s.in_use, s.idle,
           (long long)s.waits);
    orm_pool_close(pool);
    orm_pool_unref(pool);
    return 0;
}
