/* SPDX-License-Identifier: MIT */
/* alloc_line.c - instruction index -> source line from a 3.11 co_linetable.
 *
 * Runs inside the allocator hooks when a site is first seen, so it reads
 * only the bytes it is given, never allocates and never trusts them: a
 * malformed table ends the walk with -1.  (tracer/remote/linetable.c decodes the
 * same format for the sampler; the shim cannot link tracer objects.)
 * Entry: a byte with bit 7 set, bits 3-6 a code, bits 0-2 the length in
 * code units minus one, then bytes with bit 7 clear.  Codes 0-9 keep the
 * running line, 10-12 add code-10, 13 and 14 add a signed varint, 15 is
 * "no location".
 */
#include "alloc.h"

static int svarint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; p < end && shift < 36; shift += 6, p++) {
        if (*p & 0x80)
            return -1;
        v |= (uint64_t)(*p & 63) << shift;
        if (!(*p & 64)) {
            *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
            return 0;
        }
    }
    return -1;
}

int at_alloc_addr2line(const uint8_t *tab, size_t len, int firstlineno, int index)
{
    if (index < 0)
        return firstlineno;
    if (!tab)
        return -1;
    const uint8_t *p = tab, *end = tab + len;
    int64_t line = firstlineno;
    int64_t unit = 0;
    while (p < end && (*p & 0x80)) {
        int code = (*p >> 3) & 15;
        int64_t delta = 0;
        if (code == 13 || code == 14) {
            if (svarint(p + 1, end, &delta) < 0)
                return -1;
        } else if (code >= 10 && code <= 12) {
            delta = code - 10;
        }
        line += delta;
        unit += (*p & 7) + 1;
        if (unit > index)
            return (code == 15 || line < 0 || line > INT32_MAX) ? -1 : (int)line;
        do
            p++;
        while (p < end && !(*p & 0x80));
    }
    return -1;
}
