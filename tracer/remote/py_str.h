/* SPDX-License-Identifier: MIT */
/* py_str.h - a CPython 3.11 str object in a target's memory, as UTF-8.
 *
 * Only compact, ready strings (every str 3.11 creates at run time for
 * names, keys and identifiers) are decoded; anything else is refused.
 */
#ifndef AT_PY_STR_H
#define AT_PY_STR_H
#include <stddef.h>
#include <stdint.h>

#include "remote/remote.h"

/* Encode code point c as UTF-8 into dst (room for 4): bytes written.
 * Lone surrogates and values past U+10FFFF become U+FFFD. */
size_t at_utf8_put(char *dst, uint32_t c);

/* The str at addr into out (size >= 8) as NUL-ended UTF-8, cut to what
 * fits, ending in "..." when cut.  unicode_type: &PyUnicode_Type to
 * check the object against (0: not checked).  Returns the bytes written,
 * -EPROTO when it is not a compact str, or the read's -errno. */
long at_py_str_read(at_remote_t *r, uint64_t unicode_type, uint64_t addr, char *out, size_t size);

/* 1 when the str at addr is exactly the ASCII text s (never more than
 * one read), 0 when not or unreadable. */
int at_py_str_equals(at_remote_t *r, uint64_t unicode_type, uint64_t addr, const char *s);

#endif
