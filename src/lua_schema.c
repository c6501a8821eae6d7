/*
 * lua_schema.c: the Lua side of the schema builder (src/orm_schema.h).
 *   core.schema_blueprint(table, "create" | "alter") -> a blueprint
 *     ("ormed.blueprint"): t:id(), t:string(name, len), ... add columns and
 *     return a column handle ("ormed.column") whose modifiers chain
 *     (:nullable(), :default(v), :references("teams"), ...);
 *     t:compile(dialect) -> { sql, ... }.
 *   core.schema_drop(dialect, table, if_exists), core.schema_rename(dialect,
 *     from, to), core.schema_drop_all(dialect, names) -> statements (and the
 *     statements to run afterwards), core.schema_catalog(dialect, what),
 *     core.schema_ledger(dialect, table, what) -> sql, and
 *     core.list_dir(path) -> names | nil, message (for the migrator).
 * A dialect is named "sqlite", "postgres" or "mysql" (or a driver alias),
 * or given as a pool / connection userdata. Every error is an orm.Error.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "lua_ormed.h"
#include "orm_schema.h"

#define ORM_LUA_BLUEPRINT "ormed.blueprint"
#define ORM_LUA_COLUMN "ormed.column"
#define ORM_LUA_SCRATCH "ormed.schema_scratch"
#define ORM_LUA_DIR "ormed.dir"

typedef struct bp_ud {
    orm_schema *s; /* NULL until created */
} bp_ud;

typedef struct col_ud {
    int op; /* the operation in the blueprint (user value 1) */
} col_ud;

/* Compiler output held by a userdata so nothing leaks when Lua raises. */
typedef struct scratch_ud {
    orm_sqls out;   /* statements */
    orm_sqls after; /* statements to run afterwards (drop all) */
    orm_buf buf;    /* one statement */
} scratch_ud;

typedef struct dir_ud {
    DIR *d; /* NULL once closed */
} dir_ud;

/* {==== helpers ====} */

static void aux_check(lua_State *L, int rc, const orm_error *err)
{
    if (rc != ORM_OK)
        orm_lua_raise(L, err, NULL, NULL);
}

/* A string argument (a name), raising invalid_argument otherwise. */
static const char *ls_name(lua_State *L, int idx, size_t *n, const char *fn,
                            const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        orm_lua_argerror(L, "%s: %s must be a string, got %s", fn, what,
                         luaL_typename(L, idx));
    return lua_tolstring(L, idx, n);
}

static int aux_optint(lua_State *L, int idx, const char *fn, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    if (!lua_isinteger(L, idx))
        orm_lua_argerror(L, "%s: %s must be an integer, got %s", fn, what,
                         luaL_typename(L, idx));
    return (int)lua_tointeger(L, idx);
}

/* The dialect named by (or of the pool / connection at) idx. */
static const orm_dialect *aux_dialect(lua_State *L, int idx)
{
    const orm_driver *d;
    if (lua_type(L, idx) == LUA_TUSERDATA)
        return orm_lua_target_dialect(L, idx);
    d = lua_type(L, idx) == LUA_TSTRING ? orm_driver_find(lua_tostring(L, idx))
                                        : NULL;
    if (d == NULL)
        orm_lua_argerror(L, "unknown dialect '%s' (sqlite, postgres, mysql)",
                         lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx)
                                                         : luaL_typename(L, idx));
    return d->dialect;
}

/* A list of names at idx: a string or a list of strings. The strings stay
 * owned by the argument; the arrays live in a scratch userdata pushed on
 * the stack. OUT: *cols, *lens. Returns the count (>= 1). */
static int ls_names(lua_State *L, int idx, const char *fn,
                     const char ***cols, size_t **lens)
{
    int i, n;
    void *mem;
    if (lua_type(L, idx) == LUA_TSTRING)
        n = 1;
    else if (lua_type(L, idx) == LUA_TTABLE && luaL_len(L, idx) > 0)
        n = (int)luaL_len(L, idx);
    else
        return orm_lua_argerror(L, "%s: expected a column name or a list of "
                                   "column names, got %s", fn,
                                luaL_typename(L, idx));
    mem = lua_newuserdatauv(L, (size_t)n * (sizeof(char *) + sizeof(size_t)),
                            0);
    *lens = mem;
    *cols = (const char **)((size_t *)mem + n);
    if (n == 1 && lua_type(L, idx) == LUA_TSTRING) {
        (*cols)[0] = lua_tolstring(L, idx, &(*lens)[0]);
        return 1;
    }
    for (i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            orm_lua_argerror(L, "%s: column %d must be a string, got %s", fn,
                             i + 1, luaL_typename(L, -1));
        (*cols)[i] = lua_tolstring(L, -1, &(*lens)[i]);
        lua_pop(L, 1); /* the table keeps the string */
    }
    return n;
}

