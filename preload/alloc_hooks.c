/* SPDX-License-Identifier: MIT */
/* alloc_hooks.c - the allocator hooks: PyMem domains and libc malloc.
 *
 * Design: one "layer" per PyMem domain wraps the allocator that was there
 * (tracemalloc's, the debug hooks', pymalloc) and calls it first, then
 * counts the block.  While a wrapper runs, a thread-local flag makes every
 * nested hook pass straight through: pymalloc's big blocks reach
 * PyMem_RawMalloc and then libc malloc, and are counted once, by the
 * outermost domain (tracemalloc's rule).  When tracemalloc starts later
 * it wraps our layer; we then put a fresh layer on top of it, so the
 * outermost hook is ours again and tracemalloc's own bookkeeping (its
 * trace records come from the allocator it wrapped: our inner layer)
 * passes through instead of being counted as the program's memory.
 *
 * libc malloc & co are interposed for native memory: blocks C extensions
 * allocate outside CPython's domains, counted on the Python line that
 * called into the extension.  In a process that is not being traced they
 * cost one load and a branch.  dlsym, which finds the real functions, may
 * itself allocate: those calls are served from a static bootstrap arena
 * whose blocks free() recognises and ignores.
 *
 * Installing the layers, which runs once per layer, is alloc_layers.c's.
 * What is left stays one file of ~1000 lines on purpose, over the house's
 * ~600: every hook (PyMem wrappers, libc malloc family) and the counting
 * helpers they share (static inline, or static and out of line for the
 * rare case) are one translation unit, so that each hook compiles to the
 * same instructions it always did (checked with objdump on the split).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include "alloc_hooks.h"
#include "shim.h"

#define PYMALLOC_SMALL_MAX 512  /* pymalloc's SMALL_REQUEST_THRESHOLD */

__thread unsigned at_alloc_tl;

/* ---- counting ----------------------------------------------------------- */

static __thread int64_t tl_countdown;   /* bytes to the next sample       */
/* The same for OBJ and MEM blocks, which are only allocated with the GIL
 * held: one countdown for all threads, ordered by the GIL, is a plain
 * global (a thread-local one costs a GOT load more on every call from a
 * shared object).  Interleaving the threads' blocks leaves the process
 * Poisson: each block is still sampled with P = 1 - exp(-n / mean). */
static int64_t gil_countdown;
static __thread uint64_t tl_rng;
/* Whether a countdown has drawn its first gap: until then it stands at
 * 0, which is not a point of the process (a first block always sampled,
 * and weighed as if it had had the chance of any other, would add about
 * one mean, 16 KiB, of bytes that never were per thread). */
static __thread int tl_started;
static int gil_started;

/* exp(-x) for x >= 0, to ~1e-12: range-reduced Taylor series (libm is
 * not linked into the shim). */
static double exp_neg(double x)
{
    if (x > 700)
        return 0;
    int k = (int)(x / 0.6931471805599453 + 0.5);
    double r = x - k * 0.6931471805599453, term = 1, sum = 1;
    for (int i = 1; i < 16; i++) {
        term *= -r / i;
        sum += term;
    }
    union { double d; uint64_t u; } two = { .u = (uint64_t)(1023 - k) << 52 };
    return sum * two.d;
}

/* ln(u) for u in (0, 1]: u = 2^e * m with m in [1, 2), ln m = 2 atanh(z)
 * with z = (m - 1) / (m + 1) < 1/3, whose odd series to z^17 is within
 * 1e-10.  One division and a Horner chain: this runs once per sample, and
 * a division per term (the obvious loop) cost more than the rest of a
 * sampled malloc. */
static double log_approx(double u)
{
    union { double d; uint64_t u; } v = { .d = u };
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
    double z = (v.d - 1) / (v.d + 1), z2 = z * z;
    double s = 1.0 / 17;
    s = s * z2 + 1.0 / 15;
    s = s * z2 + 1.0 / 13;
    s = s * z2 + 1.0 / 11;
    s = s * z2 + 1.0 / 9;
    s = s * z2 + 1.0 / 7;
    s = s * z2 + 1.0 / 5;
    s = s * z2 + 1.0 / 3;
    s = s * z2 + 1;
    return e * 0.6931471805599453 + 2 * z * s;
}

static int64_t next_interval(void)
{
    if (!tl_rng)
        tl_rng = (uintptr_t)&tl_rng * 0x9E3779B97F4A7C15ull ^ 0x2545F4914F6CDD1Dull;
    tl_rng ^= tl_rng << 13, tl_rng ^= tl_rng >> 7, tl_rng ^= tl_rng << 17;
    double u = ((tl_rng >> 11) + 1) * (1.0 / 9007199254740992.0);   /* (0, 1] */
    return (int64_t)(-log_approx(u) * at_alloc.sample_mean) + 1;
}

/* The countdown ran out inside a block: draw the gaps to the first point
 * past it; 1 when one fell in the block (it is sampled).  A countdown's
 * first run starts the process where the block does: its first gap may
 * end past the block.  Out of line: the hooks inline only the countdown. */
__attribute__((noinline)) static int restart(int64_t *countdown, int *started)
{
    if (!*started) {
        *started = 1;
        *countdown += next_interval();
        if (*countdown > 0)
            return 0;
    }
    do
        *countdown += next_interval();
    while (*countdown <= 0);
    return 1;
}

