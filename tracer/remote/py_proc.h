/* SPDX-License-Identifier: MIT */
/* py_proc.h - find the CPython interpreter (3.11, 3.12, 3.13) inside a running process.
 *
 * From /proc/PID/maps we take the executable and any libpython mapping,
 * open the mapped file (through /proc/PID/map_files or /proc/PID/root so
 * containers and deleted files work), read its ELF symbols with libelf
 * (.dynsym, then .symtab when present) and add the load bias.  Py_Version
 * (3.11+) tells the version; without it the file name does ("python3.10").
 * The version picks the layout table once (common/pylayout.h); from 3.13
 * the target's own _Py_DebugOffsets, validated as untrusted memory, take
 * the place of the table's offsets.  A free-threaded build is refused.
 * Only after interp->runtime == &_PyRuntime do we trust the table.
 */
#ifndef AT_PY_PROC_H
#define AT_PY_PROC_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pylayout.h"
#include "remote/remote.h"

/* The most a reader copies of one struct at once into a buffer of its
 * own: a layout whose offsets lie past these is refused (a 3.13 layout
 * takes offsets from the target's memory, which may be anything). */
#define AT_READ_FRAME        72   /* _PyInterpreterFrame through owner     */
#define AT_READ_CODE_MAX     256  /* PyCodeObject up to co_code_adaptive   */
#define AT_READ_TSTATE_MAX   256  /* PyThreadState through the fields used */
#define AT_READ_INTERP_MAX   256  /* PyInterpreterState: next .. runtime   */
#define AT_READ_RT_MAX       512  /* _PyRuntime: interpreters (3.11: + GIL) */
#define AT_READ_GIL_MAX      64   /* struct _gil_runtime_state's counters  */
#define AT_READ_STR_HEAD_MAX 72   /* PyCompactUnicodeObject                */
#define AT_READ_LONG_HEAD_MAX 32  /* PyLongObject up to its digits         */
#define AT_READ_VALUE_HEAD_MAX 64 /* tuple, list, float, cell, set, dict    */

/* Why at_py_proc_open failed, beyond plain -errno values:
 *   -ESRCH            no such process
 *   -EPERM / -EACCES  not allowed to read it
 *   -ENOEXEC          not a Python process
 *   -EPROTONOSUPPORT  a Python archtrace has no table for (3.10, 3.14),
 *                     or a free-threaded build (3.13t)
 *   -EAGAIN           supported, but the interpreter is not initialised yet
 *   -EPROTO           supported, but the layout does not check out: refused */

/* Builtin types and singletons whose addresses `dump --locals` compares
 * an object's type (or the object) with; the symbols are exported by
 * every supported build, static or shared (PyAPI_DATA). */
typedef enum at_pysym {
    AT_PYSYM_LONG_TYPE,      /* PyLong_Type                               */
    AT_PYSYM_BOOL_TYPE,      /* PyBool_Type                               */
    AT_PYSYM_FLOAT_TYPE,     /* PyFloat_Type                              */
    AT_PYSYM_TUPLE_TYPE,     /* PyTuple_Type                              */
    AT_PYSYM_LIST_TYPE,      /* PyList_Type                               */
    AT_PYSYM_DICT_TYPE,      /* PyDict_Type                               */
    AT_PYSYM_SET_TYPE,       /* PySet_Type                                */
    AT_PYSYM_FROZENSET_TYPE, /* PyFrozenSet_Type                          */
    AT_PYSYM_CELL_TYPE,      /* PyCell_Type                               */
    AT_PYSYM_NONE,           /* _Py_NoneStruct: None itself               */
    AT_PYSYM_TRUE,           /* _Py_TrueStruct                            */
    AT_PYSYM_FALSE,          /* _Py_FalseStruct                           */
    AT_PYSYM_CORO_TYPE,      /* PyCoro_Type: what `dump --asyncio` follows */
    AT_PYSYM_GEN_TYPE,       /* PyGen_Type (a @types.coroutine generator) */
    AT_PYSYM_COUNT
} at_pysym_t;

/* The symbol name of each at_pysym_t ("PyLong_Type", ...). */
extern const char *const at_pysym_names[AT_PYSYM_COUNT];

typedef struct at_py_proc {
    pid_t pid;                 /* the target                                */
    at_remote_t mem;           /* its memory                                */
    char comm[32];             /* /proc/PID/comm                            */
    char path[PATH_MAX];       /* the file holding _PyRuntime, as mapped    */
    int shared;                /* 1: libpython3.X.so, 0: in the executable  */
    uint64_t bias;             /* load bias of that file                    */
    uint64_t runtime;          /* &_PyRuntime in the target                 */
    uint64_t code_type;        /* &PyCode_Type, 0 when not exported         */
    uint64_t unicode_type;     /* &PyUnicode_Type                           */
    uint64_t bytes_type;       /* &PyBytes_Type                             */
    uint64_t known[AT_PYSYM_COUNT]; /* addresses of at_pysym_t, 0 = not found */
    uint64_t eval_start;       /* _PyEval_EvalFrameDefault [start, end)     */
    uint64_t eval_end;
    unsigned long version_hex; /* Py_Version, e.g. 0x030b07f0               */
    char version[24];          /* "3.11.7"                                  */
    at_pylayout_t layout;      /* its offsets, chosen once at open: the
                                * version's table, on 3.13 with the
                                * target's debug offsets applied (a copy,
                                * so the struct may be copied)             */
} at_py_proc_t;

/* Locate the interpreter of `pid` and check it is a supported version
 * (3.11 to 3.13, not free-threaded), choosing p->layout.  0, or
 * one of the codes above with a one-line reason in err (no "archtrace:"
 * prefix, no newline): "process 123 (bash) is not a Python process". */
int at_py_proc_open(at_py_proc_t *p, pid_t pid, char *err, size_t errlen);

/* Read _PyRuntime.interpreters.head and check head->runtime points back:
 * 0 (and *head), -EAGAIN when there is no interpreter yet, -EPROTO when
 * the back pointer is wrong, -ESRCH/-EPERM/-EFAULT from the read. */
int at_py_proc_check(at_py_proc_t *p, uint64_t *head, char *err, size_t errlen);

/* Choose p->layout for p->version_hex (set, with p->pid and p->path, by
 * the caller) from the table of that version; from 3.13, dbg is the
 * dbg_len bytes read at the target's _PyRuntime.debug_offsets (untrusted:
 * validated by at_pylayout_apply_debug), NULL when they could not be read.
 * No I/O, so tests feed it fabricated blocks.  0, or with a one-line
 * reason in err: -EPROTONOSUPPORT for a version without a table or a
 * free-threaded build (by its debug offsets or its file name, "python3.13t"),
 * -EPROTO for debug offsets that do not check out. */
int at_py_proc_pick_layout(at_py_proc_t *p, const void *dbg, size_t dbg_len, char *err, size_t errlen);

/* 1 when every offset of L fits the reads above (and the few facts the
 * readers take together, such as a dict's keys and values words, are
 * where they expect them), else 0. */
int at_py_proc_layout_fits(const at_pylayout_t *L);

/* "3.11 to 3.13" into buf: the versions archtrace has a table for. */
const char *at_py_proc_supported(char *buf, size_t size);

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
