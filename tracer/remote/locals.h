/* SPDX-License-Identifier: MIT */
/* locals.h - a Python frame's variables, read from outside (CPython 3.11-3.13).
 *
 * From 3.11 a frame keeps its arguments, locals, cells and free
 * variables in one array, _PyInterpreterFrame.localsplus, named by the
 * code object's co_localsplusnames and typed by co_localspluskinds
 * (CO_FAST_LOCAL / CELL / FREE, and 3.12's HIDDEN for an inlined
 * comprehension's own variables, shown only while bound, as locals()
 * shows them only while the comprehension runs).  The first co_argcount + co_kwonlyargcount (+1 for *args, +1 for
 * **kwargs) names are the arguments, in order.  A cell or free slot holds
 * a cell (once the frame has started: MAKE_CELL, COPY_FREE_VARS), whose
 * ob_ref is the value.  A NULL slot, or an empty cell, is unbound.
 *
 * Everything is re-read and checked here, nothing taken from the walk
 * but the frame's and its code object's addresses: the code's type, the
 * names tuple's and kinds bytes' types and lengths against
 * co_nlocalsplus, every name a str.  Values go through py_repr.c.
 */
#ifndef AT_LOCALS_H
#define AT_LOCALS_H
#include <stdint.h>

#include "remote/py_proc.h"

#define AT_LOCALS_MAX      256   /* variables shown per frame            */
#define AT_LOCAL_NAME_MAX  128   /* bytes of a name, NUL included        */

typedef enum at_local_kind {
    AT_LOCAL_ARG,            /* an argument (also when it is a cell)     */
    AT_LOCAL_LOCAL,          /* any other local                          */
    AT_LOCAL_CELL,           /* a local that inner functions close over  */
    AT_LOCAL_FREE,           /* a variable of an enclosing function      */
} at_local_kind_t;

typedef struct at_local {
    char name[AT_LOCAL_NAME_MAX];
    at_local_kind_t kind;
    int unbound;             /* no value yet (or deleted)                */
    int error;               /* 0, or -errno: its value was unreadable   */
    int truncated;           /* its repr was cut somewhere               */
    char type[64];           /* "int", "Point", "" when unbound/unreadable */
    char *repr;              /* short repr (malloc'd)                    */
    char *json;              /* its JSON value (malloc'd), NULL unless asked
                              * for, or unbound                          */
} at_local_t;

typedef struct at_frame_locals {
    int n;                   /* vars[0..n)                               */
    at_local_t *vars;        /* arguments first, in localsplus order     */
    int more;                /* variables past AT_LOCALS_MAX not shown (and
                              * slots past the first 1024 not read)      */
    char error[160];         /* "" or why none could be read (one line)  */
} at_frame_locals_t;

/* Read the variables of the frame at `frame` running the code object at
 * `code` (both from the walk) into *out, with JSON values when json is
 * set.  0, also when the frame's variables could not be read (out->error
 * then says why); -ESRCH when the process is gone; -ENOMEM. */
int at_locals_read(at_py_proc_t *p, uint64_t frame, uint64_t code, int json, at_frame_locals_t *out);

void at_locals_free(at_frame_locals_t *fl);

/* "arg", "local", "cell", "free". */
const char *at_local_kind_name(at_local_kind_t k);

#endif
