/*
 * orm_ddl.c: compiles blueprints, and the other DDL statements (drop,
 * rename, drop all), for a dialect, reading only the dialect's DDL facts
 * (orm_ddl in orm_driver.h); the catalog queries (the driver's text) and
 * the migrations ledger statements. See orm_schema.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orm_schema_int.h"

/* {==== compiling ====} */

typedef struct ddl_ctx {
    const orm_schema *s; /* the blueprint (NULL for other DDL) */
    const orm_dialect *d;
    const orm_ddl *dl;   /* the dialect's DDL facts */
    char q;              /* identifier quote */
    orm_buf b;           /* the statement being written */
    orm_sqls out;        /* statements written so far */
    orm_error *err;
} ddl_ctx;

static int ddl_ctx_init(ddl_ctx *x, const orm_schema *s, const orm_dialect *d,
                       orm_error *err)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->err = err;
    x->q = d->quote;
    orm_buf_init(&x->b);
    orm_sqls_init(&x->out);
    x->d = d;
    x->dl = &d->ddl;
    if (x->dl->types[ORM_COL_ID] == NULL)
        return orm_error_set(err, ORM_E_INVALID_ARGUMENT,
                             "no schema support for dialect '%s'", d->name);
    return ORM_OK;
}

/* Ends a compilation: on success moves the statements to `to`. Returns rc,
 * or ORM_E_NOMEM when memory ran out. */
static int ddl_ctx_finish(ddl_ctx *x, int rc, orm_sqls *to)
{
    if (rc == ORM_OK && x->b.oom)
        rc = orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    if (rc == ORM_OK && orm_sqls_move(to, &x->out) != 0)
        rc = orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    orm_buf_free(&x->b);
    orm_sqls_free(&x->out);
    return rc;
}

/* Ends the statement in x->b and starts a new one. */
static int ddl_emit(ddl_ctx *x)
{
    if (x->b.oom || orm_sqls_push(&x->out, x->b.p, x->b.len) != 0)
        return orm_error_set(x->err, ORM_E_NOMEM, "out of memory");
    orm_buf_reset(&x->b);
    return ORM_OK;
}

/* Names were checked when they were added, so quoting cannot fail. */
size_t orm_schema_key_name(const orm_dialect *d, const char *name,
                           char *out, size_t size)
{
    size_t n = strlen(name), max = (size_t)d->ddl.max_identifier;
    uint32_t h = 2166136261u;
    size_t i, keep;
    if (max == 0 || n <= max || max < 16 || size < max + 1) {
        if (n >= size)
            n = size - 1;
        memcpy(out, name, n);
        out[n] = '\0';
        return n;
    }
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    keep = max - 9;
    while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80)
        keep--; /* never cut a UTF-8 character */
    memcpy(out, name, keep);
    snprintf(out + keep, size - keep, "_%08x", (unsigned)h);
    return keep + 9;
}

/* An index or key name, shortened where the dialect needs it
 * (orm_schema_key_name), so create and drop agree. */
static void ddl_key_ident(ddl_ctx *x, const char *name)
{
    char tmp[256];
    size_t n;
    if (strlen(name) >= sizeof tmp) { /* longer than any limit: as given */
        orm_buf_add_ident(&x->b, name, strlen(name), x->q);
        return;
    }
    n = orm_schema_key_name(x->d, name, tmp, sizeof tmp);
    orm_buf_add_ident(&x->b, tmp, n, x->q);
}

/* Refuses a table or column name longer than the dialect takes (the
 * database would cut it silently, or refuse it later). */
static int ddl_check_length(ddl_ctx *x, const char *name, const char *what)
{
    size_t max = (size_t)x->dl->max_identifier;
    if (max == 0 || name == NULL || strlen(name) <= max)
        return ORM_OK;
    return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                         "%s '%.40s...' is %zu bytes long; %s takes at most "
                         "%zu", what, name, strlen(name), x->d->name, max);
}

static void ddl_ident(ddl_ctx *x, const char *name)
{
    orm_buf_add_ident(&x->b, name, strlen(name), x->q);
}

/* "a", "b", "c" */
static void ddl_ident_list(ddl_ctx *x, const sc_names *l)
{
    int i;
    for (i = 0; i < l->n; i++) {
        if (i)
            orm_buf_adds(&x->b, ", ");
        ddl_ident(x, l->v[i]);
    }
}

static void ddl_table_ident(ddl_ctx *x)
{
    ddl_ident(x, x->s->table);
}

/* ALTER TABLE "t" */
static void ddl_alter_prefix(ddl_ctx *x)
{
    orm_buf_adds(&x->b, "ALTER TABLE ");
    ddl_table_ident(x);
}

