/* SPDX-License-Identifier: MIT */
/* test_frame_walk.c - the walker on fabricated structures: cycles, depth, bad pointers, changes.
 *
 * The "target" is this test process itself: a fake _PyRuntime, interpreter,
 * thread state, frames, code objects and strings are laid out in our own
 * memory at the offsets of a layout table (3.11's for most tests, which
 * poke py311.h's offsets; 3.12's and 3.13's for the walk itself, with
 * their C-stack entry frames and GIL behind a pointer), and the walker
 * reads them through process_vm_readv like any other process.  That lets
 * each test break one link in a way a real interpreter only does by
 * accident.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

#include "fixtures/testutil.h"
#include "remote/frame_walk.h"

#define NFRAMES 300

static uint8_t code_type[64], str_type[64], bytes_type[64], none_object[64];
static const at_pylayout_t *FL;   /* the layout of the fake being built */

typedef struct fake {
    uint8_t rt[1024], interp[8192], tstate[256], cframe[16], gil[64];
    uint8_t frames[NFRAMES][80];
    uint8_t cstack[80];           /* 3.12+: the entry frame under the chain */
    uint8_t codes[4][AT_READ_CODE_MAX + 64]; /* [3]: 3.12's trampoline */
    uint8_t names[3][AT_SIZEOF_PYASCIIOBJECT + 16], file[AT_SIZEOF_PYASCIIOBJECT + 16];
    uint8_t table[AT_BYTES_SVAL + 32];
    at_py_proc_t proc;
    at_symtab_t *syms;
    at_walker_t *w;
} fake_t;

/* Past the time a validated code header is trusted without a read. */
static void wait_code_recheck(void)
{
    struct timespec ts = { 0, (long)AT_WALKER_CODE_RECHECK_NS + 20000000L };
    nanosleep(&ts, NULL);
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, 4);
}

