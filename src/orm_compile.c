/*
 * orm_compile.c: compiles an orm_query (orm_query.h) for one orm_dialect
 * into SQL text and a list of bound values. Identifiers are quoted here and
 * nowhere else; every value becomes a placeholder. The output buffers are
 * the caller's and are reused, so a compile allocates nothing once they
 * have grown.
 */
#include <stdio.h>
#include <string.h>

#include "orm_query.h"
#include "orm_sql.h"

/* {==== identifiers ====} */

typedef struct aux_id {
    const char *fn;     /* aggregate name (upper case), or NULL */
    const char *e;      /* expression: dotted name, or the call's argument */
    size_t en;
    const char *alias;  /* alias, or NULL */
    size_t an;
} aux_id;

static int aux_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static void aux_trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Offset of the first " as " (any case) in s, or n when there is none. */
static size_t aux_find_as(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i + 4 <= n; i++)
        if (s[i] == ' ' && aux_lower(s[i + 1]) == 'a' &&
            aux_lower(s[i + 2]) == 's' && s[i + 3] == ' ')
            return i;
    return n;
}

static const char *aux_fn_name(const char *s, size_t n)
{
    static const char *const names[] = {"COUNT", "SUM", "AVG", "MIN", "MAX"};
    size_t i, k;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) != n)
            continue;
        for (k = 0; k < n && aux_lower(s[k]) == aux_lower(names[i][k]); k++)
            ;
        if (k == n)
            return names[i];
    }
    return NULL;
}

/* Recognises "fn(arg)" with fn an aggregate; narrows id->e to arg. */
static void aux_parse_fn(aux_id *id)
{
    const char *open;
    const char *fn;
    if (id->en < 3 || id->e[id->en - 1] != ')')
        return;
    open = memchr(id->e, '(', id->en);
    if (!open || !(fn = aux_fn_name(id->e, (size_t)(open - id->e))))
        return;
    id->fn = fn;
    id->en = (size_t)(id->e + id->en - 1 - (open + 1));
    id->e = open + 1;
    aux_trim(&id->e, &id->en);
}

/* Every dotted part non-empty. */
static int aux_dotted_ok(const char *s, size_t n)
{
    size_t i, part = 0;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] != '.')
            part++;
        else if (part == 0)
            return 0;
        else
            part = 0;
    }
    return part > 0;
}

static int aux_id_parse(const char *s, size_t n, unsigned flags, aux_id *id)
{
    id->fn = id->alias = NULL;
    id->e = s;
    id->en = n;
    id->an = 0;
    if (n == 0 || memchr(s, '\0', n))
        return -1;
    if (flags & ORM_ID_ALIAS) {
        size_t at = aux_find_as(s, n);
        if (at < n) {
            id->alias = s + at + 4;
            id->an = n - at - 4;
            id->en = at;
            aux_trim(&id->e, &id->en);
            aux_trim(&id->alias, &id->an);
            if (id->an == 0)
                return -1;
        }
    }
    if (flags & ORM_ID_FUNC)
        aux_parse_fn(id);
    if (id->fn && id->en == 1 && id->e[0] == '*')
        return 0;
    return aux_dotted_ok(id->e, id->en) ? 0 : -1;
}

/* Writes a dotted name, each part quoted; a last part "*" stays bare when
 * star is set. */
static void aux_dotted(orm_buf *b, const char *s, size_t n, char q, int star)
{
    const char *end = s + n;
    while (s < end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        const char *stop = dot ? dot : end;
        if (star && !dot && stop - s == 1 && *s == '*')
            orm_buf_addc(b, '*');
        else
            orm_buf_add_ident(b, s, (size_t)(stop - s), q);
        if (!dot)
            break;
        orm_buf_addc(b, '.');
        s = dot + 1;
    }
}

/* The bytes of a plain word: letters, digits, _ (a table, not tests:
 * every name of every statement goes through aux_word). */
#define AUX_W6(c) [c] = 1, [c + 1] = 1, [c + 2] = 1, [c + 3] = 1, [c + 4] = 1, \
    [c + 5] = 1
#define AUX_W10(c) AUX_W6(c), [c + 6] = 1, [c + 7] = 1, [c + 8] = 1, [c + 9] = 1
static const unsigned char aux_wordch[256] = {
    AUX_W10('0'), AUX_W10('A'), AUX_W10('K'), AUX_W6('U'), ['_'] = 1,
    AUX_W10('a'), AUX_W10('k'), AUX_W6('u'),
};

