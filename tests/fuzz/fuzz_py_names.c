/* SPDX-License-Identifier: MIT */
/* fuzz_py_names.c - libFuzzer target: the thread-name reader fed random "target memory".
 *
 * at_py_thread_names walks sys.modules -> threading -> _active -> each
 * Thread's _name through process_vm_readv, which fake_target.h serves
 * from the fuzz input's memory image (format: walk_image.h; flags bit
 * WALK_TYPES_EXPORTED makes the reader check str objects' types, the
 * die-after byte makes the target exit mid-walk).  Each input is read
 * uncached, with max 1 and 0, then through the cached entry point twice
 * (search, then the remembered _active) and once more after the patch,
 * as if the target had moved on while the cache still pointed at the old
 * _active.  Any break of the contract in py_names.h aborts:
 *   - the count is in [0, max], or a -errno; -ESRCH when and only when
 *     the target exited and no names were read before;
 *   - every name is NUL-terminated within AT_PY_NAME_MAX and valid UTF-8;
 *   - each returned tid finds its name back through at_py_thread_name_of;
 *   - one call makes a bounded number of reads (a hostile target must
 *     not be able to stall a sampler that reads names every second).
 * The out arrays are malloc'd to exactly `max` entries, so ASan catches
 * a write past max even when the count returned looks right.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_target.h"
#include "remote/py_names.h"
#include "walk_image.h"

#define MAX_NAMES      16
/* Reads one call may make: py_names.c compares at most 65536 dict keys
 * a walk and makes a handful of reads per _active entry (<= 16384), so
 * ~190k at worst; a walk without a total bound can make millions. */
#define MAX_CALL_READS (1u << 18)

static void check_result(int rc, const at_py_thread_name_t *out, int max, unsigned reads_before)
{
    int died = fake_target_died();
    if (target.reads - reads_before > MAX_CALL_READS || (died && rc == 0 && max > 0))
        abort();
    if (rc < 0) {
        if (rc < -4095 || (rc == -ESRCH && !died))
            abort();
        return;
    }
    if (rc > max || (max <= 0 && rc != 0))
        abort();
    for (int i = 0; i < rc; i++) {
        fake_check_text(out[i].name, AT_PY_NAME_MAX);
        if (!at_py_thread_name_of(out, rc, out[i].tid))
            abort();
    }
}

/* One call with an out array of exactly max entries; cache NULL: uncached. */
static void names_call(at_py_proc_t *proc, uint64_t *cache, int max)
{
    at_py_thread_name_t *out = malloc(sizeof *out * (size_t)(max > 0 ? max : 1));
    if (!out)
        return;
    unsigned before = target.reads;
    int rc = cache ? at_py_thread_names_cached(proc, cache, out, max) : at_py_thread_names(proc, out, max);
    check_result(rc, out, max, before);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_input_t in;
    if (fake_target_open(&in, data, size) < 0)
        return 0;

    at_py_proc_t proc;
    fake_target_proc(&in, &proc);

    uint64_t cache = 0;
    names_call(&proc, NULL, MAX_NAMES);
    names_call(&proc, NULL, 1);
    names_call(&proc, NULL, 0);
    names_call(&proc, &cache, MAX_NAMES);   /* searches, fills the cache  */
    names_call(&proc, &cache, MAX_NAMES);   /* starts from the cache      */
    fake_target_patch(&in);
    names_call(&proc, &cache, MAX_NAMES);   /* a stale cache, maybe       */
    fake_target_close(&in);
    return 0;
}
