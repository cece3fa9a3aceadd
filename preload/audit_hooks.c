/* SPDX-License-Identifier: MIT */
/* audit_hooks.c - the shim's runtime audit hooks and their list entries
 * (why: audit_hooks.h). */
#include <string.h>
#include "audit_hooks.h"
#include "pyversion.h"

#define MAX_OURS  4
#define MAX_WALK  1024     /* entries looked at: the list is the program's */

static at_audit_hook_fn ours[MAX_OURS];
static int nours;
static void *kept[MAX_OURS];   /* unlinked entries, still referenced */
static int nkept;

int at_audit_hook_add(at_audit_hook_fn fn)
{
    int (*add)(at_audit_hook_fn, void *);
    void *sym = at_py_sym("PySys_AddAuditHook");
    if (!sym || nours >= MAX_OURS)
        return -1;
    memcpy(&add, &sym, sizeof(add));
    if (add(fn, NULL) != 0)
        return -1;
    ours[nours++] = fn;
    return 0;
}

static int is_ours(const void *entry)
{
    at_audit_hook_fn fn;
    memcpy(&fn, (const char *)entry + at_pyl.audit_entry_hook, sizeof(fn));
    for (int i = 0; i < nours; i++)
        if (fn == ours[i])
            return 1;
    return 0;
}

/* The list is where the chosen table says (3.11 audit_hook_head, 3.12+
 * audit_hooks.head); a version without a table keeps its list as is. */
static char *runtime_with_layout(void)
{
    const unsigned long *version = at_py_sym("Py_Version");
    if (!version || !at_pyl.major || (*version >> 16) != (unsigned long)(at_pyl.major << 8 | at_pyl.minor))
        return NULL;
    return at_py_sym("_PyRuntime");
}

/* Entries' own `next` stay as they are: _PySys_Audit may be walking the
 * list through one of them right now. */
static void unlink_ours(void)
{
    char *runtime = runtime_with_layout();
    if (!runtime)
        return;
    void **link = (void **)(runtime + at_pyl.rt_audit_hook_head);
    for (int i = 0; *link && i < MAX_WALK; i++) {
        char *entry = *link;
        void **next = (void **)(entry + at_pyl.audit_entry_next);
        if (is_ours(entry) && nkept < MAX_OURS) {
            kept[nkept++] = entry;
            *link = *next;
        } else {
            link = next;
        }
    }
}

void at_audit_hooks_see(const char *event)
{
    if (event[0] == 'c' && strcmp(event, "cpython._PySys_ClearAuditHooks") == 0)
        unlink_ours();
}
