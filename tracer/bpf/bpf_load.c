/* SPDX-License-Identifier: MIT */
/* bpf_load.c - the eBPF backend's life cycle: plan, open, set rodata, load, attach, consume, detach.
 *
 * One order, one cleanup path (libbpf-tools style): plan what each view
 * attaches to by reading the target's files (no BPF yet, so a plain
 * "unavailable" needs no privilege), find or make the probe set it
 * needs, start its sampler, and add it to the probes' `procs` map, which
 * opens its window; consume the ring buffer until the caller stops or
 * the target exits (a pidfd tells).  A view that cannot attach is
 * recorded as unavailable with the reason; only a kernel that refuses BPF
 * as such makes a start fail.
 *
 * A probe set (set_t) is one skeleton of probes/archtrace.bpf.c: its
 * rodata (the CPython version's offsets), its uprobes, its ring buffer
 * and maps, and the processes it watches (slots).  `record --bpf` makes
 * one for its process, attached to that pid only.  `archtrace agent`
 * keeps them in an at_bpf_host_t, one per distinct CPython file (the
 * executable or libpython, by device and inode) and libc, attached with
 * pid -1 so that the kernel fires them in every process mapping the
 * file: the first process of a binary pays for the uprobes (~0.5 s each,
 * the kernel's), the next ones cost a map update, a gone one a map
 * delete.  A set goes with its last process (see at_bpf_host_t).
 * Per-process state in the shared maps is keyed by tgid (per-thread
 * maps) or by the process's slot (counters), and removed at stop.
 */
#include "bpf/ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "archtrace.skel.h"
#include "bpf/bpf_int.h"
#include "remote/py_names.h"
#include "remote/py_proc.h"
#include "session/session.h"
#include "session/stacks.h"

#define LABEL_MAX    2048
#define MAX_POLL_MS  250            /* longest wait in at_bpf_poll      */


/* ---- messages --------------------------------------------------------------- */

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    static int debug = -1;
    (void)level;
    if (debug < 0)
        debug = getenv("ARCHTRACE_DEBUG") != NULL;
    if (!debug)
        return 0;
    fputs("archtrace: libbpf: ", stderr);
    return vfprintf(stderr, fmt, ap);
}

void at_bpf_why(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    if (!why || !n)
        return;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

/* "lockdown=confidentiality" when the kernel is locked down, else "". */
static const char *lockdown(char *buf, size_t n)
{
    char line[128];
    FILE *f = fopen("/sys/kernel/security/lockdown", "re");
    buf[0] = '\0';
    if (!f)
        return buf;
    if (fgets(line, sizeof line, f)) {
        char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
        if (open && close && strncmp(open + 1, "none", 4) != 0)
            snprintf(buf, n, "lockdown=%.*s", (int)(close - open - 1), open + 1);
    }
    fclose(f);
    return buf;
}

/* The one line for a kernel that refuses BPF (err > 0). */
void at_bpf_refusal(char *why, size_t n, const char *what, int err)
{
    char ld[64];
    if ((err == EPERM || err == EACCES) && lockdown(ld, sizeof ld)[0])
        at_bpf_why(why, n, "eBPF unavailable: the kernel is locked down (%s); %s refused", ld, what);
    else if (err == EPERM || err == EACCES)
        at_bpf_why(why, n, "eBPF unavailable: %s: operation not permitted (run as root, or with "
                "CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)", what);
    else if (err == ENOSYS)
        at_bpf_why(why, n, "eBPF unavailable: this kernel has no bpf() system call");
    else
        at_bpf_why(why, n, "eBPF unavailable: %s: %s", what, strerror(err));
}

uint64_t at_bpf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *at_bpf_base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ---- events ------------------------------------------------------------------ */

/* The process of the set an event is for; NULL once it is let go. */
static at_bpf_t *event_proc(set_t *s, uint32_t tgid)
{
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i] && (uint32_t)s->slots[i]->proc.pid == tgid)
            return s->slots[i];
    return NULL;
}