static uint64_t A(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void make_str(uint8_t *o, const char *s)
{
    put64(o, (size_t)FL->object_type, A(str_type));
    put64(o, (size_t)FL->unicode_length, strlen(s));
    put32(o, (size_t)FL->unicode_state, 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7); /* kind 1, compact, ascii, ready */
    memcpy(o + FL->sizeof_pyasciiobject, s, strlen(s) + 1);
}

/* code i: 16 code units, firstlineno 10*(i+1), each unit on its own line */
static void make_code(fake_t *f, int i, const char *name)
{
    uint8_t *c = f->codes[i];
    make_str(f->names[i], name);
    put64(c, (size_t)FL->object_type, A(code_type));
    put64(c, (size_t)FL->var_size, 16);
    put32(c, (size_t)FL->code_firstlineno, (uint32_t)(10 * (i + 1)));
    put64(c, (size_t)FL->code_filename, A(f->file));
    put64(c, (size_t)FL->code_qualname, A(f->names[i]));
    put64(c, (size_t)FL->code_linetable, A(f->table));
    put32(c, (size_t)FL->code_firsttraceable, 2);
}

/* The entry frame of an eval-loop call (3.12+): owned by the C stack, its
 * code the interpreter's trampoline (3.12: a code object here named
 * "trampoline") or None (3.13). */
static void make_cstack(fake_t *f, const void *prev)
{
    memset(f->cstack, 0, sizeof f->cstack);
    put64(f->cstack, (size_t)FL->iframe_code, FL->minor >= 13 ? A(none_object) : A(f->codes[3]));
    put64(f->cstack, (size_t)FL->iframe_previous, A(prev));
    f->cstack[FL->iframe_owner] = (uint8_t)FL->frame_owned_by_cstack;
}

/* frame k runs code c at unit `unit` and calls nothing; previous = prev.
 * An entry frame (3.11's is_entry) is, from 3.12, one whose previous is a
 * C-stack frame: make_cstack. */
static void make_frame(fake_t *f, int k, int c, int unit, const void *prev, int entry)
{
    uint8_t *fr = f->frames[k];
    memset(fr, 0, sizeof f->frames[k]);
    put64(fr, (size_t)FL->iframe_code, A(f->codes[c]));
    put64(fr, (size_t)FL->iframe_previous, A(prev));
    put64(fr, (size_t)FL->iframe_instr, A(f->codes[c]) + (uint64_t)FL->code_code_adaptive + (uint64_t)unit * 2);
    if (FL->iframe_is_entry != AT_PYLAYOUT_NONE)
        fr[FL->iframe_is_entry] = (uint8_t)entry;
}

/* The runtime, the interpreter, its GIL and the thread state: where the
 * layout keeps each (the GIL in _PyRuntime in 3.11, behind the main
 * interpreter's ceval.gil from 3.12; the frame pointer behind the cframe
 * before 3.13, in the thread state from 3.13). */
static void make_runtime(fake_t *f)
{
    uint8_t *gil = FL->rt_gil != AT_PYLAYOUT_NONE ? f->rt + FL->rt_gil : f->gil;
    if (FL->tstate_current_frame != AT_PYLAYOUT_NONE) {
        put64(f->tstate, (size_t)FL->tstate_current_frame, A(f->frames[0]));
    } else {
        put64(f->cframe, (size_t)FL->cframe_current_frame, A(f->frames[0]));
        put64(f->tstate, (size_t)FL->tstate_cframe, A(f->cframe));
    }
    put64(f->tstate, (size_t)FL->tstate_interp, A(f->interp));
    put64(f->tstate, (size_t)FL->tstate_native_thread_id, (uint64_t)syscall(SYS_gettid));
    put64(f->interp, (size_t)FL->interp_tstate_head, A(f->tstate));
    put64(f->interp, (size_t)FL->interp_runtime, A(f->rt));
    if (FL->interp_ceval_gil != AT_PYLAYOUT_NONE)
        put64(f->interp, (size_t)FL->interp_ceval_gil, A(f->gil));
    put64(f->rt, (size_t)FL->rt_interpreters_head, A(f->interp));
    put64(f->rt, (size_t)FL->rt_interpreters_main, A(f->interp));
    put64(gil, (size_t)FL->gil_last_holder, A(f->tstate));
    put32(gil, (size_t)FL->gil_locked, 1);
}

/* The fake of CPython 3.`minor`. */
static void setup_as(fake_t *f, int minor)
{
    memset(f, 0, sizeof *f);
    FL = at_pylayout_find(3, minor);
    cr_assert(FL, "a 3.%d table", minor);
    /* line table: 16 one-unit entries, each "one-line form +1" (code 11) */
    put64(f->table, (size_t)FL->object_type, A(bytes_type));
    put64(f->table, (size_t)FL->var_size, 16);
    memset(f->table + FL->bytes_sval, 0xd8, 16);
    make_str(f->file, "/fake/app.py");
    make_code(f, 0, "outer");
    make_code(f, 1, "middle");
    make_code(f, 2, "inner");
    make_code(f, 3, "trampoline");
    /* most recent first: inner(unit 5) <- middle(unit 3) <- outer(unit 4)
     * (<- the C-stack entry frame, 3.12+) */
    int cstack = FL->frame_owned_by_cstack != AT_PYLAYOUT_NONE;
    make_frame(f, 0, 2, 5, f->frames[1], 0);
    make_frame(f, 1, 1, 3, f->frames[2], 0);
    make_frame(f, 2, 0, 4, cstack ? f->cstack : NULL, 1);
    if (cstack)
        make_cstack(f, NULL);
    make_runtime(f);
    f->proc.pid = getpid();
    f->proc.layout = *FL;
    at_remote_init(&f->proc.mem, getpid());
    f->proc.runtime = A(f->rt);
    f->proc.code_type = A(code_type);
    f->proc.unicode_type = A(str_type);
    f->proc.bytes_type = A(bytes_type);
    f->syms = at_symtab_new();
    f->w = at_walker_new(&f->proc, f->syms);
    cr_assert(f->syms && f->w, "walker setup failed");
}

/* The fake of 3.11, whose offsets (py311.h) most tests poke directly. */
static void setup(fake_t *f)
{
    setup_as(f, 11);
}

static void teardown(fake_t *f)
{
    at_walker_free(f->w);
    at_symtab_free(f->syms);
}

static at_pystack_t st;

static int sample(fake_t *f, at_thread_t *t)
{
    int n = at_walker_threads(f->w, t, 4);
    cr_assert_eq(n, 1, "one thread expected, got %d", n);
    cr_assert_eq(at_walker_stack(f->w, t, &st), 0, "walk failed");
    return st.n;
}

static const char *fn(fake_t *f, int i)
{
    return at_symtab_func(f->syms, st.frames[i].sym);
}

Test(frame_walk, reads_names_lines_and_gil)
{
    static fake_t f;
    at_thread_t t[4];
    unsigned long before = 0;
    setup(&f);
    for (int round = 0; round < 3; round++) { /* plain, then batched reads */
        if (round == 2)
            before = f.proc.mem.calls;
        cr_assert_eq(sample(&f, t), 3, "round %d: 3 frames expected, got %d", round, st.n);
        cr_assert(!strcmp(fn(&f, 0), "inner") && !strcmp(fn(&f, 1), "middle") && !strcmp(fn(&f, 2), "outer"),
                  "round %d: names %s %s %s", round, fn(&f, 0), fn(&f, 1), fn(&f, 2));
        /* unit u has line firstlineno + u + 1 (one "+1" entry per unit) */
        cr_assert(st.frames[0].line == 36 && st.frames[1].line == 24 && st.frames[2].line == 15,
                  "round %d: lines %d %d %d", round, st.frames[0].line, st.frames[1].line, st.frames[2].line);
        cr_assert(t[0].gil && !st.truncated && st.frames[2].entry, "round %d: gil/entry flags wrong", round);
    }
    /* the chain is read with the thread list, at last sample's addresses */
    cr_assert_eq(f.proc.mem.calls - before, 1, "an unchanged stack should cost 1 read, not %lu",
                 f.proc.mem.calls - before);
    teardown(&f);
}

/* Each version's layout: the same stack read through 3.11's, 3.12's and
 * 3.13's offsets; from 3.12 the C-stack entry frame under it is kept as
 * a hidden entry (its code, the trampoline or None, never read), and the
 * GIL is found behind the main interpreter's ceval.gil. */
ParameterizedTestParameters(frame_walk, reads_each_version)
{
    static int minors[] = { 11, 12, 13 };
    return cr_make_param_array(int, minors, sizeof minors / sizeof *minors);
}

ParameterizedTest(int *minor, frame_walk, reads_each_version)
{
    static fake_t f;
    at_thread_t t[4];
    unsigned long before = 0;
    setup_as(&f, *minor);
    int cstack = FL->frame_owned_by_cstack != AT_PYLAYOUT_NONE, want = 3 + cstack;
    for (int round = 0; round < 3; round++) { /* plain, then batched reads */
        if (round == 2)
            before = f.proc.mem.calls;
        cr_assert_eq(sample(&f, t), want, "3.%d round %d: %d frames expected, got %d", *minor, round, want, st.n);
        cr_assert(!strcmp(fn(&f, 0), "inner") && !strcmp(fn(&f, 1), "middle") && !strcmp(fn(&f, 2), "outer"),
                  "3.%d round %d: names %s %s %s", *minor, round, fn(&f, 0), fn(&f, 1), fn(&f, 2));
        cr_assert(st.frames[0].line == 36 && st.frames[1].line == 24 && st.frames[2].line == 15,
                  "3.%d round %d: lines %d %d %d", *minor, round, st.frames[0].line, st.frames[1].line,
                  st.frames[2].line);
        cr_assert(!st.frames[0].skip && !st.frames[1].skip && !st.frames[2].skip, "3.%d: all three shown", *minor);
        if (cstack)
            cr_assert(st.frames[3].skip && st.frames[3].entry && !st.frames[2].entry,
                      "3.%d round %d: the C-stack frame is a hidden entry", *minor, round);
        else
            cr_assert(st.frames[2].entry, "3.11 round %d: is_entry read", round);
        cr_assert(t[0].gil && !st.truncated, "3.%d round %d: holds the GIL, whole chain", *minor, round);
    }
    cr_assert_eq(f.proc.mem.calls - before, 1, "3.%d: an unchanged stack should cost 1 read, not %lu", *minor,
                 f.proc.mem.calls - before);
    /* a frame whose code (3.13: f_executable) is not a code object */
    put64(f.frames[0], (size_t)FL->iframe_code, A(none_object));
    cr_assert_eq(sample(&f, t), want, "3.%d: the walk goes on past it", *minor);
    cr_assert_str_eq(fn(&f, 0), "[unknown]", "3.%d: an object that is not code is never decoded", *minor);
    cr_assert_str_eq(fn(&f, 1), "middle", "3.%d: the next frame is read", *minor);
    /* another thread takes the GIL */
    put64(FL->rt_gil != AT_PYLAYOUT_NONE ? f.rt + FL->rt_gil : f.gil, (size_t)FL->gil_last_holder, 0x123450);
    sample(&f, t);
    cr_assert(!t[0].gil, "3.%d: the GIL's holder is read where the layout keeps it", *minor);
    teardown(&f);
}

Test(frame_walk, cycle_ends_the_walk)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    put64(f.frames[2], AT_IFRAME_PREVIOUS, A(f.frames[0])); /* outer -> inner: a loop */
    for (int round = 0; round < 2; round++) {
        int n = sample(&f, t);
        cr_assert(n == 3 && st.truncated, "round %d: a cycle must stop after 3 frames (n=%d, truncated=%d)",
                  round, n, st.truncated);
    }
    teardown(&f);
}

