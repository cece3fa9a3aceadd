/* SPDX-License-Identifier: MIT */
/* bpf_load.c - the eBPF backend's life cycle for one process: start, consume, stop.
 *
 * One order, one cleanup path (libbpf-tools style): find the target's
 * interpreter and what the probes read in it, plan what each view
 * attaches to by reading its files (no BPF yet, so a plain "unavailable"
 * needs no privilege; bpf_attach.c), find or make the probe set it needs
 * (bpf_sets.c), start its sampler, and add it to the probes' `procs`
 * map, which opens its window; consume the ring buffer until the caller
 * stops or the target exits (a pidfd tells); at stop, close the window,
 * detach, and write what the maps hold (bpf_read.c).  A view that cannot
 * attach is recorded as unavailable with the reason; only a kernel that
 * refuses BPF as such makes a start fail.  The messages every part of
 * the backend writes are here too.
 */
#include "bpf/bpf_int.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "remote/py_names.h"
#include "remote/py_proc.h"
#include "session/stacks.h"

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
    int rc = at_bpf_save_recording(b, end);
    free_all(b);
    return rc;
}
