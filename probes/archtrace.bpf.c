/* SPDX-License-Identifier: MIT */
/* archtrace.bpf.c - eBPF probes on a running CPython 3.11 to 3.13: GIL waits, imports, GC, stack samples.
 *
 * How the work is split.  tracer/bpf/bpf_sets.c loads one copy of these
 * programs per CPython binary (or libpython) and sets `py` in .rodata
 * before load: the offsets of its CPython version (archtrace_bpf.h,
 * struct at_bpf_py); nothing here knows a version's layout.  The
 * processes watched are the entries of the `procs` map (tgid -> struct
 * at_bpf_proc: &_PyRuntime, the GIL in use, a slot for its counters).
 * `archtrace agent` attaches each uprobe once for every process of the
 * host (pid -1), so a program also fires in processes nobody watches:
 * every program starts with the lookup of the current tgid in `procs`
 * (ours()) and returns at once on a miss; watching a process is a map
 * update, not a uprobe.  `record --bpf` attaches the same programs to
 * its one process only, with one entry in `procs`.
 *   - GIL: pthread_cond_timedwait in libc, entry and return, filtered on
 *     the GIL's cond (3.11: _PyRuntime.ceval.gil; 3.12+: the main
 *     interpreter's, PEP 684); totals per thread live in a hash map
 *     (no events: a full ring buffer never loses GIL time).
 *   - imports, GC: Debian's USDT probes when the interpreter has them;
 *     otherwise uprobes on PyImport_ImportModuleLevelObject + _PySys_Audit
 *     ("import" is raised exactly where the USDT probe would fire) and on
 *     gc_collect_main.  One event per finished import / collection.
 *   - samples: a perf_event program that records the user stack and walks
 *     the _PyInterpreterFrame chain of the running thread, so Python
 *     stacks need no ptrace round trip; names are resolved in user space.
 * Every pointer read from the target is untrusted: reads go through
 * bpf_probe_read_user (which fails instead of faulting) and every loop has
 * a fixed bound shared with the ptrace walker (AT_MAX_STACK_DEPTH).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "archtrace_bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the loader before load (rodata). */
const volatile struct at_bpf_py py = {}; /* the CPython (archtrace_bpf.h)  */

/* The processes watched.  The loader adds one once every probe it needs
 * is in, and removes it before the first comes out: attaching and
 * detaching takes from milliseconds to seconds, and nothing counted
 * outside the window the report states (attach_ns to end_ns) may show
 * in it. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_PROCS);
    __type(key, __u32);
    __type(value, struct at_bpf_proc);
} procs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, AT_BPF_RINGBUF_BYTES);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, struct at_bpf_gil_thread);
} gil_threads SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, struct at_bpf_gil_wait);
} gil_waiting SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, struct at_bpf_import_stack);
} import_stacks SEC(".maps");

/* A zeroed import stack to initialise map values (too big for the stack). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct at_bpf_import_stack);
} import_zero SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, struct at_bpf_gc_open);
} gc_open SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, AT_BPF_MAX_PROCS * AT_BPF_GC_SLOTS);
    __type(key, __u32);
    __type(value, struct at_bpf_gc_stat);
} gc_stats SEC(".maps");

/* thread -> PyThreadState *, so a sample rarely scans the thread list. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, __u64);
} tstate_cache SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, AT_BPF_MAX_THREADS);
    __type(key, __u64);
    __type(value, struct at_bpf_sample_clock);
} sample_clock SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, AT_BPF_MAX_PROCS * AT_BPF_ST_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(const struct at_bpf_proc *p, __u32 what)
{
    __u32 i = p->slot * AT_BPF_ST_COUNT + what;
    __u64 *v = bpf_map_lookup_elem(&stats, &i);
    if (v)
        __sync_fetch_and_add(v, 1);
}

/* Events are submitted without waking the consumer, which polls on a
 * timer: a wakeup per event would cost the target a context switch per
 * import (and, on a busy 2-core machine, a share of its CPU).  Once the
 * ring is a quarter full the consumer is woken so nothing is lost. */
