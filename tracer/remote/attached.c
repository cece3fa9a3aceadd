/* SPDX-License-Identifier: MIT */
/* attached.c - write the segment of a process recorded from outside. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "remote/attached.h"
#include "remote/py_proc.h"
#include "segment_format.h"
#include "session/session.h"

/* The parent from /proc/PID/stat: the field after the last ')'. */
static pid_t read_ppid(pid_t pid)
{
    char stat[512];
    if (at_py_proc_read(pid, "stat", stat, sizeof stat) <= 0)
        return 0;
    const char *rp = strrchr(stat, ')');
    int ppid = 0;
    return rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 ? (pid_t)ppid : 0;
}

static void fill_from_proc(at_seg_header_t *h, pid_t pid)
{
    ssize_t n = at_py_proc_read(pid, "cmdline", h->argv, sizeof h->argv);
    h->argv_len = n > 0 ? (uint32_t)n : 0;
    char exe[64];
    snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
    ssize_t len = readlink(exe, h->exe, sizeof h->exe - 1);
    h->exe[len > 0 ? len : 0] = '\0';
    h->ppid = read_ppid(pid);
}

/* Realtime of the recording's start, from the monotonic clock now. */
static uint64_t realtime_of(uint64_t mono_ns)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t now_rt = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
    uint64_t now_mono = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    return now_rt - (now_mono > mono_ns ? now_mono - mono_ns : 0);
}

int at_attached_write_seg(const char *dir, const at_attached_t *a)
{
    at_seg_header_t *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    *h = (at_seg_header_t){
        .magic = AT_SEG_MAGIC, .version = AT_SEG_VERSION, .size = sizeof *h,
        .state = a->exited ? AT_SEG_EXITED : AT_SEG_RUNNING, .pid = a->pid,
        .start_realtime_ns = realtime_of(a->start_mono_ns), .start_mono_ns = a->start_mono_ns,
        .end_mono_ns = a->end_mono_ns, .python_hexversion = (uint32_t)a->version_hex,
        .build = a->shared ? AT_BUILD_SHARED : AT_BUILD_STATIC, .supported = 1,
        .features = a->features, .exit_code = -1, .origin = AT_SEG_ORIGIN_ATTACHED,
    };
    snprintf(h->python_version, sizeof h->python_version, "%s", a->version ? a->version : "");
    fill_from_proc(h, a->pid);
    FILE *f = at_session_create_file(dir, a->pid, "seg");
    int rc = f ? 0 : -errno;
    if (f && fwrite(h, sizeof *h, 1, f) != 1)
        rc = -EIO;
    if (f && fclose(f) != 0 && rc == 0)
        rc = -errno;
    free(h);
    return rc;
}
