/*
 * lua_rows.c: insert and upsert of one row or a list of rows: rows read
 * straight from Lua tables into batches of the dialect's best statement
 * size, a new statement when the columns change, the whole list all or
 * nothing (one transaction or savepoint), and, where the dialect has it,
 * a bulk load (COPY) instead of multi-row INSERTs; the list's steps form a
 * state machine, so that with a waiter each statement may yield.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_query.h"

/* {==== writes ====} */

/* State of an insert / upsert of many rows, sent in batches that share
 * one column set and stay under the dialect's parameter limit. */
typedef struct lqw_rows {
    orm_qwrite_kind kind;
    const char *fname;
    int cols;       /* stack slot: list of the current columns (strings) */
    int tmpslot;    /* stack slot: userdata holding tmp, ckey, okey, perm */
    const void **ckey; /* ckey[c]: the string object of cols[c] (kept by
                          cols) */
    const void **okey; /* the keys in the order the last row listed them */
    int *perm;      /* perm[j]: index in cols of okey[j] */
    int nordered;   /* entries in okey; 0 when unknown */
    int ncols;      /* -1 before the first row */
    int per_stmt;   /* rows per statement */
    int pending;    /* rows in the payload */
    orm_value *tmp; /* the values of the row being read */
    int cidx;       /* 0, or the slot of an all-or-nothing group's
                       connection (orm_lua_atomic_new) */
    int copy;       /* 1: rows go through the dialect's bulk load */
    int copysql;    /* stack slot: the open load's COPY text, or nil */
    double t0;      /* clock when the open load started */
    int tidx;       /* the caller's target */
    int unique;     /* upsert: stack index of unique_by */
    int update;     /* upsert: stack index of update_columns (may be nil) */
} lqw_rows;

/* A string or a list of strings at idx (nil allowed when opt): calls
 * add for each. */
static void lqw_name_args(lua_State *L, query_ud *u, int idx,
                          int (*add)(orm_query *, const char *, size_t,
                                     orm_error *),
                          const char *fname, const char *what)
{
    orm_error err;
    size_t n;
    int i, len;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &n);
        if (add(&u->q, s, n, &err) != ORM_OK)
            lq_raise(L, &err);
        return;
    }
    len = lq_list_len(L, idx);
    if (len < 0)
        orm_lua_argerror(L, "%s: %s must be a column name or a list of them",
                         fname, what);
    for (i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        const char *s = lq_str(L, -1, fname, "column name", &n);
        if (add(&u->q, s, n, &err) != ORM_OK)
            lq_raise(L, &err);
        lua_pop(L, 1);
    }
}

/* 1 when the string at -1 is one of the unique_by names. */
static int lqw_is_unique(lua_State *L, lqw_rows *x)
{
    int i, len, hit = 0;
    if (lua_type(L, x->unique) == LUA_TSTRING)
        return lua_rawequal(L, -1, x->unique);
    len = (int)lua_rawlen(L, x->unique);
    for (i = 1; i <= len && !hit; i++) {
        lua_rawgeti(L, x->unique, i);
        hit = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
    }
    return hit;
}

static void lqw_upsert_cols(lua_State *L, query_ud *u, lqw_rows *x)
{
    orm_error err;
    int i;
    lqw_name_args(L, u, x->unique, orm_query_write_unique, x->fname,
                  "unique_by");
    if (!lua_isnoneornil(L, x->update)) {
        lqw_name_args(L, u, x->update, orm_query_write_update, x->fname,
                      "update_columns");
        return;
    }
    for (i = 1; i <= x->ncols; i++) {
        size_t n;
        const char *s;
        lua_rawgeti(L, x->cols, i);
        s = lua_tolstring(L, -1, &n);
        if (!lqw_is_unique(L, x) &&
            orm_query_write_update(&u->q, s, n, &err) != ORM_OK)
            lq_raise(L, &err);
        lua_pop(L, 1);
    }
}

