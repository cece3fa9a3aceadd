/* SPDX-License-Identifier: MIT */
/* alloc_pool.c - where sampled small OBJ/MEM blocks live, record in front.
 *
 * Design: in sampled mode over plain pymalloc (see leave_free_to_pymalloc
 * in alloc_hooks.c) a sampled block must come from outside pymalloc's
 * arenas, so that pymalloc's free, which we leave in place, hands it to
 * PyMem_RawFree, which we wrap.  Taking those blocks from libc malloc and
 * keeping their records in the locked table of alloc_samples.c cost ~880
 * instructions a sampled block (malloc, the table's lock and hash twice,
 * libc free behind our free hook).  This pool serves them instead: one
 * reserved mapping, carved by bumping and reused through a free list per
 * 16-byte size class, each block preceded by its record (site, size), so
 * a free is a range check, a load and a push.
 *
 * Every call is made with the GIL held: sampled OBJ/MEM blocks are made by
 * PyObject_Malloc / PyMem_Malloc and reach us again only through
 * PyObject_Free / PyObject_Realloc (and the PyMem_ ones), which all need
 * it.  So no lock.  A block handed to another domain's free by a buggy
 * extension would crash plain pymalloc just the same.
 *
 * Fork: the child keeps the parent's blocks (memory is copied) but not
 * their accounting; a generation number in each record tells the child
 * which blocks are its own to subtract.
 */
#include <string.h>
#include <sys/mman.h>
#include "alloc.h"

#define POOL_BYTES   (64u << 20)        /* reserved, filled on demand    */
#define CLASS_SHIFT  4u
#define CLASSES      (AT_POOL_MAX >> CLASS_SHIFT)

/* In front of every block: 16 bytes keep pymalloc's alignment. */
typedef struct pool_rec {
    uint32_t site;              /* AT_POOL_UNTRACKED: not counted        */
    uint32_t size;              /* bytes asked for                       */
    uint32_t gen;               /* pool generation that counted it       */
    uint32_t cls;               /* size class: (slot bytes >> 4) - 1     */
} pool_rec_t;

#define AT_POOL_UNTRACKED UINT32_MAX

uintptr_t at_pool_lo, at_pool_hi;       /* [lo, hi): carved so far        */
static unsigned char *base;
static size_t used;
static uint32_t gen;
static void *free_list[CLASSES];
static int failed;                      /* the mapping was refused        */

static int pool_map(void)
{
    if (failed)
        return -1;
    void *p = mmap(NULL, POOL_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        failed = 1;
        return -1;
    }
    base = p;
    at_pool_lo = at_pool_hi = (uintptr_t)p;
    return 0;
}

static pool_rec_t *rec_of(void *p)
{
    return (pool_rec_t *)p - 1;
}

void *at_pool_alloc(size_t n, uint32_t site)
{
    if (n == 0)
        n = 1;
    if (n > AT_POOL_MAX || (!base && pool_map() < 0))
        return NULL;
    uint32_t cls = (uint32_t)((n - 1) >> CLASS_SHIFT);
    void *p = free_list[cls];
    if (p) {
        memcpy(&free_list[cls], p, sizeof(void *));
    } else {
        size_t slot = sizeof(pool_rec_t) + ((size_t)(cls + 1) << CLASS_SHIFT);
        if (used + slot > POOL_BYTES)
            return NULL;
        p = base + used + sizeof(pool_rec_t);
        used += slot;
        __atomic_store_n(&at_pool_hi, (uintptr_t)(base + used), __ATOMIC_RELAXED);
    }
    *rec_of(p) = (pool_rec_t){ site, (uint32_t)n, gen, cls };
    return p;
}

size_t at_pool_size(void *p)
{
    return rec_of(p)->size;
}

int at_pool_release(void *p, uint32_t *site, size_t *size)
{
    pool_rec_t *r = rec_of(p);
    int tracked = r->site != AT_POOL_UNTRACKED && r->gen == gen;
    *site = r->site;
    *size = r->size;
    r->site = AT_POOL_UNTRACKED;
    uint32_t cls = r->cls < CLASSES ? r->cls : CLASSES - 1;
    memcpy(p, &free_list[cls], sizeof(void *));
    free_list[cls] = p;
    return tracked;
}

void at_pool_fork_child(void)
{
    gen++;
}

void at_pool_usage(uint64_t *virt, uint64_t *resident)
{
    *virt = base ? POOL_BYTES : 0;
    *resident = base ? at_resident_bytes(base, used) : 0;
}
