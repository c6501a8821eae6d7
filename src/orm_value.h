/*
 * orm_value.h: the tagged SQL value that crosses every layer of the engine
 * (null, bool, int64, double, text, blob) and the value list that owns copies.
 */
#ifndef ORM_VALUE_H
#define ORM_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum orm_vtype {
    ORM_NULL = 0,
    ORM_BOOL,
    ORM_INT,
    ORM_DOUBLE,
    ORM_TEXT,
    ORM_BLOB
} orm_vtype;

typedef struct orm_value {
    orm_vtype type;
    union {
        int b;       /* ORM_BOOL: 0 or 1 */
        int64_t i;   /* ORM_INT */
        double d;    /* ORM_DOUBLE */
        struct {
            const char *p; /* ORM_TEXT / ORM_BLOB: bytes, not NUL-terminated */
            size_t n;      /* length in bytes */
        } s;
    } u;
} orm_value;

/* A growable list of values. Text and blob bytes pushed with orm_vlist_push
 * are copied and owned by the list; orm_vlist_push_ref borrows them. */
typedef struct orm_vlist {
    orm_value *v;         /* the values */
    unsigned char *owned; /* owned[i] != 0 when v[i].u.s.p is the list's copy */
    int n;                /* values in use */
    int cap;              /* allocated slots */
} orm_vlist;

/* Value constructors: plain struct literals, no allocation (inline: every
 * value read or bound goes through one). */
static inline orm_value orm_value_null(void)
{
    orm_value v = {ORM_NULL, {.s = {NULL, 0}}}; /* the whole union zero */
    return v;
}

static inline orm_value orm_value_bool(int b)
{
    orm_value v = {ORM_BOOL, {.b = b != 0}};
    return v;
}

static inline orm_value orm_value_int(int64_t i)
{
    orm_value v = {ORM_INT, {.i = i}};
    return v;
}

static inline orm_value orm_value_double(double d)
{
    orm_value v = {ORM_DOUBLE, {.d = d}};
    return v;
}

static inline orm_value orm_value_text(const char *p, size_t n)
{
    orm_value v = {ORM_TEXT, {.s = {p, n}}};
    return v;
}

static inline orm_value orm_value_blob(const char *p, size_t n)
{
    orm_value v = {ORM_BLOB, {.s = {p, n}}};
    return v;
}

/* Makes an empty list; never fails. */
void orm_vlist_init(orm_vlist *l);

/* Appends a copy of *v (text/blob bytes copied). Returns 0, or -1 when out of
 * memory, in which case the list is unchanged. */
int orm_vlist_push(orm_vlist *l, const orm_value *v);

/* Appends *v borrowing its bytes: they must outlive the list's use.
 * Returns 0, or -1 when out of memory (list unchanged). */
int orm_vlist_push_ref(orm_vlist *l, const orm_value *v);

/* Appends the n values at v borrowing their bytes, as n calls of
 * orm_vlist_push_ref would. Returns 0, or -1 when out of memory (list
 * unchanged). */
int orm_vlist_push_refs(orm_vlist *l, const orm_value *v, int n);

/* Drops every value (freeing owned bytes) but keeps the allocation. */
void orm_vlist_clear(orm_vlist *l);

/* Frees everything; the list is empty and reusable afterwards. NULL is fine. */
void orm_vlist_free(orm_vlist *l);

#endif
