/*
 * lua_query_run.c: the terminal methods of the query userdata: compiling
 * for the target's dialect, running through orm_lua_run, reads, counts and
 * aggregates, paginate, chunk and chunk_by_id (by key or by OFFSET),
 * single-statement writes, and to_sql. Lists of rows: lua_rows.c.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_query.h"

/* {==== compiling and running ====} */


/* A compile must not overwrite the SQL a running statement of this query
 * still reads (a listener calling back into the query). */
static void lqr_idle(lua_State *L, query_ud *u)
{
    if (u->running > 0)
        orm_lua_argerror(L, "query is in use by a running statement");
}

/* Picks the output of the next compile: the shared scratch when free. */
static query_out *lqr_out(lua_State *L, query_ud *u)
{
    query_scratch *sc = lq_scratch(L);
    lqr_idle(L, u);
    u->out = sc->busy ? &u->own : &sc->out;
    return u->out;
}

static void lqr_compile(lua_State *L, query_ud *u, const orm_dialect *d,
                        const orm_compile_opts *o)
{
    orm_error err;
    query_out *out = lqr_out(L, u);
    if (orm_compile_select(&u->q, d, o, &out->sql, &out->binds, &err) !=
        ORM_OK)
        lq_raise(L, &err);
}

void lq_compile_write(lua_State *L, query_ud *u, const orm_dialect *d)
{
    orm_error err;
    query_out *out = lqr_out(L, u);
    if (orm_compile_write(&u->q, d, &out->sql, &out->binds, &err) != ORM_OK)
        lq_raise(L, &err);
}

