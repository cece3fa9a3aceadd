/* SPDX-License-Identifier: MIT */
/* segment_format.h - <pid>.seg: one per Python process of a session.
 *
 * Written by the shim through a shared mapping (so it survives a SIGKILL
 * of the target or of archtrace), read by the report.  Fixed size; every
 * string is NUL-terminated within its field (the reader re-terminates
 * anyway: the file may be corrupt).  Feature data lives in sibling files
 * <pid>.<feature>, each with its own header.
 */
#ifndef AT_SEGMENT_FORMAT_H
#define AT_SEGMENT_FORMAT_H
#include <stdint.h>

#define AT_SEG_MAGIC    0x47455354u /* "TSEG" little-endian            */
#define AT_SEG_VERSION  1u

/* state */
#define AT_SEG_RUNNING  1u          /* the process is (or was) running   */
#define AT_SEG_EXITED   2u          /* it exited through exit/_exit      */
#define AT_SEG_EXECED   3u          /* a forked copy that exec'd at once:
                                       nothing of its own, not reported  */
#define AT_SEG_REPLACED 4u          /* a program that ran Python, then
                                       exec'd another: reported, its
                                       files renamed <pid>-<n>.<kind> by
                                       the next Python image of the pid  */

/* origin: who wrote the segment */
#define AT_SEG_ORIGIN_SHIM     0u   /* the shim, inside the process      */
#define AT_SEG_ORIGIN_ATTACHED 1u   /* archtrace -p PID, from outside:
                                       start/end are the recording's     */
/* build */
#define AT_BUILD_UNKNOWN 0u
#define AT_BUILD_STATIC  1u         /* libpython linked into the exe     */
#define AT_BUILD_SHARED  2u         /* libpython3.11.so                  */

/* A program that exec'd another Python keeps its files as
 * <pid>-<n>.<kind>, n = 1..AT_SEG_IMAGE_MAX in exec order; the newest
 * program of a pid has <pid>.<kind>. */
#define AT_SEG_IMAGE_MAX 511

#define AT_SEG_ARGV_MAX  4096
#define AT_SEG_NOTES_MAX 1024

typedef struct at_seg_header {
    uint32_t magic;                 /* AT_SEG_MAGIC                      */
    uint32_t version;               /* AT_SEG_VERSION                    */
    uint32_t size;                  /* sizeof(at_seg_header_t)           */
    uint32_t state;                 /* AT_SEG_*                          */
    int32_t pid;                    /* this process                      */
    int32_t ppid;                   /* its parent at start (or at fork)  */
    uint64_t start_realtime_ns;     /* CLOCK_REALTIME at start           */
    uint64_t start_mono_ns;         /* CLOCK_MONOTONIC at start          */
    uint64_t end_mono_ns;           /* at exit, 0 while running/killed   */
    uint32_t python_hexversion;     /* PY_VERSION_HEX (Py_Version)       */
    uint32_t build;                 /* AT_BUILD_*                        */
    uint32_t supported;             /* 1 when 3.11 and hooks went in     */
    uint32_t features;              /* AT_FEAT_* that started            */
    uint64_t audit_events;          /* audit events seen by our hook     */
    uint32_t forked;                /* 1: made by fork() of a Python     */
    int32_t exit_code;              /* from exit/_exit, -1 unknown       */
    uint32_t argv_len;              /* bytes used in argv                */
    uint32_t origin;                /* AT_SEG_ORIGIN_*                   */
    char python_version[64];        /* "3.11.2"                          */
    char exe[256];                  /* /proc/self/exe at start           */
    char argv[AT_SEG_ARGV_MAX];     /* NUL-separated, like /proc/cmdline */
    char notes[AT_SEG_NOTES_MAX];   /* "feature: why" lines              */
} at_seg_header_t;

#endif
