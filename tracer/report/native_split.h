/* SPDX-License-Identifier: MIT */
/* native_split.h - with --native, the samples whose leaf frame is native
 * code, by the library (shared object) that code is in, each with the
 * Python function that called into it most: where a program's time goes
 * below Python (OpenSSL in an extension, libc's qsort, numpy's BLAS). */
#ifndef AT_NATIVE_SPLIT_H
#define AT_NATIVE_SPLIT_H
#include <stdint.h>
#include <stdio.h>

#include "cli/options.h"
#include "json.h"
#include "session/stacks.h"

typedef struct at_native_lib {
    const char *library;      /* the leaf's module (file of its symbol)    */
    uint64_t samples;
    at_frame_t caller;        /* the commonest innermost Python frame above
                                 it; sym AT_SYM_NONE when there was none   */
    uint64_t caller_samples;
} at_native_lib_t;

/* The libraries of s's included stacks (o: --idle), most samples first,
 * into *out (malloc'd; library points into s).  The count, or -ENOMEM. */
int at_native_split(const at_stacks_t *s, const at_options_t *o, at_native_lib_t **out);

/* The table, at most top rows, shares of `total` thread-samples; and
 * the JSON array value "by_library". */
void at_native_split_text(const at_stacks_t *s, const at_native_lib_t *l, int n, int top, uint64_t total, FILE *out);
void at_native_split_json(const at_stacks_t *s, const at_native_lib_t *l, int n, uint64_t total, at_json_t *j);

#endif
