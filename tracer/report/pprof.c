/* SPDX-License-Identifier: MIT */
/* pprof.c - a session's sampled stacks, or with --alloc its allocations,
 * as a pprof profile (gzipped profile.proto), the format Grafana
 * Pyroscope, Parca and `go tool pprof` read.
 *
 * The message is built with protobuf-c from pprof's own profile.proto
 * (fetched and compiled at build time, see the Makefile): archtrace fills
 * the generated structs and protobuf-c encodes them.  One profile holds
 * every process of the session: each stack is a Sample whose locations
 * run leaf first (pprof's order), with values {samples, time} and labels
 * pid, thread_id and thread_name.  A location is one (function, line);
 * a function is one (name, file); a native frame's module is its mapping.
 * The time unit follows the sampler's clock: wall nanoseconds for the
 * ptrace sampler, CPU nanoseconds for the eBPF one.  The allocation
 * profile is Go's heap profile's shape: {alloc_objects, alloc_space,
 * inuse_objects, inuse_space} per allocation site (its stack as deep as
 * --alloc-depth recorded it), with labels pid and allocator.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "alloc_format.h"
#include "profile.pb-c.h"
#include "out/textout.h"
#include "report/intern.h"
#include "report/report_features.h"
#include "session/session.h"
#include "session/stacks.h"


/* ---- the profile under construction ------------------------------------------ */

typedef struct builder {
    Perftools__Profiles__Profile p;
    at_intern_t strings, functions, locations, mappings;
    size_t cap_str, cap_fn, cap_loc, cap_map, cap_sample;
    int failed;                /* out of memory somewhere: -ENOMEM at the end */
} builder_t;

