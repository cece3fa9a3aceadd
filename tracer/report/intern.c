/* SPDX-License-Identifier: MIT */
/* intern.c - a small open-addressing map from 64-bit keys to ids (see intern.h). */
#include <errno.h>
#include <stdlib.h>
#include "report/intern.h"

uint64_t at_intern_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int intern_grow(at_intern_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof *k), *v = calloc(cap, sizeof *v);
    if (!k || !v) {
        free(k), free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = at_intern_mix(m->keys[i]) & (cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = m->keys[i], v[j] = m->vals[i];
    }
    free(m->keys), free(m->vals);
    m->keys = k, m->vals = v, m->cap = cap;
    return 0;
}

/* The value of key (non-zero), or 0 after storing `fresh` for it. */
uint64_t at_intern_get(at_intern_t *m, uint64_t key, uint64_t fresh, int *added)
{
    *added = 0;
    if ((m->n + 1) * 2 > m->cap && intern_grow(m) < 0)
        return 0;
    size_t j = at_intern_mix(key) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (m->keys[j])
        return m->vals[j];
    m->keys[j] = key, m->vals[j] = fresh, m->n++;
    *added = 1;
    return fresh;
}

void at_intern_free(at_intern_t *m)
{
    free(m->keys), free(m->vals);
}

uint64_t at_intern_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h | 1;              /* never 0, the empty slot                     */
}

