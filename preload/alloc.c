/* SPDX-License-Identifier: MIT */
/* alloc.c - the allocation-tracking feature: start, snapshots, fork, exit.
 *
 * Design: on_run (first cpython.run_* event, GIL held) maps <pid>.alloc,
 * seeds the site tables and puts our layer over the three PyMem domains;
 * from then on alloc_hooks.c counts every block.  Snapshots keep, per
 * (file, line) group, the live bytes and blocks of the biggest groups:
 *   - the peak: when the Python live total passes the last captured peak
 *     by 1/64 (or 1 MiB), the first free after it captures the state
 *     before that free, i.e. at the local maximum; two slots written in
 *     turn so a kill mid-write leaves the previous one whole;
 *   - each sys.audit("archtrace.snapshot", label);
 *   - exit, from the core's atexit callback, while __main__ still lives.
 * A capture walks every site once (no allocation, no Python API), so it
 * may run inside a free() hook.  A forked child starts over with its own
 * file: it counts what it allocates after the fork.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "alloc.h"
#include "shim.h"

#define CAPTURE_STEP_MIN (64 << 10)  /* re-capture the peak after 64 KiB ... */
#define CAPTURE_STEP_SHIFT 6         /* ... or 1/64 more, whichever is more */
#define PY_TOP (AT_ALLOC_SNAP_TOP - AT_ALLOC_SNAP_NATIVE)

at_alloc_state_t at_alloc;

/* Scratch for captures: per-group sums and the groups touched. */
typedef struct scratch {
    int64_t *bytes, *count;
    uint32_t *touched;
    uint8_t *seen;
} scratch_t;

static scratch_t scr;
static uint64_t snap_seq;            /* seq values handed out (even)      */
static unsigned peak_writes;

/* ---- captures ----------------------------------------------------------- */

static size_t scratch_size(void)
{
    return (size_t)AT_ALLOC_GROUP_CAP * (8 + 8 + 4 + 1);
}

