/*
 * orm_schema.c: table blueprints and their compiler to DDL for SQLite,
 * PostgreSQL and MySQL / MariaDB, the other DDL statements (drop, rename,
 * drop all), the catalog queries and the migrations ledger statements.
 * See orm_schema.h for the contracts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orm_schema.h"

/* {==== statement lists ====} */

void orm_sqls_init(orm_sqls *l)
{
    memset(l, 0, sizeof *l);
}

void orm_sqls_free(orm_sqls *l)
{
    int i;
    if (l == NULL)
        return;
    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->len);
    orm_sqls_init(l);
}

/* Makes room for `more` statements. 0 or -1 (list unchanged). */
static int sqls_reserve(orm_sqls *l, int more)
{
    int cap = l->cap ? l->cap : 4;
    char **v;
    size_t *len;
    if (l->n + more <= l->cap)
        return 0;
    while (cap < l->n + more)
        cap *= 2;
    v = realloc(l->v, (size_t)cap * sizeof *v);
    if (v == NULL)
        return -1;
    l->v = v;
    len = realloc(l->len, (size_t)cap * sizeof *len);
    if (len == NULL)
        return -1;
    l->len = len;
    l->cap = cap;
    return 0;
}

/* Appends a copy of the n bytes at p. 0 or -1 (list unchanged). */
static int sqls_push(orm_sqls *l, const char *p, size_t n)
{
    char *s;
    if (sqls_reserve(l, 1) != 0 || (s = malloc(n + 1)) == NULL)
        return -1;
    memcpy(s, p, n);
    s[n] = '\0';
    l->v[l->n] = s;
    l->len[l->n++] = n;
    return 0;
}

/* Moves every statement of `from` to the end of `to`; `from` ends empty.
 * 0, or -1 with both lists unchanged. */
static int sqls_move(orm_sqls *to, orm_sqls *from)
{
    int i;
    if (sqls_reserve(to, from->n) != 0)
        return -1;
    for (i = 0; i < from->n; i++) {
        to->v[to->n] = from->v[i];
        to->len[to->n++] = from->len[i];
    }
    from->n = 0;
    orm_sqls_free(from);
    return 0;
}

/* {==== blueprint storage ====} */

typedef enum sc_action {
    SC_ACT_NONE = 0,
    SC_ACT_CASCADE,
    SC_ACT_RESTRICT,
    SC_ACT_SET_NULL,
    SC_ACT_SET_DEFAULT,
    SC_ACT_NO_ACTION
} sc_action;

static const char *const sc_action_sql[] = {
    NULL, "CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION",
};

typedef struct sc_names {
    char **v; /* NUL-terminated copies */
    int n;
} sc_names;

typedef struct sc_fk {
    char *table;    /* referenced table; NULL = no foreign key */
    sc_names cols;  /* referenced columns; none = "id" */
    sc_action on_delete;
    sc_action on_update;
} sc_fk;

typedef struct sc_op {
    orm_sop_kind kind;
    char *name;      /* column; key or index name; dropped or renamed name */
    char *to;        /* RENAME_COLUMN: the new name */
    sc_names cols;   /* key columns */
    orm_coltype type;/* COLUMN: its type */
    int a, b;        /* COLUMN: length or precision, scale */
    int flags;       /* COLUMN: ORM_SF_* */
    int has_default; /* COLUMN: def is set */
    orm_value def;   /* COLUMN: the default; text/blob bytes owned */
    sc_fk fk;        /* COLUMN reference or FOREIGN key */
} sc_op;

struct orm_schema {
    char *table;          /* the table's name */
    orm_schema_mode mode;
    sc_op *ops;           /* operations in the order they were added */
    int n;                /* operations in use */
    int cap;              /* allocated slots */
};

/* Copies a name after checking it; ORM_OK or an error kind. */
static int sc_dupname(const char *p, size_t n, const char *what, char **out,
                      orm_error *err)
{
    char *s;
    if (p == NULL || n == 0)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "%s must be a non-empty name", what);
    if (memchr(p, '\0', n) != NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "%s contains a NUL byte", what);
    if ((s = malloc(n + 1)) == NULL)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return ORM_OK;
}

static void sc_names_free(sc_names *l)
{
    int i;
    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Copies n names into *l (empty before). ORM_OK or an error kind with *l
 * left empty. */
static int sc_names_set(sc_names *l, const char *const *v, const size_t *lens,
                        int n, const char *what, orm_error *err)
{
    int i, rc;
    if (n <= 0)
        return ORM_OK;
    if ((l->v = calloc((size_t)n, sizeof *l->v)) == NULL)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        if ((rc = sc_dupname(v[i], lens[i], what, &l->v[i], err)) != ORM_OK) {
            l->n = i;
            sc_names_free(l);
            return rc;
        }
    }
    l->n = n;
    return ORM_OK;
}

static void sc_default_clear(sc_op *op)
{
    if (op->has_default &&
        (op->def.type == ORM_TEXT || op->def.type == ORM_BLOB))
        free((void *)op->def.u.s.p);
    op->has_default = 0;
    op->def = orm_value_null();
}

static void sc_op_free(sc_op *op)
{
    free(op->name);
    free(op->to);
    sc_names_free(&op->cols);
    sc_default_clear(op);
    free(op->fk.table);
    sc_names_free(&op->fk.cols);
}

/* Appends *op (taking its allocations). ORM_OK or ORM_E_NOMEM, in which
 * case op still owns them. */
static int sc_push(orm_schema *s, const sc_op *op, int *idx, orm_error *err)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        sc_op *v = realloc(s->ops, (size_t)cap * sizeof *v);
        if (v == NULL)
            return orm_error_set(err, ORM_E_NOMEM, "out of memory");
        s->ops = v;
        s->cap = cap;
    }
    s->ops[s->n] = *op;
    if (idx)
        *idx = s->n;
    s->n++;
    return ORM_OK;
}

