/* SPDX-License-Identifier: MIT */
/* attached.h - the <pid>.seg of a process archtrace attached to (-p PID).
 *
 * The shim writes a segment for every process it runs in; a process
 * recorded from outside has no shim, so the recorder writes one for it,
 * marked AT_SEG_ORIGIN_ATTACHED, so that reports list it like any other. */
#ifndef AT_ATTACHED_H
#define AT_ATTACHED_H
#include <stdint.h>
#include <sys/types.h>

typedef struct at_attached {
    pid_t pid;
    const char *version;      /* "3.11.7"                                  */
    unsigned long version_hex;
    int shared;               /* libpython3.11.so                          */
    uint64_t start_mono_ns;   /* recording began                           */
    uint64_t end_mono_ns;     /* recording ended                           */
    int exited;               /* the target exited while recorded          */
    unsigned features;        /* AT_FEAT_* recorded                        */
} at_attached_t;

/* Write dir/<pid>.seg from /proc/PID (argv, exe, ppid) and a.  0 or -errno. */
int at_attached_write_seg(const char *dir, const at_attached_t *a);

#endif