/* 1 when s is a plain word (letters, digits, _): quoted as it is, with no
 * dot, alias, call or quote character to look for. */
static int aux_word(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!aux_wordch[(unsigned char)s[i]])
            return 0;
    return n > 0;
}

int orm_compile_ident(orm_buf *b, const char *s, size_t n, char quote,
                      unsigned flags)
{
    aux_id id;
    if (aux_word(s, n)) { /* the usual column or table name */
        if (b)
            orm_buf_add_quoted(b, s, n, quote);
        return 0;
    }
    if (aux_id_parse(s, n, flags, &id) != 0)
        return -1;
    if (!b)
        return 0;
    if (id.fn) {
        orm_buf_adds(b, id.fn);
        orm_buf_addc(b, '(');
    }
    if (id.fn && id.en == 1 && id.e[0] == '*')
        orm_buf_addc(b, '*');
    else
        aux_dotted(b, id.e, id.en, quote, (flags & ORM_ID_STAR) && !id.fn);
    if (id.fn)
        orm_buf_addc(b, ')');
    if (id.alias && !(flags & ORM_ID_BARE)) {
        orm_buf_adds(b, " AS ");
        orm_buf_add_ident(b, id.alias, id.an, quote);
    }
    return 0;
}

/* Appends the decimal digits of i (>= 0 in practice; negative values are
 * written too) without going through printf. */
static void aux_int(orm_buf *b, int64_t i)
{
    char tmp[24];
    size_t k = sizeof tmp;
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (i < 0)
        tmp[--k] = '-';
    orm_buf_add(b, tmp + k, sizeof tmp - k);
}

/* {==== compile state ====} */

typedef struct aux_c {
    const orm_dialect *d;
    orm_buf *b;
    orm_vlist *binds;
    orm_error *err;
    const orm_query *top;          /* the query compiled (not a sub-query) */
    const orm_compile_opts *o;     /* its options, or NULL */
    int rc;             /* first failure, ORM_OK until then */
} aux_c;

static void aux_fail(aux_c *c, orm_kind k, const char *msg)
{
    if (c->rc == ORM_OK)
        c->rc = orm_error_set(c->err, k, "%s", msg);
}

static void aux_ident(aux_c *c, const char *s, unsigned flags)
{
    if (orm_compile_ident(c->b, s, strlen(s), c->d->quote, flags) != 0)
        aux_fail(c, ORM_E_INVALID_ARGUMENT, "identifier cannot be quoted");
}

/* Appends v to the bindings; 0, or -1 when out of memory. */
static int aux_push(aux_c *c, const orm_value *v)
{
    if (orm_vlist_push_ref(c->binds, v) == 0)
        return 0;
    aux_fail(c, ORM_E_NOMEM, "out of memory compiling a query");
    return -1;
}

/* Writes the placeholder of the last binding. */
static void aux_placeholder(aux_c *c)
{
    if (c->d->placeholder == ORM_PH_DOLLAR) {
        orm_buf_addc(c->b, '$');
        aux_int(c->b, c->binds->n);
    } else {
        orm_buf_addc(c->b, '?');
    }
}

/* Binds v and writes its placeholder. */
static void aux_bind(aux_c *c, const orm_value *v)
{
    if (aux_push(c, v) == 0)
        aux_placeholder(c);
}

/* The text between two operands, with spaces. */
static const char *aux_op_sql(const aux_c *c, orm_qop op)
{
    static const char *const sql[] = {
        " = ", " <> ", " != ", " < ", " <= ", " > ", " >= ", " LIKE ",
        " NOT LIKE ", " LIKE "
    };
    if (op == ORM_OP_ILIKE && c->d->has_ilike)
        return " ILIKE ";
    return sql[op];
}

/* ilike without ILIKE: both operands go through LOWER(). */
static int aux_lowered(const aux_c *c, orm_qop op)
{
    return op == ORM_OP_ILIKE && !c->d->has_ilike;
}

static void aux_operand_open(aux_c *c, orm_qop op)
{
    if (aux_lowered(c, op))
        orm_buf_adds(c->b, "LOWER(");
}

