/* SPDX-License-Identifier: MIT */
/* py_str.h - a CPython str object (3.11-3.13) in a target's memory, as UTF-8.
 *
 * Only compact, ready strings (every str CPython creates at run time for
 * names, keys and identifiers) are decoded; anything else is refused.
 * Offsets come from the target's layout (3.12 dropped wstr: the data
 * moved from 48/72 to 40/56).
 */
#ifndef AT_PY_STR_H
#define AT_PY_STR_H
#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"
#include "remote/remote.h"

/* Encode code point c as UTF-8 into dst (room for 4): bytes written.
 * Lone surrogates and values past U+10FFFF become U+FFFD. */
size_t at_utf8_put(char *dst, uint32_t c);

/* The kind (bytes per character: 1, 2 or 4) of a compact str from its
 * state word (read at L->unicode_state), *ascii set for compact ASCII;
 * -EPROTO for a str that is not compact (or, 3.11, not ready: 3.12 dropped
 * the ready bit, every str is, and bit 7 became statically_allocated). */
int at_py_str_compact_kind(const at_pylayout_t *L, uint32_t state, int *ascii);

/* The str at addr into out (size >= 8) as NUL-ended UTF-8, cut to what
 * fits, ending in "..." when cut.  L: the target's layout (its str
 * header within AT_READ_STR_HEAD_MAX).  unicode_type: &PyUnicode_Type to
 * check the object against (0: not checked).  Returns the bytes written,
 * -EPROTO when it is not a compact str, or the read's -errno. */
long at_py_str_read(at_remote_t *r, const at_pylayout_t *L, uint64_t unicode_type, uint64_t addr, char *out, size_t size);

/* 1 when the str at addr is exactly the ASCII text s (never more than
 * one read), 0 when not or unreadable. */
int at_py_str_equals(at_remote_t *r, const at_pylayout_t *L, uint64_t unicode_type, uint64_t addr, const char *s);

#endif