/* The SQL type of a column. */
static void ddl_type(ddl_ctx *x, const sc_op *o)
{
    orm_buf_adds(&x->b, x->dl->types[o->type]);
    if (o->type == ORM_COL_STRING)
        orm_buf_addf(&x->b, "(%d)", o->a);
    else if (o->type == ORM_COL_DECIMAL)
        orm_buf_addf(&x->b, "(%d,%d)", o->a, o->b);
}

/* 'text' with quotes doubled, and backslashes doubled where they escape
 * (in every string of a backslash_strings dialect, in E'' strings of an
 * escape_strings one, which this writes when a backslash appears). */
static void ddl_text_literal(ddl_ctx *x, const char *p, size_t n)
{
    int bs = memchr(p, '\\', n) != NULL;
    int esc = bs && (x->d->backslash_strings || x->d->escape_strings);
    size_t i;
    if (bs && !x->d->backslash_strings && x->d->escape_strings)
        orm_buf_addc(&x->b, 'E');
    orm_buf_addc(&x->b, '\'');
    for (i = 0; i < n; i++) {
        if (p[i] == '\'' || (p[i] == '\\' && esc))
            orm_buf_addc(&x->b, p[i]);
        orm_buf_addc(&x->b, p[i]);
    }
    orm_buf_addc(&x->b, '\'');
}

static void ddl_blob_literal(ddl_ctx *x, const unsigned char *p, size_t n)
{
    size_t i;
    orm_buf_adds(&x->b, x->dl->blob_open);
    for (i = 0; i < n; i++)
        orm_buf_addf(&x->b, "%02x", p[i]);
    orm_buf_adds(&x->b, x->dl->blob_close);
}

/* A value as a SQL literal. ORM_OK or invalid_argument. */
static int ddl_literal(ddl_ctx *x, const orm_value *v)
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
        ddl_text_literal(x, v->u.s.p, v->u.s.n);
        break;
    case ORM_BLOB:
        ddl_blob_literal(x, (const unsigned char *)v->u.s.p, v->u.s.n);
        break;
    }
    return ORM_OK;
}

/* REFERENCES "t" ("id") [ON DELETE ..] [ON UPDATE ..] */
static void ddl_references(ddl_ctx *x, const sc_fk *fk)
{
    orm_buf_adds(&x->b, " REFERENCES ");
    ddl_ident(x, fk->table);
    orm_buf_adds(&x->b, " (");
    if (fk->cols.n)
        ddl_ident_list(x, &fk->cols);
    else
        ddl_ident(x, "id");
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
static int ddl_check_fk(ddl_ctx *x, const sc_fk *fk, const char *what)
{
    if (fk->table == NULL && (fk->on_delete || fk->on_update))
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "'%s': on_delete()/on_update() without "
                             "references()", what);
    return ORM_OK;
}

/* The default foreign key name of column o: <table>_<col>_foreign. */
static void ddl_column_fk_name(ddl_ctx *x, const sc_op *o)
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
        ddl_key_ident(x, tmp.p);
    orm_buf_free(&tmp);
}

/* CONSTRAINT "name" FOREIGN KEY ("c", ..) REFERENCES ... ; the name and
 * columns come from a column (o->name) or a FOREIGN key. */
static void ddl_foreign_clause(ddl_ctx *x, const sc_op *o)
{
    orm_buf_adds(&x->b, "CONSTRAINT ");
    if (o->kind == ORM_SOP_COLUMN)
        ddl_column_fk_name(x, o);
    else
        ddl_key_ident(x, o->name);
    orm_buf_adds(&x->b, " FOREIGN KEY (");
    if (o->kind == ORM_SOP_COLUMN)
        ddl_ident(x, o->name);
    else
        ddl_ident_list(x, &o->cols);
    orm_buf_addc(&x->b, ')');
    ddl_references(x, &o->fk);
}

/* DEFAULT ... of a column, if any. */
static int ddl_column_default(ddl_ctx *x, const sc_op *o)
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
        orm_buf_adds(&x->b, x->dl->default_now);
        return ORM_OK;
    }
    if (!o->has_default)
        return ORM_OK;
    if (o->type == ORM_COL_ID)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "the id column '%s' cannot have a default",
                             o->name);
    orm_buf_adds(&x->b, " DEFAULT ");
    return ddl_literal(x, &o->def);
}

/* "name" TYPE [NOT NULL] [DEFAULT ..] [PRIMARY KEY]; with inline_fk, its
 * foreign key as a column constraint (SQLite's ALTER TABLE ADD COLUMN). */
