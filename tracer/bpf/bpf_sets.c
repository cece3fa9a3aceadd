/* SPDX-License-Identifier: MIT */
/* bpf_sets.c - probe sets (one loaded skeleton each), the processes they watch, and the host's sets.
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
 * delete.  A set goes with its last process (see at_bpf_set_put),
 * unless the host keeps its sets until it is freed (record --bpf
 * --subprocesses).
 * Per-process state in the shared maps is keyed by tgid (per-thread
 * maps) or by the process's slot (counters), and removed at stop.
 * Kept apart from bpf_load.c, which runs one process's recording, so
 * that each file holds one concern (issue 18).
 */
#include "bpf/bpf_int.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archtrace.skel.h"

#define HOST_THREADS 4096           /* per-thread map entries of a host-wide set */
#define HOST_IMPORT_THREADS 2048    /* ... for import stacks (4 KiB each) */

/* ---- probe sets ------------------------------------------------------------------ */

static void set_lock(set_t *s)
{
    if (s->host)
        pthread_mutex_lock(&s->host->lock);
}

static void set_unlock(set_t *s)
{
    if (s->host)
        pthread_mutex_unlock(&s->host->lock);
}

/* b's key.  The files by device and inode: -errno when one cannot be
 * read (the key is filled anyway). */
static int set_key(const at_bpf_t *b, set_key_t *k)
{
    struct stat st;
    int rc = 0;
    memset(k, 0, sizeof *k);   /* compared with memcmp: no stray padding */
    if (stat(b->plan.py, &st) == 0)
        k->py_dev = st.st_dev, k->py_ino = st.st_ino;
    else
        rc = -errno;
    if (b->plan.libc[0] && stat(b->plan.libc, &st) == 0)
        k->libc_dev = st.st_dev, k->libc_ino = st.st_ino;
    k->gil = b->data.avail[AT_BPF_VIEW_GIL];
    k->imports = b->plan.imports;
    k->gc = b->plan.gc;
    k->sampler = b->plan.hz > 0;
    k->py = b->py;
    return rc;
}

/* Open, set the rodata, load, and attach the uprobes (pid-filtered for
 * one process, host-wide for a host's set); the views that attached are
 * the set's, for the processes that join it. */
static int set_load_files(set_t *s, at_bpf_t *b, char *why, size_t n)
{
    s->skel = archtrace_bpf__open();
    if (!s->skel) {
        int e = errno ? errno : EINVAL;
        at_bpf_refusal(why, n, "cannot open the probes", e);
        return -e;
    }
    struct archtrace_bpf *k = s->skel;
    k->rodata->py = b->py;
    bpf_map__set_max_entries(k->maps.events, b->plan.ring_bytes);
    if (s->host) {   /* the threads of every process of the binary */
        struct bpf_map *per_thread[] = { k->maps.gil_threads, k->maps.gil_waiting, k->maps.gc_open,
                                         k->maps.tstate_cache, k->maps.sample_clock };
        for (size_t i = 0; i < sizeof per_thread / sizeof *per_thread; i++)
            bpf_map__set_max_entries(per_thread[i], HOST_THREADS);
        bpf_map__set_max_entries(k->maps.import_stacks, HOST_IMPORT_THREADS);
    }
    at_bpf_set_autoload(s);
    int rc = archtrace_bpf__load(k);
    if (rc < 0) {
        at_bpf_refusal(why, n, "loading the probes", -rc);
        return rc;
    }
    s->rb = ring_buffer__new(bpf_map__fd(k->maps.events), at_bpf_on_event, s, NULL);
    if (!s->rb) {
        rc = -errno;
        at_bpf_why(why, n, "cannot read the probes' ring buffer: %s", strerror(-rc));
        return rc;
    }
    int planned[AT_BPF_VIEWS];
    memcpy(planned, b->data.avail, sizeof planned);
    at_bpf_set_attach(s, b, s->host ? -1 : b->proc.pid);
    for (int v = AT_BPF_VIEW_GIL; v <= AT_BPF_VIEW_GC; v++) {
        /* a view lost because b exited meanwhile is no view of the set */
        if (planned[v] && !b->data.avail[v] && s->host && kill(b->proc.pid, 0) < 0 && errno == ESRCH) {
            at_bpf_why(why, n, "process %d has exited", (int)b->proc.pid);
            return -ESRCH;
        }
        s->avail[v] = b->data.avail[v];
        memcpy(s->how[v], b->data.how[v], sizeof s->how[v]);
    }
    return 0;
}