/* Append one element to a growing array of pointers. */
static int push(void ***arr, size_t *n, size_t *cap, void *item)
{
    if (!item)
        return -ENOMEM;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void **a = realloc(*arr, c * sizeof *a);
        if (!a)
            return -ENOMEM;
        *arr = a, *cap = c;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

/* The string table index of s ("" is index 0, as pprof requires). */
static int64_t str_id(builder_t *b, const char *s)
{
    if (!s || !*s)
        return 0;
    int added;
    uint64_t id = at_intern_get(&b->strings, at_intern_hash_str(s), b->p.n_string_table, &added);
    if (added) {
        char *copy = strdup(s);
        if (!copy || push((void ***)&b->p.string_table, &b->p.n_string_table, &b->cap_str, copy) < 0)
            b->failed = 1, free(copy);
    }
    return (int64_t)id;
}

static uint64_t mapping_id(builder_t *b, const char *module)
{
    int added;
    uint64_t id = at_intern_get(&b->mappings, at_intern_hash_str(module), b->p.n_mapping + 1, &added);
    if (!added)
        return id;
    Perftools__Profiles__Mapping *m = malloc(sizeof *m);
    if (m) {
        perftools__profiles__mapping__init(m);
        m->id = id;
        m->filename = str_id(b, module);
        m->has_functions = 1;
    }
    if (push((void ***)&b->p.mapping, &b->p.n_mapping, &b->cap_map, m) < 0)
        b->failed = 1;
    return id;
}

/* pprof's viewers drop a name that starts with '<' as if it were C++
 * template arguments ("<module>" shows as "<unknown>"): such a name gets
 * its file's stem in front ("lab04.<module>"); system_name keeps it. */
static int64_t display_name(builder_t *b, const char *name, const char *file)
{
    if (!name || name[0] != '<' || !file || !*file)
        return str_id(b, name);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t stem = strcspn(base, ".");
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s.%s", (int)(stem < 200 ? stem : 200), base, name);
    return str_id(b, buf);
}

static uint64_t function_id(builder_t *b, const char *name, const char *file, int64_t start_line)
{
    int64_t n = str_id(b, name), f = str_id(b, file);
    int added;
    uint64_t id = at_intern_get(&b->functions, at_intern_mix((uint64_t)n << 32 ^ (uint64_t)f) | 1, b->p.n_function + 1, &added);
    if (!added)
        return id;
    Perftools__Profiles__Function *fn = malloc(sizeof *fn);
    if (fn) {
        perftools__profiles__function__init(fn);
        fn->id = id;
        fn->name = display_name(b, name, file);
        fn->system_name = n;
        fn->filename = f;
        fn->start_line = start_line;
    }
    if (push((void ***)&b->p.function, &b->p.n_function, &b->cap_fn, fn) < 0)
        b->failed = 1;
    return id;
}

static Perftools__Profiles__Location *new_location(uint64_t id, uint64_t fn, int64_t line, uint64_t mapping)
{
    Perftools__Profiles__Location *loc = malloc(sizeof *loc);
    Perftools__Profiles__Line *ln = malloc(sizeof *ln);
    Perftools__Profiles__Line **lines = malloc(sizeof *lines);
    if (!loc || !ln || !lines) {
        free(loc), free(ln), free(lines);
        return NULL;
    }
    perftools__profiles__location__init(loc);
    perftools__profiles__line__init(ln);
    ln->function_id = fn;
    ln->line = line;
    lines[0] = ln;
    loc->id = id;
    loc->mapping_id = mapping;
    loc->line = lines;
    loc->n_line = 1;
    return loc;
}

/* The location of function fn at line, made on first use; module, when
 * given, is the native module it lies in (its mapping). */
static uint64_t line_location(builder_t *b, uint64_t fn, int64_t line, const char *module)
{
    int added;
    uint64_t id = at_intern_get(&b->locations, at_intern_mix(fn << 24 ^ (uint64_t)line) | 1, b->p.n_location + 1, &added);
    if (!added)
        return id;
    uint64_t mapping = module && *module ? mapping_id(b, module) : 0;
    if (push((void ***)&b->p.location, &b->p.n_location, &b->cap_loc, new_location(id, fn, line, mapping)) < 0)
        b->failed = 1;
    return id;
}

/* The location of one frame of s: its function at its line. */
static uint64_t location_id(builder_t *b, const at_stacks_t *s, const at_frame_t *f)
{
    const at_symtab_t *t = at_stacks_syms(s);
    int kind = at_symtab_kind(t, f->sym);
    const char *file = at_symtab_file(t, f->sym);
    uint64_t fn = function_id(b, at_symtab_func(t, f->sym), kind == AT_SYM_NATIVE ? "" : file,
                              at_symtab_start_line(t, f->sym));
    int64_t line = kind == AT_SYM_PY && f->line > 0 ? f->line : 0;
    return line_location(b, fn, line, kind == AT_SYM_NATIVE ? file : NULL);
}

/* ---- samples ------------------------------------------------------------------- */

static Perftools__Profiles__Label *label(builder_t *b, const char *key, const char *str, int64_t num)
{
    Perftools__Profiles__Label *l = malloc(sizeof *l);
    if (!l)
        return NULL;
    perftools__profiles__label__init(l);
    l->key = str_id(b, key);
    if (str)
        l->str = str_id(b, str);
    else
        l->num = num;
    return l;
}

/* The asyncio task a stack ran under (--asyncio: its root frame), or NULL. */
static const char *stack_task(const at_stacks_t *s, const at_stack_view_t *v)
{
    return v && v->n > 0 ? at_symtab_task_name(at_stacks_syms(s), v->frames[0].sym) : NULL;
}

/* Labels pid, thread_id, thread_name and, for a stack run under an
 * asyncio task, task (for -tagfocus / Pyroscope's label filters). */
static int sample_labels(builder_t *b, Perftools__Profiles__Sample *smp, const at_stacks_t *s, pid_t pid,
                         uint32_t tid, const at_stack_view_t *v)
{
    const char *name = at_thread_names_get(at_stacks_thread_names(s), tid), *task = stack_task(s, v);
    smp->label[smp->n_label++] = label(b, "pid", NULL, pid);
    smp->label[smp->n_label++] = label(b, "thread_id", NULL, tid);
    if (name)
        smp->label[smp->n_label++] = label(b, "thread_name", name, 0);
    if (task)
        smp->label[smp->n_label++] = label(b, "task", task, 0);
    for (size_t i = 0; i < smp->n_label; i++)
        if (!smp->label[i])
            return -ENOMEM;
    return 0;
}

/* A new sample with room for nloc locations, nval values, 4 labels. */
static Perftools__Profiles__Sample *new_sample(builder_t *b, size_t nloc, size_t nval)
{
    Perftools__Profiles__Sample *smp = calloc(1, sizeof *smp);
    if (!smp)
        return NULL;
    perftools__profiles__sample__init(smp);
    smp->location_id = calloc(nloc ? nloc : 1, sizeof *smp->location_id);
    smp->value = calloc(nval, sizeof *smp->value);
    smp->label = calloc(4, sizeof *smp->label);
    if (push((void ***)&b->p.sample, &b->p.n_sample, &b->cap_sample, smp) < 0) {
        free(smp->location_id), free(smp->value), free(smp->label), free(smp);
        return NULL;
    }
    if (!smp->location_id || !smp->value || !smp->label)
        return NULL;     /* in the profile: freed with it */
    smp->n_value = nval;
    return smp;
}

/* values: samples, time, time holding the GIL, time waiting for it; a
 * stack left out of the view (idle without --idle) still counts where
 * its thread waited for the GIL (blocked in take_gil is idle). */
static int add_sample(builder_t *b, const at_stacks_t *s, const at_stack_view_t *v, int64_t period_ns, int in_view)
{
    Perftools__Profiles__Sample *smp = new_sample(b, (size_t)v->n, 4);
    if (!smp)
        return -ENOMEM;
    for (int k = v->n - 1; k >= 0; k--)   /* leaf first */
        smp->location_id[smp->n_location_id++] = location_id(b, s, &v->frames[k]);
    int64_t ns = (int64_t)v->count * period_ns;
    smp->value[0] = in_view ? (int64_t)v->count : 0;
    smp->value[1] = in_view ? ns : 0;
    smp->value[2] = in_view && v->gil == AT_STACK_GIL_HELD ? ns : 0;
    smp->value[3] = v->gil == AT_STACK_GIL_WAIT ? ns : 0;
    return sample_labels(b, smp, s, at_key_pid(at_stacks_info(s)->pid), v->tid, v);
}

static int add_process(builder_t *b, const at_stacks_t *s, const at_options_t *o)
{
    const at_stacks_meta_t *m = at_stacks_info(s);
    int64_t period = m->rate_hz > 0 ? (int64_t)(1e9 / m->rate_hz) : 0;
    size_t cursor = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &cursor, &v)) {
        int in_view = at_stacks_included(&v, o);
        if ((in_view || v.gil == AT_STACK_GIL_WAIT) && add_sample(b, s, &v, period, in_view) < 0)
            return -ENOMEM;
    }
    if (!b->p.period) {
        b->p.period = period;
        b->p.duration_nanos = (int64_t)(m->duration_s * 1e9);
    }
    return b->failed ? -ENOMEM : 0;
}

