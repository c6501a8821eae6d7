/*
 * orm_sql.c: rewrites the portable `?` placeholder of raw SQL into the
 * dialect's style, skipping quoted text and comments the way the dialect
 * reads them (orm_dialect's scanning facts).
 */
#include <string.h>

#include "orm_sql.h"

static int sql_word_char(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (unsigned char)c >= 0x80;
}

/* Length of the quoted run starting at sql[i] (which is q): a doubled
 * closing quote is part of it, and so is a character after a backslash
 * when bs is set. Unterminated: the rest of the text. */
static size_t sql_quoted(const char *sql, size_t len, size_t i, char q, int bs)
{
    size_t j = i + 1;
    while (j < len) {
        if (bs && sql[j] == '\\') {
            j += 2;
            continue;
        }
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

/* Length of a block comment at sql[i] ("/" "*"), nested when asked. */
static size_t sql_block(const char *sql, size_t len, size_t i, int nested)
{
    size_t j = i + 2;
    int depth = 1;
    while (j + 1 < len) {
        if (sql[j] == '*' && sql[j + 1] == '/') {
            j += 2;
            if (--depth == 0)
                return j - i;
        } else if (nested && sql[j] == '/' && sql[j + 1] == '*') {
            j += 2;
            depth++;
        } else
            j++;
    }
    return len - i;
}

/* Length of a line comment at sql[i]. */
static size_t sql_line(const char *sql, size_t len, size_t i)
{
    const char *end = memchr(sql + i, '\n', len - i);
    return end ? (size_t)(end - (sql + i)) + 1 : len - i;
}

/* Length of a $tag$...$tag$ string at sql[i], or 0. */
static size_t sql_dollar(const char *sql, size_t len, size_t i)
{
    size_t t = i + 1, j;
    if (t < len && sql[t] >= '0' && sql[t] <= '9')
        return 0; /* $1: a parameter */
    while (t < len && sql[t] != '$' && sql_word_char(sql[t]))
        t++;
    if (t >= len || sql[t] != '$')
        return 0;
    for (j = t + 1; j + (t - i) < len; j++)
        if (memcmp(sql + j, sql + i, t - i + 1) == 0)
            return j + (t - i + 1) - i;
    return len - i;
}

/* Length of the quoted text or comment starting at sql[i], or 0. */
static size_t sql_skip(const char *sql, size_t len, size_t i,
                       const orm_dialect *d)
{
    char c = sql[i];
    int after_word = i > 0 && sql_word_char(sql[i - 1]);
    if (c == '\'') {
        int e = d->escape_strings && i > 0 &&
                (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                (i == 1 || !sql_word_char(sql[i - 2]));
        return sql_quoted(sql, len, i, c, d->backslash_strings || e);
    }
    if (c == '"')
        return sql_quoted(sql, len, i, c, d->backslash_strings);
    if (c == '`')
        return sql_quoted(sql, len, i, c, 0);
    if (c == '-' && i + 1 < len && sql[i + 1] == '-')
        return sql_line(sql, len, i);
    if (c == '#' && d->hash_comments)
        return sql_line(sql, len, i);
    if (c == '/' && i + 1 < len && sql[i + 1] == '*')
        return sql_block(sql, len, i, d->nested_comments);
    if (c == '$' && d->dollar_quotes && !after_word)
        return sql_dollar(sql, len, i);
    return 0;
}

int orm_sql_placeholders(const char *sql, size_t len, const orm_dialect *d,
                         int first, orm_buf *out)
{
    int dollar = d->placeholder == ORM_PH_DOLLAR, n = 0;
    size_t i = 0, start = 0;
    while (i < len) {
        size_t skip = sql_skip(sql, len, i, d);
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
            if (dollar) {
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

int orm_sql_more_statements(const char *sql, size_t len, const orm_dialect *d)
{
    size_t i = 0;
    int ended = 0;
    while (i < len) {
        size_t skip = sql_skip(sql, len, i, d);
        char c = sql[i];
        if (skip > 0 && (c == '-' || c == '/' || c == '#')) {
            i += skip; /* a comment ends nothing and starts nothing */
            continue;
        }
        if (c == ';')
            ended = 1;
        else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' &&
                 c != '\f' && c != '\v' && ended)
            return 1;
        i += skip > 0 ? skip : 1;
    }
    return 0;
}