static scratch_ud *aux_scratch(lua_State *L)
{
    scratch_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    orm_sqls_init(&u->out);
    orm_sqls_init(&u->after);
    orm_buf_init(&u->buf);
    luaL_setmetatable(L, ORM_LUA_SCRATCH);
    return u;
}

static int ls_scratch_gc(lua_State *L)
{
    scratch_ud *u = luaL_checkudata(L, 1, ORM_LUA_SCRATCH);
    orm_sqls_free(&u->out);
    orm_sqls_free(&u->after);
    orm_buf_free(&u->buf);
    return 0;
}

static void aux_pushsqls(lua_State *L, const orm_sqls *l)
{
    int i;
    lua_createtable(L, l->n, 0);
    for (i = 0; i < l->n; i++) {
        lua_pushlstring(L, l->v[i], l->len[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* {==== blueprints ====} */

static bp_ud *aux_checkbp(lua_State *L, int idx)
{
    bp_ud *u = luaL_checkudata(L, idx, ORM_LUA_BLUEPRINT);
    if (u->s == NULL)
        orm_lua_argerror(L, "the blueprint is closed");
    return u;
}

/* Pushes a handle on operation op of the blueprint at bidx. */
static int aux_pushhandle(lua_State *L, int bidx, int op)
{
    col_ud *c;
    bidx = lua_absindex(L, bidx);
    c = lua_newuserdatauv(L, sizeof *c, 1);
    c->op = op;
    luaL_setmetatable(L, ORM_LUA_COLUMN);
    lua_pushvalue(L, bidx);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* core.schema_blueprint(table, mode) */
static int schema_blueprint(lua_State *L)
{
    static const char *const modes[] = {"create", "alter", NULL};
    size_t n;
    const char *table = ls_name(L, 1, &n, "schema_blueprint", "the table");
    int mode = luaL_checkoption(L, 2, "create", modes);
    orm_error err;
    bp_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->s = NULL;
    luaL_setmetatable(L, ORM_LUA_BLUEPRINT);
    orm_error_clear(&err);
    u->s = orm_schema_new(table, n, (orm_schema_mode)mode, &err);
    if (u->s == NULL)
        orm_lua_raise(L, &err, NULL, NULL);
    return 1;
}

static int bp_gc(lua_State *L)
{
    bp_ud *u = luaL_checkudata(L, 1, ORM_LUA_BLUEPRINT);
    orm_schema_free(u->s);
    u->s = NULL;
    return 0;
}

/* Adds column (name at idx 2, or `dflt` when absent) of type t; returns
 * the op. */
static int aux_addcol(lua_State *L, orm_coltype t, int a, int b,
                      const char *fn, const char *dflt)
{
    bp_ud *u = aux_checkbp(L, 1);
    size_t n;
    const char *name;
    orm_error err;
    int op = -1;
    if (dflt != NULL && lua_isnoneornil(L, 2)) {
        name = dflt;
        n = strlen(dflt);
    } else
        name = ls_name(L, 2, &n, fn, "the column name");
    orm_error_clear(&err);
    aux_check(L, orm_schema_column(u->s, name, n, t, a, b, &op, &err), &err);
    return op;
}

static int bp_column(lua_State *L, orm_coltype t, const char *fn)
{
    return aux_pushhandle(L, 1, aux_addcol(L, t, 0, 0, fn, NULL));
}

static int bp_id(lua_State *L)
{
    return aux_pushhandle(L, 1, aux_addcol(L, ORM_COL_ID, 0, 0, "id", "id"));
}

static int bp_string(lua_State *L)
{
    int len = aux_optint(L, 3, "string", "the length");
    if (!lua_isnoneornil(L, 3) && len <= 0)
        return orm_lua_argerror(L, "string: the length must be positive");
    return aux_pushhandle(L, 1,
                          aux_addcol(L, ORM_COL_STRING, len, 0, "string", NULL));
}

static int bp_decimal(lua_State *L)
{
    int p = aux_optint(L, 3, "decimal", "the precision");
    int s = aux_optint(L, 4, "decimal", "the scale");
    if (!lua_isnoneornil(L, 3) && p <= 0)
        return orm_lua_argerror(L, "decimal: the precision must be positive");
    return aux_pushhandle(L, 1,
                          aux_addcol(L, ORM_COL_DECIMAL, p, s, "decimal", NULL));
}

static int bp_text(lua_State *L) { return bp_column(L, ORM_COL_TEXT, "text"); }
static int bp_integer(lua_State *L)
{
    return bp_column(L, ORM_COL_INTEGER, "integer");
}
static int bp_big_integer(lua_State *L)
{
    return bp_column(L, ORM_COL_BIG_INTEGER, "big_integer");
}
static int bp_foreign_id(lua_State *L)
{
    return bp_column(L, ORM_COL_FOREIGN_ID, "foreign_id");
}
static int bp_number(lua_State *L)
{
    return bp_column(L, ORM_COL_NUMBER, "number");
}
static int bp_boolean(lua_State *L)
{
    return bp_column(L, ORM_COL_BOOLEAN, "boolean");
}
static int bp_json(lua_State *L) { return bp_column(L, ORM_COL_JSON, "json"); }
static int bp_date(lua_State *L) { return bp_column(L, ORM_COL_DATE, "date"); }
static int bp_datetime(lua_State *L)
{
    return bp_column(L, ORM_COL_DATETIME, "datetime");
}
static int bp_blob(lua_State *L) { return bp_column(L, ORM_COL_BLOB, "blob"); }

/* A nullable datetime column `name`. */
static int aux_nullable_datetime(lua_State *L, const char *name)
{
    bp_ud *u = aux_checkbp(L, 1);
    orm_error err;
    int op = -1;
    orm_error_clear(&err);
    aux_check(L, orm_schema_column(u->s, name, strlen(name), ORM_COL_DATETIME,
                                   0, 0, &op, &err), &err);
    aux_check(L, orm_schema_flag(u->s, op, ORM_SF_NULLABLE, 1, &err), &err);
    return op;
}

/* t:timestamps(): nullable created_at and updated_at. */
static int bp_timestamps(lua_State *L)
{
    aux_nullable_datetime(L, "created_at");
    aux_nullable_datetime(L, "updated_at");
    return 0;
}

/* t:soft_deletes(name?): a nullable deleted_at (or name). */
static int bp_soft_deletes(lua_State *L)
{
    size_t n;
    const char *name = lua_isnoneornil(L, 2)
                           ? "deleted_at"
                           : ls_name(L, 2, &n, "soft_deletes", "the column");
    return aux_pushhandle(L, 1, aux_nullable_datetime(L, name));
}

/* t:index(cols, name?) and friends. */
static int aux_key(lua_State *L, orm_sop_kind kind, const char *fn)
{
    bp_ud *u = aux_checkbp(L, 1);
    const char **cols;
    size_t *lens, nn = 0;
    const char *name = NULL;
    orm_error err;
    int n, op = -1;
    if (!lua_isnoneornil(L, 3))
        name = ls_name(L, 3, &nn, fn, "the name");
    n = ls_names(L, 2, fn, &cols, &lens);
    orm_error_clear(&err);
    aux_check(L, orm_schema_key(u->s, kind, cols, lens, n, name, nn, &op, &err),
              &err);
    return aux_pushhandle(L, 1, op);
}

static int bp_index(lua_State *L)
{
    return aux_key(L, ORM_SOP_INDEX, "index");
}
static int bp_unique(lua_State *L)
{
    return aux_key(L, ORM_SOP_UNIQUE, "unique");
}
static int bp_primary(lua_State *L)
{
    return aux_key(L, ORM_SOP_PRIMARY, "primary");
}
static int bp_foreign(lua_State *L)
{
    return aux_key(L, ORM_SOP_FOREIGN, "foreign");
}

static int bp_rename_column(lua_State *L)
{
    bp_ud *u = aux_checkbp(L, 1);
    size_t fn, tn;
    const char *from = ls_name(L, 2, &fn, "rename_column", "the column");
    const char *to = ls_name(L, 3, &tn, "rename_column", "the new name");
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_rename_column(u->s, from, fn, to, tn, &err), &err);
    return 0;
}

/* Drops by name (a string at idx 2) or, for keys, by a list of columns;
 * drop_column takes a name or a list of names. */
static int aux_drop(lua_State *L, orm_sop_kind kind, const char *fn)
{
    bp_ud *u = aux_checkbp(L, 1);
    const char **cols;
    size_t *lens;
    orm_error err;
    int i, n;
    orm_error_clear(&err);
    n = ls_names(L, 2, fn, &cols, &lens);
    if (kind == ORM_SOP_DROP_COLUMN) {
        for (i = 0; i < n; i++)
            aux_check(L, orm_schema_drop(u->s, kind, cols[i], lens[i], NULL,
                                         NULL, 0, &err), &err);
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        aux_check(L, orm_schema_drop(u->s, kind, cols[0], lens[0], NULL, NULL,
                                     0, &err), &err);
    } else {
        aux_check(L, orm_schema_drop(u->s, kind, NULL, 0, cols, lens, n, &err),
                  &err);
    }
    return 0;
}

static int bp_drop_column(lua_State *L)
{
    return aux_drop(L, ORM_SOP_DROP_COLUMN, "drop_column");
}
static int bp_drop_index(lua_State *L)
{
    return aux_drop(L, ORM_SOP_DROP_INDEX, "drop_index");
}
static int bp_drop_unique(lua_State *L)
{
    return aux_drop(L, ORM_SOP_DROP_UNIQUE, "drop_unique");
}
static int bp_drop_foreign(lua_State *L)
{
    return aux_drop(L, ORM_SOP_DROP_FOREIGN, "drop_foreign");
}

static int aux_drop_named(lua_State *L, const char *name)
{
    bp_ud *u = aux_checkbp(L, 1);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_drop(u->s, ORM_SOP_DROP_COLUMN, name, strlen(name),
                                 NULL, NULL, 0, &err), &err);
    return 0;
}

static int bp_drop_timestamps(lua_State *L)
{
    aux_drop_named(L, "created_at");
    return aux_drop_named(L, "updated_at");
}

static int bp_drop_soft_deletes(lua_State *L)
{
    size_t n;
    return aux_drop_named(L, lua_isnoneornil(L, 2)
                                 ? "deleted_at"
                                 : ls_name(L, 2, &n, "drop_soft_deletes",
                                            "the column"));
}

/* t:compile(dialect) -> { sql, ... } */
static int bp_compile(lua_State *L)
{
    bp_ud *u = aux_checkbp(L, 1);
    const orm_dialect *d = aux_dialect(L, 2);
    scratch_ud *x = aux_scratch(L);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_compile(u->s, d, &x->out, &err), &err);
    aux_pushsqls(L, &x->out);
    return 1;
}

/* t:table_name() */
static int bp_table_name(lua_State *L)
{
    lua_pushstring(L, orm_schema_table(aux_checkbp(L, 1)->s));
    return 1;
}

/* {==== column handles ====} */

/* The blueprint of the handle at 1 (pushed) and the handle's op. */
static orm_schema *aux_handle(lua_State *L, int *op)
{
    col_ud *c = luaL_checkudata(L, 1, ORM_LUA_COLUMN);
    bp_ud *u;
    lua_getiuservalue(L, 1, 1);
    u = aux_checkbp(L, -1);
    lua_pop(L, 1); /* the handle keeps the blueprint */
    *op = c->op;
    return u->s;
}

static int aux_flag(lua_State *L, int flag, int on)
{
    int op;
    orm_schema *s = aux_handle(L, &op);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_flag(s, op, flag, on, &err), &err);
    lua_settop(L, 1);
    return 1;
}

/* :nullable(on?) */
static int col_nullable(lua_State *L)
{
    return aux_flag(L, ORM_SF_NULLABLE,
                    lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2));
}
static int col_unique(lua_State *L)
{
    return aux_flag(L, ORM_SF_UNIQUE, 1);
}
static int col_index(lua_State *L)
{
    return aux_flag(L, ORM_SF_INDEX, 1);
}
static int col_primary(lua_State *L)
{
    return aux_flag(L, ORM_SF_PRIMARY, 1);
}
static int col_use_current(lua_State *L)
{
    return aux_flag(L, ORM_SF_USE_CURRENT, 1);
}