static __always_inline void submit(void *e)
{
    __u64 used = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
    bpf_ringbuf_submit(e, used > AT_BPF_RINGBUF_BYTES / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline __u64 read_u64(__u64 addr)
{
    __u64 v = 0;
    if (bpf_probe_read_user(&v, sizeof v, (const void *)addr))
        return 0;
    return v;
}

static __always_inline __u32 read_u32(__u64 addr)
{
    __u32 v = 0;
    if (bpf_probe_read_user(&v, sizeof v, (const void *)addr))
        return 0;
    return v;
}

/* The watched process the current thread belongs to, or NULL: the first
 * thing every program asks.  A host-wide uprobe fires in every process
 * that maps its file, so for the others this is the whole cost: one
 * helper call and one hash lookup.  It also keeps a forked child (which
 * shares the breakpoints of a pid-filtered uprobe until the kernel
 * removes them) out of the numbers.  *id: the thread's pid_tgid, the key
 * of the per-thread maps. */
static __always_inline const struct at_bpf_proc *ours(__u64 *id)
{
    *id = bpf_get_current_pid_tgid();
    __u32 tgid = (__u32)(*id >> 32);
    return bpf_map_lookup_elem(&procs, &tgid);
}

/* ---- USDT probes ---------------------------------------------------------
 * Attached by libbpf (bpf_program__attach_usdt): it reads the notes, sets
 * the semaphores (the kernel enables the probe sites through
 * ref_ctr_offset) and hands BPF_USDT the arguments wherever each note
 * says they live ("8@%rax", "-4@112(%rsp)"). */

/* ---- GIL ----------------------------------------------------------------- */

SEC("uprobe")
int BPF_KPROBE(gil_wait_enter, void *cond)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p || (__u64)cond != p->gil + py.gil_cond)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    struct at_bpf_gil_wait *w = bpf_map_lookup_elem(&gil_waiting, &id);
    if (w) {
        w->call_ns = now;   /* another round of the same take_gil loop */
        return 0;
    }
    struct at_bpf_gil_wait fresh = { .start_ns = now, .call_ns = now };
    if (bpf_map_update_elem(&gil_waiting, &id, &fresh, BPF_ANY))
        count(p, AT_BPF_ST_MAP_FULL);
    return 0;
}

/* A per-thread map's value for thread id, created from `zero` on first
 * use; NULL (counted) when the map is full. */
static __always_inline void *thread_slot(const struct at_bpf_proc *p, void *map, __u64 *id,
                                         const void *zero)
{
    void *v = bpf_map_lookup_elem(map, id);
    if (v)
        return v;
    bpf_map_update_elem(map, id, zero, BPF_NOEXIST);   /* may race: look again */
    v = bpf_map_lookup_elem(map, id);
    if (!v)
        count(p, AT_BPF_ST_MAP_FULL);
    return v;
}

static __always_inline void gil_close(const struct at_bpf_proc *p, __u64 id,
                                      const struct at_bpf_gil_wait *w, __u64 now, int timed_out)
{
    struct at_bpf_gil_thread zero = {};
    struct at_bpf_gil_thread *t = thread_slot(p, &gil_threads, &id, &zero);
    if (!t)
        return;
    t->calls++;
    if (timed_out)
        t->timeouts++;
    if (!w)
        return;
    __u64 d = now - w->start_ns;
    t->wait_ns += d;
    t->waits++;
    if (d > t->max_wait_ns)
        t->max_wait_ns = d;
    if (!t->first_ns)
        t->first_ns = w->start_ns;
    t->last_ns = now;
}

/* Runs after every pthread_cond_timedwait of the target, so a thread not
 * waiting for the GIL costs one failed hash lookup.  The thread holds
 * gil.mutex again here, so gil.locked is stable: 0 means take_gil's loop
 * ends and the thread takes the GIL now. */
SEC("uretprobe")
int BPF_KRETPROBE(gil_wait_exit, int ret)
{
    __u64 id;
    __u32 locked = 1;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    struct at_bpf_gil_wait *w = bpf_map_lookup_elem(&gil_waiting, &id);
    if (!w)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    bpf_probe_read_user(&locked, sizeof locked, (const void *)(p->gil + py.gil_locked));
    if (locked != 0) {
        gil_close(p, id, 0, now, ret == AT_BPF_ETIMEDOUT);
        return 0;
    }
    struct at_bpf_gil_wait done = *w;
    bpf_map_delete_elem(&gil_waiting, &id);
    gil_close(p, id, &done, now, ret == AT_BPF_ETIMEDOUT);
    return 0;
}

