/* SPDX-License-Identifier: MIT */
/* alloc_samples.c - pointer -> (site, size) for sampled blocks.
 *
 * Design: the shadow (alloc_shadow.c) gives every 16-byte granule of the
 * heap an entry, a quarter of the heap's size, which exact mode fills
 * densely.  Sampled blocks are a few percent of all blocks but spread
 * over the whole heap, so they would make every shadow page resident
 * (a page fault each, about 1.6 us here, ~2% of an allocation-heavy run)
 * for very few entries.  They go into a table of alloc_table.c instead
 * (sampled blocks come and go from any thread, RAW and libc hooks without
 * the GIL, but rarely: the hints of alloc.h answer "not sampled" for
 * every other free without coming here).
 */
#include "alloc.h"

#define SIZE_BITS  40u     /* sizes below 1 TiB                          */

/* 4096 slots (64 KiB) first, up to 16 Mi (256 MiB): then blocks untracked */
static at_table_t table = { .min_bits = 12, .max_bits = 24, .load_pct = 50 };

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

static void decode(uint64_t value, uint32_t *site, size_t *size)
{
    *site = (uint32_t)(value >> SIZE_BITS);
    *size = (size_t)(value & ((1ull << SIZE_BITS) - 1));
}

int at_samples_put(const void *p, uint32_t site, size_t size, uint32_t *osite, size_t *osize)
{
    uint64_t old;
    if (size >> SIZE_BITS)
        return AT_SHADOW_FAILED;
    at_table_lock(&table);
    int rc = at_table_put(&table, (uintptr_t)p, (uint64_t)site << SIZE_BITS | size, &old);
    if (rc == 0)
        hint_add(p, 1);     /* a stale entry's count carries over */
    at_table_unlock(&table);
    if (rc < 0)
        return AT_SHADOW_FAILED;
    if (rc == 1) {           /* freed behind our back (hooks off for a while) */
        decode(old, osite, osize);
        return AT_SHADOW_STALE;
    }
    return 0;
}

int at_samples_take(const void *p, uint32_t *site, size_t *size)
{
    uint64_t value;
    at_table_lock(&table);
    int found = at_table_take(&table, (uintptr_t)p, &value);
    if (found)
        hint_add(p, -1);
    at_table_unlock(&table);
    if (found)
        decode(value, site, size);
    return found;
}

/* Fork child: only this thread is left, and it tracks afresh. */
void at_samples_reset(void)
{
    at_table_reset(&table);
    at_pool_fork_child();
}

void at_samples_usage(uint64_t *virt, uint64_t *resident)
{
    uint64_t pv, pr;
    at_table_usage(&table, virt, resident);
    at_pool_usage(&pv, &pr);
    *virt += pv;
    *resident += pr;
}
