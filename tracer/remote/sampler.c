/* SPDX-License-Identifier: MIT */
/* sampler.c - per-process sampling and the sampler thread of `run` (pacing: pace.c).
 *
 * One sample of a process: list its threads (one read of _PyRuntime, one
 * per interpreter and thread state), then for each thread read its task
 * state (idle), optionally stop it for the native unwinder, walk its
 * Python frames and count the stack.  The `run` sampler polls the session
 * directory every 50 ms for <pid>.seg files that the preload shim creates,
 * and samples every attached process on each tick.
 */
#include "remote/sampler.h"
#include "remote/mem_poll.h"
#include "remote/py_names.h"
#include "out/textout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>
#include "out/progress.h"
#include "session/session.h"

#define DISCOVER_EVERY_NS  50000000ull   /* session directory poll         */
#define RETRIES_PER_EXE    20            /* polls (1 s) before giving up  */
#define MAX_PROCESSES      256           /* processes sampled by `run`     */
#define EXEC_CHECK_EVERY_NS 5000000ull   /* a target's <pid>.seg replaced? */
#define GIL_OPEN_EVERY_NS 100000000ull   /* <pid>.gil looked for           */
/* ---- one process ------------------------------------------------------------ */

int at_target_open(at_target_t **out, pid_t pid, const at_options_t *o, char *err, size_t errlen)
{
    uint64_t head;
    at_target_t *t = calloc(1, sizeof *t);
    int rc = t ? 0 : -ENOMEM;
    *out = NULL;
    if (rc == 0)
        rc = at_py_proc_open(&t->proc, pid, err, errlen);
    if (rc == 0)
        rc = at_py_proc_check(&t->proc, &head, err, errlen);
    if (rc == 0 && (!(t->stacks = at_stacks_new(pid)) ||
                    !(t->walker = at_walker_new(&t->proc, at_stacks_symtab(t->stacks))) ||
                    !(t->threads = calloc(AT_MAX_THREADS, sizeof *t->threads)))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0 && o && o->native && !(t->native = at_native_new(&t->proc, at_stacks_symtab(t->stacks)))) {
        rc = -errno;
        snprintf(err, errlen, "cannot set up native unwinding for process %d: %s", (int)pid, at_errstr(errno));
    }
    if (rc == 0 && o && o->asyncio && o->command != AT_CMD_DUMP &&
        !(t->tasks = at_async_now_new(&t->proc, at_stacks_symtab(t->stacks)))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0) {
        at_target_free(t);
        return rc;
    }
    at_stacks_meta_t *m = at_stacks_meta(t->stacks);
    snprintf(m->comm, sizeof m->comm, "%s", t->proc.comm);
    snprintf(m->version, sizeof m->version, "%s", t->proc.version);
    snprintf(m->build, sizeof m->build, "%s", at_py_proc_build(&t->proc));
    m->native = t->native != NULL;
    *out = t;
    return 0;
}

void at_target_free(at_target_t *t)
{
    if (!t)
        return;
    at_native_free(t->native);
    at_async_now_free(t->tasks);
    at_gil_live_close(t->gil_live);
    at_walker_free(t->walker);
    at_stacks_free(t->stacks);
    free(t->threads);
    free(t);
}

/* Python frames only, root first, hidden (incomplete) ones left out. */
static int python_only(at_target_t *t)
{
    const at_pystack_t *st = &t->pystack;
    int n = 1;   /* frames[0] is left for the task: see under_task */
    if (st->truncated)
        t->frames[n++] = (at_frame_t){ at_walker_sym_truncated(t->walker), -1 };
    for (int i = st->n - 1; i >= 0; i--)
        if (!st->frames[i].skip)
            t->frames[n++] = (at_frame_t){ st->frames[i].sym, st->frames[i].line };
    return n - 1;
}

/* The sample's frames are at frames[1..1+*n): with --asyncio, a thread
 * running a task gets that task as its root frame, in frames[0].  Where
 * the sample starts; *n counts the task. */
static const at_frame_t *under_task(at_target_t *t, int *n)
{
    uint32_t task = t->tasks ? at_async_now_task(t->tasks, &t->pystack) : AT_SYM_NONE;
    if (task == AT_SYM_NONE)
        return t->frames + 1;
    t->frames[0] = (at_frame_t){ task, 0 };
    ++*n;
    return t->frames;
}

/* Holding the GIL (the interpreter says), waiting for it (the shim's
 * live table says the thread is blocked in take_gil), or neither. */
