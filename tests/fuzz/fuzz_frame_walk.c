/* SPDX-License-Identifier: MIT */
/* fuzz_frame_walk.c - libFuzzer target: the remote frame walker fed random "target memory".
 *
 * The walker reads a target only through process_vm_readv, which
 * fake_target.h serves from the fuzz input's memory image (format:
 * walk_image.h): reads past the image fail like unmapped pages, and the
 * "target" can vanish (ESRCH) after any read.  Each input is sampled
 * three times with one walker, so the batched re-reads of the last
 * sample's addresses run too; the third sample sees the image patched, as
 * if the target had moved on between samples.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_target.h"
#include "remote/frame_walk.h"
#include "walk_image.h"

static void check_stack(const at_symtab_t *syms, const at_pystack_t *st)
{
    if (st->n < 0 || st->n > AT_MAX_STACK_DEPTH)
        abort();
    for (int i = 0; i < st->n; i++) {
        uint32_t sym = st->frames[i].sym;
        if (sym >= at_symtab_count(syms) || !at_symtab_func(syms, sym) || !at_symtab_file(syms, sym))
            abort();
    }
}

static void sample(at_walker_t *w, at_symtab_t *syms, int reload)
{
    static at_thread_t threads[AT_MAX_THREADS];
    static at_pystack_t st;
    int n = at_walker_threads(w, threads, AT_MAX_THREADS);
    if (n > AT_MAX_THREADS)
        abort();
    for (int i = 0; i < n; i++) {
        if (reload && at_walker_reload(w, &threads[i]) < 0)
            continue;
        if (at_walker_stack(w, &threads[i], &st) == 0)
            check_stack(syms, &st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_input_t in;
    if (fake_target_open(&in, data, size) < 0)
        return 0;

    at_py_proc_t proc;
    fake_target_proc(&in, &proc);
    uint64_t head;
    char err[256];
    (void)at_py_proc_check(&proc, &head, err, sizeof err);

    at_symtab_t *syms = at_symtab_new();
    at_walker_t *w = syms ? at_walker_new(&proc, syms) : NULL;
    if (w) {
        sample(w, syms, 0);
        sample(w, syms, 0);
        fake_target_patch(&in);
        sample(w, syms, in.flags & WALK_RELOAD);
    }
    at_walker_free(w);
    at_symtab_free(syms);
    fake_target_close(&in);
    return 0;
}
