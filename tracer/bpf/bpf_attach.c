/* SPDX-License-Identifier: MIT */
/* bpf_attach.c - what a target's probes attach to (the plan) and attaching them: uprobes, USDT, the sampler.
 *
 * The plan is read from the target's files before any BPF (so a view
 * that is unavailable is said without privilege): libc's
 * pthread_cond_timedwait for the GIL, the interpreter's USDT notes for
 * imports and GC or, without them, uprobes on functions it has, and the
 * sampling rate.  A probe set's uprobes are attached here (to one pid,
 * or to every process that maps the file), and each process's sampler:
 * a task-clock perf event per thread, or one cpu-clock event per CPU
 * when that fails.  Links are kept together and destroyed together.
 * Kept apart from bpf_load.c, which runs a recording from start to stop,
 * so that each file holds one concern (issue 18).
 */
#include "bpf/bpf_int.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "archtrace.skel.h"

#define MAX_LINKS    512
#define SET_LINKS    64             /* uprobes of one probe set         */
#define SAMPLE_THREADS_MAX 256      /* per-thread timers, beyond: per CPU */
#define DEFAULT_HZ   100.0

/* ---- a view's line ------------------------------------------------------------ */

static void view(at_bpf_t *b, int v, int avail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void view(at_bpf_t *b, int v, int avail, const char *fmt, ...)
{
    va_list ap;
    b->data.avail[v] = avail;
    va_start(ap, fmt);
    vsnprintf(b->data.how[v], sizeof b->data.how[v], fmt, ap);
    va_end(ap);
}

/* ---- plan ------------------------------------------------------------------ */

static void plan_gil(at_bpf_t *b, plan_t *p)
{
    int rc = at_bpf_mapped_lib(b->proc.pid, "libc.so", p->libc, sizeof p->libc);
    if (rc < 0) {
        view(b, AT_BPF_VIEW_GIL, 0, "unavailable: the process maps no libc.so");
        return;
    }
    if (at_bpf_elf_func(p->libc, "pthread_cond_timedwait", &p->cond_wait) < 0) {
        view(b, AT_BPF_VIEW_GIL, 0, "unavailable: no pthread_cond_timedwait in %s", at_bpf_base_name(p->libc));
        p->libc[0] = '\0';
        return;
    }
    view(b, AT_BPF_VIEW_GIL, 1, "uprobes on pthread_cond_timedwait in %s, filtered on %s",
         at_bpf_base_name(p->libc), b->proc.layout.rt_gil != AT_PYLAYOUT_NONE ? "_PyRuntime.ceval.gil.cond"
         : "the main interpreter's GIL cond (interp->ceval.gil)");
}

static void plan_imports(at_bpf_t *b, plan_t *p)
{
    const char *f = at_bpf_base_name(p->py);
    if (at_bpf_elf_usdt(p->py, "python", "import__find__load__start", &p->imp_start) == 0 &&
        at_bpf_elf_usdt(p->py, "python", "import__find__load__done", &p->imp_done) == 0) {
        p->imports = MODE_USDT;
        view(b, AT_BPF_VIEW_IMPORTS, 1, "usdt python:import__find__load__start/done in %s", f);
    } else if (at_bpf_elf_func(p->py, "PyImport_ImportModuleLevelObject", &p->imp_level) == 0 &&
               at_bpf_elf_func(p->py, "_PySys_Audit", &p->imp_audit) == 0) {
        p->imports = MODE_UPROBE;
        view(b, AT_BPF_VIEW_IMPORTS, 1, "uprobes on PyImport_ImportModuleLevelObject and the "
             "\"import\" audit call in %s (no USDT notes)", f);
    } else {
        view(b, AT_BPF_VIEW_IMPORTS, 0, "unavailable: %s has no USDT notes (built without "
             "--with-dtrace) and no _PySys_Audit symbol to fall back on", f);
    }
}

static void plan_gc(at_bpf_t *b, plan_t *p)
{
    const char *f = at_bpf_base_name(p->py);
    if (at_bpf_elf_usdt(p->py, "python", "gc__start", &p->gc_start) == 0 &&
        at_bpf_elf_usdt(p->py, "python", "gc__done", &p->gc_done) == 0) {
        p->gc = MODE_USDT;
        view(b, AT_BPF_VIEW_GC, 1, "usdt python:gc__start/done in %s", f);
    } else if (at_bpf_elf_func(p->py, "gc_collect_main", &p->gc_main) == 0) {
        p->gc = MODE_UPROBE;
        view(b, AT_BPF_VIEW_GC, 1, "uprobes on gc_collect_main in %s (no USDT notes)", f);
    } else {
        view(b, AT_BPF_VIEW_GC, 0, "unavailable: %s has no USDT notes (built without "
             "--with-dtrace) and no gc_collect_main symbol (stripped)", f);
    }
}

void at_bpf_plan(at_bpf_t *b, const at_options_t *o)
{
    plan_t *p = &b->plan;
    char why[160];
    snprintf(p->py, sizeof p->py, "/proc/%d/root%s", (int)b->proc.pid, b->proc.path);
    p->ring_bytes = o->bpf_ring_bytes ? o->bpf_ring_bytes : AT_BPF_RINGBUF_BYTES;
    if (at_bpf_tracefs_ensure(why, sizeof why) < 0) {
        for (int v = AT_BPF_VIEW_GIL; v <= AT_BPF_VIEW_GC; v++)
            view(b, v, 0, "%s", why);
    } else {
        if (o->no_gil)
            view(b, AT_BPF_VIEW_GIL, 0, "off (--no-gil)");
        else
            plan_gil(b, p);
        if (o->no_imports)
            view(b, AT_BPF_VIEW_IMPORTS, 0, "off (--no-imports)");
        else
            plan_imports(b, p);
        plan_gc(b, p);
    }
    p->hz = o->no_sample ? 0 : o->rate_hz > 0 ? o->rate_hz : DEFAULT_HZ;
    if (p->hz > 10000)
        p->hz = 10000;
    if (p->hz)
        view(b, AT_BPF_VIEW_SAMPLES, 1, "perf_event cpu-clock at %g Hz on every CPU, Python "
             "frames walked in BPF", p->hz);
    else
        view(b, AT_BPF_VIEW_SAMPLES, 0, "off (--no-sample)");
    b->data.rate_hz = p->hz;
}

/* Programs the plan does not use are not loaded. */
void at_bpf_set_autoload(set_t *s)
{
    struct archtrace_bpf *k = s->skel;
    const set_key_t *p = &s->key;
    bpf_program__set_autoload(k->progs.gil_wait_enter, p->gil);
    bpf_program__set_autoload(k->progs.gil_wait_exit, p->gil);
    bpf_program__set_autoload(k->progs.usdt_import_start, p->imports == MODE_USDT);
    bpf_program__set_autoload(k->progs.usdt_import_done, p->imports == MODE_USDT);
    bpf_program__set_autoload(k->progs.imp_level_enter, p->imports == MODE_UPROBE);
    bpf_program__set_autoload(k->progs.imp_level_exit, p->imports == MODE_UPROBE);
    bpf_program__set_autoload(k->progs.imp_audit, p->imports == MODE_UPROBE);
    bpf_program__set_autoload(k->progs.usdt_gc_start, p->gc == MODE_USDT);
    bpf_program__set_autoload(k->progs.usdt_gc_done, p->gc == MODE_USDT);
    bpf_program__set_autoload(k->progs.gc_main_enter, p->gc == MODE_UPROBE);
    bpf_program__set_autoload(k->progs.gc_main_exit, p->gc == MODE_UPROBE);
    bpf_program__set_autoload(k->progs.on_sample, p->sampler);
}

/* ---- attach ------------------------------------------------------------------ */

static int keep(links_t *ls, struct bpf_link *l, int max)
{
    int err = l ? 0 : -errno;
    if (!l) {
        if (!ls->err)
            ls->err = err ? err : -EINVAL;
        return err ? err : -EINVAL;
    }
    if (ls->n >= ls->cap) {
        int cap = ls->cap ? ls->cap * 2 : 16;
        struct bpf_link **more = cap <= max ? realloc(ls->l, (size_t)cap * sizeof *more) : NULL;
        if (!more) {
            bpf_link__destroy(l);
            return -ENOSPC;
        }
        ls->l = more, ls->cap = cap;
    }
    ls->l[ls->n++] = l;
    return 0;
}

/* Destroy the links from the last to index `from`. */
void at_bpf_links_drop(links_t *ls, int from)
{
    while (ls->n > from)
        bpf_link__destroy(ls->l[--ls->n]);
}

void at_bpf_links_free(links_t *ls)
{
    at_bpf_links_drop(ls, 0);
    free(ls->l);
    ls->l = NULL, ls->cap = 0;
}

/* pid: the process, or -1 for every process that maps path. */
static int uprobe(set_t *s, struct bpf_program *prog, pid_t pid, const char *path, uint64_t off, int ret)
{
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
    return keep(&s->links, bpf_program__attach_uprobe_opts(prog, pid, path, off, &opts), SET_LINKS);
}

/* Every site of USDT probe python:name in path, one link (libbpf's). */
static int usdt(set_t *s, struct bpf_program *prog, pid_t pid, const char *path, const char *name)
{
    return keep(&s->links, bpf_program__attach_usdt(prog, pid, path, "python", name, NULL), SET_LINKS);
}

/* One sampling event on tid (cpu -1), or on cpu (tid -1); an fd or -errno. */
static int open_sample_event(at_bpf_t *b, pid_t tid, int cpu)
{
    struct perf_event_attr a = {
        .type = PERF_TYPE_SOFTWARE,
        .size = sizeof a,
        .config = tid >= 0 ? PERF_COUNT_SW_TASK_CLOCK : PERF_COUNT_SW_CPU_CLOCK,
        .sample_period = (uint64_t)(1e9 / b->plan.hz),
        .inherit = tid >= 0,          /* threads it starts get their own */
        .inherit_thread = tid >= 0,   /* ... but not forked processes (5.13+) */
    };
    int fd = (int)syscall(__NR_perf_event_open, &a, tid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0 && errno == EINVAL && a.inherit_thread) {   /* an older kernel */
        a.inherit_thread = 0;
        fd = (int)syscall(__NR_perf_event_open, &a, tid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    }
    return fd < 0 ? -errno : fd;
}

static int attach_sample_fd(at_bpf_t *b, int fd)
{
    struct bpf_link *l = bpf_program__attach_perf_event(b->set->skel->progs.on_sample, fd);
    if (!l) {
        int err = -errno;
        close(fd);
        return err;
    }
    return keep(&b->links, l, MAX_LINKS);   /* the link owns fd from here on */
}


/* Per thread: a task-clock event on each thread of the target, inherited
 * by the threads they start.  The timer runs only while its thread runs,
 * so each thread is sampled every 1/hz of its own CPU time, exactly, and
 * nothing fires on CPUs the target is not on.  /proc/PID/task is read
 * until a pass finds no thread without an event (a thread started by one
 * that had none yet). */
static int attach_per_thread(at_bpf_t *b)
{
    pid_t done[SAMPLE_THREADS_MAX];
    int ndone = 0, rc = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)b->proc.pid);
    for (int pass = 0; pass < 8; pass++) {
        int fresh = 0;
        DIR *d = opendir(path);
        if (!d)
            return ndone ? 0 : -errno;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            pid_t tid = (pid_t)atoi(e->d_name);
            int seen = 0;
            if (tid <= 0)
                continue;
            for (int i = 0; i < ndone && !seen; i++)
                seen = done[i] == tid;
            if (seen)
                continue;
            if (ndone >= SAMPLE_THREADS_MAX) {
                rc = -E2BIG;
                break;
            }
            int fd = open_sample_event(b, tid, -1);
            if (fd == -ESRCH)      /* it exited meanwhile */
                continue;
            if (fd < 0 || (rc = attach_sample_fd(b, fd)) < 0) {
                rc = fd < 0 ? fd : rc;
                break;
            }
            done[ndone++] = tid;
            fresh++;
        }
        closedir(d);
        if (rc < 0 || !fresh)
            break;
    }
    if (rc == 0 && ndone == 0)
        rc = -ESRCH;
    return rc;
}

