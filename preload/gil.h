/* SPDX-License-Identifier: MIT */
/* gil.h - what gil.c (pthread interposition, accounting) and gil_names.c
 * (thread names, scheduler statistics) share inside the shim. */
#ifndef AT_GIL_H
#define AT_GIL_H
#include <stdint.h>
#include "gil_format.h"
#include "pyapi.h"
#include "pyversion.h"

/* glibc x86_64 pthread_mutex_t: `int __kind` at +16.  CPython creates the
 * GIL mutexes with default attributes, so the type bits are 0: a cheap
 * sign that the offsets really point at mutexes. */
#define AT_GLIBC_MUTEX_KIND   16
#define AT_GLIBC_MUTEX_KIND_TYPE_MASK 0x3

/* Thread table of the running accounting (NULL when off). */
at_gil_header_t *at_gil_header(void);
at_gil_thread_t *at_gil_slots(void);

/* Give the live thread `tid` a name (the threading.Thread name): 0, or
 * -ENOENT when no slot has that tid. */
int at_gil_set_name(uint32_t tid, const char *name);

/* /proc/self/task/<tid>/schedstat: out[0] ns on a CPU, out[1] ns runnable
 * waiting for a CPU, out[2] times scheduled in.  0 or -errno; keeps errno. */
int at_gil_schedstat(uint32_t tid, uint64_t out[3]);

/* gil_names.c.  From on_take (this thread has just taken the GIL, its
 * state is not current yet: raw reads only): if its oldest frame is
 * threading's Thread._bootstrap, keep the Thread for naming.  1 when the
 * thread needs no more probing, 0 when it has no Python frame yet. */
int at_gil_names_probe(uintptr_t tstate);
/* With the GIL held in Python context (audit hook, atexit). */
void at_gil_names_audit(const char *event, PyObject *args);
void at_gil_names_exit(void);      /* resolve every name we can, drop refs */
/* In a fork child (no Python API): forget the parent's pending objects. */
void at_gil_names_fork_child(void);

#endif