static void aux_operand_close(aux_c *c, orm_qop op)
{
    if (aux_lowered(c, op))
        orm_buf_addc(c->b, ')');
}

/* {==== filters ====} */

static void aux_select(aux_c *c, const orm_query *q,
                       const orm_compile_opts *o);

static int aux_filter_empty(const orm_qfilter *f)
{
    const orm_qfilter *k;
    if (f->kind != ORM_QF_GROUP)
        return 0;
    for (k = f->first; k; k = k->next)
        if (!aux_filter_empty(k))
            return 0;
    return 1;
}

static void aux_group(aux_c *c, const orm_qfilter *g);

static void aux_compare(aux_c *c, const orm_qfilter *f, unsigned flags)
{
    aux_operand_open(c, f->op);
    aux_ident(c, f->col, flags);
    aux_operand_close(c, f->op);
    orm_buf_adds(c->b, aux_op_sql(c, f->op));
    aux_operand_open(c, f->op);
    if (f->kind == ORM_QF_COLUMN)
        aux_ident(c, f->col2, 0);
    else
        aux_bind(c, &f->vals[0]);
    aux_operand_close(c, f->op);
}

/* Appends one element of an array literal ({...} text input). */
static void aux_array_elem(orm_buf *a, const orm_value *v)
{
    static const char hex[] = "0123456789abcdef";
    char num[40];
    size_t i;
    switch (v->type) {
    case ORM_NULL:
        orm_buf_adds(a, "NULL");
        return;
    case ORM_BOOL: /* 1/0: read by integer and boolean elements alike */
        orm_buf_addc(a, v->u.b ? '1' : '0');
        return;
    case ORM_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        orm_buf_adds(a, num);
        return;
    case ORM_DOUBLE:
        snprintf(num, sizeof num, "%.17g", v->u.d);
        orm_buf_adds(a, num);
        return;
    case ORM_TEXT:
        orm_buf_addc(a, '"');
        for (i = 0; i < v->u.s.n; i++) {
            char ch = v->u.s.p[i];
            if (ch == '"' || ch == '\\')
                orm_buf_addc(a, '\\');
            orm_buf_addc(a, ch);
        }
        orm_buf_addc(a, '"');
        return;
    case ORM_BLOB: /* bytea's hex form, its backslash escaped */
        orm_buf_adds(a, "\"\\\\x");
        for (i = 0; i < v->u.s.n; i++) {
            orm_buf_addc(a, hex[(unsigned char)v->u.s.p[i] >> 4]);
            orm_buf_addc(a, hex[(unsigned char)v->u.s.p[i] & 15]);
        }
        orm_buf_addc(a, '"');
        return;
    }
}

/* col = ANY(?) / col <> ALL(?) with the list as one array parameter (its
 * text form, a copy the bindings own). */
static void aux_in_array(aux_c *c, const orm_qfilter *f)
{
    orm_buf a;
    orm_value v;
    int i;
    orm_buf_init(&a);
    orm_buf_addc(&a, '{');
    for (i = 0; i < f->nvals; i++) {
        if (i)
            orm_buf_addc(&a, ',');
        aux_array_elem(&a, &f->vals[i]);
    }
    orm_buf_addc(&a, '}');
    v = orm_value_text(a.p, a.len);
    if (a.oom || orm_vlist_push(c->binds, &v) != 0)
        aux_fail(c, ORM_E_NOMEM, "out of memory compiling a query");
    orm_buf_free(&a);
    if (c->rc != ORM_OK)
        return;
    aux_ident(c, f->col, 0);
    orm_buf_adds(c->b, f->negate ? " <> ALL(" : " = ANY(");
    aux_placeholder(c);
    orm_buf_addc(c->b, ')');
}

static void aux_in(aux_c *c, const orm_qfilter *f)
{
    int i;
    if (f->nvals == 0) {
        orm_buf_adds(c->b, f->negate ? "1 = 1" : "1 = 0");
        return;
    }
    if (c->d->array_in_over > 0 && f->nvals > c->d->array_in_over) {
        aux_in_array(c, f);
        return;
    }
    aux_ident(c, f->col, 0);
    orm_buf_adds(c->b, f->negate ? " NOT IN (" : " IN (");
    for (i = 0; i < f->nvals; i++) {
        if (i)
            orm_buf_adds(c->b, ", ");
        aux_bind(c, &f->vals[i]);
    }
    orm_buf_addc(c->b, ')');
}