/* :default(v): nil / orm.null, boolean, number, string or orm.blob(s). */
static int col_default(lua_State *L)
{
    int op;
    orm_schema *s = aux_handle(L, &op);
    orm_value v;
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_lua_tovalue(L, 2, &v, &err), &err);
    aux_check(L, orm_schema_default(s, op, &v, &err), &err);
    lua_settop(L, 1);
    return 1;
}

static int aux_references(lua_State *L, const char *table, size_t tn,
                          int colidx)
{
    int op, n = 0;
    orm_schema *s = aux_handle(L, &op);
    const char **cols = NULL;
    size_t *lens = NULL;
    orm_error err;
    if (!lua_isnoneornil(L, colidx))
        n = ls_names(L, colidx, "references", &cols, &lens);
    orm_error_clear(&err);
    aux_check(L, orm_schema_references(s, op, table, tn, cols, lens, n, &err),
              &err);
    lua_settop(L, 1);
    return 1;
}

/* :references(table, column_or_columns?) */
static int col_references(lua_State *L)
{
    size_t tn;
    const char *t = ls_name(L, 2, &tn, "references", "the table");
    return aux_references(L, t, tn, 3);
}

/* :constrained(table?): references(table); without one the table is
 * guessed from a column named <singular>_id as <singular>s. */
