/* SPDX-License-Identifier: MIT */
/* bpf_tracefs.c - make sure uprobes can be created: the uprobe PMU, or tracefs mounted.
 *
 * libbpf creates uprobes through perf_event_open with the "uprobe" PMU
 * (/sys/bus/event_source/devices/uprobe/type) when the kernel has it and
 * falls back to tracefs's uprobe_events otherwise.  We mount tracefs at
 * /sys/kernel/tracing when it is absent and we are allowed to (as root,
 * so tools like `bpftool prog tracelog` work during a recording too); a
 * failed mount only matters when there is no uprobe PMU.
 */
#include "bpf/ebpf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define TRACEFS_MAGIC_NR 0x74726163       /* "trac", linux/magic.h         */
#define UPROBE_PMU "/sys/bus/event_source/devices/uprobe/type"
#define TRACEFS    "/sys/kernel/tracing"
#define DEBUGFS_TRACING "/sys/kernel/debug/tracing"

static int is_tracefs(const char *dir)
{
    struct statfs st;
    return statfs(dir, &st) == 0 && (unsigned long)st.f_type == TRACEFS_MAGIC_NR;
}

static int set_why(char *why, size_t n, int rc, const char *fmt, const char *what)
{
    if (why && n)
        snprintf(why, n, fmt, what);
    return rc;
}

int at_bpf_tracefs_ensure(char *why, size_t why_size)
{
    if (is_tracefs(TRACEFS) || is_tracefs(DEBUGFS_TRACING))
        return 0;
    int e = ENOENT;
    if (access(TRACEFS, F_OK) == 0) {
        if (mount("tracefs", TRACEFS, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0)
            return 0;
        e = errno;
    }
    if (access(UPROBE_PMU, R_OK) == 0)
        return 0;
    if (e == ENOENT)
        return set_why(why, why_size, -ENOENT,
                       "uprobes unavailable: the kernel has no uprobe PMU and no %s", TRACEFS);
    if (why && why_size)
        snprintf(why, why_size, "uprobes unavailable: cannot mount tracefs at %s: %s%s", TRACEFS,
                 strerror(e), e == EPERM ? " (run as root)" : "");
    return -e;
}
