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
 * A snapshot, taken by the UI once a second, adds what the shim wrote:
 * exact GIL hold/wait per thread from <pid>.gil (the difference between
 * two readings over the wall time between them), the allocation table of
 * <pid>.alloc and the import records of <pid>.imports, all read with the
 * report's own readers.  A feature file that fails its checks mid-write
 * is simply shown as it was at the previous refresh.
 */
#include "top/top.h"
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

#include "alloc_format.h"
#include "gil_format.h"
#include "imports_format.h"
#include "remote/proc_tree.h"
#include "remote/remote.h"
#include "remote/sampler.h"
#include "segment_format.h"
#include "session/gil_model.h"
#include "session/session.h"

#define TRACKED_THREADS   AT_TOP_MAX_THREADS
#define DECAY             0.8            /* per refresh: a ~5 s horizon     */
#define ATTACH_POLL_NS    50000000ull    /* retry attaching every 50 ms     */
#define PID_ATTACH_NS     2000000000ull  /* -p: wait for an interpreter     */
#define SEG_FALLBACK_NS   1000000000ull  /* COMMAND not Python: try its .seg children */
#define MAX_SHOWN         AT_TOP_MAX_PROCS   /* processes with a target kept */
#define EXEC_CHECK_NS     5000000ull     /* the root's <pid>.seg replaced?  */

/* Decayed sample counts of one function. */
typedef struct fn_count {
    double self;              /* samples with it innermost                 */
    double total;             /* samples with it anywhere on the stack     */
    uint64_t stamp;           /* last sample that counted its total        */
} fn_count_t;

/* Per-function counts, indexed by symbol id. */
typedef struct fn_table {
    fn_count_t *v;
    uint32_t n;
    double running;           /* decayed running samples                   */
} fn_table_t;

typedef struct thread_acc {
    uint32_t tid;             /* 0: free slot                              */
    uint64_t last_pass;       /* sampling pass that last saw it            */
    uint64_t samples;         /* this interval                             */
    uint64_t gil, idle;       /* ... holding the GIL, not running          */
    int gil_now;              /* at the last sample                        */
    at_frame_t leaf;          /* current function at the last sample       */
    int has_leaf;
    fn_table_t fns;           /* this thread's functions                   */
    uint64_t gil_hold_ns;     /* .gil reading at the last snapshot         */
    uint64_t gil_wait_ns;
    int gil_known;            /* the two above are set                     */
} thread_acc_t;

struct at_top_model {
    pthread_t thread;         /* the sampler                               */
    pthread_mutex_t lock;     /* everything below, but the constants       */
    atomic_int stop;
    pid_t pid;                /* the process asked for                     */
    pid_t sampled;            /* the process sampled (a .seg child maybe)  */
    pid_t home;               /* sampled unless the user picks another: the
                                 root, or (-p of a process that is not
                                 Python) its first Python descendant     */
    int root_not_python;      /* -p PID runs no Python itself             */
    int found_python;         /* ... and a descendant was sampled          */
    char dir[PATH_MAX];       /* session directory, "" for -p              */
    int started;              /* we launched it                            */
    double rate_hz;
    at_target_t *target;      /* NULL until attached                       */
    int attach_final;         /* gave up attaching                         */
    int attach_rc;            /* the last at_target_open error             */
    char attach_err[256];
    int gone;                 /* the sampled process exited                */
    uint64_t start_ns;        /* model start                               */
    uint64_t pass;            /* sampling passes                           */
    uint64_t interval_passes; /* ... since the last snapshot               */
    uint64_t stamp;           /* thread samples, for total-dedup           */
    uint32_t holder;          /* GIL holder at the last sample             */
    thread_acc_t threads[TRACKED_THREADS];
    fn_table_t all;           /* every thread's functions together         */
    uint64_t gil_read_ns;     /* when .gil was last read                   */
    at_top_snap_t last;       /* the previous snapshot's feature panels    */
    int no_poll;              /* --no-poll                                 */
    at_pace_t pace;           /* the sampler thread's; read after it ends  */
    pid_t want;               /* switch to this process (0: stay)          */
    pid_t refused;            /* the last pick that could not be sampled   */
    char switch_err[160];     /* why                                       */
    at_target_t *shown[MAX_SHOWN]; /* every target opened, current included */
    int nshown;
    ino_t seg_ino;            /* the sampled root's <pid>.seg when attached */
    uint64_t exec_check_ns;   /* when that was last looked at              */
    at_top_tree_t tree;       /* CPU readings of the tree (UI thread)      */
};

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