/* Starts a payload for the sorted columns of the row at r. */
static void lqw_rows_begin(lua_State *L, query_ud *u, lqw_rows *x, int r,
                           int max_params)
{
    orm_error err;
    int i, n;
    lq_key *k = lq_keys(L, r, 0, &n, x->fname);
    x->tmp = lua_newuserdatauv(L, (sizeof(orm_value) + 2 * sizeof(char *) +
                                   sizeof(int)) * (size_t)(n ? n : 1), 0);
    x->ckey = (const void **)(x->tmp + (n ? n : 1));
    x->okey = x->ckey + (n ? n : 1);
    x->perm = (int *)(x->okey + (n ? n : 1));
    lua_replace(L, x->tmpslot);
    x->nordered = 0;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        lua_pushlstring(L, k[i].s, k[i].n);
        x->ckey[i] = lua_topointer(L, -1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, x->cols);
    x->ncols = n;
    orm_query_write_begin(&u->q, x->kind);
    for (i = 0; i < n; i++)
        if (orm_query_write_column(&u->q, k[i].s, k[i].n, &err) != ORM_OK)
            lq_raise(L, &err);
    lua_pop(L, 1); /* the keys */
    if (x->kind == ORM_QW_UPSERT)
        lqw_upsert_cols(L, u, x);
    x->per_stmt = n > 0 && max_params / n > 0 ? max_params / n : 1;
    x->pending = 0;
}

/* 1 when the row at r has exactly the current columns; fills x->tmp
 * (strings borrowed from the row). */
static int lqw_row_fits(lua_State *L, lqw_rows *x, int r)
{
    int i, count = 0;
    if (x->ncols < 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, r)) {
        lua_pop(L, 1);
        count++;
    }
    if (count != x->ncols)
        return 0;
    for (i = 0; i < x->ncols; i++) {
        lua_rawgeti(L, x->cols, i + 1);
        if (lua_rawget(L, r) == LUA_TNIL) {
            lua_pop(L, 1);
            return 0;
        }
        lq_value(L, -1, x->fname, &x->tmp[i]);
        lua_pop(L, 1);
    }
    return 1;
}

/* Notes the order in which the row at r (which fits) lists its keys, so
 * the next rows built alike are read in one pass (lqw_row_fast). Keys are
 * matched by their string object: a short string is one object in a Lua
 * state; rows keyed by long strings (over 40 bytes) keep the general
 * path. */
static void lqw_row_learn(lua_State *L, lqw_rows *x, int r)
{
    int j = 0;
    x->nordered = 0;
    lua_pushnil(L);
    while (lua_next(L, r)) { /* key value */
        const void *k;
        int c;
        lua_pop(L, 1);
        k = lua_topointer(L, -1);
        for (c = 0; c < x->ncols && x->ckey[c] != k; c++)
            ;
        if (c == x->ncols || j == x->ncols) {
            lua_pop(L, 1);
            return;
        }
        x->okey[j] = k;
        x->perm[j++] = c;
    }
    x->nordered = j;
}

/* 1 when the row at r lists exactly the learned keys in the learned order
 * and every value converts; fills x->tmp (strings borrowed from the row).
 * 0 leaves the row to lqw_row_fits, which also reports what is wrong. */
static int lqw_row_fast(lua_State *L, lqw_rows *x, int r)
{
    orm_error err;
    int j = 0;
    if (x->nordered == 0 || x->nordered != x->ncols)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, r)) { /* key value */
        if (j == x->ncols || lua_topointer(L, -2) != x->okey[j] ||
            orm_lua_tovalue(L, -1, &x->tmp[x->perm[j]], &err) != ORM_OK) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1); /* the row keeps strings alive */
        j++;
    }
    return j == x->ncols;
}

/* The texts of a bulk load of the payload's columns: its COPY statement
 * goes in x->copysql and its probe is pushed. */
static void lqw_copy_sql(lua_State *L, query_ud *u, lq_sink *s, lqw_rows *x)
{
    orm_buf copy, probe;
    orm_error err;
    int rc;
    orm_buf_init(&copy);
    orm_buf_init(&probe);
    rc = orm_compile_copy(&u->q, s->d, &copy, &probe, &err);
    if (rc == ORM_OK) {
        lua_pushlstring(L, copy.p, copy.len);
        lua_replace(L, x->copysql);
        lua_pushlstring(L, probe.p, probe.len);
    }
    orm_buf_free(&copy);
    orm_buf_free(&probe);
    if (rc != ORM_OK)
        lq_raise(L, &err);
}

/* 1 when a list of n rows (at a) takes more than one INSERT, judged by
 * its first row's columns: then a bulk load is worth its round trips. */
static int lqw_copy_pays(lua_State *L, const orm_dialect *d, int a, int n)
{
    int cols = 0;
    if (lua_rawgeti(L, a, 1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            cols++;
        }
    }
    lua_pop(L, 1);
    return cols > 0 && (lua_Integer)n * cols > d->insert_batch;
}

static int lqw_has_keys(lua_State *L, int t)
{
    lua_pushnil(L);
    if (!lua_next(L, t))
        return 0;
    lua_pop(L, 2);
    return 1;
}

int lq_waiting(lua_State *L, const lq_sink *s)
{
    if (s->tidx == 0 || !orm_lua_waiter(L))
        return 0;
    lua_pop(L, 1);
    return 1;
}

