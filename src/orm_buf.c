/*
 * orm_buf.c: the growable byte buffer that SQL text is built in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orm_buf.h"

void orm_buf_init(orm_buf *b)
{
    memset(b, 0, sizeof *b);
}

void orm_buf_free(orm_buf *b)
{
    if (b == NULL)
        return;
    free(b->p);
    orm_buf_init(b);
}

void orm_buf_reset(orm_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p)
        b->p[0] = '\0';
}

int orm_buf_grow(orm_buf *b, size_t n)
{
    size_t cap;
    char *p;
    if (b->oom)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 128;
    while (cap < b->len + n + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        b->cap = 0; /* every later append takes the slow path, and stops */
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void orm_buf_addi(orm_buf *b, int64_t i)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    orm_buf_add(b, tmp, (size_t)n);
}

void orm_buf_addf(orm_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || orm_buf_grow(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int orm_buf_add_ident(orm_buf *b, const char *id, size_t n, char q)
{
    size_t i, start;
    if (n == 0 || memchr(id, '\0', n) != NULL)
        return -1;
    if (memchr(id, q, n) == NULL) { /* the usual name: one copy */
        orm_buf_add_quoted(b, id, n, q);
        return 0;
    }
    orm_buf_addc(b, q);
    for (start = 0, i = 0; i < n; i++) {
        if (id[i] == q) {
            orm_buf_add(b, id + start, i - start + 1);
            orm_buf_addc(b, q);
            start = i + 1;
        }
    }
    orm_buf_add(b, id + start, n - start);
    orm_buf_addc(b, q);
    return 0;
}
