/* SPDX-License-Identifier: MIT */
/* tsv.c - escaping for the tab-separated session files. */
#include <stdlib.h>
#include "session/tsv.h"

void at_tsv_put(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

static char simple_escape(char c)
{
    return c == '\\' ? '\\' : c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : 0;
}

int at_tsv_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        char c = simple_escape(*p);
        if (c) {
            *o++ = c;
        } else if (*p == 'x' && p[1] && p[2]) {
            char hex[3] = { p[1], p[2], 0 }, *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0)         /* NUL would cut the string short */
                return -1;
            *o++ = (char)v;
            p += 2;
        } else {
            return -1;
        }
    }
    *o = '\0';
    return 0;
}