int at_bpf_on_event(void *ctx, void *data, size_t size)
{
    set_t *s = ctx;
    at_bpf_t *b;
    uint32_t kind;
    if (size < sizeof kind)
        return 0;
    memcpy(&kind, data, sizeof kind);
    if (kind == AT_BPF_EV_IMPORT && size >= sizeof(struct at_bpf_import_ev)) {
        const struct at_bpf_import_ev *e = data;
        if ((b = event_proc(s, e->tgid)))
            at_bpf_data_add_import(&b->data, e);
    } else if (kind == AT_BPF_EV_GC && size >= sizeof(struct at_bpf_gc_ev)) {
        const struct at_bpf_gc_ev *e = data;
        if ((b = event_proc(s, e->tgid)))
            at_bpf_data_add_gc(&b->data, e);
    } else if (kind == AT_BPF_EV_SAMPLE && size >= sizeof(struct at_bpf_sample_ev)) {
        const struct at_bpf_sample_ev *e = data;
        if (!(b = event_proc(s, e->tgid)) || !b->sym)
            return 0;
        int rc = at_bpf_sym_sample(b->sym, e);
        b->data.samples++;
        if (rc > 0)
            b->data.samples_py++;
        else if (rc == -ENOSPC)
            b->data.stacks_dropped++;
    }
    return 0;
}

static int target_gone(at_bpf_t *b)
{
    if (b->pidfd >= 0) {
        struct pollfd p = { .fd = b->pidfd, .events = POLLIN };
        return poll(&p, 1, 0) > 0;
    }
    return kill(b->proc.pid, 0) < 0 && errno == ESRCH;
}

int at_bpf_poll(at_bpf_t *b, int timeout_ms)
{
    struct epoll_event ev[2];
    if (!b)
        return -EINVAL;
    int own = !b->set->host;   /* else at_bpf_host_poll consumes the events */
    if (b->data.exited) {
        if (own)
            ring_buffer__consume(b->set->rb);
        return -ESRCH;
    }
    if (b->sym)
        at_bpf_sym_epoch(b->sym);
    uint64_t now = at_bpf_now_ns();   /* threading names for the stacks' labels, once a second */
    if (b->stacks && at_thread_names_due(at_stacks_names(b->stacks), now) == AT_NAMES_DUE)
        at_thread_names_read(at_stacks_names(b->stacks), &b->proc, now);
    /* the probes wake us only when the ring fills up: wake on a timer */
    if (timeout_ms < 0 || timeout_ms > MAX_POLL_MS)
        timeout_ms = MAX_POLL_MS;
    if (own && b->epfd >= 0 && epoll_wait(b->epfd, ev, 2, timeout_ms) < 0 && errno != EINTR)
        return -errno;
    int got = own ? ring_buffer__consume(b->set->rb) : 0;
    if (target_gone(b)) {
        b->data.exited = 1;
        b->data.end_ns = at_bpf_now_ns();
        if (own)
            ring_buffer__consume(b->set->rb);
        return -ESRCH;
    }
    return got;
}

/* ---- start ------------------------------------------------------------------- */

static int open_waiters(at_bpf_t *b)
{
    b->pidfd = (int)syscall(SYS_pidfd_open, b->proc.pid, 0);
    if (b->set->host)   /* the host's loop waits for every set at once */
        return 0;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0)
        return -errno;
    struct epoll_event rb = { .events = EPOLLIN }, pid = { .events = EPOLLIN };
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(b->set->rb), &rb) < 0)
        return -errno;
    if (b->pidfd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->pidfd, &pid) < 0)
        return -errno;
    return 0;
}

static void free_all(at_bpf_t *b)
{
    if (b->set) {
        at_bpf_unwatch(b);
        at_bpf_links_free(&b->links);
        at_bpf_release_slot(b);
        at_bpf_set_put(b->set);
    }
    if (b->pidfd >= 0)
        close(b->pidfd);
    if (b->epfd >= 0)
        close(b->epfd);
    at_bpf_sym_free(b->sym);
    at_stacks_free(b->stacks);
    at_bpf_data_free(&b->data);
    free(b);
}

/* What the probes will read, from the layout py_proc chose: a layout
 * they cannot read is refused as unsupported (status 5), before any BPF. */
static int probe_layout(at_bpf_t *b, char *why, size_t n)
{
    uint64_t gil = 0;
    int pid = (int)b->proc.pid, rc = at_bpf_layout_gil(&b->proc, &gil);
    const char *what = "its main interpreter's GIL is not where its layout says";
    if (rc == -EAGAIN || rc == -ESRCH) {
        at_bpf_why(why, n, rc == -ESRCH ? "process %d has exited"
                : "process %d: the interpreter has no GIL yet (still starting)", pid);
        return rc;
    }
    if (rc < 0 && rc != -EPROTO) {
        at_bpf_why(why, n, "process %d: cannot read where its GIL is: %s", pid, strerror(-rc));
        return rc;
    }
    if (rc == 0 && (rc = at_bpf_layout_fill(&b->proc.layout, b->proc.runtime, gil, &b->py, &b->pp)) < 0)
        what = "its layout puts a field where the eBPF probes cannot read it";
    if (rc < 0) {
        at_bpf_why(why, n, "process %d runs Python %s: %s; record without --bpf works", pid, b->proc.version,
                what);
        return -EPROTONOSUPPORT;
    }
    return 0;
}

