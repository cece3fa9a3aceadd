/* SPDX-License-Identifier: MIT */
/* native_split.c - native leaf time by library, with its Python caller (see native_split.h).
 *
 * One row per stored stack with a native leaf: (library, innermost
 * Python frame, count).  Sorted by library then caller, runs add up; per
 * library the commonest caller is kept.  Libraries are compared by
 * string (the symbol table interns (kind, function, file), so the same
 * library comes with many symbol ids).
 */
#include "report/native_split.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "out/textout.h"
#include "report/report_features.h"

#define LABEL_MAX 1024

typedef struct lib_row {
    const char *library;
    at_frame_t caller;
    uint64_t count;
} lib_row_t;

static int cmp_caller(const at_frame_t *x, const at_frame_t *y)
{
    if (x->sym != y->sym)
        return x->sym < y->sym ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int cmp_row(const void *a, const void *b)
{
    const lib_row_t *x = a, *y = b;
    int c = strcmp(x->library, y->library);
    return c ? c : cmp_caller(&x->caller, &y->caller);
}

static int cmp_lib(const void *a, const void *b)
{
    const at_native_lib_t *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return strcmp(x->library, y->library);
}

/* The stack's row when its leaf is native: 1, else 0. */
static int native_row(const at_stacks_t *s, const at_stack_view_t *v, lib_row_t *r)
{
    const at_symtab_t *t = at_stacks_syms(s);
    if (v->n < 1 || at_symtab_kind(t, v->frames[v->n - 1].sym) != AT_SYM_NATIVE)
        return 0;
    r->library = at_symtab_file(t, v->frames[v->n - 1].sym);
    r->caller = (at_frame_t){ AT_SYM_NONE, -1 };
    r->count = v->count;
    for (int k = v->n - 2; k >= 0; k--)
        if (at_symtab_kind(t, v->frames[k].sym) == AT_SYM_PY) {
            r->caller = v->frames[k];
            break;
        }
    return 1;
}

/* Rows rows[0..n) sorted: one entry per library into l; the count. */
static int group(const lib_row_t *rows, size_t n, at_native_lib_t *l)
{
    int nl = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint64_t count = 0;
        for (; j < n && cmp_row(&rows[i], &rows[j]) == 0; j++)
            count += rows[j].count;
        if (nl == 0 || strcmp(l[nl - 1].library, rows[i].library))
            l[nl++] = (at_native_lib_t){ .library = rows[i].library, .caller = { AT_SYM_NONE, -1 } };
        l[nl - 1].samples += count;
        if (count > l[nl - 1].caller_samples) {
            l[nl - 1].caller = rows[i].caller;
            l[nl - 1].caller_samples = count;
        }
        i = j;
    }
    return nl;
}

int at_native_split(const at_stacks_t *s, const at_options_t *o, at_native_lib_t **out)
{
    size_t n = 0, c = 0, cap = at_stacks_count(s) ? at_stacks_count(s) : 1;
    lib_row_t *rows = malloc(sizeof *rows * cap);
    at_native_lib_t *l = calloc(cap, sizeof *l);
    at_stack_view_t v;
    *out = NULL;
    if (!rows || !l) {
        free(rows), free(l);
        return -ENOMEM;
    }
    while (at_stacks_next(s, &c, &v) && n < cap)
        if (at_stacks_included(&v, o))
            n += (size_t)native_row(s, &v, &rows[n]);
    qsort(rows, n, sizeof *rows, cmp_row);
    int nl = group(rows, n, l);
    free(rows);
    qsort(l, (size_t)nl, sizeof *l, cmp_lib);
    *out = l;
    return nl;
}

static const char *caller_label(const at_stacks_t *s, const at_native_lib_t *l, char *buf, size_t n)
{
    char raw[LABEL_MAX];
    if (l->caller.sym == AT_SYM_NONE)
        return snprintf(buf, n, "(no Python frame)"), buf;
    at_text_escape(buf, n, at_stacks_frame_label(s, &l->caller, raw, sizeof raw));
    return buf;
}

void at_native_split_text(const at_stacks_t *s, const at_native_lib_t *l, int n, int top, uint64_t total, FILE *out)
{
    char lib[256], caller[LABEL_MAX];
    if (n <= 0)
        return;
    fprintf(out, "  native code by library (samples whose innermost frame is in it; the Python caller):\n");
    fprintf(out, "  %6s  %8s  %-28s %s\n", "share%", "samples", "library", "called most from");
    for (int i = 0; i < n && i < top; i++) {
        at_text_escape(lib, sizeof lib, l[i].library);
        fprintf(out, "  %6.1f  %8" PRIu64 "  %-28s %s\n", at_pct(l[i].samples, total), l[i].samples, lib,
                caller_label(s, &l[i], caller, sizeof caller));
    }
    if (n > top)
        fprintf(out, "  ... %d more libraries (--top N shows more)\n", n - top);
}

void at_native_split_json(const at_stacks_t *s, const at_native_lib_t *l, int n, uint64_t total, at_json_t *j)
{
    char raw[LABEL_MAX];
    at_json_arr_begin(j);
    for (int i = 0; i < n; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "library", l[i].library);
        at_json_kv_uint(j, "samples", l[i].samples);
        at_json_kv_double(j, "share_pct", at_pct(l[i].samples, total));
        at_json_key(j, "called_most_from");
        at_json_str(j, l[i].caller.sym == AT_SYM_NONE ? NULL
                                                     : at_stacks_frame_label(s, &l[i].caller, raw, sizeof raw));
        at_json_kv_uint(j, "called_most_samples", l[i].caller_samples);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}