static void lqr_push_binds(lua_State *L, const orm_vlist *b)
{
    int i;
    lua_createtable(L, b->n, 0);
    for (i = 0; i < b->n; i++) {
        if (b->v[i].type == ORM_NULL)
            orm_lua_pushnull(L);
        else
            orm_lua_pushvalue(L, &b->v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* Runs u's compiled statement and pushes its result (returns 1), or
 * collects it (returns 0, pushes nothing). While it runs, the query (at
 * index 1) sits in a to-be-closed slot whose __close drops u->running,
 * whichever way orm_lua_run exits. */
#define LQR_NOT_LAST (-1) /* the terminal method goes on after the run */
#define LQR_FINAL 2        /* the result is shaped: return it as it is */

/* lq_emit; post is LQR_NOT_LAST, or how the terminal method shapes the
 * result it returns straight to Lua: with a waiter set the run may then
 * yield (orm_lua_run_wait shapes the result), and LQR_FINAL is returned. */
static int lqr_emit(lua_State *L, query_ud *u, lq_sink *s, orm_lua_mode mode,
                    int hyd, int post)
{
    query_out *o = u->out;
    int g;
    if (s->tidx == 0) {
        int n = (int)lua_rawlen(L, s->out);
        lua_pushlstring(L, o->sql.p, o->sql.len);
        lua_rawseti(L, s->out, n + 1);
        lqr_push_binds(L, &o->binds);
        lua_rawseti(L, s->out, n + 2);
        return 0;
    }
    g = lua_gettop(L) + 1;
    lq_push_self(L);
    lua_toclose(L, g);
    u->running++;
    if (o != &u->own) {
        lq_scratch(L)->busy = 1;
        u->holds_scratch = 1;
    }
    if (post != LQR_NOT_LAST && orm_lua_waiter(L)) {
        /* the slot g closes when the method returns */
        orm_lua_run_wait(L, s->tidx, o->sql.p, o->sql.len, o->binds.v,
                         o->binds.n, mode, hyd, (orm_lua_post)post);
        return LQR_FINAL;
    }
    orm_lua_run(L, s->tidx, o->sql.p, o->sql.len, o->binds.v, o->binds.n,
                mode, hyd);
    lua_closeslot(L, g);
    lua_remove(L, g);
    return 1;
}

int lq_emit(lua_State *L, query_ud *u, lq_sink *s, orm_lua_mode mode,
            int hyd)
{
    return lqr_emit(L, u, s, mode, hyd, LQR_NOT_LAST);
}

/* One statement of a method that runs several, called with lua_callk so
 * the method goes on in its continuation: arguments the query (its
 * compiled statement), the target, the mode, the hydration table or nil;
 * returns the result. With a waiter, the statement's waits go through it
 * (orm_lua_run_wait). Shares the methods' upvalues (the scratch). */
static int lqr_run_fn(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    lq_sink s;
    memset(&s, 0, sizeof s);
    s.tidx = 2;
    return lqr_emit(L, u, &s, (orm_lua_mode)lua_tointeger(L, 3),
                    orm_lua_hydration(L, 4, "run"), ORM_LUA_POST_NONE) != 0;
}

void lq_emit_k(lua_State *L, query_ud *u, lq_sink *s, orm_lua_mode mode,
               int hyd, int waiting, lua_KContext ctx, lua_KFunction k)
{
    if (!waiting) {
        lq_emit(L, u, s, mode, hyd);
        return;
    }
    lua_callk(L, lq_emit_push(L, s, mode, hyd), 1, ctx, k);
}

int lq_emit_push(lua_State *L, lq_sink *s, orm_lua_mode mode, int hyd)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, lqr_run_fn, 2);
    lq_push_self(L);
    lua_pushvalue(L, s->tidx);
    lua_pushinteger(L, mode);
    if (hyd)
        lua_pushvalue(L, hyd);
    else
        lua_pushnil(L);
    return 4;
}

void lq_absorb(lua_State *L, lq_sink *s)
{
    lua_getfield(L, -1, "affected_rows");
    s->affected += lua_tointeger(L, -1);
    lua_getfield(L, -2, "last_insert_id");
    if (!lua_isnil(L, -1)) {
        s->has_id = 1;
        s->last_id = lua_tointeger(L, -1);
    }
    lua_pop(L, 3);
}

void lq_write_emit(lua_State *L, query_ud *u, lq_sink *s)
{
    lq_compile_write(L, u, s->d);
    if (lq_emit(L, u, s, ORM_LUA_EXEC, 0))
        lq_absorb(L, s);
}


/* A numeric string on top becomes a number. With exact, only when it
 * becomes an integer: a decimal the value decoder left as text (more
 * digits than a double holds, or beyond int64) stays text. */
static void lqr_numeric(lua_State *L, int exact)
{
    if (lua_type(L, -1) != LUA_TSTRING ||
        lua_stringtonumber(L, lua_tostring(L, -1)) == 0)
        return;
    if (exact && !lua_isinteger(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_remove(L, -2);
}

/* {==== reads ====} */

typedef enum lqr_opkind {
    OP_GET, OP_FIRST, OP_COUNT, OP_SUM, OP_AVG, OP_MIN, OP_MAX, OP_EXISTS,
    OP_PLUCK, OP_PAGINATE, OP_CHUNK, OP_INSERT, OP_INSERT_GET_ID, OP_UPDATE,
    OP_DELETE, OP_INCREMENT, OP_DECREMENT, OP_UPSERT, OP_CHUNK_BY_ID
} lqr_opkind;

static const char *const op_names[] = {
    "get", "first", "count", "sum", "avg", "min", "max", "exists", "pluck",
    "paginate", "chunk", "insert", "insert_get_id", "update", "delete",
    "increment", "decrement", "upsert", "chunk_by_id", NULL
};

static int lqr_get(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqr_compile(L, u, s->d, NULL);
    return lqr_emit(L, u, s, ORM_LUA_ROWS, orm_lua_hydration(L, a, "get"),
                    ORM_LUA_POST_NONE) != 0;
}

static int lqr_first(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    orm_compile_opts o;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = 1;
    o.offset = u->q.offset;
    lqr_compile(L, u, s->d, &o);
    return lqr_emit(L, u, s, ORM_LUA_FIRST, orm_lua_hydration(L, a, "first"),
                    ORM_LUA_POST_NONE) != 0;
}

/* count / sum / avg / min / max / exists, column at a. */
static int lqr_aggregate(lua_State *L, query_ud *u, lq_sink *s, int a,
                         orm_qagg agg)
{
    orm_compile_opts o;
    const char *fname = op_names[OP_COUNT + (agg - ORM_AGG_COUNT)];
    memset(&o, 0, sizeof o);
    o.agg = agg;
    if (agg != ORM_AGG_EXISTS && (agg != ORM_AGG_COUNT || !lua_isnoneornil(L, a)))
        o.agg_col = lq_str(L, a, fname, "column name", NULL);
    lqr_compile(L, u, s->d, &o);
    switch (lqr_emit(L, u, s, ORM_LUA_VALUE, 0,
                     agg == ORM_AGG_EXISTS ? ORM_LUA_POST_EXISTS
                     : agg == ORM_AGG_COUNT || agg == ORM_AGG_SUM
                         ? ORM_LUA_POST_TOTAL
                     : agg == ORM_AGG_AVG ? ORM_LUA_POST_NUMBER
                                          : ORM_LUA_POST_EXACT)) {
    case 0:
        return 0;
    case LQR_FINAL:
        return 1;
    }
    lqr_numeric(L, agg != ORM_AGG_AVG);
    if (agg == ORM_AGG_EXISTS)
        lua_pushboolean(L, lua_isnumber(L, -1) ? lua_tonumber(L, -1) != 0
                                                : lua_toboolean(L, -1));
    else if ((agg == ORM_AGG_COUNT || agg == ORM_AGG_SUM) && lua_isnil(L, -1))
        lua_pushinteger(L, 0);
    else
        return 1;
    lua_remove(L, -2);
    return 1;
}

static int lqr_pluck(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    orm_compile_opts o;
    memset(&o, 0, sizeof o);
    o.only_col = lq_str(L, a, "pluck", "column name", NULL);
    lqr_compile(L, u, s->d, &o);
    return lqr_emit(L, u, s, ORM_LUA_COLUMN, 0, ORM_LUA_POST_NONE) != 0;
}

static lua_Integer lqr_field_int(lua_State *L, int t, const char *k,
                                 lua_Integer dflt)
{
    lua_Integer v;
    if (lua_isnoneornil(L, t))
        return dflt;
    lua_getfield(L, t, k);
    v = lq_int(L, -1, "paginate", k, 1, dflt);
    lua_pop(L, 1);
    return v;
}

/* paginate's state: on the C stack, or (with a waiter) in a userdata on
 * the method's stack (slot), so a statement may yield in between. */
typedef struct lqr_pag {
    lq_sink s;
    lua_Integer page, per, total;
    int a, phase, waiting, slot;
} lqr_pag;

static int lqr_paginate_k(lua_State *L, int status, lua_KContext ctx);

/* paginate's steps: the count, then the page (each statement through
 * the waiter when g->waiting: k goes on after a yield), then the result. */
static int lqr_paginate_steps(lua_State *L, lqr_pag *g)
{
    query_ud *u = lq_check(L, 1);
    orm_compile_opts o;
    for (;;) {
        memset(&o, 0, sizeof o);
        o.set_window = 1;
        switch (g->phase++) {
        case 0:
            o.agg = ORM_AGG_COUNT;
            o.limit = o.offset = -1;
            lqr_compile(L, u, g->s.d, &o);
            lq_emit_k(L, u, &g->s, ORM_LUA_VALUE, 0, g->waiting, g->slot,
                      lqr_paginate_k);
            continue;
        case 1:
            if (g->s.tidx != 0) {
                lqr_numeric(L, 1);
                g->total = lua_tointeger(L, -1);
                lua_pop(L, 1);
            }
            o.limit = g->per;
            o.offset = (g->page - 1) * g->per;
            lqr_compile(L, u, g->s.d, &o);
            lq_emit_k(L, u, &g->s, ORM_LUA_ROWS,
                      orm_lua_hydration(L, g->a + 1, "paginate"),
                      g->waiting, g->slot, lqr_paginate_k);
            continue;
        }
        break;
    }
    if (g->s.tidx == 0)
        return 0;
    lua_createtable(L, 0, 5);
    lua_insert(L, -2);
    lua_setfield(L, -2, "items");
    lua_pushinteger(L, g->total);
    lua_setfield(L, -2, "total");
    lua_pushinteger(L, g->page);
    lua_setfield(L, -2, "page");
    lua_pushinteger(L, g->per);
    lua_setfield(L, -2, "per_page");
    lua_pushinteger(L, g->total > 0 ? g->total / g->per + (g->total % g->per != 0)
                                    : 1);
    lua_setfield(L, -2, "last_page");
    return 1;
}

static int lqr_paginate_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return lqr_paginate_steps(L, lua_touserdata(L, (int)ctx));
}

/* paginate({ page =, per_page = }, hyd?) */
static int lqr_paginate(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqr_pag local, *g = &local;
    lua_Integer page, per;
    int waiting;
    (void)u;
    if (!lua_isnoneornil(L, a) && !lua_istable(L, a))
        return orm_lua_argerror(L, "paginate: expected { page =, per_page = }");
    page = lqr_field_int(L, a, "page", 1);
    per = lqr_field_int(L, a, "per_page", 15);
    if (page - 1 > LUA_MAXINTEGER / per)
        return orm_lua_argerror(L, "paginate: page %lld of %lld rows starts "
                                   "past the largest offset",
                                (long long)page, (long long)per);
    if ((waiting = lq_waiting(L, s)) != 0)
        g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    g->waiting = waiting;
    g->slot = waiting ? lua_gettop(L) : 0;
    g->s = *s;
    g->page = page;
    g->per = per;
    g->a = a;
    return lqr_paginate_steps(L, g);
}

/* Compiles chunk number `page` (from 1) of n rows, ordered by the query's
 * order or else by the first column. Returns the LIMIT used (0: past the
 * query's own limit). */
static lua_Integer lqr_chunk_compile(lua_State *L, query_ud *u, lq_sink *s,
                                     lua_Integer n, lua_Integer page)
{
    orm_compile_opts o;
    lua_Integer skip, lim = n;
    if (page - 1 > LUA_MAXINTEGER / n)
        return 0;
    skip = (page - 1) * n;
    if (u->q.limit >= 0 && u->q.limit - skip < lim)
        lim = u->q.limit - skip > 0 ? u->q.limit - skip : 0;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = lim;
    o.offset = (u->q.offset > 0 ? u->q.offset : 0) + skip;
    o.default_order = 1;
    lqr_compile(L, u, s->d, &o);
    return lim;
}

/* Paging state of chunk / chunk_by_id. */
typedef struct lqr_pager {
    lua_Integer n;       /* rows per chunk */
    int fn;              /* stack index of the callback */
    int hyd;             /* hydration table index, or 0 */
    const char *key;     /* key column: pages by key (NULL: by OFFSET) */
    int last;            /* stack slot holding the last key seen (nil) */
    lua_Integer seen;    /* rows handed out so far */
} lqr_pager;

/* 1 when chunk may page by `key`: the query is not ordered, or only by
 * the key ascending, and has no OFFSET. */
/* The last dotted part of a name. */
static const char *lqr_bare(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* 1 when every row of the query carries `key` as itself: no joins (which
 * could bring another table's column of that name), and the select list is
 * `*` or names the key. */
static int lqr_rows_have_key(const query_ud *u, const char *key)
{
    const orm_qname *nm;
    if (u->q.joins.n > 0)
        return 0;
    if (u->q.select.n == 0)
        return 1;
    for (nm = u->q.select.first; nm; nm = nm->next)
        if (strcmp(nm->name, "*") == 0 ||
            strcmp(lqr_bare(nm->name), lqr_bare(key)) == 0)
            return 1;
    return 0;
}

/* 1 when chunk may page by `key`: the query is not ordered, or only by the
 * key ascending (with `ordered`, it must be), has no OFFSET, grouping or
 * DISTINCT, and its rows carry the key. */
static int lqr_keyset_ok(const query_ud *u, const char *key, int ordered)
{
    const orm_qorder *ord = u->q.orders.first;
    if (u->q.offset > 0 || u->q.groups.n > 0 || u->q.distinct ||
        !lqr_rows_have_key(u, key))
        return 0;
    if (u->q.orders.n == 0)
        return !ordered;
    if (u->q.orders.n != 1 || ord->desc || ord->col == NULL)
        return 0;
    return strcmp(lqr_bare(ord->col), lqr_bare(key)) == 0;
}

/* Compiles the next keyed page: rows after the last key seen. Returns
 * the LIMIT used (0: past the query's own limit). */
static lua_Integer lqr_keyed_compile(lua_State *L, query_ud *u, lq_sink *s,
                                     lqr_pager *p)
{
    orm_compile_opts o;
    orm_value after;
    lua_Integer lim = p->n;
    if (u->q.limit >= 0 && u->q.limit - p->seen < lim)
        lim = u->q.limit - p->seen > 0 ? u->q.limit - p->seen : 0;
    memset(&o, 0, sizeof o);
    o.set_window = 1;
    o.limit = lim;
    o.offset = -1;
    o.key_col = p->key;
    if (!lua_isnil(L, p->last)) {
        lq_value(L, p->last, "chunk", &after);
        o.key_after = &after;
    }
    if (lim > 0)
        lqr_compile(L, u, s->d, &o);
    return lim;
}

/* Keeps the key of the last row of the page on top in p->last. */
static void lqr_keep_last_key(lua_State *L, lqr_pager *p, lua_Integer got)
{
    const char *dot = strrchr(p->key, '.');
    lua_rawgeti(L, -1, got);
    if (p->hyd) {
        lua_rawgeti(L, p->hyd, 1); /* the wrapping key */
        if (!lua_isnil(L, -1)) {
            lua_rawget(L, -2);
            lua_remove(L, -2);
        } else
            lua_pop(L, 1);
    }
    lua_getfield(L, -1, dot ? dot + 1 : p->key);
    if (lua_isnil(L, -1))
        orm_lua_argerror(L, "chunk: the rows do not include the key column "
                            "'%s' to page by", p->key);
    lua_replace(L, p->last);
    lua_pop(L, 1);
}

/* The paging loop's state, in a userdata on the terminal method's stack
 * (slot `ctx`), so fn (and, with a waiter, a statement) may yield: the
 * loop goes on in a continuation. */
typedef struct lqr_loop {
    lqr_pager p;
    lq_sink s;
    lua_Integer page;
    lua_Integer lim;   /* LIMIT of the page handed to fn */
    lua_Integer got;   /* rows it had */
    int waiting;       /* statements go through the waiter */
    int phase;         /* LQR_P_*: what comes next */
    const char *check; /* key whose NULLs are counted first, or NULL */
    int refuse;        /* ... raising when there are (chunk_by_id); else
                          pages by `check` only when there are none */
} lqr_loop;

enum {
    LQR_P_CHECK,   /* count the rows with a NULL key */
    LQR_P_CHECKED, /* that count on top */
    LQR_P_PAGE,    /* compile and run the next page */
    LQR_P_ROWS,    /* its rows on top */
    LQR_P_FN       /* fn's result on top */
};

static int lqr_page_k(lua_State *L, int status, lua_KContext ctx);

/* After fn returned (its result on top): 1 with the loop's result pushed
 * when it is over, else 0 (the next page comes). */
static int lqr_page_done(lua_State *L, lqr_loop *lp)
{
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (stop || lp->got < lp->lim) {
        lua_pushboolean(L, !stop);
        return 1;
    }
    lp->page++;
    return 0;
}

static void lqr_null_compile(lua_State *L, query_ud *u, lq_sink *s,
                             const char *key);
static lua_Integer lqr_null_read(lua_State *L);
static void lqr_null_refuse(lua_State *L, lua_Integer n, const char *key);

/* Runs the loop from lp->phase on: fn(rows, page) per page; pushes true,
 * or false when fn returned false. fn is called with lua_callk, so it may
 * yield, and so are the statements when a waiter is set. */
static int lqr_page_run(lua_State *L, lqr_loop *lp, int slot)
{
    query_ud *u = lq_check(L, 1);
    lqr_pager *p = &lp->p;
    lua_Integer lim, got;
    for (;;) {
        switch (lp->phase) {
        case LQR_P_CHECK:
            lqr_null_compile(L, u, &lp->s, lp->check);
            lp->phase = LQR_P_CHECKED;
            lq_emit_k(L, u, &lp->s, ORM_LUA_VALUE, 0, lp->waiting, slot,
                      lqr_page_k);
            continue;
        case LQR_P_CHECKED:
            got = lqr_null_read(L);
            if (lp->refuse)
                lqr_null_refuse(L, got, lp->check);
            else if (got == 0)
                p->key = lp->check;
            lp->phase = LQR_P_PAGE;
            continue;
        case LQR_P_PAGE:
            lim = p->key ? lqr_keyed_compile(L, u, &lp->s, p)
                         : lqr_chunk_compile(L, u, &lp->s, p->n, lp->page);
            if (lim <= 0)
                break;
            lp->lim = lim;
            lp->phase = LQR_P_ROWS;
            lq_emit_k(L, u, &lp->s, ORM_LUA_ROWS, p->hyd, lp->waiting, slot,
                      lqr_page_k);
            continue;
        case LQR_P_ROWS:
            got = (lua_Integer)lua_rawlen(L, -1);
            if (got == 0)
                break;
            p->seen += got;
            if (p->key)
                lqr_keep_last_key(L, p, got);
            lp->got = got;
            lua_pushvalue(L, p->fn);
            lua_insert(L, -2);
            lua_pushinteger(L, lp->page);
            lp->phase = LQR_P_FN;
            lua_callk(L, 2, 1, (lua_KContext)slot, lqr_page_k);
            continue;
        default: /* LQR_P_FN */
            lp->phase = LQR_P_PAGE;
            if (lqr_page_done(L, lp))
                return 1;
            continue;
        }
        break;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The loop after fn or a statement yielded and was resumed. */
static int lqr_page_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return lqr_page_run(L, lua_touserdata(L, (int)ctx), (int)ctx);
}

/* Starts the paging loop of p on the target of s, first counting the rows
 * with a NULL `check` key when not NULL (refuse: see lqr_loop). */
static int lqr_page_loop(lua_State *L, lq_sink *s, lqr_pager *p,
                         const char *check, int refuse)
{
    lqr_loop *lp = lua_newuserdatauv(L, sizeof *lp, 0);
    lp->p = *p;
    lp->s = *s;
    lp->page = 1;
    lp->lim = lp->got = 0;
    lp->waiting = lq_waiting(L, s);
    lp->check = check;
    lp->refuse = refuse;
    lp->phase = check != NULL ? LQR_P_CHECK : LQR_P_PAGE;
    return lqr_page_run(L, lp, lua_gettop(L));
}

/* Reads chunk's size at a and callback at a + 1 into p (fname names the
 * method in errors); with collect, only the size. */
static void lqr_pager_args(lua_State *L, lqr_pager *p, int a, int collect,
                           const char *fname)
{
    memset(p, 0, sizeof *p);
    p->n = lq_int(L, a, fname, "size", 1, 0);
    if (p->n == 0)
        orm_lua_argerror(L, "%s: size must be an integer >= 1", fname);
    if (collect)
        return;
    if (!lua_isfunction(L, a + 1))
        orm_lua_argerror(L, "%s(n, fn): fn must be a function", fname);
    p->fn = a + 1;
}

/* run: chunk(n, fn, hyd?, key?); collect: chunk(n, page?). Pages by key
 * (default "id") when the query allows it (lqr_keyset_ok), else by
 * OFFSET. */
static int lqr_chunk(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqr_pager p;
    const char *check = NULL;
    lqr_pager_args(L, &p, a, s->tidx == 0, "chunk");
    if (s->tidx == 0) {
        lqr_chunk_compile(L, u, s, p.n, lq_int(L, a + 1, "chunk", "page", 1, 1));
        return lq_emit(L, u, s, ORM_LUA_ROWS, 0);
    }
    p.hyd = orm_lua_hydration(L, a + 2, "chunk");
    if (!lua_isnoneornil(L, a + 3)) { /* a model's primary key */
        p.key = lq_str(L, a + 3, "chunk", "key", NULL);
        if (!lqr_keyset_ok(u, p.key, 0))
            p.key = NULL;
    } else if (lqr_keyset_ok(u, "id", 1)) {
        check = "id"; /* a plain table ordered by id, when it holds no NULL */
    }
    lua_pushnil(L);
    p.last = lua_gettop(L);
    return lqr_page_loop(L, s, &p, check, 0);
}

/* Compiles the count of the rows the query selects that hold NULL in
 * `key`, which paging by key (key > last) would never reach. */
static void lqr_null_compile(lua_State *L, query_ud *u, lq_sink *s,
                             const char *key)
{
    orm_compile_opts o;
    memset(&o, 0, sizeof o);
    o.agg = ORM_AGG_COUNT;
    o.key_col = key;
    o.key_null = 1;
    o.set_window = 1;
    o.limit = o.offset = -1;
    lqr_compile(L, u, s->d, &o);
}

/* Pops that count's result. */
static lua_Integer lqr_null_read(lua_State *L)
{
    lua_Integer n;
    lqr_numeric(L, 1);
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}

/* Raises when n rows the query selects hold NULL in `key`. */
static void lqr_null_refuse(lua_State *L, lua_Integer n, const char *key)
{
    if (n > 0)
        orm_lua_argerror(L, "chunk_by_id: %lld rows hold NULL in '%s', which "
                            "paging by that column would skip; page by a "
                            "column without NULLs, or filter them out",
                         (long long)n, key);
}

/* chunk_by_id(n, fn, column?, hyd?): pages by the column (default "id"),
 * ascending, whatever the query's order: rows that fn updates out of the
 * query's filter never make it skip others. */
static int lqr_chunk_by_id(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    lqr_pager p;
    lqr_pager_args(L, &p, a, 0, "chunk_by_id");
    p.key = lua_isnoneornil(L, a + 2)
                ? "id"
                : lq_str(L, a + 2, "chunk_by_id", "column name", NULL);
    p.hyd = orm_lua_hydration(L, a + 3, "chunk_by_id");
    if (u->q.offset > 0)
        return orm_lua_argerror(L, "chunk_by_id: the query has an offset; "
                                   "paging by key cannot honour it");
    if (s->tidx == 0)
        return orm_lua_argerror(L, "chunk_by_id: needs a target");
    if (u->q.joins.n == 0 && !lqr_rows_have_key(u, p.key))
        return orm_lua_argerror(L, "chunk_by_id: the query does not select "
                                   "the key column '%s' it pages by", p.key);
    lua_pushnil(L);
    p.last = lua_gettop(L);
    return lqr_page_loop(L, s, &p, p.key, 1);
}

/* Appends `col = value` for every key of the table at t, sorted. */
static void lqr_sets(lua_State *L, query_ud *u, int t, const char *fname)
{
    orm_error err;
    int i, n;
    lq_key *k = lq_keys(L, t, 0, &n, fname);
    for (i = 0; i < n; i++) {
        orm_value v;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, t);
        lq_value(L, -1, fname, &v);
        if (orm_query_write_set(&u->q, k[i].s, k[i].n, ORM_QS_VALUE, &v,
                                &err) != ORM_OK)
            lq_raise(L, &err);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* insert_get_id(row, pk?) */
static int lqr_insert_get_id(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    orm_error err;
    size_t pn = 2;
    const char *pk = "id";
    int i, n, returning = s->d->has_returning;
    lq_key *k;
    luaL_checktype(L, a, LUA_TTABLE);
    if (!lua_isnoneornil(L, a + 1))
        pk = lq_str(L, a + 1, "insert_get_id", "key name", &pn);
    orm_query_write_begin(&u->q, ORM_QW_INSERT);
    k = lq_keys(L, a, 0, &n, "insert_get_id");
    for (i = 0; i < n && orm_query_write_column(&u->q, k[i].s, k[i].n, &err)
                             == ORM_OK; i++)
        ;
    if (i < n)
        return lq_raise(L, &err);
    for (i = 0; i < n; i++) {
        orm_value v;
        lua_pushlstring(L, k[i].s, k[i].n);
        lua_rawget(L, a);
        lq_value(L, -1, "insert_get_id", &v);
        if (orm_query_write_value(&u->q, &v, &err) != ORM_OK)
            return lq_raise(L, &err);
        lua_pop(L, 1);
    }
    if (orm_query_write_end_row(&u->q, &err) != ORM_OK ||
        orm_query_write_returning(&u->q, pk, pn, &err) != ORM_OK)
        return lq_raise(L, &err);
    lq_compile_write(L, u, s->d);
    switch (lqr_emit(L, u, s, returning ? ORM_LUA_VALUE : ORM_LUA_EXEC, 0,
                     returning ? ORM_LUA_POST_NONE : ORM_LUA_POST_LAST_ID)) {
    case 0:
        return 0;
    case LQR_FINAL:
        return 1;
    }
    if (!returning)
        lua_getfield(L, -1, "last_insert_id");
    return 1;
}

/* A single-statement write whose affected rows the method returns:
 * 1 when the result is final (the waiting path), else absorbed into s. */
static int lqr_write_last(lua_State *L, query_ud *u, lq_sink *s)
{
    lq_compile_write(L, u, s->d);
    switch (lqr_emit(L, u, s, ORM_LUA_EXEC, 0, ORM_LUA_POST_AFFECTED)) {
    case LQR_FINAL:
        return 1;
    case 0:
        return 0;
    }
    lq_absorb(L, s);
    return 0;
}

static int lqr_affected(lua_State *L, lq_sink *s)
{
    if (s->tidx == 0)
        return 0;
    lua_pushinteger(L, s->affected);
    return 1;
}

/* update(values) */
static int lqr_update(lua_State *L, query_ud *u, lq_sink *s, int a)
{
    if (!lua_istable(L, a))
        return orm_lua_argerror(L, "update: expected a table of column = "
                                   "value, got %s", luaL_typename(L, a));
    orm_query_write_begin(&u->q, ORM_QW_UPDATE);
    lqr_sets(L, u, a, "update");
    if (lqr_write_last(L, u, s))
        return 1;
    return lqr_affected(L, s);
}

static int lqr_delete(lua_State *L, query_ud *u, lq_sink *s)
{
    orm_query_write_begin(&u->q, ORM_QW_DELETE);
    if (lqr_write_last(L, u, s))
        return 1;
    return lqr_affected(L, s);
}

/* increment(col, by?, extra?) / decrement(...) */
static int lqr_increment(lua_State *L, query_ud *u, lq_sink *s, int a,
                         orm_qset_kind kind)
{
    const char *fname = kind == ORM_QS_ADD ? "increment" : "decrement";
    orm_error err;
    orm_value by = orm_value_int(1);
    size_t n;
    const char *col = lq_str(L, a, fname, "column name", &n);
    if (!lua_isnoneornil(L, a + 1)) {
        if (lua_type(L, a + 1) != LUA_TNUMBER)
            return orm_lua_argerror(L, "%s: amount must be a number, got %s",
                                    fname, luaL_typename(L, a + 1));
        lq_value(L, a + 1, fname, &by);
    }
    if (!lua_isnoneornil(L, a + 2) && !lua_istable(L, a + 2))
        return orm_lua_argerror(L, "%s: extra values must be a table", fname);
    orm_query_write_begin(&u->q, ORM_QW_UPDATE);
    if (orm_query_write_set(&u->q, col, n, kind, &by, &err) != ORM_OK)
        return lq_raise(L, &err);
    if (lua_istable(L, a + 2))
        lqr_sets(L, u, a + 2, fname);
    if (lqr_write_last(L, u, s))
        return 1;
    return lqr_affected(L, s);
}

/* {==== dispatch ====} */

/* Runs (or collects) terminal operation k; its arguments start at a. */
static int lqr_dispatch(lua_State *L, query_ud *u, lq_sink *s, lqr_opkind k,
                        int a)
{
    lua_settop(L, a + 3); /* missing optional arguments become nil slots */
    switch (k) {
    case OP_GET: return lqr_get(L, u, s, a);
    case OP_FIRST: return lqr_first(L, u, s, a);
    case OP_COUNT: return lqr_aggregate(L, u, s, a, ORM_AGG_COUNT);
    case OP_SUM: return lqr_aggregate(L, u, s, a, ORM_AGG_SUM);
    case OP_AVG: return lqr_aggregate(L, u, s, a, ORM_AGG_AVG);
    case OP_MIN: return lqr_aggregate(L, u, s, a, ORM_AGG_MIN);
    case OP_MAX: return lqr_aggregate(L, u, s, a, ORM_AGG_MAX);
    case OP_EXISTS: return lqr_aggregate(L, u, s, a, ORM_AGG_EXISTS);
    case OP_PLUCK: return lqr_pluck(L, u, s, a);
    case OP_PAGINATE: return lqr_paginate(L, u, s, a);
    case OP_CHUNK: return lqr_chunk(L, u, s, a);
    case OP_INSERT: return lq_insert(L, u, s, a);
    case OP_INSERT_GET_ID: return lqr_insert_get_id(L, u, s, a);
    case OP_UPDATE: return lqr_update(L, u, s, a);
    case OP_DELETE: return lqr_delete(L, u, s);
    case OP_INCREMENT: return lqr_increment(L, u, s, a, ORM_QS_ADD);
    case OP_DECREMENT: return lqr_increment(L, u, s, a, ORM_QS_SUB);
    case OP_UPSERT: return lq_upsert(L, u, s, a);
    case OP_CHUNK_BY_ID: return lqr_chunk_by_id(L, u, s, a);
    }
    return 0;
}

/* q:<k>(target, ...) */
static int lqr_terminal(lua_State *L, lqr_opkind k)
{
    query_ud *u = lq_check(L, 1);
    lq_sink s;
    memset(&s, 0, sizeof s);
    s.tidx = 2;
    s.d = orm_lua_target_dialect(L, 2);
    return lqr_dispatch(L, u, &s, k, 3);
}

static int query_get(lua_State *L) { return lqr_terminal(L, OP_GET); }
static int query_first(lua_State *L) { return lqr_terminal(L, OP_FIRST); }
static int query_count(lua_State *L) { return lqr_terminal(L, OP_COUNT); }
static int query_sum(lua_State *L) { return lqr_terminal(L, OP_SUM); }
static int query_avg(lua_State *L) { return lqr_terminal(L, OP_AVG); }
static int query_min(lua_State *L) { return lqr_terminal(L, OP_MIN); }
static int query_max(lua_State *L) { return lqr_terminal(L, OP_MAX); }
static int query_exists(lua_State *L) { return lqr_terminal(L, OP_EXISTS); }
static int query_pluck(lua_State *L) { return lqr_terminal(L, OP_PLUCK); }
static int query_paginate(lua_State *L) { return lqr_terminal(L, OP_PAGINATE); }
static int query_chunk(lua_State *L) { return lqr_terminal(L, OP_CHUNK); }
static int query_chunk_by_id(lua_State *L)
{
    return lqr_terminal(L, OP_CHUNK_BY_ID);
}
static int query_insert(lua_State *L) { return lqr_terminal(L, OP_INSERT); }
static int query_update(lua_State *L) { return lqr_terminal(L, OP_UPDATE); }
static int query_delete(lua_State *L) { return lqr_terminal(L, OP_DELETE); }
static int query_upsert(lua_State *L) { return lqr_terminal(L, OP_UPSERT); }

static int query_insert_get_id(lua_State *L)
{
    return lqr_terminal(L, OP_INSERT_GET_ID);
}

static int query_increment(lua_State *L)
{
    return lqr_terminal(L, OP_INCREMENT);
}

static int query_decrement(lua_State *L)
{
    return lqr_terminal(L, OP_DECREMENT);
}

/* to_sql(dialect?) -> sql, bindings; a Lua query object with no dialect
 * compiles for its source's */
static int query_to_sql(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    lq_source_dialect(L);
    lqr_compile(L, u, lq_dialect(L, 2), NULL);
    lua_pushlstring(L, u->out->sql.p, u->out->sql.len);
    lqr_push_binds(L, &u->out->binds);
    return 2;
}

/* to_sql_for(kind, dialect, ...) -> sql, bindings[, sql, bindings ...] */
static int query_to_sql_for(lua_State *L)
{
    query_ud *u = lq_check(L, 1);
    lq_sink s;
    size_t n;
    const char *kind = lq_str(L, 2, "to_sql_for", "kind", &n);
    int k, i, len;
    for (k = 0; op_names[k] && strcmp(op_names[k], kind) != 0; k++)
        ;
    if (!op_names[k])
        return orm_lua_argerror(L, "to_sql_for: unknown kind '%s'", kind);
    memset(&s, 0, sizeof s);
    s.d = lq_dialect(L, 3);
    lua_newtable(L);
    lua_replace(L, 2); /* the kind is no longer needed */
    s.out = 2;
    lqr_dispatch(L, u, &s, (lqr_opkind)k, 4);
    len = (int)lua_rawlen(L, s.out);
    luaL_checkstack(L, len, "too many statements");
    for (i = 1; i <= len; i++)
        lua_rawgeti(L, s.out, i);
    return len;
}

const char *lq_terminal_kind(const char *name)
{
    static const char *const writes[] = {"insert", "insert_get_id", "update",
                                         "delete", "increment", "decrement",
                                         "upsert", NULL};
    int i;
    for (i = 0; writes[i]; i++)
        if (strcmp(name, writes[i]) == 0)
            return "write";
    return strncmp(name, "to_sql", 6) == 0 ? "other" : "read";
}

const luaL_Reg lq_terminal_methods[] = {
    {"get", query_get},
    {"first", query_first},
    {"count", query_count},
    {"sum", query_sum},
    {"avg", query_avg},
    {"min", query_min},
    {"max", query_max},
    {"exists", query_exists},
    {"pluck", query_pluck},
    {"paginate", query_paginate},
    {"chunk", query_chunk},
    {"chunk_by_id", query_chunk_by_id},
    {"insert", query_insert},
    {"insert_get_id", query_insert_get_id},
    {"update", query_update},
    {"delete", query_delete},
    {"increment", query_increment},
    {"decrement", query_decrement},
    {"upsert", query_upsert},
    {"to_sql", query_to_sql},
    {"to_sql_for", query_to_sql_for},
    {NULL, NULL},
};