Test(frame_walk, depth_is_bounded)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    for (int k = 0; k < NFRAMES; k++)
        make_frame(&f, k, 1, 3, k + 1 < NFRAMES ? (void *)f.frames[k + 1] : NULL, 0);
    for (int round = 0; round < 2; round++) {
        int n = sample(&f, t);
        cr_assert(n == AT_MAX_STACK_DEPTH && st.truncated, "round %d: depth %d, truncated %d", round, n,
                  st.truncated);
    }
    teardown(&f);
}

Test(frame_walk, bad_pointers_are_survived)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    put64(f.frames[1], AT_IFRAME_PREVIOUS, 0x10);        /* unmapped */
    put64(f.frames[0], AT_IFRAME_CODE, A(f.names[0]));   /* not a code object */
    int n = sample(&f, t);
    cr_assert(n == 2 && st.truncated, "walk should stop at the bad link (n=%d, truncated=%d)", n, st.truncated);
    cr_assert_str_eq(fn(&f, 0), "[unknown]", "a non-code object must not be decoded");
    put64(f.frames[1], AT_IFRAME_PREVIOUS, 0xdead0000000000ull); /* non-canonical */
    n = sample(&f, t);
    cr_assert(n == 2 && st.truncated, "non-canonical pointer: n=%d truncated=%d", n, st.truncated);
    put64(f.codes[1], AT_VAR_SIZE, (uint64_t)-5); /* insane size */
    wait_code_recheck();      /* a header is trusted that long */
    n = sample(&f, t);
    cr_assert_str_eq(fn(&f, 1), "[unknown]", "a code object with a bad size must be refused");
    teardown(&f);
}