/* The name <table>_<col>[_<col>...]_<suffix>, malloc'd. ORM_OK or
 * ORM_E_NOMEM. */
static int sc_derive(const char *table, const sc_names *cols,
                     const char *suffix, char **out, orm_error *err)
{
    orm_buf b;
    int i;
    orm_buf_init(&b);
    orm_buf_adds(&b, table);
    for (i = 0; i < cols->n; i++) {
        orm_buf_addc(&b, '_');
        orm_buf_adds(&b, cols->v[i]);
    }
    orm_buf_addc(&b, '_');
    orm_buf_adds(&b, suffix);
    if (b.oom) {
        orm_buf_free(&b);
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    *out = b.p;
    return ORM_OK;
}

/* The name suffix of the keys of kind k. */
static const char *sc_suffix(orm_sop_kind k)
{
    switch (k) {
    case ORM_SOP_UNIQUE:
    case ORM_SOP_DROP_UNIQUE:
        return "unique";
    case ORM_SOP_PRIMARY:
        return "primary";
    case ORM_SOP_FOREIGN:
    case ORM_SOP_DROP_FOREIGN:
        return "foreign";
    default:
        return "index";
    }
}

orm_schema *orm_schema_new(const char *table, size_t n, orm_schema_mode mode,
                           orm_error *err)
{
    orm_schema *s = calloc(1, sizeof *s);
    if (s == NULL) {
        orm_error_set(err, ORM_E_NOMEM, "out of memory");
        return NULL;
    }
    if (sc_dupname(table, n, "the table name", &s->table, err) != ORM_OK) {
        free(s);
        return NULL;
    }
    s->mode = mode;
    return s;
}

void orm_schema_free(orm_schema *s)
{
    int i;
    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++)
        sc_op_free(&s->ops[i]);
    free(s->ops);
    free(s->table);
    free(s);
}

const char *orm_schema_table(const orm_schema *s)
{
    return s->table;
}

orm_schema_mode orm_schema_get_mode(const orm_schema *s)
{
    return s->mode;
}

int orm_schema_op_kind(const orm_schema *s, int op)
{
    return op >= 0 && op < s->n ? (int)s->ops[op].kind : -1;
}

const char *orm_schema_op_name(const orm_schema *s, int op)
{
    return op >= 0 && op < s->n ? s->ops[op].name : NULL;
}

/* {==== building ====} */

static int sc_bad_op(orm_error *err, const char *what)
{
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT, "%s", what);
}

/* The column operation op, or NULL with err filled. */
static sc_op *sc_column_op(orm_schema *s, int op, orm_error *err)
{
    if (orm_schema_op_kind(s, op) != ORM_SOP_COLUMN) {
        sc_bad_op(err, "column modifier used on something that is not a column");
        return NULL;
    }
    return &s->ops[op];
}

int orm_schema_column(orm_schema *s, const char *name, size_t n,
                      orm_coltype t, int a, int b, int *op, orm_error *err)
{
    sc_op o;
    int rc;
    memset(&o, 0, sizeof o);
    o.kind = ORM_SOP_COLUMN;
    o.type = t;
    if (t == ORM_COL_STRING) {
        if (a < 0 || a > 65535)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "string length must be 1..65535, got %d", a);
        o.a = a ? a : 255;
    } else if (t == ORM_COL_DECIMAL) {
        o.a = a ? a : 8;
        o.b = a ? b : 2;
        if (o.a < 1 || o.a > 65 || o.b < 0 || o.b > o.a)
            return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                                 "decimal precision must be 1..65 and scale "
                                 "0..precision, got (%d, %d)", o.a, o.b);
    }
    if ((rc = sc_dupname(name, n, "a column name", &o.name, err)) != ORM_OK)
        return rc;
    if ((rc = sc_push(s, &o, op, err)) != ORM_OK)
        sc_op_free(&o);
    return rc;
}

int orm_schema_flag(orm_schema *s, int op, int flag, int on, orm_error *err)
{
    sc_op *o = sc_column_op(s, op, err);
    if (o == NULL)
        return err->kind;
    if (on)
        o->flags |= flag;
    else
        o->flags &= ~flag;
    return ORM_OK;
}

/* Checks that v can be written as a literal. ORM_OK or invalid_argument. */
static int sc_check_literal(const orm_value *v, orm_error *err)
{
    if (v->type == ORM_DOUBLE && !isfinite(v->u.d))
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "a default cannot be NaN or infinite");
    if (v->type == ORM_TEXT && memchr(v->u.s.p, '\0', v->u.s.n) != NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "a default text cannot contain a NUL byte");
    return ORM_OK;
}

int orm_schema_default(orm_schema *s, int op, const orm_value *v,
                       orm_error *err)
{
    sc_op *o = sc_column_op(s, op, err);
    orm_value nv = *v;
    int rc;
    if (o == NULL)
        return err->kind;
    if ((rc = sc_check_literal(v, err)) != ORM_OK)
        return rc;
    if (v->type == ORM_TEXT || v->type == ORM_BLOB) {
        char *p = malloc(v->u.s.n + 1);
        if (p == NULL)
            return orm_error_set(err, ORM_E_NOMEM, "out of memory");
        if (v->u.s.n)
            memcpy(p, v->u.s.p, v->u.s.n);
        p[v->u.s.n] = '\0';
        nv.u.s.p = p;
    }
    sc_default_clear(o);
    o->def = nv;
    o->has_default = 1;
    return ORM_OK;
}

/* The foreign key of op (a column or a FOREIGN key), or NULL. */
static sc_fk *sc_fk_of(orm_schema *s, int op, orm_error *err)
{
    int k = orm_schema_op_kind(s, op);
    if (k != ORM_SOP_COLUMN && k != ORM_SOP_FOREIGN) {
        sc_bad_op(err, "references() and on_delete() apply to a column or a "
                       "foreign key");
        return NULL;
    }
    return &s->ops[op].fk;
}