/* A list of rows being sent: on the C stack, or (with a waiter) in a
 * userdata on the method's stack (slot), so a statement may yield in
 * between and lqw_k goes on. */
typedef struct lqw_job {
    lqw_rows x;
    lq_sink s;
    int a;          /* the row or list */
    int single;     /* the table at a is the only row */
    int i, n;       /* next row, rows */
    int row;        /* stack slot: the row being added */
    int phase;      /* LQW_*: what comes next */
    int resume;     /* ... after the payload is sent (LQW_FLUSH) */
    int more;       /* rows remain after that payload */
    int waiting, slot;
    int errslot;    /* stack slot: a step's error, while the group rolls
                       back (with a waiter) */
} lqw_job;

enum {
    LQW_NEXT,    /* take the next row */
    LQW_READ,    /* read it into the payload's columns */
    LQW_NEWCOLS, /* its columns differ: a new payload */
    LQW_PUT,     /* add it to the payload */
    LQW_FLUSH,   /* send the payload (then `resume`)... */
    LQW_OPENED,  /* ... in the group, once it has begun */
    LQW_SEND,
    LQW_SENT,    /* its result on top */
    LQW_END,     /* the rows are sent: end the load, */
    LQW_COMMIT,  /* commit the group */
    LQW_DONE,    /* and push the result */
    LQW_BEGINCOLS,   /* a new payload's columns, once a load is ended */
    LQW_COPY_OPENED, /* a load began: the probe and its clock on top */
    LQW_COPY_ROWS,   /* send the payload through it */
    LQW_COPY_ENDED,  /* the rows it loaded on top (then `resume`) */
    LQW_FAILED,      /* a step's error on top: roll the group back, */
    LQW_RAISE        /* then raise it */
};

static int lqw_k(lua_State *L, int status, lua_KContext ctx);

/* With a waiter: makes the call pushed (nargs arguments, nres results)
 * with lua_pcallk, so that a failure rolls the group back through the
 * waiter too (LQW_FAILED) before it is raised. */
static void lqw_call(lua_State *L, lqw_job *j, int nargs, int nres)
{
    if (lua_pcallk(L, nargs, nres, 0, (lua_KContext)j->slot, lqw_k) !=
        LUA_OK)
        j->phase = LQW_FAILED;
}

static void lqw_flush(lqw_job *j, int more, int resume)
{
    j->more = more;
    j->resume = resume;
    j->phase = LQW_FLUSH;
}

/* Ends the open bulk load, if any (its rows then on top, LQW_COPY_ENDED),
 * then `next`. */
static void lqw_copy_close(lua_State *L, lqw_job *j, int next)
{
    lqw_rows *x = &j->x;
    if (!x->copy || lua_isnil(L, x->copysql)) {
        j->phase = next;
        return;
    }
    j->resume = next;
    j->phase = LQW_COPY_ENDED;
    if (j->waiting)
        lqw_call(L, j, orm_lua_copy_push(L, j->s.tidx, ORM_LUA_COPY_END, NULL,
                                         lua_tostring(L, x->copysql), x->t0,
                                         NULL, 0), 1);
    else
        lua_pushinteger(L, (lua_Integer)orm_lua_copy_end(
                               L, j->s.tidx, lua_tostring(L, x->copysql), x->t0));
}

/* Sends the rows from j->phase on; pushes insert's or upsert's result
 * (returns 1) or, collecting, nothing (returns 0). When rows remain after
 * a payload, the statements of the list run as one group, all or
 * nothing: in a transaction, or a savepoint when the target is already
 * one. With j->waiting, the group's checkout, BEGIN, statements and
 * COMMIT go through the waiter. */