static int col_constrained(lua_State *L)
{
    size_t tn, n;
    int op;
    orm_schema *s = aux_handle(L, &op);
    const char *name = orm_schema_op_name(s, op);
    if (!lua_isnoneornil(L, 2)) {
        const char *t = ls_name(L, 2, &tn, "constrained", "the table");
        return aux_references(L, t, tn, 3);
    }
    n = name ? strlen(name) : 0;
    if (orm_schema_op_kind(s, op) != ORM_SOP_COLUMN || n < 4 ||
        strcmp(name + n - 3, "_id") != 0)
        return orm_lua_argerror(L, "constrained: cannot guess the table of "
                                   "'%s' (give it: constrained(\"teams\"))",
                                name ? name : "?");
    lua_settop(L, 1);
    lua_pushlstring(L, name, n - 3);
    lua_pushliteral(L, "s");
    lua_concat(L, 2); /* at index 2 */
    name = lua_tolstring(L, 2, &tn);
    return aux_references(L, name, tn, 3);
}

static int aux_action(lua_State *L, int on_update, const char *fn)
{
    int op;
    orm_schema *s = aux_handle(L, &op);
    size_t n;
    const char *a = ls_name(L, 2, &n, fn, "the action");
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_fk_action(s, op, on_update, a, n, &err), &err);
    lua_settop(L, 1);
    return 1;
}

