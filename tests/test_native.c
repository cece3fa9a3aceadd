/* SPDX-License-Identifier: MIT */
/* test_native.c - merging native frames with Python frames (pure), and stopping a thread. */
#include <criterion/criterion.h>

#include "fixtures/testutil.h"
#include "remote/native.h"

/* Python frames most recent first: f0 f1* f2(hidden) f3*  (* = entry) */
static void python_stack(at_pystack_t *py)
{
    memset(py, 0, sizeof *py);
    at_pyframe_t fs[] = { { 100, 10, 0, 0 }, { 101, 11, 1, 0 }, { 102, 12, 0, 1 }, { 103, 13, 1, 0 } };
    memcpy(py->frames, fs, sizeof fs);
    py->n = 4;
}

static void expect(const at_frame_t *got, int n, const uint32_t *want, int wn, const char *what)
{
    cr_assert_eq(n, wn, "%s: %d frames, want %d", what, n, wn);
    for (int i = 0; i < n; i++)
        cr_assert_eq(got[i].sym, want[i], "%s: frame %d is %u, want %u", what, i, got[i].sym, want[i]);
}

Test(native, each_eval_frame_runs_frames_up_to_its_entry_frame)
{
    at_pystack_t py;
    at_frame_t nat[] = { { 1, 0 }, { 2, 0 }, { 3, 0 }, { 4, 0 }, { 5, 0 } }, out[32];
    uint8_t is_eval[] = { 0, 1, 0, 1, 0 };
    python_stack(&py);
    int n = at_native_merge(nat, is_eval, 5, &py, out, 32);
    uint32_t want[] = { 5, 103, 3, 101, 100, 1 }; /* root first; 102 is hidden */
    expect(out, n, want, 6, "two eval calls");
    cr_assert_eq(out[1].line, 13, "the Python frame keeps its line");
}

/* 3.12+: no is_entry flag; each eval-loop call pushes a C-stack frame
 * under the frames it runs, which the walker keeps as a hidden entry.
 * Most recent first: f0 f1 C f3 C (C = hidden entry, 900). */
Test(native, cstack_frames_end_each_eval_call)
{
    at_pystack_t py;
    memset(&py, 0, sizeof py);
    at_pyframe_t fs[] = { { 100, 10, 0, 0 }, { 101, 11, 0, 0 }, { 900, -1, 1, 1 }, { 103, 13, 0, 0 },
                          { 900, -1, 1, 1 } };
    memcpy(py.frames, fs, sizeof fs);
    py.n = 5;
    at_frame_t nat[] = { { 1, 0 }, { 2, 0 }, { 3, 0 }, { 4, 0 }, { 5, 0 } }, out[32];
    uint8_t is_eval[] = { 0, 1, 0, 1, 0 };
    int n = at_native_merge(nat, is_eval, 5, &py, out, 32);
    uint32_t want[] = { 5, 103, 3, 101, 100, 1 }; /* root first; the C-stack frames never show */
    expect(out, n, want, 6, "two eval calls ended by C-stack frames");
}

Test(native, python_frames_left_over_go_to_the_root)
{
    at_pystack_t py;
    at_frame_t nat[] = { { 1, 0 }, { 2, 0 } }, out[32];
    uint8_t is_eval[] = { 0, 1 };
    python_stack(&py);
    int n = at_native_merge(nat, is_eval, 2, &py, out, 32);
    uint32_t want[] = { 103, 101, 100, 1 };
    expect(out, n, want, 4, "unwinding stopped early");
}

Test(native, eval_frames_without_python_frames_stay_native)
{
    at_pystack_t py = { 0 };
    at_frame_t nat[] = { { 1, 0 }, { 2, 0 } }, out[32];
    uint8_t is_eval[] = { 1, 0 };
    int n = at_native_merge(nat, is_eval, 2, &py, out, 32);
    uint32_t want[] = { 2, 1 };
    expect(out, n, want, 2, "no Python frames");
}

Test(native, stopping_a_missing_thread_fails_cleanly)
{
    at_py_proc_t proc = { .pid = getpid() };
    at_symtab_t *syms = at_symtab_new();
    at_native_t *n = at_native_new(&proc, syms);
    cr_assert(n, "at_native_new failed: %s", strerror(errno));
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    int rc = at_native_stop(n, (uint32_t)child);
    cr_assert_eq(rc, -ESRCH, "stopping a gone thread: %d, want -ESRCH", rc);
    at_native_resume(n, (uint32_t)child);
    at_native_free(n);
    at_symtab_free(syms);
}