static int gil_flag(const at_target_t *t, const at_thread_t *th)
{
    if (th->gil)
        return AT_STACK_GIL_HELD;
    return t->gil_live && at_gil_live_waiting(t->gil_live, th->tid) ? AT_STACK_GIL_WAIT : AT_STACK_GIL_NO;
}

/* A running thread that holds the GIL, read with no frame or with a
 * chain that broke off (not one cut at the depth limit): most likely
 * read while it entered or left an evaluation loop from C (a key
 * function of sorted(), a callback), between its cframe and that
 * cframe's current frame changing (3.11 and 3.12 keep the frame pointer
 * behind the cframe, on the C stack).  On a loop of such calls that was
 * 2.4 % of the samples on 3.11 shared and 8.6 % on 3.12, reported as
 * "[truncated]".  A window that short is over by the next look. */
#define TORN_RETRIES 2

static int torn(const at_thread_t *th, int stopped, const at_pystack_t *st)
{
    return !stopped && th->gil && (st->n == 0 || (st->truncated && st->n < AT_MAX_STACK_DEPTH));
}

/* The thread's Python stack, looked at again while it reads torn. */
static int read_stack(at_target_t *t, at_thread_t *th, int stopped)
{
    int rc = at_walker_stack(t->walker, th, &t->pystack);
    for (int i = 0; i < TORN_RETRIES && rc == 0 && torn(th, stopped, &t->pystack); i++) {
        if (at_walker_reload(t->walker, th) != 0)
            break;
        rc = at_walker_stack(t->walker, th, &t->pystack);
    }
    return rc;
}

static int sample_thread(at_target_t *t, at_thread_t *th, at_thread_fn fn, void *ctx)
{
    int nn = 0, stopped = 0, sig = 0;
    int idle = at_walker_idle(t->walker, th->tid);
    if (idle < 0)
        return 0; /* the thread ended between listing and now */
    th->idle = (uint8_t)idle;
    if (t->native)
        stopped = at_native_stop(t->native, th->tid) == 0;
    else if (t->stop_running && !idle)    /* not allowed: read it running */
        stopped = at_thread_stop(th->tid, &sig) == 0;
    int rc = stopped ? at_walker_reload(t->walker, th) : 0;
    if (rc == 0)
        rc = read_stack(t, th, stopped);
    else if (rc != -ESRCH) { /* its thread state went away under us */
        t->pystack.n = 0;
        t->pystack.truncated = 1;
        rc = 0;
    }
    if (rc == 0 && t->on_pystack)   /* while the thread still stands still */
        rc = t->on_pystack(t->on_pystack_ctx, t, th, &t->pystack);
    if (stopped && t->native) {
        nn = at_native_unwind(t->native, th->tid, t->natframes, t->is_eval, AT_NATIVE_MAX_DEPTH);
        at_native_resume(t->native, th->tid);
    } else if (stopped) {
        at_thread_resume(th->tid, sig);
    }
    if (rc < 0)
        return rc;
    int n = nn > 0 ? at_native_merge(t->natframes, t->is_eval, nn, &t->pystack, t->frames + 1, AT_TARGET_MAX_FRAMES - 1)
                   : python_only(t);
    const at_frame_t *frames = under_task(t, &n);
    at_stacks_add(t->stacks, th->tid, th->idle, gil_flag(t, th), frames, n, 1);
    if (fn)
        fn(ctx, t, th, frames, n);
    return 0;
}

static int sample_failed(at_target_t *t, int rc)
{
    at_stacks_meta(t->stacks)->missed++;
    t->failures++;
    if (rc == -ESRCH || at_py_proc_gone(t->proc.pid)) {
        t->gone = 1;
        return -ESRCH;
    }
    return rc;
}

/* Threading names, for labels: a walk of the target's objects, so once a
 * second, or sooner when a thread never looked up runs (see
 * at_thread_names_due); the scan of the threads happens only then. */
static void refresh_names(at_target_t *t, int n, uint64_t now)
{
    at_thread_names_t *names = at_stacks_names(t->stacks);
    int due = at_thread_names_due(names, now);
    for (int i = 0; i < n && due == AT_NAMES_IF_NEW_THREAD; i++)
        if (!at_thread_names_known(names, t->threads[i].tid))
            due = AT_NAMES_DUE;
    if (due != AT_NAMES_DUE)
        return;
    at_thread_names_read(names, &t->proc, now);
    for (int i = 0; i < n; i++)   /* the rest have no name: not new any more */
        at_thread_names_looked_up(names, t->threads[i].tid);
}

