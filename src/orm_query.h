/*
 * orm_query.h: the query model, a plain C struct tree (table, selected
 * columns, filters as a tree of AND/OR groups, joins, grouping, having,
 * order, limit/offset, and one write payload: insert / update / upsert /
 * delete), and its compiler to SQL text plus bindings for one dialect
 * (orm_compile.c). No Lua types here; src/lua_query.c wraps it.
 *
 * Memory: every string and value a query holds is copied into the query's
 * arena (blocks that never move), so callers may pass borrowed bytes. A
 * query must not be copied by value (its arena points into itself); use
 * orm_query_copy. Sub-queries (EXISTS, IN) are deep copies owned by the
 * query that uses them.
 *
 * Identifiers: column and table names are stored as given and quoted by the
 * compiler: "a.b" is split on dots and each part quoted; "*" and "t.*" stay
 * unquoted where a select list allows them; "expr as alias" (any case of
 * " as ") is accepted in select lists and table names; "count(x)",
 * "sum(x)", "avg(x)", "min(x)", "max(x)" (any case, x an identifier or *)
 * are accepted in select lists, having and order by. A name that is empty,
 * has an empty dotted part, or contains a NUL byte is refused with
 * ORM_E_INVALID_ARGUMENT when it is added.
 */
#ifndef ORM_QUERY_H
#define ORM_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "orm_buf.h"
#include "orm_driver.h"
#include "orm_error.h"
#include "orm_value.h"

/* {==== operators ====} */

/* The fixed list of comparison operators. */
typedef enum orm_qop {
    ORM_OP_EQ,       /* = */
    ORM_OP_NE,       /* <> */
    ORM_OP_NE2,      /* != */
    ORM_OP_LT,       /* < */
    ORM_OP_LE,       /* <= */
    ORM_OP_GT,       /* > */
    ORM_OP_GE,       /* >= */
    ORM_OP_LIKE,     /* like */
    ORM_OP_NOT_LIKE, /* not like */
    ORM_OP_ILIKE     /* ilike: ILIKE on PostgreSQL, LOWER(a) LIKE LOWER(b)
                        elsewhere */
} orm_qop;

/* The operator spelled by s (n bytes; like / not like / ilike in any case,
 * one space in "not like"), or -1 when s is not in the list. */
int orm_query_op_parse(const char *s, size_t n);

/* The list of accepted operators, for error messages. */
const char *orm_query_op_names(void);

/* {==== storage ====} */

/* The arena's first block, inside the query: small enough that a query
 * userdata (about 860 bytes) is served from malloc's per-thread cache
 * (chunks up to 1,032 bytes), which a larger one missed, costing 10% of a
 * query's build-and-compile time (bench: compile). */
#define ORM_QARENA_INLINE 256

/* The alignment of everything the arena holds (pointers, 64-bit integers,
 * doubles; nothing needs more): 8 bytes, not max_align_t's 16, so a query
 * can live in the memory of a Lua userdata with user values (which Lua
 * aligns to 8) and short strings take 8 bytes, not 32. */
typedef union orm_qalign {
    void *p;
    int64_t i;
    double d;
} orm_qalign;

typedef struct orm_qarena_block orm_qarena_block;

/* A bump allocator: pieces live until the arena is reset or freed and
 * never move. It may start in a buffer it does not own (the query's
 * inline block). */
typedef struct orm_qarena {
    orm_qarena_block *head; /* malloc'd blocks, newest (largest) first */
    char *cur;              /* next free byte */
    size_t left;            /* free bytes at cur */
} orm_qarena;

/* A singly linked list of arena nodes; every node type starts with its
 * `next` pointer. */
typedef struct orm_qlist {
    void *first;
    void *last;
    int n;                  /* nodes in the list */
} orm_qlist;

typedef struct orm_qname {
    struct orm_qname *next;
    const char *name;       /* NUL-terminated identifier */
} orm_qname;

typedef struct orm_qjoin {
    struct orm_qjoin *next;
    int left;               /* 1 = LEFT JOIN, 0 = INNER JOIN */
    const char *table;      /* table, may be "t as a" */
    const char *a;          /* left column */
    orm_qop op;
    const char *b;          /* right column */
} orm_qjoin;

