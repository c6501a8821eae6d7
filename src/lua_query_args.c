/*
 * lua_query_args.c: how query methods read their Lua arguments: strings,
 * operators, values, integers, lists, the sorted keys of a table, and the
 * dialect a to_sql is for. Each raises orm.Error invalid_argument naming
 * the method.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_query.h"

/* The string at idx. Without n the caller reads it as a C string, so one
 * holding a NUL byte (which would end it early) is refused. */
const char *lq_str(lua_State *L, int idx, const char *fname,
                   const char *what, size_t *n)
{
    size_t len;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        orm_lua_argerror(L, "%s: %s must be a string, got %s", fname, what,
                         luaL_typename(L, idx));
    s = lua_tolstring(L, idx, &len);
    if (n != NULL)
        *n = len;
    else if (strlen(s) != len)
        orm_lua_argerror(L, "%s: %s contains a NUL byte", fname, what);
    return s;
}

orm_qop lq_op(lua_State *L, int idx, const char *fname)
{
    size_t n;
    const char *s = lq_str(L, idx, fname, "operator", &n);
    int op = orm_query_op_parse(s, n);
    if (op < 0)
        orm_lua_argerror(L, "%s: operator must be one of %s, got '%.*s'",
                         fname, orm_query_op_names(), (int)(n > 32 ? 32 : n),
                         s);
    return (orm_qop)op;
}

void lq_value(lua_State *L, int idx, const char *fname, orm_value *v)
{
    orm_error err;
    if (orm_lua_tovalue(L, idx, v, &err) != ORM_OK)
        orm_lua_argerror(L, "%s: %s", fname, err.message);
}

/* Integer argument >= min; nil gives dflt. */
lua_Integer lq_int(lua_State *L, int idx, const char *fname,
                   const char *what, lua_Integer min,
                   lua_Integer dflt)
{
    int ok = 0;
    lua_Integer n;
    if (lua_isnoneornil(L, idx))
        return dflt;
    n = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &ok) : 0;
    if (!ok || n < min)
        orm_lua_argerror(L, "%s: %s must be an integer >= %d", fname, what,
                         (int)min);
    return n;
}

/* The length of the plain list at idx (keys exactly 1..n), or -1. */
int lq_list_len(lua_State *L, int idx)
{
    lua_Integer n, count = 0;
    if (!lua_istable(L, idx))
        return -1;
    n = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    return count == n && n <= 0x7fffffff ? (int)n : -1;
}

int lq_list_read(lua_State *L, int idx, orm_value *small, int nsmall,
                 orm_value **out, const char *fname)
{
    lua_Integer n, count = 0;
    orm_value *v;
    if (!lua_istable(L, idx))
        return -1;
    n = (lua_Integer)lua_rawlen(L, idx);
    if (n > 0x7fffffff)
        return -1;
    v = lq_values(L, (int)n, small, nsmall);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* one pass: the keys, and each value */
        lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
        if (k < 1 || k > n) {
            lua_pop(L, 2);
            return -1;
        }
        lq_value(L, -1, fname, &v[k - 1]);
        lua_pop(L, 1); /* the list keeps strings alive */
        count++;
    }
    if (count != n)
        return -1;
    *out = v;
    return (int)n;
}

/* Room for n values: `small` when it fits, else a userdata pushed on the
 * stack (collected with it). */
orm_value *lq_values(lua_State *L, int n, orm_value *small, int nsmall)
{
    if (n <= nsmall)
        return small;
    return lua_newuserdatauv(L, sizeof(orm_value) * (size_t)n, 0);
}

/* Converts list[1..n] into v. */
void lq_list_values(lua_State *L, int idx, int n, orm_value *v,
                    const char *fname)
{
    int i;
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        lq_value(L, -1, fname, &v[i]);
        lua_pop(L, 1); /* the list keeps strings alive */
    }
}


static int lq_key_cmp(const void *pa, const void *pb)
{
    const lq_key *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (c != 0)
        return c;
    return (a->n > b->n) - (a->n < b->n);
}

/* The string keys of table t, sorted (a userdata pushed on the stack;
 * the table keeps the strings alive). Integer keys are skipped when
 * skip_ints is set; any other key raises. */
lq_key *lq_keys(lua_State *L, int t, int skip_ints, int *n,
                const char *fname)
{
    int count = 0;
    lq_key *k;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            count++;
        else if (!(skip_ints && lua_isinteger(L, -1)))
            orm_lua_argerror(L, "%s: column name must be a string, got %s",
                             fname, luaL_typename(L, -1));
    }
    k = lua_newuserdatauv(L, sizeof *k * (size_t)(count ? count : 1), 0);
    count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            k[count].s = lua_tolstring(L, -1, &k[count].n);
            count++;
        }
    }
    qsort(k, (size_t)count, sizeof *k, lq_key_cmp);
    *n = count;
    return k;
}

/* The dialect named or carried by the value at idx (nil = sqlite). */
const orm_dialect *lq_dialect(lua_State *L, int idx)
{
    const orm_driver *d;
    const char *name = "sqlite";
    if (lua_type(L, idx) == LUA_TUSERDATA)
        return orm_lua_target_dialect(L, idx);
    if (!lua_isnoneornil(L, idx))
        name = lq_str(L, idx, "to_sql", "dialect", NULL);
    d = orm_driver_find(name);
    if (d == NULL)
        orm_lua_argerror(L, "to_sql: unknown dialect '%s' (sqlite, postgres, "
                            "mysql)", name);
    return d->dialect;
}

void lq_source_dialect(lua_State *L)
{
    if (!lua_isnoneornil(L, 2))
        return;
    lua_settop(L, 1);
    lq_push_source(L, 1);
    if (lua_type(L, 2) != LUA_TTABLE)
        return; /* nil: sqlite, as for a bare query */
    if (lua_getfield(L, 2, "_dialect_name") == LUA_TSTRING) {
        lua_replace(L, 2);
        return;
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "_target");
    lua_insert(L, 2);         /* _target source */
    lua_pushboolean(L, 0);
    lua_call(L, 2, 1);        /* the target */
}
