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
#include "remote/py_repr_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>


#define READ_BUDGET    1024   /* remote reads one value may cost          */

/* ---- output ------------------------------------------------------------- */

/* Append n bytes of text; past the end of the buffer, one cut mark. */
void at_repr_put_n(walk_t *w, const char *s, size_t n)
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

void at_repr_put(walk_t *w, const char *s)
{
    at_repr_put_n(w, s, strlen(s));
}

/* {"type": type, "repr": text since mark, "truncated": true?}: the JSON
 * of a value that is not a plain JSON scalar. */
void at_repr_json_described(walk_t *w, const char *type, size_t mark, int truncated)
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
long at_repr_read_some(walk_t *w, uint64_t addr, void *buf, size_t len)
{
    if (w->gone || w->reads_left <= 0)
        return w->gone ? -ESRCH : -E2BIG;
    w->reads_left--;
    long got = at_remote_read_some(&w->p->mem, addr, buf, len);
    w->gone |= got == -ESRCH;
    return got;
}

int at_repr_read_all(walk_t *w, uint64_t addr, void *buf, size_t len)
{
    long got = at_repr_read_some(w, addr, buf, len);
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

void at_repr_unreadable(walk_t *w, uint64_t addr, int err)
{
    char buf[64];
    size_t mark = w->len;
    if (w->depth == 0)
        w->top_err = err;   /* the value asked for, not one of its items */
    snprintf(buf, sizeof buf, "<unreadable 0x%" PRIx64 ">", addr);
    at_repr_put(w, buf);
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
    return c <= 0x20 || (c >= 0x7f && c < 0xa0) || at_repr_hidden_char(c) ? 0 : len;
}

/* The visible characters of s[0..n) (up to a NUL) into out, '?' for
 * each byte that starts none, while out has room for one more character
 * and its NUL (size); out may be s itself, as it never runs ahead of
 * it.  Returns the bytes written, NUL not included. */
static size_t copy_visible(char *out, size_t size, const unsigned char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && s[i] && o + 4 < size;) {
        size_t len = name_char(s + i, n - i);
        if (len == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        memmove(out + o, s + i, len);
        o += len;
        i += len;
    }
    return o;
}

void at_py_repr_mask(char *s)
{
    s[copy_visible(s, SIZE_MAX, (const unsigned char *)s, strlen(s))] = '\0';
}

/* tp_name of the type at `type`, read bounded into name: what is not a
 * visible UTF-8 character becomes '?' (a name is shown, never trusted);
 * "?" when unreadable. */
static void type_name(walk_t *w, uint64_t type, char *name, size_t size)
{
    uint64_t ptr = 0;
    unsigned char raw[AT_REPR_TYPE_MAX];
    long got = at_repr_read_all(w, type + (uint64_t)w->L->type_name, &ptr, sizeof ptr) == 0
                   ? at_repr_read_some(w, ptr, raw, sizeof raw - 1) : -1;
    size_t n = copy_visible(name, size, raw, got > 0 ? (size_t)got : 0);
    if (n == 0)
        name[n++] = '?';
    name[n] = '\0';
}

const char *const at_repr_kind_names[] = {
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
    at_repr_put(w, buf);
    at_repr_json_described(w, name, mark, 0);
}
/* ---- dispatch ------------------------------------------------------------- */

static int singleton(walk_t *w, uint64_t addr)
{
    const uint64_t *known = w->p->known;
    if (known[AT_PYSYM_NONE] && addr == known[AT_PYSYM_NONE]) {
        at_repr_put(w, "None");
        if (w->j)
            at_json_null(w->j);
        return 1;
    }
    int t = known[AT_PYSYM_TRUE] && addr == known[AT_PYSYM_TRUE];
    if (!t && !(known[AT_PYSYM_FALSE] && addr == known[AT_PYSYM_FALSE]))
        return 0;
    at_repr_put(w, t ? "True" : "False");
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
void at_repr_value(walk_t *w, uint64_t addr, int depth)
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
    long got = at_repr_read_some(w, addr, head, sizeof head);
    if (got < w->L->object_type + 8) {
        at_repr_unreadable(w, addr, got < 0 ? (int)got : -EFAULT);
        return;
    }
    uint64_t type = at_get_u64(head, w->L->object_type);
    kind_t k = kind_of(w->p, type);
    if (depth == 0 && k != K_OTHER)
        snprintf(w->out->type, sizeof w->out->type, "%s", at_repr_kind_names[k]);
    switch (k) {
    case K_INT:   at_repr_int(w, head, got, addr); break;
    case K_FLOAT: at_repr_float(w, head, got, addr); break;
    case K_STR:   at_repr_str(w, addr, head, got); break;
    case K_BYTES: at_repr_bytes(w, addr, head, got); break;
    case K_OTHER: other(w, addr, type, depth); break;
    default:      at_repr_container(w, k, head, got, addr, depth); break;
    }
}

int at_py_repr(at_py_proc_t *p, uint64_t addr, at_repr_t *out, at_json_t *j)
{
    walk_t w = { .p = p, .L = &p->layout, .out = out, .j = j, .reads_left = READ_BUDGET };
    out->text[0] = out->type[0] = '\0';
    out->truncated = 0;
    at_repr_value(&w, addr, 0);
    return w.gone ? -ESRCH : w.top_err;
}