static int ddl_column_def(ddl_ctx *x, const sc_op *o, int inline_fk)
{
    int rc;
    if ((rc = ddl_check_fk(x, &o->fk, o->name)) != ORM_OK)
        return rc;
    ddl_ident(x, o->name);
    orm_buf_addc(&x->b, ' ');
    ddl_type(x, o);
    if (o->type != ORM_COL_ID && !(o->flags & ORM_SF_NULLABLE))
        orm_buf_adds(&x->b, " NOT NULL");
    if ((rc = ddl_column_default(x, o)) != ORM_OK)
        return rc;
    if ((o->flags & ORM_SF_PRIMARY) && o->type != ORM_COL_ID)
        orm_buf_adds(&x->b, " PRIMARY KEY");
    if (inline_fk && o->fk.table) {
        orm_buf_adds(&x->b, " CONSTRAINT ");
        ddl_column_fk_name(x, o);
        ddl_references(x, &o->fk);
    }
    return ORM_OK;
}

/* CREATE [UNIQUE] INDEX "name" ON "t" (cols) */
static int ddl_create_index(ddl_ctx *x, int unique, const char *name,
                           const sc_names *cols)
{
    orm_buf_adds(&x->b, unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
    ddl_key_ident(x, name);
    orm_buf_adds(&x->b, " ON ");
    ddl_table_ident(x);
    orm_buf_adds(&x->b, " (");
    ddl_ident_list(x, cols);
    orm_buf_addc(&x->b, ')');
    return ddl_emit(x);
}

/* The index statements a column's unique() / index() ask for. */
static int ddl_column_indexes(ddl_ctx *x, const sc_op *o)
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
        rc = ddl_create_index(x, i == 0, name, &cols);
        free(name);
    }
    return rc;
}

/* The indexes of op (a column's flags, INDEX or UNIQUE); others: none. */
static int ddl_op_indexes(ddl_ctx *x, const sc_op *o)
{
    if (o->kind == ORM_SOP_COLUMN)
        return ddl_column_indexes(x, o);
    if (o->kind == ORM_SOP_INDEX || o->kind == ORM_SOP_UNIQUE)
        return ddl_create_index(x, o->kind == ORM_SOP_UNIQUE, o->name,
                               &o->cols);
    return ORM_OK;
}

/* The table constraint of op in CREATE TABLE (a primary key, a column's
 * or a FOREIGN key), after ", ". Returns ORM_OK or an error kind. */
static int ddl_create_constraint(ddl_ctx *x, const sc_op *o)
{
    if (o->kind == ORM_SOP_PRIMARY) {
        orm_buf_adds(&x->b, ", PRIMARY KEY (");
        ddl_ident_list(x, &o->cols);
        orm_buf_addc(&x->b, ')');
    } else if ((o->kind == ORM_SOP_COLUMN || o->kind == ORM_SOP_FOREIGN) &&
               o->fk.table) {
        orm_buf_adds(&x->b, ", ");
        ddl_foreign_clause(x, o);
    } else if (o->kind == ORM_SOP_FOREIGN) {
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "foreign key '%s' has no references()", o->name);
    }
    return ORM_OK;
}

static int ddl_compile_create(ddl_ctx *x)
{
    const orm_schema *s = x->s;
    int i, ncols = 0, rc = ORM_OK;
    orm_buf_adds(&x->b, "CREATE TABLE ");
    ddl_table_ident(x);
    orm_buf_adds(&x->b, " (");
    for (i = 0; i < s->n && rc == ORM_OK; i++) {
        if (s->ops[i].kind != ORM_SOP_COLUMN)
            continue;
        if (ncols++)
            orm_buf_adds(&x->b, ", ");
        rc = ddl_column_def(x, &s->ops[i], 0);
    }
    if (rc == ORM_OK && ncols == 0)
        rc = orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                           "create_table('%s') needs at least one column",
                           s->table);
    for (i = 0; i < s->n && rc == ORM_OK; i++)
        rc = ddl_create_constraint(x, &s->ops[i]);
    if (rc != ORM_OK)
        return rc;
    orm_buf_addc(&x->b, ')');
    orm_buf_adds(&x->b, x->dl->table_options);
    if ((rc = ddl_emit(x)) != ORM_OK)
        return rc;
    for (i = 0; i < s->n && rc == ORM_OK; i++)
        rc = ddl_op_indexes(x, &s->ops[i]);
    return rc;
}

