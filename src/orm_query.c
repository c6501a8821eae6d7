/*
 * orm_query.c: the query model of orm_query.h: an arena per query, the
 * filter tree, the shape lists and the write payload. Compilation to SQL is
 * in orm_compile.c.
 */
#include <stdlib.h>
#include <string.h>

#include "orm_query.h"
#include "orm_sql.h"

/* {==== operators ====} */

static const char *const op_names[] = {
    "=", "<>", "!=", "<", "<=", ">", ">=", "like", "not like", "ilike"
};

static int aux_ieq(const char *a, size_t n, const char *lower)
{
    size_t i;
    for (i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i] || lower[i] == '\0')
            return 0;
    }
    return lower[n] == '\0';
}

int orm_query_op_parse(const char *s, size_t n)
{
    int i;
    for (i = 0; i < (int)(sizeof op_names / sizeof op_names[0]); i++)
        if (aux_ieq(s, n, op_names[i]))
            return i;
    return -1;
}

const char *orm_query_op_names(void)
{
    return "=, <>, !=, <, <=, >, >=, like, not like, ilike";
}

/* {==== arena ====} */

struct orm_qarena_block {
    orm_qarena_block *next;
    size_t size;
    orm_qalign data[]; /* size bytes */
};

#define ARENA_ALIGN (sizeof(orm_qalign))
/* first malloc'd block: 960 + its header stays in malloc's per-thread
 * cache, like the query userdata (see ORM_QARENA_INLINE) */
#define ARENA_MIN_BLOCK 960

/* Starts the arena in buf (size bytes, may be NULL / 0). */
static void aux_arena_init(orm_qarena *a, char *buf, size_t size)
{
    a->head = NULL;
    a->cur = buf;
    a->left = size;
}

/* Frees the arena's blocks; it is empty (and has no buffer) afterwards. */
static void aux_arena_free(orm_qarena *a)
{
    while (a->head) {
        orm_qarena_block *b = a->head;
        a->head = b->next;
        free(b);
    }
    aux_arena_init(a, NULL, 0);
}

/* Rewinds an arena that has no inline buffer, keeping its newest (largest)
 * block. */
static void aux_arena_reset(orm_qarena *a)
{
    orm_qarena_block *keep = a->head;
    if (!keep) {
        aux_arena_init(a, NULL, 0);
        return;
    }
    a->head = keep->next;
    aux_arena_free(a);
    keep->next = NULL;
    a->head = keep;
    a->cur = (char *)keep->data;
    a->left = keep->size;
}

static void *aux_arena_alloc(orm_qarena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    void *p;
    if (need > a->left) {
        size_t size = a->head ? a->head->size * 2 : ARENA_MIN_BLOCK;
        orm_qarena_block *b;
        if (size < need)
            size = need;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->next = a->head;
        a->head = b;
        a->cur = (char *)b->data;
        a->left = size;
    }
    p = a->cur;
    a->cur += need;
    a->left -= need;
    return p;
}

static char *aux_arena_str(orm_qarena *a, const char *s, size_t n)
{
    char *p = aux_arena_alloc(a, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Copies n values and their bytes into the arena; NULL when out of
 * memory (or n == 0). */
static orm_value *aux_arena_values(orm_qarena *a, const orm_value *v, int n)
{
    orm_value *out;
    int i;
    if (n <= 0)
        return NULL;
    out = aux_arena_alloc(a, sizeof *out * (size_t)n);
    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        out[i] = v[i];
        if (v[i].type == ORM_TEXT || v[i].type == ORM_BLOB) {
            char *p = aux_arena_str(a, v[i].u.s.p, v[i].u.s.n);
            if (!p)
                return NULL;
            out[i].u.s.p = p;
        }
    }
    return out;
}

/* {==== lists ====} */

typedef struct aux_link {
    struct aux_link *next;
} aux_link;

static void aux_list_init(orm_qlist *l)
{
    l->first = l->last = NULL;
    l->n = 0;
}

static void aux_list_append(orm_qlist *l, void *node)
{
    aux_link *k = node;
    k->next = NULL;
    if (l->last)
        ((aux_link *)l->last)->next = k;
    else
        l->first = k;
    l->last = k;
    l->n++;
}

/* {==== validation ====} */

static int aux_nomem(orm_error *err)
{
    return orm_error_set(err, ORM_E_NOMEM, "out of memory building a query");
}

static int aux_check_ident(const char *s, size_t n, unsigned flags,
                           const char *what, orm_error *err)
{
    if (s && orm_compile_ident(NULL, s, n, '"', flags) == 0)
        return ORM_OK;
    if (s && memchr(s, '\0', n))
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "%s contains a NUL byte", what);
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "%s '%.*s' is not a valid identifier", what,
                         (int)(n > 64 ? 64 : n), s ? s : "");
}

