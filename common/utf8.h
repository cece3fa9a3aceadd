/* SPDX-License-Identifier: MIT */
/* utf8.h - one check of UTF-8 for every writer of text from a target (JSON, SVG, the terminal).
 *
 * Strings read from another process are bytes; each writer copies valid
 * UTF-8 through and replaces the rest.  "Valid" is RFC 3629's: no
 * overlong forms (C0, C1; E0 and F0 with a low second byte), no
 * surrogates (ED A0..BF), nothing past U+10FFFF (F4 90.., F5..FF), every
 * continuation byte 10xxxxxx.
 */
#ifndef AT_UTF8_H
#define AT_UTF8_H
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes there), 0 when
 * it is not one. */
static inline size_t at_utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2) || s[0] > 0xF4)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

#endif