static int ddl_no_alter_keys(ddl_ctx *x, const char *what)
{
    return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                         "%s cannot %s of an existing table ('%s'); "
                         "create a new table and copy the rows", x->d->name,
                         what, x->s->table);
}

/* ALTER TABLE "t" ADD COLUMN ..., its indexes and its foreign key. */
static int ddl_alter_add_column(ddl_ctx *x, const sc_op *o)
{
    int rc;
    ddl_alter_prefix(x);
    orm_buf_adds(&x->b, " ADD COLUMN ");
    if ((rc = ddl_column_def(x, o, x->dl->add_column_fk_inline)) != ORM_OK ||
        (rc = ddl_emit(x)) != ORM_OK ||
        (rc = ddl_column_indexes(x, o)) != ORM_OK)
        return rc;
    if (x->dl->add_column_fk_inline || o->fk.table == NULL)
        return ORM_OK;
    ddl_alter_prefix(x);
    orm_buf_adds(&x->b, " ADD ");
    ddl_foreign_clause(x, o);
    return ddl_emit(x);
}

/* ALTER TABLE "t" ADD PRIMARY KEY / ADD CONSTRAINT .. FOREIGN KEY */
static int ddl_alter_add_key(ddl_ctx *x, const sc_op *o)
{
    if (!x->dl->alter_keys)
        return ddl_no_alter_keys(x, o->kind == ORM_SOP_PRIMARY
                                       ? "add a primary key to the columns"
                                       : "add a foreign key to the columns");
    if (o->kind == ORM_SOP_FOREIGN && o->fk.table == NULL)
        return orm_error_set(x->err, ORM_E_INVALID_ARGUMENT,
                             "foreign key '%s' has no references()", o->name);
    ddl_alter_prefix(x);
    if (o->kind == ORM_SOP_PRIMARY) {
        orm_buf_adds(&x->b, " ADD PRIMARY KEY (");
        ddl_ident_list(x, &o->cols);
        orm_buf_addc(&x->b, ')');
    } else {
        orm_buf_adds(&x->b, " ADD ");
        ddl_foreign_clause(x, o);
    }
    return ddl_emit(x);
}

static int ddl_alter_rename_column(ddl_ctx *x, const sc_op *o)
{
    ddl_alter_prefix(x);
    orm_buf_adds(&x->b, " RENAME COLUMN ");
    ddl_ident(x, o->name);
    orm_buf_adds(&x->b, " TO ");
    ddl_ident(x, o->to);
    return ddl_emit(x);
}

static int ddl_alter_drop_column(ddl_ctx *x, const sc_op *o)
{
    ddl_alter_prefix(x);
    orm_buf_adds(&x->b, " DROP COLUMN ");
    ddl_ident(x, o->name);
    return ddl_emit(x);
}

/* DROP INDEX "n" (MySQL: DROP INDEX `n` ON `t`) */
static int ddl_alter_drop_index(ddl_ctx *x, const sc_op *o)
{
    orm_buf_adds(&x->b, "DROP INDEX ");
    ddl_key_ident(x, o->name);
    if (x->dl->drop_index_on_table) {
        orm_buf_adds(&x->b, " ON ");
        ddl_table_ident(x);
    }
    return ddl_emit(x);
}

static int ddl_alter_drop_foreign(ddl_ctx *x, const sc_op *o)
{
    if (!x->dl->alter_keys)
        return ddl_no_alter_keys(x, "drop a foreign key");
    ddl_alter_prefix(x);
    orm_buf_adds(&x->b, x->dl->drop_foreign);
    ddl_key_ident(x, o->name);
    return ddl_emit(x);
}

static int ddl_alter_op(ddl_ctx *x, const sc_op *o)
{
    switch (o->kind) {
    case ORM_SOP_COLUMN:
        return ddl_alter_add_column(x, o);
    case ORM_SOP_INDEX:
    case ORM_SOP_UNIQUE:
        return ddl_op_indexes(x, o);
    case ORM_SOP_PRIMARY:
    case ORM_SOP_FOREIGN:
        return ddl_alter_add_key(x, o);
    case ORM_SOP_RENAME_COLUMN:
        return ddl_alter_rename_column(x, o);
    case ORM_SOP_DROP_COLUMN:
        return ddl_alter_drop_column(x, o);
    case ORM_SOP_DROP_INDEX:
    case ORM_SOP_DROP_UNIQUE:
        return ddl_alter_drop_index(x, o);
    case ORM_SOP_DROP_FOREIGN:
        return ddl_alter_drop_foreign(x, o);
    }
    return ORM_OK;
}

