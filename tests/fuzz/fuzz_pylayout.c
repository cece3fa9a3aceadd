/* SPDX-License-Identifier: MIT */
/* fuzz_pylayout.c - libFuzzer target: a target's _Py_DebugOffsets as
 * at_pylayout_apply_debug checks it.
 *
 * Input: the bytes copied from _PyRuntime (a real copy is 584 bytes; any
 * length arrives here).  The check must stay inside the copy (ASan: it is
 * copied to a buffer of exactly its size), write *out only when it
 * accepts, and accept only offsets a reader can use: every offset it
 * takes, plus the bytes read there, inside the struct size the target
 * states for it, and the GIL's fields inside the GIL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "py313.h"
#include "pylayout.h"

static uint64_t u64(const uint8_t *d, size_t pos)
{
    uint64_t v;
    memcpy(&v, d + pos, sizeof v);
    return v;
}

/* field + width must lie inside the size stored at size_pos */
static void inside(const uint8_t *d, int32_t field, unsigned width, size_t size_pos)
{
    if (field < 0 || (uint64_t)field + width > u64(d, size_pos))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    const at_pylayout_t *l13 = at_pylayout_find(3, 13);
    at_pylayout_t out, before;
    memset(&out, 0x5a, sizeof out);
    before = out;
    int rc = at_pylayout_apply_debug(l13, copy, size, &out);
    if (rc < 0) {
        if (memcmp(&out, &before, sizeof out) != 0)
            abort(); /* written although refused */
    } else {
        if (size < AT313_SIZEOF_DEBUG_OFFSETS || memcmp(copy, AT313_DEBUG_COOKIE, 8) != 0 ||
            u64(copy, AT313_DBG_FREE_THREADED) != 0)
            abort(); /* accepted what it must refuse */
        inside(copy, out.tstate_current_frame, 8, AT313_DBG_TSTATE_SIZE);
        inside(copy, out.tstate_next, 8, AT313_DBG_TSTATE_SIZE);
        inside(copy, out.iframe_previous, 8, AT313_DBG_IFRAME_SIZE);
        inside(copy, out.iframe_owner, 1, AT313_DBG_IFRAME_SIZE);
        inside(copy, out.code_linetable, 8, AT313_DBG_CODE_SIZE);
        inside(copy, out.interp_tstate_head, 8, AT313_DBG_INTERP_SIZE);
        inside(copy, out.interp_gil, AT313_GIL_SWITCH_MUTEX + 40, AT313_DBG_INTERP_SIZE);
        if (out.gil_locked < 0 || out.gil_locked + 4 > AT313_GIL_SWITCH_MUTEX + 40 ||
            out.gil_last_holder < 0 || out.gil_last_holder + 8 > AT313_GIL_SWITCH_MUTEX + 40)
            abort();
        /* what the target does not give stays the table's */
        if (out.gil_cond != l13->gil_cond || out.rt_audit_hook_head != l13->rt_audit_hook_head ||
            out.code_firsttraceable != l13->code_firsttraceable)
            abort();
    }
    free(copy);
    return 0;
}