static int lqw_steps(lua_State *L, lqw_job *j)
{
    query_ud *u = lq_check(L, 1);
    lqw_rows *x = &j->x;
    lq_sink *s = &j->s;
    orm_error err;
    for (;;) {
        switch (j->phase) {
        case LQW_NEXT:
            if (j->i > j->n) {
                lqw_flush(j, 0, LQW_END);
                continue;
            }
            if (j->single)
                lua_pushvalue(L, j->a);
            else
                lua_rawgeti(L, j->a, j->i);
            lua_replace(L, j->row);
            if (!lua_istable(L, j->row))
                orm_lua_argerror(L, "%s: row %d must be a table, got %s",
                                 x->fname, j->i, luaL_typename(L, j->row));
            /* A full batch goes out before this row is read: sending it
             * runs the listeners, which may change the rows to come. */
            if (x->pending >= x->per_stmt)
                lqw_flush(j, 1, LQW_READ);
            else
                j->phase = LQW_READ;
            continue;
        case LQW_READ:
            if (lqw_row_fast(L, x, j->row)) {
                j->phase = LQW_PUT; /* read in the learned key order */
            } else if (!lqw_row_fits(L, x, j->row)) {
                lqw_flush(j, 1, LQW_NEWCOLS);
            } else {
                lqw_row_learn(L, x, j->row);
                j->phase = LQW_PUT;
            }
            continue;
        case LQW_NEWCOLS:
            lqw_copy_close(L, j, LQW_BEGINCOLS);
            continue;
        case LQW_BEGINCOLS:
            lqw_rows_begin(L, u, x, j->row,
                           s->d->insert_batch < s->d->max_params
                               ? s->d->insert_batch : s->d->max_params);
            if (!lqw_row_fits(L, x, j->row))
                orm_lua_argerror(L, "%s: row %d has a non-string key",
                                 x->fname, j->i);
            lqw_row_learn(L, x, j->row);
            j->phase = LQW_PUT;
            continue;
        case LQW_PUT:
            /* The row's strings are borrowed: the list of rows (on the
             * stack) keeps them, and no Lua code runs until the batch is
             * sent (a flush above re-reads this row after the listeners
             * ran). */
            if (orm_query_write_values_ref(&u->q, x->tmp, x->ncols, &err) !=
                    ORM_OK ||
                orm_query_write_end_row(&u->q, &err) != ORM_OK)
                lq_raise(L, &err);
            x->pending++;
            j->i++;
            j->phase = LQW_NEXT;
            continue;
        case LQW_FLUSH:
            if (x->pending == 0) {
                j->phase = j->resume;
                continue;
            }
            j->phase = LQW_SEND;
            if ((j->more || x->copy) && x->cidx != 0 && s->tidx != x->cidx) {
                j->phase = LQW_OPENED;
                if (j->waiting)
                    lqw_call(L, j, orm_lua_atomic_begin_push(L, x->cidx,
                                                             x->tidx), 0);
            }
            continue;
        case LQW_OPENED:
            orm_lua_atomic_begin(L, x->cidx, x->tidx);
            s->tidx = x->cidx;
            j->phase = LQW_SEND;
            continue;
        case LQW_SEND:
            j->phase = LQW_SENT;
            if (x->copy && x->ncols > 0) {
                j->phase = LQW_COPY_ROWS;
                if (!lua_isnil(L, x->copysql))
                    continue;
                lqw_copy_sql(L, u, s, x); /* the probe on top */
                j->phase = LQW_COPY_OPENED;
                if (j->waiting)
                    lqw_call(L, j, orm_lua_copy_push(
                                       L, s->tidx, ORM_LUA_COPY_BEGIN,
                                       lua_tostring(L, -1),
                                       lua_tostring(L, x->copysql), 0, NULL,
                                       x->ncols), 1);
                else
                    lua_pushnumber(L, orm_lua_copy_begin(
                                          L, s->tidx, lua_tostring(L, -1),
                                          lua_tostring(L, x->copysql),
                                          x->ncols));
                continue;
            }
            lq_compile_write(L, u, s->d);
            if (j->waiting)
                lqw_call(L, j, lq_emit_push(L, s, ORM_LUA_EXEC, 0), 1);
            else
                lq_emit(L, u, s, ORM_LUA_EXEC, 0);
            continue;
        case LQW_SENT:
            if (!(x->copy && x->ncols > 0) && s->tidx != 0)
                lq_absorb(L, s);
            orm_query_write_rows_reset(&u->q);
            x->pending = 0;
            j->phase = j->resume;
            continue;
        case LQW_COPY_OPENED:
            x->t0 = lua_tonumber(L, -1);
            lua_pop(L, 2); /* the clock, the probe */
            j->phase = LQW_COPY_ROWS;
            continue;
        case LQW_COPY_ROWS:
            j->phase = LQW_SENT;
            if (j->waiting)
                lqw_call(L, j, orm_lua_copy_push(L, s->tidx,
                                                 ORM_LUA_COPY_ROWS, NULL,
                                                 lua_tostring(L, x->copysql),
                                                 x->t0, u->q.write.vals,
                                                 u->q.write.nrows), 0);
            else
                orm_lua_copy_rows(L, s->tidx, lua_tostring(L, x->copysql),
                                  x->t0, u->q.write.vals, u->q.write.nrows);
            continue;
        case LQW_COPY_ENDED:
            s->affected += lua_tointeger(L, -1);
            lua_pop(L, 1);
            lua_pushnil(L);
            lua_replace(L, x->copysql);
            j->phase = j->resume;
            continue;
        case LQW_END:
            lqw_copy_close(L, j, LQW_COMMIT);
            continue;
        case LQW_COMMIT:
            j->phase = LQW_DONE;
            if (x->cidx != 0 && j->waiting)
                lqw_call(L, j, orm_lua_atomic_commit_push(L, x->cidx), 0);
            continue;
        case LQW_FAILED:
            lua_replace(L, j->errslot);
            j->phase = LQW_RAISE;
            if (x->cidx != 0) /* its failure is ignored */
                lua_callk(L, orm_lua_atomic_rollback_push(L, x->cidx), 0,
                          (lua_KContext)j->slot, lqw_k);
            continue;
        case LQW_RAISE:
            lua_pushvalue(L, j->errslot);
            return lua_error(L);
        default: /* LQW_DONE */
            break;
        }
        break;
    }
    if (x->cidx != 0)
        orm_lua_atomic_commit(L, x->cidx);
    if (s->tidx == 0)
        return 0;
    if (x->kind == ORM_QW_UPSERT) {
        lua_pushinteger(L, s->affected);
        return 1;
    }
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, s->affected);
    lua_setfield(L, -2, "affected_rows");
    if (s->has_id) {
        lua_pushinteger(L, s->last_id);
        lua_setfield(L, -2, "last_insert_id");
    }
    return 1;
}

