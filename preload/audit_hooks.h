/* SPDX-License-Identifier: MIT */
/* audit_hooks.h - adding the shim's runtime audit hooks, and keeping
 * CPython from freeing their list entries with the wrong allocator.
 *
 * The shim adds its hooks from constructors, before Py_Initialize, so
 * CPython allocates their list entries with the allocator of that moment
 * (malloc).  At exit, _PySys_ClearAuditHooks frees every entry with the
 * RAW allocator of the end, which under PYTHONMALLOC=debug or -X dev is
 * the debug allocator: it finds no header of its own and aborts the
 * program.  So when that event arrives the shim takes its own entries
 * out of the list (they stay reachable here and go with the process).
 */
#ifndef AT_AUDIT_HOOKS_H
#define AT_AUDIT_HOOKS_H
#include "pyapi.h"

/* PySys_AddAuditHook(fn, NULL), safe before Py_Initialize; 0 on success,
 * -1 when the hook could not be added. */
int at_audit_hook_add(at_audit_hook_fn fn);

/* Every hook of the shim passes each event here first: on the one that
 * clears the hooks, the shim's entries are unlinked. */
void at_audit_hooks_see(const char *event);

#endif
