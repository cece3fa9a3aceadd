/* SPDX-License-Identifier: MIT */
/* py_repr.c - bounded reprs of a target's objects, as text and JSON (see py_repr.h).
 *
 * One walk per value: each object's header is read once, with the
 * bytes after it (a short str's characters, an int's digits come along),
 * its type compared with the builtin types' addresses, and text and
 * JSON written side by side; a container's item pointers take one more
 * read.
 * Depth and item limits bound the walk; a read budget bounds it again,
 * should a layout ever let a container lead somewhere unexpected.
 */
#include "remote/py_repr.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_str.h"

#define READ_BUDGET    1024   /* remote reads one value may cost          */
#define DICT_SCAN      64     /* dict entries looked at for items         */
#define SET_SCAN       128    /* set table slots looked at for items      */
#define KEYS_HEAD_MAX  64     /* PyDictKeysObject up to its indices       */
#define MAX_LEN        (1ll << 40) /* a longer container or str is corrupt */
#define STR_READ       (AT_READ_STR_HEAD_MAX + (AT_REPR_STR_CHARS + 1) * 4)
#define INT_DEC_MAX    (AT_REPR_INT_DIGITS * 10 + 2) /* decimal digits, sign, NUL */

typedef struct walk {
    at_py_proc_t *p;
    const at_pylayout_t *L;
    at_repr_t *out;
    size_t len;              /* bytes of out->text in use                 */
    int full;                /* out->text reached its end (marked cut)    */
    at_json_t *j;            /* NULL: text only                           */
    int reads_left;          /* of READ_BUDGET                            */
    int gone;                /* a read said the process exited            */
    int top_err;             /* -errno: the object asked for was unreadable */
    int depth;               /* of the value being read (0: the one asked for) */
} walk_t;

static void value(walk_t *w, uint64_t addr, int depth);

/* ---- output ------------------------------------------------------------- */

/* Append n bytes of text; past the end of the buffer, one cut mark. */
static void put_n(walk_t *w, const char *s, size_t n)
{
    size_t room = sizeof w->out->text - 1 - sizeof AT_REPR_CUT;
    if (w->full)
        return;
    if (w->len + n > room) {
        memcpy(w->out->text + w->len, AT_REPR_CUT, sizeof AT_REPR_CUT);
        w->len += sizeof AT_REPR_CUT - 1;
        w->full = w->out->truncated = 1;
        return;
    }
    memcpy(w->out->text + w->len, s, n);
    w->len += n;
    w->out->text[w->len] = '\0';
}

static void put(walk_t *w, const char *s)
{
    put_n(w, s, strlen(s));
}

/* The text written since `mark`, for a JSON "repr". */
static const char *since(const walk_t *w, size_t mark)
{
    return w->out->text + mark;
}

/* {"type": type, "repr": text since mark, "truncated": true?}: the JSON
 * of a value that is not a plain JSON scalar. */
static void json_described(walk_t *w, const char *type, size_t mark, int truncated)
{
    if (!w->j)
        return;
    at_json_obj_begin(w->j);
    at_json_kv_str(w->j, "type", type);
    at_json_kv_str(w->j, "repr", since(w, mark));
    if (truncated)
        at_json_kv_bool(w->j, "truncated", 1);
    at_json_obj_end(w->j);
}

/* ---- reads ---------------------------------------------------------------- */

/* Up to len bytes at addr (as many as are readable): the count, or -errno. */
static long read_some(walk_t *w, uint64_t addr, void *buf, size_t len)
{
    if (w->gone || w->reads_left <= 0)
        return w->gone ? -ESRCH : -E2BIG;
    w->reads_left--;
    long got = at_remote_read_some(&w->p->mem, addr, buf, len);
    w->gone |= got == -ESRCH;
    return got;
}

static int read_all(walk_t *w, uint64_t addr, void *buf, size_t len)
{
    long got = read_some(w, addr, buf, len);
    return got < 0 ? (int)got : (size_t)got < len ? -EFAULT : 0;
}