/* ---- the header: sample types, period -------------------------------------- */

static Perftools__Profiles__ValueType *value_type(builder_t *b, const char *type, const char *unit)
{
    Perftools__Profiles__ValueType *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    perftools__profiles__value_type__init(t);
    t->type = str_id(b, type);
    t->unit = str_id(b, unit);
    return t;
}

typedef struct sample_types {
    const char *names[4][2];       /* (type, unit) of each value          */
    int n;
    const char *period[2];         /* the period's (type, unit)           */
    const char *shown;             /* the type viewers show first         */
} sample_types_t;

static int start_profile(builder_t *b, const sample_types_t *st)
{
    memset(b, 0, sizeof *b);
    perftools__profiles__profile__init(&b->p);
    if (push((void ***)&b->p.string_table, &b->p.n_string_table, &b->cap_str, strdup("")) < 0)
        return -ENOMEM;
    b->p.sample_type = calloc((size_t)st->n, sizeof *b->p.sample_type);
    if (!b->p.sample_type)
        return -ENOMEM;
    for (int i = 0; i < st->n; i++)
        if (!(b->p.sample_type[b->p.n_sample_type++] = value_type(b, st->names[i][0], st->names[i][1])))
            return -ENOMEM;
    b->p.period_type = value_type(b, st->period[0], st->period[1]);
    b->p.default_sample_type = str_id(b, st->shown);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    b->p.time_nanos = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    return b->p.period_type && !b->failed ? 0 : -ENOMEM;
}