static int lqw_k(lua_State *L, int status, lua_KContext ctx)
{
    lqw_job *j = lua_touserdata(L, (int)ctx);
    if (status != LUA_OK && status != LUA_YIELD) /* lqw_call's failed */
        j->phase = LQW_FAILED;
    return lqw_steps(L, j);
}

/* Sends one row or a list of rows (the table at a; a table with a
 * non-empty array part is a list), as x0 (its kind and names) says, and
 * pushes the method's result (returns 1) or collects (returns 0). */
static int lqw_rows_send(lua_State *L, lq_sink *s, const lqw_rows *x0,
                         int a)
{
    lqw_job local, *j = &local;
    lqw_rows *x;
    int n;
    if (!lua_istable(L, a))
        orm_lua_argerror(L, "%s: expected a row or a list of rows, got %s",
                         x0->fname, luaL_typename(L, a));
    if (lq_waiting(L, s)) {
        j = lua_newuserdatauv(L, sizeof *j, 0);
        j->slot = lua_gettop(L);
        j->waiting = 1;
    } else {
        j->slot = 0;
        j->waiting = 0;
    }
    j->x = *x0;
    j->s = *s;
    x = &j->x;
    j->a = a;
    lua_pushnil(L);
    x->cols = lua_gettop(L);
    lua_pushnil(L);
    x->tmpslot = lua_gettop(L);
    x->nordered = 0;
    x->ncols = -1;
    x->pending = 0;
    lua_pushnil(L);
    x->copysql = lua_gettop(L);
    lua_pushnil(L);
    j->row = lua_gettop(L);
    lua_pushnil(L);
    j->errslot = lua_gettop(L);
    n = (int)lua_rawlen(L, a);
    x->tidx = s->tidx;
    x->cidx = n > 1 && s->tidx != 0 ? orm_lua_atomic_new(L) : 0;
    x->copy = x->cidx != 0 && x->kind == ORM_QW_INSERT &&
              s->d->copy_from_stdin && lqw_copy_pays(L, s->d, a, n);
    j->single = n == 0 && lqw_has_keys(L, a);
    j->n = j->single ? 1 : n;
    j->i = 1;
    j->phase = LQW_NEXT;
    return lqw_steps(L, j);
}

int lq_insert(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqw_rows x;
    (void)u;
    memset(&x, 0, sizeof x);
    x.kind = ORM_QW_INSERT;
    x.fname = "insert";
    return lqw_rows_send(L, s, &x, a);
}

/* upsert(rows, unique_by, update_columns?) */
int lq_upsert(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqw_rows x;
    (void)u;
    memset(&x, 0, sizeof x);
    x.kind = ORM_QW_UPSERT;
    x.fname = "upsert";
    x.unique = a + 1;
    x.update = a + 2;
    if (lua_type(L, x.unique) != LUA_TSTRING && lq_list_len(L, x.unique) < 1)
        return orm_lua_argerror(L, "upsert: unique_by must be a column name "
                                   "or a non-empty list of them");
    if (!lua_isnoneornil(L, x.update) && lq_list_len(L, x.update) < 0)
        return orm_lua_argerror(L, "upsert: update_columns must be a list");
    return lqw_rows_send(L, s, &x, a);
}
