/* SPDX-License-Identifier: MIT */
/* alloc_table.c - a locked pointer -> 64-bit value hash table (alloc.h).
 *
 * Design: open addressing with linear probing and backward-shift
 * deletion (no tombstones, so probe chains stay short however long the
 * program runs), mmap'd on first use and grown by doubling up to a bound.
 * One spin lock per table, which callers take around each operation:
 * these tables see only rare blocks (sampled, or of 16 KiB and more),
 * from any thread, with or without the GIL, inside allocator hooks where
 * nothing may call malloc.
 */
#include <string.h>
#include <sys/mman.h>
#include "alloc.h"

static uint32_t home_of(uintptr_t p, unsigned bits)
{
    return (uint32_t)(((p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static size_t bytes_of(unsigned bits)
{
    return sizeof(at_table_slot_t) << bits;
}

/* The slot holding p, or the empty slot that ends its probe chain. */
static uint32_t probe(const at_table_t *t, uintptr_t p)
{
    uint32_t mask = (1u << t->bits) - 1, i = home_of(p, t->bits);
    while (t->slot[i].p && t->slot[i].p != p)
        i = (i + 1) & mask;
    return i;
}

/* Double the table (or make the first); -1 when it cannot grow. */
static int grow(at_table_t *t)
{
    unsigned nb = t->slot ? t->bits + 1 : t->min_bits;
    if (nb > t->max_bits)
        return -1;
    void *fresh = mmap(NULL, bytes_of(nb), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (fresh == MAP_FAILED)
        return -1;
    at_table_slot_t *old = t->slot;
    unsigned ob = t->bits;
    t->slot = fresh, t->bits = nb;
    for (uint32_t i = 0; old && i < (1u << ob); i++)
        if (old[i].p)
            t->slot[probe(t, old[i].p)] = old[i];
    if (old)
        munmap(old, bytes_of(ob));
    return 0;
}

/* A new entry must leave the table at most load_pct % full. */
static int has_room(const at_table_t *t)
{
    return t->slot && (uint64_t)(t->used + 1) * 100 <= (uint64_t)t->load_pct << t->bits;
}

int at_table_put(at_table_t *t, uintptr_t p, uint64_t value, uint64_t *old)
{
    if (!p)
        return -1;
    uint32_t i = t->slot ? probe(t, p) : 0;
    if (t->slot && t->slot[i].p == p) {
        *old = t->slot[i].value;
        t->slot[i].value = value;
        return 1;
    }
    if (!has_room(t)) {
        if (grow(t) < 0 || !has_room(t))
            return -1;
        i = probe(t, p);
    }
    t->slot[i].p = p;
    t->slot[i].value = value;
    t->used++;
    return 0;
}

int at_table_take(at_table_t *t, uintptr_t p, uint64_t *value)
{
    if (!t->slot)
        return 0;
    uint32_t mask = (1u << t->bits) - 1, i = probe(t, p);
    if (t->slot[i].p != p)
        return 0;
    *value = t->slot[i].value;
    for (uint32_t j = (i + 1) & mask; t->slot[j].p; j = (j + 1) & mask) {
        uint32_t home = home_of(t->slot[j].p, t->bits);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i].p = 0;
    t->used--;
    return 1;
}

void at_table_reset(at_table_t *t)
{
    if (t->slot)
        munmap(t->slot, bytes_of(t->bits));
    t->slot = NULL, t->bits = 0, t->used = 0, t->lock = 0;
}

void at_table_usage(at_table_t *t, uint64_t *virt, uint64_t *resident)
{
    at_table_lock(t);
    *virt = t->slot ? bytes_of(t->bits) : 0;
    *resident = t->slot ? at_resident_bytes(t->slot, bytes_of(t->bits)) : 0;
    at_table_unlock(t);
}
