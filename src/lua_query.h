/*
 * lua_query.h: what the three files of the query userdata share:
 * lua_query.c (the builder: life cycle, filters, shape, registration),
 * lua_query_run.c (compiling, running, reads, paging, simple writes) and
 * lua_rows.c (lists of rows sent in batches or bulk loads).
 */
#ifndef LUA_QUERY_H
#define LUA_QUERY_H

#include "lua_ormed.h"
#include "orm_query.h"

/* Compiled SQL and its bindings (borrowing the query's bytes). */
typedef struct query_out {
    orm_buf sql;
    orm_vlist binds;
} query_out;

/* The output buffers every compile of one Lua state shares (an upvalue of
 * the methods), so a fresh query allocates none; a statement being run
 * holds them (busy) and compiles meanwhile use the query's own. */
typedef struct query_scratch {
    query_out out;
    int busy;
} query_scratch;

/* The first word of every query userdata: with the userdata's size, it
 * tells a query from any other userdata without a metatable lookup (only
 * C code makes userdata, and none but lq_push makes one of this size that
 * starts with this word). */
#define LQ_MAGIC 0x79727164656d726fULL /* "ormedqry" */

typedef struct query_ud {
    uint64_t magic;     /* LQ_MAGIC */
    orm_query q;        /* the model; never moves (userdata memory) */
    query_out own;      /* used while the shared scratch is busy */
    query_out *out;     /* where the last compile went */
    int running;        /* statements of this query in orm_lua_run */
    int holds_scratch;  /* a running statement of this query holds it */
    int closed;         /* 1 after __close */
} query_ud;

typedef struct lq_key {
    const char *s;
    size_t n;
} lq_key;

/* Where a compiled statement goes: run on a target (tidx != 0), or
 * collected as sql, bindings pairs into the list at `out`. */
typedef struct lq_sink {
    int tidx;               /* target stack index, or 0 to collect */
    int out;                /* collect: stack index of the list */
    const orm_dialect *d;
    lua_Integer affected;   /* writes: sum of affected_rows */
    int has_id;
    lua_Integer last_id;    /* writes: last last_insert_id seen */
} lq_sink;

/* {==== lua_query.c ====} */

/* Raises err as an orm.Error. Never returns. */
int lq_raise(lua_State *L, const orm_error *err);

/* The open query at idx (a query userdata, or a table whose raw `_q` is
 * one); raises invalid_argument for anything else. */
query_ud *lq_check(lua_State *L, int idx);

/* The query userdata at idx (any front end's metatable), or NULL (see
 * LQ_MAGIC). */
query_ud *lq_test(lua_State *L, int idx);

/* The string at idx. Without n the caller reads it as a C string, so one
 * holding a NUL byte (which would end it early) is refused. */
const char *lq_str(lua_State *L, int idx, const char *fname,
                   const char *what, size_t *n);

/* The Lua value at idx as an orm_value (strings borrowed); raises
 * invalid_argument naming fname for a value no column can hold. */
void lq_value(lua_State *L, int idx, const char *fname, orm_value *v);

/* Integer argument >= min; nil gives dflt. */
lua_Integer lq_int(lua_State *L, int idx, const char *fname,
                   const char *what, lua_Integer min,
                   lua_Integer dflt);

/* The length of the plain list at idx (keys exactly 1..n), or -1. */
int lq_list_len(lua_State *L, int idx);
/* The comparison operator at idx, or raises naming the accepted ones. */
orm_qop lq_op(lua_State *L, int idx, const char *fname);
/* Room for n values: `small` (nsmall values) when it fits, else a
 * userdata pushed on the stack (collected with it). */
orm_value *lq_values(lua_State *L, int n, orm_value *small, int nsmall);
/* The plain list at idx (keys exactly 1..n) read in one pass into values:
 * `small` (nsmall values) when it fits, else a userdata left on the
 * stack; *out points at them. Returns n, or -1 when idx holds no plain
 * list. A value that cannot be bound raises naming fname. */
int lq_list_read(lua_State *L, int idx, orm_value *small, int nsmall,
                 orm_value **out, const char *fname);
/* Converts list[1..n] at idx into v (the list keeps strings alive). */
void lq_list_values(lua_State *L, int idx, int n, orm_value *v,
                    const char *fname);

/* The string keys of table t, sorted (a userdata pushed on the stack;
 * the table keeps the strings alive). Integer keys are skipped when
 * skip_ints is set; any other key raises. */
lq_key *lq_keys(lua_State *L, int t, int skip_ints, int *n,
                const char *fname);

/* The dialect named or carried by the value at idx (nil = sqlite). */
const orm_dialect *lq_dialect(lua_State *L, int idx);

/* to_sql's argument: with no dialect given to the query object at 1,
 * puts at 2 its source's dialect name (source._dialect_name), else a
 * target of the source (source:_target(false)); a bare query keeps nil
 * (sqlite). */
