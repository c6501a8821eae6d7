/*
 * orm_schema.c: table blueprints: the columns, keys, indexes and changes a
 * create_table / alter_table function describes, checked as they are
 * added and stored for the DDL compiler (orm_ddl.c). See orm_schema.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orm_schema_int.h"

/* {==== blueprint storage ====} */


const char *const sc_action_sql[] = {
    NULL, "CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION",
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
int sc_derive(const char *table, const sc_names *cols,
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
int sc_check_literal(const orm_value *v, orm_error *err)
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