/* ---- imports ------------------------------------------------------------- */

static __always_inline struct at_bpf_import_stack *import_stack(const struct at_bpf_proc *p, __u64 id)
{
    struct at_bpf_import_stack *st = bpf_map_lookup_elem(&import_stacks, &id);
    __u32 zero = 0;
    if (st)
        return st;
    struct at_bpf_import_stack *z = bpf_map_lookup_elem(&import_zero, &zero);
    if (!z || bpf_map_update_elem(&import_stacks, &id, z, BPF_NOEXIST)) {
        count(p, AT_BPF_ST_MAP_FULL);
        return 0;
    }
    return bpf_map_lookup_elem(&import_stacks, &id);
}

/* A str object's text: compact ASCII data inline, else its UTF-8 cache. */
static __always_inline void read_pystr(char *dst, __u64 obj)
{
    __u32 state = read_u32(obj + py.unicode_state);
    __u64 data = 0;
    if (state & py.unicode_compact)
        data = state & py.unicode_ascii ? obj + py.sizeof_pyasciiobject : read_u64(obj + py.unicode_utf8);
    if (!data || bpf_probe_read_user_str(dst, AT_BPF_NAME_MAX, (const void *)data) <= 0) {
        dst[0] = '?';
        dst[1] = 0;
    }
}

/* Open a frame on the thread's import stack; marked = a real import. */
static __always_inline struct at_bpf_import_frame *import_push(const struct at_bpf_proc *p,
                                                               struct at_bpf_import_stack *st)
{
    __u32 idx = st->depth++;
    if (idx >= AT_BPF_IMPORT_DEPTH) {
        count(p, AT_BPF_ST_IMPORT_DEEP);
        return 0;
    }
    struct at_bpf_import_frame *f = &st->f[idx];
    f->start_ns = 0;
    return f;
}

static __always_inline void import_mark(struct at_bpf_import_stack *st,
                                        struct at_bpf_import_frame *f)
{
    f->start_ns = bpf_ktime_get_ns();
    st->nmarked++;
}

/* Close the top frame; a marked one becomes an event. */
static __always_inline void import_pop(const struct at_bpf_proc *p, __u64 id, int found)
{
    struct at_bpf_import_stack *st = bpf_map_lookup_elem(&import_stacks, &id);
    if (!st || st->depth == 0)
        return;
    __u32 idx = --st->depth;
    if (idx >= AT_BPF_IMPORT_DEPTH)
        return;
    struct at_bpf_import_frame *f = &st->f[idx];
    if (!f->start_ns)
        return;
    if (st->nmarked)
        st->nmarked--;
    struct at_bpf_import_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(p, AT_BPF_ST_LOST_IMPORT);
        f->start_ns = 0;
        return;
    }
    e->kind = AT_BPF_EV_IMPORT;
    e->tid = (__u32)id;
    e->tgid = (__u32)(id >> 32);
    e->pad = 0;
    e->start_ns = f->start_ns;
    e->end_ns = bpf_ktime_get_ns();
    e->depth = st->nmarked;
    e->found = found;
    __builtin_memcpy(e->name, f->name, sizeof e->name);
    f->start_ns = 0;
    submit(e);
}

SEC("usdt")
int BPF_USDT(usdt_import_start, const char *name)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    struct at_bpf_import_stack *st = import_stack(p, id);
    struct at_bpf_import_frame *f = st ? import_push(p, st) : 0;
    if (!f)
        return 0;
    if (!name || bpf_probe_read_user_str(f->name, sizeof f->name, name) <= 0) {
        f->name[0] = '?';
        f->name[1] = 0;
    }
    import_mark(st, f);
    return 0;
}

SEC("usdt")
int BPF_USDT(usdt_import_done, const char *name, int found)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (p)
        import_pop(p, id, found != 0);
    return 0;
}