static void aux_sub(aux_c *c, const orm_qfilter *f)
{
    if (f->kind == ORM_QF_IN_SUB) {
        aux_ident(c, f->col, 0);
        orm_buf_adds(c->b, f->negate ? " NOT IN (" : " IN (");
    } else {
        orm_buf_adds(c->b, f->negate ? "NOT EXISTS (" : "EXISTS (");
    }
    aux_select(c, f->sub, NULL);
    orm_buf_addc(c->b, ')');
}

static void aux_between(aux_c *c, const orm_qfilter *f)
{
    aux_ident(c, f->col, 0);
    orm_buf_adds(c->b, f->negate ? " NOT BETWEEN " : " BETWEEN ");
    aux_bind(c, &f->vals[0]);
    orm_buf_adds(c->b, " AND ");
    aux_bind(c, &f->vals[1]);
}

/* Copies raw SQL with its `?` written the dialect's way (orm_sql.h) and
 * binds its values. */
static void aux_raw(aux_c *c, const orm_qfilter *f)
{
    int i, n;
    orm_buf_addc(c->b, '(');
    n = orm_sql_placeholders(f->col, strlen(f->col), c->d, c->binds->n + 1,
                             c->b);
    if (n != f->nvals) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT,
                 "raw SQL placeholders do not match its bindings");
        return;
    }
    for (i = 0; i < n; i++)
        aux_push(c, &f->vals[i]);
    orm_buf_addc(c->b, ')');
}

static void aux_filter(aux_c *c, const orm_qfilter *f, unsigned flags)
{
    switch (f->kind) {
    case ORM_QF_GROUP:
        orm_buf_addc(c->b, '(');
        aux_group(c, f);
        orm_buf_addc(c->b, ')');
        break;
    case ORM_QF_COMPARE:
    case ORM_QF_COLUMN:
        aux_compare(c, f, flags);
        break;
    case ORM_QF_IN:
        aux_in(c, f);
        break;
    case ORM_QF_IN_SUB:
    case ORM_QF_EXISTS:
        aux_sub(c, f);
        break;
    case ORM_QF_NULL:
        aux_ident(c, f->col, flags);
        orm_buf_adds(c->b, f->negate ? " IS NOT NULL" : " IS NULL");
        break;
    case ORM_QF_BETWEEN:
        aux_between(c, f);
        break;
    case ORM_QF_RAW:
        aux_raw(c, f);
        break;
    }
}

/* The children of g joined by AND / OR; empty groups are left out. */
static void aux_group_flags(aux_c *c, const orm_qfilter *g, unsigned flags)
{
    const orm_qfilter *f;
    int n = 0;
    for (f = g->first; f; f = f->next) {
        if (aux_filter_empty(f))
            continue;
        if (n++)
            orm_buf_adds(c->b, f->use_or ? " OR " : " AND ");
        aux_filter(c, f, flags);
    }
}

static void aux_group(aux_c *c, const orm_qfilter *g)
{
    aux_group_flags(c, g, 0);
}

/* The key a page by key starts after, for the top query only. */
static const orm_compile_opts *aux_keyed(const aux_c *c, const orm_query *q)
{
    return q == c->top && c->o && c->o->key_col ? c->o : NULL;
}

static void aux_where(aux_c *c, const orm_query *q)
{
    const orm_compile_opts *k = aux_keyed(c, q);
    int empty = aux_filter_empty(&q->where);
    if (k && (k->key_null || k->key_after)) {
        /* (the query's filters) AND key IS NULL / key > ? */
        orm_buf_adds(c->b, empty ? " WHERE " : " WHERE (");
        if (!empty) {
            aux_group(c, &q->where);
            orm_buf_adds(c->b, ") AND ");
        }
        aux_ident(c, k->key_col, 0);
        if (k->key_null) {
            orm_buf_adds(c->b, " IS NULL");
            return;
        }
        orm_buf_adds(c->b, " > ");
        aux_bind(c, k->key_after);
        return;
    }
    if (empty)
        return;
    orm_buf_adds(c->b, " WHERE ");
    aux_group(c, &q->where);
}

/* {==== SELECT ====} */