/* Open, set the rodata, load, and attach the uprobes (pid-filtered for
 * one process, host-wide for a host's set); the views that attached are
 * the set's, for the processes that join it.  The files are attached
 * through descriptors of our own, opened first: b may exit meanwhile (a
 * short-lived python -c), and /proc/PID/root with it, but the set is the
 * next processes' too. */
static int set_load(set_t *s, at_bpf_t *b, char *why, size_t n)
{
    plan_t *p = &b->plan;
    char py[sizeof p->py], libc[sizeof p->libc];
    int pyfd = open(p->py, O_RDONLY | O_CLOEXEC), libcfd = p->libc[0] ? open(p->libc, O_RDONLY | O_CLOEXEC) : -1;
    memcpy(py, p->py, sizeof py), memcpy(libc, p->libc, sizeof libc);
    if (pyfd >= 0)
        snprintf(p->py, sizeof p->py, "/proc/self/fd/%d", pyfd);
    if (libcfd >= 0)
        snprintf(p->libc, sizeof p->libc, "/proc/self/fd/%d", libcfd);
    int rc = set_load_files(s, b, why, n);
    memcpy(p->py, py, sizeof py), memcpy(p->libc, libc, sizeof libc);
    if (pyfd >= 0)
        close(pyfd);
    if (libcfd >= 0)
        close(libcfd);
    return rc;
}

static void set_destroy(set_t *s)
{
    at_bpf_links_free(&s->links);   /* the slow part: ~0.5 s a uprobe */
    ring_buffer__free(s->rb);
    archtrace_bpf__destroy(s->skel);
    free(s);
}

/* Out of the host's list (it may be out already).  Host locked. */
static void set_unlink(set_t *s)
{
    for (set_t **p = &s->host->sets; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            return;
        }
}

/* One user fewer; the last one destroys it: a host's set goes with its
 * last process.  Keeping it for the next process of the same binary
 * would save that one the attach, but every process on the host that
 * calls pthread_cond_timedwait (through libc, Python or not) or maps the
 * binary would keep paying for breakpoints nobody reads: the agent,
 * which runs for days, lets it go; a recording of a tree, which ends,
 * keeps it (at_bpf_host_keep_sets) until at_bpf_host_free. */
void at_bpf_set_put(set_t *s)
{
    set_lock(s);
    int last = --s->refs == 0;
    /* unless the host keeps it (a failed set is out of the list: it goes) */
    int kept = last && s->host && s->host->keep && s->state == SET_READY;
    if (last && s->host && !kept)
        set_unlink(s);
    set_unlock(s);
    if (last && !kept)
        set_destroy(s);
}

/* record --bpf: a set of its own, attached to the process only. */
static int own_set(at_bpf_t *b, char *why, size_t n)
{
    set_t *s = calloc(1, sizeof *s);
    if (!s) {
        at_bpf_why(why, n, "out of memory");
        return -ENOMEM;
    }
    set_key(b, &s->key);   /* what to load; the files' identity is not needed */
    s->refs = 1;
    s->state = SET_READY;
    int rc = set_load(s, b, why, n);
    if (rc < 0) {
        at_bpf_set_put(s);
        return rc;
    }
    b->set = s;
    return 0;
}

/* The host's set for b's files, made (by this thread, outside the lock:
 * attaching takes seconds) or joined (waiting for whoever makes it). */
