/*
 * orm_decode.c: decimals and datetimes from their text form to the values
 * ormed hands to Lua, the same way for every driver (orm_decode.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orm_decode.h"

/* The digits of an integer part into *out: 0 when it fits int64, -1 when
 * it overflows. */
static int dec_parse_int(const char *p, size_t n, int neg, int64_t *out)
{
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/* Significant digits of a decimal with integer digits ip[0..in) and
 * fractional digits fp[0..fn) (trailing fractional zeros dropped). */
static size_t dec_significant(const char *ip, size_t in, const char *fp,
                              size_t fn)
{
    size_t lead = 0, z = 0, e = in;
    while (lead < in && ip[lead] == '0')
        lead++;
    if (fn > 0 && lead == in) {
        while (z < fn && fp[z] == '0')
            z++;
        return fn - z;
    }
    if (fn > 0)
        return (in - lead) + fn;
    while (e > lead && ip[e - 1] == '0')
        e--;
    return e - lead;
}

/* strtod of n bytes that are not NUL-terminated. */
static double dec_strtod(const char *s, size_t n)
{
    char tmp[64];
    if (n >= sizeof tmp)
        return NAN;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

void orm_decode_decimal(const char *s, size_t n, orm_value *out)
{
    const char *p = s, *end = s + n, *ip, *fp = NULL;
    size_t in = 0, fn = 0;
    int neg = 0;
    int64_t iv;

    *out = orm_value_text(s, n);
    if (n == 3 && memcmp(s, "NaN", 3) == 0) {
        *out = orm_value_double(NAN);
        return;
    }
    if ((n == 8 && memcmp(s, "Infinity", 8) == 0) ||
        (n == 9 && memcmp(s, "-Infinity", 9) == 0)) {
        *out = orm_value_double(s[0] == '-' ? -INFINITY : INFINITY);
        return;
    }
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    ip = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++, in++;
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++, fn++;
    }
    if (p != end || in + fn == 0)
        return; /* not a plain decimal: keep the text */
    while (fn > 0 && fp[fn - 1] == '0')
        fn--;
    if (fn == 0 && dec_parse_int(ip, in, neg, &iv) == 0) {
        *out = orm_value_int(iv);
        return;
    }
    if (dec_significant(ip, in, fp, fn) <= 15) {
        /* the text without its trailing fraction zeros (numeric(100,60)
         * prints 60 digits); too long even so: kept as text */
        size_t len = (size_t)((fn ? fp + fn : ip + in) - s);
        double d = dec_strtod(s, len);
        if (d == d)
            *out = orm_value_double(d);
    }
}

static int dt_digits(const char *s, int k)
{
    int i;
    for (i = 0; i < k; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* 1 when s[0..19) reads "YYYY-MM-DD?HH:MM:SS" with ? a space or T. */
static int dt_shape(const char *s)
{
    return dt_digits(s, 4) && s[4] == '-' && dt_digits(s + 5, 2) &&
           s[7] == '-' && dt_digits(s + 8, 2) && (s[10] == ' ' || s[10] == 'T') &&
           dt_digits(s + 11, 2) && s[13] == ':' && dt_digits(s + 14, 2) &&
           s[16] == ':' && dt_digits(s + 17, 2);
}

/* Writes the zone at z (n bytes: "", "Z", "+HH", "+HHMM", "+HH:MM", or
 * with '-') to b; returns bytes written or -1. */
static int dt_zone(const char *z, size_t n, char *b)
{
    if (n == 0 || (n == 1 && z[0] == 'Z')) {
        b[0] = 'Z';
        return 1;
    }
    if ((z[0] != '+' && z[0] != '-') || n < 3 || !dt_digits(z + 1, 2))
        return -1;
    if (n == 3)
        memcpy(b + 3, ":00", 3);
    else if (n == 5 && dt_digits(z + 3, 2))
        memcpy(b + 3, (char[]){':', z[3], z[4]}, 3);
    else if (n == 6 && z[3] == ':' && dt_digits(z + 4, 2))
        memcpy(b + 3, z + 3, 3);
    else
        return -1;
    memcpy(b, z, 3);
    if (b[1] == '0' && b[2] == '0' && b[4] == '0' && b[5] == '0') {
        b[0] = 'Z';
        return 1;
    }
    return 6;
}

int orm_decode_datetime(const char *s, size_t n, char *buf)
{
    size_t i = 19;
    int z;
    if (n < 19 || n + 8 > ORM_DATETIME_MAX || !dt_shape(s))
        return -1;
    size_t keep;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == 20)
            return -1;
    }
    keep = i; /* the fraction without trailing zeros, "." with none left */
    while (keep > 19 && (s[keep - 1] == '0' || s[keep - 1] == '.'))
        if (s[--keep] == '.')
            break;
    memcpy(buf, s, keep);
    buf[10] = 'T';
    z = dt_zone(s + i, n - i, buf + keep);
    if (z < 0)
        return -1;
    buf[keep + (size_t)z] = '\0';
    return (int)keep + z;
}