/* Per CPU: a cpu-clock event on every CPU, keeping the ticks that find
 * the target running: the same rate per CPU-second on average, but a
 * count of coincidences, not of the target's own clock. */
static int attach_per_cpu(at_bpf_t *b)
{
    int ncpu = libbpf_num_possible_cpus(), ok = 0, err = -ENODEV;
    for (int cpu = 0; cpu < ncpu; cpu++) {
        int fd = open_sample_event(b, -1, cpu);
        if (fd < 0) {
            if (fd != -ENODEV)   /* ENODEV: an offline CPU */
                err = fd;
            continue;
        }
        int rc = attach_sample_fd(b, fd);
        if (rc == 0)
            ok++;
        else
            err = rc;
    }
    return ok ? 0 : err;
}

static int attach_sampler(at_bpf_t *b)
{
    int first = b->links.n;
    int rc = attach_per_thread(b);
    if (rc == 0) {
        view(b, AT_BPF_VIEW_SAMPLES, 1, "perf_event task-clock at %g Hz of each thread's CPU time "
             "(one timer per thread, inherited by new threads), Python frames walked in BPF",
             b->plan.hz);
        return 0;
    }
    at_bpf_links_drop(&b->links, first);   /* all threads or none: then one per CPU */
    rc = attach_per_cpu(b);
    if (rc == 0)
        view(b, AT_BPF_VIEW_SAMPLES, 1, "perf_event cpu-clock at %g Hz on every CPU, kept when the "
             "target runs (rate per CPU-second on average), Python frames walked in BPF", b->plan.hz);
    return rc;
}