/* Byte-sampling: a block is sampled when one of the Poisson process's
 * points (mean gap sample_mean bytes) falls in it. */
static inline int sampled(int64_t *countdown, int *started, size_t n)
{
    *countdown -= (int64_t)n;
    if (AT_LIKELY(*countdown > 0))
        return 0;
    return restart(countdown, started);
}

void at_alloc_sample_reset_thread(void)
{
    tl_countdown = 0;
    gil_countdown = 0;
    tl_started = gil_started = 0;
}

/* Sampled weights of blocks under 16 KiB, each computed the first time a
 * block of that size is sampled (the series behind exp is too slow for
 * every sampled malloc and free, and computing all 16384 at start-up cost
 * every sampled run ~3 million instructions).  Two threads may compute
 * the same entry at once: they store the same values. */
typedef struct weight_entry {
    int64_t bytes, count;      /* count 0: not computed yet */
} weight_entry_t;
static weight_entry_t *weights;

static void weight_exact(size_t n, int64_t *bytes, int64_t *count)
{
    double x = (double)n / at_alloc.sample_mean;
    double p = x < 1e-4 ? x * (1 - x / 2) : 1 - exp_neg(x);
    if (p <= 0)
        p = 1e-12;
    *bytes = (int64_t)((double)n / p + 0.5);
    *count = (int64_t)(AT_ALLOC_COUNT_SCALE / p + 0.5);
}

static void weight_cached(size_t n, int64_t *bytes, int64_t *count)
{
    weight_entry_t *w = &weights[n];
    *count = __atomic_load_n(&w->count, __ATOMIC_ACQUIRE);
    if (AT_LIKELY(*count)) {
        *bytes = __atomic_load_n(&w->bytes, __ATOMIC_RELAXED);
        return;
    }
    weight_exact(n, bytes, count);
    __atomic_store_n(&w->bytes, *bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&w->count, *count, __ATOMIC_RELEASE);
}

/* What one block of n bytes stands for: itself, or when sampling the
 * unbiased estimate n / P(sampled) (count in count_scale units). */
static inline void weight(size_t n, int64_t *bytes, int64_t *count)
{
    if (AT_LIKELY(!at_alloc.sampling)) {
        *bytes = (int64_t)n, *count = 1;
    } else if (AT_LIKELY(weights && n < AT_SHADOW_SIZE_BIG)) {
        weight_cached(n, bytes, count);
    } else {
        weight_exact(n, bytes, count);
    }
}

