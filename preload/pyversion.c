/* SPDX-License-Identifier: MIT */
/* pyversion.c - pick the running CPython's layout table (see pyversion.h). */
#include <errno.h>
#include <string.h>
#include "py313.h"
#include "pyapi.h"
#include "pyversion.h"

at_pylayout_t at_pyl;

static const char free_threaded_note[] =
    "free-threaded CPython has no GIL to account for: archtrace does not support it";

/* Symbols only a free-threaded build (Py_GIL_DISABLED) exports
 * (docs/VERSIONS.md): checked before any memory is read as the default
 * build's layout, whatever the debug offsets say. */
static int free_threaded_symbols(void)
{
    return at_py_sym("_Py_DecRefShared") || at_py_sym("_Py_MergeZeroLocalRefcount");
}

/* 3.13+: the target's own offsets, validated, in place of the table's. */
static int apply_debug_offsets(const at_pylayout_t *base, const void *runtime, const char **why)
{
    if (!runtime) {
        *why = "no _PyRuntime to read the debug offsets from: archtrace features off";
        return -ENOTSUP;
    }
    at_pylayout_t l;
    int rc = at_pylayout_apply_debug(base, (const char *)runtime + base->rt_debug_offsets,
                                     AT313_SIZEOF_DEBUG_OFFSETS, &l);
    if (rc == -EOPNOTSUPP) {
        *why = free_threaded_note;
        return -ENOTSUP;
    }
    if (rc < 0) {
        *why = "_PyRuntime.debug_offsets do not check out (cookie, version or an offset): features off";
        return -ENOTSUP;
    }
    at_pyl = l;
    return 0;
}

int at_pyversion_choose(uint32_t hex, const void *runtime, const char **why)
{
    const at_pylayout_t *base = at_pylayout_find_hex(hex);
    /* free threading exists from 3.13: older versions skip the lookups
     * (a missing symbol searches every loaded object) */
    if (hex >= 0x030d0000 && free_threaded_symbols()) {
        *why = free_threaded_note;
        return -ENOTSUP;
    }
    if (!base) {
        *why = "unsupported Python version: archtrace supports 3.11, 3.12 and 3.13";
        return -ENOTSUP;
    }
    at_pyl = *base;
    if (base->rt_debug_offsets != AT_PYLAYOUT_NONE)
        return apply_debug_offsets(base, runtime, why);
    return 0;
}