/* Checks and copies an identifier into q's arena. */
static int qm_ident(orm_qarena *a, const char *s, size_t n, unsigned flags,
                     const char *what, const char **out, orm_error *err)
{
    int rc = aux_check_ident(s, n, flags, what, err);
    if (rc != ORM_OK)
        return rc;
    *out = aux_arena_str(a, s, n);
    return *out ? ORM_OK : aux_nomem(err);
}

static int aux_check_op(int op, orm_error *err)
{
    if (op >= ORM_OP_EQ && op <= ORM_OP_ILIKE)
        return ORM_OK;
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "operator must be one of %s", orm_query_op_names());
}

/* {==== life cycle ====} */

static void aux_group_init(orm_qfilter *g)
{
    memset(g, 0, sizeof *g);
    g->kind = ORM_QF_GROUP;
}

static void aux_write_init(orm_qwrite *w)
{
    w->kind = ORM_QW_NONE;
    aux_list_init(&w->cols);
    aux_list_init(&w->sets);
    aux_list_init(&w->unique);
    aux_list_init(&w->update);
    w->returning = NULL;
    w->vals = NULL;
    w->nvals = w->capvals = w->nrows = 0;
    aux_arena_init(&w->names, NULL, 0);
    aux_arena_init(&w->bytes, NULL, 0);
}

void orm_query_init(orm_query *q)
{
    q->table = NULL;
    aux_list_init(&q->select);
    q->distinct = 0;
    aux_group_init(&q->where);
    aux_group_init(&q->having);
    q->cur = &q->where;
    q->held = NULL;
    aux_list_init(&q->joins);
    aux_list_init(&q->groups);
    aux_list_init(&q->orders);
    q->limit = q->offset = -1;
    q->subs = NULL;
    q->next_sub = NULL;
    aux_write_init(&q->write);
    aux_arena_init(&q->arena, q->first.c, sizeof q->first.c);
}

void orm_query_clear(orm_query *q)
{
    if (!q)
        return;
    while (q->subs) {
        orm_query *s = q->subs;
        q->subs = s->next_sub;
        orm_query_free(s);
    }
    free(q->write.vals);
    aux_arena_free(&q->write.names);
    aux_arena_free(&q->write.bytes);
    aux_arena_free(&q->arena);
    orm_query_init(q);
}

orm_query *orm_query_new(void)
{
    orm_query *q = malloc(sizeof *q);
    if (q)
        orm_query_init(q);
    return q;
}

void orm_query_free(orm_query *q)
{
    if (!q)
        return;
    orm_query_clear(q);
    free(q);
}

int orm_query_set_table(orm_query *q, const char *name, size_t n,
                        orm_error *err)
{
    return qm_ident(&q->arena, name, n, ORM_ID_ALIAS, "table name",
                     &q->table, err);
}

/* {==== sub-queries ====} */

/* A deep copy of sub owned by q; NULL when out of memory. */
static orm_query *aux_adopt(orm_query *q, const orm_query *sub,
                            orm_error *err)
{
    orm_query *c = orm_query_new();
    if (!c) {
        aux_nomem(err);
        return NULL;
    }
    if (orm_query_copy(c, sub, err) != ORM_OK) {
        free(c);
        return NULL;
    }
    c->next_sub = q->subs;
    q->subs = c;
    return c;
}

/* {==== filters ====} */

static orm_qfilter *qm_filter(orm_query *q, orm_qfilter_kind kind,
                               int use_or, int negate)
{
    orm_qfilter *f = aux_arena_alloc(&q->arena, sizeof *f);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->use_or = use_or != 0;
    f->negate = negate != 0;
    return f;
}