const char *at_py_repr_why(int err)
{
    switch (err) {
    case -E2BIG:  return "too many reads";
    case -ESRCH:  return "the process exited";
    case -EPROTO: return "not what CPython would write there";
    default:      return "bad address";
    }
}

static void unreadable(walk_t *w, uint64_t addr, int err)
{
    char buf[64];
    size_t mark = w->len;
    if (w->depth == 0)
        w->top_err = err;   /* the value asked for, not one of its items */
    snprintf(buf, sizeof buf, "<unreadable 0x%" PRIx64 ">", addr);
    put(w, buf);
    if (!w->j)
        return;
    at_json_obj_begin(w->j);
    at_json_key(w->j, "type");
    at_json_null(w->j);
    at_json_kv_str(w->j, "repr", since(w, mark));
    at_json_kv_str(w->j, "error", at_py_repr_why(err));
    at_json_obj_end(w->j);
}

/* ---- type names ----------------------------------------------------------- */

static int hidden_char(uint32_t c);

/* Bytes of the valid UTF-8 sequence at s (n bytes left) that is a
 * visible character (not a control, a space or one hidden_char names),
 * 0 when it is none. */
static size_t name_char(const unsigned char *s, size_t n)
{
    static const uint8_t lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 && s[0] >= 0xC2 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = s[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    return c <= 0x20 || (c >= 0x7f && c < 0xa0) || hidden_char(c) ? 0 : len;
}

void at_py_repr_mask(char *s)
{
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = name_char((const unsigned char *)s + i, n - i);
        if (len == 0) {
            s[o++] = '?';
            i++;
            continue;
        }
        memmove(s + o, s + i, len);
        o += len;
        i += len;
    }
    s[o] = '\0';
}

/* tp_name of the type at `type`, read bounded into name: what is not a
 * visible UTF-8 character becomes '?' (a name is shown, never trusted);
 * "?" when unreadable. */
static void type_name(walk_t *w, uint64_t type, char *name, size_t size)
{
    uint64_t ptr = 0;
    unsigned char raw[AT_REPR_TYPE_MAX];
    long got = read_all(w, type + (uint64_t)w->L->type_name, &ptr, sizeof ptr) == 0
                   ? read_some(w, ptr, raw, sizeof raw - 1) : -1;
    size_t n = 0, end = got > 0 ? (size_t)got : 0;
    for (size_t i = 0; i < end && raw[i] && n + 4 < size;) {
        size_t len = name_char(raw + i, end - i);
        if (len == 0) {
            name[n++] = '?';
            i++;
            continue;
        }
        memcpy(name + n, raw + i, len);
        n += len;
        i += len;
    }
    if (n == 0)
        name[n++] = '?';
    name[n] = '\0';
}

/* The builtin kinds this file decodes; OTHER is shown by type name. */
typedef enum kind {
    K_OTHER, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT, K_SET, K_FROZENSET
} kind_t;

static const char *const kind_names[] = {
    [K_OTHER] = "object", [K_INT] = "int", [K_FLOAT] = "float", [K_STR] = "str",
    [K_BYTES] = "bytes", [K_TUPLE] = "tuple", [K_LIST] = "list", [K_DICT] = "dict",
    [K_SET] = "set", [K_FROZENSET] = "frozenset",
};

static kind_t kind_of(const at_py_proc_t *p, uint64_t type)
{
    static const struct { at_pysym_t sym; kind_t kind; } by_sym[] = {
        { AT_PYSYM_LONG_TYPE, K_INT },   { AT_PYSYM_FLOAT_TYPE, K_FLOAT }, { AT_PYSYM_TUPLE_TYPE, K_TUPLE },
        { AT_PYSYM_LIST_TYPE, K_LIST },  { AT_PYSYM_DICT_TYPE, K_DICT },   { AT_PYSYM_SET_TYPE, K_SET },
        { AT_PYSYM_FROZENSET_TYPE, K_FROZENSET },
    };
    if (!type)
        return K_OTHER;
    if (type == p->unicode_type)
        return K_STR;
    if (type == p->bytes_type)
        return K_BYTES;
    for (size_t i = 0; i < sizeof by_sym / sizeof by_sym[0]; i++)
        if (p->known[by_sym[i].sym] == type)
            return by_sym[i].kind;
    return K_OTHER;
}