static void aux_names(aux_c *c, const orm_qlist *l, unsigned flags)
{
    const orm_qname *nm;
    for (nm = l->first; nm; nm = nm->next) {
        if (nm != l->first)
            orm_buf_adds(c->b, ", ");
        aux_ident(c, nm->name, flags);
    }
}

static void aux_columns(aux_c *c, const orm_query *q,
                        const orm_compile_opts *o)
{
    if (q->distinct)
        orm_buf_adds(c->b, "DISTINCT ");
    if (o && o->only_col)
        aux_ident(c, o->only_col, ORM_ID_ALIAS | ORM_ID_FUNC);
    else if (q->select.n == 0)
        orm_buf_addc(c->b, '*');
    else
        aux_names(c, &q->select, ORM_ID_ALIAS | ORM_ID_FUNC | ORM_ID_STAR);
}

static void aux_joins(aux_c *c, const orm_query *q)
{
    const orm_qjoin *j;
    for (j = q->joins.first; j; j = j->next) {
        orm_buf_adds(c->b, j->left ? " LEFT JOIN " : " INNER JOIN ");
        aux_ident(c, j->table, ORM_ID_ALIAS);
        orm_buf_adds(c->b, " ON ");
        aux_operand_open(c, j->op);
        aux_ident(c, j->a, 0);
        aux_operand_close(c, j->op);
        orm_buf_adds(c->b, aux_op_sql(c, j->op));
        aux_operand_open(c, j->op);
        aux_ident(c, j->b, 0);
        aux_operand_close(c, j->op);
    }
}

/* FROM, joins, WHERE, GROUP BY, HAVING. */
static void aux_body(aux_c *c, const orm_query *q)
{
    orm_buf_adds(c->b, " FROM ");
    aux_ident(c, q->table, ORM_ID_ALIAS);
    aux_joins(c, q);
    aux_where(c, q);
    if (q->groups.n) {
        orm_buf_adds(c->b, " GROUP BY ");
        aux_names(c, &q->groups, 0);
    }
    if (!aux_filter_empty(&q->having)) {
        orm_buf_adds(c->b, " HAVING ");
        aux_group_flags(c, &q->having, ORM_ID_FUNC);
    }
}

static void aux_order(aux_c *c, const orm_query *q, const orm_compile_opts *o)
{
    const orm_qorder *ord;
    const orm_compile_opts *k = aux_keyed(c, q);
    if (k) {
        orm_buf_adds(c->b, " ORDER BY ");
        aux_ident(c, k->key_col, 0);
        orm_buf_adds(c->b, " ASC");
        return;
    }
    if (q->orders.n == 0) {
        if (o && o->default_order)
            orm_buf_adds(c->b, " ORDER BY 1");
        return;
    }
    orm_buf_adds(c->b, " ORDER BY ");
    for (ord = q->orders.first; ord; ord = ord->next) {
        if (ord != q->orders.first)
            orm_buf_adds(c->b, ", ");
        if (ord->col)
            aux_ident(c, ord->col, ORM_ID_FUNC);
        else
            orm_buf_addc(c->b, '1');
        orm_buf_adds(c->b, ord->desc ? " DESC" : " ASC");
    }
}

typedef struct aux_window {
    int64_t limit;      /* -1 = none */
    int64_t offset;     /* <= 0 = none */
} aux_window;

static aux_window aux_window_of(const orm_query *q, const orm_compile_opts *o)
{
    aux_window w;
    w.limit = (o && o->set_window) ? o->limit : q->limit;
    w.offset = (o && o->set_window) ? o->offset : q->offset;
    return w;
}

static int aux_has_window(aux_window w)
{
    return w.limit >= 0 || w.offset > 0;
}

static void aux_limit(aux_c *c, aux_window w)
{
    if (w.limit >= 0) {
        orm_buf_adds(c->b, " LIMIT ");
        aux_int(c->b, w.limit);
    }
    if (w.offset > 0) {
        if (w.limit < 0 && c->d->limit_all) {
            orm_buf_adds(c->b, " LIMIT ");
            orm_buf_adds(c->b, c->d->limit_all);
        }
        orm_buf_adds(c->b, " OFFSET ");
        aux_int(c->b, w.offset);
    }
}