/* ---- snapshot: threads and functions (lock held) ------------------------- */

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

/* Copy, cut to n - 1 bytes (the view escapes and trims for display). */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

static void snap_thread(const at_top_model_t *m, const thread_acc_t *t, at_top_thread_t *row)
{
    at_symtab_t *syms = at_stacks_symtab(m->target->stacks);
    memset(row, 0, sizeof *row);
    row->tid = t->tid;
    row->gil_now = t->gil_now;
    row->line = -1;
    row->held_pct = t->samples ? pct((double)t->gil, (double)t->samples) : -1;
    row->wait_pct = -1;
    row->idle_pct = t->samples ? pct((double)t->idle, (double)t->samples) : -1;
    row->main = t->tid == (uint32_t)m->sampled;
    /* read from outside by the sampler once a second: for -p, and for a
     * thread that only computes, which the shim names late (it reads
     * names only where the C-API is safe to call) */
    copy_str(row->name, sizeof row->name, at_thread_names_get(at_stacks_names(m->target->stacks), t->tid));
    if (t->has_leaf) {
        copy_str(row->func, sizeof row->func, at_symtab_func(syms, t->leaf.sym));
        copy_str(row->file, sizeof row->file, at_symtab_file(syms, t->leaf.sym));
        row->line = t->leaf.line;
    }
}

static void snap_threads(at_top_model_t *m, at_top_snap_t *s)
{
    for (int i = 0; i < TRACKED_THREADS && s->nthreads < AT_TOP_MAX_THREADS; i++) {
        const thread_acc_t *t = &m->threads[i];
        /* alive: seen by one of the last two passes */
        if (t->tid && t->last_pass + 2 > m->pass)
            snap_thread(m, t, &s->threads[s->nthreads++]);
    }
}

static int func_cmp_self(const void *a, const void *b)
{
    const at_top_func_t *x = a, *y = b;
    return x->self_pct < y->self_pct ? 1 : x->self_pct > y->self_pct ? -1 : (y->total_pct > x->total_pct) - (y->total_pct < x->total_pct);
}

static int func_cmp_total(const void *a, const void *b)
{
    const at_top_func_t *x = a, *y = b;
    return x->total_pct < y->total_pct ? 1 : x->total_pct > y->total_pct ? -1 : (y->self_pct > x->self_pct) - (y->self_pct < x->self_pct);
}

/* The best AT_TOP_MAX_FUNCS functions of ft: a bounded insertion into a
 * sorted array, so a large symbol table costs one pass. */
static void snap_funcs(at_top_model_t *m, const fn_table_t *ft, at_top_sort_t sort, at_top_snap_t *s)
{
    at_symtab_t *syms = at_stacks_symtab(m->target->stacks);
    int (*cmp)(const void *, const void *) = sort == AT_TOP_SORT_TOTAL ? func_cmp_total : func_cmp_self;
    at_top_func_t cand;
    uint32_t nsym = at_symtab_count(syms);
    for (uint32_t i = 0; i < ft->n && i < nsym; i++) {
        const fn_count_t *c = &ft->v[i];
        if (c->total < 0.5 || at_symtab_kind(syms, i) == AT_SYM_MARK)
            continue;
        cand.self_pct = pct(c->self, ft->running);
        cand.total_pct = pct(c->total, ft->running);
        if (s->nfuncs == AT_TOP_MAX_FUNCS && cmp(&cand, &s->funcs[s->nfuncs - 1]) >= 0)
            continue;
        int k = s->nfuncs < AT_TOP_MAX_FUNCS ? s->nfuncs++ : s->nfuncs - 1;
        while (k > 0 && cmp(&cand, &s->funcs[k - 1]) < 0) {
            s->funcs[k] = s->funcs[k - 1];
            k--;
        }
        s->funcs[k] = cand;
        copy_str(s->funcs[k].func, sizeof s->funcs[k].func, at_symtab_func(syms, i));
        copy_str(s->funcs[k].file, sizeof s->funcs[k].file, at_symtab_file(syms, i));
    }
}

