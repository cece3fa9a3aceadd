/* SPDX-License-Identifier: MIT */
/* thread_split.c - running and waiting per thread, and where each waited (see thread_split.h).
 *
 * Every stored stack is one (thread, idle flag, frames) with a count;
 * sorting the (thread, idle, leaf) triples groups each thread's stacks
 * and, within its idle ones, the same leaf frames, so one pass adds the
 * counts up and keeps the commonest idle leaf.
 */
#include "report/thread_split.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "out/textout.h"

#define LABEL_MAX 1024

typedef struct leaf_row {
    uint32_t tid;
    int idle;
    at_frame_t leaf;
    uint64_t count;
} leaf_row_t;

static int cmp_leaf(const void *a, const void *b)
{
    const leaf_row_t *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    if (x->idle != y->idle)
        return x->idle - y->idle;
    if (x->leaf.sym != y->leaf.sym)
        return x->leaf.sym < y->leaf.sym ? -1 : 1;
    return (x->leaf.line > y->leaf.line) - (x->leaf.line < y->leaf.line);
}

static int cmp_samples(const void *a, const void *b)
{
    const at_thread_split_t *x = a, *y = b;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

/* One run of equal (tid, idle, leaf) rows, already summed, into t. */
static void add_run(at_thread_split_t *t, const leaf_row_t *r, uint64_t count)
{
    t->samples += count;
    if (!r->idle)
        return;
    t->idle += count;
    if (count > t->idle_leaf_count) {
        t->idle_leaf = r->leaf;
        t->idle_leaf_count = count;
    }
}

int at_thread_split(const at_stacks_t *s, at_thread_split_t **out)
{
    size_t n = 0, c = 0, cap = at_stacks_count(s) ? at_stacks_count(s) : 1;
    leaf_row_t *rows = malloc(sizeof *rows * cap);
    at_thread_split_t *t = calloc(cap, sizeof *t);
    at_stack_view_t v;
    *out = NULL;
    if (!rows || !t) {
        free(rows), free(t);
        return -ENOMEM;
    }
    while (at_stacks_next(s, &c, &v) && n < cap)
        rows[n++] = (leaf_row_t){ v.tid, v.idle != 0,
                                  v.n ? v.frames[v.n - 1] : (at_frame_t){ AT_SYM_NONE, -1 }, v.count };
    qsort(rows, n, sizeof *rows, cmp_leaf);
    int nt = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint64_t count = 0;
        for (; j < n && cmp_leaf(&rows[i], &rows[j]) == 0; j++)
            count += rows[j].count;
        if (nt == 0 || t[nt - 1].tid != rows[i].tid)
            t[nt++].tid = rows[i].tid;
        add_run(&t[nt - 1], &rows[i], count);
        i = j;
    }
    free(rows);
    qsort(t, (size_t)nt, sizeof *t, cmp_samples);
    *out = t;
    return nt;
}

static const char *leaf_label(const at_stacks_t *s, const at_thread_split_t *t, char *buf, size_t n)
{
    char raw[LABEL_MAX];
    if (!t->idle_leaf_count || t->idle_leaf.sym == AT_SYM_NONE)
        return snprintf(buf, n, "-"), buf;
    at_text_escape(buf, n, at_stacks_frame_label(s, &t->idle_leaf, raw, sizeof raw));
    return buf;
}

void at_thread_split_text(const at_stacks_t *s, const at_thread_split_t *t, int n, int top, FILE *out)
{
    char name[96], leaf[LABEL_MAX];
    if (n <= 0)
        return;
    fprintf(out, "  by thread (idle: not running, e.g. blocked in I/O, a lock or a sleep):\n");
    fprintf(out, "  %-20s %8s %8s %8s %8s  %s\n", "THREAD", "TID", "SAMPLES", "RUNNING", "IDLE", "WAITED MOST IN");
    for (int i = 0; i < n && i < top; i++) {
        const char *raw = at_thread_names_get(at_stacks_thread_names(s), t[i].tid);
        at_text_escape(name, sizeof name, raw ? raw : "-");
        fprintf(out, "  %-20.20s %8u %8" PRIu64 " %7.1f%% %7.1f%%  %s\n", name, t[i].tid, t[i].samples,
                at_pct(t[i].samples - t[i].idle, t[i].samples), at_pct(t[i].idle, t[i].samples),
                leaf_label(s, &t[i], leaf, sizeof leaf));
    }
    if (n > top)
        fprintf(out, "  ... %d more threads (--top N shows more)\n", n - top);
}

void at_thread_split_json(const at_stacks_t *s, const at_thread_split_t *t, int n, at_json_t *j)
{
    char raw[LABEL_MAX];
    at_json_arr_begin(j);
    for (int i = 0; i < n; i++) {
        at_json_obj_begin(j);
        at_json_kv_uint(j, "thread", t[i].tid);
        const char *name = at_thread_names_get(at_stacks_thread_names(s), t[i].tid);
        if (name)
            at_json_kv_str(j, "thread_name", name);
        at_json_kv_uint(j, "samples", t[i].samples);
        at_json_kv_uint(j, "idle", t[i].idle);
        at_json_key(j, "waited_most_in");
        if (t[i].idle_leaf_count && t[i].idle_leaf.sym != AT_SYM_NONE)
            at_json_str(j, at_stacks_frame_label(s, &t[i].idle_leaf, raw, sizeof raw));
        else
            at_json_null(j);
        at_json_kv_uint(j, "waited_most_samples", t[i].idle_leaf_count);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}
