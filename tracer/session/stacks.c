/* SPDX-License-Identifier: MIT */
/* stacks.c - symbol table and stack aggregation (see stacks.h; the <pid>.stacks file: stacks_file.c). */
#include "session/stacks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"
#include "out/textout.h"

#define SYMTAB_MAX      (1u << 22)   /* distinct symbols per process       */
#define STACKS_MAX      (1u << 19)   /* distinct stacks per process        */
#define POOL_MAX        (1u << 23)   /* frames stored per process          */
#define STACK_MAX_N     1024         /* frames in one stack (python+native) */

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
    int32_t start_line;      /* a Python function's first line, 0 unknown */
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
    s->start_line = 0;
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

void at_symtab_set_start_line(at_symtab_t *t, uint32_t id, int32_t line)
{
    if (id < t->n && line > 0)
        t->v[id].start_line = line;
}

int32_t at_symtab_start_line(const at_symtab_t *t, uint32_t id)
{
    return id < t->n ? t->v[id].start_line : 0;
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
    gil = gil == AT_STACK_GIL_WAIT ? AT_STACK_GIL_WAIT : !!gil;
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