/* ---- scalars ---------------------------------------------------------------- */

static void other(walk_t *w, uint64_t addr, uint64_t type, int depth)
{
    char name[AT_REPR_TYPE_MAX], buf[AT_REPR_TYPE_MAX + 40];
    size_t mark = w->len;
    type_name(w, type, name, sizeof name);
    if (depth == 0)
        snprintf(w->out->type, sizeof w->out->type, "%s", name);
    snprintf(buf, sizeof buf, "<%s at 0x%" PRIx64 ">", name, addr);
    put(w, buf);
    json_described(w, name, mark, 0);
}

void at_py_repr_float(double d, char *buf, size_t size)
{
    if (isnan(d) || isinf(d)) {
        snprintf(buf, size, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    /* the shortest %.*e that reads back the same, then Python's choice
     * between fixed and scientific (repr uses fixed for 1e-4 <= |d| < 1e16) */
    char e[40];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, d);
        if (strtod(e, NULL) == d)
            break;
    }
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) {
        char *ep = strchr(e, 'e');   /* "1.5e-05": drop ".0" Python drops */
        snprintf(buf, size, "%.*se%c%02d", (int)(ep - e), e, exp10 < 0 ? '-' : '+', abs(exp10));
        return;
    }
    int decimals = prec - exp10 > 0 ? prec - exp10 : 0;
    snprintf(buf, size, "%.*f", decimals, d);
    if (!strchr(buf, '.') && strlen(buf) + 2 < size)
        strcat(buf, ".0");
}

static void float_value(walk_t *w, const uint8_t *head, long got, uint64_t addr)
{
    char buf[48];
    if (got < w->L->float_fval + 8) {
        unreadable(w, addr, -EFAULT);
        return;
    }
    double d;
    size_t mark = w->len;
    memcpy(&d, head + w->L->float_fval, sizeof d);
    at_py_repr_float(d, buf, sizeof buf);
    put(w, buf);
    if (!w->j)
        return;
    if (isfinite(d))
        at_json_raw(w->j, buf);
    else   /* JSON has no inf or nan */
        json_described(w, "float", mark, 0);
}

/* ---- int ------------------------------------------------------------------ */

/* An int's digit count and sign from its header: 3.11's signed ob_size,
 * or 3.12+'s lv_tag (ndigits << NON_SIZE_BITS | sign: 0 +, 1 zero, 2 -). */
static void int_shape(const at_pylayout_t *L, const uint8_t *head, int64_t *ndigits, int *negative)
{
    if (L->long_lv_tag == AT_PYLAYOUT_NONE) {
        int64_t size = (int64_t)at_get_u64(head, L->var_size);
        *negative = size < 0;
        *ndigits = size < 0 ? (size == INT64_MIN ? INT64_MAX : -size) : size;
        return;
    }
    uint64_t tag = at_get_u64(head, L->long_lv_tag);
    *negative = (tag & (uint64_t)L->long_sign_mask) == 2;
    *ndigits = (int64_t)(tag >> L->long_non_size_bits);
}

/* Digits d[0..n) (base 2^30, least significant first, destroyed) in
 * decimal into out (INT_DEC_MAX bytes). */
