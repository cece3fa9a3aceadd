/* SPDX-License-Identifier: MIT */
/* alloc.h - allocation tracking inside the shim: what alloc*.c share.
 *
 * Design (details at the top of each file):
 *   alloc.c        the feature: install the PyMem hooks at the first
 *                  cpython.run_* event, snapshots (peak, markers, exit),
 *                  fork, exit; owns the <pid>.alloc mapping.
 *   alloc_hooks.c  the PyMem_SetAllocator wrappers (OBJ, MEM, RAW) and the
 *                  interposed libc malloc family (native memory).
 *   alloc_site.c   current Python frame -> site index; sites, groups and
 *                  strings are created (and names resolved) on first use.
 *   alloc_shadow.c pointer -> (site, size): a radix "shadow" of the heap,
 *                  4 bytes per 16-byte granule, no locks on the fast path;
 *                  when sampling, hint counters that let frees of
 *                  untracked blocks skip the table below.
 *   alloc_samples.c pointer -> (site, size) of sampled blocks only, in a
 *                  table of alloc_table.c (locked, grown by doubling),
 *                  and the hints beside it.
 *   alloc_table.c  the locked pointer -> value hash table that sampled
 *                  blocks and the shadow's big blocks are kept in.
 *   alloc_pool.c   sampled small OBJ/MEM blocks over plain pymalloc: a
 *                  mapping of our own, each block's record in front.
 *   alloc_line.c   co_linetable decoding (pure).
 *   alloc_track.c  PyTraceMalloc_Track/Untrack (numpy's array data): the
 *                  loaded objects' GOT slots for them point at wrappers
 *                  that count the block as Python memory, then not.
 * Everything the hot path touches is preallocated or mmap'd; nothing here
 * calls malloc.  Counters of sites of kind PY are plain (the GIL orders
 * them); RAW and NATIVE ones are atomic (no GIL there).
 */
#ifndef AT_ALLOC_H
#define AT_ALLOC_H
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include "alloc_format.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"
#include "pyversion.h"

#define AT_LIKELY(x)   __builtin_expect(!!(x), 1)
#define AT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AT_HIDDEN      __attribute__((visibility("hidden")))

/* Per-thread state bits (at_alloc_tl). */
#define AT_TL_PYMEM   0x1u  /* inside one of our PyMem wrappers: nested
                             * PyMem and libc calls are the same block   */
#define AT_TL_FORKING 0x2u  /* between fork's prepare and the child reset */
#define AT_TL_BUSY    0x4u  /* creating a site (holds the site lock)     */

extern __thread unsigned at_alloc_tl AT_HIDDEN;

/* Global state of the feature (alloc.c). */
typedef struct at_alloc_state {
    int on;                     /* Python hooks count (0: pass through)   */
    int native_on;              /* libc hooks count                       */
    int depth;                  /* frames per site                        */
    int sampling;               /* --alloc-sample given                   */
    double sample_mean;         /* mean bytes between samples             */
    at_alloc_header_t *hdr;     /* the mapped <pid>.alloc                 */
    size_t map_size;
    at_alloc_site_t *sites;
    at_alloc_group_t *groups;
    uint32_t *frames;
    char *strs;
    at_alloc_snap_t *snaps;
    uintptr_t runtime;          /* &_PyRuntime                            */
    void *(*this_tstate)(void); /* PyGILState_GetThisThreadState          */
    const int *tm_tracing;      /* &_Py_tracemalloc_config.tracing        */
    int tm_seen;                /* its value when we last looked          */
    int tm_watch;               /* tracemalloc imported or tracing: check
                                 * whether it wrapped us on every malloc  */
    int peak_pending;           /* a new peak not yet captured            */
    int64_t next_capture;       /* capture again once the peak passes it  */
    pid_t owner;                /* pid the tables belong to               */
} at_alloc_state_t;

extern at_alloc_state_t at_alloc AT_HIDDEN;

/* ---- alloc.c ------------------------------------------------------------ */

/* The Python live total fell below a pending peak: snapshot it now (from
 * the free path, GIL held, before the decrement is applied). */
void at_alloc_capture_peak(void);

/* Re-wrap: tracemalloc started (or stopped) since we last looked. */
void at_alloc_tracemalloc_changed(void);

