/*
 * orm_error.c: filling, classifying and redacting the engine's error value.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* Below this many bytes a password is redacted only where it is given as
 * one (password=..., scheme://user:password@): a short password collides
 * with names and words of the message, and replacing those would garble it
 * and, through the *** pattern, tell what the password is. */
#define ERROR_REDACT_MIN 8

/* The message being rewritten: out holds what is kept so far. */
typedef struct error_rewrite {
    char out[ORM_ERROR_MSG_MAX];
    size_t n;
    int cut; /* out of room: the rest of the message was dropped */
} error_rewrite;

/* Appends n bytes of s to w.out (dropping the rest once full). */
static void error_put(error_rewrite *w, const char *s, size_t n)
{
    if (w->cut)
        return;
    if (w->n + n >= sizeof w->out) {
        w->cut = 1;
        return;
    }
    memcpy(w->out + w->n, s, n);
    w->n += n;
}

/* Replaces e->message with what w kept. */
static void error_rewrite_done(error_rewrite *w, orm_error *e)
{
    w->out[w->n] = '\0';
    memcpy(e->message, w->out, w->n + 1);
}

static int error_is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* The end of a conninfo value starting at v: a quoted one runs to its
 * closing quote (backslash escapes), a plain one to white space, less a
 * closing quote of the text around it. */
static const char *error_value_end(const char *v)
{
    const char *p = v;
    if (*p == '\'') {
        for (p++; *p && *p != '\''; p++)
            if (*p == '\\' && p[1])
                p++;
        return *p ? p + 1 : p;
    }
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (p - v > 1 && (p[-1] == '"' || p[-1] == '\''))
        p--;
    return p;
}

/* If s starts a "password = value" fragment (case-insensitive, not inside
 * a longer word), the start of the value; else NULL. */
static const char *error_password_value(const char *msg, const char *s)
{
    const char *p = s + 8;
    if (strncasecmp(s, "password", 8) != 0 ||
        (s > msg && error_is_word(s[-1])))
        return NULL;
    while (*p == ' ')
        p++;
    if (*p != '=')
        return NULL;
    for (p++; *p == ' ';)
        p++;
    return p;
}

/* If s starts "://user:password@", the span of the password ([*a, *b));
 * the userinfo ends at the last '@' before white space or a quote. */
static int error_url_password(const char *s, const char **a, const char **b)
{
    const char *p = s + 3, *at = NULL, *colon = NULL;
    if (strncmp(s, "://", 3) != 0)
        return 0;
    for (; *p && !isspace((unsigned char)*p) && *p != '"' && *p != '\'';
         p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return 0;
    colon = memchr(s + 3, ':', (size_t)(at - (s + 3)));
    if (colon == NULL || colon + 1 == at)
        return 0;
    *a = colon + 1;
    *b = at;
    return 1;
}

/* Pass 1: the password wherever it is given as one. */
static void error_redact_fragments(orm_error *e)
{
    error_rewrite w = {{0}, 0, 0};
    const char *p = e->message, *a, *b;
    while (*p) {
        if ((a = error_password_value(e->message, p)) != NULL && *a) {
            b = error_value_end(a);
            error_put(&w, p, (size_t)(a - p));
            error_put(&w, "***", 3);
            p = b;
        } else if (error_url_password(p, &a, &b)) {
            error_put(&w, p, (size_t)(a - p));
            error_put(&w, "***", 3);
            p = b;
        } else {
            error_put(&w, p, 1);
            p++;
        }
    }
    error_rewrite_done(&w, e);
}

/* Pass 2: every occurrence of secret. When the message has no room left,
 * it is cut before the secret. */
static void error_redact_all(orm_error *e, const char *secret)
{
    error_rewrite w = {{0}, 0, 0};
    size_t sn = strlen(secret);
    const char *p = e->message, *hit;
    while ((hit = strstr(p, secret)) != NULL) {
        error_put(&w, p, (size_t)(hit - p));
        error_put(&w, "***", 3);
        p = hit + sn;
    }
    error_put(&w, p, strlen(p));
    error_rewrite_done(&w, e);
}

void orm_error_redact(orm_error *e, const char *secret,
                      const char *const *shown, int nshown)
{
    int i;
    error_redact_fragments(e);
    if (secret == NULL || strlen(secret) < ERROR_REDACT_MIN)
        return;
    for (i = 0; i < nshown; i++)
        if (shown[i] != NULL && strcmp(shown[i], secret) == 0)
            return;
    error_redact_all(e, secret);
}