static void aux_group_append(orm_qfilter *g, orm_qfilter *f)
{
    if (g->last)
        g->last->next = f;
    else
        g->first = f;
    g->last = f;
}

/* Builds a filter on column col with a copy of vals; not yet linked. */
static int aux_col_filter(orm_query *q, orm_qfilter_kind kind, int use_or,
                          int negate, unsigned flags, const char *col,
                          size_t n, const orm_value *vals, int nvals,
                          orm_qfilter **out, orm_error *err)
{
    const char *c;
    orm_qfilter *f = NULL;
    int rc = qm_ident(&q->arena, col, n, flags, "column name", &c, err);
    if (rc != ORM_OK)
        return rc;
    f = qm_filter(q, kind, use_or, negate);
    if (!f)
        return aux_nomem(err);
    f->col = c;
    f->nvals = nvals;
    if (nvals > 0 && !(f->vals = aux_arena_values(&q->arena, vals, nvals)))
        return aux_nomem(err);
    *out = f;
    return ORM_OK;
}

/* col op v into group g, with the NULL rules of orm_query_where. */
static int qm_compare(orm_query *q, orm_qfilter *g, int use_or,
                       unsigned flags, const char *col, size_t n, orm_qop op,
                       const orm_value *v, orm_error *err)
{
    orm_qfilter *f = NULL;
    int rc = aux_check_op((int)op, err);
    if (rc != ORM_OK)
        return rc;
    if (v->type == ORM_NULL) {
        if (op != ORM_OP_EQ && op != ORM_OP_NE && op != ORM_OP_NE2)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "NULL can only be compared with =, <> or !=");
        rc = aux_col_filter(q, ORM_QF_NULL, use_or, op != ORM_OP_EQ, flags,
                            col, n, NULL, 0, &f, err);
    } else {
        rc = aux_col_filter(q, ORM_QF_COMPARE, use_or, 0, flags, col, n, v, 1,
                            &f, err);
    }
    if (rc != ORM_OK)
        return rc;
    f->op = op;
    aux_group_append(g, f);
    return ORM_OK;
}

int orm_query_where(orm_query *q, int use_or, const char *col, size_t n,
                    orm_qop op, const orm_value *v, orm_error *err)
{
    return qm_compare(q, q->cur, use_or, 0, col, n, op, v, err);
}

int orm_query_where_in(orm_query *q, int use_or, int negate, const char *col,
                       size_t n, const orm_value *vals, int nvals,
                       orm_error *err)
{
    orm_qfilter *f = NULL;
    int rc = aux_col_filter(q, ORM_QF_IN, use_or, negate, 0, col, n, vals,
                            nvals < 0 ? 0 : nvals, &f, err);
    if (rc == ORM_OK)
        aux_group_append(q->cur, f);
    return rc;
}

int orm_query_where_in_sub(orm_query *q, int use_or, int negate,
                           const char *col, size_t n, const orm_query *sub,
                           orm_error *err)
{
    orm_qfilter *f = NULL;
    int rc = aux_col_filter(q, ORM_QF_IN_SUB, use_or, negate, 0, col, n, NULL,
                            0, &f, err);
    if (rc != ORM_OK)
        return rc;
    if (!(f->sub = aux_adopt(q, sub, err)))
        return err->kind;
    aux_group_append(q->cur, f);
    return ORM_OK;
}

int orm_query_where_null(orm_query *q, int use_or, int negate,
                         const char *col, size_t n, orm_error *err)
{
    orm_qfilter *f = NULL;
    int rc = aux_col_filter(q, ORM_QF_NULL, use_or, negate, 0, col, n, NULL,
                            0, &f, err);
    if (rc == ORM_OK)
        aux_group_append(q->cur, f);
    return rc;
}

int orm_query_where_between(orm_query *q, int use_or, int negate,
                            const char *col, size_t n, const orm_value *lo,
                            const orm_value *hi, orm_error *err)
{
    orm_value v[2];
    orm_qfilter *f = NULL;
    int rc;
    v[0] = *lo;
    v[1] = *hi;
    rc = aux_col_filter(q, ORM_QF_BETWEEN, use_or, negate, 0, col, n, v, 2, &f,
                        err);
    if (rc == ORM_OK)
        aux_group_append(q->cur, f);
    return rc;
}