/* ---- alloc_site.c ------------------------------------------------------- */

/* Site of the current allocation for this thread.  tstate: the thread
 * state whose frames to read (NULL: none, e.g. a C thread).  Returns a
 * site index (never fails: full tables give an overflow site). */
uint32_t at_alloc_site_here(uintptr_t tstate, unsigned kind);


/* What the OBJ/MEM fast path reads, per CPython minor version.  Each
 * version's PyMem wrappers (alloc_hooks.c) are compiled with one of the
 * constant tables below, so the offsets are immediates in the loads, as
 * they were when only 3.11 existed: choosing the version costs nothing
 * per allocation.  alloc.c checks at start that the chosen table agrees
 * with at_pyl (3.13: with the interpreter's own debug offsets) and turns
 * tracking off otherwise. */
typedef struct at_alloc_fast {
    int minor;                  /* 11, 12, 13                             */
    /* _PyRuntime -> the thread state holding the GIL: 3.11 its
     * gilstate.tstate_current; 3.12+ (a thread-local now) the main
     * interpreter's GIL's last_holder, which take_gil sets on every
     * acquisition, so while the GIL is held it is the holder's */
    int32_t rt_tstate;
    int32_t tstate_cframe;      /* -> _PyCFrame *, or NONE: 3.13 has none */
    int32_t frame;              /* cframe (or tstate, 3.13) -> current frame */
    int32_t instr;              /* prev_instr / instr_ptr                 */
    int32_t code;               /* f_code / f_executable                  */
    int32_t linetable;          /* code -> co_linetable                   */
} at_alloc_fast_t;

static const at_alloc_fast_t at_alloc_fast_311 = {
    11, AT_RT_GILSTATE_TSTATE_CURRENT, AT_TSTATE_CFRAME, AT_CFRAME_CURRENT_FRAME,
    AT_IFRAME_PREV_INSTR, AT_IFRAME_CODE, AT_CODE_LINETABLE,
};
static const at_alloc_fast_t at_alloc_fast_312 = {
    12, AT312_RT_MAIN_INTERPRETER + AT312_INTERP_GIL + AT312_GIL_LAST_HOLDER, AT312_TSTATE_CFRAME,
    AT312_CFRAME_CURRENT_FRAME, AT312_IFRAME_PREV_INSTR, AT312_IFRAME_CODE, AT312_CODE_LINETABLE,
};
static const at_alloc_fast_t at_alloc_fast_313 = {
    13, AT313_RT_MAIN_INTERPRETER + AT313_INTERP_GIL + AT313_GIL_LAST_HOLDER, AT_PYLAYOUT_NONE,
    AT313_TSTATE_CURRENT_FRAME, AT313_IFRAME_INSTR_PTR, AT313_IFRAME_EXECUTABLE, AT313_CODE_LINETABLE,
};

/* The fast table for the running version, or NULL when at_pyl (after the
 * debug offsets) disagrees with it: then tracking stays off. */
const at_alloc_fast_t *at_alloc_fast_for_version(void);

/* tstate of the GIL holder (OBJ/MEM hooks). */
__attribute__((always_inline)) static inline uintptr_t at_alloc_tstate_gil(const at_alloc_fast_t *F)
{
    return __atomic_load_n((const uintptr_t *)(at_alloc.runtime + F->rt_tstate), __ATOMIC_RELAXED);
}

/* GIL-path cache: the interpreter's prev_instr pointer names a (code,
 * instruction) pair while the code object lives; with the code object and
 * its linetable address (see the site key) it gives the site in one probe.
 * Entries are only made for frames with code (never 3.13's None of an
 * entry frame), so a cache probe never trusts what it read from one. */
typedef struct at_site_cache {
    uintptr_t pi, code, lt;
    uint32_t site, pad;
} at_site_cache_t;
#define AT_SITE_CACHE 2048u
extern at_site_cache_t at_site_cache[AT_SITE_CACHE] AT_HIDDEN;