static void decay(fn_table_t *ft)
{
    ft->running *= DECAY;
    for (uint32_t i = 0; i < ft->n; i++) {
        ft->v[i].self *= DECAY;
        ft->v[i].total *= DECAY;
    }
}

static void end_interval(at_top_model_t *m)
{
    for (int i = 0; i < TRACKED_THREADS; i++) {
        thread_acc_t *t = &m->threads[i];
        t->samples = t->gil = t->idle = 0;
        decay(&t->fns);
    }
    decay(&m->all);
    m->interval_passes = 0;
}

static void snap_sampled(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    const at_py_proc_t *p = &m->target->proc;
    copy_str(s->comm, sizeof s->comm, p->comm);
    copy_str(s->version, sizeof s->version, p->version);
    copy_str(s->build, sizeof s->build, at_py_proc_build(p));
    s->samples = at_stacks_meta(m->target->stacks)->samples;
    s->interval_samples = m->interval_passes;
    s->gil_holder = m->holder;
    s->gil_source = AT_TOP_SRC_SAMPLES;
    snap_threads(m, s);
    const fn_table_t *ft = &m->all;
    for (int i = 0; q->thread && i < TRACKED_THREADS; i++)
        if (m->threads[i].tid == q->thread)
            ft = &m->threads[i].fns;
    snap_funcs(m, ft, q->sort, s);
}

/* GC counters: interp->gc.generation_stats[gen].{collections, collected}
 * (the same three counters per generation in 3.11 to 3.13, at the
 * offset of the target's layout). */
static void snap_gc(at_top_model_t *m, at_top_snap_t *s)
{
    uint64_t head;
    char err[128];
    int64_t stats[AT_TOP_GC_GENS * 3];
    if (at_py_proc_check(&m->target->proc, &head, err, sizeof err) < 0 ||
        at_remote_read(&m->target->proc.mem, head + (uint64_t)m->target->proc.layout.interp_gc_generation_stats, stats,
                       sizeof stats) < 0)
        return;
    for (int g = 0; g < AT_TOP_GC_GENS; g++) {
        int64_t runs = stats[g * 3], collected = stats[g * 3 + 1];
        if (runs < 0 || collected < 0)
            return; /* not counters: refuse rather than show garbage */
        s->gc_runs[g] = (uint64_t)runs;
        s->gc_collected += (uint64_t)collected;
    }
    s->have_gc = 1;
}

/* ---- snapshot: the shim's files (no lock: plain file reads) -------------- */

/* Hold or wait time up to now, with the interval still open counted. */
static uint64_t gil_ns_now(const at_gil_thread_t *r, uint32_t state, uint64_t closed, uint64_t now)
{
    return closed + (r->state == state && r->since_ns && r->since_ns <= now ? now - r->since_ns : 0);
}

