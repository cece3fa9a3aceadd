/* SPDX-License-Identifier: MIT */
/* gil_waits.c - where threads waited for the GIL, from the samples (see gil_waits.h). */
#include "report/gil_waits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "out/textout.h"

#define LABEL_MAX 2048

/* Where threads waited for the GIL: the innermost frames of the samples
 * that found them blocked in take_gil (idle or not), most first. */
typedef struct wait_site {
    at_frame_t f;
    uint64_t count;
} wait_site_t;

static int cmp_wait_site(const void *a, const void *b)
{
    const wait_site_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->f.sym > y->f.sym) - (x->f.sym < y->f.sym);
}

static int gil_wait_sites(const at_stacks_t *s, wait_site_t **out, uint64_t *total)
{
    size_t c = 0, n = 0, cap = at_stacks_count(s) ? at_stacks_count(s) : 1;
    at_stack_view_t v;
    wait_site_t *w = calloc(cap, sizeof *w);
    *total = 0;
    *out = w;
    if (!w)
        return -ENOMEM;
    while (at_stacks_next(s, &c, &v)) {
        if (v.gil != AT_STACK_GIL_WAIT || !v.n)
            continue;
        at_frame_t leaf = v.frames[v.n - 1];
        size_t k = 0;
        while (k < n && (w[k].f.sym != leaf.sym || w[k].f.line != leaf.line))
            k++;
        if (k == n)
            w[n++].f = leaf;
        w[k].count += v.count;
        *total += v.count;
    }
    qsort(w, n, sizeof *w, cmp_wait_site);
    return (int)n;
}

void at_gil_waits_text(const at_stacks_t *s, int top, FILE *out)
{
    wait_site_t *w;
    uint64_t total;
    char raw[LABEL_MAX], label[LABEL_MAX];
    int n = gil_wait_sites(s, &w, &total);
    if (n > 0) {
        fprintf(out, "  waiting for the GIL (sampled: blocked in take_gil), %" PRIu64 " thread-samples, most at:\n", total);
        for (int i = 0; i < n && i < top; i++) {
            at_text_escape(label, sizeof label, at_stacks_frame_label(s, &w[i].f, raw, sizeof raw));
            fprintf(out, "  %6.1f%%  %8" PRIu64 "  %s\n", at_pct(w[i].count, total), w[i].count, label);
        }
    }
    free(w);
}

void at_gil_waits_json(const at_stacks_t *s, at_json_t *j)
{
    wait_site_t *w;
    uint64_t total;
    char raw[LABEL_MAX];
    int n = gil_wait_sites(s, &w, &total);
    if (n >= 0) {
        at_json_kv_uint(j, "gil_wait_samples", total);
        at_json_key(j, "gil_waits");
        at_json_arr_begin(j);
        for (int i = 0; i < n; i++) {
            at_json_obj_begin(j);
            at_json_kv_str(j, "frame", at_stacks_frame_label(s, &w[i].f, raw, sizeof raw));
            at_json_kv_uint(j, "samples", w[i].count);
            at_json_obj_end(j);
        }
        at_json_arr_end(j);
    }
    free(w);
}