/* Site of an OBJ/MEM allocation (GIL held), F one of the tables above. */
__attribute__((always_inline)) static inline uint32_t at_alloc_site_gil(const at_alloc_fast_t *F)
{
    uintptr_t ts = at_alloc_tstate_gil(F);
    if (AT_LIKELY(ts && at_alloc.depth == 1)) {
        uintptr_t f;
        if (F->tstate_cframe == AT_PYLAYOUT_NONE) {
            f = *(const uintptr_t *)(ts + F->frame);
        } else {
            uintptr_t cf = *(const uintptr_t *)(ts + F->tstate_cframe);
            f = cf ? *(const uintptr_t *)(cf + F->frame) : 0;
        }
        if (AT_LIKELY(f)) {
            uintptr_t pi = *(const uintptr_t *)(f + F->instr);
            uintptr_t code = *(const uintptr_t *)(f + F->code);
            const at_site_cache_t *e = &at_site_cache[(pi >> 1) & (AT_SITE_CACHE - 1)];
            if (AT_LIKELY(e->pi == pi && e->code == code &&
                          e->lt == *(const uintptr_t *)(code + F->linetable)))
                return e->site;
        }
    }
    return at_alloc_site_here(ts, AT_ALLOC_KIND_PY);
}

/* Reset / set up the site tables (private indexes; file regions given). */
int at_alloc_sites_init(void);
void at_alloc_sites_reset(void);
size_t at_alloc_sites_private_bytes(void);

/* The overflow site of a kind (created at init). */
uint32_t at_alloc_overflow_site(unsigned kind);

/* ---- alloc_shadow.c ----------------------------------------------------- */

#define AT_SHADOW_SIZE_BITS 14u
#define AT_SHADOW_SIZE_BIG  ((1u << AT_SHADOW_SIZE_BITS) - 1)

/* Record p -> (site, size).  Flags: AT_SHADOW_STALE when an entry was
 * already there (a block freed while the hooks did not look: osite and
 * osize say what to subtract), AT_SHADOW_FAILED when p is not recorded
 * (no memory, big-block table full, unaligned): count it untracked. */
#define AT_SHADOW_STALE  0x1
#define AT_SHADOW_FAILED 0x2
int at_shadow_put_slow(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize);
size_t at_shadow_big_take(const void *p);

#define AT_SHADOW_L1_BITS    12u
#define AT_SHADOW_L2_BITS    12u
#define AT_SHADOW_LEAF_BITS  19u
#define AT_SHADOW_LEAF_SHIFT 4u
#define AT_SHADOW_L2_SHIFT   (AT_SHADOW_LEAF_SHIFT + AT_SHADOW_LEAF_BITS)
#define AT_SHADOW_L1_SHIFT   (AT_SHADOW_L2_SHIFT + AT_SHADOW_L2_BITS)
extern uint32_t **at_shadow_l1[1u << AT_SHADOW_L1_BITS] AT_HIDDEN;

/* The entry of an existing leaf for address a, or NULL (fast paths). */
static inline uint32_t *at_shadow_find(uintptr_t a)
{
    if (AT_UNLIKELY((a >> (AT_SHADOW_L1_SHIFT + AT_SHADOW_L1_BITS)) || (a & 15)))
        return NULL;
    uint32_t **node = __atomic_load_n(&at_shadow_l1[a >> AT_SHADOW_L1_SHIFT], __ATOMIC_ACQUIRE);
    if (AT_UNLIKELY(!node))
        return NULL;
    uint32_t *leaf = __atomic_load_n(&node[(a >> AT_SHADOW_L2_SHIFT) & ((1u << AT_SHADOW_L2_BITS) - 1)],
                                     __ATOMIC_ACQUIRE);
    if (AT_UNLIKELY(!leaf))
        return NULL;
    return &leaf[(a >> AT_SHADOW_LEAF_SHIFT) & ((1u << AT_SHADOW_LEAF_BITS) - 1)];
}

/* The leaf of the last lookup made with the GIL held (pymalloc's blocks
 * cluster in its arenas, a leaf covers 8 MiB of addresses): the OBJ/MEM
 * hooks find an entry in one compare instead of three dependent loads.
 * Only GIL holders read or write the pair. */
extern uintptr_t at_shadow_last_key AT_HIDDEN;   /* a >> L2_SHIFT; ~0: none */
extern uint32_t *at_shadow_last_leaf AT_HIDDEN;

