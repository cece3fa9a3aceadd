/* SPDX-License-Identifier: MIT */
/* py_proc.h - find the CPython 3.11 interpreter inside a running process.
 *
 * From /proc/PID/maps we take the executable and any libpython mapping,
 * open the mapped file (through /proc/PID/map_files or /proc/PID/root so
 * containers and deleted files work), read its ELF symbols with libelf
 * (.dynsym, then .symtab when present) and add the load bias.  Py_Version
 * (3.11+) tells the version; without it the file name does ("python3.10").
 * Only after interp->runtime == &_PyRuntime do we trust py311.h.
 */
#ifndef AT_PY_PROC_H
#define AT_PY_PROC_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "remote/remote.h"

/* Why at_py_proc_open failed, beyond plain -errno values:
 *   -ESRCH            no such process
 *   -EPERM / -EACCES  not allowed to read it
 *   -ENOEXEC          not a Python process
 *   -EPROTONOSUPPORT  a Python other than 3.11
 *   -EAGAIN           3.11, but the interpreter is not initialised yet
 *   -EPROTO           3.11, but the layout does not check out: refused */

typedef struct at_py_proc {
    pid_t pid;                 /* the target                                */
    at_remote_t mem;           /* its memory                                */
    char comm[32];             /* /proc/PID/comm                            */
    char path[PATH_MAX];       /* the file holding _PyRuntime, as mapped    */
    int shared;                /* 1: libpython3.11.so, 0: in the executable */
    uint64_t bias;             /* load bias of that file                    */
    uint64_t runtime;          /* &_PyRuntime in the target                 */
    uint64_t code_type;        /* &PyCode_Type, 0 when not exported         */
    uint64_t unicode_type;     /* &PyUnicode_Type                           */
    uint64_t bytes_type;       /* &PyBytes_Type                             */
    uint64_t eval_start;       /* _PyEval_EvalFrameDefault [start, end)     */
    uint64_t eval_end;
    unsigned long version_hex; /* Py_Version, e.g. 0x030b07f0               */
    char version[24];          /* "3.11.7"                                  */
} at_py_proc_t;

/* Locate the interpreter of `pid` and check it is a usable 3.11.  0, or
 * one of the codes above with a one-line reason in err (no "archtrace:"
 * prefix, no newline): "process 123 (bash) is not a Python process". */
int at_py_proc_open(at_py_proc_t *p, pid_t pid, char *err, size_t errlen);

/* Read _PyRuntime.interpreters.head and check head->runtime points back:
 * 0 (and *head), -EAGAIN when there is no interpreter yet, -EPROTO when
 * the back pointer is wrong, -ESRCH/-EPERM/-EFAULT from the read. */
int at_py_proc_check(at_py_proc_t *p, uint64_t *head, char *err, size_t errlen);

/* The AT_EXIT_* status for an error code of the two functions above. */
int at_py_proc_exit_status(int rc);

/* Up to size-1 bytes of /proc/PID/<name>, NUL-terminated (also on
 * failure); the count read, or -1 when it cannot be read (gone). */
ssize_t at_py_proc_read(pid_t pid, const char *name, char *buf, size_t size);

/* 1 when pid is missing or a zombie (it has exited), else 0. */
int at_py_proc_gone(pid_t pid);

/* "static" or "shared". */
const char *at_py_proc_build(const at_py_proc_t *p);

#endif