int orm_schema_compile(const orm_schema *s, const orm_dialect *d,
                       orm_sqls *out, orm_error *err)
{
    ddl_ctx x;
    int i, rc = ddl_ctx_init(&x, s, d, err);
    if (rc == ORM_OK)
        rc = ddl_check_length(&x, s->table, "the table name");
    for (i = 0; i < s->n && rc == ORM_OK; i++) {
        if (s->ops[i].kind == ORM_SOP_COLUMN)
            rc = ddl_check_length(&x, s->ops[i].name, "the column name");
        else if (s->ops[i].kind == ORM_SOP_RENAME_COLUMN)
            rc = ddl_check_length(&x, s->ops[i].to, "the column name");
    }
    if (rc == ORM_OK && s->mode == ORM_SCHEMA_CREATE)
        rc = ddl_compile_create(&x);
    else if (rc == ORM_OK)
        for (i = 0; i < s->n && rc == ORM_OK; i++)
            rc = ddl_alter_op(&x, &s->ops[i]);
    return ddl_ctx_finish(&x, rc, out);
}

/* {==== other DDL ====} */

/* Checks a name given to the stateless compilers. */
static int ddl_check_name(ddl_ctx *x, const char *p, size_t n, const char *what)
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
    ddl_ctx x;
    int rc = ddl_ctx_init(&x, NULL, d, err);
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
        rc = ddl_check_name(&x, table, n, "the table name");
    }
    if (rc == ORM_OK)
        rc = ddl_emit(&x);
    return ddl_ctx_finish(&x, rc, out);
}

int orm_schema_compile_rename(const orm_dialect *d, const char *from,
                              size_t fn, const char *to, size_t tn,
                              orm_sqls *out, orm_error *err)
{
    ddl_ctx x;
    int rc = ddl_ctx_init(&x, NULL, d, err);
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, x.dl->rename_table);
        rc = ddl_check_name(&x, from, fn, "the table name");
    }
    if (rc == ORM_OK) {
        orm_buf_adds(&x.b, x.dl->rename_to);
        rc = ddl_check_name(&x, to, tn, "the new table name");
    }
    if (rc == ORM_OK)
        rc = ddl_emit(&x);
    return ddl_ctx_finish(&x, rc, out);
}

/* DROP TABLE IF EXISTS "a", "b" [CASCADE] (one statement per table on
 * SQLite, which drops one table at a time). */
static int ddl_drop_list(ddl_ctx *x, const char *const *names,
                        const size_t *lens, int n)
{
    int i, rc = ORM_OK;
    for (i = 0; i < n && rc == ORM_OK; i++) {
        if (i == 0 || x->dl->drop_one_per_statement)
            orm_buf_adds(&x->b, "DROP TABLE IF EXISTS ");
        else
            orm_buf_adds(&x->b, ", ");
        rc = ddl_check_name(x, names[i], lens[i], "a table name");
        if (rc == ORM_OK && x->dl->drop_one_per_statement)
            rc = ddl_emit(x);
    }
    if (rc != ORM_OK || x->dl->drop_one_per_statement)
        return rc;
    orm_buf_adds(&x->b, x->dl->drop_cascade);
    return ddl_emit(x);
}

int orm_schema_compile_drop_all(const orm_dialect *d,
                                const char *const *names, const size_t *lens,
                                int n, orm_sqls *out, orm_sqls *after,
                                orm_error *err)
{
    ddl_ctx x;
    orm_sqls tail;
    int rc = ddl_ctx_init(&x, NULL, d, err);
    orm_sqls_init(&tail);
    if (rc != ORM_OK || n <= 0)
        return ddl_ctx_finish(&x, rc, out);
    if (x.dl->fk_checks_off) {
        orm_buf_adds(&x.b, x.dl->fk_checks_off);
        rc = ddl_emit(&x);
    }
    if (rc == ORM_OK)
        rc = ddl_drop_list(&x, names, lens, n);
    if (rc == ORM_OK && x.dl->fk_checks_on) {
        const char *on = x.dl->fk_checks_on;
        if (orm_sqls_push(&tail, on, strlen(on)) != 0 ||
            orm_sqls_reserve(after, tail.n) != 0)
            rc = orm_error_set(err, ORM_E_NOMEM, "out of memory");
    }
    rc = ddl_ctx_finish(&x, rc, out);
    if (rc == ORM_OK)
        orm_sqls_move(after, &tail); /* room reserved above: cannot fail */
    orm_sqls_free(&tail);
    return rc;
}

/* {==== catalog and ledger ====} */

const char *orm_schema_catalog(const orm_dialect *d, orm_catalog q)
{
    return d->ddl.catalog[q];
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
