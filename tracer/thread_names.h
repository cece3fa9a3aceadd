/* SPDX-License-Identifier: MIT */
/* thread_names.h - threading names of a sampled process's threads, kept
 * with its stacks (<pid>.stacks "tname TID NAME" lines) so reports and
 * flame graphs can say "thread 4843 "worker-0"" rather than a bare id. */
#ifndef AT_THREAD_NAMES_H
#define AT_THREAD_NAMES_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "py_names.h"
#include "py_proc.h"

#define AT_THREAD_NAMES_MAX 512   /* threads named; later ones stay bare */

typedef struct at_thread_names {
    at_py_thread_name_t *v;       /* AT_THREAD_NAMES_MAX, on first use    */
    uint32_t n;
    uint64_t active;              /* threading._active, once found        */
    uint64_t read_ns;             /* last read from the target            */
} at_thread_names_t;

void at_thread_names_free(at_thread_names_t *t);
/* Name tid (a later name replaces an earlier one).  0 or -ENOMEM. */
int at_thread_names_set(at_thread_names_t *t, uint32_t tid, const char *name);
/* tid's name, or NULL. */
const char *at_thread_names_get(const at_thread_names_t *t, uint32_t tid);
/* Read the target's names (see at_py_thread_names) when `every_ns` has
 * passed since the last read, and keep them.  Returns how many were read,
 * 0 when it was not time yet, or -errno. */
int at_thread_names_refresh(at_thread_names_t *t, at_py_proc_t *p, uint64_t now_ns, uint64_t every_ns);
/* "thread TID" or "thread TID "NAME"" into buf. */
const char *at_thread_names_label(const at_thread_names_t *t, uint32_t tid, char *buf, size_t n);
/* The file lines ("tname\tTID\tNAME", escaped) and reading one back
 * (fields after the tag, unescaped in place): 0 or -1 if malformed. */
void at_thread_names_save(const at_thread_names_t *t, FILE *f);
int at_thread_names_load(at_thread_names_t *t, const char *tid, char *name);

#endif