static void digits_to_decimal(uint32_t *d, int n, int negative, char *out)
{
    char rev[INT_DEC_MAX];
    size_t r = 0;
    while (n > 0 && r + 9 < sizeof rev) {
        uint64_t rem = 0;
        for (int i = n - 1; i >= 0; i--) {
            uint64_t cur = rem << 30 | d[i];
            d[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (n > 0 && d[n - 1] == 0)
            n--;
        for (int k = 0; k < 9 && (n > 0 || rem); k++, rem /= 10)
            rev[r++] = (char)('0' + rem % 10);
    }
    size_t o = 0;
    if (r == 0)
        rev[r++] = '0';
    if (negative)
        out[o++] = '-';
    while (r > 0)
        out[o++] = rev[--r];
    out[o] = '\0';
}

static void int_too_big(walk_t *w, int64_t ndigits, int negative)
{
    char buf[80];
    size_t mark = w->len;
    snprintf(buf, sizeof buf, "<%sint of about %" PRId64 " bits>", negative ? "negative " : "",
             ndigits > INT64_MAX / 30 ? INT64_MAX : ndigits * 30);
    put(w, buf);
    w->out->truncated = 1;
    json_described(w, "int", mark, 1);
}

static void int_value(walk_t *w, const uint8_t *head, long got, uint64_t addr)
{
    const at_pylayout_t *L = w->L;
    int64_t ndigits;
    int negative;
    uint32_t d[AT_REPR_INT_DIGITS];
    char dec[INT_DEC_MAX];
    int_shape(L, head, &ndigits, &negative);
    if (ndigits > AT_REPR_INT_DIGITS) {
        int_too_big(w, ndigits, negative);
        return;
    }
    if (got < L->long_digits + ndigits * 4) {
        unreadable(w, addr, -EFAULT);
        return;
    }
    for (int64_t i = 0; i < ndigits; i++) {
        d[i] = at_get_u32(head, (size_t)L->long_digits + (size_t)i * 4);
        if (d[i] >> L->long_shift) {   /* not a digit: not an int after all */
            unreadable(w, addr, -EPROTO);
            return;
        }
    }
    digits_to_decimal(d, (int)ndigits, negative, dec);
    put(w, dec);
    if (w->j)
        at_json_raw(w->j, dec);
}

/* ---- str and bytes --------------------------------------------------------- */

/* Code points Python's repr escapes besides C0/C1 controls: those that
 * are not printable (str.isprintable) and that a terminal would act on
 * or hide, from the categories Zs (but space), Zl, Zp, Cf, Cs and Co.
 * Unassigned code points (Cn) would need Unicode's tables: copied. */
static int hidden_char(uint32_t c)
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
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || hidden_char(c)) {
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
    put(w, prefix);
    put_n(w, &q, 1);
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
            put(w, e);
        else
            put_n(w, utf8, n);
    }
    put_n(w, &q, 1);
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
        put(w, AT_REPR_CUT);
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
static void str_value(walk_t *w, uint64_t addr, const uint8_t *head, long got)
{
    const at_pylayout_t *L = w->L;
    uint8_t again[STR_READ];
    const uint8_t *buf = head;
    text_view_t v;
    int ascii;
    if (got < L->sizeof_pyasciiobject) {
        unreadable(w, addr, -EFAULT);
        return;
    }
    v.kind = at_py_str_compact_kind(L, at_get_u32(buf, L->unicode_state), &ascii);
    v.length = (int64_t)at_get_u64(buf, L->unicode_length);
    size_t shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    size_t need = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject) +
                  (size_t)(v.kind > 0 ? v.kind : 1) * shown;
    if (v.kind > 0 && v.length >= 0 && need > (size_t)got) {
        got = read_some(w, addr, again, (size_t)L->sizeof_pycompactunicodeobject + (AT_REPR_STR_CHARS + 1) * 4);
        buf = again;
        if (got < L->sizeof_pyasciiobject) {
            unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
            return;
        }
    }
    v.kind = at_py_str_compact_kind(L, at_get_u32(buf, L->unicode_state), &ascii);
    v.length = (int64_t)at_get_u64(buf, L->unicode_length);
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    if (v.kind < 0 || v.length < 0 || v.length > MAX_LEN || (size_t)got < off) {
        unreadable(w, addr, -EPROTO);
        return;
    }
    size_t have = ((size_t)got - off) / (size_t)v.kind;
    v.data = buf + off;
    v.shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    if (v.shown > have) {
        unreadable(w, addr, -EFAULT);
        return;
    }
    text_out(w, &v, 0);
}