static int col_on_delete(lua_State *L)
{
    return aux_action(L, 0, "on_delete");
}
static int col_on_update(lua_State *L)
{
    return aux_action(L, 1, "on_update");
}

/* {==== other DDL, catalog, ledger ====} */

/* core.schema_drop(dialect, table, if_exists) */
static int schema_drop(lua_State *L)
{
    const orm_dialect *d = aux_dialect(L, 1);
    size_t n;
    const char *t = ls_name(L, 2, &n, "drop_table", "the table");
    int if_exists = lua_toboolean(L, 3);
    scratch_ud *x = aux_scratch(L);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_compile_drop(d, t, n, if_exists, &x->out, &err),
              &err);
    aux_pushsqls(L, &x->out);
    return 1;
}

/* core.schema_rename(dialect, from, to) */
static int schema_rename(lua_State *L)
{
    const orm_dialect *d = aux_dialect(L, 1);
    size_t fn, tn;
    const char *from = ls_name(L, 2, &fn, "rename_table", "the table");
    const char *to = ls_name(L, 3, &tn, "rename_table", "the new name");
    scratch_ud *x = aux_scratch(L);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_compile_rename(d, from, fn, to, tn, &x->out, &err),
              &err);
    aux_pushsqls(L, &x->out);
    return 1;
}

/* core.schema_drop_all(dialect, { table, ... }) -> statements, after */
static int schema_drop_all(lua_State *L)
{
    const orm_dialect *d = aux_dialect(L, 1);
    const char **names = NULL;
    size_t *lens = NULL;
    int n = 0;
    scratch_ud *x;
    orm_error err;
    luaL_checktype(L, 2, LUA_TTABLE);
    if (luaL_len(L, 2) > 0)
        n = ls_names(L, 2, "drop_all_tables", &names, &lens);
    x = aux_scratch(L);
    orm_error_clear(&err);
    aux_check(L, orm_schema_compile_drop_all(d, names, lens, n, &x->out,
                                             &x->after, &err), &err);
    aux_pushsqls(L, &x->out);
    aux_pushsqls(L, &x->after);
    return 2;
}

/* core.schema_catalog(dialect, what) -> sql */
static int schema_catalog(lua_State *L)
{
    static const char *const whats[] = {"has_table", "has_column", "has_index",
                                        "tables", "columns", NULL};
    const orm_dialect *d = aux_dialect(L, 1);
    int q = luaL_checkoption(L, 2, NULL, whats);
    lua_pushstring(L, orm_schema_catalog(d, (orm_catalog)q));
    return 1;
}