/* SELECT cols body [order] [window]. */
static void aux_plain(aux_c *c, const orm_query *q, const orm_compile_opts *o,
                      int with_order)
{
    aux_window w = aux_window_of(q, o);
    orm_buf_adds(c->b, "SELECT ");
    aux_columns(c, q, o);
    aux_body(c, q);
    if (with_order)
        aux_order(c, q, o);
    aux_limit(c, w);
}

static void aux_quoted(aux_c *c, const char *s)
{
    orm_buf_add_ident(c->b, s, strlen(s), c->d->quote);
}

/* AGG(col) AS "aggregate"; bare: only the column's last dotted part. */
static void aux_agg_call(aux_c *c, const orm_compile_opts *o, int bare)
{
    static const char *const fn[] = {"", "COUNT(", "SUM(", "AVG(", "MIN(",
                                     "MAX("};
    orm_buf_adds(c->b, fn[o->agg]);
    if (!o->agg_col) {
        orm_buf_addc(c->b, '*');
    } else if (bare) {
        const char *dot = strrchr(o->agg_col, '.');
        aux_quoted(c, dot ? dot + 1 : o->agg_col);
    } else {
        aux_ident(c, o->agg_col, 0);
    }
    orm_buf_adds(c->b, ") AS ");
    aux_quoted(c, "aggregate");
}

static void aux_aggregate(aux_c *c, const orm_query *q,
                          const orm_compile_opts *o)
{
    orm_compile_opts inner = *o;
    inner.agg = ORM_AGG_NONE;
    if (o->agg == ORM_AGG_EXISTS) {
        orm_buf_adds(c->b, "SELECT EXISTS(");
        aux_plain(c, q, &inner, 0);
        orm_buf_adds(c->b, ") AS ");
        aux_quoted(c, "exists");
    } else if (q->distinct || q->groups.n || aux_has_window(aux_window_of(q, o))) {
        orm_buf_adds(c->b, "SELECT ");
        aux_agg_call(c, o, 1);
        orm_buf_adds(c->b, " FROM (");
        aux_plain(c, q, &inner, 1);
        orm_buf_adds(c->b, ") AS ");
        aux_quoted(c, "aggregate_table");
    } else {
        orm_buf_adds(c->b, "SELECT ");
        aux_agg_call(c, o, 0);
        aux_body(c, q);
    }
}

static void aux_select(aux_c *c, const orm_query *q,
                       const orm_compile_opts *o)
{
    if (!q->table) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT, "query has no table");
        return;
    }
    if (o && o->agg != ORM_AGG_NONE) {
        if (o->agg != ORM_AGG_COUNT && o->agg != ORM_AGG_EXISTS && !o->agg_col)
            aux_fail(c, ORM_E_INVALID_ARGUMENT, "aggregate needs a column");
        else
            aux_aggregate(c, q, o);
        return;
    }
    aux_plain(c, q, o, 1);
}

static void aux_start(aux_c *c, const orm_dialect *d, orm_buf *sql,
                      orm_vlist *binds, orm_error *err)
{
    c->d = d;
    c->b = sql;
    c->binds = binds;
    c->err = err;
    c->top = NULL;
    c->o = NULL;
    c->rc = ORM_OK;
    orm_buf_reset(sql);
    orm_vlist_clear(binds);
}

static int aux_finish(aux_c *c)
{
    if (c->rc == ORM_OK && c->b->oom)
        aux_fail(c, ORM_E_NOMEM, "out of memory compiling a query");
    if (c->rc == ORM_OK && c->binds->n > c->d->max_params)
        c->rc = orm_error_set(c->err, ORM_E_INVALID_ARGUMENT,
                              "the statement has %d bound values; %s takes "
                              "at most %d in one statement",
                              c->binds->n, c->d->name, c->d->max_params);
    return c->rc;
}

int orm_compile_select(const orm_query *q, const orm_dialect *d,
                       const orm_compile_opts *opts, orm_buf *sql,
                       orm_vlist *binds, orm_error *err)
{
    aux_c c;
    aux_start(&c, d, sql, binds, err);
    c.top = q;
    c.o = opts;
    aux_select(&c, q, opts);
    return aux_finish(&c);
}

/* {==== writes ====} */