static void free_profile(builder_t *b)
{
    Perftools__Profiles__Profile *p = &b->p;
    for (size_t i = 0; i < p->n_sample; i++) {
        for (size_t k = 0; k < p->sample[i]->n_label; k++)
            free(p->sample[i]->label[k]);
        free(p->sample[i]->label), free(p->sample[i]->location_id), free(p->sample[i]->value), free(p->sample[i]);
    }
    for (size_t i = 0; i < p->n_location; i++)
        free(p->location[i]->line[0]), free(p->location[i]->line), free(p->location[i]);
    for (size_t i = 0; i < p->n_function; i++)
        free(p->function[i]);
    for (size_t i = 0; i < p->n_mapping; i++)
        free(p->mapping[i]);
    for (size_t i = 0; i < p->n_string_table; i++)
        free(p->string_table[i]);
    for (size_t i = 0; i < p->n_sample_type; i++)
        free(p->sample_type[i]);
    free(p->sample), free(p->location), free(p->function), free(p->mapping), free(p->string_table);
    free(p->sample_type), free(p->period_type);
    at_intern_free(&b->strings), at_intern_free(&b->functions), at_intern_free(&b->locations), at_intern_free(&b->mappings);
}

/* ---- encoding ------------------------------------------------------------------ */

/* gzip (pprof's files are gzipped protobufs) of buf into out. */
static int write_gzip(const uint8_t *buf, size_t len, FILE *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uint8_t chunk[65536];
    z.next_in = (uint8_t *)buf;
    z.avail_in = (uInt)len;
    int zrc, rc = 0;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        zrc = deflate(&z, Z_FINISH);
        size_t n = sizeof chunk - z.avail_out;
        if (n && fwrite(chunk, 1, n, out) != n)
            rc = -EIO;
    } while (zrc == Z_OK && rc == 0);
    deflateEnd(&z);
    return rc ? rc : zrc == Z_STREAM_END ? 0 : -EIO;
}

static int encode(const builder_t *b, FILE *out)
{
    size_t len = perftools__profiles__profile__get_packed_size(&b->p);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    perftools__profiles__profile__pack(&b->p, buf);
    int rc = write_gzip(buf, len, out);
    free(buf);
    return rc;
}

/* ---- the renderer ------------------------------------------------------------- */

typedef struct cpu_ctx {
    builder_t b;
    int started;                /* the profile's header is written         */
    const at_options_t *o;
} cpu_ctx_t;

/* One process's stacks; the first one's sampler gives the profile its
 * clock: wall for the ptrace sampler, cpu for the on-CPU eBPF one. */
static int add_stacks(const at_stacks_t *s, void *arg)
{
    cpu_ctx_t *c = arg;
    if (!c->started) {
        const char *clock = at_stacks_info(s)->on_cpu ? "cpu" : "wall";
        sample_types_t st = { { { "samples", "count" }, { clock, "nanoseconds" }, { "gil_hold", "nanoseconds" },
                                { "gil_wait", "nanoseconds" } }, 4, { clock, "nanoseconds" }, clock };
        c->started = 1;
        int rc = start_profile(&c->b, &st);
        if (rc < 0)
            return rc;
    }
    return add_process(&c->b, s, c->o);
}