int orm_query_where_column(orm_query *q, int use_or, const char *a,
                           size_t an, orm_qop op, const char *b, size_t bn,
                           orm_error *err)
{
    orm_qfilter *f = NULL;
    int rc = aux_check_op((int)op, err);
    if (rc == ORM_OK)
        rc = aux_col_filter(q, ORM_QF_COLUMN, use_or, 0, 0, a, an, NULL, 0, &f,
                            err);
    if (rc == ORM_OK)
        rc = qm_ident(&q->arena, b, bn, 0, "column name", &f->col2, err);
    if (rc != ORM_OK)
        return rc;
    f->op = op;
    aux_group_append(q->cur, f);
    return ORM_OK;
}

/* Placeholders in a raw fragment, counted the way orm_compile.c will
 * rewrite them (orm_sql_placeholders) for a dialect with or without
 * backslash escapes in strings; -1 when out of memory. The query does not
 * know its dialect yet: the compiler checks the count again. */
static int aux_raw_params(const char *s, size_t n, int backslash)
{
    orm_dialect qmark;
    orm_buf scratch;
    int count;
    memset(&qmark, 0, sizeof qmark);
    qmark.placeholder = ORM_PH_QMARK;
    qmark.backslash_strings = backslash;
    orm_buf_init(&scratch);
    count = orm_sql_placeholders(s, n, &qmark, 1, &scratch);
    if (scratch.oom)
        count = -1;
    orm_buf_free(&scratch);
    return count;
}

int orm_query_where_raw(orm_query *q, int use_or, const char *sql, size_t n,
                        const orm_value *vals, int nvals, orm_error *err)
{
    orm_qfilter *f = NULL;
    int want;
    if (!sql || n == 0 || memchr(sql, '\0', n))
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "raw SQL must be a non-empty string without NUL");
    want = aux_raw_params(sql, n, 0);
    if (want >= 0 && want != nvals && aux_raw_params(sql, n, 1) == nvals)
        want = nvals; /* as a dialect with backslash escapes reads it */
    if (want < 0)
        return aux_nomem(err);
    if (want != nvals)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "raw SQL has %d placeholder(s) but %d binding(s)",
                             want, nvals);
    if (!(f = qm_filter(q, ORM_QF_RAW, use_or, 0)))
        return aux_nomem(err);
    if (!(f->col = aux_arena_str(&q->arena, sql, n)))
        return aux_nomem(err);
    f->nvals = nvals;
    if (nvals > 0 && !(f->vals = aux_arena_values(&q->arena, vals, nvals)))
        return aux_nomem(err);
    aux_group_append(q->cur, f);
    return ORM_OK;
}

int orm_query_where_exists(orm_query *q, int use_or, int negate,
                           const orm_query *sub, orm_error *err)
{
    orm_qfilter *f = qm_filter(q, ORM_QF_EXISTS, use_or, negate);
    if (!f)
        return aux_nomem(err);
    if (!(f->sub = aux_adopt(q, sub, err)))
        return err->kind;
    aux_group_append(q->cur, f);
    return ORM_OK;
}

int orm_query_group_begin(orm_query *q, int use_or, orm_qfilter **saved,
                          orm_error *err)
{
    orm_qfilter *g = qm_filter(q, ORM_QF_GROUP, use_or, 0);
    if (!g)
        return aux_nomem(err);
    aux_group_append(q->cur, g);
    *saved = q->cur;
    q->cur = g;
    return ORM_OK;
}

void orm_query_group_end(orm_query *q, orm_qfilter *saved)
{
    q->cur = saved ? saved : &q->where;
}

int orm_query_scope_begin(orm_query *q, orm_error *err)
{
    orm_qfilter *g;
    q->cur = &q->where;
    if (q->where.first == NULL)
        return ORM_OK;
    g = qm_filter(q, ORM_QF_GROUP, 0, 0);
    if (!g)
        return aux_nomem(err);
    g->first = q->where.first;
    g->last = q->where.last;
    q->where.first = q->where.last = NULL;
    q->held = g;
    return ORM_OK;
}

