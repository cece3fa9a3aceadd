/* SPDX-License-Identifier: MIT */
/* fuzz_linetable.c - libFuzzer target: the CPython 3.11 location-table decoder.
 *
 * Input: 4 bytes of co_firstlineno (little endian), then the table.  The
 * decoder must stay inside the bytes it is given (ASan checks that: the
 * table is copied to a buffer of exactly its size) and its three ways of
 * answering "which line is code unit i" must agree whenever the table
 * decodes: the streaming at_linetable_addr2line, the decoded ranges
 * searched by at_linetable_lookup, and a linear scan of those ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "remote/linetable.h"

#define PROBES 64 /* code units checked per input */

/* Ranges must tile [0, end) in order: the binary search relies on it. */
static void check_ranges(const at_line_range_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].end <= r[i].start || r[i].end - r[i].start > 8)
            abort();
        if (i > 0 && r[i].start != r[i - 1].end)
            abort();
    }
    if (n && r[0].start != 0)
        abort();
}

static int scan_line(const at_line_range_t *r, size_t n, int index)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].end > (uint32_t)index)
            return r[i].line;
    return -1;
}

static void check_agreement(const uint8_t *tab, size_t len, int first, const at_line_range_t *r, size_t n)
{
    uint32_t end = n ? r[n - 1].end : 0;
    for (int k = 0; k < PROBES; k++) {
        /* every unit of a short table, a spread over a long one, and
         * the indices just outside it */
        int index = k - 1;
        if (end > PROBES - 2)
            index = k == PROBES - 1 ? (int)end : (int)((uint64_t)end * (uint64_t)k / PROBES);
        int streamed = at_linetable_addr2line(tab, len, first, index);
        int searched = at_linetable_lookup(r, n, first, index);
        int scanned = index < 0 ? first : scan_line(r, n, index);
        if (streamed != searched || searched != scanned)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t first = 0;
    if (size < sizeof first)
        return 0;
    memcpy(&first, data, sizeof first);
    size_t len = size - sizeof first;
    uint8_t *tab = malloc(len ? len : 1);
    if (!tab)
        return 0;
    memcpy(tab, data + sizeof first, len);

    int n = at_linetable_decode(tab, len, first, NULL, 0);
    if (n > 0) {
        /* decode into a short buffer first: ranges past cap are counted only */
        at_line_range_t *r = malloc(sizeof *r * (size_t)n);
        if (r) {
            if (at_linetable_decode(tab, len, first, r, (size_t)n / 2) != n ||
                at_linetable_decode(tab, len, first, r, (size_t)n) != n)
                abort();
            check_ranges(r, (size_t)n);
            check_agreement(tab, len, first, r, (size_t)n);
            free(r);
        }
    } else if (n == 0) {
        check_agreement(tab, len, first, NULL, 0);
    } else {
        /* malformed: the streaming lookup must still stay in bounds */
        (void)at_linetable_addr2line(tab, len, first, (int)(len & 0xffff));
    }
    free(tab);
    return 0;
}
