/* SPDX-License-Identifier: MIT */
/* report_alloc_int.h - what report_alloc.c (tables, JSON) and report_alloc_stacks.c (Chrome trace, folded stacks, flame graph) share. */
#ifndef AT_REPORT_ALLOC_INT_H
#define AT_REPORT_ALLOC_INT_H
#include <stdint.h>

#include "alloc_format.h"

/* A block count of the file (1/count_scale units when sampling) in blocks. */
static inline int64_t alloc_counts(const at_alloc_data_t *d, int64_t c)
{
    uint32_t scale = d->h->count_scale ? d->h->count_scale : 1;
    return scale == 1 ? c : (c + scale / 2) / scale;
}

#endif
