/* SPDX-License-Identifier: MIT */
/* py_names.h - Python thread names (threading.Thread.name), read from outside.
 *
 * CPython 3.11 keeps no name in the thread state: the name lives on the
 * threading.Thread object, found in threading._active keyed by the
 * thread's ident (pthread_self, tstate->thread_id).  at_py_thread_names
 * walks sys.modules["threading"]._active in the target's memory and pairs
 * each name with the OS thread id of the thread state whose ident it is.
 * Every object is checked for its type before it is read; every loop is
 * bounded; anything unexpected ends the walk with what was found so far.
 */
#ifndef AT_PY_NAMES_H
#define AT_PY_NAMES_H
#include <stdint.h>

#include "remote/py_proc.h"
#include "session/thread_names.h"   /* AT_PY_NAME_MAX, and where names are kept */

typedef struct at_py_thread_name {
    uint32_t tid;                 /* OS thread id (native_thread_id)       */
    uint64_t ident;               /* threading.get_ident() (pthread_t)     */
    char name[AT_PY_NAME_MAX];    /* "MainThread", "worker-0", ...          */
} at_py_thread_name_t;

/* Names of the main interpreter's threads that the threading module
 * knows (a thread started with _thread.start_new_thread has none).
 * Returns how many were put in out[0..max), 0 when the program never
 * imported threading, or -errno (-ESRCH: the process is gone; -EFAULT,
 * -EPROTO: memory that does not look like 3.11's objects). */
int at_py_thread_names(at_py_proc_t *p, at_py_thread_name_t *out, int max);

/* The same, remembering where threading._active is in *cache (0 at
 * first) so that later calls skip the search through sys.modules. */
int at_py_thread_names_cached(at_py_proc_t *p, uint64_t *cache, at_py_thread_name_t *out, int max);

/* The same walk's pieces, for other readers of module globals
 * (`dump --asyncio`), each bounded as above and 0 when not found:
 * sys.modules[name].__dict__ of the main interpreter; dict[key] for a
 * str key (the dict scanned, not hashed); obj.name from an instance's
 * managed dict. */
uint64_t at_py_module_dict(at_py_proc_t *p, const char *name);
uint64_t at_py_dict_get_str(at_py_proc_t *p, uint64_t dict, const char *key);
uint64_t at_py_attr(at_py_proc_t *p, uint64_t obj, const char *name);
/* The values of a dict's live entries, in entry order, into out[0..max):
 * how many (0 when it is not a readable dict). */
int at_py_dict_values(at_py_proc_t *p, uint64_t dict, uint64_t *out, int max);

/* The name of thread tid in names[0..n), or NULL. */
const char *at_py_thread_name_of(const at_py_thread_name_t *names, int n, uint32_t tid);

/* Read the target's names (see at_py_thread_names) and keep them.
 * Returns how many were read, or -errno. */
int at_thread_names_read(at_thread_names_t *t, at_py_proc_t *p, uint64_t now_ns);

#endif
