/* SPDX-License-Identifier: MIT */
/* top_model.c - the numbers behind `archtrace top` (see top.h).
 *
 * A sampler thread (signals blocked, paced like the run sampler) walks
 * every thread of the process at --rate and, under the model's lock,
 * counts per thread: samples, GIL-holder samples, idle samples, the
 * current function, and per function self/total samples of the running
 * (not idle) samples.  Function counts decay by DECAY every refresh, so
 * the table shows the last several seconds rather than the whole run.
 *
 * The sampler follows one process of the tree at a time: the root, or
 * the one the user picked (a multiprocessing worker).  Every process
 * shown keeps its target (and stacks, saved at the end); switching
 * starts the counts afresh, and a picked process that exits hands back
 * to the root.
 *
 * A snapshot (top_snapshot.c), taken by the UI once a second, adds
 * what the shim wrote (top_shim.c): exact GIL hold/wait per thread from
 * <pid>.gil (the difference between two readings over the wall time
 * between them), the allocation table of <pid>.alloc and the import
 * records of <pid>.imports, all read with the report's own readers.  A feature file that fails its checks mid-write
 * is simply shown as it was at the previous refresh.
 */
#include "top/top_model_int.h"
#include "out/textout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "remote/proc_tree.h"
#include "remote/remote.h"
#include "remote/sampler.h"
#include "segment_format.h"
#include "session/session.h"

/* ---- counting (sampler thread, lock held) -------------------------------- */

static thread_acc_t *thread_slot(at_top_model_t *m, uint32_t tid)
{
    thread_acc_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < TRACKED_THREADS; i++) {
        thread_acc_t *t = &m->threads[i];
        if (t->tid == tid)
            return t;
        if (!t->tid && !free_slot)
            free_slot = t;
        if (t->tid && t->last_pass + 1 < m->pass && (!oldest || t->last_pass < oldest->last_pass))
            oldest = t;
    }
    thread_acc_t *t = free_slot ? free_slot : oldest;
    if (!t)
        return NULL; /* more live threads than rows: the rest are not shown */
    free(t->fns.v);
    memset(t, 0, sizeof *t);
    t->tid = tid;
    return t;
}

static fn_count_t *fn_entry(fn_table_t *ft, uint32_t sym)
{
    if (sym == AT_SYM_NONE)
        return NULL;
    if (sym >= ft->n) {
        uint32_t n = ft->n ? ft->n : 256;
        while (n <= sym)
            n *= 2;
        fn_count_t *v = realloc(ft->v, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + ft->n, 0, (n - ft->n) * sizeof *v);
        ft->v = v;
        ft->n = n;
    }
    return &ft->v[sym];
}

static void count_stack(fn_table_t *ft, const at_frame_t *frames, int n, uint64_t stamp)
{
    ft->running += 1;
    for (int i = 0; i < n; i++) {
        fn_count_t *c = fn_entry(ft, frames[i].sym);
        if (!c)
            continue;
        if (c->stamp != stamp) { /* recursion counts once in total */
            c->total += 1;
            c->stamp = stamp;
        }
        if (i == n - 1)
            c->self += 1;
    }
}

static void on_thread(void *ctx, const at_target_t *tg, const at_thread_t *th, const at_frame_t *frames, int n)
{
    (void)tg;
    at_top_model_t *m = ctx;
    thread_acc_t *t = thread_slot(m, th->tid);
    if (th->gil)
        m->holder = th->tid;
    if (!t)
        return;
    t->last_pass = m->pass;
    t->samples++;
    t->gil += th->gil;
    t->idle += th->idle;
    t->gil_now = th->gil;
    t->has_leaf = n > 0;
    if (n > 0)
        t->leaf = frames[n - 1];
    if (th->idle || n <= 0)
        return;
    m->stamp++;
    count_stack(&t->fns, frames, n, m->stamp);
    count_stack(&m->all, frames, n, m->stamp);
}

