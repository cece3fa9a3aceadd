/* SPDX-License-Identifier: MIT */
/* speedscope.c - a session as a speedscope file (speedscope.app's own
 * format, https://www.speedscope.app/file-format-schema.json).
 *
 * One "sampled" profile per thread of each process, its samples being
 * the stacks (root first) weighted by the time they stand for (wall or,
 * from eBPF, CPU nanoseconds); with --alloc one profile per process whose
 * samples are the allocation sites weighted by the bytes allocated there.
 * Frames are shared by every profile: one per (function, file, line).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_format.h"
#include "json.h"
#include "report/intern.h"
#include "report/report_features.h"
#include "session/session.h"
#include "session/stacks.h"

#define MAX_THREADS 1024     /* threads of one process given a profile    */
#define MAX_DEPTH   1024     /* frames of one stack                        */

typedef struct ss_frame {
    char *name, *file;
    int line;
} ss_frame_t;

typedef struct ss_frames {
    at_intern_t index;
    ss_frame_t *v;
    size_t n, cap;
    int failed;
} ss_frames_t;

/* The index of (name, file, line) in the shared frame table. */
static uint32_t frame_index(ss_frames_t *t, const char *name, const char *file, int line)
{
    uint64_t key = at_intern_mix(at_intern_hash_str(name) ^ at_intern_mix(at_intern_hash_str(file) + (uint64_t)line)) | 1;
    int added;
    uint64_t id = at_intern_get(&t->index, key, t->n + 1, &added);
    if (!id || (added && t->n == t->cap && !(t->v = realloc(t->v, (t->cap = t->cap ? t->cap * 2 : 256) * sizeof *t->v)))) {
        t->failed = 1;
        return 0;
    }
    if (added)
        t->v[t->n++] = (ss_frame_t){ strdup(name), strdup(file), line };
    return (uint32_t)(id - 1);
}

static void frames_free(ss_frames_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name), free(t->v[i].file);
    free(t->v);
    at_intern_free(&t->index);
}

/* ---- CPU: one profile per thread --------------------------------------------- */

static void profile_begin(at_json_t *j, const char *name, const char *unit)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "type", "sampled");
    at_json_kv_str(j, "name", name);
    at_json_kv_str(j, "unit", unit);
    at_json_kv_int(j, "startValue", 0);
}

/* Close a profile whose samples are written: its weights and end. */
static void profile_end(at_json_t *j, const uint64_t *weights, size_t n)
{
    uint64_t total = 0;
    at_json_key(j, "weights");
    at_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        at_json_uint(j, weights[i]);
        total += weights[i];
    }
    at_json_arr_end(j);
    at_json_kv_uint(j, "endValue", total);
    at_json_obj_end(j);
}

static void frames_of(ss_frames_t *t, at_json_t *j, const at_stacks_t *s, const at_stack_view_t *v)
{
    const at_symtab_t *syms = at_stacks_syms(s);
    at_json_arr_begin(j);
    for (int k = 0; k < v->n && k < MAX_DEPTH; k++) {
        const at_frame_t *f = &v->frames[k];
        int py = at_symtab_kind(syms, f->sym) == AT_SYM_PY;
        at_json_uint(j, frame_index(t, at_symtab_func(syms, f->sym), at_symtab_file(syms, f->sym),
                                    py && f->line > 0 ? f->line : 0));
    }
    at_json_arr_end(j);
}

static int thread_profile(ss_frames_t *t, at_json_t *j, const at_stacks_t *s, uint32_t tid, const at_options_t *o)
{
    const at_stacks_meta_t *m = at_stacks_info(s);
    uint64_t period = m->rate_hz > 0 ? (uint64_t)(1e9 / m->rate_hz) : 1;
    size_t n = at_stacks_count(s), used = 0, cursor = 0;
    uint64_t *weights = malloc((n ? n : 1) * sizeof *weights);
    if (!weights)
        return -ENOMEM;
    char name[160], label[96];
    snprintf(name, sizeof name, "%s (%d) %s", m->comm, (int)at_key_pid(m->pid),
             at_stacks_thread_label(s, tid, label, sizeof label));
    profile_begin(j, name, "nanoseconds");
    at_json_key(j, "samples");
    at_json_arr_begin(j);
    at_stack_view_t v;
    while (at_stacks_next(s, &cursor, &v)) {
        if (v.tid != tid || !at_stacks_included(&v, o))
            continue;
        frames_of(t, j, s, &v);
        weights[used++] = v.count * period;
    }
    at_json_arr_end(j);
    profile_end(j, weights, used);
    free(weights);
    return 0;
}

/* The threads of s that have a shown stack, in first-seen order. */
static size_t threads_of(const at_stacks_t *s, const at_options_t *o, uint32_t *tids, size_t cap)
{
    size_t n = 0, cursor = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &cursor, &v)) {
        size_t k = 0;
        while (k < n && tids[k] != v.tid)
            k++;
        if (k == n && n < cap && at_stacks_included(&v, o))
            tids[n++] = v.tid;
    }
    return n;
}