int orm_schema_references(orm_schema *s, int op, const char *table,
                          size_t tn, const char *const *cols,
                          const size_t *lens, int ncols, orm_error *err)
{
    sc_fk *fk = sc_fk_of(s, op, err);
    sc_names names = {NULL, 0};
    char *t;
    int rc;
    if (fk == NULL)
        return err->kind;
    if ((rc = sc_dupname(table, tn, "the referenced table", &t, err)) != ORM_OK)
        return rc;
    rc = sc_names_set(&names, cols, lens, ncols, "a referenced column", err);
    if (rc != ORM_OK) {
        free(t);
        return rc;
    }
    free(fk->table);
    sc_names_free(&fk->cols);
    fk->table = t;
    fk->cols = names;
    return ORM_OK;
}

int orm_schema_fk_action(orm_schema *s, int op, int on_update,
                         const char *action, size_t n, orm_error *err)
{
    static const char *const names[] = {
        NULL, "cascade", "restrict", "set null", "set default", "no action",
    };
    sc_fk *fk = sc_fk_of(s, op, err);
    char tmp[16];
    size_t i;
    int a;
    if (fk == NULL)
        return err->kind;
    for (i = 0; i < n && i < sizeof tmp - 1; i++)
        tmp[i] = action[i] == '_' ? ' ' : action[i];
    tmp[i] = '\0';
    for (a = 1; a <= SC_ACT_NO_ACTION; a++) {
        if (n == strlen(names[a]) && strcasecmp(tmp, names[a]) == 0) {
            if (on_update)
                fk->on_update = (sc_action)a;
            else
                fk->on_delete = (sc_action)a;
            return ORM_OK;
        }
    }
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "unknown foreign key action '%.*s' (use cascade, "
                         "restrict, set null, set default or no action)",
                         (int)(n > 40 ? 40 : n), action);
}

/* Fills o->name: a copy of name, or the default name of o's columns. */
static int sc_key_name(const orm_schema *s, sc_op *o, const char *name,
                       size_t nn, orm_error *err)
{
    if (name != NULL)
        return sc_dupname(name, nn, "an index name", &o->name, err);
    return sc_derive(s->table, &o->cols, sc_suffix(o->kind), &o->name, err);
}

int orm_schema_key(orm_schema *s, orm_sop_kind kind, const char *const *cols,
                   const size_t *lens, int ncols, const char *name, size_t nn,
                   int *op, orm_error *err)
{
    sc_op o;
    int rc;
    if (kind != ORM_SOP_INDEX && kind != ORM_SOP_UNIQUE &&
        kind != ORM_SOP_PRIMARY && kind != ORM_SOP_FOREIGN)
        return sc_bad_op(err, "not a kind of key");
    if (ncols <= 0)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "a %s needs at least one column",
                             kind == ORM_SOP_FOREIGN ? "foreign key"
                                                     : "key or index");
    memset(&o, 0, sizeof o);
    o.kind = kind;
    rc = sc_names_set(&o.cols, cols, lens, ncols, "a column name", err);
    if (rc == ORM_OK)
        rc = sc_key_name(s, &o, name, nn, err);
    if (rc == ORM_OK)
        rc = sc_push(s, &o, op, err);
    if (rc != ORM_OK)
        sc_op_free(&o);
    return rc;
}

static int sc_alter_only(const orm_schema *s, const char *what,
                         orm_error *err)
{
    if (s->mode == ORM_SCHEMA_ALTER)
        return ORM_OK;
    return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                         "%s is only possible in alter_table", what);
}

int orm_schema_rename_column(orm_schema *s, const char *from, size_t fn,
                             const char *to, size_t tn, orm_error *err)
{
    sc_op o;
    int rc;
    if ((rc = sc_alter_only(s, "rename_column", err)) != ORM_OK)
        return rc;
    memset(&o, 0, sizeof o);
    o.kind = ORM_SOP_RENAME_COLUMN;
    rc = sc_dupname(from, fn, "a column name", &o.name, err);
    if (rc == ORM_OK)
        rc = sc_dupname(to, tn, "a column name", &o.to, err);
    if (rc == ORM_OK)
        rc = sc_push(s, &o, NULL, err);
    if (rc != ORM_OK)
        sc_op_free(&o);
    return rc;
}

int orm_schema_drop(orm_schema *s, orm_sop_kind kind, const char *name,
                    size_t nn, const char *const *cols, const size_t *lens,
                    int ncols, orm_error *err)
{
    sc_op o;
    int rc;
    if (kind != ORM_SOP_DROP_COLUMN && kind != ORM_SOP_DROP_INDEX &&
        kind != ORM_SOP_DROP_UNIQUE && kind != ORM_SOP_DROP_FOREIGN)
        return sc_bad_op(err, "not a kind of drop");
    if ((rc = sc_alter_only(s, "dropping", err)) != ORM_OK)
        return rc;
    if (name == NULL && (kind == ORM_SOP_DROP_COLUMN || ncols <= 0))
        return sc_bad_op(err, "a drop needs a name or a list of columns");
    memset(&o, 0, sizeof o);
    o.kind = kind;
    rc = sc_names_set(&o.cols, cols, lens, name ? 0 : ncols, "a column name",
                      err);
    if (rc == ORM_OK)
        rc = sc_key_name(s, &o, name, nn, err);
    if (rc == ORM_OK)
        rc = sc_push(s, &o, NULL, err);
    if (rc != ORM_OK)
        sc_op_free(&o);
    return rc;
}

/* {==== compiling ====} */

typedef enum sc_dialect { SC_SQLITE, SC_POSTGRES, SC_MYSQL } sc_dialect;

