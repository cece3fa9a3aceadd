/* SPDX-License-Identifier: MIT */
/* linetable.h - decode CPython 3.11-3.13 location tables (co_linetable); pure, no I/O.
 *
 * The table (the same format in 3.11, 3.12 and 3.13: PEP 657,
 * Objects/locations.md) is a run of entries, each opened by a byte with bit 7 set:
 * bits 3-6 a code, bits 0-2 the entry's length in code units minus one,
 * then zero or more bytes with bit 7 clear.  Only the start line matters
 * here: codes 0-9 keep the line, 10-12 add code-10, 13 and 14 add a signed
 * varint, 15 marks "no location" (line -1, running line unchanged).  The
 * running line starts at co_firstlineno.  The decoder treats the table as
 * untrusted bytes: it never reads past `len` and never overflows.
 */
#ifndef AT_LINETABLE_H
#define AT_LINETABLE_H
#include <stddef.h>
#include <stdint.h>

/* One address range of a code object: code units [start, end), its line. */
typedef struct at_line_range {
    uint32_t start;  /* first code unit                                  */
    uint32_t end;    /* one past the last code unit                      */
    int32_t line;    /* source line, -1 for "no location"                */
} at_line_range_t;

/* Decode `tab` into at most `cap` ranges (out may be NULL to count).
 * Returns the number of ranges the table holds, or -EINVAL when an entry
 * is malformed (a varint runs off the end).  Ranges past `cap` are
 * counted but not stored. */
int at_linetable_decode(const uint8_t *tab, size_t len, int firstlineno,
                        at_line_range_t *out, size_t cap);

/* The line of code unit `index`, as PyCode_Addr2Line(code, index * 2)
 * answers it (and so frame.f_lineno): firstlineno when index < 0, -1 when
 * the index has no location or lies past the table. */
int at_linetable_addr2line(const uint8_t *tab, size_t len, int firstlineno, int index);

/* The same answer from ranges made by at_linetable_decode (binary search). */
int at_linetable_lookup(const at_line_range_t *r, size_t n, int firstlineno, int index);

#endif