static int scratch_init(void)
{
    void *p = mmap(NULL, scratch_size(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    scr.bytes = p;
    scr.count = scr.bytes + AT_ALLOC_GROUP_CAP;
    scr.touched = (uint32_t *)(scr.count + AT_ALLOC_GROUP_CAP);
    scr.seen = (uint8_t *)(scr.touched + AT_ALLOC_GROUP_CAP);
    return 0;
}

/* Sum live bytes and blocks of every site into its group; returns how
 * many groups have something live. */
static uint32_t sum_groups(void)
{
    uint32_t n = 0, nsites = __atomic_load_n(&at_alloc.hdr->nsites, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < nsites; i++) {
        const at_alloc_site_t *s = &at_alloc.sites[i];
        int64_t b = __atomic_load_n(&s->live_bytes, __ATOMIC_RELAXED);
        int64_t c = __atomic_load_n(&s->live_count, __ATOMIC_RELAXED);
        if (!b && !c)
            continue;
        uint32_t g = s->group;
        if (!scr.seen[g]) {
            scr.seen[g] = 1;
            scr.bytes[g] = scr.count[g] = 0;
            scr.touched[n++] = g;
        }
        scr.bytes[g] += b;
        scr.count[g] += c;
    }
    return n;
}

/* Min-heap of group indexes by bytes, size <= cap. */
static void heap_push(uint32_t *heap, uint32_t *len, uint32_t cap, uint32_t g)
{
    const int64_t *key = scr.bytes;
    if (*len == cap) {
        if (key[g] <= key[heap[0]])
            return;
        heap[0] = g;
    } else {
        uint32_t i = (*len)++;
        heap[i] = g;
        while (i && key[heap[(i - 1) / 2]] > key[heap[i]]) {
            uint32_t p = (i - 1) / 2, t = heap[p];
            heap[p] = heap[i], heap[i] = t, i = p;
        }
        return;
    }
    for (uint32_t i = 0;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *len && key[heap[l]] < key[heap[m]])
            m = l;
        if (r < *len && key[heap[r]] < key[heap[m]])
            m = r;
        if (m == i)
            break;
        uint32_t t = heap[m];
        heap[m] = heap[i], heap[i] = t, i = m;
    }
}

/* Append the heap's groups to the snapshot, biggest first. */
static void emit_sorted(at_alloc_snap_t *sn, uint32_t *heap, uint32_t len)
{
    uint32_t first = sn->n;
    for (uint32_t i = 0; i < len; i++) {
        uint32_t g = heap[i], j = first + i;
        while (j > first && sn->top[j - 1].bytes < scr.bytes[g]) {
            sn->top[j] = sn->top[j - 1];
            j--;
        }
        sn->top[j] = (at_alloc_snap_entry_t){ g, 0, scr.bytes[g], scr.count[g] };
    }
    sn->n = first + len;
}

static void fill_top(at_alloc_snap_t *sn, uint32_t ntouched)
{
    uint32_t py[PY_TOP], nat[AT_ALLOC_SNAP_NATIVE], npy = 0, nnat = 0, live = 0;
    int64_t py_count = 0;
    for (uint32_t i = 0; i < ntouched; i++) {
        uint32_t g = scr.touched[i];
        const at_alloc_group_t *grp = &at_alloc.groups[g];
        scr.seen[g] = 0;
        if (grp->kind == AT_ALLOC_GROUP_PY && !(grp->flags & AT_ALLOC_G_TOOL))
            py_count += scr.count[g];
        if (scr.bytes[g] <= 0 || (grp->flags & AT_ALLOC_G_TOOL))
            continue;
        live++;
        if (grp->kind == AT_ALLOC_GROUP_NATIVE)
            heap_push(nat, &nnat, AT_ALLOC_SNAP_NATIVE, g);
        else
            heap_push(py, &npy, PY_TOP, g);
    }
    sn->n = 0;
    emit_sorted(sn, py, npy);
    emit_sorted(sn, nat, nnat);
    sn->groups_live = live;
    sn->py_count = py_count;
}

static void capture(unsigned slot, unsigned kind, const char *label)
{
    at_alloc_header_t *h = at_alloc.hdr;
    at_alloc_snap_t *sn = &at_alloc.snaps[slot];
    uint64_t seq = (snap_seq += 2);
    __atomic_store_n(&sn->seq, seq - 1, __ATOMIC_RELEASE);    /* odd: writing */
    sn->kind = kind;
    sn->ns = at_now_ns();
    size_t len = strnlen(label, AT_ALLOC_LABEL_MAX - 1);
    memcpy(sn->label, label, len);
    memset(sn->label + len, 0, AT_ALLOC_LABEL_MAX - len);
    sn->py_bytes = h->py_live + __atomic_load_n(&h->raw_live, __ATOMIC_RELAXED);
    sn->native_bytes = __atomic_load_n(&h->native_live, __ATOMIC_RELAXED);
    sn->native_count = __atomic_load_n(&h->native_live_count, __ATOMIC_RELAXED);
    fill_top(sn, sum_groups());
    __atomic_store_n(&sn->seq, seq, __ATOMIC_RELEASE);
}

void at_alloc_capture_peak(void)
{
    at_alloc_header_t *h = at_alloc.hdr;
    at_alloc.peak_pending = 0;
    unsigned slot = AT_ALLOC_SNAP_PEAK0 + (peak_writes++ & 1);
    capture(slot, AT_ALLOC_SNAP_KIND_PEAK, "peak");
    at_alloc_snap_t *sn = &at_alloc.snaps[slot];
    h->py_peak_ns = sn->ns;
    __atomic_store_n(&h->peak_seq, sn->seq, __ATOMIC_RELEASE);
    int64_t step = sn->py_bytes >> CAPTURE_STEP_SHIFT;
    at_alloc.next_capture = sn->py_bytes + (step > CAPTURE_STEP_MIN ? step : CAPTURE_STEP_MIN);
}

/* At a marker or exit (GIL held, outside the allocator): when the live
 * total is above the last captured peak, capture it: between the step
 * thresholds of the free path this keeps the peak snapshot the highest
 * state seen. */
static void capture_peak_if_now(void)
{
    at_alloc_header_t *h = at_alloc.hdr;
    int64_t live = h->py_live + __atomic_load_n(&h->raw_live, __ATOMIC_RELAXED);
    const at_alloc_snap_t *last = peak_writes ? &at_alloc.snaps[AT_ALLOC_SNAP_PEAK0 + ((peak_writes - 1) & 1)] : NULL;
    if (at_alloc.peak_pending || !last || live > last->py_bytes)
        at_alloc_capture_peak();
}

/* ---- the file ----------------------------------------------------------- */

static void point_regions(at_alloc_header_t *h)
{
    char *base = (char *)h;
    at_alloc.hdr = h;
    at_alloc.sites = (at_alloc_site_t *)(base + h->off_sites);
    at_alloc.groups = (at_alloc_group_t *)(base + h->off_groups);
    at_alloc.frames = (uint32_t *)(base + h->off_frames);
    at_alloc.strs = base + h->off_strs;
    at_alloc.snaps = (at_alloc_snap_t *)(base + h->off_snaps);
}

static at_alloc_header_t *create_file(unsigned flags)
{
    at_alloc_header_t proto = {
        .magic = AT_ALLOC_MAGIC, .version = AT_ALLOC_VERSION,
        .header_size = sizeof(at_alloc_header_t), .site_size = sizeof(at_alloc_site_t),
        .group_size = sizeof(at_alloc_group_t), .snap_size = sizeof(at_alloc_snap_t),
        .site_cap = AT_ALLOC_SITE_CAP, .group_cap = AT_ALLOC_GROUP_CAP,
        .frame_cap = at_alloc.depth > 1 ? AT_ALLOC_FRAME_CAP : 0,
        .snap_cap = AT_ALLOC_SNAP_CAP, .str_cap = AT_ALLOC_STR_CAP,
        .pid = (int32_t)getpid(), .flags = flags, .depth = at_alloc.depth,
        .count_scale = at_alloc.sampling ? AT_ALLOC_COUNT_SCALE : 1,
        .sample_bytes = at_alloc.sampling ? (int64_t)at_alloc.sample_mean : 0,
        .start_ns = at_now_ns(),
    };
    size_t size = (size_t)at_alloc_layout(&proto);
    at_alloc_header_t *h = at_seg_map("alloc", size);
    if (!h)
        return NULL;
    memcpy(h, &proto, sizeof(proto));
    at_alloc.map_size = size;
    point_regions(h);
    return h;
}

/* ---- fork --------------------------------------------------------------- */

static void fork_prepare(void)
{
    at_alloc_tl |= AT_TL_FORKING;
}

static void fork_parent(void)
{
    at_alloc_tl &= ~AT_TL_FORKING;
}

/* Runs after the core's handler (which calls on_fork_child): if the
 * child was not given its own file, it must not write into ours. */
static void fork_child(void)
{
    if (at_alloc.owner != getpid())
        at_alloc.on = at_alloc.native_on = 0;
}

static void on_fork_child(void)
{
    at_alloc_header_t *parent = at_alloc.hdr;
    size_t parent_size = at_alloc.map_size;
    at_alloc.on = at_alloc.native_on = 0;
    if (!parent)
        return;
    unsigned flags = AT_ALLOC_F_RUNNING | AT_ALLOC_F_FORKED |
                     (parent->flags & (AT_ALLOC_F_SAMPLED | AT_ALLOC_F_NATIVE));
    uint64_t layers = parent->layers;
    at_alloc_header_t *h = create_file(flags);
    at_seg_unmap(parent, parent_size);
    if (!h) {
        at_alloc.hdr = NULL;
        return;
    }
    h->layers = layers;
    madvise(scr.bytes, scratch_size(), MADV_DONTNEED);
    at_alloc_sites_reset();
    at_shadow_reset();
    at_alloc.peak_pending = 0;
    at_alloc.next_capture = 0;
    snap_seq = 0;
    peak_writes = 0;
    at_alloc_sample_reset_thread();
    at_alloc.owner = getpid();
    at_alloc_tl &= ~AT_TL_FORKING;
    at_alloc.on = at_alloc.native_on = 1;
}

/* ---- feature callbacks -------------------------------------------------- */

static int resolve_python(void)
{
    if (!at_py.PyMem_GetAllocator || !at_py.PyMem_SetAllocator || !at_shim.runtime)
        return -ENOENT;
    at_alloc.runtime = at_shim.runtime;
    at_alloc.this_tstate = (void *(*)(void))at_py_sym("PyGILState_GetThisThreadState");
    /* struct _PyTraceMalloc_Config { int initialized; int tracing; ... }:
     * 3.11's own global, 3.12+'s _PyRuntime.tracemalloc.config */
    const char *tm = at_py_sym("_Py_tracemalloc_config");
    if (at_pyl.rt_tracemalloc_tracing != AT_PYLAYOUT_NONE)
        at_alloc.tm_tracing = (const int *)(at_shim.runtime + (uintptr_t)at_pyl.rt_tracemalloc_tracing);
    else
        at_alloc.tm_tracing = tm ? (const int *)(tm + sizeof(int)) : NULL;
    at_alloc.tm_seen = at_alloc.tm_tracing ? *at_alloc.tm_tracing : 0;
    at_alloc.tm_watch = at_alloc.tm_seen;
    return 0;
}

/* The compiled fast path of each version against the table chosen at
 * start (3.13: the interpreter's own debug offsets): a build whose
 * offsets moved is not read with the wrong ones. */
const at_alloc_fast_t *at_alloc_fast_for_version(void)
{
    static const at_alloc_fast_t *const all[] = { &at_alloc_fast_311, &at_alloc_fast_312, &at_alloc_fast_313 };
    const at_pylayout_t *l = &at_pyl;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const at_alloc_fast_t *F = all[i];
        if (F->minor != l->minor)
            continue;
        int32_t rt_tstate = l->rt_gilstate_tstate_current != AT_PYLAYOUT_NONE
                                ? l->rt_gilstate_tstate_current
                                : l->rt_main_interpreter + l->interp_gil + l->gil_last_holder;
        int32_t frame = l->tstate_current_frame != AT_PYLAYOUT_NONE ? l->tstate_current_frame
                                                                    : l->cframe_current_frame;
        int same = F->rt_tstate == rt_tstate && F->tstate_cframe == l->tstate_cframe &&
                   F->frame == frame && F->instr == l->iframe_instr && F->code == l->iframe_code &&
                   F->linetable == l->code_linetable;
        return same ? F : NULL;
    }
    return NULL;
}

