/*
 * orm_error.h: the engine's error value. Every fallible engine and driver
 * function returns an int (0 = ORM_OK, otherwise the orm_kind) and fills an
 * orm_error; only src/lua_*.c turns it into a Lua orm.Error.
 */
#ifndef ORM_ERROR_H
#define ORM_ERROR_H

typedef enum orm_kind {
    ORM_OK = 0,
    ORM_E_QUERY,              /* "query": syntax error, unknown table, ... */
    ORM_E_UNIQUE,             /* "unique_violation" */
    ORM_E_FOREIGN_KEY,        /* "foreign_key_violation" */
    ORM_E_NOT_NULL,           /* "not_null_violation" */
    ORM_E_CONNECTION_FAILED,  /* "connection_failed": could not open */
    ORM_E_CONNECTION_LOST,    /* "connection_lost": dropped mid-use */
    ORM_E_POOL_TIMEOUT,       /* "pool_timeout" */
    ORM_E_INVALID_ARGUMENT,   /* "invalid_argument": refused before sending */
    ORM_E_NOT_INITIALIZED,    /* "not_initialized": closed pool / disposed */
    ORM_E_NOMEM,              /* "out_of_memory" */
    ORM_E_TX_ABORTED,         /* "transaction_aborted": COMMIT rolled back */
    ORM_E_QUERY_TIMEOUT       /* "query_timeout": statement_timeout ran out;
                                 the server cancelled the statement */
} orm_kind;

#define ORM_ERROR_MSG_MAX 512

typedef struct orm_error {
    orm_kind kind;                     /* ORM_OK when no error */
    int code;                          /* driver's native code, 0 if none */
    char sqlstate[6];                  /* five characters + NUL, "" if none */
    char message[ORM_ERROR_MSG_MAX];   /* one readable line, no password */
} orm_error;

/* The snake_case name used for orm.Error.kind ("unique_violation", ...). */
const char *orm_error_kind_name(orm_kind k);

/* Resets *e to ORM_OK with empty fields. */
void orm_error_clear(orm_error *e);

/* Fills *e with kind k and a printf-formatted message (truncated to fit),
 * with code 0 and no sqlstate (set those after). Returns k, so callers can write
 * `return orm_error_set(err, ORM_E_QUERY, "...")`. */
int orm_error_set(orm_error *e, orm_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets e->sqlstate from s (first five characters; NULL or short clears it). */
void orm_error_set_sqlstate(orm_error *e, const char *s);

/* The kind a standard SQLSTATE denotes (23505 unique, 23503 foreign key,
 * 23502 not null, class 08 connection lost, 57P01..03 connection lost);
 * `fallback` for anything else or NULL. */
orm_kind orm_error_kind_from_sqlstate(const char *s, orm_kind fallback);

/* Keeps a password out of e->message, replacing it with "***":
 * - wherever the message gives a password as one: the value of every
 *   "password=" (conninfo syntax, quoted or not) and the password of every
 *   URL ("scheme://user:password@host"), whatever `secret` is;
 * - and, when `secret` has at least 8 bytes, every other occurrence of it,
 *   unless it equals one of the `nshown` strings of `shown` (user, host,
 *   database: NULL entries skipped), which the message may show as
 *   themselves. A shorter password is not replaced elsewhere: it would
 *   collide with words and names, garble the message and, through the ***
 *   pattern, tell what the password is.
 * When the rewritten message would not fit, it is cut (never the redaction). */
void orm_error_redact(orm_error *e, const char *secret,
                      const char *const *shown, int nshown);

#endif
