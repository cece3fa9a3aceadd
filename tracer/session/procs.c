/* SPDX-License-Identifier: MIT */
/* procs.c - load and validate the <pid>.seg headers of a session. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session/procs.h"
#include "session/session.h"

const char *at_build_name(unsigned build)
{
    return build == AT_BUILD_STATIC ? "static" : build == AT_BUILD_SHARED ? "shared" : "unknown";
}

static void copy_field(char *dst, size_t dst_size, const char *src, size_t src_size)
{
    size_t n = strnlen(src, src_size);
    if (n >= dst_size)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void split_argv(at_proc_t *p, const char *raw, size_t len)
{
    if (len > AT_SEG_ARGV_MAX)
        len = AT_SEG_ARGV_MAX;
    memcpy(p->args, raw, len);
    p->args[len] = '\0';
    p->argc = 0;
    for (size_t i = 0; i < len && p->argc < AT_PROC_MAX_ARGS;) {
        p->argv[p->argc++] = p->args + i;
        i += strnlen(p->args + i, len - i) + 1;
    }
}

int at_proc_decode(const void *raw, size_t size, at_proc_t *p)
{
    const at_seg_header_t *h = raw;
    if (size < sizeof(*h) || h->magic != AT_SEG_MAGIC || h->version != AT_SEG_VERSION ||
        h->size != sizeof(*h) || h->pid <= 0 || h->argv_len > AT_SEG_ARGV_MAX)
        return -EINVAL;
    if (h->state != AT_SEG_RUNNING && h->state != AT_SEG_EXITED && h->state != AT_SEG_EXECED &&
        h->state != AT_SEG_REPLACED)
        return -EINVAL;
    memset(p, 0, sizeof(*p));
    p->pid = h->pid;
    p->key = h->pid;
    p->ppid = h->ppid;
    p->state = (int)h->state;
    p->attached = h->origin == AT_SEG_ORIGIN_ATTACHED;
    /* an attached process is complete when its recording is: it may well
     * run on after archtrace detached */
    p->complete = (h->state == AT_SEG_EXITED || h->state == AT_SEG_REPLACED || p->attached) &&
                  h->end_mono_ns >= h->start_mono_ns;
    p->forked = h->forked != 0;
    p->supported = h->supported != 0;
    p->features = h->features;
    p->build = h->build;
    p->hexversion = h->python_hexversion;
    copy_field(p->version, sizeof(p->version), h->python_version, sizeof(h->python_version));
    copy_field(p->exe, sizeof(p->exe), h->exe, sizeof(h->exe));
    copy_field(p->notes, sizeof(p->notes), h->notes, sizeof(h->notes));
    split_argv(p, h->argv, h->argv_len);
    p->audit_events = h->audit_events;
    p->start_realtime_ns = h->start_realtime_ns;
    p->start_mono_ns = h->start_mono_ns;
    p->end_mono_ns = h->end_mono_ns;
    p->exit_code = h->exit_code;
    return 0;
}

double at_proc_wall_s(const at_proc_t *p)
{
    if (!p->complete)
        return -1.0;
    return (double)(p->end_mono_ns - p->start_mono_ns) / 1e9;
}

/* "<key>.<suffix>" -> key (session.h), else 0. */
static pid_t name_key(const char *name, const char *suffix)
{
    const char *rest;
    pid_t key = at_session_parse_name(name, &rest);
    return key && strcmp(rest, suffix) == 0 ? key : 0;
}

static int load_one(const char *dir, pid_t key, at_proc_t *p)
{
    FILE *f = at_session_open_file(dir, key, "seg");
    if (!f)
        return -errno;
    at_seg_header_t *raw = malloc(sizeof(*raw));
    size_t n = raw ? fread(raw, 1, sizeof(*raw), f) : 0;
    fclose(f);
    int rc = raw ? at_proc_decode(raw, n, p) : -ENOMEM;
    if (rc == 0 && p->pid != at_key_pid(key))
        rc = -EINVAL;
    p->key = key;
    free(raw);
    return rc;
}

/* argv points into the struct's own args: after a struct is copied or
 * moved (append, realloc, qsort) point it at this copy's args again. */
static void rebase_argv(at_proc_t *p)
{
    char *s = p->args;
    for (int i = 0; i < p->argc; i++) {
        p->argv[i] = s;
        s += strlen(s) + 1;
    }
}

static int by_start(const void *a, const void *b)
{
    const at_proc_t *x = a, *y = b;
    if (x->start_mono_ns != y->start_mono_ns)
        return x->start_mono_ns < y->start_mono_ns ? -1 : 1;
    return x->key - y->key;
}

static int append(at_proc_list_t *list, size_t *cap, const at_proc_t *p)
{
    if (list->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        at_proc_t *np = realloc(list->procs, ncap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        list->procs = np;
        *cap = ncap;
    }
    list->procs[list->count++] = *p;
    return 0;
}

int at_proc_list_load(const char *dir, at_proc_list_t *list)
{
    memset(list, 0, sizeof(*list));
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    at_proc_t *p = malloc(sizeof(*p));
    int rc = p ? 0 : -ENOMEM;
    size_t dropped = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        /* the shim's marker for a segment the full disk refused */
        dropped += name_key(e->d_name, "seg.dropped") != 0;
        pid_t key = name_key(e->d_name, "seg");
        if (!key)
            continue;
        int bad = load_one(dir, key, p);
        if (bad < 0) {
            fprintf(stderr, "archtrace: %s/%s: %s, skipped\n", dir, e->d_name,
                    bad == -ELOOP ? "a symbolic link, not followed" : "corrupt or truncated segment");
            list->corrupt++;
        } else if (p->state == AT_SEG_EXECED) {
            list->execed++;
        } else {
            rc = append(list, &cap, p);
        }
    }
    closedir(d);
    free(p);
    if (dropped)
        fprintf(stderr, "archtrace: %s: the session ran out of space: %zu Python process(es) could "
                        "not write their segment and are missing from this report\n", dir, dropped);
    if (rc == 0 && list->count)
        qsort(list->procs, list->count, sizeof(*list->procs), by_start);
    for (size_t i = 0; rc == 0 && i < list->count; i++)
        rebase_argv(&list->procs[i]);
    if (rc < 0)
        at_proc_list_free(list);
    return rc;
}

void at_proc_list_free(at_proc_list_t *list)
{
    free(list->procs);
    memset(list, 0, sizeof(*list));
}