int orm_query_scope_group(orm_query *q, orm_error *err)
{
    orm_qfilter *saved;
    q->cur = &q->where;
    return orm_query_group_begin(q, 0, &saved, err);
}

void orm_query_scope_end(orm_query *q)
{
    q->cur = &q->where;
    if (q->held == NULL)
        return;
    aux_group_append(&q->where, q->held);
    q->held = NULL;
}

/* {==== shape ====} */

static int qm_name(orm_query *q, orm_qlist *l, const char *s, size_t n,
                    unsigned flags, const char *what, orm_error *err)
{
    orm_qname *nm;
    const char *c;
    int rc = qm_ident(&q->arena, s, n, flags, what, &c, err);
    if (rc != ORM_OK)
        return rc;
    if (!(nm = aux_arena_alloc(&q->arena, sizeof *nm)))
        return aux_nomem(err);
    nm->name = c;
    aux_list_append(l, nm);
    return ORM_OK;
}

int orm_query_select(orm_query *q, const char *col, size_t n, orm_error *err)
{
    return qm_name(q, &q->select, col, n,
                    ORM_ID_ALIAS | ORM_ID_FUNC | ORM_ID_STAR, "column name",
                    err);
}

void orm_query_select_reset(orm_query *q)
{
    aux_list_init(&q->select);
}

void orm_query_distinct(orm_query *q, int on)
{
    q->distinct = on != 0;
}

int orm_query_join(orm_query *q, int left, const char *table, size_t tn,
                   const char *a, size_t an, orm_qop op, const char *b,
                   size_t bn, orm_error *err)
{
    orm_qjoin *j = aux_arena_alloc(&q->arena, sizeof *j);
    int rc = aux_check_op((int)op, err);
    if (rc != ORM_OK)
        return rc;
    if (!j)
        return aux_nomem(err);
    rc = qm_ident(&q->arena, table, tn, ORM_ID_ALIAS, "table name",
                   &j->table, err);
    if (rc == ORM_OK)
        rc = qm_ident(&q->arena, a, an, 0, "column name", &j->a, err);
    if (rc == ORM_OK)
        rc = qm_ident(&q->arena, b, bn, 0, "column name", &j->b, err);
    if (rc != ORM_OK)
        return rc;
    j->left = left != 0;
    j->op = op;
    aux_list_append(&q->joins, j);
    return ORM_OK;
}

int orm_query_group_by(orm_query *q, const char *col, size_t n,
                       orm_error *err)
{
    return qm_name(q, &q->groups, col, n, 0, "column name", err);
}

int orm_query_having(orm_query *q, const char *col, size_t n, orm_qop op,
                     const orm_value *v, orm_error *err)
{
    return qm_compare(q, &q->having, 0, ORM_ID_FUNC, col, n, op, v, err);
}

int orm_query_order_by(orm_query *q, const char *col, size_t n, int desc,
                       orm_error *err)
{
    orm_qorder *o = aux_arena_alloc(&q->arena, sizeof *o);
    if (!o)
        return aux_nomem(err);
    o->col = NULL;
    if (col) {
        int rc = qm_ident(&q->arena, col, n, ORM_ID_FUNC, "column name",
                           &o->col, err);
        if (rc != ORM_OK)
            return rc;
    }
    o->desc = desc != 0;
    aux_list_append(&q->orders, o);
    return ORM_OK;
}

void orm_query_order_reset(orm_query *q)
{
    aux_list_init(&q->orders);
}

void orm_query_limit(orm_query *q, int64_t n)
{
    q->limit = n < 0 ? -1 : n;
}

void orm_query_offset(orm_query *q, int64_t n)
{
    q->offset = n < 0 ? -1 : n;
}

/* {==== copy ====} */

static int aux_copy_names(orm_query *dst, orm_qlist *to, const orm_qlist *from,
                          orm_error *err)
{
    const orm_qname *s;
    for (s = from->first; s; s = s->next) {
        orm_qname *nm = aux_arena_alloc(&dst->arena, sizeof *nm);
        if (!nm || !(nm->name = aux_arena_str(&dst->arena, s->name,
                                              strlen(s->name))))
            return aux_nomem(err);
        aux_list_append(to, nm);
    }
    return ORM_OK;
}

