/*
 * orm_decode.h: the one decoder of values that databases send as text
 * with a meaning of their own (decimals, datetimes), used by every driver,
 * so the same stored value reads back as the same Lua value everywhere.
 */
#ifndef ORM_DECODE_H
#define ORM_DECODE_H

#include <stddef.h>

#include "orm_value.h"

/* Room for a decoded datetime ("YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM" and
 * more). */
#define ORM_DATETIME_MAX 64

/* A decimal as databases print NUMERIC / DECIMAL ([-]digits[.digits]; s
 * holds n bytes): an integer when it has no fractional digits other than
 * zeros and fits int64; else a double when it has at most 15 significant
 * digits (a double holds every such decimal); else the text itself, which
 * *out then borrows. NaN and Infinity (PostgreSQL) become doubles;
 * anything else stays text. */
void orm_decode_decimal(const char *s, size_t n, orm_value *out);

/* A datetime as "YYYY-MM-DD[ T]HH:MM:SS[.f][Z|+HH[:MM]|-HH[:MM]]" written
 * into buf (ORM_DATETIME_MAX bytes) as ISO 8601 "YYYY-MM-DDTHH:MM:SS[.f]"
 * (the fraction without trailing zeros, left out when zero) followed by
 * "Z" for UTC (no offset, or +00) or the "+HH:MM" offset.
 * Returns the length written, or -1 when s is not in that form (infinity,
 * BC dates, a date alone...), for the caller to keep s as it is. */
int orm_decode_datetime(const char *s, size_t n, char *buf);

#endif