/* The VALUES of a `?` dialect: every row reads "(?, ?, ...)", so the text
 * of one row is written once and repeated, and the bindings are the row
 * values in order. 0, or -1 when the row text is too long for that (the
 * caller writes the rows one by one). */
static int aux_values_qmark(aux_c *c, const orm_qwrite *w)
{
    char row[256];
    size_t len = 0;
    int k, r;
    if (c->d->placeholder != ORM_PH_QMARK || 3 * (size_t)w->cols.n + 2 > sizeof row)
        return -1;
    if (orm_vlist_push_refs(c->binds, w->vals, w->nrows * w->cols.n) != 0) {
        aux_fail(c, ORM_E_NOMEM, "out of memory compiling a query");
        return 0;
    }
    row[len++] = '(';
    for (k = 0; k < w->cols.n; k++) {
        if (k) {
            row[len++] = ',';
            row[len++] = ' ';
        }
        row[len++] = '?';
    }
    row[len++] = ')';
    orm_buf_add(c->b, row, len);
    for (r = 1; r < w->nrows; r++) {
        orm_buf_add(c->b, ", ", 2);
        orm_buf_add(c->b, row, len);
    }
    return 0;
}

static void aux_values(aux_c *c, const orm_qwrite *w)
{
    int r, k, i = 0;
    orm_buf_adds(c->b, " VALUES ");
    if (aux_values_qmark(c, w) == 0)
        return;
    for (r = 0; r < w->nrows; r++) {
        orm_buf_adds(c->b, r ? ", (" : "(");
        for (k = 0; k < w->cols.n; k++) {
            if (k)
                orm_buf_adds(c->b, ", ");
            aux_bind(c, &w->vals[i++]);
        }
        orm_buf_addc(c->b, ')');
    }
}

static void aux_on_conflict(aux_c *c, const orm_qwrite *w)
{
    const orm_qname *nm;
    if (w->unique.n == 0) {
        if (w->update.n)
            aux_fail(c, ORM_E_INVALID_ARGUMENT,
                     "upsert needs the columns of a unique key");
        orm_buf_adds(c->b, " ON CONFLICT DO NOTHING");
        return;
    }
    orm_buf_adds(c->b, " ON CONFLICT (");
    aux_names(c, &w->unique, 0);
    if (w->update.n == 0) {
        orm_buf_adds(c->b, ") DO NOTHING");
        return;
    }
    orm_buf_adds(c->b, ") DO UPDATE SET ");
    for (nm = w->update.first; nm; nm = nm->next) {
        if (nm != w->update.first)
            orm_buf_adds(c->b, ", ");
        aux_ident(c, nm->name, 0);
        orm_buf_adds(c->b, " = excluded.");
        aux_ident(c, nm->name, 0);
    }
}

static void aux_on_duplicate(aux_c *c, const orm_qwrite *w)
{
    const orm_qname *nm = w->update.first;
    orm_buf_adds(c->b, " ON DUPLICATE KEY UPDATE ");
    if (!nm) {
        const orm_qname *keep = w->unique.first ? w->unique.first
                                                : w->cols.first;
        aux_ident(c, keep->name, 0);
        orm_buf_adds(c->b, " = ");
        aux_ident(c, keep->name, 0);
        return;
    }
    for (; nm; nm = nm->next) {
        if (nm != w->update.first)
            orm_buf_adds(c->b, ", ");
        aux_ident(c, nm->name, 0);
        orm_buf_adds(c->b, " = VALUES(");
        aux_ident(c, nm->name, 0);
        orm_buf_addc(c->b, ')');
    }
}

static void aux_insert(aux_c *c, const orm_query *q)
{
    const orm_qwrite *w = &q->write;
    if (w->nrows == 0 || (w->cols.n == 0 && w->nrows != 1)) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT,
                 w->nrows ? "an insert without columns takes one row"
                          : "insert needs at least one row");
        return;
    }
    orm_buf_adds(c->b, "INSERT INTO ");
    aux_ident(c, q->table, ORM_ID_ALIAS | ORM_ID_BARE);
    if (w->cols.n == 0) {
        orm_buf_adds(c->b, c->d->empty_insert);
    } else {
        orm_buf_adds(c->b, " (");
        aux_names(c, &w->cols, 0);
        orm_buf_addc(c->b, ')');
        aux_values(c, w);
    }
    if (w->kind == ORM_QW_UPSERT && c->d->upsert == ORM_UPSERT_ON_CONFLICT)
        aux_on_conflict(c, w);
    else if (w->kind == ORM_QW_UPSERT && w->cols.n)
        aux_on_duplicate(c, w);
    if (w->kind == ORM_QW_INSERT && w->returning && c->d->has_returning) {
        orm_buf_adds(c->b, " RETURNING ");
        aux_ident(c, w->returning, 0);
    }
}

