/* SPDX-License-Identifier: MIT */
/* alloc_hooks.h - what alloc_hooks.c (the hooks) and alloc_layers.c (installing them) share: the PyMem layers.
 *
 * A layer is one set of our PyMem wrappers over whatever allocator was
 * in place (see alloc_hooks.c); alloc_layers.c installs a new one when
 * the feature starts and whenever tracemalloc wraps ours.  The hooks
 * reach their layer through the ctx pointer only. */
#ifndef AT_ALLOC_HOOKS_H
#define AT_ALLOC_HOOKS_H
#include "alloc.h"

#define PYMEM_RAW 0
#define PYMEM_MEM 1
#define PYMEM_OBJ 2
#define MAX_LAYERS 8

/* PyMemAllocatorEx, by layout (Python.h is not ours to include). */
typedef struct pymem_alloc {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} pymem_alloc_t;

/* `prev` first: a thread reading the domain's (function, ctx) pair while
 * it is being replaced may pair our function with tracemalloc's ctx (a
 * PyMemAllocatorEx pointing back at us), which then still works. */
typedef struct layer {
    pymem_alloc_t prev;
    /* Where sampled OBJ/MEM blocks come from: `prev`, or RAW's allocator
     * below us when this layer leaves pymalloc's free in place (see
     * over_plain_pymalloc). */
    const pymem_alloc_t *sampled_from;
    int use_pool;               /* sampled small blocks from alloc_pool.c */
    /* Another layer of ours is above this one (tracemalloc between): the
     * sampled wrappers' fast path sets no flag, so an inner layer cannot
     * tell a nested call from its own and must only pass through. */
    int nested;
    /* OBJ/MEM of the first layer, over plain pymalloc (see
     * over_plain_pymalloc). */
    int direct;
    /* The wrappers may skip the flag for small blocks: the layer below is
     * plain pymalloc (direct), which calls nothing of ours for them, and
     * no layer of ours is above (!nested).  Over anything else
     * (tracemalloc allocates its trace records with the RAW allocator)
     * every call raises the flag. */
    int fast;
} layer_t;

/* Our wrappers for one CPython version: OBJ/MEM in exact mode and in
 * sampled mode (alloc_layers.c may keep pymalloc's free in the latter),
 * RAW in both.  ctx is left NULL: each layer sets its own. */
typedef struct at_alloc_wrappers {
    pymem_alloc_t exact, sampled, raw;
} at_alloc_wrappers_t;

/* alloc_hooks.c: the wrappers compiled for F's version. */
const at_alloc_wrappers_t *at_alloc_hooks_wrappers(const at_alloc_fast_t *F) AT_HIDDEN;

#endif
