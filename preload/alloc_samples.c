/* SPDX-License-Identifier: MIT */
/* alloc_samples.c - pointer -> (site, size) for sampled blocks.
 *
 * Design: the shadow (alloc_shadow.c) gives every 16-byte granule of the
 * heap an entry, a quarter of the heap's size, which exact mode fills
 * densely.  Sampled blocks are a few percent of all blocks but spread
 * over the whole heap, so they would make every shadow page resident
 * (a page fault each, about 1.6 us here, ~2% of an allocation-heavy run)
 * for very few entries.  They go into this table instead: open
 * addressing with linear probing and backward-shift deletion, grown by
 * doubling, one spin lock (sampled blocks come and go from any thread,
 * RAW and libc hooks without the GIL, but rarely: the hints of alloc.h
 * answer "not sampled" for every other free without coming here).
 */
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include "alloc.h"

#define MIN_BITS   12u     /* 4096 slots, 64 KiB                         */
#define MAX_BITS   24u     /* 16 Mi slots, 256 MiB: then blocks untracked */
#define SIZE_BITS  40u     /* sizes below 1 TiB                          */

typedef struct sample_slot {
    uintptr_t p;           /* 0: empty                                   */
    uint64_t site_size;    /* site << SIZE_BITS | size                   */
} sample_slot_t;

static sample_slot_t *tab;
static unsigned bits;      /* tab has 1 << bits slots                    */
static uint32_t used;
static int lock;

static void lock_table(void)
{
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void unlock_table(void)
{
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static uint32_t home_of(uintptr_t p, unsigned b)
{
    return (uint32_t)(((p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - b));
}

static size_t bytes_of(unsigned b)
{
    return sizeof(sample_slot_t) << b;
}

/* The slot holding p, or the empty slot that ends its probe chain. */
static uint32_t probe(uintptr_t p)
{
    uint32_t mask = (1u << bits) - 1, i = home_of(p, bits);
    while (tab[i].p && tab[i].p != p)
        i = (i + 1) & mask;
    return i;
}

/* Count one more (delta 1) or one fewer (-1) sampled block at p's hint;
 * a stuck counter never moves again (it may stand for more blocks than
 * it can count).  Only under the lock, so a plain read and store: the
 * frees reading it without the lock see the old or the new value. */
static void hint_add(const void *p, int delta)
{
    uint8_t *h = at_shadow_hint_of(p);
    uint8_t v = __atomic_load_n(h, __ATOMIC_RELAXED);
    if (v == AT_SHADOW_HINT_STUCK || (delta < 0 && v == 0))
        return;
    __atomic_store_n(h, (uint8_t)(v + delta), __ATOMIC_RELAXED);
}

/* Double the table (or make the first); -1 when it cannot grow. */
static int grow(void)
{
    unsigned nb = tab ? bits + 1 : MIN_BITS;
    if (nb > MAX_BITS)
        return -1;
    void *fresh = mmap(NULL, bytes_of(nb), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (fresh == MAP_FAILED)
        return -1;
    sample_slot_t *old = tab;
    unsigned ob = bits;
    tab = fresh, bits = nb;
    for (uint32_t i = 0; old && i < (1u << ob); i++)
        if (old[i].p)
            tab[probe(old[i].p)] = old[i];
    if (old)
        munmap(old, bytes_of(ob));
    return 0;
}

int at_samples_put(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize)
{
    uintptr_t a = (uintptr_t)p;
    int rc = 0;
    if (!a || size >> SIZE_BITS)
        return AT_SHADOW_FAILED;
    lock_table();
    if ((!tab || used + 1 > (1u << bits) / 2) && grow() < 0) {
        unlock_table();
        return AT_SHADOW_FAILED;
    }
    uint32_t i = probe(a);
    if (tab[i].p) {
        /* freed behind our back (hooks off for a while): settle it first */
        *osite = (uint32_t)(tab[i].site_size >> SIZE_BITS);
        *osize = (size_t)(tab[i].site_size & ((1ull << SIZE_BITS) - 1));
        rc = AT_SHADOW_STALE;
    } else {
        used++;
        hint_add(p, 1);      /* a stale entry's count carries over */
    }
    tab[i].p = a;
    tab[i].site_size = (uint64_t)site << SIZE_BITS | size;
    unlock_table();
    return rc;
}

/* Backward-shift deletion keeps every probe chain whole. */
static void remove_at(uint32_t i)
{
    uint32_t mask = (1u << bits) - 1;
    for (uint32_t j = (i + 1) & mask; tab[j].p; j = (j + 1) & mask) {
        uint32_t home = home_of(tab[j].p, bits);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tab[i] = tab[j];
            i = j;
        }
    }
    tab[i].p = 0;
    used--;
}

int at_samples_take(const void *p, uint32_t *site, size_t *size)
{
    uintptr_t a = (uintptr_t)p;
    int found = 0;
    lock_table();
    if (tab) {
        uint32_t i = probe(a);
        if (tab[i].p == a) {
            *site = (uint32_t)(tab[i].site_size >> SIZE_BITS);
            *size = (size_t)(tab[i].site_size & ((1ull << SIZE_BITS) - 1));
            remove_at(i);
            hint_add(p, -1);
            found = 1;
        }
    }
    unlock_table();
    return found;
}

/* Fork child: only this thread is left, and it tracks afresh. */
void at_samples_reset(void)
{
    if (tab)
        munmap(tab, bytes_of(bits));
    tab = NULL, bits = 0, used = 0, lock = 0;
}

void at_samples_usage(uint64_t *virt, uint64_t *resident)
{
    lock_table();
    *virt = tab ? bytes_of(bits) : 0;
    *resident = tab ? at_resident_bytes(tab, bytes_of(bits)) : 0;
    unlock_table();
}
