/* SPDX-License-Identifier: MIT */
/* flamegraph.h - a self-drawn interactive SVG flame graph of a session's stacks.
 *
 * at_stacks_write_svg (declared in stacks.h) merges every <pid>.stacks of
 * a session into one tree (all > process > thread > frames, root at the
 * bottom), draws one <rect> per node with a width proportional to its
 * samples, a <title> with the full frame and counts for hovering, and a
 * small script that zooms into a node on click.  at_alloc_write_svg
 * (report_features.h) draws memory the same way: widths are bytes
 * allocated by stack (all > process > Python allocators | native malloc
 * > frames), from each process's <pid>.alloc.
 *
 * Every <g class="f"> carries data-x (offset), data-w (its count: samples
 * or bytes, exactly) and data-d (depth), so tools and tests can check
 * the drawing against the report's numbers.
 */
#ifndef AT_FLAMEGRAPH_H
#define AT_FLAMEGRAPH_H
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define AT_FLAME_WIDTH   1200   /* px: readable on a 1200 px screen      */
#define AT_FLAME_ROW     17     /* px per frame row                      */

typedef struct at_flame at_flame_t;

enum at_flame_unit {
    AT_FLAME_SAMPLES = 0,       /* counts are samples                     */
    AT_FLAME_BYTES,             /* counts are bytes (memory flame graph)  */
};

at_flame_t *at_flame_new(const char *title);
/* What counts are (AT_FLAME_SAMPLES by default): the hover text and the
 * subtitle say "samples" or bytes and blocks. */
void at_flame_set_unit(at_flame_t *f, enum at_flame_unit unit);
void at_flame_free(at_flame_t *f);
/* Add `count` samples of a stack of labels, root first (kinds: 0 py,
 * 1 native, 2 marker/group, used for colours).  0 or -ENOMEM. */
int at_flame_add(at_flame_t *f, const char *const *labels, const int *kinds, int n, uint64_t count);
/* The same, with the number of blocks these bytes came in (AT_FLAME_BYTES). */
int at_flame_add_blocks(at_flame_t *f, const char *const *labels, const int *kinds, int n,
                        uint64_t bytes, uint64_t blocks);
/* Total count at the root. */
uint64_t at_flame_total(const at_flame_t *f);
/* Write the SVG.  0 or -EIO. */
int at_flame_write(const at_flame_t *f, FILE *out);

/* The memory flame graph of the given pids (see report_features.h). */
struct at_options;
int at_alloc_write_svg(const char *dir, const pid_t *pids, size_t n, FILE *out,
                       const struct at_options *o);

/* Add the allocations of one process's <pid>.alloc (report_alloc.c).
 * 0, -ENOENT (no file), other -errno after one line on stderr. */
int at_alloc_flame_add(const char *dir, pid_t pid, at_flame_t *f);

/* XML text for an SVG: markup escaped, control characters and invalid
 * UTF-8 as '?' so the document always parses.  At most max characters,
 * ".." if cut. */
void at_svg_text(FILE *out, const char *s, size_t max);

#endif
