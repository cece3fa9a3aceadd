/* SPDX-License-Identifier: MIT */
/* alloc_shadow.c - pointer -> (site, size) for every tracked block.
 *
 * Design: a radix "shadow" of the address space with one 32-bit entry per
 * 16-byte granule (malloc and pymalloc both align blocks to 16 bytes, and
 * two live blocks never share a granule).  Three levels:
 *     l1[p >> 35] -> node[(p >> 23) & 4095] -> leaf[(p >> 4) & 0x7ffff]
 * Leaves (2 MiB of address space each) are mmap'd MAP_NORESERVE, so only
 * pages under live blocks become resident: about a quarter of the heap's
 * pages, and memory next to the block's own (pymalloc pools are 16 KiB,
 * one leaf page).  Compared with a hash table this keeps the allocator's
 * locality (a freed block's entry is next to its neighbours') and has no
 * probing, deletion or resizing.
 *
 * Entry: 0 = untracked; else (site + 1) << 14 | size, with size 16383
 * meaning "look in the big table" (a small locked hash of exact sizes of
 * blocks >= 16 KiB, which are rare).  No lock on the fast path: a granule
 * belongs to one live block, whose malloc and free the allocator itself
 * orders; nodes and leaves are published with a CAS.
 *
 * When sampling, blocks are kept in alloc_samples.c's table instead, and
 * the hint counters of alloc.h let frees of untracked blocks (nearly all
 * of them) skip it; they change only with an entry, atomically (RAW and
 * libc hooks run without the GIL), and only for sampled blocks.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "alloc.h"

#define L1_BITS   AT_SHADOW_L1_BITS
#define L2_BITS   AT_SHADOW_L2_BITS
#define LEAF_BITS AT_SHADOW_LEAF_BITS
#define ADDR_BITS 47u
#define LEAF_SHIFT AT_SHADOW_LEAF_SHIFT
#define L2_SHIFT  AT_SHADOW_L2_SHIFT
#define L1_SHIFT  AT_SHADOW_L1_SHIFT
_Static_assert(L1_SHIFT + L1_BITS == ADDR_BITS, "levels cover user space");


uint32_t **at_shadow_l1[1u << L1_BITS];
#define l1 at_shadow_l1
_Alignas(4096) uint8_t at_shadow_hint[1u << AT_SHADOW_HINT_BITS];
int at_shadow_hints_on;
/* Exact sizes of blocks >= 16 KiB: 65536 slots (mmap'd on first use),
 * at most 3/4 of them used. */
static at_table_t big = { .min_bits = 16, .max_bits = 16, .load_pct = 75 };
static uint64_t nodes_mapped, leaves_mapped;