static double clamp_pct(double v, double hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* Exact held/wait from the shim: the change since the last reading over
 * the wall time between.  The sampler's idle share includes the waits
 * (a waiting thread sleeps on a condition variable): they come off it. */
static void merge_gil(at_top_model_t *m, const void *gil, at_top_snap_t *s, uint64_t now, int peek)
{
    double wall = (double)(now - m->gil_read_ns);
    for (int i = 0; i < s->nthreads; i++) {
        at_top_thread_t *row = &s->threads[i];
        const at_gil_thread_t *r = at_gil_live_row(gil, row->tid);
        thread_acc_t *t = NULL;
        for (int k = 0; k < TRACKED_THREADS && !t; k++)
            t = m->threads[k].tid == row->tid ? &m->threads[k] : NULL;
        if (!r || !t)
            continue;
        if (r->name[0])   /* the shim's name is newer than ours, when it has one */
            memcpy(row->name, r->name, sizeof row->name - 1);
        row->main = (r->flags & AT_GIL_T_MAIN) != 0;
        uint64_t hold = gil_ns_now(r, AT_GIL_HELD, r->hold_ns, now);
        uint64_t wait = gil_ns_now(r, AT_GIL_WAITING, r->wait_ns + r->handoff_ns, now);
        if (t->gil_known && wall > 0) {
            row->held_pct = clamp_pct(pct((double)(hold - (hold > t->gil_hold_ns ? t->gil_hold_ns : hold)), wall), 100);
            row->wait_pct = clamp_pct(pct((double)(wait - (wait > t->gil_wait_ns ? t->gil_wait_ns : wait)), wall),
                                      100 - row->held_pct);
            if (row->idle_pct >= 0)
                row->idle_pct = clamp_pct(row->idle_pct - row->wait_pct, 100 - row->held_pct - row->wait_pct);
        } else {
            row->held_pct = row->wait_pct = -1;
        }
        if (peek)
            continue;
        t->gil_hold_ns = hold;
        t->gil_wait_ns = wait;
        t->gil_known = 1;
    }
    s->gil_source = AT_TOP_SRC_SHIM;
}

typedef struct group_sum {
    int64_t live;
    uint64_t total;
} group_sum_t;

static int site_better(const at_top_site_t *a, const at_top_site_t *b, at_top_sort_t sort)
{
    if (sort == AT_TOP_SORT_TOTAL)
        return a->total_bytes > b->total_bytes;
    return a->live_bytes > b->live_bytes;
}

static void top_sites(const at_alloc_data_t *d, const group_sum_t *g, at_top_sort_t sort, at_top_snap_t *s)
{
    for (uint32_t i = 0; i < d->ngroups; i++) {
        const at_alloc_group_t *gr = &d->groups[i];
        if ((gr->flags & AT_ALLOC_G_TOOL) || gr->kind != AT_ALLOC_GROUP_PY || (g[i].live <= 0 && !g[i].total))
            continue;
        at_top_site_t cand = { .line = gr->line, .live_bytes = g[i].live, .total_bytes = g[i].total };
        if (s->nsites == AT_TOP_MAX_SITES && !site_better(&cand, &s->sites[s->nsites - 1], sort))
            continue;
        int k = s->nsites < AT_TOP_MAX_SITES ? s->nsites++ : s->nsites - 1;
        while (k > 0 && site_better(&cand, &s->sites[k - 1], sort)) {
            s->sites[k] = s->sites[k - 1];
            k--;
        }
        s->sites[k] = cand;
        copy_str(s->sites[k].file, sizeof s->sites[k].file, at_alloc_str(d, gr->file));
        copy_str(s->sites[k].func, sizeof s->sites[k].func, at_alloc_str(d, gr->func));
    }
}

static void snap_alloc(const at_top_model_t *m, at_top_sort_t sort, at_top_snap_t *s)
{
    at_alloc_data_t d;
    if (at_alloc_load(m->dir, s->pid, &d) < 0)
        return;
    group_sum_t *g = calloc(d.ngroups ? d.ngroups : 1, sizeof *g);
    if (g) {
        for (uint32_t i = 0; i < d.nsites; i++) {
            const at_alloc_site_t *site = &d.sites[i];
            if (site->kind == AT_ALLOC_KIND_NATIVE || (site->flags & AT_ALLOC_G_TOOL))
                continue;
            g[site->group].live += site->live_bytes;
            g[site->group].total += site->total_bytes;
            s->alloc_total += site->total_bytes;
        }
        top_sites(&d, g, sort, s);
        s->alloc_live = d.h->py_live + d.h->raw_live;
        s->alloc_peak = d.h->py_peak;
        s->have_alloc = 1;
        free(g);
    }
    at_alloc_free(&d);
}

static void imp_copy(char *dst, size_t n, const at_imp_view_t *v, at_imp_str_t str)
{
    size_t len = str.off == AT_IMP_NONE ? 0 : str.len < n - 1 ? str.len : n - 1;
    if (len)
        memcpy(dst, v->arena + str.off, len); /* checked by at_imports_decode */
    dst[len] = '\0';
}

static void snap_imports(const at_top_model_t *m, at_top_snap_t *s)
{
    void *buf;
    at_imp_view_t v;
    if (at_imports_load(m->dir, s->pid, &buf, &v) < 0) {
        free(buf);
        return;
    }
    s->have_imports = 1;
    s->import_count = v.h->count;
    for (uint32_t i = v.h->count; i > 0 && s->nimports < AT_TOP_MAX_IMPORTS; i--) {
        const at_imp_record_t *r = &v.rec[i - 1];
        at_top_import_t *row = &s->imports[s->nimports++];
        imp_copy(row->module, sizeof row->module, &v, r->module);
        imp_copy(row->finder, sizeof row->finder, &v, r->finder);
        imp_copy(row->path_finder, sizeof row->path_finder, &v, r->path_finder);
        row->cumulative_us = (r->flags & AT_IMP_F_DONE) ? (double)(r->end_ns - r->start_ns) / 1e3 : -1;
        row->failed = (r->flags & AT_IMP_F_DONE) && !(r->flags & AT_IMP_F_OK);
    }
    free(buf);
}

/* The shim's panels; a file unreadable right now (being written, not
 * created yet) keeps what the previous refresh of the same process
 * showed. */
static void snap_files(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    snap_alloc(m, q->sort, s);
    if (!s->have_alloc && m->last.have_alloc) {
        s->have_alloc = 1;
        s->alloc_live = m->last.alloc_live;
        s->alloc_peak = m->last.alloc_peak;
        s->alloc_total = m->last.alloc_total;
        s->nsites = m->last.nsites;
        memcpy(s->sites, m->last.sites, sizeof s->sites);
    }
    snap_imports(m, s);
    if (!s->have_imports && m->last.have_imports) {
        s->have_imports = 1;
        s->import_count = m->last.import_count;
        s->nimports = m->last.nimports;
        memcpy(s->imports, m->last.imports, sizeof s->imports);
    }
}

/* The tree under the root, and the process the query picks: taken when
 * it is in the tree (a pid from an old frame may be gone) and was not
 * refused already (a shell, a non-Python helper). */
static void snap_tree(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    s->nprocs = at_top_tree_list(&m->tree, m->pid, s->procs, AT_TOP_MAX_PROCS);
    int in_tree = 0;
    for (int i = 0; q->process && i < s->nprocs; i++)
        in_tree |= s->procs[i].pid == q->process;
    pthread_mutex_lock(&m->lock);
    if (q->process != m->refused) /* the user moved on: a later pick tries again */
        m->refused = 0, m->switch_err[0] = '\0';
    if (in_tree && q->process != m->sampled && q->process != m->refused && m->target)
        m->want = q->process;
    pthread_mutex_unlock(&m->lock);
}

void at_top_model_snapshot(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    uint64_t now = at_now_ns();
    memset(s, 0, sizeof *s);
    snap_tree(m, q, s);
    s->sort = q->sort;
    s->thread_filter = q->thread;
    s->started = m->started;
    s->rate_hz = m->rate_hz;
    s->uptime_s = (double)(now - m->start_ns) / 1e9;
    pthread_mutex_lock(&m->lock);
    pid_t shown = m->target ? m->sampled : 0;
    pthread_mutex_unlock(&m->lock);
    /* read outside the lock (a file read); a switch meanwhile is seen
     * below and the reading dropped */
    void *gil = m->dir[0] && shown ? at_gil_live_read(m->dir, shown) : NULL;
    pthread_mutex_lock(&m->lock);
    if (gil && shown != m->sampled) {
        free(gil);
        gil = NULL;
    }
    s->pid = m->sampled;
    s->attached = m->target != NULL;
    s->exited = m->gone || (m->sampled != m->pid && s->nprocs == 0); /* the root's end counts */
    if (!m->target && m->attach_err[0])
        copy_str(s->status, sizeof s->status, m->attach_err);
    else if (m->switch_err[0])
        copy_str(s->status, sizeof s->status, m->switch_err);
    if (m->target) {
        snap_sampled(m, q, s);
        if (!m->gone)
            snap_gc(m, s);
        if (gil)
            merge_gil(m, gil, s, now, q->peek);
        if (!q->peek)
            end_interval(m);
    }
    if (!q->peek)
        m->gil_read_ns = now;
    pthread_mutex_unlock(&m->lock);
    free(gil);
    if (m->last.pid != s->pid)   /* the last frame was of another process */
        memset(&m->last, 0, sizeof m->last);
    if (m->dir[0] && s->attached)
        snap_files(m, q, s);
    if (!s->have_gc && m->last.have_gc) {
        s->have_gc = 1;
        memcpy(s->gc_runs, m->last.gc_runs, sizeof s->gc_runs);
        s->gc_collected = m->last.gc_collected;
    }
    m->last = *s;
}