int at_target_sample(at_target_t *t, at_thread_fn fn, void *ctx)
{
    uint64_t t0 = at_now_ns();
    if (!t->start_ns)
        t->start_ns = t0;
    t->end_ns = t0;
    if (t->gone)
        return -ESRCH;
    int n = at_walker_threads(t->walker, t->threads, AT_MAX_THREADS), rc = 0;
    if (n < 0)
        return sample_failed(t, n);
    refresh_names(t, n, t0);
    if (t->gil_live)
        at_gil_live_refresh(t->gil_live);
    if (t->tasks)
        at_async_now_read(t->tasks, t0);
    for (int i = 0; i < n && rc == 0; i++)
        rc = sample_thread(t, &t->threads[i], fn, ctx);
    if (rc < 0)
        return sample_failed(t, rc);
    at_stacks_meta(t->stacks)->samples++;
    t->failures = 0;
    t->busy_ns += at_now_ns() - t0;
    return 0;
}

void at_target_note_waits(at_target_t *t, const at_pace_t *p)
{
    at_stacks_meta_t *m = at_stacks_meta(t->stacks);
    m->waits_polled = p->polled;
    m->waits_timed = p->timed;
}

void at_target_finish(at_target_t *t, double rate_hz)
{
    at_stacks_meta_t *m = at_stacks_meta(t->stacks);
    m->busy_s = (double)t->busy_ns / 1e9;
    m->read_calls = t->proc.mem.calls;
    m->read_bytes = t->proc.mem.bytes;
    m->proc_reads = at_walker_proc_reads(t->walker);
    double hz = at_pace_rate(rate_hz);
    m->rate_hz = hz;
    /* the span of the ticks taken, each worth one period */
    m->duration_s = t->start_ns ? (double)(t->end_ns - t->start_ns) / 1e9 + 1.0 / hz : 0.0;
}

/* ---- the sampler thread of `run` --------------------------------------------- */

/* A process seen in the session, attached or still waiting. */
typedef struct candidate {
    pid_t pid;                /* the process                               */
    at_target_t *target;      /* attached, or NULL                         */
    int final;                /* gave up on it (unsupported, gone, refused) */
    int refusals;             /* failed attempts with this executable      */
    char exe[PATH_MAX];       /* its executable at the last failed attempt */
    ino_t seg_ino;            /* its <pid>.seg when attached (0: none yet) */
    at_mem_poll_t *mem;       /* its memory over time, from attach on      */
    uint64_t gil_open_ns;     /* when its <pid>.gil was last looked for    */
} candidate_t;

struct at_sampler {
    pthread_t thread;         /* the sampling thread                       */
    pid_t root;               /* the command's pid                         */
    char dir[PATH_MAX];       /* session directory                         */
    double rate_hz;           /* --rate                                    */
    int native;               /* --native                                  */
    int asyncio;              /* --asyncio                                 */
    int memory;               /* memory over time (allocation tracking on) */
    int gil;                  /* GIL accounting on: waits seen in samples  */
    int no_poll;              /* --no-poll                                 */
    at_pace_t pace;           /* the sampling thread's; read after it ends */
    atomic_int stop;          /* set by at_sampler_stop                    */
    volatile sig_atomic_t stop_wait; /* ends the current wait (with SIGURG) */
    candidate_t *cands;       /* MAX_PROCESSES                             */
    int ncands;
};

static candidate_t *candidate_for(at_sampler_t *s, pid_t pid)
{
    for (int i = 0; i < s->ncands; i++)
        if (s->cands[i].pid == pid)
            return &s->cands[i];
    if (s->ncands >= MAX_PROCESSES)
        return NULL;
    candidate_t *c = &s->cands[s->ncands++];
    memset(c, 0, sizeof *c);
    c->pid = pid;
    return c;
}

static void read_exe(pid_t pid, char *out, size_t n)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t len = readlink(link, out, n - 1);
    out[len > 0 ? len : 0] = '\0';
}

/* A set-id program (AT_SECURE in its auxiliary vector) asked the kernel
 * and ld.so to keep others out: the shim does not load into it, and the
 * sampler leaves it alone too rather than report a process of which only
 * stacks exist (an unprivileged archtrace could not read it anyway). */
static int secure_exec(pid_t pid)
{
    char path[64];
    unsigned long av[2];
    snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
    FILE *f = fopen(path, "re");
    int secure = 0;
    if (!f)
        return 0;
    for (int i = 0; i < 256 && fread(av, sizeof av, 1, f) == 1 && av[0] != AT_NULL; i++)
        if (av[0] == AT_SECURE)
            secure = av[1] != 0;
    fclose(f);
    return secure;
}