/* bytes, from value()'s header when its shown bytes are in it. */
static void bytes_value(walk_t *w, uint64_t addr, const uint8_t *head, long got)
{
    const at_pylayout_t *L = w->L;
    uint8_t again[AT_READ_STR_HEAD_MAX + AT_REPR_STR_CHARS + 1];
    const uint8_t *buf = head;
    int64_t len = got >= L->var_size + 8 ? (int64_t)at_get_u64(head, L->var_size) : 0;
    int64_t shown = len < AT_REPR_STR_CHARS ? len : AT_REPR_STR_CHARS;
    if (got < L->bytes_sval || (len >= 0 && L->bytes_sval + shown > got)) {
        got = read_some(w, addr, again, (size_t)L->bytes_sval + AT_REPR_STR_CHARS);
        buf = again;
    }
    text_view_t v = { .data = buf + L->bytes_sval, .kind = 1 };
    if (got < L->bytes_sval) {
        unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
        return;
    }
    v.length = (int64_t)at_get_u64(buf, L->var_size);
    v.shown = (size_t)(v.length < AT_REPR_STR_CHARS ? v.length : AT_REPR_STR_CHARS);
    if (v.length < 0 || v.length > MAX_LEN || (long)v.shown > got - L->bytes_sval) {
        unreadable(w, addr, -EPROTO);
        return;
    }
    text_out(w, &v, 1);
}

/* ---- containers --------------------------------------------------------- */

/* What a container shows: its items' addresses (dict: key, value pairs). */
typedef struct items {
    uint64_t addr[2 * AT_REPR_MAX_ITEMS];
    int n;                   /* items shown (pairs for a dict)           */
    int64_t len;             /* the container's own len()                */
} items_t;

typedef struct shape {
    const char *open, *close;  /* "[", "]"                                */
    const char *empty;         /* "[]", "set()"                           */
    int pairs;                 /* dict: key: value                        */
    int one_comma;             /* tuple: "(x,)"                           */
} shape_t;

static const shape_t *shape_of(kind_t k)
{
    static const shape_t tuple = { "(", ")", "()", 0, 1 }, list = { "[", "]", "[]", 0, 0 },
                         dict = { "{", "}", "{}", 1, 0 }, set = { "{", "}", "set()", 0, 0 },
                         frozenset = { "frozenset({", "})", "frozenset()", 0, 0 };
    return k == K_TUPLE ? &tuple : k == K_LIST ? &list : k == K_DICT ? &dict : k == K_SET ? &set : &frozenset;
}

/* Read n item pointers at `at` (n <= AT_REPR_MAX_ITEMS). */
static int read_pointers(walk_t *w, uint64_t at, items_t *it, int64_t n)
{
    it->n = (int)(n < AT_REPR_MAX_ITEMS ? n : AT_REPR_MAX_ITEMS);
    return it->n ? read_all(w, at, it->addr, (size_t)it->n * 8) : 0;
}

static int sequence_items(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, items_t *it)
{
    const at_pylayout_t *L = w->L;
    int32_t field = k == K_TUPLE ? L->tuple_items : L->list_items;
    if (got < field + 8)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->var_size);
    if (it->len < 0 || it->len > MAX_LEN)
        return -EPROTO;
    uint64_t at = k == K_TUPLE ? addr + (uint64_t)field : at_get_u64(head, field);
    return read_pointers(w, at, it, it->len);
}

/* A dict's entries: key and value of each live one, in entry order (a
 * split dict's values come from its values array, by entry index). */
