/* SPDX-License-Identifier: MIT */
/* intern.h - a small open-addressing map from non-zero 64-bit keys to ids,
 * for the renderers that number strings, functions and frames once
 * (pprof, speedscope).  Keys are hashes the caller makes; a collision of
 * two different things under one key is theirs to avoid (64 bits). */
#ifndef AT_INTERN_H
#define AT_INTERN_H
#include <stddef.h>
#include <stdint.h>

typedef struct at_intern {
    uint64_t *keys;            /* 0 = empty slot                             */
    uint64_t *vals;
    size_t cap, n;
} at_intern_t;

/* The id stored for key, or `fresh` after storing it (*added = 1).  0
 * when out of memory (ids the callers hand out are never 0). */
uint64_t at_intern_get(at_intern_t *m, uint64_t key, uint64_t fresh, int *added);
void at_intern_free(at_intern_t *m);

/* A non-zero 64-bit hash of a string, and a mixer for building keys. */
uint64_t at_intern_hash_str(const char *s);
uint64_t at_intern_mix(uint64_t x);

#endif
