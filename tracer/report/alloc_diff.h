/* SPDX-License-Identifier: MIT */
/* alloc_diff.h - `archtrace report --diff A B [DIR]`: how Python memory
 * changed between two allocation snapshots, by file:line, as
 * tracemalloc's Snapshot.compare_to(old, "lineno") prints it.
 *
 * A and B each name a snapshot: a marker label (sys.audit(
 * "archtrace.snapshot", NAME)), "peak" or "exit", of the session DIR; or
 * SESSION:NAME, a snapshot of another session; or a session directory
 * alone, its exit snapshot.  One session: every process that has both
 * snapshots; two sessions: the first process of each with allocation
 * data.  Lines are sorted as compare_to sorts them: by the size change's
 * magnitude, then size, then the count change's, then count.
 */
#ifndef AT_ALLOC_DIFF_H
#define AT_ALLOC_DIFF_H
#include "cli/options.h"

/* Print the difference (text to stdout, or JSON with --format json / to
 * --json FILE).  0; -ENOENT when no process has both snapshots (said on
 * stderr); other -errno. */
int at_alloc_diff(const at_options_t *o);

/* `report --leaks [--leaks-since NAME] DIR`: per process, the lines whose
 * live memory grew from the snapshot NAME (without it: from nothing, so
 * everything still live) to the exit snapshot, Python and native apart,
 * biggest growth first.  A net figure by line: a block allocated before
 * NAME and freed after it offsets one allocated after it on the same
 * line.  0; -ENOENT when no process has the snapshots (said); -errno. */
int at_alloc_leaks(const at_options_t *o);

#endif