typedef struct sc_ctx {
    const orm_schema *s; /* the blueprint (NULL for other DDL) */
    sc_dialect dl;
    char q;              /* identifier quote */
    orm_buf b;           /* the statement being written */
    orm_sqls out;        /* statements written so far */
    orm_error *err;
} sc_ctx;

static int sc_ctx_init(sc_ctx *x, const orm_schema *s, const orm_dialect *d,
                       orm_error *err)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->err = err;
    x->q = d->quote;
    orm_buf_init(&x->b);
    orm_sqls_init(&x->out);
    if (strcmp(d->name, "sqlite") == 0)
        x->dl = SC_SQLITE;
    else if (strcmp(d->name, "postgres") == 0)
        x->dl = SC_POSTGRES;
    else if (strcmp(d->name, "mysql") == 0)
        x->dl = SC_MYSQL;
    else
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "no schema support for dialect '%s'", d->name);
    return ORM_OK;
}

/* Ends a compilation: on success moves the statements to `to`. Returns rc,
 * or ORM_E_NOMEM when memory ran out. */
static int sc_ctx_finish(sc_ctx *x, int rc, orm_sqls *to)
{
    if (rc == ORM_OK && x->b.oom)
        rc = orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    if (rc == ORM_OK && sqls_move(to, &x->out) != 0)
        rc = orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    orm_buf_free(&x->b);
    orm_sqls_free(&x->out);
    return rc;
}

/* Ends the statement in x->b and starts a new one. */
static int sc_emit(sc_ctx *x)
{
    if (x->b.oom || sqls_push(&x->out, x->b.p, x->b.len) != 0)
        return orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    orm_buf_reset(&x->b);
    return ORM_OK;
}

/* Names were checked when they were added, so quoting cannot fail. */
static void sc_ident(sc_ctx *x, const char *name)
{
    orm_buf_add_ident(&x->b, name, strlen(name), x->q);
}

/* "a", "b", "c" */
static void sc_ident_list(sc_ctx *x, const sc_names *l)
{
    int i;
    for (i = 0; i < l->n; i++) {
        if (i)
            orm_buf_adds(&x->b, ", ");
        sc_ident(x, l->v[i]);
    }
}

static void sc_table_ident(sc_ctx *x)
{
    sc_ident(x, x->s->table);
}

/* ALTER TABLE "t" */
static void sc_alter_prefix(sc_ctx *x)
{
    orm_buf_adds(&x->b, "ALTER TABLE ");
    sc_table_ident(x);
}

/* The SQL type of a column. */
static void sc_type(sc_ctx *x, const sc_op *o)
{
    static const char *const names[][3] = {
        /* sqlite, postgres, mysql */
        {"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY",
         "BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY"},
        {"VARCHAR", "VARCHAR", "VARCHAR"},
        {"TEXT", "TEXT", "TEXT"},
        {"INTEGER", "INTEGER", "INT"},
        {"INTEGER", "BIGINT", "BIGINT"},
        {"INTEGER", "BIGINT", "BIGINT UNSIGNED"},
        {"REAL", "DOUBLE PRECISION", "DOUBLE"},
        {"NUMERIC", "NUMERIC", "DECIMAL"},
        {"BOOLEAN", "BOOLEAN", "BOOLEAN"},
        {"TEXT", "JSONB", "JSON"},
        {"DATE", "DATE", "DATE"},
        {"DATETIME", "TIMESTAMP(6)", "DATETIME(6)"},
        {"BLOB", "BYTEA", "LONGBLOB"},
    };
    orm_buf_adds(&x->b, names[o->type][x->dl]);
    if (o->type == ORM_COL_STRING)
        orm_buf_addf(&x->b, "(%d)", o->a);
    else if (o->type == ORM_COL_DECIMAL)
        orm_buf_addf(&x->b, "(%d,%d)", o->a, o->b);
}

/* 'text' with quotes doubled (and backslashes on MySQL; E'' on PG). */
static void sc_text_literal(sc_ctx *x, const char *p, size_t n)
{
    int bs = memchr(p, '\\', n) != NULL;
    size_t i;
    if (bs && x->dl == SC_POSTGRES)
        orm_buf_addc(&x->b, 'E');
    orm_buf_addc(&x->b, '\'');
    for (i = 0; i < n; i++) {
        if (p[i] == '\'' || (p[i] == '\\' && bs && x->dl != SC_SQLITE))
            orm_buf_addc(&x->b, p[i]);
        orm_buf_addc(&x->b, p[i]);
    }
    orm_buf_addc(&x->b, '\'');
}

static void sc_blob_literal(sc_ctx *x, const unsigned char *p, size_t n)
{
    size_t i;
    orm_buf_adds(&x->b, x->dl == SC_POSTGRES ? "decode('" : "X'");
    for (i = 0; i < n; i++)
        orm_buf_addf(&x->b, "%02x", p[i]);
    orm_buf_adds(&x->b, x->dl == SC_POSTGRES ? "', 'hex')" : "'");
}

/* A value as a SQL literal. ORM_OK or invalid_argument. */
static int sc_literal(sc_ctx *x, const orm_value *v)
{
    int rc = sc_check_literal(v, x->err);
    if (rc != ORM_OK)
        return rc;
    switch (v->type) {
    case ORM_NULL:
        orm_buf_adds(&x->b, "NULL");
        break;
    case ORM_BOOL:
        orm_buf_adds(&x->b, v->u.b ? "TRUE" : "FALSE");
        break;
    case ORM_INT:
        orm_buf_addi(&x->b, v->u.i);
        break;
    case ORM_DOUBLE:
        orm_buf_addf(&x->b, "%.17g", v->u.d);
        break;
    case ORM_TEXT:
        sc_text_literal(x, v->u.s.p, v->u.s.n);
        break;
    case ORM_BLOB:
        sc_blob_literal(x, (const unsigned char *)v->u.s.p, v->u.s.n);
        break;
    }
    return ORM_OK;
}

