/* SPDX-License-Identifier: MIT */
/* pyversion.h - the layout of the CPython this shim runs in, chosen once.
 *
 * Design: the constructor reads Py_Version, picks that minor version's
 * at_pylayout_t (common/pylayout.h) and, from 3.13 on, checks the
 * interpreter's own _Py_DebugOffsets at _PyRuntime + 0 and takes the
 * offsets it gives; a free-threaded build is refused before anything is
 * read with the default build's layout.  Features copy what their hot
 * paths need into their own statics when they start, and read the rest
 * (slow paths: frame walks on a new site, thread names, the import
 * window) from at_pyl.  Nothing here is read per allocation or per GIL
 * handoff.
 */
#ifndef AT_PYVERSION_H
#define AT_PYVERSION_H
#include <stdint.h>
#include "py311.h"     /* AT_MAX_STACK_DEPTH: the walkers' shared limit */
#include "pylayout.h"

/* The running interpreter's table; valid once at_pyversion_choose said 0. */
extern at_pylayout_t at_pyl;

/* Choose the table for Py_Version `hex` (3.13+: validated against the
 * debug offsets at `runtime`).  0, or -ENOTSUP with *why set to a
 * one-line reason (another version, a free-threaded build, debug
 * offsets that do not check out). */
int at_pyversion_choose(uint32_t hex, const void *runtime, const char **why);

/* The current frame of a thread state (3.11/3.12 through _PyCFrame,
 * 3.13 directly), or 0. */
static inline uintptr_t at_pyl_current_frame(uintptr_t tstate)
{
    if (!tstate)
        return 0;
    if (at_pyl.tstate_current_frame != AT_PYLAYOUT_NONE)
        return *(const uintptr_t *)(tstate + at_pyl.tstate_current_frame);
    uintptr_t cf = *(const uintptr_t *)(tstate + at_pyl.tstate_cframe);
    return cf ? *(const uintptr_t *)(cf + at_pyl.cframe_current_frame) : 0;
}

/* A frame the C stack owns (3.12+: the interpreter's entry frame, no
 * Python code of its own; 3.13 keeps None in its f_executable). */
static inline int at_pyl_frame_is_cstack(uintptr_t f)
{
    return at_pyl.frame_owned_by_cstack != AT_PYLAYOUT_NONE &&
           *(const char *)(f + at_pyl.iframe_owner) == (char)at_pyl.frame_owned_by_cstack;
}

#endif