static void attach_view(at_bpf_t *b, int v, int rc, const char *what)
{
    if (rc < 0 && b->data.avail[v])
        view(b, v, 0, "unavailable: cannot attach %s: %s", what, strerror(-rc));
}

/* The set's uprobes, on pid (-1: every process that maps the files); a
 * view that cannot attach is said in b, the process the set is made for. */
void at_bpf_set_attach(set_t *s, at_bpf_t *b, pid_t pid)
{
    struct archtrace_bpf *k = s->skel;
    const plan_t *p = &b->plan;
    int rc;
    if (b->data.avail[AT_BPF_VIEW_GIL]) {
        rc = uprobe(s, k->progs.gil_wait_enter, pid, p->libc, p->cond_wait, 0);
        if (rc == 0)
            rc = uprobe(s, k->progs.gil_wait_exit, pid, p->libc, p->cond_wait, 1);
        attach_view(b, AT_BPF_VIEW_GIL, rc, "uprobes to pthread_cond_timedwait");
    }
    if (p->imports == MODE_USDT) {
        rc = usdt(s, k->progs.usdt_import_start, pid, p->py, "import__find__load__start");
        attach_view(b, AT_BPF_VIEW_IMPORTS,
                    rc ? rc : usdt(s, k->progs.usdt_import_done, pid, p->py, "import__find__load__done"),
                    "the import USDT probes");
    } else if (p->imports == MODE_UPROBE) {
        rc = uprobe(s, k->progs.imp_level_enter, pid, p->py, p->imp_level, 0);
        if (rc == 0)
            rc = uprobe(s, k->progs.imp_level_exit, pid, p->py, p->imp_level, 1);
        if (rc == 0)
            rc = uprobe(s, k->progs.imp_audit, pid, p->py, p->imp_audit, 0);
        attach_view(b, AT_BPF_VIEW_IMPORTS, rc, "the import uprobes");
    }
    if (p->gc == MODE_USDT) {
        rc = usdt(s, k->progs.usdt_gc_start, pid, p->py, "gc__start");
        attach_view(b, AT_BPF_VIEW_GC, rc ? rc : usdt(s, k->progs.usdt_gc_done, pid, p->py, "gc__done"),
                    "the gc USDT probes");
    } else if (p->gc == MODE_UPROBE) {
        rc = uprobe(s, k->progs.gc_main_enter, pid, p->py, p->gc_main, 0);
        if (rc == 0)
            rc = uprobe(s, k->progs.gc_main_exit, pid, p->py, p->gc_main, 1);
        attach_view(b, AT_BPF_VIEW_GC, rc, "uprobes to gc_collect_main");
    }
}

/* The sampler's perf events, kept in b->links; a failure is said in the
 * samples view and kept in b->links.err. */
void at_bpf_sampler_start(at_bpf_t *b)
{
    int rc = attach_sampler(b);
    if (rc < 0 && !b->links.err)
        b->links.err = rc;
    attach_view(b, AT_BPF_VIEW_SAMPLES, rc, "the perf_event sampler");
}