static int dict_items(walk_t *w, const uint8_t *head, long got, items_t *it)
{
    const at_pylayout_t *L = w->L;
    uint8_t kh[KEYS_HEAD_MAX];
    uint64_t ents[DICT_SCAN * 3], vals[DICT_SCAN];
    if (got < L->dict_values + 8 || got < L->dict_used + 8 || L->dictkeys_indices > KEYS_HEAD_MAX)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->dict_used);
    uint64_t keys = at_get_u64(head, L->dict_keys), values = at_get_u64(head, L->dict_values);
    if (it->len < 0 || it->len > MAX_LEN)
        return -EPROTO;
    if (it->len == 0)
        return 0;
    int rc = read_all(w, keys, kh, (size_t)L->dictkeys_indices);
    if (rc < 0)
        return rc;
    int log2_bytes = kh[L->dictkeys_log2_index_bytes], general = kh[L->dictkeys_kind] == L->dict_keys_general;
    int64_t nent = (int64_t)at_get_u64(kh, L->dictkeys_nentries);
    size_t words = (size_t)(general ? L->sizeof_dict_key_entry : L->sizeof_dict_unicode_entry) / 8;
    if (log2_bytes > 40 || nent < 0 || words < 2 || words > 3)
        return -EPROTO;
    int scan = (int)(nent < DICT_SCAN ? nent : DICT_SCAN);
    uint64_t first = keys + (uint64_t)L->dictkeys_indices + (1ull << log2_bytes);
    if ((rc = read_all(w, first, ents, (size_t)scan * words * 8)) < 0 ||
        (values && (rc = read_all(w, values + (uint64_t)L->dictvalues_values, vals, (size_t)scan * 8)) < 0))
        return rc;
    size_t key_at = general ? 1 : 0;   /* a general entry starts with the hash */
    for (int i = 0; i < scan && it->n < AT_REPR_MAX_ITEMS; i++) {
        uint64_t key = ents[(size_t)i * words + key_at], val = values ? vals[i] : ents[(size_t)i * words + key_at + 1];
        if (key && val) {
            it->addr[2 * it->n] = key;
            it->addr[2 * it->n + 1] = val;
            it->n++;
        }
    }
    return 0;
}

/* A set's table slots in order (its own iteration order), skipping the
 * empty ones and the dummies left by deletions (hash -1, which no live
 * key has). */
static int set_items(walk_t *w, const uint8_t *head, long got, items_t *it)
{
    const at_pylayout_t *L = w->L;
    uint8_t table[SET_SCAN * 64];
    if (got < L->set_table + 8 || got < L->set_mask + 8 || got < L->set_used + 8)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->set_used);
    int64_t mask = (int64_t)at_get_u64(head, L->set_mask);
    size_t es = (size_t)L->sizeof_setentry;
    if (it->len < 0 || it->len > MAX_LEN || mask < 0 || mask > MAX_LEN || es < 16 || es > 64)
        return -EPROTO;
    int scan = (int)(mask + 1 < SET_SCAN ? mask + 1 : SET_SCAN);
    int rc = it->len ? read_all(w, at_get_u64(head, L->set_table), table, (size_t)scan * es) : 0;
    for (int i = 0; rc == 0 && i < scan && it->n < AT_REPR_MAX_ITEMS && it->len; i++) {
        uint64_t key = at_get_u64(table, (size_t)i * es);
        int64_t hash = (int64_t)at_get_u64(table, (size_t)i * es + 8);
        if (key && hash != -1)
            it->addr[it->n++] = key;
    }
    return rc;
}

static int container_items(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, items_t *it)
{
    it->n = 0;
    it->len = 0;
    if (k == K_TUPLE || k == K_LIST)
        return sequence_items(w, k, head, got, addr, it);
    return k == K_DICT ? dict_items(w, head, got, it) : set_items(w, head, got, it);
}

static void json_container_begin(walk_t *w, kind_t k, int64_t len)
{
    if (!w->j)
        return;
    at_json_obj_begin(w->j);
    at_json_kv_str(w->j, "type", kind_names[k]);
    at_json_kv_int(w->j, "len", len);
    at_json_key(w->j, "items");
    at_json_arr_begin(w->j);
}

static void json_container_end(walk_t *w, int truncated)
{
    if (!w->j)
        return;
    at_json_arr_end(w->j);
    at_json_kv_bool(w->j, "truncated", truncated);
    at_json_obj_end(w->j);
}

static void put_items(walk_t *w, const shape_t *s, const items_t *it, int depth)
{
    for (int i = 0; i < it->n; i++) {
        if (i)
            put(w, ", ");
        if (s->pairs) {
            if (w->j)
                at_json_arr_begin(w->j);
            value(w, it->addr[2 * i], depth + 1);
            put(w, ": ");
            value(w, it->addr[2 * i + 1], depth + 1);
            if (w->j)
                at_json_arr_end(w->j);
        } else {
            value(w, it->addr[i], depth + 1);
        }
    }
}

