/*
 * orm_sql.h: scanning raw SQL text written by users: the portable `?`
 * placeholder rewritten into the dialect's own style.
 */
#ifndef ORM_SQL_H
#define ORM_SQL_H

#include <stddef.h>

#include "orm_buf.h"
#include "orm_driver.h"

/* Appends `sql` to out with every `?` placeholder written the dialect's way
 * ($first, $first+1, ... for PostgreSQL; `?` elsewhere). A `?` inside a
 * '...' string, a "..." or `...` quoted identifier, a -- or /​* *​/
 * comment, and where the dialect has them a $tag$...$tag$ string, an
 * E'...' string, a # comment, backslash escapes or nested comments, is
 * left alone; `??` outside them stands for a
 * literal `?` (PostgreSQL's jsonb operators). Returns the number of
 * placeholders found; check out->oom for allocation failure. */
int orm_sql_placeholders(const char *sql, size_t len, const orm_dialect *d,
                         int first, orm_buf *out);

/* 1 when sql holds a second statement: something other than white space,
 * semicolons and comments after a `;` outside quoted text (read the
 * dialect's way, as above). */
int orm_sql_more_statements(const char *sql, size_t len,
                            const orm_dialect *d);

#endif