void lq_source_dialect(lua_State *L);

/* {==== lua_query_object.c ====} */

/* The compile buffers this Lua state shares (the methods' upvalue 1). */
query_scratch *lq_scratch(lua_State *L);

/* Pushes a new shared scratch (with its __gc). */
void lqo_new_scratch(lua_State *L);

/* Sets the constructors on the module table at base - 1: core.query,
 * core.plain_query, core.set_sub_query, core.query_source,
 * core.query_state; base holds the scratch, base + 1 the bare query
 * metatable (their upvalues). */
void lqo_open(lua_State *L, int base);

/* Pushes the query userdata of the query object at 1: itself, or the raw
 * `_q` of a table (a model query's view of a group, whose metatable's
 * __close and __gc are meant for the userdata). */
void lq_push_self(lua_State *L);

/* Pushes the source of the query object at idx: a table's `_source`, a
 * query userdata's first user value (the plain front end's), else nil. */
void lq_push_source(lua_State *L, int idx);

/* A front end's query object at idx (not a list of values nor a bare
 * query) is replaced by what the sub-query function of core.set_sub_query
 * makes of it, given the source of the query at 1; fname names the method
 * in its errors. Called from a query method (upvalue 2: the bare query
 * metatable) with idx the top of the stack. The function runs the
 * sub-query's scopes, which may yield (a query through a waiter): then
 * the method goes on in k (with ctx), the function's result on top, one
 * slot above idx. */
void lq_sub_query(lua_State *L, int idx, const char *fname,
                  lua_KContext ctx, lua_KFunction k);

/* The metamethods and the two "other" methods every query shares:
 * __gc frees the query, __close also ends a run (lq_emit's guard),
 * __tostring, clone(bare?) (a front end's object keeps its class and
 * source, not its own fields; with bare, a bare query),
 * table_name(). */
int lqo_gc(lua_State *L);
int lqo_close(lua_State *L);
int lqo_tostring(lua_State *L);
int lqo_clone(lua_State *L);
int lqo_table_name(lua_State *L);

/* {==== lua_query_run.c ====} */

/* Runs u's compiled statement and pushes its result (returns 1), or
 * collects it (returns 0, pushes nothing). While it runs, the query (at
 * index 1) sits in a to-be-closed slot whose __close drops u->running,
 * whichever way orm_lua_run exits. */
int lq_emit(lua_State *L, query_ud *u, lq_sink *s, orm_lua_mode mode,
            int hyd);

/* For a method that runs several statements (and so cannot return the
 * result of orm_lua_run_wait straight to Lua): with `waiting`, runs u's
 * compiled statement as a Lua call (lua_callk with ctx, k) whose waits go
 * through the waiter, so it may yield, and k then goes on with the result
 * on top; the method (whose upvalues are the terminal methods') keeps its
 * state where k finds it (ctx). Without, as lq_emit. */
void lq_emit_k(lua_State *L, query_ud *u, lq_sink *s, orm_lua_mode mode,
               int hyd, int waiting, lua_KContext ctx, lua_KFunction k);
/* The call lq_emit_k makes with a waiter, pushed (the function, then its
 * arguments: the query at index 1 runs its compiled statement on s's
 * target) for the caller to make (lua_callk or lua_pcallk, one result);
 * returns the number of arguments. */
int lq_emit_push(lua_State *L, lq_sink *s, orm_lua_mode mode, int hyd);

/* Adds the { affected_rows, last_insert_id } on top to s and pops it. */
void lq_absorb(lua_State *L, lq_sink *s);

/* Compiles u's write payload and runs (or collects) it, adding its
 * affected rows and last id to s. */
void lq_write_emit(lua_State *L, query_ud *u, lq_sink *s);

/* Compiles u's write payload for d into u's output; raises on error. */
void lq_compile_write(lua_State *L, query_ud *u, const orm_dialect *d);

/* The terminal methods (reads, writes, to_sql), registered with the
 * builder's upvalues. */
extern const luaL_Reg lq_terminal_methods[];

/* What terminal method `name` does: "read", "write" (runs on the
 * primary, inside the caller's transaction) or "other" (to_sql...). */
const char *lq_terminal_kind(const char *name);

/* {==== lua_rows.c ====} */

/* 1 when the statements of a terminal method running on s's target go
 * through the waiter (orm_lua_waiter: one is set and the coroutine can
 * yield); 0 when they block, or s collects. Pushes nothing. */
int lq_waiting(lua_State *L, const lq_sink *s);

/* insert(row | rows) with the row or list at a: runs (pushing
 * { affected_rows, last_insert_id? }, returns 1) or collects (returns 0). */
int lq_insert(lua_State *L, query_ud *u, lq_sink *s, int a);

/* upsert(rows, unique_by, update_columns?) */
int lq_upsert(lua_State *L, query_ud *u, lq_sink *s, int a);

#endif