int at_alloc_weights_init(void)
{
    void *p = mmap(NULL, sizeof(weight_entry_t) * AT_SHADOW_SIZE_BIG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    weights = p;
    return 0;
}

static inline void peak_check(at_alloc_header_t *h)
{
    int64_t live = h->py_live + __atomic_load_n(&h->raw_live, __ATOMIC_RELAXED);
    if (AT_UNLIKELY(live > h->py_peak)) {
        h->py_peak = live;
        if (live >= at_alloc.next_capture)
            at_alloc.peak_pending = 1;
    }
}

static inline void add_atomic(int64_t *p, int64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* RAW and NATIVE sites: any thread, maybe without the GIL. */
static void account_atomic(at_alloc_site_t *s, int64_t b, int64_t c)
{
    at_alloc_header_t *h = at_alloc.hdr;
    add_atomic(&s->live_bytes, b);
    add_atomic(&s->live_count, c);
    if (b > 0) {
        __atomic_fetch_add(&s->total_bytes, (uint64_t)b, __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->total_count, (uint64_t)c, __ATOMIC_RELAXED);
    }
    if (s->kind == AT_ALLOC_KIND_NATIVE) {
        add_atomic(&h->native_live, b);
        add_atomic(&h->native_live_count, c);
        if (b > 0) {
            __atomic_fetch_add(&h->native_total_bytes, (uint64_t)b, __ATOMIC_RELAXED);
            int64_t live = __atomic_load_n(&h->native_live, __ATOMIC_RELAXED);
            int64_t peak = __atomic_load_n(&h->native_peak, __ATOMIC_RELAXED);
            while (live > peak && !__atomic_compare_exchange_n(&h->native_peak, &peak, live, 1,
                                                               __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
        }
    } else if (s->flags & AT_ALLOC_G_TOOL) {
        add_atomic(&h->tool_live, b);
    } else {
        add_atomic(&h->raw_live, b);
    }
}

/* Add (b, c > 0) or remove (b, c < 0) a block's weight, any kind.  Sites
 * of kind PY are only touched with the GIL held: plain arithmetic. */
static void account(uint32_t site, int64_t b, int64_t c, int gil)
{
    at_alloc_site_t *s = &at_alloc.sites[site];
    at_alloc_header_t *h = at_alloc.hdr;
    if (s->kind != AT_ALLOC_KIND_PY) {
        account_atomic(s, b, c);
        return;
    }
    if (b < 0 && at_alloc.peak_pending && gil && !(s->flags & AT_ALLOC_G_TOOL))
        at_alloc_capture_peak();
    s->live_bytes += b;
    s->live_count += c;
    if (b > 0)
        s->total_bytes += (uint64_t)b, s->total_count += (uint64_t)c;
    if (s->flags & AT_ALLOC_G_TOOL) {
        h->tool_live += b;
        if (h->tool_live > h->tool_peak)
            h->tool_peak = h->tool_live;
        return;
    }
    h->py_live += b;
    if (b > 0 && gil)
        peak_check(h);
}

static void uncount(uint32_t site, size_t size, int gil)
{
    int64_t b, c;
    weight(size, &b, &c);
    account(site, -b, -c, gil);
}

static void untracked(size_t n)
{
    __atomic_fetch_add(&at_alloc.hdr->untracked_blocks, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&at_alloc.hdr->untracked_bytes, n, __ATOMIC_RELAXED);
}

/* Record block p of n bytes at site, any kind, any mode. */
__attribute__((noinline)) static void count_at(void *p, size_t n, uint32_t site, int gil)
{
    uint32_t osite;
    size_t osize;
    int rc = at_shadow_put(p, site, n, &osite, &osize);
    if (AT_UNLIKELY(rc)) {
        if (rc & AT_SHADOW_STALE)
            uncount(osite, osize, gil);
        if (rc & AT_SHADOW_FAILED) {
            untracked(n);
            return;
        }
    }
    int64_t b, c;
    weight(n, &b, &c);
    account(site, b, c, gil);
}

static uintptr_t this_tstate(void)
{
    return at_alloc.this_tstate ? (uintptr_t)at_alloc.this_tstate() : 0;
}

/* RAW and NATIVE blocks: the frame is this thread's own (no GIL needed),
 * looked up only for the blocks that are counted. */
static inline void count(void *p, size_t n, unsigned kind)
{
    if (at_alloc.sampling && AT_LIKELY(!sampled(&tl_countdown, &tl_started, n)))
        return;
    count_at(p, n, at_alloc_site_here(this_tstate(), kind), 0);
}

/* OBJ/MEM, GIL held: the common case (exact mode, a plain site, a fresh
 * 16-byte-aligned block under 16 KiB, leaf already mapped) inline. */
#define NO_SITE UINT32_MAX

/* The site of an OBJ/MEM allocation of n bytes, or NO_SITE when sampling
 * skips it.  Called before the allocator runs: nothing here depends on
 * the block, so the frame-chain loads overlap with pymalloc's work.
 * Inlined with count_py into every wrapper: an unsampled block then costs
 * the countdown and a branch, not two calls. */
__attribute__((always_inline)) static inline uint32_t py_site(size_t n, const at_alloc_fast_t *F)
{
    if (at_alloc.sampling && AT_LIKELY(!sampled(&gil_countdown, &gil_started, n)))
        return NO_SITE;
    return at_alloc_site_gil(F);
}

__attribute__((always_inline)) static inline void count_py(void *p, size_t n, uint32_t site)
{
    if (site == NO_SITE)
        return;
    at_alloc_site_t *s = &at_alloc.sites[site];
    uint32_t *slot = at_shadow_find_gil((uintptr_t)p);
    if (AT_UNLIKELY(at_alloc.sampling || !slot || *slot || n >= AT_SHADOW_SIZE_BIG ||
                    (s->flags & AT_ALLOC_G_TOOL))) {
        count_at(p, n, site, 1);
        return;
    }
    __atomic_store_n(slot, ((site + 1) << AT_SHADOW_SIZE_BITS) | (uint32_t)n, __ATOMIC_RELAXED);
    at_alloc_header_t *h = at_alloc.hdr;
    s->live_bytes += (int64_t)n;
    s->live_count++;
    s->total_bytes += n;
    s->total_count++;
    h->py_live += (int64_t)n;
    peak_check(h);
}

/* A PY site's block reaching a RAW free is a sampled OBJ/MEM block on
 * its way from pymalloc's free (see over_plain_pymalloc): the GIL is
 * held. */
__attribute__((noinline)) static void forget_tracked(void *p, int gil)
{
    uint32_t site;
    size_t size;
    if (at_shadow_take(p, &site, &size))
        uncount(site, size, gil || at_alloc.sites[site].kind == AT_ALLOC_KIND_PY);
}

/* Any block, any mode: subtract it if it was tracked.  When sampling,
 * the shadow's hint answers "not tracked" for nearly every block in one
 * load, inline; the walk is out of line. */
static inline void forget(void *p, int gil)
{
    if (at_shadow_hints_on && AT_LIKELY(!at_shadow_maybe(p)))
        return;
    forget_tracked(p, gil);
}

/* OBJ/MEM, GIL held: exact mode's common case (a plain PY site, no peak
 * pending, size in the entry) inline.  NULL finds no entry. */
static inline void forget_py(void *p)
{
    uint32_t *slot = at_shadow_find_gil((uintptr_t)p);
    uint32_t e;
    if (!slot || !(e = *slot))
        return;
    *slot = 0;
    uint32_t site = (e >> AT_SHADOW_SIZE_BITS) - 1;
    size_t size = e & AT_SHADOW_SIZE_BIG;
    at_alloc_site_t *s = &at_alloc.sites[site];
    if (AT_UNLIKELY(size == AT_SHADOW_SIZE_BIG || (s->flags & AT_ALLOC_G_TOOL) || s->kind != AT_ALLOC_KIND_PY ||
                    at_alloc.peak_pending)) {
        if (size == AT_SHADOW_SIZE_BIG)
            size = at_shadow_big_take(p);
        uncount(site, size, 1);
        return;
    }
    s->live_bytes -= (int64_t)size;
    s->live_count--;
    at_alloc.hdr->py_live -= (int64_t)size;
}

/* Realloc: the old block's record is taken out before the allocator runs
 * (once freed, its address may be handed to another thread's malloc) and
 * put back if the allocator fails, when the old block still stands. */
typedef struct old_block {
    uint32_t site;
    size_t size;
    int taken;
} old_block_t;

static inline old_block_t take_old(void *ptr)
{
    old_block_t o = { 0, 0, 0 };
    o.taken = ptr && at_shadow_take(ptr, &o.site, &o.size);
    return o;
}

static inline void settle_old(void *ptr, const old_block_t *o, int moved, int gil)
{
    uint32_t site;
    size_t size;
    if (!o->taken)
        return;
    if (moved)
        uncount(o->site, o->size, gil);
    else
        at_shadow_put(ptr, o->site, o->size, &site, &size);
}

/* ---- sampled blocks in the pool (alloc_pool.c) -------------------------- */

/* A sampled OBJ/MEM block of n bytes from the pool, counted; NULL when
 * this layer does not use the pool or the pool is full. */
static void *pool_take(const layer_t *L, size_t n, uint32_t site)
{
    if (!L->use_pool || n > AT_POOL_MAX)
        return NULL;
    void *p = at_pool_alloc(n, site);
    if (p) {
        int64_t b, c;
        weight(n, &b, &c);
        account(site, b, c, 1);
    }
    return p;
}

/* A pool block reaching PyMem_RawFree from pymalloc's free (GIL held). */
__attribute__((noinline)) static void pool_give(void *p)
{
    uint32_t site;
    size_t size;
    if (at_pool_release(p, &site, &size) && AT_LIKELY(at_alloc.on && at_alloc.hdr))
        uncount(site, size, 1);
}

/* ... or PyMem_RawRealloc from pymalloc's realloc: pool blocks do not
 * grow, the data moves to a block of the layer below. */
__attribute__((noinline)) static void *pool_move(layer_t *L, void *p, size_t n)
{
    size_t old = at_pool_size(p);
    unsigned saved = at_alloc_tl;
    at_alloc_tl = saved | AT_TL_PYMEM;
    void *q = L->prev.malloc(L->prev.ctx, n ? n : 1);
    at_alloc_tl = saved;
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    pool_give(p);
    return q;
}

/* ---- PyMem wrappers ----------------------------------------------------- */

/* Pass through: feature off, nested in our own wrapper, forking, or shim
 * code of any feature running on this thread. */
static inline int py_skip(void)
{
    return AT_UNLIKELY(!at_alloc.on) || at_alloc_tl || at_in_shim;
}

static inline void tm_check(void)
{
    if (AT_UNLIKELY(at_alloc.tm_watch) && *at_alloc.tm_tracing != at_alloc.tm_seen)
        at_alloc_tracemalloc_changed();
}

/* The OBJ/MEM wrappers that look up a site are compiled once per CPython
 * version (PY_WRAPPERS below), each with its constant at_alloc_fast_t:
 * the bodies are always inlined, so F folds into the loads. */
#define BODY __attribute__((always_inline)) static inline

BODY void *malloc_flagged(layer_t *L, size_t n, const at_alloc_fast_t *F)
{
    if (py_skip())
        return L->prev.malloc(L->prev.ctx, n);
    uint32_t site = py_site(n, F);
    at_alloc_tl = AT_TL_PYMEM;
    void *p = L->prev.malloc(L->prev.ctx, n);
    at_alloc_tl = 0;
    if (AT_LIKELY(p))
        count_py(p, n, site);
    tm_check();
    return p;
}

/* Exact mode.  Over plain pymalloc (L->fast) a small block needs no flag
 * around the call (pymalloc calls nothing of ours for it), and the site
 * is looked up before the call so its loads overlap pymalloc's. */
BODY void *malloc_exact(void *ctx, size_t n, const at_alloc_fast_t *F,
                        void *(*flagged)(layer_t *, size_t))
{
    layer_t *L = ctx;
    if (AT_UNLIKELY(!L->fast || n > PYMALLOC_SMALL_MAX || !at_alloc.on || (at_alloc_tl | (unsigned)at_in_shim)))
        return flagged(L, n);
    uint32_t site = at_alloc_site_gil(F);
    void *p = L->prev.malloc(L->prev.ctx, n);
    if (AT_LIKELY(p))
        count_py(p, n, site);
    tm_check();
    return p;
}

BODY void *calloc_counted(void *ctx, size_t nelem, size_t elsize, const at_alloc_fast_t *F)
{
    layer_t *L = ctx;
    size_t n;
    if (py_skip() || __builtin_mul_overflow(nelem, elsize, &n))
        return L->prev.calloc(L->prev.ctx, nelem, elsize);
    uint32_t site = py_site(n, F);
    at_alloc_tl = AT_TL_PYMEM;
    void *p = L->prev.calloc(L->prev.ctx, nelem, elsize);
    at_alloc_tl = 0;
    if (AT_LIKELY(p))
        count_py(p, n, site);
    return p;
}

/* The realloc both PyMem domains share: the layer below resizes, the old
 * block's record follows (gil: whether PY site counters may be touched). */
static inline void *layer_realloc(layer_t *L, void *ptr, size_t n, int gil)
{
    old_block_t old = take_old(ptr);
    at_alloc_tl = AT_TL_PYMEM;
    void *q = L->prev.realloc(L->prev.ctx, ptr, n);
    at_alloc_tl = 0;
    settle_old(ptr, &old, q != NULL, gil);
    return q;
}

BODY void *realloc_counted(void *ctx, void *ptr, size_t n, const at_alloc_fast_t *F)
{
    layer_t *L = ctx;
    if (py_skip())
        return L->prev.realloc(L->prev.ctx, ptr, n);
    void *q = layer_realloc(L, ptr, n, 1);
    if (AT_LIKELY(q))
        count_py(q, n, py_site(n, F));
    return q;
}

__attribute__((noinline)) static void py_free_slow(layer_t *L, void *ptr)
{
    if (L->fast) {
        if (AT_LIKELY(at_alloc.on))
            forget_py(ptr);
        L->prev.free(L->prev.ctx, ptr);
        return;
    }
    unsigned saved = at_alloc_tl;
    if (ptr && AT_LIKELY(at_alloc.on) && !saved)
        forget_py(ptr);
    at_alloc_tl = saved | AT_TL_PYMEM;
    L->prev.free(L->prev.ctx, ptr);
    at_alloc_tl = saved;
}

/* Exact mode.  Over plain pymalloc (L->fast) no flag is needed: pymalloc
 * hands big blocks to PyMem_RawFree, whose hook finds their entries
 * already gone, and nothing of ours is running on this thread (a flag
 * set here could only come from site creation, whose frees are the
 * program's as much as any).  The common case (the leaf of the last
 * lookup, a plain PY site, no peak pending) makes no call but the tail
 * call below, so it needs no stack frame; anything else goes the slow
 * way, which looks again. */
static void py_free(void *ctx, void *ptr)
{
    layer_t *L = ctx;
    uintptr_t a = (uintptr_t)ptr;
    const uintptr_t leaf_mask = (1u << AT_SHADOW_LEAF_BITS) - 1;
    if (AT_UNLIKELY(!L->fast || !at_alloc.on || (a >> AT_SHADOW_L2_SHIFT) != at_shadow_last_key || (a & 15))) {
        py_free_slow(L, ptr);
        return;
    }
    uint32_t *slot = &at_shadow_last_leaf[(a >> AT_SHADOW_LEAF_SHIFT) & leaf_mask];
    uint32_t e = *slot;
    if (e) {
        at_alloc_site_t *s = &at_alloc.sites[(e >> AT_SHADOW_SIZE_BITS) - 1];
        size_t size = e & AT_SHADOW_SIZE_BIG;
        if (AT_UNLIKELY(size == AT_SHADOW_SIZE_BIG || (s->flags & AT_ALLOC_G_TOOL) ||
                        s->kind != AT_ALLOC_KIND_PY || at_alloc.peak_pending)) {
            py_free_slow(L, ptr);
            return;
        }
        *slot = 0;
        s->live_bytes -= (int64_t)size;
        s->live_count--;
        at_alloc.hdr->py_live -= (int64_t)size;
    }
    L->prev.free(L->prev.ctx, ptr);
}

/* ---- PyMem wrappers, sampled mode (OBJ and MEM) ------------------------- */

/* Nearly every block is left out, and for those the wrappers below are a
 * countdown and a tail call to the layer below: no stack frame, no
 * thread-local flag.  The flag (AT_TL_PYMEM) only matters for blocks the
 * allocator below hands on to PyMem_RawMalloc, which pymalloc does for
 * requests over SMALL_REQUEST_THRESHOLD: those take the flagged path.
 * (pymalloc also grows its arena list with PyMem_RawRealloc, a few times
 * in a run: an unflagged such call is one more RAW block, as it is.)
 * Bytes of calls that are not counted (feature off, nested, shim code)
 * still run the countdown down: a sample point that falls in one of
 * them is lost with it, which leaves every counted block's chance of
 * being sampled, and so its weight, unchanged.  Realloc is the
 * version's py_realloc (py_site samples). */
/* A nested layer passes through, and looks whether it is the outermost
 * again (tracemalloc stopped).  The bytes were not this layer's to count
 * down. */
__attribute__((noinline)) static void nested_call(size_t n)
{
    gil_countdown += (int64_t)n;
    tm_check();
}

BODY void *malloc_sampled_slow(layer_t *L, size_t n, const at_alloc_fast_t *F)
{
    if (L->nested) {
        nested_call(n);
        return L->prev.malloc(L->prev.ctx, n);
    }
    if (AT_UNLIKELY(py_skip())) {
        if (gil_countdown <= 0)
            restart(&gil_countdown, &gil_started);
        return L->prev.malloc(L->prev.ctx, n);
    }
    const pymem_alloc_t *a = &L->prev;
    uint32_t site = NO_SITE;
    if (gil_countdown <= 0 && restart(&gil_countdown, &gil_started)) {
        site = at_alloc_site_gil(F);
        void *p = pool_take(L, n, site);
        if (p) {
            tm_check();
            return p;
        }
        a = L->sampled_from;
    }
    at_alloc_tl = AT_TL_PYMEM;
    void *p = a->malloc(a->ctx, n);
    at_alloc_tl = 0;
    if (AT_LIKELY(p) && site != NO_SITE)
        count_at(p, n, site, 1);
    tm_check();
    return p;
}

BODY void *malloc_sampled(void *ctx, size_t n, void *(*slow)(layer_t *, size_t))
{
    layer_t *L = ctx;
    gil_countdown -= (int64_t)n;
    if (AT_LIKELY(gil_countdown > 0 && n <= PYMALLOC_SMALL_MAX && L->fast))
        return L->prev.malloc(L->prev.ctx, n);
    return slow(L, n);
}

BODY void *calloc_sampled_slow(layer_t *L, size_t nelem, size_t elsize, const at_alloc_fast_t *F)
{
    size_t n;
    if (L->nested) {
        nested_call(nelem * elsize);
        return L->prev.calloc(L->prev.ctx, nelem, elsize);
    }
    if (AT_UNLIKELY(py_skip() || __builtin_mul_overflow(nelem, elsize, &n))) {
        if (gil_countdown <= 0)
            restart(&gil_countdown, &gil_started);
        return L->prev.calloc(L->prev.ctx, nelem, elsize);
    }
    const pymem_alloc_t *a = &L->prev;
    uint32_t site = NO_SITE;
    if (gil_countdown <= 0 && restart(&gil_countdown, &gil_started)) {
        site = at_alloc_site_gil(F);
        void *p = pool_take(L, n, site);
        if (p)
            return memset(p, 0, n);
        a = L->sampled_from;
    }
    at_alloc_tl = AT_TL_PYMEM;
    void *p = a->calloc(a->ctx, nelem, elsize);
    at_alloc_tl = 0;
    if (AT_LIKELY(p) && site != NO_SITE)
        count_at(p, n, site, 1);
    return p;
}

BODY void *calloc_sampled(void *ctx, size_t nelem, size_t elsize,
                          void *(*slow)(layer_t *, size_t, size_t))
{
    layer_t *L = ctx;
    size_t n = nelem * elsize;   /* wrapped on overflow: the slow path checks */
    gil_countdown -= (int64_t)n;
    if (AT_LIKELY(gil_countdown > 0 && n <= PYMALLOC_SMALL_MAX && L->fast &&
                  (nelem | elsize) < 0x100000000ull))
        return L->prev.calloc(L->prev.ctx, nelem, elsize);
    return slow(L, nelem, elsize);
}

/* One set of the wrappers that look up sites per CPython version, each
 * compiled with its constant at_alloc_fast_t (the BODY functions above
 * are always inlined, so F folds into the loads, as the 3.11 offsets did
 * when they were macros): exact mode's malloc, calloc and realloc, and
 * sampled mode's malloc and calloc (its realloc is the exact one). */
#define PY_WRAPPERS(V)                                                                     \
    __attribute__((noinline)) static void *py_malloc_flagged_##V(layer_t *L, size_t n)    \
    {                                                                                      \
        return malloc_flagged(L, n, &at_alloc_fast_##V);                                   \
    }                                                                                      \
    static void *py_malloc_##V(void *ctx, size_t n)                                        \
    {                                                                                      \
        return malloc_exact(ctx, n, &at_alloc_fast_##V, py_malloc_flagged_##V);            \
    }                                                                                      \
    static void *py_calloc_##V(void *ctx, size_t nelem, size_t elsize)                     \
    {                                                                                      \
        return calloc_counted(ctx, nelem, elsize, &at_alloc_fast_##V);                     \
    }                                                                                      \
    static void *py_realloc_##V(void *ctx, void *ptr, size_t n)                            \
    {                                                                                      \
        return realloc_counted(ctx, ptr, n, &at_alloc_fast_##V);                           \
    }                                                                                      \
    __attribute__((noinline)) static void *py_malloc_s_slow_##V(layer_t *L, size_t n)     \
    {                                                                                      \
        return malloc_sampled_slow(L, n, &at_alloc_fast_##V);                              \
    }                                                                                      \
    static void *py_malloc_s_##V(void *ctx, size_t n)                                      \
    {                                                                                      \
        return malloc_sampled(ctx, n, py_malloc_s_slow_##V);                               \
    }                                                                                      \
    __attribute__((noinline)) static void *py_calloc_s_slow_##V(layer_t *L, size_t nelem,  \
                                                                size_t elsize)             \
    {                                                                                      \
        return calloc_sampled_slow(L, nelem, elsize, &at_alloc_fast_##V);                  \
    }                                                                                      \
    static void *py_calloc_s_##V(void *ctx, size_t nelem, size_t elsize)                   \
    {                                                                                      \
        return calloc_sampled(ctx, nelem, elsize, py_calloc_s_slow_##V);                   \
    }
PY_WRAPPERS(311)
PY_WRAPPERS(312)
PY_WRAPPERS(313)

static void py_free_s(void *ctx, void *ptr)
{
    layer_t *L = ctx;
    unsigned saved = at_alloc_tl;
    /* the hint first: it is what nearly always says no */
    if (AT_UNLIKELY(at_shadow_maybe(ptr)) && ptr && at_alloc.on && !saved)
        forget_tracked(ptr, 1);
    at_alloc_tl = saved | AT_TL_PYMEM;
    L->prev.free(L->prev.ctx, ptr);
    at_alloc_tl = saved;
}

/* RAW: may run without the GIL (so RAW sites keep atomic counters and the
 * frame is this thread's own, which only this thread changes). */
static void *raw_malloc(void *ctx, size_t n)
{
    layer_t *L = ctx;
    if (py_skip())
        return L->prev.malloc(L->prev.ctx, n);
    at_alloc_tl = AT_TL_PYMEM;
    void *p = L->prev.malloc(L->prev.ctx, n);
    at_alloc_tl = 0;
    if (AT_LIKELY(p))
        count(p, n, AT_ALLOC_KIND_RAW);
    return p;
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    layer_t *L = ctx;
    size_t n;
    if (py_skip() || __builtin_mul_overflow(nelem, elsize, &n))
        return L->prev.calloc(L->prev.ctx, nelem, elsize);
    at_alloc_tl = AT_TL_PYMEM;
    void *p = L->prev.calloc(L->prev.ctx, nelem, elsize);
    at_alloc_tl = 0;
    if (AT_LIKELY(p))
        count(p, n, AT_ALLOC_KIND_RAW);
    return p;
}

static void *raw_realloc(void *ctx, void *ptr, size_t n)
{
    layer_t *L = ctx;
    if (at_pool_has(ptr)) {
        void *q = pool_move(L, ptr, n);
        if (q && !py_skip())
            count(q, n, AT_ALLOC_KIND_RAW);
        return q;
    }
    if (py_skip())
        return L->prev.realloc(L->prev.ctx, ptr, n);
    void *q = layer_realloc(L, ptr, n, 0);
    if (AT_LIKELY(q))
        count(q, n, AT_ALLOC_KIND_RAW);
    return q;
}

static void raw_free(void *ctx, void *ptr)
{
    layer_t *L = ctx;
    if (at_pool_has(ptr)) {
        pool_give(ptr);
        return;
    }
    unsigned saved = at_alloc_tl;
    if (ptr && AT_LIKELY(at_alloc.on) && !saved)
        forget(ptr, 0);
    at_alloc_tl = saved | AT_TL_PYMEM;
    L->prev.free(L->prev.ctx, ptr);
    at_alloc_tl = saved;
}

/* The functions of each version: OBJ/MEM in exact mode, in sampled
 * mode, and RAW (the same in every version), for alloc_layers.c. */
#define WRAPPERS(V)                                                                        \
    {                                                                                      \
        { NULL, py_malloc_##V, py_calloc_##V, py_realloc_##V, py_free },                   \
        { NULL, py_malloc_s_##V, py_calloc_s_##V, py_realloc_##V, py_free_s },             \
        { NULL, raw_malloc, raw_calloc, raw_realloc, raw_free },                           \
    }
static const at_alloc_wrappers_t wrappers_311 = WRAPPERS(311), wrappers_312 = WRAPPERS(312),
                                 wrappers_313 = WRAPPERS(313);

const at_alloc_wrappers_t *at_alloc_hooks_wrappers(const at_alloc_fast_t *F)
{
    return F->minor == 13 ? &wrappers_313 : F->minor == 12 ? &wrappers_312 : &wrappers_311;
}

/* ---- libc malloc family ------------------------------------------------- */

typedef struct real_fns {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
} real_fns_t;

static real_fns_t real;
static int real_ready;                  /* every field of `real` is set   */
static __thread int tl_resolving;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* Bootstrap arena: what dlsym allocates while we look up the real malloc. */
#define ARENA_SIZE (64 * 1024)
static _Alignas(16) unsigned char arena[ARENA_SIZE];
static size_t arena_used;

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_SIZE;
}

static void *arena_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t start, end, used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
    do {
        start = (used + 16 + align - 1) & ~(align - 1);   /* 16: size header */
        end = start + ((n + 15) & ~(size_t)15);
        if (end > ARENA_SIZE || n > ARENA_SIZE)
            return NULL;
    } while (!__atomic_compare_exchange_n(&arena_used, &used, end, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    memcpy(arena + start - sizeof(size_t), &n, sizeof(n));
    return arena + start;                                  /* zeroed: .bss */
}

static size_t arena_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(n));
    return n;
}

static void resolve_real(void)
{
    tl_resolving = 1;
    real_fns_t r = {
        dlsym(RTLD_NEXT, "malloc"), dlsym(RTLD_NEXT, "calloc"), dlsym(RTLD_NEXT, "realloc"),
        dlsym(RTLD_NEXT, "free"), dlsym(RTLD_NEXT, "posix_memalign"),
        dlsym(RTLD_NEXT, "aligned_alloc"), dlsym(RTLD_NEXT, "memalign"),
        dlsym(RTLD_NEXT, "valloc"), dlsym(RTLD_NEXT, "pvalloc"),
    };
    tl_resolving = 0;
    if (!r.malloc || !r.calloc || !r.realloc || !r.free || !r.posix_memalign ||
        !r.aligned_alloc || !r.memalign || !r.valloc || !r.pvalloc)
        return;                         /* stay on the arena: never crash */
    real = r;
    __atomic_store_n(&real_ready, 1, __ATOMIC_RELEASE);
}

/* 1 when the real functions are known; 0 while this thread resolves them. */
static inline int have_real(void)
{
    if (AT_LIKELY(__atomic_load_n(&real_ready, __ATOMIC_ACQUIRE)))
        return 1;
    if (tl_resolving)
        return 0;
    pthread_once(&real_once, resolve_real);
    return __atomic_load_n(&real_ready, __ATOMIC_ACQUIRE);
}

static inline int native_skip(void)
{
    return AT_LIKELY(!at_alloc.native_on) || at_alloc_tl || at_in_shim;
}

static inline void native_count(void *p, size_t n)
{
    if (p && !native_skip())
        count(p, n, AT_ALLOC_KIND_NATIVE);
}

/* What the real allocator returned, counted: the tail of every hook of
 * the malloc family. */
static inline void *counted(void *p, size_t n)
{
    native_count(p, n);
    return p;
}

/* The free of a tracked block finds it wherever it is counted, so the
 * move needs native tracking on (else nothing would ever subtract it).
 * Cumulative figures count it twice: native when malloc'd, Python here. */
void at_alloc_track_block(void *p, size_t n)
{
    if (native_skip())
        return;
    forget(p, 0);
    count(p, n, AT_ALLOC_KIND_RAW);
}

/* Only a record made above (a RAW site) goes: numpy untracks a block's
 * old address after realloc moved it, when another thread's malloc may
 * already have that address (a NATIVE record, put back). */
void at_alloc_untrack_block(void *p)
{
    uint32_t site, osite;
    size_t size, osize;
    if (native_skip() || !at_shadow_take(p, &site, &size))
        return;
    if (at_alloc.sites[site].kind == AT_ALLOC_KIND_RAW) {
        uncount(site, size, 0);
        return;
    }
    int rc = at_shadow_put(p, site, size, &osite, &osize);
    if (rc & AT_SHADOW_STALE)
        uncount(osite, osize, 0);
    if (rc & AT_SHADOW_FAILED)
        uncount(site, size, 0);         /* cannot keep it: not counted then */
}

AT_API void *malloc(size_t n)
{
    if (AT_UNLIKELY(!have_real()))
        return arena_alloc(n, 16);
    return counted(real.malloc(n), n);
}

AT_API void *calloc(size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n))
        n = SIZE_MAX;
    if (AT_UNLIKELY(!have_real()))
        return n == SIZE_MAX ? NULL : arena_alloc(n, 16);
    return counted(real.calloc(nelem, elsize), n);
}

static void *realloc_from_arena(void *ptr, size_t n)
{
    void *q = malloc(n);
    if (q) {
        size_t old = arena_size(ptr);
        memcpy(q, ptr, old < n ? old : n);
    }
    return q;
}

AT_API void *realloc(void *ptr, size_t n)
{
    if (AT_UNLIKELY(ptr && in_arena(ptr)))
        return realloc_from_arena(ptr, n);
    if (AT_UNLIKELY(!have_real()))
        return ptr ? NULL : arena_alloc(n, 16);
    if (!at_alloc.native_on || at_alloc_tl)
        return real.realloc(ptr, n);
    old_block_t old = take_old(ptr);
    void *q = real.realloc(ptr, n);
    settle_old(ptr, &old, q || !n, 0);   /* realloc(p, 0) may free p, return NULL */
    native_count(q, n);
    return q;
}

AT_API void free(void *ptr)
{
    if (!ptr || AT_UNLIKELY(in_arena(ptr)))
        return;
    if (AT_UNLIKELY(!have_real()))
        return;                     /* cannot happen: ptr came from real */
    if (at_alloc.native_on && !at_alloc_tl)
        forget(ptr, 0);
    real.free(ptr);
}

AT_API int posix_memalign(void **out, size_t align, size_t n)
{
    if (AT_UNLIKELY(!have_real())) {
        *out = arena_alloc(n, align);
        return *out ? 0 : ENOMEM;
    }
    int rc = real.posix_memalign(out, align, n);
    if (rc == 0)
        native_count(*out, n);
    return rc;
}

AT_API void *aligned_alloc(size_t align, size_t n)
{
    if (AT_UNLIKELY(!have_real()))
        return arena_alloc(n, align);
    return counted(real.aligned_alloc(align, n), n);
}

AT_API void *memalign(size_t align, size_t n)
{
    if (AT_UNLIKELY(!have_real()))
        return arena_alloc(n, align);
    return counted(real.memalign(align, n), n);
}

AT_API void *valloc(size_t n)
{
    if (AT_UNLIKELY(!have_real()))
        return arena_alloc(n, 4096);
    return counted(real.valloc(n), n);
}

AT_API void *pvalloc(size_t n)
{
    if (AT_UNLIKELY(!have_real()))
        return arena_alloc((n + 4095) & ~(size_t)4095, 4096);
    return counted(real.pvalloc(n), n);
}
