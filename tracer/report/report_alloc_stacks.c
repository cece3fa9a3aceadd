/* SPDX-License-Identifier: MIT */
/* report_alloc_stacks.c - allocations drawn over time and by stack: the Chrome trace's memory counter, folded stacks, the memory flame graph.
 *
 * From <pid>.alloc as session/alloc_model.c validated it (every index
 * and offset checked when it was loaded); a site's stack is its outer
 * frames root first, then its own line, tool memory left out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc_format.h"
#include "report/flamegraph.h"
#include "report/report_alloc_int.h"
#include "report/report_features.h"
#include "session/session.h"

/* ---- Chrome trace and folded stacks --------------------------------------- */

static void chrome_counter(at_json_t *j, pid_t pid, const at_alloc_snap_t *sn)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", "memory");
    at_json_kv_str(j, "ph", "C");
    at_json_kv_int(j, "pid", pid);
    at_json_kv_double(j, "ts", (double)sn->ns / 1e3);
    at_json_key(j, "args");
    at_json_obj_begin(j);
    at_json_kv_int(j, "python", sn->py_bytes);
    at_json_kv_int(j, "native", sn->native_bytes);
    at_json_obj_end(j);
    at_json_obj_end(j);
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", sn->kind == AT_ALLOC_SNAP_KIND_MARKER ? sn->label : sn->kind == AT_ALLOC_SNAP_KIND_PEAK ? "memory peak" : "exit");
    at_json_kv_str(j, "ph", "i");
    at_json_kv_str(j, "s", "p");
    at_json_kv_int(j, "pid", pid);
    at_json_kv_int(j, "tid", pid);
    at_json_kv_double(j, "ts", (double)sn->ns / 1e3);
    at_json_obj_end(j);
}

int at_alloc_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, pid, &d);
    if (rc < 0)
        return rc;
    const at_alloc_snap_t *list[AT_ALLOC_SNAP_CAP];
    size_t n = 0;
    for (uint32_t i = 0; i < d.h->snap_cap && n < AT_ALLOC_SNAP_CAP; i++) {
        const at_alloc_snap_t *sn = &d.snaps[i];
        if (sn->seq && !(sn->seq & 1))
            list[n++] = sn;
    }
    for (size_t a = 1; a < n; a++)                  /* by time */
        for (size_t b = a; b > 0 && list[b - 1]->ns > list[b]->ns; b--) {
            const at_alloc_snap_t *t = list[b];
            list[b] = list[b - 1], list[b - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        chrome_counter(j, pid, list[i]);
    at_alloc_free(&d);
    return 0;
}

static void put_frame(FILE *out, const at_alloc_data_t *d, uint32_t g)
{
    const at_alloc_group_t *grp = &d->groups[g];
    for (const char *s = at_alloc_str(d, grp->func); *s; s++)
        fputc(*s == ';' || *s == '\n' ? '_' : *s, out);
    fputs(" (", out);
    for (const char *s = at_alloc_str(d, grp->file); *s; s++)
        fputc(*s == ';' || *s == '\n' ? '_' : *s, out);
    fprintf(out, ":%d)", grp->line);
}

int at_alloc_write_collapsed(const char *dir, pid_t pid, FILE *out)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, pid, &d);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < d.nsites; i++) {
        const at_alloc_site_t *s = &d.sites[i];
        if (!s->total_bytes || (d.groups[s->group].flags & AT_ALLOC_G_TOOL))
            continue;
        for (int k = (int)s->nframes - 1; k >= 1; k--) {
            put_frame(out, &d, d.frames[s->frames + (uint32_t)k - 1]);
            fputc(';', out);
        }
        put_frame(out, &d, s->group);
        if (s->kind == AT_ALLOC_KIND_NATIVE)
            fputs(";[native malloc]", out);
        fprintf(out, " %llu\n", (unsigned long long)s->total_bytes);
    }
    at_alloc_free(&d);
    return 0;
}

/* ---- memory flame graph ---------------------------------------------------- */

#define FLAME_LABEL_MAX 1024
#define FLAME_DEPTH     (3 + 130)   /* process, allocator, frames (--alloc-depth <= 128) */

/* "func (file:line)", the label the CPU flame graph gives a Python frame. */
static void frame_label(const at_alloc_data_t *d, uint32_t g, char *buf, size_t n)
{
    const char *file = at_alloc_group_file(d, g);
    if (*file)
        snprintf(buf, n, "%s (%s:%d)", at_alloc_group_func(d, g), file, d->groups[g].line);
    else
        snprintf(buf, n, "%s", at_alloc_group_func(d, g));
}

/* One site's stack, root first: process, allocator, outer frames, its line.
 * The frame indexes were validated by at_alloc_parse. */
static int site_stack(const at_alloc_data_t *d, const at_alloc_site_t *s, const char *proc,
                      char (*labels)[FLAME_LABEL_MAX], int *kinds)
{
    int n = 0, native = s->kind == AT_ALLOC_KIND_NATIVE;
    snprintf(labels[n], FLAME_LABEL_MAX, "%s", proc);
    kinds[n++] = 2;
    snprintf(labels[n], FLAME_LABEL_MAX, "%s", native ? "native malloc" : "Python allocators");
    kinds[n++] = 2;
    for (int k = (int)s->nframes - 1; k >= 1 && n < FLAME_DEPTH - 1; k--) {
        frame_label(d, d->frames[s->frames + (uint32_t)k - 1], labels[n], FLAME_LABEL_MAX);
        kinds[n++] = 0;
    }
    frame_label(d, s->group, labels[n], FLAME_LABEL_MAX);
    kinds[n++] = native ? 1 : 0;
    return n;
}

int at_alloc_flame_add(const char *dir, pid_t pid, at_flame_t *f)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, pid, &d);
    if (rc < 0)
        return rc;
    char proc[64];
    char (*labels)[FLAME_LABEL_MAX] = malloc(sizeof *labels * FLAME_DEPTH);
    const char *ptrs[FLAME_DEPTH];
    int kinds[FLAME_DEPTH];
    snprintf(proc, sizeof proc, "pid %d", (int)at_key_pid(pid));
    rc = labels ? 0 : -ENOMEM;
    /* the same sites as the JSON's total_bytes (tool memory left out) */
    for (uint32_t i = 0; rc == 0 && i < d.nsites; i++) {
        const at_alloc_site_t *s = &d.sites[i];
        if (!s->total_bytes || (d.groups[s->group].flags & AT_ALLOC_G_TOOL))
            continue;
        int n = site_stack(&d, s, proc, labels, kinds);
        for (int k = 0; k < n; k++)
            ptrs[k] = labels[k];
        rc = at_flame_add_blocks(f, ptrs, kinds, n, s->total_bytes,
                                 (uint64_t)alloc_counts(&d, (int64_t)s->total_count));
    }
    free(labels);
    at_alloc_free(&d);
    return rc;
}
