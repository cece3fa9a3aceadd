/* SPDX-License-Identifier: MIT */
/* thread_split.h - per thread, how its samples split between running and
 * waiting (idle), and where it waited most: the leaf frame of its idle
 * samples (a socket read, a lock, a sleep). */
#ifndef AT_THREAD_SPLIT_H
#define AT_THREAD_SPLIT_H
#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "session/stacks.h"

typedef struct at_thread_split {
    uint32_t tid;
    uint64_t samples, idle;   /* every sample of the thread; the idle ones */
    at_frame_t idle_leaf;     /* the commonest leaf of its idle samples    */
    uint64_t idle_leaf_count; /* 0 when it was never idle                  */
} at_thread_split_t;

/* Every thread of s, most samples first, into *out (malloc'd).  The
 * count, or -ENOMEM. */
int at_thread_split(const at_stacks_t *s, at_thread_split_t **out);

/* The table ("by thread: running / waiting, where it waited"), at most
 * top rows; and the same as the JSON array value "by_thread". */
void at_thread_split_text(const at_stacks_t *s, const at_thread_split_t *t, int n, int top, FILE *out);
void at_thread_split_json(const at_stacks_t *s, const at_thread_split_t *t, int n, at_json_t *j);

#endif