static void container(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, int depth)
{
    const shape_t *s = shape_of(k);
    items_t it;
    if (depth >= AT_REPR_MAX_DEPTH) {   /* deep enough: and no cycle runs forever */
        size_t mark = w->len;
        put(w, s->open);
        put(w, "...");
        put(w, s->close);
        w->out->truncated = 1;
        json_described(w, kind_names[k], mark, 1);
        return;
    }
    int rc = container_items(w, k, head, got, addr, &it);
    if (rc < 0) {
        unreadable(w, addr, rc);
        return;
    }
    int cut = it.n < it.len;
    if (it.len == 0) {
        put(w, s->empty);
    } else {
        json_container_begin(w, k, it.len);
        put(w, s->open);
        put_items(w, s, &it, depth);
        /* "..." alone when the items looked at were all deleted ones */
        put(w, cut ? (it.n ? ", ..." : "...") : it.len == 1 && s->one_comma ? "," : "");
        put(w, s->close);
        json_container_end(w, cut);
        w->out->truncated |= cut;
        return;
    }
    json_container_begin(w, k, 0);
    json_container_end(w, 0);
}

/* ---- dispatch ------------------------------------------------------------- */

static int singleton(walk_t *w, uint64_t addr)
{
    const uint64_t *known = w->p->known;
    if (known[AT_PYSYM_NONE] && addr == known[AT_PYSYM_NONE]) {
        put(w, "None");
        if (w->j)
            at_json_null(w->j);
        return 1;
    }
    int t = known[AT_PYSYM_TRUE] && addr == known[AT_PYSYM_TRUE];
    if (!t && !(known[AT_PYSYM_FALSE] && addr == known[AT_PYSYM_FALSE]))
        return 0;
    put(w, t ? "True" : "False");
    if (w->j)
        at_json_bool(w->j, t);
    return 1;
}

static const char *singleton_type(const walk_t *w, uint64_t addr)
{
    const uint64_t *known = w->p->known;
    return addr == known[AT_PYSYM_NONE] ? "NoneType" : "bool";
}

static void value_at(walk_t *w, uint64_t addr, int depth);

/* Read one value at depth (0: the one asked for), noting the depth for
 * unreadable() while it is read. */
static void value(walk_t *w, uint64_t addr, int depth)
{
    int outer = w->depth;
    w->depth = depth;
    value_at(w, addr, depth);
    w->depth = outer;
}

static void value_at(walk_t *w, uint64_t addr, int depth)
{
    uint8_t head[AT_READ_VALUE_HEAD_MAX + AT_REPR_INT_DIGITS * 4];
    if (singleton(w, addr)) {
        if (depth == 0)
            snprintf(w->out->type, sizeof w->out->type, "%s", singleton_type(w, addr));
        return;
    }
    long got = read_some(w, addr, head, sizeof head);
    if (got < w->L->object_type + 8) {
        unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
        return;
    }
    uint64_t type = at_get_u64(head, w->L->object_type);
    kind_t k = kind_of(w->p, type);
    if (depth == 0 && k != K_OTHER)
        snprintf(w->out->type, sizeof w->out->type, "%s", kind_names[k]);
    switch (k) {
    case K_INT:   int_value(w, head, got, addr); break;
    case K_FLOAT: float_value(w, head, got, addr); break;
    case K_STR:   str_value(w, addr, head, got); break;
    case K_BYTES: bytes_value(w, addr, head, got); break;
    case K_OTHER: other(w, addr, type, depth); break;
    default:      container(w, k, head, got, addr, depth); break;
    }
}

int at_py_repr(at_py_proc_t *p, uint64_t addr, at_repr_t *out, at_json_t *j)
{
    walk_t w = { .p = p, .L = &p->layout, .out = out, .j = j, .reads_left = READ_BUDGET };
    out->text[0] = out->type[0] = '\0';
    out->truncated = 0;
    value(&w, addr, 0);
    return w.gone ? -ESRCH : w.top_err;
}