typedef struct orm_qorder {
    struct orm_qorder *next;
    const char *col;        /* column, or NULL for "the first column" (1) */
    int desc;               /* 1 = DESC */
} orm_qorder;

typedef enum orm_qfilter_kind {
    ORM_QF_GROUP,           /* parenthesised children */
    ORM_QF_COMPARE,         /* col op ? */
    ORM_QF_IN,              /* col [NOT] IN (?, ...); empty list: 1 = 0 / 1 = 1 */
    ORM_QF_IN_SUB,          /* col [NOT] IN (SELECT ...) */
    ORM_QF_NULL,            /* col IS [NOT] NULL */
    ORM_QF_BETWEEN,         /* col [NOT] BETWEEN ? AND ? */
    ORM_QF_COLUMN,          /* col op col2 */
    ORM_QF_RAW,             /* raw SQL with ? placeholders */
    ORM_QF_EXISTS           /* [NOT] EXISTS (SELECT ...) */
} orm_qfilter_kind;

typedef struct orm_query orm_query;

typedef struct orm_qfilter {
    struct orm_qfilter *next;   /* next sibling in its group */
    orm_qfilter_kind kind;
    int use_or;                 /* joined to the previous sibling by OR */
    int negate;                 /* NOT IN / IS NOT NULL / NOT BETWEEN /
                                   NOT EXISTS */
    orm_qop op;                 /* COMPARE, COLUMN */
    const char *col;            /* column; the SQL text for RAW */
    const char *col2;           /* right-hand column (COLUMN) */
    orm_value *vals;            /* values (arena), in placeholder order */
    int nvals;
    orm_query *sub;             /* IN_SUB, EXISTS: owned sub-query */
    struct orm_qfilter *first;  /* GROUP: first child */
    struct orm_qfilter *last;   /* GROUP: last child */
} orm_qfilter;

typedef enum orm_qwrite_kind {
    ORM_QW_NONE,
    ORM_QW_INSERT,
    ORM_QW_UPSERT,
    ORM_QW_UPDATE,
    ORM_QW_DELETE
} orm_qwrite_kind;

typedef enum orm_qset_kind {
    ORM_QS_VALUE,               /* col = ? */
    ORM_QS_ADD,                 /* col = col + ? */
    ORM_QS_SUB                  /* col = col - ? */
} orm_qset_kind;

typedef struct orm_qset {
    struct orm_qset *next;
    const char *col;
    orm_qset_kind kind;
} orm_qset;

/* The write payload: transient, set up by the caller right before it
 * compiles a write, and reused (memory kept) by the next one. */
typedef struct orm_qwrite {
    orm_qwrite_kind kind;
    orm_qlist cols;             /* orm_qname: INSERT/UPSERT columns */
    orm_qlist sets;             /* orm_qset: UPDATE assignments */
    orm_qlist unique;           /* orm_qname: UPSERT conflict columns */
    orm_qlist update;           /* orm_qname: UPSERT columns to update
                                   (empty: DO NOTHING) */
    const char *returning;      /* INSERT: RETURNING column, or NULL */
    orm_value *vals;            /* INSERT/UPSERT: nrows * cols.n values,
                                   row by row; UPDATE: one per set */
    int nvals;
    int capvals;
    int nrows;                  /* complete rows in vals */
    orm_qarena names;           /* column names */
    orm_qarena bytes;           /* text/blob bytes of vals */
} orm_qwrite;

struct orm_query {
    const char *table;          /* FROM table, may be "t as a"; NULL = unset */
    orm_qlist select;           /* orm_qname; empty = * */
    int distinct;
    orm_qfilter where;          /* root group of WHERE */
    orm_qfilter having;         /* root group of HAVING (AND only) */
    orm_qfilter *cur;           /* group receiving new filters */
    orm_qfilter *held;          /* WHERE's filters put aside by
                                   orm_query_scope_begin, or NULL */
    orm_qlist joins;            /* orm_qjoin */
    orm_qlist groups;           /* orm_qname: GROUP BY */
    orm_qlist orders;           /* orm_qorder */
    int64_t limit;              /* -1 = none */
    int64_t offset;             /* -1 = none */
    orm_query *subs;            /* owned sub-queries, chained by next_sub */
    orm_query *next_sub;        /* next sibling in the owner's subs */
    orm_qwrite write;           /* the write payload */
    orm_qarena arena;           /* strings, values and nodes above */
    union {
        orm_qalign align;
        char c[ORM_QARENA_INLINE];
    } first;                    /* the arena's first block */
};

