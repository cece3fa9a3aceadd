/* SPDX-License-Identifier: MIT */
/* py_str.c - decode compact str objects read from a target (see py_str.h). */
#include "remote/py_str.h"

#include <errno.h>
#include <string.h>

#include "remote/py_proc.h"   /* AT_READ_STR_HEAD_MAX */

#define MAX_CHARS 256   /* read at most this many characters of a str */

size_t at_utf8_put(char *dst, uint32_t c)
{
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        c = 0xFFFD;
    if (c < 0x80) {
        dst[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        dst[0] = (char)(0xC0 | c >> 6);
        dst[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        dst[0] = (char)(0xE0 | c >> 12);
        dst[1] = (char)(0x80 | (c >> 6 & 0x3F));
        dst[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | c >> 18);
    dst[1] = (char)(0x80 | (c >> 12 & 0x3F));
    dst[2] = (char)(0x80 | (c >> 6 & 0x3F));
    dst[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

int at_py_str_compact_kind(const at_pylayout_t *L, uint32_t state, int *ascii)
{
    int kind = (state >> 2) & 7, compact = (state >> 5) & 1, ready = L->minor >= 12 || ((state >> 7) & 1);
    *ascii = (state >> 6) & 1;
    if (!compact || !ready || (kind != 1 && kind != 2 && kind != 4) || (*ascii && kind != 1))
        return -EPROTO;
    return kind;
}

typedef struct str_view {
    const uint8_t *data;   /* first character            */
    size_t nchars;         /* characters present in data  */
    int64_t length;        /* the str's full length       */
    int kind;              /* bytes per character: 1/2/4  */
} str_view_t;

/* Check the header in buf[0..got) and point at the characters read. */
static int str_view(const at_pylayout_t *L, const uint8_t *buf, long got, uint64_t unicode_type, str_view_t *v)
{
    if (got < L->sizeof_pyasciiobject)
        return -EPROTO;
    if (unicode_type && at_get_u64(buf, L->object_type) != unicode_type)
        return -EPROTO;
    int ascii, kind = at_py_str_compact_kind(L, at_get_u32(buf, L->unicode_state), &ascii);
    v->length = (int64_t)at_get_u64(buf, L->unicode_length);
    if (kind < 0 || v->length < 0)
        return -EPROTO;
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    size_t have = (size_t)got > off ? ((size_t)got - off) / (size_t)kind : 0;
    v->data = buf + off;
    v->kind = kind;
    v->nchars = (uint64_t)v->length < have ? (size_t)v->length : have;
    return 0;
}

static uint32_t char_at(const str_view_t *v, size_t i)
{
    const uint8_t *p = v->data + i * (size_t)v->kind;
    return v->kind == 1 ? p[0] : v->kind == 2 ? (uint32_t)(p[0] | p[1] << 8) : at_get_u32(p, 0);
}

long at_py_str_read(at_remote_t *r, const at_pylayout_t *L, uint64_t unicode_type, uint64_t addr, char *out,
                    size_t size)
{
    uint8_t buf[AT_READ_STR_HEAD_MAX + MAX_CHARS * 4];
    str_view_t v;
    long got = at_remote_read_some(r, addr, buf, (size_t)L->sizeof_pycompactunicodeobject + MAX_CHARS * 4);
    if (got < 0)
        return got;
    int rc = str_view(L, buf, got, unicode_type, &v);
    if (rc < 0)
        return rc;
    size_t o = 0, i = 0;
    for (; i < v.nchars && o + 4 + 4 <= size; i++)   /* room for a char, "..." and NUL */
        o += at_utf8_put(out + o, char_at(&v, i));
    if ((int64_t)i < v.length) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return (long)o;
}

int at_py_str_equals(at_remote_t *r, const at_pylayout_t *L, uint64_t unicode_type, uint64_t addr, const char *s)
{
    uint8_t buf[AT_READ_STR_HEAD_MAX + 64];
    size_t n = strlen(s);
    str_view_t v;
    if (n > 64)
        return 0;
    long got = at_remote_read_some(r, addr, buf, (size_t)L->sizeof_pyasciiobject + n);
    if (got < 0 || str_view(L, buf, got, unicode_type, &v) < 0 || (uint64_t)v.length != n || v.nchars != n ||
        v.kind != 1)
        return 0;
    return memcmp(v.data, s, n) == 0;
}