/* Fallback: every import statement enters PyImport_ImportModuleLevelObject;
 * only those that load (not in sys.modules) raise the "import" audit event
 * from its inlined import_find_and_load, where the USDT probe sits. */
SEC("uprobe")
int BPF_KPROBE(imp_level_enter)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    struct at_bpf_import_stack *st = import_stack(p, id);
    if (st)
        import_push(p, st);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(imp_audit, void *tstate, const char *event, const char *fmt, void *abs_name)
{
    __u64 id;
    char ev[8] = {};
    if (!ours(&id) || bpf_probe_read_user(ev, 7, event))
        return 0;
    if (ev[0] != 'i' || ev[1] != 'm' || ev[2] != 'p' || ev[3] != 'o' || ev[4] != 'r' ||
        ev[5] != 't' || ev[6] != 0)
        return 0;
    struct at_bpf_import_stack *st = bpf_map_lookup_elem(&import_stacks, &id);
    if (!st || st->depth == 0)
        return 0;
    __u32 idx = st->depth - 1;
    if (idx >= AT_BPF_IMPORT_DEPTH)
        return 0;
    struct at_bpf_import_frame *f = &st->f[idx];
    if (f->start_ns)
        return 0;   /* one load per call: a nested audit is not ours */
    read_pystr(f->name, (__u64)abs_name);
    import_mark(st, f);
    return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(imp_level_exit, void *module)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (p)
        import_pop(p, id, module != 0);
    return 0;
}

/* ---- GC ------------------------------------------------------------------ */

static __always_inline void gc_begin(const struct at_bpf_proc *p, __u64 id, int generation)
{
    struct at_bpf_gc_open o = { .start_ns = bpf_ktime_get_ns(), .generation = generation };
    if (bpf_map_update_elem(&gc_open, &id, &o, BPF_ANY))
        count(p, AT_BPF_ST_MAP_FULL);
}

/* A finished collection: into the totals, then one event. */
static __always_inline void gc_record(const struct at_bpf_proc *p, __u64 id, __u64 start, __s32 gen,
                                      long collected)
{
    __u64 now = bpf_ktime_get_ns();
    __u32 slot = p->slot * AT_BPF_GC_SLOTS +
                 (gen >= 0 && gen < AT_BPF_GC_SLOTS - 1 ? (__u32)gen : AT_BPF_GC_SLOTS - 1);
    struct at_bpf_gc_stat *s = bpf_map_lookup_elem(&gc_stats, &slot);
    if (s) {
        __sync_fetch_and_add(&s->runs, 1);
        __sync_fetch_and_add(&s->total_ns, now - start);
        __sync_fetch_and_add(&s->collected, collected);
    }
    struct at_bpf_gc_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(p, AT_BPF_ST_LOST_GC);
        return;
    }
    e->kind = AT_BPF_EV_GC;
    e->tid = (__u32)id;
    e->start_ns = start;
    e->end_ns = now;
    e->generation = gen;
    e->tgid = (__u32)(id >> 32);
    e->collected = collected;
    submit(e);
}

static __always_inline void gc_end(const struct at_bpf_proc *p, __u64 id, long collected)
{
    struct at_bpf_gc_open *o = bpf_map_lookup_elem(&gc_open, &id);
    if (!o)
        return;
    __u64 start = o->start_ns;
    __s32 gen = o->generation;
    bpf_map_delete_elem(&gc_open, &id);
    gc_record(p, id, start, gen, collected);
}

SEC("usdt")
int BPF_USDT(usdt_gc_start, int generation)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (p)
        gc_begin(p, id, generation);
    return 0;
}

SEC("usdt")
int BPF_USDT(usdt_gc_done, long collected)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (p)
        gc_end(p, id, collected);
    return 0;
}

/* interp->gc.generation_stats[g].collections for every generation. */
static __always_inline void gc_counters(__u64 interp, __u64 *runs)
{
    for (__u32 g = 0; g < AT_BPF_GC_GENERATIONS; g++)
        runs[g] = interp ? read_u64(interp + py.interp_gc_stats + g * py.gc_stats_size) : 0;
}

