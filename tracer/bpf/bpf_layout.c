/* SPDX-License-Identifier: MIT */
/* bpf_layout.c - what the probes read in a target: its CPython layout (struct at_bpf_py) and addresses (struct at_bpf_proc).
 *
 * probes/archtrace.bpf.c compiles in no version's offsets: one program
 * serves 3.11, 3.12 and 3.13 with the target's at_pylayout_t (chosen by
 * remote/py_proc.c, with a 3.13's own _Py_DebugOffsets applied) handed
 * over in .rodata before load, the same for every process of a binary;
 * the addresses, which ASLR makes each process's own, go in its entry
 * of the probes' procs map.  The verifier then checks every read at
 * those offsets as constants, so a layout the probes' fixed-size copies
 * cannot take would make the whole load fail with a verifier complaint:
 * it is refused here first, with a reason, because part of a 3.13
 * layout comes from the target's own (untrusted) memory.
 */
#include "bpf/ebpf.h"

#include <errno.h>
#include <stdio.h>

#include "remote/py_proc.h"

/* A field of struct at_bpf_py from a layout field; NONE stays NONE. */
static uint32_t off(int32_t v)
{
    return v == AT_PYLAYOUT_NONE ? AT_BPF_OFF_NONE : (uint32_t)v;
}

/* The probes copy AT_BPF_FRAME_READ bytes of a frame and take its
 * pointers as aligned words of the copy. */
static int frame_word_fits(int32_t v)
{
    return v >= 0 && v % 8 == 0 && v <= AT_BPF_FRAME_READ - 8;
}

static int frame_byte_fits(int32_t v)
{
    return v >= 0 && v < AT_BPF_FRAME_READ;
}

static int frame_fits(const at_pylayout_t *L)
{
    return frame_word_fits(L->iframe_code) && frame_word_fits(L->iframe_previous) &&
           frame_word_fits(L->iframe_instr) && frame_byte_fits(L->iframe_owner) &&
           (L->iframe_is_entry == AT_PYLAYOUT_NONE || frame_byte_fits(L->iframe_is_entry));
}

/* Everything else is read straight from the target (a failed read is
 * a zero), so any offset will do as long as it is one. */
static int others_fit(const at_pylayout_t *L)
{
    const int32_t must[] = { L->gil_locked, L->gil_last_holder, L->gil_cond, L->rt_interpreters_head,
                             L->interp_tstate_head, L->interp_gc_generation_stats,
                             L->sizeof_gc_generation_stats, L->tstate_next, L->tstate_interp,
                             L->tstate_native_thread_id, L->unicode_state, L->sizeof_pyasciiobject,
                             L->unicode_utf8 };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (must[i] < 0)
            return 0;
    /* a thread's frame: through a _PyCFrame, or in the thread state */
    if (L->tstate_cframe == AT_PYLAYOUT_NONE ? L->tstate_current_frame < 0 : L->cframe_current_frame < 0)
        return 0;
    /* str state: the compact bit and the ascii bit above it, exactly */
    uint32_t m = (uint32_t)L->unicode_compact_ascii, compact = m & -m;
    return compact && (m & ~compact) && !((m & ~compact) & ((m & ~compact) - 1));
}

int at_bpf_layout_fill(const at_pylayout_t *L, uint64_t runtime, uint64_t gil, struct at_bpf_py *py,
                       struct at_bpf_proc *proc)
{
    if (!runtime || !gil || !frame_fits(L) || !others_fit(L))
        return -EPROTO;
    uint32_t compact = (uint32_t)L->unicode_compact_ascii & -(uint32_t)L->unicode_compact_ascii;
    int cframe = L->tstate_cframe != AT_PYLAYOUT_NONE;
    *proc = (struct at_bpf_proc){
        .runtime = runtime,
        .gil = gil,
        .tstate_current = L->rt_gilstate_tstate_current == AT_PYLAYOUT_NONE
                              ? 0 : runtime + (uint64_t)L->rt_gilstate_tstate_current,
    };
    *py = (struct at_bpf_py){
        .gil_locked = off(L->gil_locked),
        .gil_last_holder = off(L->gil_last_holder),
        .gil_cond = off(L->gil_cond),
        .rt_interpreters_head = off(L->rt_interpreters_head),
        .interp_tstate_head = off(L->interp_tstate_head),
        /* 3.13's gc_collect_main may be entered with generation -1 and
         * return without collecting (see the probe): it needs the
         * counters; 3.11 and 3.12 are always called to collect the
         * generation they are given. */
        .interp_gc_stats = L->minor >= 13 ? off(L->interp_gc_generation_stats) : AT_BPF_OFF_NONE,
        .gc_stats_size = off(L->sizeof_gc_generation_stats),
        .tstate_next = off(L->tstate_next),
        .tstate_interp = off(L->tstate_interp),
        .tstate_native_thread_id = off(L->tstate_native_thread_id),
        .tstate_cframe = off(L->tstate_cframe),
        .frame_ptr = off(cframe ? L->cframe_current_frame : L->tstate_current_frame),
        .iframe_code = off(L->iframe_code),
        .iframe_previous = off(L->iframe_previous),
        .iframe_instr = off(L->iframe_instr),
        .iframe_owner = off(L->iframe_owner),
        .iframe_is_entry = off(L->iframe_is_entry),
        .unicode_state = off(L->unicode_state),
        .unicode_compact = compact,
        .unicode_ascii = (uint32_t)L->unicode_compact_ascii & ~compact,
        .sizeof_pyasciiobject = off(L->sizeof_pyasciiobject),
        .unicode_utf8 = off(L->unicode_utf8),
    };
    return 0;
}

/* 3.12+: the main interpreter's GIL, interp->ceval.gil, which is always
 * its own (PEP 684): anything else means the layout is wrong. */
static int main_interp_gil(at_py_proc_t *p, uint64_t *gil)
{
    const at_pylayout_t *L = &p->layout;
    uint64_t interp = 0;
    int rc = at_remote_read_u64(&p->mem, p->runtime + (uint64_t)L->rt_interpreters_main, &interp);
    if (rc == 0)
        rc = at_remote_read_u64(&p->mem, interp + (uint64_t)L->interp_ceval_gil, gil);
    if (rc < 0)
        return rc;
    if (!interp || !*gil)
        return -EAGAIN;
    return *gil == interp + (uint64_t)L->interp_gil ? 0 : -EPROTO;
}

int at_bpf_layout_gil(at_py_proc_t *p, uint64_t *gil)
{
    const at_pylayout_t *L = &p->layout;
    if (L->rt_gil != AT_PYLAYOUT_NONE) {
        *gil = p->runtime + (uint64_t)L->rt_gil;
        return 0;
    }
    if (L->interp_ceval_gil == AT_PYLAYOUT_NONE || L->interp_gil == AT_PYLAYOUT_NONE)
        return -EPROTO;
    return main_interp_gil(p, gil);
}
