/*
 * orm_buf.h: a growable byte buffer, used to build SQL text.
 * Appends never fail half-way: on out-of-memory the buffer records the
 * failure (b->oom = 1), later appends do nothing, and the caller checks once.
 */
#ifndef ORM_BUF_H
#define ORM_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct orm_buf {
    char *p;     /* bytes, always NUL-terminated when len > 0 or after init */
    size_t len;  /* bytes in use, not counting the NUL */
    size_t cap;  /* allocated bytes */
    int oom;     /* 1 after an allocation failed */
} orm_buf;

void orm_buf_init(orm_buf *b);
void orm_buf_free(orm_buf *b);                 /* NULL is fine */
void orm_buf_reset(orm_buf *b);                /* len = 0, keeps memory */
void orm_buf_addi(orm_buf *b, int64_t i);      /* decimal */

/* Makes room for n more bytes and the NUL: 0, or -1 (oom set; after a
 * failure cap is 0, so every later append comes here and does nothing). */
int orm_buf_grow(orm_buf *b, size_t n);

/* Appends n bytes (inline: SQL is built a few bytes at a time). */
static inline void orm_buf_add(orm_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap && orm_buf_grow(b, n) != 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends a NUL-terminated string. */
static inline void orm_buf_adds(orm_buf *b, const char *s)
{
    orm_buf_add(b, s, strlen(s));
}

/* Appends q, the n bytes of s, q: a name known to hold no q. */
static inline void orm_buf_add_quoted(orm_buf *b, const char *s, size_t n,
                                      char q)
{
    if (b->len + n + 3 > b->cap && orm_buf_grow(b, n + 2) != 0)
        return;
    b->p[b->len] = q;
    memcpy(b->p + b->len + 1, s, n);
    b->p[b->len + n + 1] = q;
    b->len += n + 2;
    b->p[b->len] = '\0';
}

static inline void orm_buf_addc(orm_buf *b, char c)
{
    if (b->len + 2 > b->cap && orm_buf_grow(b, 1) != 0)
        return;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}
void orm_buf_addf(orm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends `id` quoted with `q` ('"' or '`'), doubling any embedded q.
 * Returns 0, or -1 when id is empty or contains a NUL byte (nothing appended). */
int orm_buf_add_ident(orm_buf *b, const char *id, size_t n, char q);

#endif
