/*
 * orm_schema.h: the schema builder's engine. A blueprint describes what to
 * do to one table (create it, or alter it: columns with their type and
 * modifiers, indexes, unique and primary keys, foreign keys, renames and
 * drops); orm_schema_compile turns it into the DDL statements of one
 * dialect. Also here: the other DDL statements (drop, rename, drop all),
 * the catalog queries (has_table, has_column, ...) and the statements of
 * the migrations ledger. No Lua types here; src/lua_schema.c wraps it.
 *
 * Names: every identifier is copied when it is added and refused with
 * ORM_E_INVALID_ARGUMENT when it is empty or contains a NUL byte; the
 * compiler quotes it with the dialect's quote character. Index and key
 * names default to <table>_<col>[_<col>...]_index / _unique / _foreign
 * (and _primary for a composite primary key).
 *
 * Defaults: DDL defaults cannot be bound parameters everywhere, so a
 * default value is rendered as a literal: NULL, TRUE / FALSE, integers,
 * finite doubles (%.17g), strings quoted with embedded quotes doubled
 * (backslashes doubled on MySQL; an E'' string on PostgreSQL when the text
 * has a backslash), blobs as hex (X'..', decode('..', 'hex') on
 * PostgreSQL). A text with a NUL byte or a NaN / infinite double is refused.
 */
#ifndef ORM_SCHEMA_H
#define ORM_SCHEMA_H

#include <stddef.h>

#include "orm_buf.h"
#include "orm_driver.h"
#include "orm_error.h"
#include "orm_value.h"

/* {==== statement lists ====} */

/* A list of SQL statements, each a NUL-terminated malloc'd string. */
typedef struct orm_sqls {
    char **v;     /* the statements */
    size_t *len;  /* their lengths */
    int n;        /* statements in use */
    int cap;      /* allocated slots */
} orm_sqls;

/* Makes an empty list; never fails. */
void orm_sqls_init(orm_sqls *l);

/* Frees every statement; the list is empty and reusable. NULL is fine. */
void orm_sqls_free(orm_sqls *l);

/* {==== blueprints ====} */

typedef enum orm_schema_mode {
    ORM_SCHEMA_CREATE, /* CREATE TABLE with its indexes and keys */
    ORM_SCHEMA_ALTER   /* a list of changes to an existing table */
} orm_schema_mode;


/* Column modifiers (orm_schema_flag). */
#define ORM_SF_NULLABLE 0x01    /* NULL allowed (columns are NOT NULL) */
#define ORM_SF_UNIQUE 0x02      /* a unique index <table>_<col>_unique */
#define ORM_SF_INDEX 0x04       /* an index <table>_<col>_index */
#define ORM_SF_PRIMARY 0x08     /* PRIMARY KEY on the column */
#define ORM_SF_USE_CURRENT 0x10 /* DEFAULT CURRENT_TIMESTAMP (datetime) */

/* The operations of a blueprint, in the order they were added. */
typedef enum orm_sop_kind {
    ORM_SOP_COLUMN,        /* add a column */
    ORM_SOP_INDEX,         /* an index on columns */
    ORM_SOP_UNIQUE,        /* a unique index on columns */
    ORM_SOP_PRIMARY,       /* a (composite) primary key */
    ORM_SOP_FOREIGN,       /* a foreign key on columns */
    ORM_SOP_RENAME_COLUMN, /* alter only */
    ORM_SOP_DROP_COLUMN,   /* alter only */
    ORM_SOP_DROP_INDEX,    /* alter only: an index or a unique index */
    ORM_SOP_DROP_UNIQUE,   /* alter only: same, named ..._unique by default */
    ORM_SOP_DROP_FOREIGN   /* alter only, not on SQLite */
} orm_sop_kind;

typedef struct orm_schema orm_schema;

/* A new blueprint for `table` (n bytes). Returns NULL when the name is
 * refused or memory runs out, with err filled. Free with orm_schema_free. */
orm_schema *orm_schema_new(const char *table, size_t n, orm_schema_mode mode,
                           orm_error *err);

/* Frees a blueprint and everything it holds. NULL is fine. */
void orm_schema_free(orm_schema *s);

/* The blueprint's table name and mode. */
const char *orm_schema_table(const orm_schema *s);
orm_schema_mode orm_schema_get_mode(const orm_schema *s);

/* The kind of operation `op` (an index returned by the functions below),
 * or -1 when op is out of range. */
int orm_schema_op_kind(const orm_schema *s, int op);

/* The name of operation op (a column's name, a key's name), or NULL when
 * op is out of range. Owned by the blueprint. */
const char *orm_schema_op_name(const orm_schema *s, int op);

/* Adds a column `name` of type t. `a` is the length of a string or the
 * precision of a decimal, `b` the scale of a decimal; 0 means the default.
 * OUT: *op, the operation's index, for the modifiers below. Returns ORM_OK
 * or an error kind with the blueprint unchanged. */
int orm_schema_column(orm_schema *s, const char *name, size_t n,
                      orm_coltype t, int a, int b, int *op, orm_error *err);

/* Sets (on != 0) or clears one ORM_SF_* modifier of column op. Returns
 * ORM_OK, or ORM_E_INVALID_ARGUMENT when op is not a column. */