static inline uint32_t *at_shadow_find_gil(uintptr_t a)
{
    const uintptr_t leaf_mask = (1u << AT_SHADOW_LEAF_BITS) - 1;
    if (AT_LIKELY((a >> AT_SHADOW_L2_SHIFT) == at_shadow_last_key && !(a & 15)))
        return &at_shadow_last_leaf[(a >> AT_SHADOW_LEAF_SHIFT) & leaf_mask];
    uint32_t *slot = at_shadow_find(a);
    if (slot) {
        at_shadow_last_key = a >> AT_SHADOW_L2_SHIFT;
        at_shadow_last_leaf = slot - ((a >> AT_SHADOW_LEAF_SHIFT) & leaf_mask);
    }
    return slot;
}

/* Sampling hints: when sampling, few blocks are tracked, and a free that
 * walked the shadow for every block would cost more than the sampling
 * saves (three dependent loads, on lines malloc no longer warmed).  So
 * the shadow also keeps, per 16-byte granule modulo 2^20 (1 MiB: 16 MiB
 * of heap before two granules share a counter), how many tracked blocks
 * start there.  A zero counter proves a block untracked in one load from
 * a line that covers 1 KiB of heap; a counter that reaches 255 stays
 * there (only a few more walks).  Kept only while at_shadow_hints_on
 * (sampled mode); exact mode tracks nearly every block and skips them. */
#define AT_SHADOW_HINT_BITS 20u
#define AT_SHADOW_HINT_STUCK 255u
extern uint8_t at_shadow_hint[1u << AT_SHADOW_HINT_BITS] AT_HIDDEN;
extern int at_shadow_hints_on AT_HIDDEN;

static inline uint8_t *at_shadow_hint_of(const void *p)
{
    return &at_shadow_hint[((uintptr_t)p >> AT_SHADOW_LEAF_SHIFT) & ((1u << AT_SHADOW_HINT_BITS) - 1)];
}

/* 0 when p is certainly not in the shadow (hints on only). */
static inline int at_shadow_maybe(const void *p)
{
    return __atomic_load_n(at_shadow_hint_of(p), __ATOMIC_RELAXED) != 0;
}

/* ---- alloc_table.c: locked pointer -> value tables ---------------------- */

typedef struct at_table_slot {
    uintptr_t p;                /* 0: empty                               */
    uint64_t value;
} at_table_slot_t;

/* Zero but for the three bounds is an empty table (mapped on first put):
 * slots between 1 << min_bits and 1 << max_bits, at most load_pct full. */
typedef struct at_table {
    at_table_slot_t *slot;
    unsigned bits;              /* 1 << bits slots now                    */
    uint32_t used;
    int lock;
    unsigned min_bits, max_bits, load_pct;
} at_table_t;

/* Every call below but usage is made between lock and unlock (inline:
 * a sampled block takes the lock twice in its life). */
