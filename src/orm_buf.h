/*
 * orm_buf.h: a growable byte buffer, used to build SQL text.
 * Appends never fail half-way: on out-of-memory the buffer records the
 * failure (b->oom = 1), later appends do nothing, and the caller checks once.
 */
#ifndef ORM_BUF_H
#define ORM_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct orm_buf {
    char *p;     /* bytes, always NUL-terminated when len > 0 or after init */
    size_t len;  /* bytes in use, not counting the NUL */
    size_t cap;  /* allocated bytes */
    int oom;     /* 1 after an allocation failed */
} orm_buf;

void orm_buf_init(orm_buf *b);
void orm_buf_free(orm_buf *b);                 /* NULL is fine */
void orm_buf_reset(orm_buf *b);                /* len = 0, keeps memory */
void orm_buf_add(orm_buf *b, const char *p, size_t n);
void orm_buf_adds(orm_buf *b, const char *s);  /* NUL-terminated */
void orm_buf_addc(orm_buf *b, char c);
void orm_buf_addi(orm_buf *b, int64_t i);      /* decimal */
void orm_buf_addf(orm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends `id` quoted with `q` ('"' or '`'), doubling any embedded q.
 * Returns 0, or -1 when id is empty or contains a NUL byte (nothing appended). */
int orm_buf_add_ident(orm_buf *b, const char *id, size_t n, char q);

#endif
