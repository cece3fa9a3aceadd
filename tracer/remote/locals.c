/* SPDX-License-Identifier: MIT */
/* locals.c - the variables of one Python frame, read from outside (see locals.h). */
#include "remote/locals.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "remote/py_repr.h"
#include "remote/py_str.h"

#define MAX_SLOTS  (1 << 20) /* co_nlocalsplus believed: a sanity bound, not a limit of CPython's */
#define SCAN_SLOTS 1024      /* slots read of a frame: AT_LOCALS_MAX shown, with room for
                              * hidden ones; the rest are counted, not read */

/* What the code object says about its variables. */
typedef struct code_vars {
    int n;                   /* co_nlocalsplus                            */
    int nargs;               /* how many of them are arguments            */
    int scan;                /* how many are read: n, at most SCAN_SLOTS  */
    uint64_t names;          /* co_localsplusnames (tuple of str)         */
    uint64_t kinds;          /* co_localspluskinds (bytes)                */
} code_vars_t;

const char *at_local_kind_name(at_local_kind_t k)
{
    static const char *const names[] = { "arg", "local", "cell", "free" };
    return (unsigned)k < 4 ? names[k] : "?";
}

static int say(at_frame_locals_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int say(at_frame_locals_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    return 0;
}

/* The code object's counts and the addresses of its names and kinds. */
static int read_code(at_py_proc_t *p, uint64_t code, code_vars_t *cv)
{
    const at_pylayout_t *L = &p->layout;
    uint8_t hdr[AT_READ_CODE_MAX];
    int rc = at_remote_read(&p->mem, code, hdr, (size_t)L->code_code_adaptive);
    if (rc < 0)
        return rc;
    if (p->code_type && at_get_u64(hdr, L->object_type) != p->code_type)
        return -EPROTO;
    int32_t argc = at_get_i32(hdr, L->code_argcount), kwonly = at_get_i32(hdr, L->code_kwonlyargcount);
    int32_t flags = at_get_i32(hdr, L->code_flags);
    cv->n = at_get_i32(hdr, L->code_nlocalsplus);
    cv->names = at_get_u64(hdr, L->code_localsplusnames);
    cv->kinds = at_get_u64(hdr, L->code_localspluskinds);
    if (cv->n < 0 || cv->n > MAX_SLOTS || argc < 0 || kwonly < 0 || argc > MAX_SLOTS || kwonly > MAX_SLOTS)
        return -EPROTO;
    int64_t nargs = (int64_t)argc + kwonly + !!(flags & L->co_varargs) + !!(flags & L->co_varkeywords);
    cv->nargs = nargs < cv->n ? (int)nargs : cv->n;
    cv->scan = cv->n < SCAN_SLOTS ? cv->n : SCAN_SLOTS;
    return 0;
}

/* A sized object's first items, checked: its type (when known) and its
 * length equal to n; `len` bytes read from items_off on into buf. */
static int read_sized(at_py_proc_t *p, uint64_t obj, uint64_t type, int64_t n, int32_t items_off, void *buf,
                      size_t len)
{
    const at_pylayout_t *L = &p->layout;
    uint8_t head[AT_READ_VALUE_HEAD_MAX];
    int rc = at_remote_read(&p->mem, obj, head, (size_t)L->var_size + 8);
    if (rc < 0)
        return rc;
    if ((type && at_get_u64(head, L->object_type) != type) || (int64_t)at_get_u64(head, L->var_size) != n)
        return -EPROTO;
    return len ? at_remote_read(&p->mem, obj + (uint64_t)items_off, buf, len) : 0;
}

/* A cell slot's value: the cell's contents once the frame made it one
 * (a slot the frame has not yet turned into a cell holds the value). */
static int deref_cell(at_py_proc_t *p, uint64_t *v)
{
    uint64_t type, cell_type = p->known[AT_PYSYM_CELL_TYPE];
    int rc = at_remote_read_u64(&p->mem, *v + (uint64_t)p->layout.object_type, &type);
    if (rc < 0 || !cell_type || type != cell_type)
        return rc;
    return at_remote_read_u64(&p->mem, *v + (uint64_t)p->layout.cell_ref, v);
}

static at_local_kind_t kind_of(const at_pylayout_t *L, const code_vars_t *cv, int i, uint8_t kind)
{
    if (i < cv->nargs)
        return AT_LOCAL_ARG;
    if (kind & L->co_fast_free)
        return AT_LOCAL_FREE;
    return kind & L->co_fast_cell ? AT_LOCAL_CELL : AT_LOCAL_LOCAL;
}

/* The value's repr (and JSON) into var. */
static int read_value(at_py_proc_t *p, uint64_t v, int json, at_local_t *var)
{
    at_repr_t *r = malloc(sizeof *r);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = json ? open_memstream(&buf, &len) : NULL;
    if (!r || (json && !f)) {
        free(r);
        if (f)
            fclose(f);
        free(buf);
        return -ENOMEM;
    }
    at_json_t j;
    if (f)
        at_json_init(&j, f, 0);
    int rc = at_py_repr(p, v, r, f ? &j : NULL);
    if (f)
        fclose(f);
    var->error = rc < 0 ? rc : 0;
    var->truncated = r->truncated;
    snprintf(var->type, sizeof var->type, "%s", r->type);
    var->repr = strdup(r->text);
    var->json = buf;
    free(r);
    return rc == -ESRCH ? rc : var->repr ? 0 : -ENOMEM;
}

/* Variable i, from its name, kind and slot. */
static int read_var(at_py_proc_t *p, const code_vars_t *cv, int i, uint64_t name, uint8_t kind, uint64_t slot,
                    int json, at_local_t *var)
{
    const at_pylayout_t *L = &p->layout;
    memset(var, 0, sizeof *var);
    var->kind = kind_of(L, cv, i, kind);
    long rc = at_py_str_read(&p->mem, L, p->unicode_type, name, var->name, sizeof var->name);
    if (rc == -ESRCH)
        return (int)rc;
    if (rc < 0)
        snprintf(var->name, sizeof var->name, "?%d", i);
    at_py_repr_mask(var->name);   /* an identifier never needs masking; memory may */
    if (slot && (kind & (L->co_fast_cell | L->co_fast_free)) && (rc = deref_cell(p, &slot)) < 0) {
        if (rc == -ESRCH)
            return (int)rc;
        var->error = (int)rc;
        var->repr = strdup("<unreadable cell>");
        return var->repr ? 0 : -ENOMEM;
    }
    var->unbound = slot == 0;
    if (!var->unbound)
        return read_value(p, slot, json, var);
    var->repr = strdup("<unbound>");
    return var->repr ? 0 : -ENOMEM;
}

/* Names, kinds and slots read: each variable into out. */
static int read_vars(at_py_proc_t *p, const code_vars_t *cv, const uint64_t *names, const uint8_t *kinds,
                     const uint64_t *slots, int json, at_frame_locals_t *out)
{
    const at_pylayout_t *L = &p->layout;
    if (!(out->vars = calloc((size_t)(cv->scan ? cv->scan : 1), sizeof *out->vars)))
        return -ENOMEM;
    out->more = cv->n - cv->scan;
    for (int i = 0; i < cv->scan; i++) {
        /* an inlined comprehension's variable (3.12+) is bound only
         * while the comprehension runs, and locals() shows it just then */
        if (L->co_fast_hidden && (kinds[i] & L->co_fast_hidden) && !slots[i])
            continue;
        if (out->n == AT_LOCALS_MAX) {
            out->more++;
            continue;
        }
        int rc = read_var(p, cv, i, names[i], kinds[i], slots[i], json, &out->vars[out->n]);
        out->n++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int at_locals_read(at_py_proc_t *p, uint64_t frame, uint64_t code, int json, at_frame_locals_t *out)
{
    const at_pylayout_t *L = &p->layout;
    code_vars_t cv;
    memset(out, 0, sizeof *out);
    int rc = read_code(p, code, &cv);
    if (rc < 0)
        return rc == -ESRCH ? rc : say(out, "code object unreadable: %s", at_py_repr_why(rc));
    size_t scan = (size_t)cv.scan;
    uint64_t *names = malloc(sizeof *names * (scan + 1)), *slots = malloc(sizeof *slots * (scan + 1));
    uint8_t *kinds = malloc(scan + 1);
    if (!names || !slots || !kinds)
        rc = -ENOMEM;
    else if ((rc = read_sized(p, cv.names, p->known[AT_PYSYM_TUPLE_TYPE], cv.n, L->tuple_items, names,
                              sizeof *names * scan)) < 0)
        say(out, "variable names unreadable: %s", at_py_repr_why(rc));
    else if ((rc = read_sized(p, cv.kinds, p->bytes_type, cv.n, L->bytes_sval, kinds, scan)) < 0)
        say(out, "variable kinds unreadable: %s", at_py_repr_why(rc));
    else if (scan && (rc = at_remote_read(&p->mem, frame + (uint64_t)L->iframe_localsplus, slots,
                                          sizeof *slots * scan)) < 0)
        say(out, "the frame's variables are unreadable: %s", at_py_repr_why(rc));
    else
        rc = read_vars(p, &cv, names, kinds, slots, json, out);
    free(names);
    free(slots);
    free(kinds);
    if (rc == -ESRCH || rc == -ENOMEM)
        return rc;
    return 0;
}

void at_locals_free(at_frame_locals_t *fl)
{
    for (int i = 0; fl->vars && i < fl->n; i++) {
        free(fl->vars[i].repr);
        free(fl->vars[i].json);
    }
    free(fl->vars);
    memset(fl, 0, sizeof *fl);
}