/* {==== life cycle ====} */

/* Makes *q an empty query (no table); allocates nothing, never fails. */
void orm_query_init(orm_query *q);

/* Frees everything q owns and makes it empty again (as after init).
 * NULL is fine. */
void orm_query_clear(orm_query *q);

/* A malloc'd empty query, or NULL when out of memory. */
orm_query *orm_query_new(void);

/* orm_query_clear + free. NULL is fine. */
void orm_query_free(orm_query *q);

/* Deep-copies src (everything but the write payload) into dst, which must
 * be empty (just initialised or cleared). On failure returns the kind
 * (ORM_E_NOMEM) and leaves dst empty. */
int orm_query_copy(orm_query *dst, const orm_query *src, orm_error *err);

/* Sets the FROM table (n bytes, may be "t as a"). ORM_E_INVALID_ARGUMENT
 * for a bad name; q unchanged on failure. */
int orm_query_set_table(orm_query *q, const char *name, size_t n,
                        orm_error *err);

/* {==== filters ====}
 * Each adds one filter to the current group (the WHERE root, or the group
 * opened by orm_query_group_begin), joined to the previous one by OR when
 * use_or is set, else AND. Values are copied. On failure (bad identifier,
 * out of memory) the query is unchanged. */

/* col op v. A NULL value with = becomes IS NULL, with <> or != IS NOT NULL;
 * with another operator it is refused (ORM_E_INVALID_ARGUMENT). */
int orm_query_where(orm_query *q, int use_or, const char *col, size_t n,
                    orm_qop op, const orm_value *v, orm_error *err);

/* col [NOT] IN (vals). An empty list compiles to 1 = 0 (IN) or 1 = 1
 * (NOT IN). */
int orm_query_where_in(orm_query *q, int use_or, int negate, const char *col,
                       size_t n, const orm_value *vals, int nvals,
                       orm_error *err);

/* col [NOT] IN (SELECT ... of sub); sub is deep-copied. */
int orm_query_where_in_sub(orm_query *q, int use_or, int negate,
                           const char *col, size_t n, const orm_query *sub,
                           orm_error *err);

/* col IS [NOT] NULL. */
int orm_query_where_null(orm_query *q, int use_or, int negate,
                         const char *col, size_t n, orm_error *err);

/* col [NOT] BETWEEN lo AND hi. */
int orm_query_where_between(orm_query *q, int use_or, int negate,
                            const char *col, size_t n, const orm_value *lo,
                            const orm_value *hi, orm_error *err);

/* a op b, both columns. */
int orm_query_where_column(orm_query *q, int use_or, const char *a,
                           size_t an, orm_qop op, const char *b, size_t bn,
                           orm_error *err);

/* A raw SQL condition (n bytes, no NUL) with its own values: each `?`
 * outside quotes and comments takes the next value (and becomes $n on
 * PostgreSQL), `??` stands for a literal `?` (the rules of orm_sql.h). The
 * number of `?` must equal nvals (ORM_E_INVALID_ARGUMENT otherwise).
 * Compiled in parentheses. */
int orm_query_where_raw(orm_query *q, int use_or, const char *sql, size_t n,
                        const orm_value *vals, int nvals, orm_error *err);

/* [NOT] EXISTS (SELECT ... of sub); sub is deep-copied. */
int orm_query_where_exists(orm_query *q, int use_or, int negate,
                           const orm_query *sub, orm_error *err);

/* Opens a parenthesised group in the current group and makes it current;
 * OUT: *saved receives the group to restore with orm_query_group_end.
 * An empty group compiles to nothing. */
int orm_query_group_begin(orm_query *q, int use_or, orm_qfilter **saved,
                          orm_error *err);

/* Makes `saved` (from orm_query_group_begin) current again. Never fails. */
void orm_query_group_end(orm_query *q, orm_qfilter *saved);

