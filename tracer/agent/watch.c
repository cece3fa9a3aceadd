/* SPDX-License-Identifier: MIT */
/* watch.c - the CPython processes of the host, found and attached (see watch.h). */
#include "agent/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "out/textout.h"
#include "remote/proc_tree.h"
#include "remote/sampler.h"
#include "session/session.h"

#define STARTING_RETRY_SCANS 20   /* interpreter still starting: tries    */

const char *const at_watch_refusal_names[AT_REFUSALS] = { "unsupported", "permission", "ebpf", "other" };

int at_watch_init(at_watch_t *w, const at_options_t *o)
{
    memset(w, 0, sizeof *w);
    w->o = o;
    w->quiet = o->quiet;
    const char *tmp = getenv("TMPDIR");
    snprintf(w->workdir, sizeof w->workdir, "%s/archtrace-agent.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(w->workdir))
        return -errno;
    w->host = at_bpf_host_new();
    int rc = w->host ? at_attacher_start(&w->attacher, o, w->host) : -ENOMEM;
    if (rc < 0) {
        at_bpf_host_free(w->host);
        w->host = NULL;
        at_session_remove(w->workdir);
    }
    return rc;
}

static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t more = *cap ? *cap * 2 : 16;
    void *p = realloc(arr, more * elem);
    if (p)
        *cap = more;
    return p;
}

static at_skipped_t *find_skipped(at_watch_t *w, const at_proc_row_t *r)
{
    for (size_t i = 0; i < w->nskipped; i++)
        if (w->skipped[i].pid == r->pid && w->skipped[i].starttime == r->starttime)
            return &w->skipped[i];
    return NULL;
}

static int is_watched(const at_watch_t *w, const at_proc_row_t *r)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->procs[i].pid == r->pid && w->procs[i].starttime == r->starttime)
            return 1;
    return 0;
}

static void skip(at_watch_t *w, const at_proc_row_t *r, int retry)
{
    at_skipped_t *s = find_skipped(w, r);
    if (!s) {
        at_skipped_t *arr = grow(w->skipped, &w->skipcap, w->nskipped, sizeof *arr);
        if (!arr)
            return;
        w->skipped = arr;
        s = &w->skipped[w->nskipped++];
    }
    *s = (at_skipped_t){ .pid = r->pid, .starttime = r->starttime };
    snprintf(s->comm, sizeof s->comm, "%s", r->comm);
    s->retry = retry;
}

static enum at_watch_refusal refusal_of(const char *why, int err)
{
    if (!strncmp(why, "eBPF unavailable", 16))
        return AT_REFUSED_EBPF;
    if (err == EPROTONOSUPPORT)
        return AT_REFUSED_UNSUPPORTED;
    if (err == EPERM || err == EACCES)
        return AT_REFUSED_PERMISSION;
    return AT_REFUSED_OTHER;
}

/* Offer one process to the probes, on the attacher. */
static void try_attach(at_watch_t *w, const at_proc_row_t *r, int tries)
{
    at_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return;
    *j = (at_job_t){ .kind = AT_JOB_ATTACH, .pid = r->pid, .starttime = r->starttime, .tries = tries };
    snprintf(j->comm, sizeof j->comm, "%s", r->comm);
    snprintf(j->dir, sizeof j->dir, "%s/%d", w->workdir, (int)r->pid);
    if (mkdir(j->dir, 0700) < 0 && errno != EEXIST) {
        free(j);
        return;
    }
    skip(w, r, tries);
    find_skipped(w, r)->in_flight = 1;
    w->pending++;
    at_attacher_submit(&w->attacher, j);
}

/* An attach that did not take: why, remembered so it is not tried again
 * (but a starting interpreter, a few times). */
static void refused(at_watch_t *w, at_job_t *j, at_skipped_t *s)
{
    /* a process we may not read may not be Python at all (init of a
     * container, another user's daemon): refused only if its name says
     * Python */
    int unreadable = (j->err == EPERM || j->err == EACCES) && !strstr(j->comm, "python");
    at_session_remove(j->dir);
    if (s)
        s->retry = 0;
    if (j->err == ENOEXEC || j->err == ESRCH || unreadable)
        return;
    if (j->err == EAGAIN && j->tries < STARTING_RETRY_SCANS) {
        if (s)
            s->retry = j->tries + 1;
        return;
    }
    w->refused[refusal_of(j->why, j->err)]++;
    if (!w->quiet)
        fprintf(stderr, "archtrace agent: process %d not watched: %s\n", (int)j->pid, j->why);
}