/* REFERENCES "t" ("id") [ON DELETE ..] [ON UPDATE ..] */
static void sc_references(sc_ctx *x, const sc_fk *fk)
{
    orm_buf_adds(&x->b, " REFERENCES ");
    sc_ident(x, fk->table);
    orm_buf_adds(&x->b, " (");
    if (fk->cols.n)
        sc_ident_list(x, &fk->cols);
    else
        sc_ident(x, "id");
    orm_buf_addc(&x->b, ')');
    if (fk->on_delete) {
        orm_buf_adds(&x->b, " ON DELETE ");
        orm_buf_adds(&x->b, sc_action_sql[fk->on_delete]);
    }
    if (fk->on_update) {
        orm_buf_adds(&x->b, " ON UPDATE ");
        orm_buf_adds(&x->b, sc_action_sql[fk->on_update]);
    }
}

/* Checks a foreign key before it is written: it must reference a table. */
static int sc_check_fk(sc_ctx *x, const sc_fk *fk, const char *what)
{
    if (fk->table == NULL && (fk->on_delete || fk->on_update))
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "'%s': on_delete()/on_update() without "
                             "references()", what);
    return ORM_OK;
}

/* The default foreign key name of column o: <table>_<col>_foreign. */
static void sc_column_fk_name(sc_ctx *x, const sc_op *o)
{
    orm_buf tmp;
    orm_buf_init(&tmp);
    orm_buf_adds(&tmp, x->s->table);
    orm_buf_addc(&tmp, '_');
    orm_buf_adds(&tmp, o->name);
    orm_buf_adds(&tmp, "_foreign");
    if (tmp.oom)
        x->b.oom = 1;
    else
        orm_buf_add_ident(&x->b, tmp.p, tmp.len, x->q);
    orm_buf_free(&tmp);
}

/* CONSTRAINT "name" FOREIGN KEY ("c", ..) REFERENCES ... ; the name and
 * columns come from a column (o->name) or a FOREIGN key. */
static void sc_foreign_clause(sc_ctx *x, const sc_op *o)
{
    orm_buf_adds(&x->b, "CONSTRAINT ");
    if (o->kind == ORM_SOP_COLUMN)
        sc_column_fk_name(x, o);
    else
        sc_ident(x, o->name);
    orm_buf_adds(&x->b, " FOREIGN KEY (");
    if (o->kind == ORM_SOP_COLUMN)
        sc_ident(x, o->name);
    else
        sc_ident_list(x, &o->cols);
    orm_buf_addc(&x->b, ')');
    sc_references(x, &o->fk);
}

/* DEFAULT ... of a column, if any. */
static int sc_column_default(sc_ctx *x, const sc_op *o)
{
    if ((o->flags & ORM_SF_USE_CURRENT) && o->has_default)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "column '%s' has both default() and "
                             "use_current()", o->name);
    if (o->flags & ORM_SF_USE_CURRENT) {
        if (o->type != ORM_COL_DATETIME)
            return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                                 "use_current() needs a datetime column, "
                                 "'%s' is not one", o->name);
        orm_buf_adds(&x->b, x->dl == SC_MYSQL
                                ? " DEFAULT CURRENT_TIMESTAMP(6)"
                                : " DEFAULT CURRENT_TIMESTAMP");
        return ORM_OK;
    }
    if (!o->has_default)
        return ORM_OK;
    if (o->type == ORM_COL_ID)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "the id column '%s' cannot have a default",
                             o->name);
    orm_buf_adds(&x->b, " DEFAULT ");
    return sc_literal(x, &o->def);
}

/* "name" TYPE [NOT NULL] [DEFAULT ..] [PRIMARY KEY]; with inline_fk, its
 * foreign key as a column constraint (SQLite's ALTER TABLE ADD COLUMN). */
static int sc_column_def(sc_ctx *x, const sc_op *o, int inline_fk)
{
    int rc;
    if ((rc = sc_check_fk(x, &o->fk, o->name)) != ORM_OK)
        return rc;
    sc_ident(x, o->name);
    orm_buf_addc(&x->b, ' ');
    sc_type(x, o);
    if (o->type != ORM_COL_ID && !(o->flags & ORM_SF_NULLABLE))
        orm_buf_adds(&x->b, " NOT NULL");
    if ((rc = sc_column_default(x, o)) != ORM_OK)
        return rc;
    if ((o->flags & ORM_SF_PRIMARY) && o->type != ORM_COL_ID)
        orm_buf_adds(&x->b, " PRIMARY KEY");
    if (inline_fk && o->fk.table) {
        orm_buf_adds(&x->b, " CONSTRAINT ");
        sc_column_fk_name(x, o);
        sc_references(x, &o->fk);
    }
    return ORM_OK;
}