/* 3.12+: the GIL holder's thread state is found through the main
 * interpreter's GIL (at_alloc_fast_t.rt_tstate), so that GIL must be the
 * one in use, and its last_holder this thread now (GIL held). */
static const char *check_tstate_source(const at_alloc_fast_t *F)
{
    static void *(*thread_state_get)(void);
    if (!F)
        return "the interpreter's frame layout differs from the compiled one: allocation tracking off";
    if (!thread_state_get)
        thread_state_get = (void *(*)(void))at_py_sym("PyThreadState_Get");
    if (!thread_state_get)
        return "PyThreadState_Get not found: allocation tracking off";
    uintptr_t ts = (uintptr_t)thread_state_get();
    if (at_pyl.interp_ceval_gil != AT_PYLAYOUT_NONE) {
        uintptr_t main_interp = at_shim.runtime + (uintptr_t)at_pyl.rt_main_interpreter;
        uintptr_t in_use = *(const uintptr_t *)(main_interp + at_pyl.interp_ceval_gil);
        if (in_use != main_interp + (uintptr_t)at_pyl.interp_gil)
            return "the main interpreter does not use its own GIL: allocation tracking off";
    }
    if (at_alloc_tstate_gil(F) != ts)
        return "the GIL holder's thread state is not where the layout says: allocation tracking off";
    return NULL;
}