Test(frame_walk, changes_between_samples_are_seen)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    sample(&f, t);
    /* middle returns; outer now runs at unit 7 and calls inner directly */
    make_frame(&f, 0, 2, 9, f.frames[2], 0);
    make_frame(&f, 2, 0, 7, NULL, 1);
    cr_assert_eq(sample(&f, t), 2, "2 frames after the change, got %d", st.n);
    cr_assert(!strcmp(fn(&f, 0), "inner") && !strcmp(fn(&f, 1), "outer") && st.frames[0].line == 40 &&
              st.frames[1].line == 18, "stale data after a change: %s:%d %s:%d", fn(&f, 0), st.frames[0].line,
              fn(&f, 1), st.frames[1].line);
    /* the code object at the same address is replaced by another one */
    make_str(f.names[2], "replaced");
    put64(f.codes[2], AT_CODE_QUALNAME, A(f.names[1]));
    wait_code_recheck();
    cr_assert_eq(sample(&f, t), 2, "2 frames expected");
    cr_assert_str_eq(fn(&f, 0), "middle", "a code object changed in place must be re-read");
    /* one replaced by a longer one, run past the old one's end: the
     * instruction pointer gives it away, so it is re-read at once */
    sample(&f, t);
    put64(f.codes[2], AT_CODE_QUALNAME, A(f.names[0]));
    put64(f.codes[2], AT_VAR_SIZE, 30);
    make_frame(&f, 0, 2, 20, f.frames[2], 0);
    cr_assert_eq(sample(&f, t), 2, "2 frames expected");
    cr_assert_str_eq(fn(&f, 0), "outer", "a longer code object in place must be re-read at once (got %s)",
                     fn(&f, 0));
    teardown(&f);
}

