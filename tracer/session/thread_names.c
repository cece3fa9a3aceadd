/* SPDX-License-Identifier: MIT */
/* thread_names.c - a process's thread names with its stacks (see thread_names.h). */
#include "session/thread_names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session/tsv.h"

void at_thread_names_free(at_thread_names_t *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

static at_thread_name_entry_t *find(const at_thread_names_t *t, uint32_t tid)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i].tid == tid)
            return &t->v[i];
    return NULL;
}

int at_thread_names_set(at_thread_names_t *t, uint32_t tid, const char *name)
{
    if (!t->v && !(t->v = calloc(AT_THREAD_NAMES_MAX, sizeof *t->v)))
        return -ENOMEM;
    at_thread_name_entry_t *e = find(t, tid);
    if (!e && t->n >= AT_THREAD_NAMES_MAX)
        return 0;
    if (!e) {
        e = &t->v[t->n++];
        e->tid = tid;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    return 0;
}

const char *at_thread_names_get(const at_thread_names_t *t, uint32_t tid)
{
    const at_thread_name_entry_t *e = find(t, tid);
    return e && e->name[0] ? e->name : NULL;
}

int at_thread_names_known(const at_thread_names_t *t, uint32_t tid)
{
    const at_thread_name_entry_t *e = find(t, tid);
    return e && (e->name[0] || e->misses >= 2);
}

void at_thread_names_looked_up(at_thread_names_t *t, uint32_t tid)
{
    at_thread_name_entry_t *e = find(t, tid);
    if (!e && at_thread_names_set(t, tid, "") == 0)
        e = find(t, tid);   /* NULL when full: asked about again later */
    if (e && !e->name[0] && e->misses < UINT8_MAX)
        e->misses++;
}

int at_thread_names_due(const at_thread_names_t *t, uint64_t now_ns)
{
    uint64_t since = now_ns - t->read_ns;
    if (!t->read_ns || since >= AT_THREAD_NAMES_EVERY_NS)
        return AT_NAMES_DUE;
    return since >= AT_THREAD_NAMES_NEW_NS ? AT_NAMES_IF_NEW_THREAD : AT_NAMES_NOT_DUE;
}

const char *at_thread_names_label(const at_thread_names_t *t, uint32_t tid, char *buf, size_t n)
{
    const char *name = at_thread_names_get(t, tid);
    if (name)
        snprintf(buf, n, "thread %u \"%s\"", tid, name);
    else
        snprintf(buf, n, "thread %u", tid);
    return buf;
}

void at_thread_names_save(const at_thread_names_t *t, FILE *f)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (!t->v[i].name[0])
            continue;   /* looked up, no name */
        fprintf(f, "tname\t%u\t", t->v[i].tid);
        at_tsv_put(f, t->v[i].name);
        fputc('\n', f);
    }
}

int at_thread_names_load(at_thread_names_t *t, const char *tid, char *name)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(tid, &end, 10);
    if (!*tid || *end || errno || v > UINT32_MAX || at_tsv_unescape(name) < 0)
        return -1;
    return at_thread_names_set(t, (uint32_t)v, name) < 0 ? -1 : 0;
}