/* CREATE [UNIQUE] INDEX "name" ON "t" (cols) */
static int sc_create_index(sc_ctx *x, int unique, const char *name,
                           const sc_names *cols)
{
    orm_buf_adds(&x->b, unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
    sc_ident(x, name);
    orm_buf_adds(&x->b, " ON ");
    sc_table_ident(x);
    orm_buf_adds(&x->b, " (");
    sc_ident_list(x, cols);
    orm_buf_addc(&x->b, ')');
    return sc_emit(x);
}

/* The index statements a column's unique() / index() ask for. */
static int sc_column_indexes(sc_ctx *x, const sc_op *o)
{
    static const int flags[2] = {ORM_SF_UNIQUE, ORM_SF_INDEX};
    char *one[1];
    sc_names cols;
    int i, rc = ORM_OK;
    one[0] = o->name;
    cols.v = one;
    cols.n = 1;
    for (i = 0; i < 2 && rc == ORM_OK; i++) {
        char *name;
        if (!(o->flags & flags[i]))
            continue;
        rc = sc_derive(x->s->table, &cols, i == 0 ? "unique" : "index",
                       &name, x->err);
        if (rc != ORM_OK)
            break;
        rc = sc_create_index(x, i == 0, name, &cols);
        free(name);
    }
    return rc;
}

/* The indexes of op (a column's flags, INDEX or UNIQUE); others: none. */
static int sc_op_indexes(sc_ctx *x, const sc_op *o)
{
    if (o->kind == ORM_SOP_COLUMN)
        return sc_column_indexes(x, o);
    if (o->kind == ORM_SOP_INDEX || o->kind == ORM_SOP_UNIQUE)
        return sc_create_index(x, o->kind == ORM_SOP_UNIQUE, o->name,
                               &o->cols);
    return ORM_OK;
}

/* The table constraint of op in CREATE TABLE (a primary key, a column's
 * or a FOREIGN key), after ", ". Returns ORM_OK or an error kind. */
static int sc_create_constraint(sc_ctx *x, const sc_op *o)
{
    if (o->kind == ORM_SOP_PRIMARY) {
        orm_buf_adds(&x->b, ", PRIMARY KEY (");
        sc_ident_list(x, &o->cols);
        orm_buf_addc(&x->b, ')');
    } else if ((o->kind == ORM_SOP_COLUMN || o->kind == ORM_SOP_FOREIGN) &&
               o->fk.table) {
        orm_buf_adds(&x->b, ", ");
        sc_foreign_clause(x, o);
    } else if (o->kind == ORM_SOP_FOREIGN) {
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "foreign key '%s' has no references()", o->name);
    }
    return ORM_OK;
}

static int sc_compile_create(sc_ctx *x)
{
    const orm_schema *s = x->s;
    int i, ncols = 0, rc = ORM_OK;
    orm_buf_adds(&x->b, "CREATE TABLE ");
    sc_table_ident(x);
    orm_buf_adds(&x->b, " (");
    for (i = 0; i < s->n && rc == ORM_OK; i++) {
        if (s->ops[i].kind != ORM_SOP_COLUMN)
            continue;
        if (ncols++)
            orm_buf_adds(&x->b, ", ");
        rc = sc_column_def(x, &s->ops[i], 0);
    }
    if (rc == ORM_OK && ncols == 0)
        rc = orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                           "create_table('%s') needs at least one column",
                           s->table);
    for (i = 0; i < s->n && rc == ORM_OK; i++)
        rc = sc_create_constraint(x, &s->ops[i]);
    if (rc != ORM_OK)
        return rc;
    orm_buf_addc(&x->b, ')');
    if (x->dl == SC_MYSQL)
        orm_buf_adds(&x->b, " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    if ((rc = sc_emit(x)) != ORM_OK)
        return rc;
    for (i = 0; i < s->n && rc == ORM_OK; i++)
        rc = sc_op_indexes(x, &s->ops[i]);
    return rc;
}

static int sc_not_on_sqlite(sc_ctx *x, const char *what)
{
    return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                         "SQLite cannot %s of an existing table ('%s'); "
                         "create a new table and copy the rows", what,
                         x->s->table);
}

/* ALTER TABLE "t" ADD COLUMN ..., its indexes and its foreign key. */
static int sc_alter_add_column(sc_ctx *x, const sc_op *o)
{
    int rc;
    sc_alter_prefix(x);
    orm_buf_adds(&x->b, " ADD COLUMN ");
    if ((rc = sc_column_def(x, o, x->dl == SC_SQLITE)) != ORM_OK ||
        (rc = sc_emit(x)) != ORM_OK ||
        (rc = sc_column_indexes(x, o)) != ORM_OK)
        return rc;
    if (x->dl == SC_SQLITE || o->fk.table == NULL)
        return ORM_OK;
    sc_alter_prefix(x);
    orm_buf_adds(&x->b, " ADD ");
    sc_foreign_clause(x, o);
    return sc_emit(x);
}

/* ALTER TABLE "t" ADD PRIMARY KEY / ADD CONSTRAINT .. FOREIGN KEY */
static int sc_alter_add_key(sc_ctx *x, const sc_op *o)
{
    if (x->dl == SC_SQLITE)
        return sc_not_on_sqlite(x, o->kind == ORM_SOP_PRIMARY
                                       ? "add a primary key to the columns"
                                       : "add a foreign key to the columns");
    if (o->kind == ORM_SOP_FOREIGN && o->fk.table == NULL)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "foreign key '%s' has no references()", o->name);
    sc_alter_prefix(x);
    if (o->kind == ORM_SOP_PRIMARY) {
        orm_buf_adds(&x->b, " ADD PRIMARY KEY (");
        sc_ident_list(x, &o->cols);
        orm_buf_addc(&x->b, ')');
    } else {
        orm_buf_adds(&x->b, " ADD ");
        sc_foreign_clause(x, o);
    }
    return sc_emit(x);
}

static int sc_alter_rename_column(sc_ctx *x, const sc_op *o)
{
    sc_alter_prefix(x);
    orm_buf_adds(&x->b, " RENAME COLUMN ");
    sc_ident(x, o->name);
    orm_buf_adds(&x->b, " TO ");
    sc_ident(x, o->to);
    return sc_emit(x);
}

static int sc_alter_drop_column(sc_ctx *x, const sc_op *o)
{
    sc_alter_prefix(x);
    orm_buf_adds(&x->b, " DROP COLUMN ");
    sc_ident(x, o->name);
    return sc_emit(x);
}

