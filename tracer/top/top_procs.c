/* SPDX-License-Identifier: MIT */
/* top_procs.c - the process tree under top's process (see top.h).
 *
 * One picture of /proc a refresh (remote/proc_tree.c): the root's
 * descendants breadth first, each with its CPU share.  A CPU share needs
 * two looks at the same pid: the first shows -1.
 */
#include "top/top.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote/proc_tree.h"
#include "remote/sampler.h"

static double cpu_share(at_top_tree_t *tree, const at_proc_row_t *r, uint64_t now)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    for (int i = 0; i < tree->nseen; i++) {
        at_top_cpu_seen_t *s = &tree->seen[i];
        if (s->pid != r->pid)
            continue;
        double wall = (double)(now - s->at_ns) / 1e9;
        double used = r->ticks >= s->ticks ? (double)(r->ticks - s->ticks) / (double)hz : 0;
        return wall > 0 ? 100.0 * used / wall : -1;
    }
    return -1;
}

int at_top_tree_list(at_top_tree_t *tree, pid_t root, at_top_proc_t *out, int cap)
{
    at_proc_row_t rows[AT_TOP_MAX_PROCS];
    int n = at_proc_tree(root, rows, cap < AT_TOP_MAX_PROCS ? cap : AT_TOP_MAX_PROCS);
    uint64_t now = at_now_ns();
    at_top_tree_t next = { .nseen = 0 };
    for (int k = 0; k < n; k++) {
        out[k] = (at_top_proc_t){ .pid = rows[k].pid, .ppid = rows[k].ppid, .cpu_pct = cpu_share(tree, &rows[k], now) };
        memcpy(out[k].comm, rows[k].comm, sizeof out[k].comm);
        next.seen[next.nseen++] = (at_top_cpu_seen_t){ rows[k].pid, rows[k].ticks, now };
    }
    *tree = next;
    return n;
}

pid_t at_top_tree_next(const at_top_proc_t *procs, int n, pid_t current)
{
    for (int i = 0; i < n; i++)
        if (procs[i].pid == current)
            return procs[(i + 1) % n].pid;
    return n ? procs[0].pid : 0;
}