static int find_python(at_bpf_t *b, pid_t pid, char *why, size_t n)
{
    char err[256];
    uint64_t head;
    int rc = at_py_proc_open(&b->proc, pid, err, sizeof err);
    if (rc == 0)
        rc = at_py_proc_check(&b->proc, &head, err, sizeof err);
    if (rc < 0) {
        at_bpf_why(why, n, "%s", err);
        return rc;
    }
    if ((rc = probe_layout(b, why, n)) < 0)
        return rc;
    at_bpf_data_t *d = &b->data;
    d->pid = pid;
    snprintf(d->comm, sizeof d->comm, "%s", b->proc.comm);
    snprintf(d->version, sizeof d->version, "%s", b->proc.version);
    snprintf(d->build, sizeof d->build, "%s", at_py_proc_build(&b->proc));
    return 0;
}

static int start_consumer(at_bpf_t *b, char *why, size_t n)
{
    int rc;
    if ((rc = open_waiters(b)) < 0) {
        at_bpf_why(why, n, "cannot wait for events: %s", strerror(-rc));
        return rc;
    }
    if (b->plan.hz > 0) {
        b->stacks = at_stacks_new(b->proc.pid);
        b->sym = b->stacks ? at_bpf_sym_new(&b->proc, b->stacks) : NULL;
        if (!b->sym) {
            at_bpf_why(why, n, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

/* Both starts: h NULL for record --bpf's own set. */
static at_bpf_t *start(at_bpf_host_t *h, pid_t pid, const char *session_dir, const at_options_t *o, char *why,
                       size_t why_size)
{
    int rc;
    libbpf_set_print(quiet_print);
    at_bpf_t *b = calloc(1, sizeof *b);
    if (!b) {
        at_bpf_why(why, why_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    b->pidfd = b->epfd = -1;
    b->slot = -1;
    snprintf(b->dir, sizeof b->dir, "%s", session_dir ? session_dir : ".");
    if ((rc = find_python(b, pid, why, why_size)) < 0)
        goto fail;
    at_bpf_plan(b, o);
    if ((rc = at_bpf_set_join(h, b, why, why_size)) < 0)
        goto fail;
    if (b->plan.hz > 0)
        at_bpf_sampler_start(b);
    if (b->set->links.n == 0 && b->links.n == 0) {
        int err = b->set->links.err ? b->set->links.err : b->links.err;
        rc = err ? err : -ENOENT;
        if (rc == -EPERM || rc == -EACCES)
            at_bpf_refusal(why, why_size, "attaching the probes", -rc);
        else
            at_bpf_why(why, why_size, "no probe could be attached to process %d: %s", (int)pid,
                    err ? strerror(-err) : "every view is off or unavailable");
        goto fail;
    }
    if ((rc = start_consumer(b, why, why_size)) < 0 || (rc = at_bpf_watch(b, why, why_size)) < 0)
        goto fail;
    return b;
fail:
    free_all(b);
    errno = -rc;
    return NULL;
}

at_bpf_t *at_bpf_start(pid_t pid, const char *session_dir, const at_options_t *o, char *why,
                       size_t why_size)
{
    return start(NULL, pid, session_dir, o, why, why_size);
}

at_bpf_t *at_bpf_host_start(at_bpf_host_t *h, pid_t pid, const char *session_dir, const at_options_t *o,
                            char *why, size_t why_size)
{
    return start(h, pid, session_dir, o, why, why_size);
}

/* ---- stop ------------------------------------------------------------------------ */

/* The next entry of process pid in a per-thread map (key: pid_tgid)
 * into *tid and value: 1, or 0 at the end.  *started is 0 for the first
 * call; *key is the cursor. */
static int next_thread_entry(int fd, uint32_t pid, uint64_t *key, int *started, uint32_t *tid, void *value)
{
    uint64_t next;
    while (bpf_map_get_next_key(fd, *started ? key : NULL, &next) == 0) {
        *key = next;
        *started = 1;
        if ((uint32_t)(next >> 32) == pid && bpf_map_lookup_elem(fd, key, value) == 0) {
            *tid = (uint32_t)next;
            return 1;
        }
    }
    return 0;
}

/* Each thread's GIL row as of `end`: a wait still in progress counted
 * up to then (and as a wait).  fn gets each row; it stops the walk by
 * returning 0. */
static void each_gil_row(at_bpf_t *b, uint64_t end, int (*fn)(void *ctx, const at_bpf_gil_row_t *r), void *ctx)
{
    struct archtrace_bpf *k = b->set->skel;
    int fd = bpf_map__fd(k->maps.gil_threads), wfd = bpf_map__fd(k->maps.gil_waiting);
    struct at_bpf_gil_thread t;
    uint64_t key = 0;
    uint32_t tid;
    for (int started = 0; next_thread_entry(fd, (uint32_t)b->proc.pid, &key, &started, &tid, &t);) {
        struct at_bpf_gil_wait w;
        at_bpf_gil_row_t r = { tid, 0, t.wait_ns, t.waits, t.calls, t.timeouts, t.max_wait_ns };
        if (bpf_map_lookup_elem(wfd, &key, &w) == 0 && w.start_ns < end) {
            uint64_t from = w.start_ns > b->data.attach_ns ? w.start_ns : b->data.attach_ns;
            r.wait_ns += end - from;   /* still waiting at `end` */
            r.waits++;
            r.open = 1;
        }
        if (!fn(ctx, &r))
            return;
    }
}

static int add_gil_row(void *ctx, const at_bpf_gil_row_t *r)
{
    at_bpf_data_add_gil(ctx, r);
    return 1;
}

/* The probes' own counters and the GC totals of b, as they are now. */
static void read_counters(at_bpf_t *b, struct at_bpf_gc_stat *gc, uint64_t *stats)
{
    if (b->slot < 0)
        return;
    uint32_t slot = (uint32_t)b->slot;
    int fd = bpf_map__fd(b->set->skel->maps.gc_stats);
    for (uint32_t g = 0; g < AT_BPF_GC_SLOTS; g++) {
        uint32_t key = slot * AT_BPF_GC_SLOTS + g;
        bpf_map_lookup_elem(fd, &key, &gc[g]);
    }
    fd = bpf_map__fd(b->set->skel->maps.stats);
    for (uint32_t s = 0; s < AT_BPF_ST_COUNT; s++) {
        uint32_t key = slot * AT_BPF_ST_COUNT + s;
        bpf_map_lookup_elem(fd, &key, &stats[s]);
    }
}

/* The sampler's clock: each sampled thread's CPU time from its first
 * to its last sample, and the samples taken in it. */
static void read_sample_clock(at_bpf_t *b)
{
    int fd = bpf_map__fd(b->set->skel->maps.sample_clock);
    struct at_bpf_sample_clock c;
    uint64_t key = 0;
    uint32_t tid;
    for (int started = 0; next_thread_entry(fd, (uint32_t)b->proc.pid, &key, &started, &tid, &c);) {
        if (c.n < 2 || c.last_cpu_ns < c.first_cpu_ns)
            continue;
        b->data.oncpu_ns += c.last_cpu_ns - c.first_cpu_ns;
        b->data.oncpu_intervals += c.n - 1;
    }
}

static void read_maps(at_bpf_t *b, uint64_t end)
{
    read_counters(b, b->data.gc, b->data.stats);
    if (b->data.avail[AT_BPF_VIEW_GIL])
        each_gil_row(b, end, add_gil_row, &b->data);
    if (b->data.avail[AT_BPF_VIEW_SAMPLES])
        read_sample_clock(b);
}

/* Aggregated samples into the data rows, labels resolved. */
static int stacks_to_rows(at_bpf_t *b)
{
    at_stack_view_t v;
    size_t cursor = 0;
    char label[LABEL_MAX];
    at_bpf_data_t *d = &b->data;
    while (b->stacks && at_stacks_next(b->stacks, &cursor, &v)) {
        if (d->nstacks >= AT_BPF_MAX_STACKS) {
            d->stacks_dropped++;
            continue;
        }
        if (d->nstacks % 256 == 0) {
            void *p = realloc(d->stacks, (d->nstacks + 256) * sizeof *d->stacks);
            if (!p)
                return -ENOMEM;
            d->stacks = p;
        }
        at_bpf_stack_row_t *r = &d->stacks[d->nstacks];
        *r = (at_bpf_stack_row_t){ v.tid, (uint32_t)v.gil, v.count, 0, NULL };
        if (!(r->frames = calloc((size_t)v.n + 1, sizeof *r->frames)))
            return -ENOMEM;
        d->nstacks++;
        for (int k = 0; k < v.n; k++) {
            at_stacks_frame_label(b->stacks, &v.frames[k], label, sizeof label);
            if (!(r->frames[r->nframes] = strdup(label)))
                return -ENOMEM;
            r->nframes++;
        }
    }
    return 0;
}

/* The stacks' header: who, at what rate, over which CPU time. */
static void fill_stacks_meta(at_bpf_t *b)
{
    at_stacks_meta_t *m = at_stacks_meta(b->stacks);
    m->pid = b->proc.pid;
    snprintf(m->comm, sizeof m->comm, "%s", b->data.comm);
    snprintf(m->version, sizeof m->version, "%s", b->data.version);
    snprintf(m->build, sizeof m->build, "%s", b->data.build);
    m->rate_hz = b->plan.hz;
    m->samples = b->data.samples;
    m->missed = b->data.stats[AT_BPF_ST_LOST_SAMPLE];
    m->duration_s = (double)(b->data.end_ns - b->data.attach_ns) / 1e9;
    m->native = 0;
    m->on_cpu = 1;
    m->cpu_s = (double)b->data.oncpu_ns / 1e9;
    m->cpu_intervals = b->data.oncpu_intervals;
}

/* <pid>.stacks for the stack formats (collapsed, svg), unless a sampler
 * already wrote one for this process. */
static int save_stacks(at_bpf_t *b)
{
    FILE *f = at_session_open_file(b->dir, b->proc.pid, "stacks");
    if (f) {
        fclose(f);
        return 0;
    }
    fill_stacks_meta(b);
    return at_stacks_save(b->stacks, b->dir);
}

int at_bpf_stop(at_bpf_t *b)
{
    if (!b)
        return 0;
    at_bpf_unwatch(b);   /* the window closes */
    uint64_t end = b->data.exited ? b->data.end_ns : at_bpf_now_ns();
    b->data.end_ns = end;
    at_bpf_links_drop(&b->links, 0);   /* detach first: final counts */
    if (!b->set->host) {
        at_bpf_links_drop(&b->set->links, 0);
        ring_buffer__consume(b->set->rb);
    }
    at_bpf_unregister(b);   /* a host's consumer hands it no more events */
    read_maps(b, end);
    int rc = stacks_to_rows(b);
    at_bpf_data_finish(&b->data);
    int rc2 = at_bpf_data_save(&b->data, b->dir);
    if (rc == 0)
        rc = rc2;
    if (b->stacks && (rc2 = save_stacks(b)) < 0 && rc == 0)
        rc = rc2;
    free_all(b);
    return rc;
}

/* ---- live readings (archtrace agent) ------------------------------------------------ */

static int keep_live_row(void *ctx, const at_bpf_gil_row_t *r)
{
    at_bpf_live_t *l = ctx;
    l->gil[l->ngil++] = *r;
    return l->ngil < AT_BPF_LIVE_THREADS;
}

void at_bpf_live(at_bpf_t *b, at_bpf_live_t *l)
{
    memset(l, 0, sizeof *l);
    l->data = &b->data;
    read_counters(b, l->gc, l->stats);
    if (b->data.avail[AT_BPF_VIEW_GIL] && b->set->links.n)
        each_gil_row(b, at_bpf_now_ns(), keep_live_row, l);
    l->names = b->stacks ? at_stacks_names(b->stacks) : NULL;
}

int at_bpf_cut_stacks(at_bpf_t *b, const char *dir)
{
    if (!b->stacks)
        return -ENODATA;
    uint64_t now = at_bpf_now_ns(), since = b->cut_ns ? b->cut_ns : b->data.attach_ns;
    fill_stacks_meta(b);
    at_stacks_meta_t *m = at_stacks_meta(b->stacks);
    m->samples = b->data.samples - b->cut_samples;
    m->duration_s = (double)(now - since) / 1e9;
    m->cpu_s = 0, m->cpu_intervals = 0;     /* the CPU clock is read at the end only */
    uint64_t taken = m->samples;
    int rc = taken ? at_stacks_save(b->stacks, dir) : 0;
    /* afresh: the frames' names are re-read from the code objects, and
     * the threads' names at once (a profile's labels need them) */
    at_stacks_t *fresh = at_stacks_new(b->proc.pid);
    at_bpf_sym_t *sym = fresh ? at_bpf_sym_new(&b->proc, fresh) : NULL;
    if (!sym) {
        at_stacks_free(fresh);
        return rc < 0 ? rc : -ENOMEM;
    }
    at_bpf_sym_free(b->sym);
    at_stacks_free(b->stacks);
    b->stacks = fresh, b->sym = sym;
    b->cut_samples = b->data.samples;
    b->cut_ns = now;
    at_thread_names_read(at_stacks_names(b->stacks), &b->proc, now);
    return rc < 0 ? rc : (int)(taken < INT32_MAX ? taken : INT32_MAX);
}

const at_bpf_data_t *at_bpf_data(const at_bpf_t *b)
{
    return &b->data;
}
