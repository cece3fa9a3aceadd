/* SPDX-License-Identifier: MIT */
/* stacks.c - symbol table, stack aggregation and the <pid>.stacks file (see stacks.h). */
#include "session/stacks.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"
#include "out/textout.h"
#include "session/tsv.h"

#define SYMTAB_MAX      (1u << 22)   /* distinct symbols per process       */
#define STACKS_MAX      (1u << 19)   /* distinct stacks per process        */
#define POOL_MAX        (1u << 23)   /* frames stored per process          */
#define STACK_MAX_N     1024         /* frames in one stack (python+native) */
#define LINE_MAX_BYTES  (1u << 20)   /* longest line accepted on load      */
#define FORMAT_MAGIC    "archtrace-stacks"
#define FORMAT_VERSION  1

/* ---- hashing ---------------------------------------------------------- */

static uint32_t fnv(uint32_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Grow an open-addressing index of (id + 1) so it stays under half full. */
static int index_grow(uint32_t **index, uint32_t *cap, uint32_t used,
                      uint32_t (*hash_of)(const void *ctx, uint32_t id), const void *ctx)
{
    if (*cap && used * 2 < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 1024;
    uint32_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (uint32_t id = 0; id < used; id++) {
        uint32_t h = hash_of(ctx, id) & (ncap - 1);
        while (n[h])
            h = (h + 1) & (ncap - 1);
        n[h] = id + 1;
    }
    free(*index);
    *index = n;
    *cap = ncap;
    return 0;
}

/* ---- symbol table ------------------------------------------------------ */

typedef struct sym {
    char *func;              /* function / symbol name (UTF-8)            */
    char *file;              /* co_filename / module                      */
    uint32_t hash;           /* of kind, func, file                       */
    uint8_t kind;            /* enum at_sym_kind                          */
} sym_t;

struct at_symtab {
    sym_t *v;                /* symbols by id                             */
    uint32_t n, cap;
    uint32_t *index;         /* open addressing: id + 1, 0 = empty        */
    uint32_t index_cap;
};

static uint32_t sym_hash(int kind, const char *func, const char *file)
{
    uint8_t k = (uint8_t)kind;
    uint32_t h = fnv(2166136261u, &k, 1);
    h = fnv(h, func, strlen(func) + 1);
    return fnv(h, file, strlen(file));
}

static uint32_t sym_hash_of(const void *ctx, uint32_t id)
{
    return ((const at_symtab_t *)ctx)->v[id].hash;
}

at_symtab_t *at_symtab_new(void)
{
    return calloc(1, sizeof(at_symtab_t));
}

void at_symtab_free(at_symtab_t *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n; i++) {
        free(t->v[i].func);
        free(t->v[i].file);
    }
    free(t->v);
    free(t->index);
    free(t);
}

static int sym_append(at_symtab_t *t, int kind, const char *func, const char *file, uint32_t h)
{
    if (t->n == t->cap) {
        uint32_t ncap = t->cap ? t->cap * 2 : 256;
        sym_t *nv = realloc(t->v, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->v = nv;
        t->cap = ncap;
    }
    sym_t *s = &t->v[t->n];
    s->func = strdup(func);
    s->file = strdup(file);
    if (!s->func || !s->file) {
        free(s->func);
        free(s->file);
        return -ENOMEM;
    }
    s->hash = h;
    s->kind = (uint8_t)kind;
    t->n++;
    return 0;
}

uint32_t at_symtab_intern(at_symtab_t *t, int kind, const char *func, const char *file)
{
    func = func ? func : "";
    file = file ? file : "";
    uint32_t h = sym_hash(kind, func, file);
    if (index_grow(&t->index, &t->index_cap, t->n, sym_hash_of, t) < 0)
        return AT_SYM_NONE;
    uint32_t i = h & (t->index_cap - 1);
    for (; t->index[i]; i = (i + 1) & (t->index_cap - 1)) {
        const sym_t *s = &t->v[t->index[i] - 1];
        if (s->hash == h && s->kind == kind && !strcmp(s->func, func) && !strcmp(s->file, file))
            return t->index[i] - 1;
    }
    if (t->n >= SYMTAB_MAX || sym_append(t, kind, func, file, h) < 0)
        return AT_SYM_NONE;
    t->index[i] = t->n;
    return t->n - 1;
}

uint32_t at_symtab_count(const at_symtab_t *t)
{
    return t->n;
}

const char *at_symtab_func(const at_symtab_t *t, uint32_t id)
{
    return id < t->n ? t->v[id].func : "?";
}

const char *at_symtab_file(const at_symtab_t *t, uint32_t id)
{
    return id < t->n ? t->v[id].file : "?";
}

int at_symtab_kind(const at_symtab_t *t, uint32_t id)
{
    return id < t->n ? t->v[id].kind : AT_SYM_MARK;
}

const char *at_symtab_task_name(const at_symtab_t *t, uint32_t id)
{
    if (at_symtab_kind(t, id) != AT_SYM_TASK)
        return NULL;
    const char *f = at_symtab_func(t, id);
    return strncmp(f, "task ", 5) ? f : f + 5;
}

/* ---- aggregation ------------------------------------------------------- */

typedef struct stack_rec {
    uint64_t count;          /* samples of this stack                     */
    uint32_t hash;           /* of tid, flags, frames                     */
    uint32_t tid;            /* thread                                    */
    uint32_t off;            /* first frame in the pool                   */
    uint16_t n;              /* frames                                    */
    uint8_t idle, gil;       /* flags                                     */
} stack_rec_t;

struct at_stacks {
    at_stacks_meta_t meta;   /* what the file header says                 */
    at_symtab_t *syms;       /* symbols the frames point at               */
    stack_rec_t *recs;       /* distinct stacks                           */
    uint32_t n, cap;
    uint32_t *index;         /* open addressing: rec id + 1               */
    uint32_t index_cap;
    at_frame_t *pool;        /* frames of all stacks, root first          */
    uint32_t pool_n, pool_cap;
    at_thread_names_t names; /* threading names of its threads            */
};

static uint32_t stack_hash(uint32_t tid, int idle, int gil, const at_frame_t *f, int n)
{
    uint32_t head[3] = { tid, (uint32_t)idle, (uint32_t)gil };
    return fnv(fnv(2166136261u, head, sizeof head), f, sizeof *f * (size_t)n);
}

static uint32_t rec_hash_of(const void *ctx, uint32_t id)
{
    return ((const at_stacks_t *)ctx)->recs[id].hash;
}

at_stacks_t *at_stacks_new(pid_t pid)
{
    at_stacks_t *s = calloc(1, sizeof *s);
    if (!s || !(s->syms = at_symtab_new())) {
        free(s);
        return NULL;
    }
    s->meta.pid = pid;
    return s;
}

void at_stacks_free(at_stacks_t *s)
{
    if (!s)
        return;
    at_symtab_free(s->syms);
    at_thread_names_free(&s->names);
    free(s->recs);
    free(s->index);
    free(s->pool);
    free(s);
}

at_symtab_t *at_stacks_symtab(at_stacks_t *s)
{
    return s->syms;
}

at_stacks_meta_t *at_stacks_meta(at_stacks_t *s)
{
    return &s->meta;
}

at_thread_names_t *at_stacks_names(at_stacks_t *s)
{
    return &s->names;
}

const at_symtab_t *at_stacks_syms(const at_stacks_t *s)
{
    return s->syms;
}

const at_stacks_meta_t *at_stacks_info(const at_stacks_t *s)
{
    return &s->meta;
}

const at_thread_names_t *at_stacks_thread_names(const at_stacks_t *s)
{
    return &s->names;
}

size_t at_stacks_count(const at_stacks_t *s)
{
    return s->n;
}

size_t at_stacks_frame_count(const at_stacks_t *s)
{
    return s->pool_n;
}

const char *at_stacks_thread_label(const at_stacks_t *s, uint32_t tid, char *buf, size_t n)
{
    return at_thread_names_label(&s->names, tid, buf, n);
}

static int rec_matches(const at_stacks_t *s, const stack_rec_t *r, uint32_t h, uint32_t tid,
                       int idle, int gil, const at_frame_t *f, int n)
{
    /* n == 0: the pool may still be NULL, which memcmp must not see */
    return r->hash == h && r->tid == tid && r->idle == idle && r->gil == gil && r->n == n &&
           (n == 0 || !memcmp(s->pool + r->off, f, sizeof *f * (size_t)n));
}

static int reserve(at_stacks_t *s, int n)
{
    if (s->n >= STACKS_MAX || s->pool_n + (uint32_t)n > POOL_MAX)
        return -ENOSPC;
    if (s->n == s->cap) {
        uint32_t ncap = s->cap ? s->cap * 2 : 256;
        stack_rec_t *nr = realloc(s->recs, ncap * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        s->recs = nr;
        s->cap = ncap;
    }
    while (s->pool_n + (uint32_t)n > s->pool_cap) {
        uint32_t ncap = s->pool_cap ? s->pool_cap * 2 : 4096;
        at_frame_t *np = realloc(s->pool, ncap * sizeof *np);
        if (!np)
            return -ENOMEM;
        s->pool = np;
        s->pool_cap = ncap;
    }
    return 0;
}

int at_stacks_add(at_stacks_t *s, uint32_t tid, int idle, int gil,
                  const at_frame_t *frames, int n, uint64_t count)
{
    if (n < 0 || n > STACK_MAX_N)
        return -EINVAL;
    idle = !!idle;
    gil = !!gil;
    uint32_t h = stack_hash(tid, idle, gil, frames, n);
    if (index_grow(&s->index, &s->index_cap, s->n, rec_hash_of, s) < 0)
        return -ENOMEM;
    uint32_t i = h & (s->index_cap - 1);
    for (; s->index[i]; i = (i + 1) & (s->index_cap - 1)) {
        stack_rec_t *r = &s->recs[s->index[i] - 1];
        if (rec_matches(s, r, h, tid, idle, gil, frames, n)) {
            r->count += count;
            return 0;
        }
    }
    int rc = reserve(s, n);
    if (rc < 0) {
        s->meta.missed += count;
        return rc;
    }
    stack_rec_t *r = &s->recs[s->n++];
    *r = (stack_rec_t){ count, h, tid, s->pool_n, (uint16_t)n, (uint8_t)idle, (uint8_t)gil };
    if (n)
        memcpy(s->pool + s->pool_n, frames, sizeof *frames * (size_t)n);
    s->pool_n += (uint32_t)n;
    s->index[i] = s->n;
    return 0;
}

int at_stacks_next(const at_stacks_t *s, size_t *cursor, at_stack_view_t *v)
{
    if (*cursor >= s->n)
        return 0;
    const stack_rec_t *r = &s->recs[(*cursor)++];
    *v = (at_stack_view_t){ r->tid, r->idle, r->gil, r->count, r->n, s->pool + r->off };
    return 1;
}

const char *at_stacks_frame_label(const at_stacks_t *s, const at_frame_t *f, char *buf, size_t n)
{
    const char *func = at_symtab_func(s->syms, f->sym), *file = at_symtab_file(s->syms, f->sym);
    int kind = at_symtab_kind(s->syms, f->sym);
    if (kind == AT_SYM_MARK || kind == AT_SYM_TASK || !file[0])
        snprintf(buf, n, "%s", func);
    else if (kind == AT_SYM_PY && f->line >= 0)
        snprintf(buf, n, "%s (%s:%d)", func, file, (int)f->line);
    else
        snprintf(buf, n, "%s (%s)", func, file);
    return buf;
}

/* ---- saving ------------------------------------------------------------ */

static const char *kind_name(int kind)
{
    return kind == AT_SYM_PY ? "py" : kind == AT_SYM_NATIVE ? "native" : kind == AT_SYM_TASK ? "task" : "mark";
}

static void save_header(const at_stacks_t *s, FILE *f)
{
    const at_stacks_meta_t *m = &s->meta;
    fprintf(f, FORMAT_MAGIC "\t%d\n", FORMAT_VERSION);
    fprintf(f, "pid\t%d\ncomm\t", (int)at_key_pid(m->pid));   /* the file's name says which program */
    at_tsv_put(f, m->comm);
    fputs("\nversion\t", f);
    at_tsv_put(f, m->version);
    fputs("\nbuild\t", f);
    at_tsv_put(f, m->build);
    fprintf(f, "\nrate_hz\t%.6g\nsamples\t%" PRIu64 "\nmissed\t%" PRIu64 "\nduration_s\t%.6f\nnative\t%d\n",
            m->rate_hz, m->samples, m->missed, m->duration_s, m->native);
    if (m->on_cpu)
        fprintf(f, "cpu_s\t%.9f\ncpu_intervals\t%" PRIu64 "\n", m->cpu_s, m->cpu_intervals);
    if (m->waits_polled || m->waits_timed)
        fprintf(f, "waits\t%" PRIu64 "\t%" PRIu64 "\n", m->waits_polled, m->waits_timed);
    if (m->busy_s > 0)
        fprintf(f, "busy_s\t%.9f\n", m->busy_s);
    if (m->read_calls || m->proc_reads)
        fprintf(f, "reads\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", m->read_calls, m->read_bytes,
                m->proc_reads);
}

static void save_body(const at_stacks_t *s, FILE *f)
{
    for (uint32_t i = 0; i < s->syms->n; i++) {
        const sym_t *y = &s->syms->v[i];
        fprintf(f, "sym\t%u\t%s\t", i, kind_name(y->kind));
        at_tsv_put(f, y->func);
        fputc('\t', f);
        at_tsv_put(f, y->file);
        fputc('\n', f);
    }
    for (uint32_t i = 0; i < s->n; i++) {
        const stack_rec_t *r = &s->recs[i];
        fprintf(f, "stack\t%" PRIu64 "\t%u\t%d\t%d\t", r->count, r->tid, r->idle, r->gil);
        for (uint16_t k = 0; k < r->n; k++)
            fprintf(f, "%s%u:%d", k ? "," : "", s->pool[r->off + k].sym, (int)s->pool[r->off + k].line);
        fputc('\n', f);
    }
    at_thread_names_save(&s->names, f);
    fprintf(f, "end\t%u\t%u\n", s->syms->n, s->n);
}

int at_stacks_save(const at_stacks_t *s, const char *dir)
{
    FILE *f = at_session_create_file(dir, s->meta.pid, "stacks");
    if (!f)
        return -errno;
    save_header(s, f);
    save_body(s, f);
    /* the flush repeats a failed write, so errno says why (ENOSPC) */
    int err = ferror(f) | fflush(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !err)
        err = errno;
    return -err;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct loader {
    at_stacks_t *s;          /* being filled                              */
    unsigned long lineno;    /* for messages                              */
    int ended;               /* saw the end line                          */
    char *err;               /* message buffer                            */
    size_t errlen;
    char where[300];         /* "DIR/PID.stacks"                          */
} loader_t;

static int load_fail(loader_t *l, const char *why)
{
    snprintf(l->err, l->errlen, "%s: line %lu: %s", l->where, l->lineno, why);
    return -EBADMSG;
}

/* Split at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0 && v < 1e12))
        return -1;
    *out = v;
    return 0;
}

static int load_meta(loader_t *l, char **f, int n)
{
    at_stacks_meta_t *m = &l->s->meta;
    uint64_t u;
    if (n != 2 || at_tsv_unescape(f[1]) < 0)
        return load_fail(l, "bad header field");
    if (!strcmp(f[0], "pid"))
        return parse_u64(f[1], &u) < 0 || u != (uint64_t)at_key_pid(m->pid) ? load_fail(l, "pid does not match the file name") : 0;
    if (!strcmp(f[0], "comm") || !strcmp(f[0], "version") || !strcmp(f[0], "build")) {
        char *dst = f[0][0] == 'c' ? m->comm : f[0][0] == 'v' ? m->version : m->build;
        size_t cap = f[0][0] == 'c' ? sizeof m->comm : f[0][0] == 'v' ? sizeof m->version : sizeof m->build;
        snprintf(dst, cap, "%s", f[1]);
        return 0;
    }
    if (!strcmp(f[0], "rate_hz"))
        return parse_double(f[1], &m->rate_hz) < 0 ? load_fail(l, "bad rate_hz") : 0;
    if (!strcmp(f[0], "duration_s"))
        return parse_double(f[1], &m->duration_s) < 0 ? load_fail(l, "bad duration_s") : 0;
    if (!strcmp(f[0], "samples"))
        return parse_u64(f[1], &m->samples) < 0 ? load_fail(l, "bad samples") : 0;
    if (!strcmp(f[0], "missed"))
        return parse_u64(f[1], &m->missed) < 0 ? load_fail(l, "bad missed") : 0;
    if (!strcmp(f[0], "cpu_s")) {
        m->on_cpu = 1;
        return parse_double(f[1], &m->cpu_s) < 0 || m->cpu_s < 0 ? load_fail(l, "bad cpu_s") : 0;
    }
    if (!strcmp(f[0], "cpu_intervals"))
        return parse_u64(f[1], &m->cpu_intervals) < 0 ? load_fail(l, "bad cpu_intervals") : 0;
    if (!strcmp(f[0], "busy_s"))
        return parse_double(f[1], &m->busy_s) < 0 || m->busy_s < 0 ? load_fail(l, "bad busy_s") : 0;

    if (!strcmp(f[0], "native")) {
        if (parse_u64(f[1], &u) < 0 || u > 1)
            return load_fail(l, "bad native flag");
        m->native = (int)u;
        return 0;
    }
    return load_fail(l, "unknown record");
}

static int load_sym(loader_t *l, char **f, int n)
{
    uint64_t id;
    int kind = -1;
    if (n != 5 || parse_u64(f[1], &id) < 0 || id != l->s->syms->n)
        return load_fail(l, "bad symbol record (ids must run 0, 1, 2, ...)");
    kind = !strcmp(f[2], "py") ? AT_SYM_PY : !strcmp(f[2], "native") ? AT_SYM_NATIVE
         : !strcmp(f[2], "mark") ? AT_SYM_MARK : !strcmp(f[2], "task") ? AT_SYM_TASK : -1;
    if (kind < 0 || at_tsv_unescape(f[3]) < 0 || at_tsv_unescape(f[4]) < 0)
        return load_fail(l, "bad symbol kind or escape");
    if (at_symtab_intern(l->s->syms, kind, f[3], f[4]) != id)
        return load_fail(l, "duplicate symbol or out of memory");
    return 0;
}

static int parse_frames(loader_t *l, char *list, at_frame_t *fr, int *n)
{
    *n = 0;
    for (char *p = list; *p;) {
        char *end;
        if (*n >= STACK_MAX_N)
            return load_fail(l, "too many frames");
        unsigned long sym = strtoul(p, &end, 10);
        if (end == p || *end != ':' || sym >= l->s->syms->n)
            return load_fail(l, "bad frame (unknown symbol id)");
        p = end + 1;
        long line = strtol(p, &end, 10);
        if (end == p || line < -1 || line > INT32_MAX || (*end && *end != ','))
            return load_fail(l, "bad frame line");
        fr[(*n)++] = (at_frame_t){ (uint32_t)sym, (int32_t)line };
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int load_stack(loader_t *l, char **f, int n)
{
    at_frame_t fr[STACK_MAX_N];
    uint64_t count, tid, idle, gil;
    int nf;
    if (n != 6 || parse_u64(f[1], &count) < 0 || !count || parse_u64(f[2], &tid) < 0 ||
        tid > UINT32_MAX || parse_u64(f[3], &idle) < 0 || idle > 1 || parse_u64(f[4], &gil) < 0 || gil > 1)
        return load_fail(l, "bad stack record");
    int rc = parse_frames(l, f[5], fr, &nf);
    if (rc < 0)
        return rc;
    rc = at_stacks_add(l->s, (uint32_t)tid, (int)idle, (int)gil, fr, nf, count);
    return rc < 0 ? load_fail(l, "too many stacks or out of memory") : 0;
}

static int load_line(loader_t *l, char *line)
{
    char *f[8];
    uint64_t a, b;
    if (l->ended)
        return load_fail(l, "data after the end line");
    int n = split_tabs(line, f, 8);
    if (!strcmp(f[0], "sym"))
        return load_sym(l, f, n);
    if (!strcmp(f[0], "stack"))
        return load_stack(l, f, n);
    if (!strcmp(f[0], "tname"))
        return n != 3 || at_thread_names_load(&l->s->names, f[1], f[2]) < 0 ? load_fail(l, "bad thread name") : 0;
    if (!strcmp(f[0], "waits"))   /* polled timer: how the sampler waited (pace.h) */
        return n != 3 || parse_u64(f[1], &l->s->meta.waits_polled) < 0 ||
                       parse_u64(f[2], &l->s->meta.waits_timed) < 0
                   ? load_fail(l, "bad waits")
                   : 0;
    if (!strcmp(f[0], "reads"))   /* calls bytes proc-reads: the sampler's cost counters */
        return n != 4 || parse_u64(f[1], &l->s->meta.read_calls) < 0 ||
                       parse_u64(f[2], &l->s->meta.read_bytes) < 0 || parse_u64(f[3], &l->s->meta.proc_reads) < 0
                   ? load_fail(l, "bad reads")
                   : 0;
    if (!strcmp(f[0], "end")) {
        if (n != 3 || parse_u64(f[1], &a) < 0 || parse_u64(f[2], &b) < 0 ||
            a != l->s->syms->n || b != l->s->n)
            return load_fail(l, "end line does not match the records read");
        l->ended = 1;
        return 0;
    }
    return load_meta(l, f, n);
}

static int load_lines(loader_t *l, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        l->lineno++;
        if ((size_t)len > LINE_MAX_BYTES || (len > 0 && (size_t)len != strlen(line)))
            rc = load_fail(l, "line too long or holds a NUL byte");
        else if (len == 0 || line[len - 1] != '\n')
            rc = load_fail(l, "truncated line");
        else {
            line[len - 1] = '\0';
            rc = l->lineno == 1 ? (strcmp(line, FORMAT_MAGIC "\t1") ? load_fail(l, "not an archtrace stacks file (version 1)") : 0)
                                : load_line(l, line);
        }
    }
    free(line);
    if (rc == 0 && ferror(f))
        rc = load_fail(l, at_errstr(errno));
    if (rc == 0 && !l->ended)
        rc = load_fail(l, l->lineno ? "truncated: no end line" : "empty file");
    return rc;
}

int at_stacks_load(const char *dir, pid_t pid, at_stacks_t **out, char *err, size_t errlen)
{
    char dummy[8];
    loader_t l = { .err = err ? err : dummy, .errlen = err ? errlen : sizeof dummy };
    *out = NULL;
    char stem[32];
    snprintf(l.where, sizeof l.where, "%s/%s.stacks", dir, at_key_name(pid, stem, sizeof stem));
    FILE *f = at_session_open_file(dir, pid, "stacks");
    if (!f) {
        int e = errno;
        snprintf(l.err, l.errlen, "%s: %s", l.where, at_errstr(e));
        return e == ENOENT ? -ENOENT : -e;
    }
    if (!(l.s = at_stacks_new(pid))) {
        fclose(f);
        return -ENOMEM;
    }
    int rc = load_lines(&l, f);
    fclose(f);
    if (rc < 0)
        at_stacks_free(l.s);
    else
        *out = l.s;
    return rc;
}

/* ---- the session's stacks files ---------------------------------------- */

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int at_stacks_list(const char *dir, pid_t *pids, int cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -errno;
    for (struct dirent *e; (e = readdir(d)) && n < cap;) {
        const char *kind;
        pid_t key = at_session_parse_name(e->d_name, &kind);
        if (key && !strcmp(kind, "stacks"))
            pids[n++] = key;
    }
    closedir(d);
    qsort(pids, (size_t)n, sizeof *pids, cmp_pid);
    return n;
}

int at_stacks_each(const char *dir, int (*fn)(const at_stacks_t *s, void *ctx), void *ctx)
{
    static pid_t pids[4096];
    int n = at_stacks_list(dir, pids, 4096), found = 0, rc = 0;
    if (n < 0)
        return n;
    for (int i = 0; i < n && rc == 0; i++) {
        at_stacks_t *s;
        char err[512];
        int r = at_stacks_load(dir, pids[i], &s, err, sizeof err);
        if (r < 0) {
            if (r != -ENOENT)
                fprintf(stderr, "archtrace: %s\n", err);
            continue;
        }
        rc = fn(s, ctx);
        at_stacks_free(s);
        found++;
    }
    return rc ? rc : found ? 0 : -ENOENT;
}
