/* SPDX-License-Identifier: MIT */
/* proc_tree.h - a process and its descendants, from /proc.
 *
 * One pass over every /proc/PID/stat gives each live process its parent,
 * name and CPU ticks; the tree under a root is then taken breadth first
 * from that one picture, so a process is listed once even while others
 * fork and exit around the pass.  Zombies, and processes that vanish
 * between the listing and the read, are left out.  Used by `top` (the
 * tree it shows) and by `dump`/`record --subprocesses` (the processes
 * they follow, whatever the root runs).
 */
#ifndef AT_PROC_TREE_H
#define AT_PROC_TREE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct at_proc_row {
    pid_t pid, ppid;
    char comm[32];            /* /proc comm, as the process set it         */
    uint64_t ticks;           /* utime + stime, in clock ticks             */
    uint64_t starttime;       /* since boot, in ticks: with pid, one process */
} at_proc_row_t;

/* Every live process: a malloc'd array of *count rows, NULL on failure. */
at_proc_row_t *at_proc_scan(size_t *count);

/* root (when alive) and its descendants, breadth first, copied from
 * rows[0..count) into out[0..cap).  Returns how many: 0 when root is gone. */
int at_proc_descendants(const at_proc_row_t *rows, size_t count, pid_t root, at_proc_row_t *out, int cap);

/* Both steps at once. */
int at_proc_tree(pid_t root, at_proc_row_t *out, int cap);

#endif