/* Global scopes: puts the filters WHERE has so far aside, so that the
 * filters added next (the scopes) come first; orm_query_scope_end puts
 * the set-aside filters back after them as one parenthesised group, ANDed
 * with the scopes as a whole (`a OR b` never becomes `s AND a OR b`).
 * begin returns ORM_OK or ORM_E_NOMEM; end never fails. */
int orm_query_scope_begin(orm_query *q, orm_error *err);
void orm_query_scope_end(orm_query *q);

/* Between scope_begin and scope_end: opens the parenthesised group of the
 * next scope at WHERE's root and makes it current (ORM_OK or
 * ORM_E_NOMEM), so that each scope's filters stay together. */
int orm_query_scope_group(orm_query *q, orm_error *err);

/* {==== shape ====} */

/* Appends a selected column (select lists allow "*", "t.*", aliases and
 * aggregate calls). */
int orm_query_select(orm_query *q, const char *col, size_t n,
                     orm_error *err);

/* Drops the select list (back to *). Never fails. */
void orm_query_select_reset(orm_query *q);

/* SELECT DISTINCT when on != 0. */
void orm_query_distinct(orm_query *q, int on);

/* [LEFT] JOIN table ON a op b. */
int orm_query_join(orm_query *q, int left, const char *table, size_t tn,
                   const char *a, size_t an, orm_qop op, const char *b,
                   size_t bn, orm_error *err);

/* Appends a GROUP BY column. */
int orm_query_group_by(orm_query *q, const char *col, size_t n,
                       orm_error *err);

/* Appends `col op v` to HAVING (ANDed); NULL values follow
 * orm_query_where's rule. */
int orm_query_having(orm_query *q, const char *col, size_t n, orm_qop op,
                     const orm_value *v, orm_error *err);

/* Appends an ORDER BY column; col NULL means "the first result column"
 * (ORDER BY 1). */
int orm_query_order_by(orm_query *q, const char *col, size_t n, int desc,
                       orm_error *err);

/* Drops every ORDER BY entry. Never fails. */
void orm_query_order_reset(orm_query *q);

/* LIMIT / OFFSET; a negative n removes it. Never fail. */
void orm_query_limit(orm_query *q, int64_t n);
void orm_query_offset(orm_query *q, int64_t n);

/* {==== write payload ====}
 * Build order: orm_query_write_begin; then for INSERT/UPSERT the columns
 * (orm_query_write_column), then each row as cols.n values
 * (orm_query_write_value ... orm_query_write_end_row); for UPSERT the
 * conflict and update columns; for UPDATE the assignments
 * (orm_query_write_set). DELETE needs nothing. On failure the payload may
 * be partly built; begin again. */

/* Empties the payload (keeping its memory) and sets its kind. */
void orm_query_write_begin(orm_query *q, orm_qwrite_kind kind);

/* Drops the rows but keeps the columns and the rest, to send the next
 * batch of rows with the same columns. Never fails. */
void orm_query_write_rows_reset(orm_query *q);

/* Appends an INSERT/UPSERT column. */
int orm_query_write_column(orm_query *q, const char *col, size_t n,
                           orm_error *err);

/* Appends one value of the current row (bytes copied). */
int orm_query_write_value(orm_query *q, const orm_value *v, orm_error *err);

/* Appends n values of the current row borrowing their text/blob bytes,
 * which must stay valid until the payload is reset (the caller keeps them
 * alive while it compiles and runs the statement). */
int orm_query_write_values_ref(orm_query *q, const orm_value *v, int n,
                               orm_error *err);

/* Ends the current row; ORM_E_INVALID_ARGUMENT when it does not hold
 * exactly cols.n values. */
int orm_query_write_end_row(orm_query *q, orm_error *err);

/* Appends an UPDATE assignment: col = v, col = col + v, col = col - v. */
int orm_query_write_set(orm_query *q, const char *col, size_t n,
                        orm_qset_kind kind, const orm_value *v,
                        orm_error *err);

/* Appends an UPSERT conflict column / column to update. */
int orm_query_write_unique(orm_query *q, const char *col, size_t n,
                           orm_error *err);
