/* SPDX-License-Identifier: MIT */
/* gil_waits.h - where threads waited for the GIL: the innermost frames of
 * the samples that found a thread blocked in take_gil (the run sampler
 * marks them from the shim's live GIL table, AT_STACK_GIL_WAIT), counted
 * whether or not the view includes idle threads.  A sampled estimate of
 * where the waits happen; the shim's GIL table has their exact totals. */
#ifndef AT_GIL_WAITS_H
#define AT_GIL_WAITS_H
#include <stdio.h>

#include "json.h"
#include "session/stacks.h"

/* A few lines under the samples (nothing when no sample waited). */
void at_gil_waits_text(const at_stacks_t *s, int top, FILE *out);
/* "gil_wait_samples" and "gil_waits": [{"frame", "samples"}], most first. */
void at_gil_waits_json(const at_stacks_t *s, at_json_t *j);

#endif
