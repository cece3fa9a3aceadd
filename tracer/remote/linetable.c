/* SPDX-License-Identifier: MIT */
/* linetable.c - CPython 3.11 location-table decoder (see linetable.h). */
#include "remote/linetable.h"

#include <errno.h>

#define LT_CODE_ONE_LINE0   10
#define LT_CODE_ONE_LINE2   12
#define LT_CODE_NO_COLUMNS  13
#define LT_CODE_LONG        14
#define LT_CODE_NONE        15
#define LT_MAX_UNITS        (1u << 30) /* code size bound: no overflow */

/* Walks entries; `line` is the running start line CPython keeps. */
typedef struct lt_cursor {
    const uint8_t *p;    /* next entry's first byte                      */
    const uint8_t *end;  /* one past the table                           */
    int64_t line;        /* running line (computed_line in CPython)      */
    uint32_t unit;       /* code unit where the next entry starts        */
} lt_cursor_t;

/* 6-bit little-endian chunks, bit 6 = more; a byte with bit 7 set starts
 * the next entry, so meeting one (or the end) here is a malformed table. */
static int read_svarint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; p < end && shift < 36; shift += 6, p++) {
        if (*p & 0x80)
            return -EINVAL;
        v |= (uint64_t)(*p & 63) << shift;
        if (!(*p & 64)) {
            *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
            return 0;
        }
    }
    return -EINVAL;
}

static int line_delta(const uint8_t *p, const uint8_t *end, int code, int64_t *delta)
{
    *delta = 0;
    if (code == LT_CODE_NO_COLUMNS || code == LT_CODE_LONG)
        return read_svarint(p + 1, end, delta);
    if (code >= LT_CODE_ONE_LINE0 && code <= LT_CODE_ONE_LINE2)
        *delta = code - LT_CODE_ONE_LINE0;
    return 0;
}

/* 1 with *r filled, 0 at the end of the table, -EINVAL when malformed. */
static int next_range(lt_cursor_t *c, at_line_range_t *r)
{
    if (c->p >= c->end)
        return 0;
    uint8_t first = *c->p;
    if (!(first & 0x80))
        return -EINVAL;
    int code = (first >> 3) & 15;
    int64_t delta;
    if (line_delta(c->p, c->end, code, &delta) < 0)
        return -EINVAL;
    c->line += delta;
    if (c->line < INT32_MIN + 1 || c->line > INT32_MAX || c->unit >= LT_MAX_UNITS)
        return -EINVAL;
    r->line = code == LT_CODE_NONE ? -1 : (int32_t)c->line;
    r->start = c->unit;
    r->end = c->unit + (first & 7) + 1;
    c->unit = r->end;
    do
        c->p++;
    while (c->p < c->end && !(*c->p & 0x80));
    return 1;
}

int at_linetable_decode(const uint8_t *tab, size_t len, int firstlineno,
                        at_line_range_t *out, size_t cap)
{
    lt_cursor_t c = { tab, tab + len, firstlineno, 0 };
    at_line_range_t r;
    int n = 0, rc;
    if (!tab)
        return len ? -EINVAL : 0;
    while ((rc = next_range(&c, &r)) == 1) {
        if (out && (size_t)n < cap)
            out[n] = r;
        n++;
    }
    return rc < 0 ? rc : n;
}

int at_linetable_addr2line(const uint8_t *tab, size_t len, int firstlineno, int index)
{
    lt_cursor_t c = { tab, tab + len, firstlineno, 0 };
    at_line_range_t r;
    if (index < 0)
        return firstlineno;
    if (!tab)
        return -1;
    while (next_range(&c, &r) == 1)
        if (r.end > (uint32_t)index)
            return r.line;
    return -1;
}

int at_linetable_lookup(const at_line_range_t *r, size_t n, int firstlineno, int index)
{
    size_t lo = 0, hi = n;
    if (index < 0)
        return firstlineno;
    /* ranges are contiguous and ascending: find the first with end > index */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].end <= (uint32_t)index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n ? r[lo].line : -1;
}