static int aux_copy_joins(orm_query *dst, const orm_query *src,
                          orm_error *err)
{
    const orm_qjoin *s;
    for (s = src->joins.first; s; s = s->next) {
        orm_qjoin *j = aux_arena_alloc(&dst->arena, sizeof *j);
        if (!j)
            return aux_nomem(err);
        *j = *s;
        j->table = aux_arena_str(&dst->arena, s->table, strlen(s->table));
        j->a = aux_arena_str(&dst->arena, s->a, strlen(s->a));
        j->b = aux_arena_str(&dst->arena, s->b, strlen(s->b));
        if (!j->table || !j->a || !j->b)
            return aux_nomem(err);
        aux_list_append(&dst->joins, j);
    }
    return ORM_OK;
}

static int aux_copy_orders(orm_query *dst, const orm_query *src,
                           orm_error *err)
{
    const orm_qorder *s;
    for (s = src->orders.first; s; s = s->next) {
        orm_qorder *o = aux_arena_alloc(&dst->arena, sizeof *o);
        if (!o)
            return aux_nomem(err);
        *o = *s;
        if (s->col && !(o->col = aux_arena_str(&dst->arena, s->col,
                                               strlen(s->col))))
            return aux_nomem(err);
        aux_list_append(&dst->orders, o);
    }
    return ORM_OK;
}

static int aux_copy_group(orm_query *dst, orm_qfilter *to,
                          const orm_qfilter *from, orm_error *err);

static int aux_copy_filter(orm_query *dst, orm_qfilter *f,
                           const orm_qfilter *s, orm_error *err)
{
    *f = *s;
    f->next = f->first = f->last = NULL;
    if (s->col && !(f->col = aux_arena_str(&dst->arena, s->col,
                                           strlen(s->col))))
        return aux_nomem(err);
    if (s->col2 && !(f->col2 = aux_arena_str(&dst->arena, s->col2,
                                             strlen(s->col2))))
        return aux_nomem(err);
    if (s->nvals > 0 &&
        !(f->vals = aux_arena_values(&dst->arena, s->vals, s->nvals)))
        return aux_nomem(err);
    if (s->sub && !(f->sub = aux_adopt(dst, s->sub, err)))
        return err->kind;
    return s->kind == ORM_QF_GROUP ? aux_copy_group(dst, f, s, err) : ORM_OK;
}

static int aux_copy_group(orm_query *dst, orm_qfilter *to,
                          const orm_qfilter *from, orm_error *err)
{
    const orm_qfilter *s;
    for (s = from->first; s; s = s->next) {
        orm_qfilter *f = aux_arena_alloc(&dst->arena, sizeof *f);
        int rc;
        if (!f)
            return aux_nomem(err);
        rc = aux_copy_filter(dst, f, s, err);
        if (rc != ORM_OK)
            return rc;
        aux_group_append(to, f);
    }
    return ORM_OK;
}

static int aux_copy_all(orm_query *dst, const orm_query *src, orm_error *err)
{
    int rc = ORM_OK;
    if (src->table && !(dst->table = aux_arena_str(&dst->arena, src->table,
                                                   strlen(src->table))))
        return aux_nomem(err);
    dst->distinct = src->distinct;
    dst->limit = src->limit;
    dst->offset = src->offset;
    if (rc == ORM_OK)
        rc = aux_copy_names(dst, &dst->select, &src->select, err);
    if (rc == ORM_OK)
        rc = aux_copy_group(dst, &dst->where, &src->where, err);
    if (rc == ORM_OK)
        rc = aux_copy_group(dst, &dst->having, &src->having, err);
    if (rc == ORM_OK)
        rc = aux_copy_joins(dst, src, err);
    if (rc == ORM_OK)
        rc = aux_copy_names(dst, &dst->groups, &src->groups, err);
    if (rc == ORM_OK)
        rc = aux_copy_orders(dst, src, err);
    return rc;
}

int orm_query_copy(orm_query *dst, const orm_query *src, orm_error *err)
{
    int rc = aux_copy_all(dst, src, err);
    if (rc != ORM_OK)
        orm_query_clear(dst);
    return rc;
}

/* {==== write payload ====} */

