/*
 * orm_value.c: the value list that owns copies of text and blob bytes (the
 * value constructors are inline in orm_value.h).
 */
#include <stdlib.h>
#include <string.h>

#include "orm_value.h"

void orm_vlist_init(orm_vlist *l)
{
    memset(l, 0, sizeof *l);
}

/* Makes room for `more` values. Returns 0 or -1 (list unchanged). */
static int vlist_reserve(orm_vlist *l, int more)
{
    int cap;
    orm_value *v;
    unsigned char *owned;
    if (more <= l->cap - l->n)
        return 0;
    cap = l->cap ? l->cap * 2 : 8;
    while (cap - l->n < more)
        cap *= 2;
    v = realloc(l->v, (size_t)cap * sizeof *v);
    if (v == NULL)
        return -1;
    l->v = v;
    owned = realloc(l->owned, (size_t)cap);
    if (owned == NULL)
        return -1;
    l->owned = owned;
    l->cap = cap;
    return 0;
}

static int vlist_grow(orm_vlist *l)
{
    return vlist_reserve(l, 1);
}

static int vlist_append(orm_vlist *l, const orm_value *v, int copy)
{
    orm_value nv = *v;
    int owns = 0;
    if (vlist_grow(l) != 0)
        return -1;
    if (copy && (v->type == ORM_TEXT || v->type == ORM_BLOB)) {
        char *p = malloc(v->u.s.n + 1);
        if (p == NULL)
            return -1;
        if (v->u.s.n)
            memcpy(p, v->u.s.p, v->u.s.n);
        p[v->u.s.n] = '\0';
        nv.u.s.p = p;
        owns = 1;
    }
    l->v[l->n] = nv;
    l->owned[l->n] = (unsigned char)owns;
    l->n++;
    return 0;
}

int orm_vlist_push(orm_vlist *l, const orm_value *v)
{
    return vlist_append(l, v, 1);
}

int orm_vlist_push_ref(orm_vlist *l, const orm_value *v)
{
    return vlist_append(l, v, 0);
}

int orm_vlist_push_refs(orm_vlist *l, const orm_value *v, int n)
{
    if (n <= 0)
        return 0;
    if (vlist_reserve(l, n) != 0)
        return -1;
    memcpy(l->v + l->n, v, (size_t)n * sizeof *v);
    memset(l->owned + l->n, 0, (size_t)n);
    l->n += n;
    return 0;
}

void orm_vlist_clear(orm_vlist *l)
{
    int i;
    for (i = 0; i < l->n; i++)
        if (l->owned[i])
            free((void *)l->v[i].u.s.p);
    l->n = 0;
}

void orm_vlist_free(orm_vlist *l)
{
    if (l == NULL)
        return;
    orm_vlist_clear(l);
    free(l->v);
    free(l->owned);
    orm_vlist_init(l);
}
