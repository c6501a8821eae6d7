/*
 * orm_sqls.c: the list of SQL statements the schema builder produces
 * (orm_sqls in orm_schema.h): owned copies, grown and moved.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orm_schema_int.h"

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
int orm_sqls_reserve(orm_sqls *l, int more)
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
int orm_sqls_push(orm_sqls *l, const char *p, size_t n)
{
    char *s;
    if (orm_sqls_reserve(l, 1) != 0 || (s = malloc(n + 1)) == NULL)
        return -1;
    memcpy(s, p, n);
    s[n] = '\0';
    l->v[l->n] = s;
    l->len[l->n++] = n;
    return 0;
}

/* Moves every statement of `from` to the end of `to`; `from` ends empty.
 * 0, or -1 with both lists unchanged. */
int orm_sqls_move(orm_sqls *to, orm_sqls *from)
{
    int i;
    if (orm_sqls_reserve(to, from->n) != 0)
        return -1;
    for (i = 0; i < from->n; i++) {
        to->v[to->n] = from->v[i];
        to->len[to->n++] = from->len[i];
    }
    from->n = 0;
    orm_sqls_free(from);
    return 0;
}
