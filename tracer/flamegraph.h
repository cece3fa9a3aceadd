/* SPDX-License-Identifier: MIT */
/* flamegraph.h - a self-drawn interactive SVG flame graph of a session's stacks.
 *
 * at_stacks_write_svg (declared in stacks.h) merges every <pid>.stacks of
 * a session into one tree (all > process > thread > frames, root at the
 * bottom), draws one <rect> per node with a width proportional to its
 * samples, a <title> with the full frame and counts for hovering, and a
 * small script that zooms into a node on click.
 */
#ifndef AT_FLAMEGRAPH_H
#define AT_FLAMEGRAPH_H
#include <stdint.h>
#include <stdio.h>

#define AT_FLAME_WIDTH   1200   /* px: readable on a 1200 px screen      */
#define AT_FLAME_ROW     17     /* px per frame row                      */

typedef struct at_flame at_flame_t;

at_flame_t *at_flame_new(const char *title);
void at_flame_free(at_flame_t *f);
/* Add `count` samples of a stack of labels, root first (kinds: 0 py,
 * 1 native, 2 marker/group, used for colours).  0 or -ENOMEM. */
int at_flame_add(at_flame_t *f, const char *const *labels, const int *kinds, int n, uint64_t count);
/* Write the SVG.  0 or -EIO. */
int at_flame_write(const at_flame_t *f, FILE *out);

#endif