typedef struct cpu_ctx {
    ss_frames_t *t;
    at_json_t *j;
    const at_options_t *o;
    size_t shown;               /* threads given a profile                 */
} cpu_ctx_t;

static int process_profiles(const at_stacks_t *s, void *arg)
{
    static uint32_t tids[MAX_THREADS];
    cpu_ctx_t *c = arg;
    size_t nt = threads_of(s, c->o, tids, MAX_THREADS);
    int rc = 0;
    c->shown += nt;
    for (size_t k = 0; k < nt && rc == 0; k++)
        rc = thread_profile(c->t, c->j, s, tids[k], c->o);
    return rc;
}

static int cpu_profiles(ss_frames_t *t, at_json_t *j, const char *dir, const at_options_t *o)
{
    cpu_ctx_t c = { t, j, o, 0 };
    int rc = at_stacks_each(dir, process_profiles, &c);
    return rc == 0 && !c.shown ? -ENOENT : rc;     /* only idle stacks: nothing shown */
}

/* ---- memory: one profile per process, weighted by bytes ------------------------ */

static uint32_t group_frame(ss_frames_t *t, const at_alloc_data_t *d, uint32_t g)
{
    return frame_index(t, at_alloc_group_func(d, g), at_alloc_group_file(d, g), d->groups[g].line);
}

static int alloc_profile(ss_frames_t *t, at_json_t *j, const char *dir, pid_t key)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, key, &d);
    if (rc < 0)
        return rc;
    uint64_t *weights = malloc((d.nsites ? d.nsites : 1) * sizeof *weights);
    size_t used = 0;
    char name[64];
    snprintf(name, sizeof name, "pid %d: bytes allocated", (int)at_key_pid(key));
    profile_begin(j, name, "bytes");
    at_json_key(j, "samples");
    at_json_arr_begin(j);
    for (uint32_t i = 0; weights && i < d.nsites; i++) {
        const at_alloc_site_t *s = &d.sites[i];
        if (!s->total_bytes || (d.groups[s->group].flags & AT_ALLOC_G_TOOL))
            continue;
        at_json_arr_begin(j);                  /* root first: outer frames, then the line */
        for (uint32_t k = s->nframes > 1 ? s->nframes - 1u : 0; k >= 1; k--)
            at_json_uint(j, group_frame(t, &d, d.frames[s->frames + k - 1]));
        at_json_uint(j, group_frame(t, &d, s->group));
        at_json_arr_end(j);
        weights[used++] = s->total_bytes;
    }
    at_json_arr_end(j);
    profile_end(j, weights ? weights : (uint64_t[]){ 0 }, used);
    free(weights);
    at_alloc_free(&d);
    return weights ? 0 : -ENOMEM;
}

static int alloc_profiles(ss_frames_t *t, at_json_t *j, const char *dir, const pid_t *keys, size_t n)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = alloc_profile(t, j, dir, keys[i]);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        found += rc == 0;
    }
    return found ? 0 : -ENOENT;
}

/* ---- the file ---------------------------------------------------------------- */

static void write_frames(at_json_t *j, const ss_frames_t *t)
{
    at_json_key(j, "shared");
    at_json_obj_begin(j);
    at_json_key(j, "frames");
    at_json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "name", t->v[i].name ? t->v[i].name : "?");
        if (t->v[i].file && *t->v[i].file)
            at_json_kv_str(j, "file", t->v[i].file);
        if (t->v[i].line > 0)
            at_json_kv_int(j, "line", t->v[i].line);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
    at_json_obj_end(j);
}

/* The profiles go first (they fill the frame table), then the frames: a
 * JSON object's keys may come in any order. */
int at_speedscope_write(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o)
{
    ss_frames_t t;
    memset(&t, 0, sizeof t);
    at_json_t j;
    at_json_init(&j, out, 0);
    at_json_obj_begin(&j);
    at_json_kv_str(&j, "$schema", "https://www.speedscope.app/file-format-schema.json");
    at_json_kv_str(&j, "exporter", "archtrace");
    at_json_kv_str(&j, "name", o && o->alloc_mode ? "archtrace: memory" : "archtrace: samples");
    at_json_kv_int(&j, "activeProfileIndex", 0);
    at_json_key(&j, "profiles");
    at_json_arr_begin(&j);
    int rc = o && o->alloc_mode ? alloc_profiles(&t, &j, dir, keys, n) : cpu_profiles(&t, &j, dir, o);
    at_json_arr_end(&j);
    write_frames(&j, &t);
    at_json_obj_end(&j);
    fputc('\n', out);
    if (rc == 0 && t.failed)
        rc = -ENOMEM;
    frames_free(&t);
    return rc;
}