/* 3.13: gc_collect_main(tstate, -1, ...) chooses the generation itself,
 * and any call returns 0 at once while a collection runs (a finalizer's
 * gc.collect(), say): count the calls inside an open one, and take the
 * generation from the counters at the return. */
static __always_inline void gc_counted_begin(const struct at_bpf_proc *p, __u64 id, __u64 tstate)
{
    struct at_bpf_gc_open *open = bpf_map_lookup_elem(&gc_open, &id);
    if (open) {
        open->nested++;
        return;
    }
    struct at_bpf_gc_open o = { .start_ns = bpf_ktime_get_ns(), .generation = -1 };
    o.interp = read_u64(tstate + py.tstate_interp);
    gc_counters(o.interp, o.runs);
    if (bpf_map_update_elem(&gc_open, &id, &o, BPF_NOEXIST))
        count(p, AT_BPF_ST_MAP_FULL);
}

static __always_inline void gc_counted_end(const struct at_bpf_proc *p, __u64 id, long collected)
{
    __u64 runs[AT_BPF_GC_GENERATIONS];
    struct at_bpf_gc_open *o = bpf_map_lookup_elem(&gc_open, &id);
    if (!o)
        return;
    if (o->nested) {
        o->nested--;
        return;
    }
    struct at_bpf_gc_open done = *o;
    bpf_map_delete_elem(&gc_open, &id);
    gc_counters(done.interp, runs);
    __s32 gen = -1;
    for (__u32 g = 0; g < AT_BPF_GC_GENERATIONS; g++)
        if (runs[g] != done.runs[g])
            gen = (__s32)g;   /* the oldest that moved: it took the younger */
    if (gen >= 0)             /* else it returned without collecting */
        gc_record(p, id, done.start_ns, gen, collected);
}

/* Fallback: static Py_ssize_t gc_collect_main(tstate, int generation, ...). */
SEC("uprobe")
int BPF_KPROBE(gc_main_enter, void *tstate, int generation)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    if (py.interp_gc_stats != AT_BPF_OFF_NONE)
        gc_counted_begin(p, id, (__u64)tstate);
    else
        gc_begin(p, id, generation);
    return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(gc_main_exit, long collected)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    if (py.interp_gc_stats != AT_BPF_OFF_NONE)
        gc_counted_end(p, id, collected);
    else
        gc_end(p, id, collected);
    return 0;
}

/* ---- samples ------------------------------------------------------------- */

static __always_inline int runs_on(__u64 ts, __u32 tid)
{
    return ts && read_u64(ts + py.tstate_native_thread_id) == tid;
}

/* Whether the GIL's holder is the thread tid runs: 3.11 names the
 * current thread state in _PyRuntime, 3.12+ only in the GIL (its
 * last_holder while locked; the thread-local current one is out of
 * reach here). */
static __always_inline __u64 gil_holder(const struct at_bpf_proc *p, __u32 tid)
{
    __u64 ts;
    if (p->tstate_current) {
        ts = read_u64(p->tstate_current);
    } else {
        if (read_u32(p->gil + py.gil_locked) != 1)
            return 0;
        ts = read_u64(p->gil + py.gil_last_holder);
    }
    return runs_on(ts, tid) ? ts : 0;
}

/* The running thread's PyThreadState: the GIL holder when that is us
 * (the common case for a thread running Python), else a cached or
 * scanned entry of the main interpreter's thread list. */
static __always_inline __u64 find_tstate(const struct at_bpf_proc *p, __u64 id, __u32 *flags)
{
    __u32 tid = (__u32)id;
    __u64 ts = gil_holder(p, tid);
    if (ts) {
        *flags |= AT_BPF_S_GIL;
        return ts;
    }
    __u64 *cached = bpf_map_lookup_elem(&tstate_cache, &id);
    if (cached && runs_on(*cached, tid))
        return *cached;
    __u64 interp = read_u64(p->runtime + py.rt_interpreters_head);
    ts = interp ? read_u64(interp + py.interp_tstate_head) : 0;
    for (int i = 0; i < AT_BPF_TSTATE_SCAN && ts; i++) {
        if (runs_on(ts, tid)) {
            bpf_map_update_elem(&tstate_cache, &id, &ts, BPF_ANY);
            return ts;
        }
        ts = read_u64(ts + py.tstate_next);
    }
    return 0;
}