/* Try to attach.  A process that is not (yet) Python is tried for a
 * while (right after exec the dynamic loader may not have mapped
 * libpython), then again only when it execs something else. */
static void try_attach(at_sampler_t *s, candidate_t *c)
{
    char err[512], exe[PATH_MAX];
    at_options_t o = { .command = AT_CMD_RUN, .native = s->native, .asyncio = s->asyncio, .rate_hz = s->rate_hz };
    if (c->target || c->final)
        return;
    read_exe(c->pid, exe, sizeof exe);
    if (strcmp(exe, c->exe) != 0) {
        snprintf(c->exe, sizeof c->exe, "%s", exe);
        c->refusals = 0;
    }
    if (c->refusals >= RETRIES_PER_EXE)
        return;
    if (secure_exec(c->pid)) {
        c->final = 1;
        return;
    }
    c->seg_ino = at_session_seg_inode(s->dir, c->pid);
    int rc = at_target_open(&c->target, c->pid, &o, err, sizeof err);
    if (rc == -EAGAIN)
        return; /* interpreter not initialised yet: next poll */
    if (rc == -ESRCH || rc == -EPERM || rc == -EACCES || rc == -EPROTONOSUPPORT)
        c->final = 1;
    else if (rc < 0)
        c->refusals++;
    else if (s->memory)
        c->mem = at_mem_poll_new(s->dir, c->pid);   /* none: no series, the rest goes on */
}

static void discover(at_sampler_t *s)
{
    DIR *d = opendir(s->dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            candidate_t *c;
            if (end != e->d_name && pid > 0 && pid <= INT32_MAX && !strcmp(end, ".seg") &&
                (c = candidate_for(s, (pid_t)pid)))
                try_attach(s, c);
        }
        closedir(d);
    }
    candidate_t *root = s->root > 0 ? candidate_for(s, s->root) : NULL;
    if (root && !root->target && !root->final && at_py_proc_gone(s->root))
        root->final = 1;
    else if (root)
        try_attach(s, root);
}

/* What was sampled of a candidate's target goes to <key>.stacks, its
 * memory over time to <key>.memory. */
static void retire(at_sampler_t *s, candidate_t *c, pid_t key)
{
    char stem[32];
    at_target_t *t = c->target;
    if (c->mem && at_mem_poll_save(c->mem, s->dir, key) < 0)
        fprintf(stderr, "archtrace: cannot write %s/%s.memory\n", s->dir, at_key_name(key, stem, sizeof stem));
    at_mem_poll_free(c->mem);
    c->mem = NULL;
    c->target = NULL;
    at_target_finish(t, s->rate_hz);
    at_target_note_waits(t, &s->pace);
    at_stacks_meta(t->stacks)->pid = key;
    int rc = at_stacks_save(t->stacks, s->dir);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot write %s/%s.stacks: %s\n", s->dir, at_key_name(key, stem, sizeof stem),
                at_errstr(-rc));
    at_target_free(t);
}

/* A target whose <pid>.seg is another file now exec'd a new Python: the
 * new program's shim made that segment (after renaming the old program's
 * files).  Its stacks are the old program's: save them under its new key
 * and attach to the new program, whose memory the old target no longer
 * describes (a non-PIE python has the same addresses, so its reads would
 * even succeed). */
static void follow_exec(at_sampler_t *s, candidate_t *c)
{
    if (!c->target)
        return;
    ino_t now = at_session_seg_inode(s->dir, c->pid);
    if (!now || now == c->seg_ino)
        return;
    if (!c->seg_ino) {              /* attached before its segment existed */
        c->seg_ino = now;
        return;
    }
    pid_t key = at_session_renamed_key(s->dir, c->pid, c->seg_ino);
    if (key) {
        retire(s, c, key);
    } else {
        at_target_free(c->target);
        at_mem_poll_free(c->mem);
        c->mem = NULL;
    }
    c->target = NULL;
    c->final = 0;
    c->refusals = 0;
    try_attach(s, c);
}

static void follow_execs(at_sampler_t *s)
{
    for (int i = 0; i < s->ncands; i++)
        follow_exec(s, &s->cands[i]);
}

/* The shim's GIL table, looked for every 100 ms until it is there (the
 * shim makes it once the interpreter runs; --no-gil never). */
