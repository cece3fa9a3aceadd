/* SPDX-License-Identifier: MIT */
/* frame_walk_code.c - the walker's code objects: their names and line tables, read once and cached by address.
 *
 * A sample reads frames, not metadata: a code object's qualname,
 * filename and decoded co_linetable are read when its address is first
 * seen or its header reads back different (frame_walk_int.h's code_fresh
 * says when the header need not be read at all). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/frame_walk_int.h"
#include "remote/py_str.h"

/* ---- strings -------------------------------------------------------- */

/* UCS1/2/4 code points to UTF-8 in w->str; "..." marks a cut. */
static const char *to_utf8(at_walker_t *w, const uint8_t *data, size_t nchars, int kind, int cut)
{
    size_t o = 0;
    for (size_t i = 0; i < nchars; i++) {
        uint16_t c2;
        uint32_t c = data[i];
        if (kind == 2) {
            memcpy(&c2, data + i * 2, sizeof c2);
            c = c2;
        } else if (kind == 4) {
            c = at_get_u32(data, i * 4);
        }
        o += at_utf8_put(w->str + o, c);
    }
    if (cut) {
        memcpy(w->str + o, "...", 3);
        o += 3;
    }
    w->str[o] = '\0';
    return w->str;
}

/* Up to len bytes of the object at addr into head: how many came, or -1
 * when fewer than min did or its type is not `type` (0: not known, not
 * checked). */
static long read_head(const at_walker_t *w, uint64_t addr, uint8_t *head, size_t len, long min, uint64_t type)
{
    long got = at_remote_read_some(&w->proc->mem, addr, head, len);
    if (got < min || (type && at_get_u64(head, w->L.object_type) != type))
        return -1;
    return got;
}

/* Read a compact str object; NULL when it is not one. */
static const char *read_str(at_walker_t *w, uint64_t addr)
{
    uint8_t head[STR_HEAD_READ];
    const at_pylayout_t *L = &w->L;
    long got = read_head(w, addr, head, sizeof head, L->sizeof_pyasciiobject, w->proc->unicode_type);
    if (got < 0)
        return NULL;
    int64_t len = (int64_t)at_get_u64(head, L->unicode_length);
    int ascii, kind = at_py_str_compact_kind(L, at_get_u32(head, L->unicode_state), &ascii);
    if (kind < 0 || len < 0)
        return NULL;
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    size_t nchars = len > MAX_STR_CHARS ? MAX_STR_CHARS : (size_t)len;
    size_t nbytes = nchars * (size_t)kind;
    const uint8_t *data = head + off;
    if (off + nbytes > (size_t)got) {
        if (at_remote_read(&w->proc->mem, addr + off, w->raw, nbytes) < 0)
            return NULL;
        data = w->raw;
    }
    return to_utf8(w, data, nchars, kind, len > MAX_STR_CHARS);
}

/* ---- code objects ---------------------------------------------------- */

static uint8_t *read_bytes_obj(at_walker_t *w, uint64_t addr, size_t *len)
{
    uint8_t head[BYTES_HEAD_READ];
    const at_pylayout_t *L = &w->L;
    long got = read_head(w, addr, head, sizeof head, L->bytes_sval, w->proc->bytes_type);
    if (got < 0)
        return NULL;
    int64_t size = (int64_t)at_get_u64(head, L->var_size);
    if (size < 0 || size > MAX_LINETABLE)
        return NULL;
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf)
        return NULL;
    if (L->bytes_sval + size <= got)
        memcpy(buf, head + L->bytes_sval, (size_t)size);
    else if (at_remote_read(&w->proc->mem, addr + (uint64_t)L->bytes_sval, buf, (size_t)size) < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)size;
    return buf;
}

static void decode_lines(at_walker_t *w, code_entry_t *e)
{
    size_t len = 0;
    uint8_t *tab = read_bytes_obj(w, e->linetable, &len);
    e->nranges = -1;
    if (!tab)
        return;
    int n = at_linetable_decode(tab, len, e->firstlineno, NULL, 0);
    if (n >= 0 && (e->ranges = malloc(sizeof *e->ranges * (size_t)(n ? n : 1))))
        e->nranges = at_linetable_decode(tab, len, e->firstlineno, e->ranges, (size_t)n);
    free(tab);
}

static int header_sane(const at_walker_t *w, const uint8_t *hdr)
{
    const at_pylayout_t *L = &w->L;
    int64_t size = (int64_t)at_get_u64(hdr, L->var_size);
    int32_t ft = at_get_i32(hdr, L->code_firsttraceable);
    if (w->proc->code_type && at_get_u64(hdr, L->object_type) != w->proc->code_type)
        return 0;
    return size > 0 && size <= MAX_CODE_UNITS && ft >= 0 && ft <= size;
}

static int header_matches(const at_pylayout_t *L, const code_entry_t *e, const uint8_t *hdr)
{
    return e->filename == at_get_u64(hdr, L->code_filename) &&
           e->qualname == at_get_u64(hdr, L->code_qualname) &&
           e->linetable == at_get_u64(hdr, L->code_linetable) &&
           e->size == (int64_t)at_get_u64(hdr, L->var_size) &&
           e->firstlineno == at_get_i32(hdr, L->code_firstlineno) &&
           e->firsttraceable == at_get_i32(hdr, L->code_firsttraceable);
}

static void code_clear(code_entry_t *e)
{
    free(e->ranges);
    memset(e, 0, sizeof *e);
}

/* (Re)fill a slot from a freshly read header: names, then the line table. */
static int code_fill(at_walker_t *w, code_entry_t *e, uint64_t addr, const uint8_t *hdr)
{
    const at_pylayout_t *L = &w->L;
    char func[STR_OUT_MAX];
    code_clear(e);
    e->filename = at_get_u64(hdr, L->code_filename);
    e->qualname = at_get_u64(hdr, L->code_qualname);
    e->linetable = at_get_u64(hdr, L->code_linetable);
    e->size = (int64_t)at_get_u64(hdr, L->var_size);
    e->firstlineno = at_get_i32(hdr, L->code_firstlineno);
    e->firsttraceable = at_get_i32(hdr, L->code_firsttraceable);
    const char *s = read_str(w, e->qualname);
    if (!s)
        return -EFAULT;
    snprintf(func, sizeof func, "%s", s);
    if (!(s = read_str(w, e->filename)))
        return -EFAULT;
    e->sym = at_symtab_intern(w->syms, AT_SYM_PY, func, s);
    at_symtab_set_start_line(w->syms, e->sym, e->firstlineno);
    if (e->sym == AT_SYM_NONE)
        return -ENOMEM;
    decode_lines(w, e);
    e->addr = addr;
    return 0;
}

const code_entry_t *at_walker_code_lookup(at_walker_t *w, uint64_t addr, const uint8_t *hdr)
{
    code_entry_t *e = code_slot(w, addr);
    if (!header_sane(w, hdr))
        return NULL;
    if (!(e->addr == addr && header_matches(&w->L, e, hdr)) && code_fill(w, e, addr, hdr) < 0) {
        code_clear(e);
        return NULL;
    }
    e->checked_ns = w->now_ns;
    return e;
}