/* The thread's current _PyInterpreterFrame: through its _PyCFrame
 * (3.11, 3.12) or straight from the thread state (3.13). */
static __always_inline __u64 current_frame(__u64 ts)
{
    if (py.tstate_cframe == AT_BPF_OFF_NONE)
        return read_u64(ts + py.frame_ptr);
    __u64 cframe = read_u64(ts + py.tstate_cframe);
    return cframe ? read_u64(cframe + py.frame_ptr) : 0;
}

/* Fields of a frame copied into fr.  The offsets are constants to the
 * verifier and bpf_layout.c keeps them inside the copy; the bounds here
 * only make that visible. */
static __always_inline __u64 frame_word(const __u64 *fr, __u32 off)
{
    return off <= AT_BPF_FRAME_READ - 8 ? fr[off / 8] : 0;
}

static __always_inline __u8 frame_byte(const __u64 *fr, __u32 off)
{
    return off < AT_BPF_FRAME_READ ? ((const __u8 *)fr)[off] : 0;
}

static __always_inline void walk_python(const struct at_bpf_proc *p, struct at_bpf_sample_ev *e, __u64 ts)
{
    __u64 fr[AT_BPF_FRAME_READ / 8];
    __u64 frame = current_frame(ts);
    __u32 n = 0;

    for (__u32 i = 0; i < AT_BPF_PY_MAX; i++) {
        if (!frame)
            break;
        if (bpf_probe_read_user(fr, sizeof fr, (const void *)frame)) {
            e->flags |= AT_BPF_S_TRUNCATED;
            break;
        }
        __u64 code = frame_word(fr, py.iframe_code);
        __u64 instr = frame_word(fr, py.iframe_instr);
        __u64 off = instr - code;
        e->py[i].code = code;
        e->py[i].instr_off = instr >= code && off < 0x40000000ull ? (__u32)off : AT_BPF_INSTR_NONE;
        e->py[i].is_entry = frame_byte(fr, py.iframe_is_entry);
        e->py[i].owner = frame_byte(fr, py.iframe_owner);
        e->py[i].pad = 0;
        frame = frame_word(fr, py.iframe_previous);
        n = i + 1;
    }
    if (frame && !(e->flags & AT_BPF_S_TRUNCATED))
        e->flags |= AT_BPF_S_TRUNCATED;
    if (e->flags & AT_BPF_S_TRUNCATED)
        count(p, AT_BPF_ST_PY_TRUNCATED);
    e->n_py = (__u16)n;
}

/* The thread's CPU time as the scheduler accounts it, for the rate. */
static __always_inline void clock_sample(const struct at_bpf_proc *p, __u64 id)
{
    struct task_struct *task = bpf_get_current_task_btf();
    __u64 cpu_ns = BPF_CORE_READ(task, se.sum_exec_runtime);
    struct at_bpf_sample_clock zero = { cpu_ns, cpu_ns, 0 };
    struct at_bpf_sample_clock *c = thread_slot(p, &sample_clock, &id, &zero);
    if (!c)
        return;
    c->last_cpu_ns = cpu_ns;
    c->n++;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id;
    const struct at_bpf_proc *p = ours(&id);
    if (!p)
        return 0;
    count(p, AT_BPF_ST_SAMPLES);
    clock_sample(p, id);
    struct at_bpf_sample_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(p, AT_BPF_ST_LOST_SAMPLE);
        return 0;
    }
    e->kind = AT_BPF_EV_SAMPLE;
    e->tid = (__u32)id;
    e->tgid = (__u32)(id >> 32);
    e->pad = 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->flags = 0;
    e->n_py = 0;
    long got = bpf_get_stack(ctx, e->user, sizeof e->user, BPF_F_USER_STACK);
    e->n_user = got > 0 ? (__u16)((__u64)got / 8) : 0;
    e->tstate = find_tstate(p, id, &e->flags);
    if (e->tstate) {
        e->flags |= AT_BPF_S_TSTATE;
        walk_python(p, e, e->tstate);
    } else {
        count(p, AT_BPF_ST_NO_TSTATE);
    }
    submit(e);
    return 0;
}