void orm_query_write_begin(orm_query *q, orm_qwrite_kind kind)
{
    orm_qwrite *w = &q->write;
    w->kind = kind;
    aux_list_init(&w->cols);
    aux_list_init(&w->sets);
    aux_list_init(&w->unique);
    aux_list_init(&w->update);
    w->returning = NULL;
    w->nvals = w->nrows = 0;
    aux_arena_reset(&w->names);
    aux_arena_reset(&w->bytes);
}

void orm_query_write_rows_reset(orm_query *q)
{
    q->write.nvals = q->write.nrows = 0;
    aux_arena_reset(&q->write.bytes);
}

static int aux_write_name(orm_query *q, orm_qlist *l, const char *col,
                          size_t n, orm_error *err)
{
    orm_qname *nm;
    const char *c;
    int rc = qm_ident(&q->write.names, col, n, 0, "column name", &c, err);
    if (rc != ORM_OK)
        return rc;
    if (!(nm = aux_arena_alloc(&q->write.names, sizeof *nm)))
        return aux_nomem(err);
    nm->name = c;
    aux_list_append(l, nm);
    return ORM_OK;
}

int orm_query_write_column(orm_query *q, const char *col, size_t n,
                           orm_error *err)
{
    return aux_write_name(q, &q->write.cols, col, n, err);
}

int orm_query_write_unique(orm_query *q, const char *col, size_t n,
                           orm_error *err)
{
    return aux_write_name(q, &q->write.unique, col, n, err);
}

int orm_query_write_update(orm_query *q, const char *col, size_t n,
                           orm_error *err)
{
    return aux_write_name(q, &q->write.update, col, n, err);
}

int orm_query_write_returning(orm_query *q, const char *col, size_t n,
                              orm_error *err)
{
    return qm_ident(&q->write.names, col, n, 0, "column name",
                     &q->write.returning, err);
}

int orm_query_write_value(orm_query *q, const orm_value *v, orm_error *err)
{
    orm_qwrite *w = &q->write;
    orm_value c = *v;
    if (w->nvals == w->capvals) {
        int cap = w->capvals ? w->capvals * 2 : 16;
        orm_value *p = realloc(w->vals, sizeof *p * (size_t)cap);
        if (!p)
            return aux_nomem(err);
        w->vals = p;
        w->capvals = cap;
    }
    if (c.type == ORM_TEXT || c.type == ORM_BLOB) {
        char *p = aux_arena_str(&w->bytes, c.u.s.p, c.u.s.n);
        if (!p)
            return aux_nomem(err);
        c.u.s.p = p;
    }
    w->vals[w->nvals++] = c;
    return ORM_OK;
}

int orm_query_write_values_ref(orm_query *q, const orm_value *v, int n,
                               orm_error *err)
{
    orm_qwrite *w = &q->write;
    if (n <= 0)
        return ORM_OK; /* a row without columns: nothing to copy */
    if (n > w->capvals - w->nvals) {
        int cap = w->capvals ? w->capvals : 16;
        orm_value *p;
        while (cap - w->nvals < n)
            cap *= 2;
        p = realloc(w->vals, sizeof *p * (size_t)cap);
        if (!p)
            return aux_nomem(err);
        w->vals = p;
        w->capvals = cap;
    }
    memcpy(w->vals + w->nvals, v, sizeof *v * (size_t)n);
    w->nvals += n;
    return ORM_OK;
}

int orm_query_write_end_row(orm_query *q, orm_error *err)
{
    orm_qwrite *w = &q->write;
    if (w->nvals != (w->nrows + 1) * w->cols.n)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "a row must have %d value(s)", w->cols.n);
    w->nrows++;
    return ORM_OK;
}

int orm_query_write_set(orm_query *q, const char *col, size_t n,
                        orm_qset_kind kind, const orm_value *v,
                        orm_error *err)
{
    orm_qset *s;
    const char *c;
    int rc = qm_ident(&q->write.names, col, n, 0, "column name", &c, err);
    if (rc != ORM_OK)
        return rc;
    if (!(s = aux_arena_alloc(&q->write.names, sizeof *s)))
        return aux_nomem(err);
    rc = orm_query_write_value(q, v, err);
    if (rc != ORM_OK)
        return rc;
    s->col = c;
    s->kind = kind;
    aux_list_append(&q->write.sets, s);
    return ORM_OK;
}