/* DROP INDEX "n" (MySQL: DROP INDEX `n` ON `t`) */
static int sc_alter_drop_index(sc_ctx *x, const sc_op *o)
{
    orm_buf_adds(&x->b, "DROP INDEX ");
    sc_ident(x, o->name);
    if (x->dl == SC_MYSQL) {
        orm_buf_adds(&x->b, " ON ");
        sc_table_ident(x);
    }
    return sc_emit(x);
}

static int sc_alter_drop_foreign(sc_ctx *x, const sc_op *o)
{
    if (x->dl == SC_SQLITE)
        return sc_not_on_sqlite(x, "drop a foreign key");
    sc_alter_prefix(x);
    orm_buf_adds(&x->b, x->dl == SC_MYSQL ? " DROP FOREIGN KEY "
                                          : " DROP CONSTRAINT ");
    sc_ident(x, o->name);
    return sc_emit(x);
}

static int sc_alter_op(sc_ctx *x, const sc_op *o)
{
    switch (o->kind) {
    case ORM_SOP_COLUMN:
        return sc_alter_add_column(x, o);
    case ORM_SOP_INDEX:
    case ORM_SOP_UNIQUE:
        return sc_op_indexes(x, o);
    case ORM_SOP_PRIMARY:
    case ORM_SOP_FOREIGN:
        return sc_alter_add_key(x, o);
    case ORM_SOP_RENAME_COLUMN:
        return sc_alter_rename_column(x, o);
    case ORM_SOP_DROP_COLUMN:
        return sc_alter_drop_column(x, o);
    case ORM_SOP_DROP_INDEX:
    case ORM_SOP_DROP_UNIQUE:
        return sc_alter_drop_index(x, o);
    case ORM_SOP_DROP_FOREIGN:
        return sc_alter_drop_foreign(x, o);
    }
    return ORM_OK;
}

int orm_schema_compile(const orm_schema *s, const orm_dialect *d,
                       orm_sqls *out, orm_error *err)
{
    sc_ctx x;
    int i, rc = sc_ctx_init(&x, s, d, err);
    if (rc == ORM_OK && s->mode == ORM_SCHEMA_CREATE)
        rc = sc_compile_create(&x);
    else if (rc == ORM_OK)
        for (i = 0; i < s->n && rc == ORM_OK; i++)
            rc = sc_alter_op(&x, &s->ops[i]);
    return sc_ctx_finish(&x, rc, out);
}

/* {==== other DDL ====} */

/* Checks a name given to the stateless compilers. */
static int sc_check_name(sc_ctx *x, const char *p, size_t n, const char *what)
{
    if (p == NULL || n == 0 || memchr(p, '\0', n) != NULL)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "%s must be a non-empty name without NUL bytes",
                             what);
    orm_buf_add_ident(&x->b, p, n, x->q);
    return ORM_OK;
}

int orm_schema_compile_drop(const orm_dialect *d, const char *table, size_t n,
                            int if_exists, orm_sqls *out, orm_error *err)
{
    sc_ctx x;
    int rc = sc_ctx_init(&x, NULL, d, err);
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
        rc = sc_check_name(&x, table, n, "the table name");
    }
    if (rc == ORM_OK)
        rc = sc_emit(&x);
    return sc_ctx_finish(&x, rc, out);
}

int orm_schema_compile_rename(const orm_dialect *d, const char *from,
                              size_t fn, const char *to, size_t tn,
                              orm_sqls *out, orm_error *err)
{
    sc_ctx x;
    int rc = sc_ctx_init(&x, NULL, d, err);
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, x.dl == SC_MYSQL ? "RENAME TABLE " : "ALTER TABLE ");
        rc = sc_check_name(&x, from, fn, "the table name");
    }
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, x.dl == SC_MYSQL ? " TO " : " RENAME TO ");
        rc = sc_check_name(&x, to, tn, "the new table name");
    }
    if (rc == ORM_OK)
        rc = sc_emit(&x);
    return sc_ctx_finish(&x, rc, out);
}

/* DROP TABLE IF EXISTS "a", "b" [CASCADE] (one statement per table on
 * SQLite, which drops one table at a time). */
static int sc_drop_list(sc_ctx *x, const char *const *names,
                        const size_t *lens, int n)
{
    int i, rc = ORM_OK;
    for (i = 0; i < n && rc == ORM_OK; i++) {
        if (i == 0 || x->dl == SC_SQLITE)
            orm_buf_adds(&x->b, "DROP TABLE IF EXISTS ");
        else
            orm_buf_adds(&x->b, ", ");
        rc = sc_check_name(x, names[i], lens[i], "a table name");
        if (rc == ORM_OK && x->dl == SC_SQLITE)
            rc = sc_emit(x);
    }
    if (rc != ORM_OK || x->dl == SC_SQLITE)
        return rc;
    if (x->dl == SC_POSTGRES)
        orm_buf_adds(&x->b, " CASCADE");
    return sc_emit(x);
}