/* core.schema_key_name(dialect, name) -> the index or key name as the
 * schema builder writes it for that dialect */
static int schema_key_name(lua_State *L)
{
    const orm_dialect *d = aux_dialect(L, 1);
    size_t n;
    const char *name = ls_name(L, 2, &n, "has_index", "the index");
    char buf[256];
    if (n >= sizeof buf) {
        lua_pushvalue(L, 2);
        return 1;
    }
    n = orm_schema_key_name(d, name, buf, sizeof buf);
    lua_pushlstring(L, buf, n);
    return 1;
}

/* core.schema_ledger(dialect, table, what) -> sql */
static int schema_ledger(lua_State *L)
{
    static const char *const whats[] = {"select", "insert", "delete", NULL};
    const orm_dialect *d = aux_dialect(L, 1);
    size_t n;
    const char *t = ls_name(L, 2, &n, "ledger", "the table");
    int what = luaL_checkoption(L, 3, NULL, whats);
    scratch_ud *x = aux_scratch(L);
    orm_error err;
    orm_error_clear(&err);
    aux_check(L, orm_schema_ledger(d, t, n, (orm_ledger)what, &x->buf, &err),
              &err);
    lua_pushlstring(L, x->buf.p, x->buf.len);
    return 1;
}

/* {==== directories ====} */

static int dir_gc(lua_State *L)
{
    dir_ud *u = luaL_checkudata(L, 1, ORM_LUA_DIR);
    if (u->d != NULL)
        closedir(u->d);
    u->d = NULL;
    return 0;
}

/* core.list_dir(path) -> { name, ... } (no "." / ".."), or nil, message */
static int list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    dir_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    struct dirent *e;
    int i = 0;
    u->d = NULL;
    luaL_setmetatable(L, ORM_LUA_DIR);
    if ((u->d = opendir(path)) == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    while ((e = readdir(u->d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++i);
    }
    closedir(u->d);
    u->d = NULL;
    return 1;
}

/* {==== registration ====} */

static const luaL_Reg bp_methods[] = {
    {"id", bp_id},
    {"string", bp_string},
    {"text", bp_text},
    {"integer", bp_integer},
    {"big_integer", bp_big_integer},
    {"foreign_id", bp_foreign_id},
    {"number", bp_number},
    {"decimal", bp_decimal},
    {"boolean", bp_boolean},
    {"json", bp_json},
    {"date", bp_date},
    {"datetime", bp_datetime},
    {"blob", bp_blob},
    {"timestamps", bp_timestamps},
    {"soft_deletes", bp_soft_deletes},
    {"index", bp_index},
    {"unique", bp_unique},
    {"primary", bp_primary},
    {"foreign", bp_foreign},
    {"rename_column", bp_rename_column},
    {"drop_column", bp_drop_column},
    {"drop_index", bp_drop_index},
    {"drop_unique", bp_drop_unique},
    {"drop_foreign", bp_drop_foreign},
    {"drop_timestamps", bp_drop_timestamps},
    {"drop_soft_deletes", bp_drop_soft_deletes},
    {"compile", bp_compile},
    {"table_name", bp_table_name},
    {NULL, NULL},
};

static const luaL_Reg col_methods[] = {
    {"nullable", col_nullable},
    {"default", col_default},
    {"unique", col_unique},
    {"index", col_index},
    {"primary", col_primary},
    {"use_current", col_use_current},
    {"references", col_references},
    {"constrained", col_constrained},
    {"on_delete", col_on_delete},
    {"on_update", col_on_update},
    {NULL, NULL},
};

static const luaL_Reg schema_funcs[] = {
    {"schema_blueprint", schema_blueprint},
    {"schema_drop", schema_drop},
    {"schema_rename", schema_rename},
    {"schema_key_name", schema_key_name},
    {"schema_drop_all", schema_drop_all},
    {"schema_catalog", schema_catalog},
    {"schema_ledger", schema_ledger},
    {"list_dir", list_dir},
    {NULL, NULL},
};

void orm_lua_open_schema(lua_State *L)
{
    orm_lua_newclass(L, ORM_LUA_BLUEPRINT, bp_methods, bp_gc);
    orm_lua_newclass(L, ORM_LUA_COLUMN, col_methods, NULL);
    orm_lua_newclass(L, ORM_LUA_SCRATCH, NULL, ls_scratch_gc);
    orm_lua_newclass(L, ORM_LUA_DIR, NULL, dir_gc);
    luaL_setfuncs(L, schema_funcs, 0);
}