Test(frame_walk, incomplete_frames_are_marked)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    make_frame(&f, 0, 2, 1, f.frames[1], 0); /* unit 1 < firsttraceable 2 */
    sample(&f, t);
    cr_assert(st.frames[0].skip && !st.frames[1].skip, "the frame in its prologue should be hidden");
    f.frames[0][AT_IFRAME_OWNER] = AT_FRAME_OWNED_BY_GENERATOR;
    sample(&f, t);
    cr_assert(!st.frames[0].skip, "generator frames are never incomplete");
    teardown(&f);
}

Test(frame_walk, thread_list_checks_hold)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    put64(f.tstate, AT_TSTATE_NEXT, A(f.tstate)); /* a thread list cycle */
    cr_assert_eq(at_walker_threads(f.w, t, 4), 1, "a cyclic thread list must give one thread");
    cr_assert_eq(at_walker_threads(f.w, t, 4), 1, "and again from the batch");
    put64(f.interp, AT_INTERP_RUNTIME, A(f.interp)); /* wrong back pointer */
    cr_assert_eq(at_walker_threads(f.w, t, 4), -EPROTO, "interp->runtime != &_PyRuntime must be refused");
    put64(f.rt, AT_RT_INTERPRETERS_HEAD, 0);
    cr_assert_eq(at_walker_threads(f.w, t, 4), -EAGAIN, "no interpreter yet is -EAGAIN");
    teardown(&f);
}

/* A 50-deep recursion: frame k runs code (k % 7 == 3 ? middle : inner),
 * the root is outer. */
static void make_deep(fake_t *f, int depth)
{
    for (int k = 0; k < depth; k++)
        make_frame(f, k, k + 1 == depth ? 0 : k % 7 == 3 ? 1 : 2, 3 + k % 5,
                   k + 1 < depth ? (void *)f->frames[k + 1] : NULL, k + 1 == depth);
    put64(f->cframe, AT_CFRAME_CURRENT_FRAME, A(f->frames[0]));
}

static void check_deep(fake_t *f, int depth, int from, const char *when)
{
    cr_assert(st.n == depth - from && !st.truncated, "%s: %d frames expected, got %d (truncated %d)", when,
              depth - from, st.n, st.truncated);
    for (int i = 0; i < st.n; i++) {
        int k = from + i;
        const char *want = k + 1 == depth ? "outer" : k % 7 == 3 ? "middle" : "inner";
        int line = (k + 1 == depth ? 10 : k % 7 == 3 ? 20 : 30) + 3 + k % 5 + 1;
        cr_assert(!strcmp(fn(f, i), want) && st.frames[i].line == line, "%s: frame %d is %s:%d, want %s:%d",
                  when, i, fn(f, i), st.frames[i].line, want, line);
    }
}

Test(frame_walk, deep_stack_costs_one_read_and_follows_changes)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    make_deep(&f, 50);
    sample(&f, t);
    sample(&f, t);
    unsigned long before = f.proc.mem.calls;
    sample(&f, t);
    check_deep(&f, 50, 0, "unchanged");
    cr_assert_eq(f.proc.mem.calls - before, 1, "an unchanged 50-deep stack should cost 1 read, not %lu",
                 f.proc.mem.calls - before);
    /* returns: the top 5 frames are gone, the rest was read with the list */
    put64(f.cframe, AT_CFRAME_CURRENT_FRAME, A(f.frames[5]));
    before = f.proc.mem.calls;
    sample(&f, t);
    check_deep(&f, 50, 5, "after 5 returns");
    cr_assert_eq(f.proc.mem.calls - before, 1, "a shallower stack is in the prefetched chain: 1 read, not %lu",
                 f.proc.mem.calls - before);
    /* calls again: new frames on top of the remembered chain */
    put64(f.cframe, AT_CFRAME_CURRENT_FRAME, A(f.frames[0]));
    sample(&f, t);
    check_deep(&f, 50, 0, "after the calls");
    /* a frame in the middle now runs another function: the prefetched
     * frame shows it and the walk must not report the remembered code */
    make_frame(&f, 20, 0, 4, f.frames[21], 0);
    sample(&f, t);
    cr_assert(st.n == 50 && !strcmp(fn(&f, 20), "outer") && st.frames[20].line == 15,
              "a changed frame in a prefetched chain: frame 20 is %s:%d", fn(&f, 20), st.frames[20].line);
    cr_assert(!strcmp(fn(&f, 19), "inner") && !strcmp(fn(&f, 21), "inner") && !strcmp(fn(&f, 49), "outer"),
              "the frames around it are wrong: %s %s %s", fn(&f, 19), fn(&f, 21), fn(&f, 49));
    teardown(&f);
}