int orm_query_write_update(orm_query *q, const char *col, size_t n,
                           orm_error *err);

/* INSERT ... RETURNING col on dialects that have it (ignored elsewhere). */
int orm_query_write_returning(orm_query *q, const char *col, size_t n,
                              orm_error *err);

/* {==== compiler (orm_compile.c) ====} */

typedef enum orm_qagg {
    ORM_AGG_NONE,
    ORM_AGG_COUNT,
    ORM_AGG_SUM,
    ORM_AGG_AVG,
    ORM_AGG_MIN,
    ORM_AGG_MAX,
    ORM_AGG_EXISTS
} orm_qagg;

/* How a SELECT is compiled; a zeroed struct (or NULL) compiles the query
 * as it is. */
typedef struct orm_compile_opts {
    orm_qagg agg;           /* aggregate: SELECT AGG(col) AS "aggregate"
                               (wrapping the query as a sub-select when it
                               has DISTINCT, GROUP BY or LIMIT/OFFSET);
                               EXISTS: SELECT EXISTS(<query>) AS "exists" */
    const char *agg_col;    /* aggregate column; NULL = * (COUNT only) */
    const char *only_col;   /* select only this column (pluck) */
    int set_window;         /* 1: use limit/offset below, not the query's */
    int64_t limit;          /* with set_window: LIMIT, -1 = none */
    int64_t offset;         /* with set_window: OFFSET, -1 = none */
    int default_order;      /* 1: ORDER BY 1 when the query has no order */
    const char *key_col;    /* paging by key: ORDER BY key_col ASC in place
                               of the query's order, and, when key_after
                               is set, the query's filters AND key_col > ? */
    const orm_value *key_after;
    int key_null;           /* with key_col: the query's filters AND
                               key_col IS NULL (rows paging would miss) */
} orm_compile_opts;

/* Identifier flags for orm_compile_ident. */
#define ORM_ID_ALIAS 1u /* accept "expr as alias" */
#define ORM_ID_FUNC 2u  /* accept count(x), sum(x), avg(x), min(x), max(x) */
#define ORM_ID_STAR 4u  /* leave "*" and "t.*" unquoted */
#define ORM_ID_BARE 8u  /* with ALIAS: write the expression, not the alias */

/* Quotes identifier s (n bytes) with `quote` into b under `flags`, or only
 * checks it when b is NULL. Returns 0, or -1 when it cannot be quoted
 * safely (empty, an empty dotted part, a NUL byte); then nothing is
 * appended. */
int orm_compile_ident(orm_buf *b, const char *s, size_t n, char quote,
                      unsigned flags);

/* Compiles q as a SELECT for dialect d. sql and binds are reset first;
 * binds borrow the query's bytes (keep q unchanged while they are used).
 * Returns ORM_OK, or the kind with err filled (ORM_E_INVALID_ARGUMENT for
 * a query without table or a name that cannot be quoted, ORM_E_NOMEM). */
int orm_compile_select(const orm_query *q, const orm_dialect *d,
                       const orm_compile_opts *opts, orm_buf *sql,
                       orm_vlist *binds, orm_error *err);

/* Compiles q's write payload (INSERT, UPSERT, UPDATE, DELETE; the
 * query's WHERE applies to UPDATE and DELETE) like orm_compile_select.
 * ORM_E_INVALID_ARGUMENT when there is no payload, an INSERT has no row,
 * an UPDATE no assignment, an ON CONFLICT upsert no conflict column, or an
 * UPDATE/DELETE query has joins, grouping, limit or offset. */
int orm_compile_write(const orm_query *q, const orm_dialect *d,
                      orm_buf *sql, orm_vlist *binds, orm_error *err);

/* Compiles q's INSERT payload as a bulk load for a dialect with
 * copy_from_stdin: `copy` gets COPY t (cols) FROM STDIN, `probe` a SELECT
 * of those columns that returns no row (it tells their types). Both are
 * reset first. ORM_E_INVALID_ARGUMENT when the dialect has no COPY or the
 * payload is not an insert with columns. */
int orm_compile_copy(const orm_query *q, const orm_dialect *d, orm_buf *copy,
                     orm_buf *probe, orm_error *err);

#endif
