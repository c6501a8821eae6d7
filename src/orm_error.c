/*
 * orm_error.c: filling, classifying and redacting the engine's error value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "orm_error.h"

static const char *const error_names[] = {
    "ok",
    "query",
    "unique_violation",
    "foreign_key_violation",
    "not_null_violation",
    "connection_failed",
    "connection_lost",
    "pool_timeout",
    "invalid_argument",
    "not_initialized",
    "out_of_memory",
    "transaction_aborted",
    "query_timeout",
};

const char *orm_error_kind_name(orm_kind k)
{
    if ((int)k < 0 || (size_t)k >= sizeof error_names / sizeof error_names[0])
        return "query";
    return error_names[k];
}

void orm_error_clear(orm_error *e)
{
    e->kind = ORM_OK;
    e->code = 0;
    e->sqlstate[0] = '\0';
    e->message[0] = '\0';
}

/* Folds the message onto one line: newlines and tabs become spaces, and
 * trailing white space goes. */
static void error_one_line(char *m)
{
    size_t n;
    for (n = 0; m[n]; n++)
        if (m[n] == '\n' || m[n] == '\r' || m[n] == '\t')
            m[n] = ' ';
    while (n > 0 && m[n - 1] == ' ')
        m[--n] = '\0';
}

int orm_error_set(orm_error *e, orm_kind k, const char *fmt, ...)
{
    va_list ap;
    e->kind = k;
    e->code = 0;
    e->sqlstate[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    error_one_line(e->message);
    return k;
}

void orm_error_set_sqlstate(orm_error *e, const char *s)
{
    if (s == NULL || strlen(s) < 5) {
        e->sqlstate[0] = '\0';
        return;
    }
    memcpy(e->sqlstate, s, 5);
    e->sqlstate[5] = '\0';
}

orm_kind orm_error_kind_from_sqlstate(const char *s, orm_kind fallback)
{
    if (s == NULL || strlen(s) < 5)
        return fallback;
    if (strncmp(s, "23505", 5) == 0)
        return ORM_E_UNIQUE;
    if (strncmp(s, "23503", 5) == 0)
        return ORM_E_FOREIGN_KEY;
    if (strncmp(s, "23502", 5) == 0)
        return ORM_E_NOT_NULL;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0)
        return ORM_E_CONNECTION_LOST;
    return fallback;
}

void orm_error_redact(orm_error *e, const char *secret)
{
    char out[ORM_ERROR_MSG_MAX];
    size_t sn, o = 0;
    const char *p = e->message, *hit;
    if (secret == NULL || *secret == '\0')
        return;
    sn = strlen(secret);
    while ((hit = strstr(p, secret)) != NULL) {
        size_t pre = (size_t)(hit - p);
        if (o + pre + 3 >= sizeof out) {
            /* no room for the rest: cut the message before the secret */
            pre = o + pre < sizeof out - 1 ? pre : sizeof out - 1 - o;
            memcpy(out + o, p, pre);
            out[o + pre] = '\0';
            memcpy(e->message, out, sizeof out);
            return;
        }
        memcpy(out + o, p, pre);
        memcpy(out + o + pre, "***", 3);
        o += pre + 3;
        p = hit + sn;
    }
    snprintf(out + o, sizeof out - o, "%s", p);
    memcpy(e->message, out, sizeof out);
}