static void on_run(void)
{
    if (resolve_python() < 0) {
        at_shim_note("alloc", "PyMem allocator API not found: allocation tracking off");
        return;
    }
    const char *why = check_tstate_source(at_alloc_fast_for_version());
    if (why) {
        at_shim_note("alloc", why);
        return;
    }
    at_alloc.depth = at_shim.alloc_depth > 0 ? at_shim.alloc_depth : 1;
    if (at_alloc.depth > 128)
        at_alloc.depth = 128;
    at_alloc.sampling = at_shim.alloc_sample > 0;
    at_alloc.sample_mean = (double)at_shim.alloc_sample;
    unsigned flags = AT_ALLOC_F_RUNNING | AT_ALLOC_F_NATIVE | (at_alloc.sampling ? AT_ALLOC_F_SAMPLED : 0);
    if (scratch_init() < 0 || (at_alloc.sampling && at_alloc_weights_init() < 0) ||
        !create_file(flags) || at_alloc_sites_init() < 0) {
        at_shim_note("alloc", "cannot map the allocation tables: allocation tracking off");
        at_alloc.hdr = NULL;
        return;
    }
    if (at_alloc.sampling)
        at_shadow_hints_start();
    at_alloc.owner = getpid();
    at_alloc.next_capture = 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (at_alloc_hooks_install() < 0)
        return;
    at_alloc.on = 1;
    at_alloc.native_on = 1;
    at_alloc_track_scan();
}