static void aux_update(aux_c *c, const orm_query *q)
{
    const orm_qwrite *w = &q->write;
    const orm_qset *s;
    int i = 0;
    if (w->sets.n == 0) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT, "update needs at least one column");
        return;
    }
    orm_buf_adds(c->b, "UPDATE ");
    aux_ident(c, q->table, ORM_ID_ALIAS | ORM_ID_BARE);
    orm_buf_adds(c->b, " SET ");
    for (s = w->sets.first; s; s = s->next) {
        if (s != w->sets.first)
            orm_buf_adds(c->b, ", ");
        aux_ident(c, s->col, 0);
        orm_buf_adds(c->b, " = ");
        if (s->kind != ORM_QS_VALUE) {
            aux_ident(c, s->col, 0);
            orm_buf_adds(c->b, s->kind == ORM_QS_ADD ? " + " : " - ");
        }
        aux_bind(c, &w->vals[i++]);
    }
    aux_where(c, q);
}

/* UPDATE and DELETE take the table and WHERE only. */
static int aux_plain_target(const orm_query *q)
{
    return q->joins.n == 0 && q->groups.n == 0 &&
           aux_filter_empty(&q->having) && q->limit < 0 && q->offset < 0;
}

static void aux_write(aux_c *c, const orm_query *q)
{
    orm_qwrite_kind k = q->write.kind;
    if (!q->table) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT, "query has no table");
    } else if (k == ORM_QW_INSERT || k == ORM_QW_UPSERT) {
        aux_insert(c, q);
    } else if (k != ORM_QW_UPDATE && k != ORM_QW_DELETE) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT, "query has no write to compile");
    } else if (!aux_plain_target(q)) {
        aux_fail(c, ORM_E_INVALID_ARGUMENT,
                 "update and delete cannot use join, group_by, having, "
                 "limit or offset");
    } else if (k == ORM_QW_UPDATE) {
        aux_update(c, q);
    } else {
        orm_buf_adds(c->b, "DELETE FROM ");
        aux_ident(c, q->table, ORM_ID_ALIAS | ORM_ID_BARE);
        aux_where(c, q);
    }
}

int orm_compile_write(const orm_query *q, const orm_dialect *d,
                      orm_buf *sql, orm_vlist *binds, orm_error *err)
{
    aux_c c;
    aux_start(&c, d, sql, binds, err);
    aux_write(&c, q);
    return aux_finish(&c);
}

int orm_compile_copy(const orm_query *q, const orm_dialect *d, orm_buf *copy,
                     orm_buf *probe, orm_error *err)
{
    aux_c c;
    orm_vlist none;
    orm_vlist_init(&none);
    aux_start(&c, d, probe, &none, err);
    if (!d->copy_from_stdin || !q->table || q->write.kind != ORM_QW_INSERT ||
        q->write.cols.n == 0) {
        aux_fail(&c, ORM_E_INVALID_ARGUMENT,
                 "COPY needs an insert with columns on a dialect that has it");
        return aux_finish(&c);
    }
    orm_buf_adds(probe, "SELECT ");
    aux_names(&c, &q->write.cols, 0);
    orm_buf_adds(probe, " FROM ");
    aux_ident(&c, q->table, ORM_ID_ALIAS | ORM_ID_BARE);
    orm_buf_adds(probe, " WHERE 1 = 0");
    c.b = copy;
    orm_buf_reset(copy);
    orm_buf_adds(copy, "COPY ");
    aux_ident(&c, q->table, ORM_ID_ALIAS | ORM_ID_BARE);
    orm_buf_adds(copy, " (");
    aux_names(&c, &q->write.cols, 0);
    orm_buf_adds(copy, ") FROM STDIN");
    if (c.rc == ORM_OK && probe->oom)
        aux_fail(&c, ORM_E_NOMEM, "out of memory compiling a query");
    return aux_finish(&c);
}
