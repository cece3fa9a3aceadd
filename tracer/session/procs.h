/* SPDX-License-Identifier: MIT */
/* procs.h - the Python processes of a session, read from their <pid>.seg. */
#ifndef AT_PROCS_H
#define AT_PROCS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "segment_format.h"

#define AT_PROC_MAX_ARGS 64

typedef struct at_proc {
    pid_t pid, ppid;
    pid_t key;                       /* of its files (session.h): the pid,
                                        or pid and image for a program
                                        that exec'd another              */
    int state;                       /* AT_SEG_RUNNING/EXITED/REPLACED    */
    int complete;                    /* exit was seen (not killed)        */
    int forked;                      /* made by fork() without exec       */
    int attached;                    /* recorded from outside (-p PID)    */
    int supported;                   /* 3.11: features ran                */
    unsigned features;               /* AT_FEAT_* that started            */
    unsigned build;                  /* AT_BUILD_*                        */
    uint32_t hexversion;
    char version[64];
    char exe[256];
    char notes[AT_SEG_NOTES_MAX];
    int argc;
    char *argv[AT_PROC_MAX_ARGS];    /* into args                         */
    char args[AT_SEG_ARGV_MAX + 1];
    uint64_t audit_events;
    uint64_t start_realtime_ns, start_mono_ns, end_mono_ns;
    int exit_code;                   /* -1 unknown                        */
} at_proc_t;

typedef struct at_proc_list {
    at_proc_t *procs;                /* sorted by start time              */
    size_t count;
    size_t corrupt;                  /* segments rejected                 */
    size_t execed;                   /* segments of processes that exec'd */
} at_proc_list_t;

/* Read every <pid>.seg and <pid>-<n>.seg of dir.  0 or -errno (dir unreadable); corrupt
 * segments are counted and named on stderr, never fatal. */
int at_proc_list_load(const char *dir, at_proc_list_t *list);
void at_proc_list_free(at_proc_list_t *list);

/* Validate and decode one raw segment.  0 or -EINVAL. */
int at_proc_decode(const void *raw, size_t size, at_proc_t *p);

/* Wall seconds of a process, or -1 when it did not finish. */
double at_proc_wall_s(const at_proc_t *p);

/* "static" / "shared" / "unknown". */
const char *at_build_name(unsigned build);

#endif