int orm_schema_flag(orm_schema *s, int op, int flag, int on, orm_error *err);

/* Sets the default value of column op (bytes copied). Returns ORM_OK or an
 * error kind (a value that cannot be a literal, not a column, no memory);
 * on error the column is unchanged. */
int orm_schema_default(orm_schema *s, int op, const orm_value *v,
                       orm_error *err);

/* Makes column op (or foreign key op) reference `table` (tn bytes) and
 * its columns: `cols`/`lens`, ncols of them; ncols 0 means "id". Returns
 * ORM_OK or an error kind, the operation unchanged on error. */
int orm_schema_references(orm_schema *s, int op, const char *table,
                          size_t tn, const char *const *cols,
                          const size_t *lens, int ncols, orm_error *err);

/* Sets the ON DELETE (on_update == 0) or ON UPDATE action of the foreign
 * key of op: "cascade", "restrict", "set null", "set default", "no action"
 * (any case, '_' for ' '). Returns ORM_OK or ORM_E_INVALID_ARGUMENT. */
int orm_schema_fk_action(orm_schema *s, int op, int on_update,
                         const char *action, size_t n, orm_error *err);

/* Adds an index, unique index, primary key or foreign key (kind) on the
 * ncols columns cols/lens, named `name` (nn bytes) or, when name is NULL,
 * by the default rule. OUT: *op (may be NULL). Returns ORM_OK or an error
 * kind with the blueprint unchanged. */
int orm_schema_key(orm_schema *s, orm_sop_kind kind, const char *const *cols,
                   const size_t *lens, int ncols, const char *name, size_t nn,
                   int *op, orm_error *err);

/* Alter only: renames column `from` to `to`. ORM_OK or an error kind. */
int orm_schema_rename_column(orm_schema *s, const char *from, size_t fn,
                             const char *to, size_t tn, orm_error *err);

/* Alter only: drops a column (kind ORM_SOP_DROP_COLUMN, name required), an
 * index, a unique index or a foreign key (ORM_SOP_DROP_INDEX / _UNIQUE /
 * _FOREIGN): by `name`, or when name is NULL by the default name of the
 * ncols columns cols/lens. Returns ORM_OK or an error kind. */
int orm_schema_drop(orm_schema *s, orm_sop_kind kind, const char *name,
                    size_t nn, const char *const *cols, const size_t *lens,
                    int ncols, orm_error *err);

/* Compiles the blueprint for dialect d, appending the statements to out.
 * Returns ORM_OK, or an error kind (something this dialect cannot do, an
 * empty create, no memory) with out unchanged. */
int orm_schema_compile(const orm_schema *s, const orm_dialect *d,
                       orm_sqls *out, orm_error *err);

/* {==== other DDL ====} */

/* DROP TABLE [IF EXISTS] table. Appends to out; ORM_OK or an error kind
 * with out unchanged. */
int orm_schema_compile_drop(const orm_dialect *d, const char *table, size_t n,
                            int if_exists, orm_sqls *out, orm_error *err);

/* Renames a table. Appends to out; ORM_OK or an error kind. */
int orm_schema_compile_rename(const orm_dialect *d, const char *from,
                              size_t fn, const char *to, size_t tn,
                              orm_sqls *out, orm_error *err);

/* Drops the n tables names/lens whatever foreign keys link them: `out`
 * gets the statements to run on one connection inside one transaction,
 * `after` those to run afterwards on that connection even when one of
 * `out` failed (MySQL turns foreign key checks off, then on again; SQLite
 * defers foreign keys to the commit; PostgreSQL drops with CASCADE). With
 * n == 0 nothing is appended. ORM_OK or an error kind, lists unchanged. */
int orm_schema_compile_drop_all(const orm_dialect *d,
                                const char *const *names, const size_t *lens,
                                int n, orm_sqls *out, orm_sqls *after,
                                orm_error *err);

/* {==== catalog and ledger ====} */

/* Catalog queries. Parameters are bound; the SQL is written with the
 * portable `?` placeholder of raw SQL (the binding's run path rewrites it
 * for PostgreSQL), like the ledger statements below. */

/* The SQL of catalog query q for dialect d (static text). */
const char *orm_schema_catalog(const orm_dialect *d, orm_catalog q);

/* Statements of the migrations ledger table (id, checksum, batch,
 * applied_at). */
typedef enum orm_ledger {
    ORM_LEDGER_SELECT, /* () -> every row, ordered by batch then id */
    ORM_LEDGER_INSERT, /* (id, checksum, batch, applied_at) */
    ORM_LEDGER_DELETE  /* (id) */
} orm_ledger;

/* Writes the ledger statement `what` on table `table` (n bytes) into out
 * (reset first). ORM_OK or an error kind (bad name, no memory). */
int orm_schema_ledger(const orm_dialect *d, const char *table, size_t n,
                      orm_ledger what, orm_buf *out, orm_error *err);

/* The name an index or key called `name` has in the database: as given
 * when the dialect takes it, else its first bytes (cut at a UTF-8
 * character), '_' and 8 hex digits of a hash of the whole name, so one long
 * name always gives the same short one. Written NUL-terminated into out
 * (size bytes); returns its length. */
size_t orm_schema_key_name(const orm_dialect *d, const char *name, char *out,
                           size_t size);

#endif