static void marker(PyObject *args)
{
    char label[AT_ALLOC_LABEL_MAX] = "snapshot";
    at_alloc_header_t *h = at_alloc.hdr;
    if (args && at_py.PyTuple_Size(args) >= 1) {
        const char *s = at_py_str(at_py.PyTuple_GetItem(args, 0));
        if (s) {
            size_t n = strnlen(s, sizeof(label) - 1);
            memcpy(label, s, n);
            label[n] = '\0';
        }
    }
    capture_peak_if_now();
    if (h->nmarkers >= AT_ALLOC_SNAP_CAP - AT_ALLOC_SNAP_MARKER0) {
        h->markers_dropped++;
        return;
    }
    capture(AT_ALLOC_SNAP_MARKER0 + h->nmarkers, AT_ALLOC_SNAP_KIND_MARKER, label);
    __atomic_store_n(&h->nmarkers, h->nmarkers + 1, __ATOMIC_RELEASE);
}

/* tracemalloc can only start once imported: only then is it worth
 * checking, on every malloc, whether it has wrapped our layer. */
static void watch_import(PyObject *args)
{
    const char *name = args && at_py.PyTuple_Size(args) >= 1 ? at_py_str(at_py.PyTuple_GetItem(args, 0)) : NULL;
    if (at_alloc.tm_tracing && name && (strcmp(name, "tracemalloc") == 0 || strcmp(name, "_tracemalloc") == 0))
        at_alloc.tm_watch = 1;
}

/* 3.12+ find the GIL holder through the GIL's last_holder, which
 * finalization leaves pointing at the main thread state it frees; the
 * exit snapshot is behind us by then (atexit), so the Python domains stop
 * counting when the interpreter starts tearing down (this event comes
 * before its modules and thread states go). */
static void on_finalizing(void)
{
    if (at_pyl.rt_gilstate_tstate_current == AT_PYLAYOUT_NONE)
        __atomic_store_n(&at_alloc.on, 0, __ATOMIC_RELAXED);
}

static void on_audit(const char *event, PyObject *args)
{
    if (!at_alloc.on || at_alloc.owner != at_shim.pid)
        return;
    if (event[0] == 'c' && strcmp(event, "cpython._PySys_ClearAuditHooks") == 0) {
        on_finalizing();
        return;
    }
    if (at_alloc.tm_tracing && *at_alloc.tm_tracing != at_alloc.tm_seen)
        at_alloc_tracemalloc_changed();
    if (event[0] == 'a' && strcmp(event, "archtrace.snapshot") == 0)
        marker(args);
    else if (event[0] == 'i' && strcmp(event, "import") == 0) {
        at_alloc_track_scan();      /* the last import may have loaded a .so */
        if (!at_alloc.tm_watch)
            watch_import(args);
    }
}

/* Bytes of the file this process wrote (mincore would count the page
 * cache that posix_fallocate filled, not what we touched). */
static uint64_t file_touched(const at_alloc_header_t *h)
{
    uint64_t n = h->header_size + (uint64_t)h->nsites * sizeof(at_alloc_site_t) +
                 (uint64_t)h->ngroups * sizeof(at_alloc_group_t) + (uint64_t)h->nframes * 4 +
                 h->str_used + (uint64_t)(AT_ALLOC_SNAP_MARKER0 + h->nmarkers) * sizeof(at_alloc_snap_t);
    return (n + 4095) & ~4095ull;
}

static void on_exit_(int python_alive)
{
    at_alloc_header_t *h = at_alloc.hdr;
    if (!h || at_alloc.owner != getpid() || (h->flags & AT_ALLOC_F_EXITED))
        return;
    capture_peak_if_now();
    capture(AT_ALLOC_SNAP_EXIT, AT_ALLOC_SNAP_KIND_EXIT, "exit");
    at_shadow_usage(&h->shadow_bytes, &h->shadow_resident);
    h->private_bytes = at_alloc_sites_private_bytes() + scratch_size();
    h->file_resident = file_touched(h);
    h->end_ns = at_now_ns();
    __atomic_or_fetch(&h->flags, AT_ALLOC_F_EXITED | (python_alive ? AT_ALLOC_F_PY_EXITED : 0),
                      __ATOMIC_RELEASE);
}

const at_feature_t at_feature_alloc = {
    .name = "alloc",
    .bit = AT_FEAT_ALLOC,
    .on_run = on_run,
    .on_audit = on_audit,
    .on_fork_child = on_fork_child,
    .on_exit = on_exit_,
};