static void *map_zero(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Publish a freshly mapped table in *slot unless another thread won. */
static void *publish(void **slot, size_t n, uint64_t *counter)
{
    void *fresh = map_zero(n);
    if (!fresh)
        return NULL;
    void *expected = NULL;
    if (__atomic_compare_exchange_n(slot, &expected, fresh, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
        return fresh;
    }
    munmap(fresh, n);
    return expected;
}

/* The entry for p; NULL when p cannot be tracked or (create == 0) its
 * leaf does not exist. */
static uint32_t *slot_of(uintptr_t a, int create)
{
    if (AT_UNLIKELY((a >> ADDR_BITS) || (a & 15)))
        return NULL;
    void **e1 = (void **)&l1[a >> L1_SHIFT];
    uint32_t **node = __atomic_load_n(e1, __ATOMIC_ACQUIRE);
    if (AT_UNLIKELY(!node)) {
        if (!create)
            return NULL;
        node = publish(e1, sizeof(uint32_t *) << L2_BITS, &nodes_mapped);
        if (!node)
            return NULL;
    }
    void **e2 = (void **)&node[(a >> L2_SHIFT) & ((1u << L2_BITS) - 1)];
    uint32_t *leaf = __atomic_load_n(e2, __ATOMIC_ACQUIRE);
    if (AT_UNLIKELY(!leaf)) {
        if (!create)
            return NULL;
        leaf = publish(e2, sizeof(uint32_t) << LEAF_BITS, &leaves_mapped);
        if (!leaf)
            return NULL;
    }
    return &leaf[(a >> LEAF_SHIFT) & ((1u << LEAF_BITS) - 1)];
}

/* ---- big blocks --------------------------------------------------------- */

/* Insert or replace; -1 when full. */
static int big_put(uintptr_t p, size_t size)
{
    uint64_t old;
    at_table_lock(&big);
    int rc = at_table_put(&big, p, size, &old);
    at_table_unlock(&big);
    return rc < 0 ? -1 : 0;
}

/* Remove p: its size, 0 when it was not there. */
static size_t big_take(uintptr_t p)
{
    uint64_t size = 0;
    at_table_lock(&big);
    at_table_take(&big, p, &size);
    at_table_unlock(&big);
    return (size_t)size;
}

/* ---- sampling hints ----------------------------------------------------- */

void at_shadow_hints_start(void)
{
    at_shadow_hints_on = 1;
}

/* ---- entries ------------------------------------------------------------ */

static void decode(uint32_t entry, const void *p, uint32_t *site, size_t *size)
{
    *site = (entry >> AT_SHADOW_SIZE_BITS) - 1;
    uint32_t s = entry & AT_SHADOW_SIZE_BIG;
    *size = s == AT_SHADOW_SIZE_BIG ? big_take((uintptr_t)p) : s;
}

int at_shadow_put_slow(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize)
{
    uint32_t *slot = slot_of((uintptr_t)p, 1);
    if (AT_UNLIKELY(!slot))
        return AT_SHADOW_FAILED;
    uint32_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
    int rc = 0;
    if (AT_UNLIKELY(old)) {
        /* freed behind our back (hooks off for a while): settle it first */
        decode(old, p, osite, osize);
        rc = AT_SHADOW_STALE;
    }
    uint32_t s = (uint32_t)size;
    if (AT_UNLIKELY(size >= AT_SHADOW_SIZE_BIG)) {
        if (big_put((uintptr_t)p, size) < 0) {
            __atomic_store_n(slot, 0, __ATOMIC_RELAXED);
            return rc | AT_SHADOW_FAILED;
        }
        s = AT_SHADOW_SIZE_BIG;
    }
    __atomic_store_n(slot, ((site + 1) << AT_SHADOW_SIZE_BITS) | s, __ATOMIC_RELAXED);
    return rc;
}

size_t at_shadow_big_take(const void *p)
{
    return big_take((uintptr_t)p);
}

/* ---- fork and accounting ------------------------------------------------ */

uintptr_t at_shadow_last_key = ~(uintptr_t)0;
uint32_t *at_shadow_last_leaf;

void at_shadow_reset(void)
{
    at_shadow_last_key = ~(uintptr_t)0;
    at_shadow_last_leaf = NULL;
    for (size_t i = 0; i < (1u << L1_BITS); i++) {
        uint32_t **node = l1[i];
        if (!node)
            continue;
        for (size_t j = 0; j < (1u << L2_BITS); j++)
            if (node[j])
                munmap(node[j], sizeof(uint32_t) << LEAF_BITS);
        munmap(node, sizeof(uint32_t *) << L2_BITS);
        l1[i] = NULL;
    }
    at_table_reset(&big);
    nodes_mapped = leaves_mapped = 0;
    if (at_shadow_hints_on) {
        memset(at_shadow_hint, 0, sizeof(at_shadow_hint));
        at_samples_reset();
    }
}

/* Resident bytes of a mapping, by mincore() in steps of a leaf. */
uint64_t at_resident_bytes(void *addr, size_t len)
{
    static unsigned char vec[(sizeof(uint32_t) << LEAF_BITS) / 4096];
    uint64_t n = 0;
    for (size_t off = 0; off < len; off += sizeof(vec) * 4096) {
        size_t part = len - off < sizeof(vec) * 4096 ? len - off : sizeof(vec) * 4096;
        if (mincore((char *)addr + off, part, vec) != 0)
            return 0;
        for (size_t i = 0; i < (part + 4095) / 4096; i++)
            n += vec[i] & 1;
    }
    return n * 4096;
}

void at_shadow_usage(uint64_t *virt, uint64_t *resident)
{
    uint64_t bv, br;
    at_table_usage(&big, &bv, &br);
    *virt = nodes_mapped * (sizeof(uint32_t *) << L2_BITS) + leaves_mapped * (sizeof(uint32_t) << LEAF_BITS) +
            bv + sizeof(l1);
    uint64_t r = br;
    for (size_t i = 0; i < (1u << L1_BITS); i++) {
        uint32_t **node = l1[i];
        if (!node)
            continue;
        r += at_resident_bytes(node, sizeof(uint32_t *) << L2_BITS);
        for (size_t j = 0; j < (1u << L2_BITS); j++)
            if (node[j])
                r += at_resident_bytes(node[j], sizeof(uint32_t) << LEAF_BITS);
    }
    if (at_shadow_hints_on) {
        uint64_t sv, sr;
        at_samples_usage(&sv, &sr);
        *virt += sizeof(at_shadow_hint) + sv;
        r += at_resident_bytes(at_shadow_hint, sizeof(at_shadow_hint)) + sr;
    }
    *resident = r;
}
