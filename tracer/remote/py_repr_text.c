/* SPDX-License-Identifier: MIT */
/* py_repr_text.c - str and bytes of a target, quoted and escaped as Python's repr does, cut at AT_REPR_STR_CHARS.
 *
 * What a terminal would act on or hide (controls, bidi overrides, line
 * separators) is escaped, so a variable cannot rearrange the dump. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "remote/py_repr_int.h"
#include "remote/py_str.h"

#define STR_READ       (AT_READ_STR_HEAD_MAX + (AT_REPR_STR_CHARS + 1) * 4)

/* ---- str and bytes --------------------------------------------------------- */

/* Code points Python's repr escapes besides C0/C1 controls: those that
 * are not printable (str.isprintable) and that a terminal would act on
 * or hide, from the categories Zs (but space), Zl, Zp, Cf, Cs and Co.
 * Unassigned code points (Cn) would need Unicode's tables: copied. */
int at_repr_hidden_char(uint32_t c)
{
    static const struct { uint32_t lo, hi; } ranges[] = {
        { 0xa0, 0xa0 },       { 0xad, 0xad },       { 0x600, 0x605 },     { 0x61c, 0x61c },
        { 0x6dd, 0x6dd },     { 0x70f, 0x70f },     { 0x1680, 0x1680 },   { 0x180e, 0x180e },
        { 0x2000, 0x200f },   { 0x2028, 0x202f },   { 0x205f, 0x206f },
        { 0x3000, 0x3000 },   { 0xd800, 0xf8ff },   { 0xfeff, 0xfeff },   { 0xfff9, 0xfffb },
        { 0x110bd, 0x110bd }, { 0x1d173, 0x1d17a }, { 0xe0001, 0xe007f }, { 0xf0000, 0x10ffff },
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (c >= ranges[i].lo && c <= ranges[i].hi)
            return 1;
    return 0;
}

/* Python's escape for code point c inside quotes q, or NULL to copy it:
 * \\, \q, \n \r \t, then \xNN, \uNNNN or \UNNNNNNNN for what is not
 * printable (a bidi override or a line separator in a variable cannot
 * rearrange the dump's lines). */
static const char *escape_char(uint32_t c, char q, char *buf, size_t size)
{
    if (c == '\\' || c == (uint32_t)q) {
        snprintf(buf, size, "\\%c", (char)c);
        return buf;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
        snprintf(buf, size, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        return buf;
    }
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || at_repr_hidden_char(c)) {
        snprintf(buf, size, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", c);
        return buf;
    }
    return NULL;
}

typedef struct text_view {
    const uint8_t *data;     /* first character read                     */
    size_t shown;            /* characters to show                       */
    int64_t length;          /* the object's own length                  */
    int kind;                /* bytes per character (1 for bytes)        */
} text_view_t;

static uint32_t char_at(const text_view_t *v, size_t i)
{
    const uint8_t *c = v->data + i * (size_t)v->kind;
    return v->kind == 1 ? c[0] : v->kind == 2 ? (uint32_t)(c[0] | c[1] << 8) : at_get_u32(c, 0);
}

/* Python's quote choice: ' unless the text has ' and no ". */
static char quote_for(const text_view_t *v)
{
    int single = 0, dbl = 0;
    for (size_t i = 0; i < v->shown; i++) {
        uint32_t c = char_at(v, i);
        single |= c == '\'';
        dbl |= c == '"';
    }
    return single && !dbl ? '"' : '\'';
}

/* Write the characters quoted (with prefix "b" for bytes), and, for a
 * str shown whole, its UTF-8 into raw (size >= shown * 4 + 1). */
static void put_quoted(walk_t *w, const text_view_t *v, const char *prefix, int is_bytes, char *raw)
{
    char q = quote_for(v), esc[16], utf8[4];
    size_t r = 0;
    at_repr_put(w, prefix);
    at_repr_put_n(w, &q, 1);
    for (size_t i = 0; i < v->shown; i++) {
        uint32_t c = char_at(v, i);
        const char *e = is_bytes && c >= 0x7f ? (snprintf(esc, sizeof esc, "\\x%02x", c), esc)
                                              : escape_char(c, q, esc, sizeof esc);
        size_t n = at_utf8_put(utf8, c);
        if (raw) {
            memcpy(raw + r, utf8, n);
            r += n;
        }
        if (e)
            at_repr_put(w, e);
        else
            at_repr_put_n(w, utf8, n);
    }
    at_repr_put_n(w, &q, 1);
    if (raw)
        raw[r] = '\0';
}

/* The str's text; whole: a JSON string, else described with its length. */
static void text_out(walk_t *w, const text_view_t *v, int is_bytes)
{
    char raw[AT_REPR_STR_CHARS * 4 + 1];
    size_t mark = w->len;
    int cut = (int64_t)v->shown < v->length;
    put_quoted(w, v, is_bytes ? "b" : "", is_bytes, is_bytes ? NULL : raw);
    if (cut) {
        at_repr_put(w, AT_REPR_CUT);
        w->out->truncated = 1;
    }
    if (!w->j)
        return;
    if (!cut && !is_bytes) {
        at_json_str(w->j, raw);
        return;
    }
    at_json_obj_begin(w->j);
    at_json_kv_str(w->j, "type", is_bytes ? "bytes" : "str");
    at_json_kv_str(w->j, "repr", since(w, mark));
    at_json_kv_int(w->j, "len", v->length);
    if (cut)
        at_json_kv_bool(w->j, "truncated", 1);
    at_json_obj_end(w->j);
}

/* A str from the header value() read (head, got bytes), read again
 * whole only when its shown characters go past that. */
void at_repr_str(walk_t *w, uint64_t addr, const uint8_t *head, long got)
{
    const at_pylayout_t *L = w->L;
    uint8_t again[STR_READ];
    const uint8_t *buf = head;
    text_view_t v;
    int ascii;
    if (got < L->sizeof_pyasciiobject) {
        at_repr_unreadable(w, addr, -EFAULT);
        return;
    }
    v.kind = at_py_str_compact_kind(L, at_get_u32(buf, L->unicode_state), &ascii);
    v.length = (int64_t)at_get_u64(buf, L->unicode_length);
    size_t shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    size_t need = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject) +
                  (size_t)(v.kind > 0 ? v.kind : 1) * shown;
    if (v.kind > 0 && v.length >= 0 && need > (size_t)got) {
        got = at_repr_read_some(w, addr, again, (size_t)L->sizeof_pycompactunicodeobject + (AT_REPR_STR_CHARS + 1) * 4);
        buf = again;
        if (got < L->sizeof_pyasciiobject) {
            at_repr_unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
            return;
        }
    }
    v.kind = at_py_str_compact_kind(L, at_get_u32(buf, L->unicode_state), &ascii);
    v.length = (int64_t)at_get_u64(buf, L->unicode_length);
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    if (v.kind < 0 || v.length < 0 || v.length > MAX_LEN || (size_t)got < off) {
        at_repr_unreadable(w, addr, -EPROTO);
        return;
    }
    size_t have = ((size_t)got - off) / (size_t)v.kind;
    v.data = buf + off;
    v.shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    if (v.shown > have) {
        at_repr_unreadable(w, addr, -EFAULT);
        return;
    }
    text_out(w, &v, 0);
}

/* bytes, from value()'s header when its shown bytes are in it. */
void at_repr_bytes(walk_t *w, uint64_t addr, const uint8_t *head, long got)
{
    const at_pylayout_t *L = w->L;
    uint8_t again[AT_READ_STR_HEAD_MAX + AT_REPR_STR_CHARS + 1];
    const uint8_t *buf = head;
    int64_t len = got >= L->var_size + 8 ? (int64_t)at_get_u64(head, L->var_size) : 0;
    int64_t shown = len < AT_REPR_STR_CHARS ? len : AT_REPR_STR_CHARS;
    if (got < L->bytes_sval || (len >= 0 && L->bytes_sval + shown > got)) {
        got = at_repr_read_some(w, addr, again, (size_t)L->bytes_sval + AT_REPR_STR_CHARS);
        buf = again;
    }
    text_view_t v = { .data = buf + L->bytes_sval, .kind = 1 };
    if (got < L->bytes_sval) {
        at_repr_unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
        return;
    }
    v.length = (int64_t)at_get_u64(buf, L->var_size);
    v.shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    if (v.length < 0 || v.length > MAX_LEN || (long)v.shown > got - L->bytes_sval) {
        at_repr_unreadable(w, addr, -EPROTO);
        return;
    }
    text_out(w, &v, 1);
}
