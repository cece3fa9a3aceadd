/* SPDX-License-Identifier: MIT */
/* alloc_layers.c - installing our PyMem layers: the first when the feature starts, another whenever tracemalloc wraps ours.
 *
 * Cold code, kept apart from the hooks themselves (alloc_hooks.c): it
 * runs once per layer, with the GIL held, and reaches the wrappers only
 * through at_alloc_hooks_wrappers. */
#include <errno.h>
#include <string.h>
#include "alloc_hooks.h"
#include "shim.h"

static layer_t layers[MAX_LAYERS][3];
static int nlayers;

/* Whether the layer being installed is the first, over the default
 * allocators (pymalloc for OBJ and MEM, malloc for RAW).  Then small
 * blocks need no flag (fast), and sampled mode need not wrap OBJ and
 * MEM's free, a call for every object that dies, nearly all of them
 * unsampled (and Debian's PGO build inlines pymalloc's free into
 * PyObject_Free only while it is the one installed).  The few sampled
 * blocks are then taken from the pool (alloc_pool.c) or RAW's allocator
 * instead of pymalloc: pymalloc's free hands any block outside its arenas
 * to PyMem_RawFree, which our RAW layer wraps, so their frees are still
 * seen.  Only the first layer: over tracemalloc or the debug hooks a
 * block must be freed by the allocator that made it. */
static int over_plain_pymalloc(void)
{
    const char *(*current_name)(void) = (const char *(*)(void))at_py_sym("_PyMem_GetCurrentAllocatorName");
    if (nlayers != 1 || !current_name)
        return 0;
    const char *name = current_name();
    return name && strcmp(name, "pymalloc") == 0;
}

/* The fast table of the running version (alloc.c checked it), set when
 * the first layer is installed. */
static const at_alloc_fast_t *fast_table;

int at_alloc_hooks_install(void)
{
    static const int order[3] = { PYMEM_RAW, PYMEM_MEM, PYMEM_OBJ };
    if (nlayers >= MAX_LAYERS)
        return -ENOSPC;
    if (!fast_table && !(fast_table = at_alloc_fast_for_version()))
        return -ENOTSUP;
    const at_alloc_wrappers_t *ours = at_alloc_hooks_wrappers(fast_table);
    for (int k = 0; k < nlayers; k++)
        for (int d = 0; d < 3; d++)
            layers[k][d].nested = 1, layers[k][d].fast = 0;
    layer_t *L = layers[nlayers++];
    int direct = over_plain_pymalloc();
    for (int i = 0; i < 3; i++) {
        int d = order[i];
        pymem_alloc_t mine = d == PYMEM_RAW ? ours->raw : at_alloc.sampling ? ours->sampled : ours->exact;
        at_py.PyMem_GetAllocator(d, &L[d].prev);
        L[d].sampled_from = &L[d].prev;
        L[d].use_pool = 0;
        L[d].nested = 0;
        if (direct && d != PYMEM_RAW && at_alloc.sampling) {
            mine.free = L[d].prev.free;             /* pymalloc's: ignores ctx */
            L[d].sampled_from = &L[PYMEM_RAW].prev; /* RAW is installed first */
            L[d].use_pool = 1;
        }
        L[d].direct = L[d].fast = direct && d != PYMEM_RAW;
        mine.ctx = &L[d];
        at_py.PyMem_SetAllocator(d, &mine);
    }
    at_alloc.hdr->layers = (uint64_t)nlayers;
    return 0;
}

/* The layer whose OBJ entry is ctx is on top again (tracemalloc stopped
 * and put it back): it counts again, the layers above it are gone. */
static void outermost_again(void *ctx)
{
    for (int k = 0; k < nlayers; k++)
        if (ctx == &layers[k][PYMEM_OBJ])
            for (int d = 0; d < 3; d++)
                layers[k][d].nested = 0, layers[k][d].fast = layers[k][d].direct;
}

/* tracemalloc started or stopped.  Started after us, it now wraps our
 * layer: wrap it in turn.  Started before us (-X tracemalloc) and now
 * stopped, it put back the allocator it had wrapped and our layer above
 * it is gone: install a new one (seen at the next audit event, since no
 * hook of ours runs meanwhile). */
void at_alloc_tracemalloc_changed(void)
{
    at_alloc.tm_seen = *at_alloc.tm_tracing;
    at_alloc.tm_watch = 1;
    pymem_alloc_t cur;
    at_py.PyMem_GetAllocator(PYMEM_OBJ, &cur);
    const at_alloc_wrappers_t *ours = at_alloc_hooks_wrappers(fast_table);
    if (cur.malloc == ours->exact.malloc || cur.malloc == ours->sampled.malloc) {
        outermost_again(cur.ctx);
        return;
    }
    if (at_alloc_hooks_install() < 0)
        at_shim_note("alloc", "allocator layers used up: tracemalloc's own memory may be counted");
}