static void open_gil_live(at_sampler_t *s, candidate_t *c, uint64_t now)
{
    if (!s->gil || c->target->gil_live || now - c->gil_open_ns < GIL_OPEN_EVERY_NS)
        return;
    c->gil_open_ns = now;
    c->target->gil_live = at_gil_live_open(s->dir, c->pid);
}

static void sample_all(at_sampler_t *s, uint64_t skipped)
{
    uint64_t now = at_now_ns();
    for (int i = 0; i < s->ncands; i++) {
        at_target_t *t = s->cands[i].target;
        if (!t || t->gone)
            continue;
        if (s->cands[i].mem)
            at_mem_poll_tick(s->cands[i].mem, now);
        open_gil_live(s, &s->cands[i], now);
        at_stacks_meta(t->stacks)->missed += skipped;
        if (at_target_sample(t, NULL, NULL) < 0 && t->failures > AT_TARGET_MAX_FAILURES)
            t->gone = 1;
    }
}

static void show_progress(at_sampler_t *s, at_progress_t *p)
{
    uint64_t samples = 0;
    int processes = 0;
    for (int i = 0; i < s->ncands; i++) {
        at_target_t *t = s->cands[i].target;
        if (!t)
            continue;
        samples += at_stacks_meta(t->stacks)->samples;
        processes++;
    }
    at_progress_update(p, samples, "samples", processes);
}

static void on_wake(int sig)
{
    (void)sig; /* only there to interrupt clock_nanosleep with EINTR */
}

/* at_sampler_stop wakes the thread with SIGURG (ignored by default, so a
 * stray one does no harm) instead of letting it sleep out its tick: a
 * short-lived command (`python -c pass`) would otherwise wait up to a
 * whole period (10 ms at 100 Hz) on the join.  Only this thread takes it. */
static void accept_wake_signal(void)
{
    struct sigaction sa;
    sigset_t urg;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
}

static void *sampler_main(void *arg)
{
    at_sampler_t *s = arg;
    at_pace_t *pace = &s->pace;
    at_progress_t progress;
    uint64_t last_poll = 0, last_exec_check = 0, skipped = 0;
    accept_wake_signal();
    at_pace_init(pace, s->rate_hz, !s->no_poll);
    at_progress_init(&progress);
    /* The terminal is the command's while it writes to it: a progress
     * line would be torn by its output.  Shown when its stdout goes
     * elsewhere (`archtrace python3 job.py > out`). */
    if (isatty(STDOUT_FILENO))
        at_progress_end(&progress);
    while (!atomic_load(&s->stop)) {
        uint64_t now = at_now_ns();
        if (now - last_poll >= DISCOVER_EVERY_NS) {
            discover(s);
            last_poll = now;
        }
        if (now - last_exec_check >= EXEC_CHECK_EVERY_NS) {
            follow_execs(s);
            last_exec_check = now;
        }
        sample_all(s, skipped);
        show_progress(s, &progress);
        skipped = at_pace_wait(pace, &s->stop_wait);
    }
    at_progress_end(&progress);
    at_pace_end(pace);
    return NULL;
}

at_sampler_t *at_sampler_start(pid_t root_pid, const char *session_dir, const at_options_t *o)
{
    sigset_t all, old;
    at_sampler_t *s = calloc(1, sizeof *s);
    if (!s || !(s->cands = calloc(MAX_PROCESSES, sizeof *s->cands))) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->root = root_pid;
    snprintf(s->dir, sizeof s->dir, "%s", session_dir ? session_dir : ".");
    s->rate_hz = at_pace_rate(o ? o->rate_hz : 0);
    s->native = o && o->native;
    s->asyncio = o && o->asyncio;
    /* ARCHTRACE_NO_MEMORY_SERIES: for `make bench`, which measures what
     * the series costs against a run without it */
    s->memory = o && !o->no_alloc && !getenv("ARCHTRACE_NO_MEMORY_SERIES");
    s->gil = o && !o->no_gil;
    s->no_poll = o && o->no_poll;
    atomic_init(&s->stop, 0);
    /* the thread inherits this mask: signals stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, sampler_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(s->cands);
        free(s);
        errno = rc;
        return NULL;
    }
    return s;
}

void at_sampler_stop(at_sampler_t *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    s->stop_wait = 1;
    pthread_kill(s->thread, SIGURG);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->ncands; i++)
        if (s->cands[i].target)
            retire(s, &s->cands[i], s->cands[i].target->proc.pid);
    free(s->cands);
    free(s);
}
