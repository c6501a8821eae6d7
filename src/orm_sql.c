/*
 * orm_sql.c: rewrites the portable `?` placeholder of raw SQL into the
 * dialect's style, skipping quoted text and comments.
 */
#include <string.h>

#include "orm_sql.h"

/* Length of the quoted run starting at sql[i] (which is q), closing quotes
 * doubled inside count as part of it. */
static size_t sql_quoted(const char *sql, size_t len, size_t i, char q)
{
    size_t j = i + 1;
    while (j < len) {
        if (sql[j] == q) {
            if (j + 1 < len && sql[j + 1] == q) {
                j += 2;
                continue;
            }
            return j + 1 - i;
        }
        j++;
    }
    return len - i;
}

/* Length of a comment starting at sql[i], or 0 when none starts there. */
static size_t sql_comment(const char *sql, size_t len, size_t i)
{
    const char *end;
    if (i + 1 >= len)
        return 0;
    if (sql[i] == '-' && sql[i + 1] == '-') {
        end = memchr(sql + i, '\n', len - i);
        return end ? (size_t)(end - (sql + i)) + 1 : len - i;
    }
    if (sql[i] == '/' && sql[i + 1] == '*') {
        size_t j;
        for (j = i + 2; j + 1 < len; j++)
            if (sql[j] == '*' && sql[j + 1] == '/')
                return j + 2 - i;
        return len - i;
    }
    return 0;
}

/* Length of a PostgreSQL $tag$...$tag$ string at sql[i], or 0. */
static size_t sql_dollar(const char *sql, size_t len, size_t i)
{
    size_t t = i + 1, j;
    while (t < len && (sql[t] == '_' || (sql[t] >= 'a' && sql[t] <= 'z') ||
                       (sql[t] >= 'A' && sql[t] <= 'Z')))
        t++;
    if (t >= len || sql[t] != '$')
        return 0;
    for (j = t + 1; j + (t - i) < len; j++)
        if (memcmp(sql + j, sql + i, t - i + 1) == 0)
            return j + (t - i + 1) - i;
    return len - i;
}

static size_t sql_skip(const char *sql, size_t len, size_t i, int pg)
{
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`')
        return sql_quoted(sql, len, i, c);
    if (c == '-' || c == '/')
        return sql_comment(sql, len, i);
    if (c == '$' && pg && (i == 0 || !(sql[i - 1] == '_' ||
                                       (sql[i - 1] >= 'a' && sql[i - 1] <= 'z') ||
                                       (sql[i - 1] >= 'A' && sql[i - 1] <= 'Z') ||
                                       (sql[i - 1] >= '0' && sql[i - 1] <= '9'))))
        return sql_dollar(sql, len, i);
    return 0;
}

int orm_sql_placeholders(const char *sql, size_t len, const orm_dialect *d,
                         int first, orm_buf *out)
{
    int pg = d->placeholder == ORM_PH_DOLLAR, n = 0;
    size_t i = 0, start = 0;
    while (i < len) {
        size_t skip = sql_skip(sql, len, i, pg);
        if (skip > 0) {
            i += skip;
            continue;
        }
        if (sql[i] != '?') {
            i++;
            continue;
        }
        orm_buf_add(out, sql + start, i - start);
        if (i + 1 < len && sql[i + 1] == '?') {
            orm_buf_addc(out, '?');
            i += 2;
        } else {
            if (pg) {
                orm_buf_addc(out, '$');
                orm_buf_addi(out, first + n);
            } else
                orm_buf_addc(out, '?');
            n++;
            i++;
        }
        start = i;
    }
    orm_buf_add(out, sql + start, len - start);
    return n;
}