static inline void at_table_lock(at_table_t *t)
{
    while (__atomic_exchange_n(&t->lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static inline void at_table_unlock(at_table_t *t)
{
    __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/* p -> value: 0 when added, 1 when p was there (replaced, *old set), -1
 * when full or out of memory (p is then not in the table). */
int at_table_put(at_table_t *t, uintptr_t p, uint64_t value, uint64_t *old);
/* Remove p: 1 with *value set, 0 when it was not there. */
int at_table_take(at_table_t *t, uintptr_t p, uint64_t *value);
/* Empty it and give its memory back (fork child: no other thread). */
void at_table_reset(at_table_t *t);
void at_table_usage(at_table_t *t, uint64_t *virt, uint64_t *resident);

/* ---- alloc_samples.c: the sampled blocks' table (hints kept there) ------ */
int at_samples_put(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize);
int at_samples_take(const void *p, uint32_t *site, size_t *size);
void at_samples_reset(void);
void at_samples_usage(uint64_t *virt, uint64_t *resident);

/* ---- alloc_pool.c: sampled small blocks, GIL held ----------------------- */
#define AT_POOL_MAX 512u        /* pymalloc's SMALL_REQUEST_THRESHOLD     */
extern uintptr_t at_pool_lo AT_HIDDEN;   /* [lo, hi): the pool's blocks  */
extern uintptr_t at_pool_hi AT_HIDDEN;

/* A block of n bytes (<= AT_POOL_MAX) counted at site, or NULL. */
void *at_pool_alloc(size_t n, uint32_t site);
/* Whether p is one of the pool's blocks (any thread: one range check). */
static inline int at_pool_has(const void *p)
{
    return AT_UNLIKELY((uintptr_t)p - at_pool_lo < at_pool_hi - at_pool_lo);
}
size_t at_pool_size(void *p);
/* Give p back: 1 with site and size set when it is still to be
 * subtracted (counted by this process and not yet taken), else 0. */
int at_pool_release(void *p, uint32_t *site, size_t *size);
void at_pool_fork_child(void);
void at_pool_usage(uint64_t *virt, uint64_t *resident);

/* Resident bytes of a mapping (mincore), 0 when it cannot tell. */
uint64_t at_resident_bytes(void *addr, size_t len);

/* Record p -> (site, size): in the shadow, or when sampling in the table. */
static inline int at_shadow_put(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize)
{
    if (at_shadow_hints_on)
        return at_samples_put(p, site, size, osite, osize);
    uint32_t *slot = at_shadow_find((uintptr_t)p);
    if (AT_LIKELY(slot && size < AT_SHADOW_SIZE_BIG && !*slot)) {
        __atomic_store_n(slot, ((site + 1) << AT_SHADOW_SIZE_BITS) | (uint32_t)size, __ATOMIC_RELAXED);
        return 0;
    }
    return at_shadow_put_slow(p, site, size, osite, osize);
}

/* Remove p; 1 with site and size filled when it was tracked, else 0. */
static inline int at_shadow_take(const void *p, uint32_t *site, size_t *size)
{
    if (at_shadow_hints_on)
        return AT_UNLIKELY(at_shadow_maybe(p)) && at_samples_take(p, site, size);
    uint32_t *slot = at_shadow_find((uintptr_t)p);
    uint32_t e;
    if (!slot || !(e = __atomic_load_n(slot, __ATOMIC_RELAXED)))
        return 0;
    __atomic_store_n(slot, 0, __ATOMIC_RELAXED);
    *site = (e >> AT_SHADOW_SIZE_BITS) - 1;
    *size = e & AT_SHADOW_SIZE_BIG;
    if (AT_UNLIKELY(*size == AT_SHADOW_SIZE_BIG))
        *size = at_shadow_big_take(p);
    return 1;
}

void at_shadow_reset(void);               /* fork child: forget everything */
void at_shadow_hints_start(void);         /* sampled mode: keep the hints  */
void at_shadow_usage(uint64_t *virt, uint64_t *resident);

/* ---- alloc_hooks.c ------------------------------------------------------ */

/* Install our layer over the current allocators of the three domains.
 * 0, or -ENOSPC when every layer slot is used. */
int at_alloc_hooks_install(void);

/* Sampling: precompute the weights of small blocks; restart this
 * thread's countdown (fork child). */
int at_alloc_weights_init(void);
void at_alloc_sample_reset_thread(void);

/* A block an extension handed to PyTraceMalloc_Track: tracemalloc counts
 * it as Python memory, so its native record moves to a RAW site of the
 * calling line (any thread; a no-op while native tracking is off). */
void at_alloc_track_block(void *p, size_t n);

/* PyTraceMalloc_Untrack: p is no longer Python memory for tracemalloc;
 * forget the record at_alloc_track_block made (its free may never reach
 * our hooks: another preloaded allocator, ASan's). */
void at_alloc_untrack_block(void *p);

/* ---- alloc_track.c ------------------------------------------------------ */

/* Objects loaded since the last call: point their PyTraceMalloc_Track
 * and _Untrack slots at ours (with the GIL held: an "import" event, the hooks'
 * installation). */
void at_alloc_track_scan(void);

/* ---- alloc_line.c ------------------------------------------------------- */

/* PyCode_Addr2Line(code, index * 2) from a 3.11 co_linetable: firstlineno
 * for index < 0, -1 for "no location" or past the table. */
int at_alloc_addr2line(const uint8_t *tab, size_t len, int firstlineno, int index);

#endif