static atomic_int spinning;

static void *spin_thread(void *arg)
{
    atomic_int *tid = arg;
    atomic_store(tid, (int)syscall(SYS_gettid));
    while (atomic_load(&spinning))
        ;
    return NULL;
}

static void *sleep_thread(void *arg)
{
    atomic_int *tid = arg;
    atomic_store(tid, (int)syscall(SYS_gettid));
    while (atomic_load(&spinning))
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    return NULL;
}

/* How many of `tries` reads say tid is idle. */
static int idle_count(at_walker_t *w, int tid, int tries)
{
    int idle = 0;
    for (int i = 0; i < tries; i++) {
        int rc = at_walker_idle(w, (uint32_t)tid);
        cr_assert(rc == 0 || rc == 1, "at_walker_idle(%d) failed: %d", tid, rc);
        idle += rc;
        nanosleep(&(struct timespec){ 0, 200000 }, NULL);
    }
    return idle;
}

Test(frame_walk, idle_is_the_task_state, .timeout = 20)
{
    static fake_t f;
    pthread_t a, b;
    atomic_int spin_tid = 0, sleep_tid = 0;
    setup(&f);
    atomic_store(&spinning, 1);
    cr_assert(pthread_create(&a, NULL, spin_thread, &spin_tid) == 0 &&
              pthread_create(&b, NULL, sleep_thread, &sleep_tid) == 0, "threads");
    while (!atomic_load(&spin_tid) || !atomic_load(&sleep_tid))
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    /* a spinning thread may be preempted now and then (runnable: still
     * not idle); a thread sleeping 10 ms at a time is almost always idle
     * (with 1 ms naps, a loaded machine kept it runnable, "running", for
     * 6 reads of 50 in one CI run) */
    int spin_idle = idle_count(f.w, spin_tid, 50), sleep_idle = idle_count(f.w, sleep_tid, 50);
    atomic_store(&spinning, 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_assert(spin_idle == 0, "a spinning thread read idle %d times of 50", spin_idle);
    cr_assert(sleep_idle >= 45, "a sleeping thread read idle only %d times of 50", sleep_idle);
    cr_assert_lt(at_walker_idle(f.w, (uint32_t)spin_tid), 0, "an ended thread must not read as a state");
    teardown(&f);
}

Test(frame_walk, waiting_threads_are_not_reread_until_the_gil_changes_hands)
{
    static fake_t f;
    at_thread_t t[4];
    setup(&f);
    put64(f.rt, AT_RT_GIL_LAST_HOLDER, 0x123450); /* another thread holds it */
    put64(f.rt, AT_RT_GIL_SWITCH_NUMBER, 7);
    for (int i = 0; i < 3; i++)   /* plain, tagged, then kept */
        cr_assert_eq(sample(&f, t), 3, "3 frames expected");
    cr_assert(t[0].reuse, "a thread that cannot have run Python since its last walk keeps it");
    unsigned long calls = f.proc.mem.calls;
    /* frames that change without the GIL changing hands cannot happen in
     * CPython; here they show that the kept stack is what is reported */
    make_frame(&f, 0, 2, 9, f.frames[2], 0);
    cr_assert_eq(sample(&f, t), 3, "the kept stack stands while the switch count does not move");
    cr_assert_eq(f.proc.mem.calls - calls, 1, "one read (the thread list) for a kept stack, got %lu",
                 f.proc.mem.calls - calls);
    put64(f.rt, AT_RT_GIL_SWITCH_NUMBER, 8);
    cr_assert_eq(sample(&f, t), 2, "after a switch the stack is walked again");
    cr_assert(!t[0].reuse && st.frames[0].line == 40, "walked again: line %d", st.frames[0].line);
    put64(f.rt, AT_RT_GIL_LAST_HOLDER, A(f.tstate));   /* the holder is always walked */
    for (int i = 0; i < 3; i++)
        sample(&f, t);
    cr_assert(!t[0].reuse, "the GIL holder's stack is never kept");
    teardown(&f);
}