static void watched(at_watch_t *w, at_job_t *j)
{
    at_watched_t *arr = grow(w->procs, &w->cap, w->n, sizeof *arr);
    if (!arr) {
        j->kind = AT_JOB_DETACH;
        at_attacher_submit(&w->attacher, j);
        return;
    }
    w->procs = arr;
    at_watched_t *p = &w->procs[w->n++];
    *p = (at_watched_t){ .pid = j->pid, .starttime = j->starttime, .bpf = j->bpf };
    snprintf(p->dir, sizeof p->dir, "%s", j->dir);
    p->interval_ns = at_now_ns();
    p->interval_real_s = (uint64_t)time(NULL);
    w->attached_total++;
    if (!w->quiet) {
        const at_bpf_data_t *d = at_bpf_data(p->bpf);
        fprintf(stderr, "archtrace agent: + process %d (%s, Python %s %s)\n", (int)p->pid, d->comm, d->version,
                d->build);
    }
    free(j);
}

/* The attacher's results: watched, or remembered as refused. */
static void take_attached(at_watch_t *w)
{
    for (at_job_t *j = at_attacher_take(&w->attacher), *next; j; j = next) {
        next = j->next;
        w->pending--;
        at_proc_row_t row = { .pid = j->pid, .starttime = j->starttime };
        at_skipped_t *s = find_skipped(w, &row);
        if (s)
            s->in_flight = 0;
        if (j->bpf) {
            if (s)
                *s = w->skipped[--w->nskipped];
            watched(w, j);
        } else {
            refused(w, j, s);
            free(j);
        }
    }
}

void at_watch_scan(at_watch_t *w)
{
    take_attached(w);
    size_t count = 0;
    at_proc_row_t *rows = at_proc_scan(&count);
    pid_t self = getpid();
    for (size_t i = 0; rows && i < count; i++) {
        const at_proc_row_t *r = &rows[i];
        if (r->pid == self || is_watched(w, r))
            continue;
        at_skipped_t *s = find_skipped(w, r);
        if (!s)
            try_attach(w, r, 0);
        else if (!s->in_flight && (s->retry || strcmp(s->comm, r->comm) != 0)) /* starting, or exec'd */
            try_attach(w, r, s->retry);
    }
    /* forget what is gone: the lists stay as long as the host's processes */
    size_t keep = 0;
    for (size_t i = 0; i < w->nskipped; i++) {
        int alive = 0;
        for (size_t k = 0; rows && k < count && !alive; k++)
            alive = rows[k].pid == w->skipped[i].pid && rows[k].starttime == w->skipped[i].starttime;
        if (alive || w->skipped[i].in_flight)
            w->skipped[keep++] = w->skipped[i];
    }
    w->nskipped = keep;
    free(rows);
}

static void detach(at_watch_t *w, size_t i, at_watch_gone_fn gone, void *ctx, int exited)
{
    at_watched_t *p = &w->procs[i];
    if (gone)
        gone(ctx, p);
    at_job_t *j = calloc(1, sizeof *j);
    if (j) {
        *j = (at_job_t){ .kind = AT_JOB_DETACH, .pid = p->pid, .bpf = p->bpf };
        snprintf(j->dir, sizeof j->dir, "%s", p->dir);
        at_attacher_submit(&w->attacher, j);
    } else {
        at_bpf_stop(p->bpf);            /* here, then: nothing may leak */
        at_session_remove(p->dir);
    }
    if (exited) {
        w->exited_total++;
        if (!w->quiet)
            fprintf(stderr, "archtrace agent: - process %d exited\n", (int)p->pid);
    }
    w->procs[i] = w->procs[--w->n];
}

void at_watch_poll(at_watch_t *w, at_watch_gone_fn gone, void *ctx)
{
    at_bpf_host_poll(w->host);   /* every set's events, to their processes */
    for (size_t i = 0; i < w->n;) {
        if (at_bpf_poll(w->procs[i].bpf, 0) == -ESRCH)
            detach(w, i, gone, ctx, 1);
        else
            i++;
    }
}

void at_watch_end(at_watch_t *w, at_watch_gone_fn gone, void *ctx)
{
    while (w->n)
        detach(w, w->n - 1, gone, ctx, 0);
    at_attacher_stop(&w->attacher);
    at_bpf_host_free(w->host);   /* the last detach took the last set */
    w->host = NULL;
    free(w->procs);
    free(w->skipped);
    w->procs = NULL, w->skipped = NULL;
    at_session_remove(w->workdir);
}
