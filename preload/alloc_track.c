/* SPDX-License-Identifier: MIT */
/* alloc_track.c - memory that extensions report to tracemalloc
 * (PyTraceMalloc_Track) counted as Python memory, as tracemalloc counts it.
 *
 * numpy allocates its arrays' data with malloc and then calls
 * PyTraceMalloc_Track(389047, ptr, size): tracemalloc's statistics put
 * those bytes on the Python line that made the array.  Our malloc hook
 * sees the block first, as native memory; the call tells us it is Python
 * memory, and the block's record moves to a RAW site of the same line
 * (at_alloc_track_block), so the top at a marker is tracemalloc's.
 *
 * Why not export PyTraceMalloc_Track from the shim: on the static build
 * the executable defines it, and the executable comes before every
 * preloaded library in the lookup scope, so numpy would never call ours.
 * Instead, each loaded object's GOT slots for the symbol (PLT and
 * GLOB_DAT relocations) are pointed at our wrapper, which calls the real
 * function first: tracemalloc's own bookkeeping is unchanged.  Objects
 * are looked at when one is loaded: on every "import" audit event the
 * loader's load count is compared (one dl_iterate_phdr step), and only
 * objects not seen before are walked.  Arrays made by an extension's init
 * function before the next import stay native (a few small ones).
 * PyTraceMalloc_Untrack is wrapped the same way: the block stops being
 * Python memory there, as for tracemalloc, even when its free never
 * reaches our hooks (an allocator preloaded ahead of us: ASan's).
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "alloc.h"
#include "pyapi.h"
#include "shim.h"

#define SEEN_MAX 1024               /* objects remembered (bases)         */

typedef int (*track_fn)(unsigned int, uintptr_t, size_t);
typedef int (*untrack_fn)(unsigned int, uintptr_t);

static track_fn real_track;         /* the interpreter's own              */
static untrack_fn real_untrack;
static uintptr_t seen[SEEN_MAX];    /* load addresses already walked      */
static int nseen;
static unsigned long long seen_adds, seen_subs;  /* loader's counters     */

/* The wrapper the patched slots point to: any thread, maybe without the
 * GIL (the real one takes it itself). */
static int track(unsigned int domain, uintptr_t ptr, size_t size)
{
    /* a running tracemalloc records the block with a raw malloc of its
     * own (16 bytes): its bookkeeping, not the program's, as it is not
     * tracemalloc's either */
    at_in_shim++;
    int rc = real_track(domain, ptr, size);
    at_in_shim--;
    if (ptr)
        at_alloc_track_block((void *)ptr, size);
    return rc;
}

static int untrack(unsigned int domain, uintptr_t ptr)
{
    int rc = real_untrack(domain, ptr);
    if (ptr)
        at_alloc_untrack_block((void *)ptr);
    return rc;
}

/* The wrapper for a symbol name, or 0. */
static uintptr_t wrapper_of(const char *name)
{
    if (name[0] != 'P' || strncmp(name, "PyTraceMalloc_", 14) != 0)
        return 0;
    if (strcmp(name + 14, "Track") == 0)
        return (uintptr_t)&track;
    if (strcmp(name + 14, "Untrack") == 0)
        return (uintptr_t)&untrack;
    return 0;
}

static int was_seen(uintptr_t base)
{
    for (int i = 0; i < nseen; i++)
        if (seen[i] == base)
            return 1;
    if (nseen < SEEN_MAX)
        seen[nseen++] = base;
    return 0;
}

/* A d_ptr of the dynamic section: glibc relocates most in place, some
 * loaders do not; an address below the base is still an offset. */
static uintptr_t dyn_addr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
    return v < info->dlpi_addr ? info->dlpi_addr + v : v;
}

/* Write the slot; a slot in a RELRO range is read-only by now. */
static void patch_slot(const struct dl_phdr_info *info, uintptr_t slot, uintptr_t to)
{
    uintptr_t lo = 0, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
            lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            hi = lo + info->dlpi_phdr[i].p_memsz;
        }
    uintptr_t page = slot & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    int relro = slot >= lo && slot < hi;
    if (relro && mprotect((void *)page, 8, PROT_READ | PROT_WRITE) != 0)
        return;                     /* stays on the real function         */
    __atomic_store_n((uintptr_t *)slot, to, __ATOMIC_RELEASE);
    if (relro)
        mprotect((void *)page, 8, PROT_READ);
}

typedef struct dyn_tables {
    const ElfW(Sym) *sym;
    const char *str;
    const ElfW(Rela) *rel[2];       /* DT_JMPREL, DT_RELA                 */
    size_t nrel[2];
} dyn_tables_t;

static int dyn_tables(const struct dl_phdr_info *info, dyn_tables_t *t)
{
    const ElfW(Dyn) *d = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    memset(t, 0, sizeof(*t));
    for (; d && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: t->sym = (const ElfW(Sym) *)dyn_addr(info, d->d_un.d_ptr); break;
        case DT_STRTAB: t->str = (const char *)dyn_addr(info, d->d_un.d_ptr); break;
        case DT_JMPREL: t->rel[0] = (const ElfW(Rela) *)dyn_addr(info, d->d_un.d_ptr); break;
        case DT_PLTRELSZ: t->nrel[0] = d->d_un.d_val / sizeof(ElfW(Rela)); break;
        case DT_RELA: t->rel[1] = (const ElfW(Rela) *)dyn_addr(info, d->d_un.d_ptr); break;
        case DT_RELASZ: t->nrel[1] = d->d_un.d_val / sizeof(ElfW(Rela)); break;
        default: break;
        }
    }
    return t->sym && t->str ? 0 : -1;
}

/* Point the object's slots for PyTraceMalloc_Track/Untrack at ours. */
static void patch_object(const struct dl_phdr_info *info)
{
    dyn_tables_t t;
    if (dyn_tables(info, &t) < 0)
        return;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; t.rel[k] && i < t.nrel[k]; i++) {
            const ElfW(Rela) *r = &t.rel[k][i];
            unsigned long type = ELF64_R_TYPE(r->r_info), sym = ELF64_R_SYM(r->r_info);
            if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || !sym)
                continue;
            uintptr_t to = wrapper_of(t.str + t.sym[sym].st_name);
            if (to)
                patch_slot(info, info->dlpi_addr + r->r_offset, to);
        }
}

static int walk_one(struct dl_phdr_info *info, size_t size, void *self)
{
    (void)size;
    if (info->dlpi_addr == (uintptr_t)self || was_seen(info->dlpi_addr))
        return 0;                   /* the shim itself; one already done   */
    patch_object(info);
    return 0;
}

/* The first object's report carries the loader's counters: stop there. */
static int counters(struct dl_phdr_info *info, size_t size, void *out)
{
    unsigned long long *c = out;
    if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        return -1;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

void at_alloc_track_scan(void)
{
    if (!real_track || !real_untrack) {
        real_track = (track_fn)at_py_sym("PyTraceMalloc_Track");
        real_untrack = (untrack_fn)at_py_sym("PyTraceMalloc_Untrack");
        if (!real_track || !real_untrack)
            return;                 /* no slot is patched without both    */
    }
    unsigned long long c[2] = { 0, 0 };
    if (dl_iterate_phdr(counters, c) != 1 || (c[0] == seen_adds && c[1] == seen_subs))
        return;
    if (c[1] != seen_subs)
        nseen = 0;                  /* something unloaded: bases reused    */
    seen_adds = c[0], seen_subs = c[1];
    Dl_info self;
    if (!dladdr((void *)&track, &self))
        return;
    dl_iterate_phdr(walk_one, self.dli_fbase);
}