int orm_schema_compile_drop_all(const orm_dialect *d,
                                const char *const *names, const size_t *lens,
                                int n, orm_sqls *out, orm_sqls *after,
                                orm_error *err)
{
    sc_ctx x;
    orm_sqls tail;
    int rc = sc_ctx_init(&x, NULL, d, err);
    orm_sqls_init(&tail);
    if (rc != ORM_OK || n <= 0)
        return sc_ctx_finish(&x, rc, out);
    if (x.dl == SC_SQLITE)
        orm_buf_adds(&x.b, "PRAGMA defer_foreign_keys = ON");
    else if (x.dl == SC_MYSQL)
        orm_buf_adds(&x.b, "SET FOREIGN_KEY_CHECKS = 0");
    if (x.dl != SC_POSTGRES)
        rc = sc_emit(&x);
    if (rc == ORM_OK)
        rc = sc_drop_list(&x, names, lens, n);
    if (rc == ORM_OK && x.dl == SC_MYSQL) {
        const char *on = "SET FOREIGN_KEY_CHECKS = 1";
        if (sqls_push(&tail, on, strlen(on)) != 0 ||
            sqls_reserve(after, tail.n) != 0)
            rc = orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    rc = sc_ctx_finish(&x, rc, out);
    if (rc == ORM_OK)
        sqls_move(after, &tail); /* room reserved above: cannot fail */
    orm_sqls_free(&tail);
    return rc;
}

/* {==== catalog and ledger ====} */

/* MySQL/MariaDB: information_schema names are utf8mb3, so a bound utf8mb4
 * name with a 4-byte character ("😀") cannot be compared with them ("Illegal
 * mix of collations"); the catalog column is converted to utf8mb4 instead
 * (such a name then simply matches nothing). Table names compare exactly, as
 * the server's own lookup does on Linux; column and index names ignore
 * case, as the server does. */
static const char *const sc_catalog_sql[][3] = {
    /* ORM_CAT_HAS_TABLE */
    {"SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?",
     "SELECT 1 AS found FROM information_schema.tables WHERE table_schema = "
     "current_schema() AND table_name = ? AND table_type = 'BASE TABLE'",
     "SELECT 1 AS found FROM information_schema.tables WHERE table_schema = "
     "DATABASE() AND CONVERT(table_name USING utf8mb4) COLLATE utf8mb4_bin "
     "= ? AND table_type = 'BASE TABLE'"},
    /* ORM_CAT_HAS_COLUMN */
    {"SELECT 1 AS found FROM pragma_table_info(?) WHERE name = ?",
     "SELECT 1 AS found FROM information_schema.columns WHERE table_schema = "
     "current_schema() AND table_name = ? AND column_name = ?",
     "SELECT 1 AS found FROM information_schema.columns WHERE table_schema = "
     "DATABASE() AND CONVERT(table_name USING utf8mb4) COLLATE utf8mb4_bin "
     "= ? AND CONVERT(column_name USING utf8mb4) = ?"},
    /* ORM_CAT_HAS_INDEX */
    {"SELECT 1 AS found FROM sqlite_master WHERE type = 'index' AND "
     "tbl_name = ? AND name = ?",
     "SELECT 1 AS found FROM pg_indexes WHERE schemaname = current_schema() "
     "AND tablename = ? AND indexname = ?",
     "SELECT 1 AS found FROM information_schema.statistics WHERE "
     "table_schema = DATABASE() AND CONVERT(table_name USING utf8mb4) "
     "COLLATE utf8mb4_bin = ? AND CONVERT(index_name USING utf8mb4) = ? "
     "LIMIT 1"},
    /* ORM_CAT_TABLES */
    {"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
     "'sqlite\\_%' ESCAPE '\\' ORDER BY name",
     "SELECT table_name::text AS name FROM information_schema.tables WHERE "
     "table_schema = current_schema() AND table_type = 'BASE TABLE' "
     "ORDER BY table_name",
     "SELECT table_name AS name FROM information_schema.tables WHERE "
     "table_schema = DATABASE() AND table_type = 'BASE TABLE' "
     "ORDER BY table_name"},
    /* ORM_CAT_COLUMNS */
    {"SELECT name FROM pragma_table_info(?) ORDER BY cid",
     "SELECT column_name::text AS name FROM information_schema.columns WHERE "
     "table_schema = current_schema() AND table_name = ? "
     "ORDER BY ordinal_position",
     "SELECT column_name AS name FROM information_schema.columns WHERE "
     "table_schema = DATABASE() AND CONVERT(table_name USING utf8mb4) "
     "COLLATE utf8mb4_bin = ? ORDER BY ordinal_position"},
};

const char *orm_schema_catalog(const orm_dialect *d, orm_catalog q)
{
    int i = strcmp(d->name, "postgres") == 0 ? 1
            : strcmp(d->name, "mysql") == 0  ? 2
                                             : 0;
    return sc_catalog_sql[q][i];
}

int orm_schema_ledger(const orm_dialect *d, const char *table, size_t n,
                      orm_ledger what, orm_buf *out, orm_error *err)
{
    static const char *const cols[] = {"id", "checksum", "batch",
                                       "applied_at"};
    int i;
    orm_buf_reset(out);
    if (n == 0 || memchr(table, '\0', n) != NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "the migrations table must be a non-empty name "
                             "without NUL bytes");
    orm_buf_adds(out, what == ORM_LEDGER_SELECT   ? "SELECT "
                      : what == ORM_LEDGER_INSERT ? "INSERT INTO "
                                                  : "DELETE FROM ");
    for (i = 0; i < 4 && what == ORM_LEDGER_SELECT; i++) {
        orm_buf_add_ident(out, cols[i], strlen(cols[i]), d->quote);
        orm_buf_adds(out, i < 3 ? ", " : " FROM ");
    }
    orm_buf_add_ident(out, table, n, d->quote);
    if (what == ORM_LEDGER_SELECT) {
        orm_buf_adds(out, " ORDER BY ");
        orm_buf_add_ident(out, "batch", 5, d->quote);
        orm_buf_adds(out, ", ");
        orm_buf_add_ident(out, "id", 2, d->quote);
    } else if (what == ORM_LEDGER_INSERT) {
        orm_buf_adds(out, " (");
        for (i = 0; i < 4; i++) {
            orm_buf_add_ident(out, cols[i], strlen(cols[i]), d->quote);
            orm_buf_adds(out, i < 3 ? ", " : ") VALUES (");
        }
        orm_buf_adds(out, "?, ?, ?, ?)");
    } else {
        orm_buf_adds(out, " WHERE ");
        orm_buf_add_ident(out, "id", 2, d->quote);
        orm_buf_adds(out, " = ?");
    }
    if (out->oom)
        return orm_error_set(err, ORM_E_NOMEM, "out of memory");
    return ORM_OK;
}