static void sample_once(at_top_model_t *m)
{
    pthread_mutex_lock(&m->lock);
    m->pass++;
    m->holder = 0;
    int rc = at_target_sample(m->target, on_thread, m);
    if (rc == 0)
        m->interval_passes++;
    if (m->target->gone || (rc < 0 && m->target->failures > AT_TARGET_MAX_FAILURES)) {
        if (m->sampled == m->pid)
            m->gone = 1;
        else if (m->sampled == m->home && m->root_not_python)
            m->target = NULL, m->home = m->pid; /* look for the next Python under the root */
        else if (!m->want)
            m->want = m->home;  /* a picked worker ended: back to the root */
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- switching process (sampler thread) --------------------------------- */

/* Counts belong to one process: a switch starts them afresh. */
static void reset_counts(at_top_model_t *m)
{
    for (int i = 0; i < TRACKED_THREADS; i++)
        free(m->threads[i].fns.v);
    memset(m->threads, 0, sizeof m->threads);
    free(m->all.v);
    memset(&m->all, 0, sizeof m->all);
    m->holder = 0;
    m->interval_passes = 0;
    m->gil_read_ns = at_now_ns();
}

/* By the pid its stacks are kept for: a program that exec'd another
 * keeps its target under its files' key (session.h), never taken again. */
static at_target_t *shown_target(at_top_model_t *m, pid_t pid)
{
    for (int i = 0; i < m->nshown; i++)
        if (at_stacks_meta(m->shown[i]->stacks)->pid == pid)
            return m->shown[i];
    return NULL;
}

/* Open pid (or take its target from before) and make it the sampled one;
 * on failure the current one stays and switch_err says why. */
static void switch_to(at_top_model_t *m, pid_t pid)
{
    char err[256] = "";
    at_target_t *t = shown_target(m, pid);
    int rc = 0;
    if (!t && m->nshown == MAX_SHOWN) {
        rc = -ENOSPC;
        snprintf(err, sizeof err, "%d processes shown already", MAX_SHOWN);
    } else if (!t) {
        at_options_t o = { .rate_hz = m->rate_hz };
        rc = at_target_open(&t, pid, &o, err, sizeof err);
    }
    pthread_mutex_lock(&m->lock);
    m->want = 0;
    if (rc == 0) {
        if (!shown_target(m, pid))
            m->shown[m->nshown++] = t;
        m->target = t;
        m->sampled = pid;
        m->switch_err[0] = '\0';
        reset_counts(m);
    } else {
        m->refused = pid;
        snprintf(m->switch_err, sizeof m->switch_err, "pid %d: %.140s", (int)pid, err[0] ? err : at_errstr(-rc));
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- attaching ----------------------------------------------------------- */

/* Errors after which attaching is not retried.  A process we started is
 * given more chances: right after exec its interpreter can be half made,
 * and a layout check may fail on it for a moment. */
static int final_error(const at_top_model_t *m, int rc, uint64_t now)
{
    if (rc == -ESRCH || rc == -EPROTONOSUPPORT)
        return 1;
    if (!m->started && m->root_not_python) /* a Python descendant may start later */
        return !m->found_python && now - m->start_ns > PID_ATTACH_NS;
    if (!m->started) /* like dump: only an initialising interpreter is waited for */
        return rc != -EAGAIN || now - m->start_ns > PID_ATTACH_NS;
    if (rc == -EPERM || rc == -EACCES || rc == -EPROTO)
        return now - m->start_ns > PID_ATTACH_NS;
    return 0;
}

/* A COMMAND that is not Python itself (a shell, a launcher): sample the
 * first Python process of the session instead. */
static pid_t session_python(const at_top_model_t *m)
{
    DIR *d = opendir(m->dir);
    pid_t found = 0;
    if (!d)
        return 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (end != e->d_name && pid > 0 && pid <= INT32_MAX && !strcmp(end, ".seg"))
            found = (pid_t)pid;
    }
    closedir(d);
    return found;
}

/* -p PID of a process that is not Python (a shell, a master process):
 * the first Python process under it, breadth first (its target from
 * before when it was shown already).  0 and *t, or -ENOEXEC. */
static int open_descendant(at_top_model_t *m, const at_options_t *o, at_target_t **t, pid_t *pid)
{
    at_proc_row_t tree[AT_TOP_MAX_PROCS];
    int n = at_proc_tree(m->pid, tree, AT_TOP_MAX_PROCS);
    char err[256];
    for (int i = 1; i < n; i++) {
        at_target_t *before = shown_target(m, tree[i].pid);
        if ((before && !before->gone) || at_target_open(t, tree[i].pid, o, err, sizeof err) == 0) {
            *t = before && !before->gone ? before : *t;
            *pid = tree[i].pid;
            return 0;
        }
    }
    return -ENOEXEC;
}

static void try_attach(at_top_model_t *m, uint64_t now)
{
    char err[256] = "";
    pid_t pid = m->pid;
    if (m->started && now - m->start_ns > SEG_FALLBACK_NS && m->attach_rc == -ENOEXEC) {
        pid_t child = session_python(m);
        pid = child ? child : pid;
    }
    at_options_t o = { .rate_hz = m->rate_hz };
    at_target_t *t = NULL;
    ino_t ino = m->dir[0] ? at_session_seg_inode(m->dir, pid) : 0;
    int rc = m->nshown < MAX_SHOWN ? at_target_open(&t, pid, &o, err, sizeof err) : -ENOSPC;
    if (rc == -ENOEXEC && !m->started && pid == m->pid) {
        m->root_not_python = 1;
        if (open_descendant(m, &o, &t, &pid) == 0)
            rc = 0, m->found_python = 1;
        else if (strlen(err) + 32 < sizeof err)
            strcat(err, ", nor is any process under it");
    }
    pthread_mutex_lock(&m->lock);
    m->seg_ino = ino;
    m->attach_rc = rc;
    snprintf(m->attach_err, sizeof m->attach_err, "%s", err[0] ? err : rc ? at_errstr(-rc) : "");
    if (rc == 0) {
        m->target = t;
        m->sampled = m->home = pid;
        if (!shown_target(m, pid))
            m->shown[m->nshown++] = t;
    } else if (pid == m->pid && final_error(m, rc, now)) {
        m->attach_final = 1;
    }
    pthread_mutex_unlock(&m->lock);
}

/* The root exec'd a new Python when its <pid>.seg is another file (see
 * sampler.c): keep what was sampled of the old program under its files'
 * new key (saved with the session) and attach to the new one. */
static void follow_exec(at_top_model_t *m, uint64_t now)
{
    if (!m->dir[0] || !m->target || m->sampled != m->pid || now - m->exec_check_ns < EXEC_CHECK_NS)
        return;
    m->exec_check_ns = now;
    ino_t ino = at_session_seg_inode(m->dir, m->pid);
    if (!ino || ino == m->seg_ino)
        return;
    if (!m->seg_ino) {          /* attached before its segment existed */
        m->seg_ino = ino;
        return;
    }
    pid_t key = at_session_renamed_key(m->dir, m->pid, m->seg_ino);
    pthread_mutex_lock(&m->lock);
    if (key) {
        at_stacks_meta(m->target->stacks)->pid = key;
    } else {                    /* its files are gone: so are its samples */
        for (int i = 0; i < m->nshown; i++)
            if (m->shown[i] == m->target)
                m->shown[i] = m->shown[--m->nshown];
        at_target_free(m->target);
    }
    m->target = NULL;
    m->gone = 0;
    pthread_mutex_unlock(&m->lock);
}

static void *sampler_main(void *arg)
{
    at_top_model_t *m = arg;
    at_pace_t *pace = &m->pace;
    at_pace_init(pace, m->rate_hz, !m->no_poll);
    while (!atomic_load(&m->stop)) {
        pthread_mutex_lock(&m->lock);
        pid_t want = m->target && m->want != m->sampled ? m->want : 0;
        pthread_mutex_unlock(&m->lock);
        if (want)
            switch_to(m, want);
        follow_exec(m, at_now_ns());
        if (m->target && !m->gone) {
            sample_once(m);
            at_pace_wait(pace, NULL);
            continue;
        }
        if (!m->target && !m->attach_final)
            try_attach(m, at_now_ns());
        struct timespec ts = { 0, (long)ATTACH_POLL_NS };
        nanosleep(&ts, NULL);
    }
    at_pace_end(pace);
    return NULL;
}

at_top_model_t *at_top_model_start(pid_t pid, const char *session_dir, int started, const at_options_t *o)
{
    at_top_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->pid = m->sampled = m->home = pid;
    m->started = started;
    m->rate_hz = o->rate_hz > 0 ? o->rate_hz : 100.0;
    m->no_poll = o->no_poll;
    snprintf(m->dir, sizeof m->dir, "%s", session_dir ? session_dir : "");
    m->start_ns = m->gil_read_ns = at_now_ns();
    m->attach_rc = -EAGAIN;
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->stop, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&m->thread, NULL, sampler_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        errno = rc;
        return NULL;
    }
    return m;
}

int at_top_model_attach_status(at_top_model_t *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->lock);
    int st = m->target ? 0 : m->attach_final ? at_py_proc_exit_status(m->attach_rc) : -1;
    if (st > 0)
        snprintf(err, errlen, "%s", m->attach_err);
    pthread_mutex_unlock(&m->lock);
    return st;
}

void at_top_model_stop(at_top_model_t *m, const char *dir)
{
    if (!m)
        return;
    atomic_store(&m->stop, 1);
    pthread_join(m->thread, NULL);
    for (int i = 0; i < m->nshown; i++) {
        if (dir) {
            at_target_finish(m->shown[i], m->rate_hz);
            at_target_note_waits(m->shown[i], &m->pace);
            at_stacks_save(m->shown[i]->stacks, dir);
        }
        at_target_free(m->shown[i]);
    }
    for (int i = 0; i < TRACKED_THREADS; i++)
        free(m->threads[i].fns.v);
    free(m->all.v);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