static int write_cpu(const char *dir, FILE *out, const at_options_t *o)
{
    cpu_ctx_t c = { .o = o };
    int rc = at_stacks_each(dir, add_stacks, &c);
    if (rc < 0 && rc != -ENOENT && !c.started)     /* the listing failed */
        fprintf(stderr, "archtrace: cannot read %s: %s\n", dir, at_errstr(-rc));
    if (rc == 0)
        rc = encode(&c.b, out);
    if (c.started)
        free_profile(&c.b);
    return rc;
}

/* ---- allocations -------------------------------------------------------------- */

static uint64_t alloc_location(builder_t *b, const at_alloc_data_t *d, uint32_t g)
{
    const at_alloc_group_t *grp = &d->groups[g];
    uint64_t fn = function_id(b, at_alloc_group_func(d, g), at_alloc_group_file(d, g), 0);
    return line_location(b, fn, grp->line > 0 ? grp->line : 0, NULL);
}

static int64_t scaled(const at_alloc_data_t *d, int64_t c)
{
    uint32_t scale = d->h->count_scale ? d->h->count_scale : 1;
    return scale == 1 ? c : (c + scale / 2) / scale;
}

/* One allocation site: its stack leaf first (the line that allocated,
 * then the outer frames), {alloc_objects, alloc_space, inuse_objects,
 * inuse_space}.  Frame indexes were validated when the file was read. */
static int add_site(builder_t *b, const at_alloc_data_t *d, const at_alloc_site_t *site, pid_t pid)
{
    Perftools__Profiles__Sample *smp = new_sample(b, site->nframes ? site->nframes : 1, 4);
    if (!smp)
        return -ENOMEM;
    smp->location_id[smp->n_location_id++] = alloc_location(b, d, site->group);
    for (uint32_t k = 1; k < site->nframes; k++)
        smp->location_id[smp->n_location_id++] = alloc_location(b, d, d->frames[site->frames + k - 1]);
    smp->value[0] = scaled(d, (int64_t)site->total_count);
    smp->value[1] = (int64_t)site->total_bytes;
    smp->value[2] = site->live_count > 0 ? scaled(d, site->live_count) : 0;
    smp->value[3] = site->live_bytes > 0 ? site->live_bytes : 0;
    smp->label[smp->n_label++] = label(b, "pid", NULL, pid);
    smp->label[smp->n_label++] = label(b, "allocator", site->kind == AT_ALLOC_KIND_NATIVE ? "native" : "python", 0);
    return smp->label[0] && smp->label[1] && !b->failed ? 0 : -ENOMEM;
}

static int add_alloc_process(builder_t *b, const char *dir, pid_t key)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, key, &d);
    if (rc < 0)
        return rc;
    /* the same sites as the JSON's totals: archtrace's own left out */
    for (uint32_t i = 0; rc == 0 && i < d.nsites; i++) {
        const at_alloc_site_t *s = &d.sites[i];
        if (s->total_bytes && !(d.groups[s->group].flags & AT_ALLOC_G_TOOL))
            rc = add_site(b, &d, s, at_key_pid(key));
    }
    at_alloc_free(&d);
    return rc;
}

static int write_alloc(const char *dir, const pid_t *keys, size_t n, FILE *out)
{
    sample_types_t st = { { { "alloc_objects", "count" }, { "alloc_space", "bytes" }, { "inuse_objects", "count" },
                            { "inuse_space", "bytes" } },
                          4, { "space", "bytes" }, "alloc_space" };
    builder_t b;
    int rc = start_profile(&b, &st), found = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int r = add_alloc_process(&b, dir, keys[i]);
        found += r == 0;
        if (r < 0 && r != -ENOENT)
            rc = r;
    }
    if (rc == 0 && !found)
        rc = -ENOENT;
    if (rc == 0)
        rc = encode(&b, out);
    free_profile(&b);
    return rc;
}

int at_pprof_write(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o)
{
    return o && o->alloc_mode ? write_alloc(dir, keys, n, out) : write_cpu(dir, out, o);
}
