/*
 * orm_schema_int.h: what the schema builder's files share: blueprint
 * storage (orm_schema.c builds it, orm_ddl.c compiles it) and the
 * statement list's internals (orm_sqls.c). Only src/orm_*.c include it.
 */
#ifndef ORM_SCHEMA_INT_H
#define ORM_SCHEMA_INT_H

#include "orm_schema.h"

typedef enum sc_action {
    SC_ACT_NONE = 0,
    SC_ACT_CASCADE,
    SC_ACT_RESTRICT,
    SC_ACT_SET_NULL,
    SC_ACT_SET_DEFAULT,
    SC_ACT_NO_ACTION
} sc_action;

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

/* SQL of each sc_action (NULL for none). */
extern const char *const sc_action_sql[];

/* {==== orm_schema.c ====} */

/* The name <table>_<col>[_<col>...]_<suffix>, malloc'd. ORM_OK or
 * ORM_E_NOMEM. */
int sc_derive(const char *table, const sc_names *cols,
              const char *suffix, char **out, orm_error *err);

/* Checks that v can be written as a literal. ORM_OK or invalid_argument. */
int sc_check_literal(const orm_value *v, orm_error *err);

/* {==== orm_sqls.c ====} */

/* Makes room for `more` statements. 0 or -1 (list unchanged). */
int orm_sqls_reserve(orm_sqls *l, int more);

/* Appends a copy of the n bytes at p. 0 or -1 (list unchanged). */
int orm_sqls_push(orm_sqls *l, const char *p, size_t n);

/* Moves every statement of `from` to the end of `to`; `from` ends empty.
 * 0, or -1 with both lists unchanged. */
int orm_sqls_move(orm_sqls *to, orm_sqls *from);

#endif