static int host_set(at_bpf_host_t *h, at_bpf_t *b, char *why, size_t n, int tries)
{
    set_key_t k;
    int rc = set_key(b, &k);
    if (rc < 0) {
        at_bpf_why(why, n, "process %d: cannot read %s: %s", (int)b->proc.pid, b->plan.py, strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&h->lock);
    set_t *s = h->sets;
    while (s && memcmp(&s->key, &k, sizeof k) != 0)
        s = s->next;
    if (s) {
        s->refs++;
        while (s->state == SET_LOADING)
            pthread_cond_wait(&h->changed, &h->lock);
        rc = s->state == SET_FAILED ? s->err : 0;
        if (rc < 0)
            at_bpf_why(why, n, "%s", s->why);
        pthread_mutex_unlock(&h->lock);
        if (rc < 0) {
            at_bpf_set_put(s);
            /* its maker exited: this process makes one (a few times) */
            return rc == -ESRCH && tries < 4 ? host_set(h, b, why, n, tries + 1) : rc;
        }
        for (int v = AT_BPF_VIEW_GIL; v <= AT_BPF_VIEW_GC; v++) {
            b->data.avail[v] = s->avail[v];
            memcpy(b->data.how[v], s->how[v], sizeof s->how[v]);
        }
        b->set = s;
        return 0;
    }
    if (!(s = calloc(1, sizeof *s))) {
        pthread_mutex_unlock(&h->lock);
        at_bpf_why(why, n, "out of memory");
        return -ENOMEM;
    }
    s->host = h, s->key = k, s->refs = 1, s->state = SET_LOADING;
    s->next = h->sets;
    h->sets = s;
    pthread_mutex_unlock(&h->lock);
    rc = set_load(s, b, why, n);
    pthread_mutex_lock(&h->lock);
    s->state = rc < 0 ? SET_FAILED : SET_READY;
    if (rc < 0) {   /* said to those waiting; the next process tries afresh */
        s->err = rc;
        snprintf(s->why, sizeof s->why, "%s", why ? why : "");
        set_unlink(s);
    }
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    if (rc < 0) {
        at_bpf_set_put(s);
        return rc;
    }
    b->set = s;
    return 0;
}

/* b's probe set: the host's for its files (h), else one of its own. */
int at_bpf_set_join(at_bpf_host_t *h, at_bpf_t *b, char *why, size_t n)
{
    return h ? host_set(h, b, why, n, 0) : own_set(b, why, n);
}

/* ---- watching a process ------------------------------------------------------------- */

/* Take a slot of b's set, zero its counters, and add b to the probes'
 * procs map: from here on the probes count it. */
int at_bpf_watch(at_bpf_t *b, char *why, size_t n)
{
    set_t *s = b->set;
    struct archtrace_bpf *k = s->skel;
    int slot = -1;
    set_lock(s);
    for (int i = 0; i < AT_BPF_MAX_PROCS && slot < 0; i++)
        if (!s->used[i])
            slot = i;
    if (slot >= 0)
        s->used[slot] = 1;
    set_unlock(s);
    if (slot < 0) {
        at_bpf_why(why, n, "process %d: the probes of %s already watch %d processes", (int)b->proc.pid,
                at_bpf_base_name(b->plan.py), AT_BPF_MAX_PROCS);
        return -ENOSPC;
    }
    b->slot = slot;
    b->pp.slot = (uint32_t)slot;
    struct at_bpf_gc_stat gc = { 0 };
    uint64_t zero = 0;
    for (uint32_t g = 0; g < AT_BPF_GC_SLOTS; g++) {
        uint32_t key = (uint32_t)slot * AT_BPF_GC_SLOTS + g;
        bpf_map_update_elem(bpf_map__fd(k->maps.gc_stats), &key, &gc, BPF_ANY);
    }
    for (uint32_t st = 0; st < AT_BPF_ST_COUNT; st++) {
        uint32_t key = (uint32_t)slot * AT_BPF_ST_COUNT + st;
        bpf_map_update_elem(bpf_map__fd(k->maps.stats), &key, &zero, BPF_ANY);
    }
    b->data.attach_ns = at_bpf_now_ns();   /* the window opens: the probes count from here */
    set_lock(s);                    /* its events go to b from here */
    s->slots[slot] = b;
    if (slot >= s->nslots)
        s->nslots = slot + 1;
    set_unlock(s);
    uint32_t tgid = (uint32_t)b->proc.pid;
    if (bpf_map_update_elem(bpf_map__fd(k->maps.procs), &tgid, &b->pp, BPF_ANY) < 0) {
        int rc = -errno;
        at_bpf_why(why, n, "process %d: cannot add it to the probes: %s", (int)b->proc.pid, strerror(-rc));
        return rc;
    }
    b->watching = 1;
    return 0;
}

/* Out of the procs map: the probes stop counting it. */
void at_bpf_unwatch(at_bpf_t *b)
{
    uint32_t tgid = (uint32_t)b->proc.pid;
    if (b->watching)
        bpf_map_delete_elem(bpf_map__fd(b->set->skel->maps.procs), &tgid);
    b->watching = 0;
}

/* No more of its events: after this, the host's consumer leaves b alone. */
void at_bpf_unregister(at_bpf_t *b)
{
    set_t *s = b->set;
    if (b->slot < 0)
        return;
    set_lock(s);
    s->slots[b->slot] = NULL;
    set_unlock(s);
}

/* The entries of process pid in a per-thread map (key: pid_tgid). */
static void sweep_map(int fd, uint32_t pid)
{
    uint64_t key = 0, next, *dead = NULL;
    size_t n = 0, cap = 0;
    for (int started = 0; bpf_map_get_next_key(fd, started ? &key : NULL, &next) == 0; started = 1) {
        key = next;
        if ((uint32_t)(key >> 32) != pid)
            continue;
        if (n == cap) {
            uint64_t *more = realloc(dead, (cap = cap ? cap * 2 : 64) * sizeof *more);
            if (!more)
                break;
            dead = more;
        }
        dead[n++] = key;
    }
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(fd, &dead[i]);
    free(dead);
}

/* Give b's slot back; in a host's set, remove what its threads left in
 * the shared maps (a later process may get its pid and tids). */
void at_bpf_release_slot(at_bpf_t *b)
{
    set_t *s = b->set;
    if (b->slot < 0)
        return;
    if (s->host) {
        struct archtrace_bpf *k = s->skel;
        const struct bpf_map *per_thread[] = { k->maps.gil_threads, k->maps.gil_waiting, k->maps.import_stacks,
                                               k->maps.gc_open, k->maps.tstate_cache, k->maps.sample_clock };
        for (size_t i = 0; i < sizeof per_thread / sizeof *per_thread; i++)
            sweep_map(bpf_map__fd(per_thread[i]), (uint32_t)b->proc.pid);
    }
    set_lock(s);
    s->slots[b->slot] = NULL;
    s->used[b->slot] = 0;
    set_unlock(s);
    b->slot = -1;
}

/* ---- the host's sets (archtrace agent) ------------------------------------------------ */

at_bpf_host_t *at_bpf_host_new(void)
{
    at_bpf_host_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    return h;
}

int at_bpf_host_poll(at_bpf_host_t *h)
{
    int got = 0;
    pthread_mutex_lock(&h->lock);   /* no set goes, no process leaves its slot meanwhile */
    for (set_t *s = h->sets; s; s = s->next) {
        int rc = s->state == SET_READY ? ring_buffer__consume(s->rb) : 0;
        if (rc > 0)
            got += rc;
    }
    pthread_mutex_unlock(&h->lock);
    return got;
}

int at_bpf_host_sets(at_bpf_host_t *h)
{
    int n = 0;
    pthread_mutex_lock(&h->lock);
    for (set_t *s = h->sets; s; s = s->next)
        n += s->state == SET_READY;
    pthread_mutex_unlock(&h->lock);
    return n;
}

void at_bpf_host_keep_sets(at_bpf_host_t *h)
{
    pthread_mutex_lock(&h->lock);
    h->keep = 1;
    pthread_mutex_unlock(&h->lock);
}

void at_bpf_host_free(at_bpf_host_t *h)
{
    if (!h)
        return;
    for (set_t *s = h->sets, *next; s; s = next) {   /* kept ones: nobody uses them */
        next = s->next;
        set_destroy(s);
    }
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
