/* SPDX-License-Identifier: MIT */
/* test_remote.c - the one remote-read function (batches, merging, bad and partial
 * addresses), and finding the interpreter and its layout (py_proc). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sys/mman.h>

#include "fixtures/testutil.h"
#include "cli/options.h"
#include "remote/py_proc.h"
#include "remote/remote.h"
#include "py313.h"
#include "testlib.h"

static at_remote_t self_mem(void)
{
    at_remote_t r;
    at_remote_init(&r, getpid());
    return r;
}

Test(remote, bad_addresses_fail_without_a_system_call)
{
    at_remote_t r = self_mem();
    uint64_t v;
    uint64_t bad[] = { 0, 8, 0x0000800000000000ull, 0xffffffffffffff00ull };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(at_remote_read_u64(&r, bad[i], &v), -EFAULT, "address %#lx should be refused", (unsigned long)bad[i]);
    cr_assert_eq(r.calls, 0, "no system call for refused addresses (%lu made)", r.calls);
}

Test(remote, merged_batch_equals_memcpy)
{
    at_remote_t r = self_mem();
    static uint8_t src[64 * 1024], dst[256][64];
    at_remote_seg_t segs[256];
    unsigned seed = 3;
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)rand_r(&seed);
    for (int round = 0; round < 200; round++) {
        int n = 1 + rand_r(&seed) % 256;
        for (int i = 0; i < n; i++) {
            size_t off = (size_t)rand_r(&seed) % (sizeof src - 64), len = 1 + (size_t)rand_r(&seed) % 64;
            segs[i] = (at_remote_seg_t){ (uint64_t)(uintptr_t)(src + off), dst[i], len };
        }
        cr_assert_eq(at_remote_readv(&r, segs, n, NULL), n, "round %d: not every segment read", round);
        for (int i = 0; i < n; i++)
            if (memcmp(dst[i], (void *)(uintptr_t)segs[i].addr, segs[i].len))
                cr_assert_fail("round %d: segment %d differs", round, i);
    }
}

/* The shapes walkers hand over: a chain's frames in falling addresses,
 * a rising run, one code header many times, a few strays. */
Test(remote, runs_and_repeats_are_read_in_one_call)
{
    at_remote_t r = self_mem();
    static uint8_t src[64 * 1024], dst[1024][72];
    static at_remote_seg_t segs[1024];
    unsigned seed = 11;
    int n = 0;
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)rand_r(&seed);
    for (int i = 0; i < 300; i++) /* falling */
        segs[n] = (at_remote_seg_t){ (uint64_t)(uintptr_t)(src + 40000 - 100 * i), dst[n], 72 }, n++;
    for (int i = 0; i < 300; i++) /* rising */
        segs[n] = (at_remote_seg_t){ (uint64_t)(uintptr_t)(src + 45000 + 50 * i), dst[n], 60 }, n++;
    for (int i = 0; i < 300; i++) /* repeated */
        segs[n] = (at_remote_seg_t){ (uint64_t)(uintptr_t)(src + 7 + 4096 * (i % 3)), dst[n], 72 }, n++;
    while (n < 1024) /* strays */
        segs[n] = (at_remote_seg_t){ (uint64_t)(uintptr_t)(src + rand_r(&seed) % 60000), dst[n], 72 }, n++;
    cr_assert_eq(at_remote_readv(&r, segs, n, NULL), n, "not every segment read");
    cr_assert_eq(r.calls, 1, "one system call for one batch, %lu made", r.calls);
    for (int i = 0; i < n; i++)
        cr_assert(!memcmp(dst[i], (void *)(uintptr_t)segs[i].addr, segs[i].len), "segment %d differs", i);
}

Test(remote, partial_reads_stop_at_the_unmapped_page)
{
    at_remote_t r = self_mem();
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(p != MAP_FAILED, "mmap failed");
    memset(p, 7, (size_t)page);
    munmap(p + page, (size_t)page);
    uint8_t buf[256], a[8], b[8];
    long got = at_remote_read_some(&r, (uint64_t)(uintptr_t)(p + page - 100), buf, sizeof buf);
    cr_assert_eq(got, 100, "read_some across the end: %ld bytes, want 100", got);
    cr_assert_eq(at_remote_read(&r, (uint64_t)(uintptr_t)(p + page - 100), buf, sizeof buf), -EFAULT,
                 "a partial read is -EFAULT for at_remote_read");
    at_remote_seg_t segs[2] = { { (uint64_t)(uintptr_t)p, a, 8 }, { (uint64_t)(uintptr_t)(p + page), b, 8 } };
    cr_assert_eq(at_remote_readv(&r, segs, 2, NULL), 1, "the readable segment counts, the other not");
    cr_assert_eq(a[0], 7, "the readable segment was copied");
    munmap(p, (size_t)page);
}

Test(remote, gone_process_is_esrch)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    at_remote_t r;
    uint64_t v;
    at_remote_init(&r, child);
    cr_assert_eq(at_remote_read_u64(&r, (uint64_t)(uintptr_t)&v, &v), -ESRCH, "reading a gone process");
}

Test(py_proc, this_test_is_not_python)
{
    at_py_proc_t p;
    char err[256], want[128];
    int rc = at_py_proc_open(&p, getpid(), err, sizeof err);
    snprintf(want, sizeof want, "process %d (", (int)getpid());
    cr_assert_eq(rc, -ENOEXEC, "rc %d (%s), want -ENOEXEC", rc, err);
    cr_assert(strstr(err, want) == err && strstr(err, ") is not a Python process"), "message: %s", err);
    cr_assert_eq(at_py_proc_exit_status(rc), AT_EXIT_NOT_PYTHON, "exit status for -ENOEXEC");
}

/* ---- choosing the layout ----------------------------------------------------- */

static void put_u64(uint8_t *d, size_t pos, uint64_t v)
{
    memcpy(d + pos, &v, sizeof v);
}

/* A _Py_DebugOffsets block as a 3.13.0 (GIL build) keeps at the start of
 * _PyRuntime: the cookie, the version, the struct sizes, py313.h's offsets. */
static void fake_debug_offsets(uint8_t d[AT313_SIZEOF_DEBUG_OFFSETS])
{
    static const struct { uint16_t pos; uint64_t v; } f[] = {
        { AT313_DBG_VERSION, 0x030d00f0 },
        { AT313_DBG_RUNTIME_SIZE, 200000 }, { AT313_DBG_RUNTIME_INTERPRETERS_HEAD, AT313_RT_INTERPRETERS_HEAD },
        { AT313_DBG_INTERP_SIZE, 100000 }, { AT313_DBG_INTERP_ID, AT313_INTERP_ID },
        { AT313_DBG_INTERP_NEXT, AT313_INTERP_NEXT }, { AT313_DBG_INTERP_THREADS_HEAD, AT313_INTERP_TSTATE_HEAD },
        { AT313_DBG_INTERP_IMPORTS_MODULES, AT313_INTERP_MODULES },
        { AT313_DBG_INTERP_CEVAL_GIL, AT313_INTERP_CEVAL_GIL },
        { AT313_DBG_INTERP_GIL_RUNTIME_STATE, AT313_INTERP_GIL },
        { AT313_DBG_INTERP_GIL_LOCKED, AT313_INTERP_GIL + AT313_GIL_LOCKED },
        { AT313_DBG_INTERP_GIL_HOLDER, AT313_INTERP_GIL + AT313_GIL_LAST_HOLDER },
        { AT313_DBG_TSTATE_SIZE, 4096 }, { AT313_DBG_TSTATE_PREV, AT313_TSTATE_PREV },
        { AT313_DBG_TSTATE_NEXT, AT313_TSTATE_NEXT }, { AT313_DBG_TSTATE_INTERP, AT313_TSTATE_INTERP },
        { AT313_DBG_TSTATE_CURRENT_FRAME, AT313_TSTATE_CURRENT_FRAME },
        { AT313_DBG_TSTATE_THREAD_ID, AT313_TSTATE_THREAD_ID },
        { AT313_DBG_TSTATE_NATIVE_THREAD_ID, AT313_TSTATE_NATIVE_THREAD_ID },
        { AT313_DBG_TSTATE_STATUS, AT313_TSTATE_STATUS },
        { AT313_DBG_IFRAME_SIZE, 80 }, { AT313_DBG_IFRAME_PREVIOUS, AT313_IFRAME_PREVIOUS },
        { AT313_DBG_IFRAME_EXECUTABLE, AT313_IFRAME_EXECUTABLE },
        { AT313_DBG_IFRAME_INSTR_PTR, AT313_IFRAME_INSTR_PTR },
        { AT313_DBG_IFRAME_LOCALSPLUS, AT313_IFRAME_LOCALSPLUS }, { AT313_DBG_IFRAME_OWNER, AT313_IFRAME_OWNER },
        { AT313_DBG_CODE_SIZE, 256 }, { AT313_DBG_CODE_FILENAME, AT313_CODE_FILENAME },
        { AT313_DBG_CODE_NAME, AT313_CODE_NAME }, { AT313_DBG_CODE_QUALNAME, AT313_CODE_QUALNAME },
        { AT313_DBG_CODE_LINETABLE, AT313_CODE_LINETABLE },
        { AT313_DBG_CODE_FIRSTLINENO, AT313_CODE_FIRSTLINENO },
        { AT313_DBG_CODE_ARGCOUNT, AT313_CODE_ARGCOUNT },
        { AT313_DBG_CODE_LOCALSPLUSNAMES, AT313_CODE_LOCALSPLUSNAMES },
        { AT313_DBG_CODE_LOCALSPLUSKINDS, AT313_CODE_LOCALSPLUSKINDS },
        { AT313_DBG_CODE_CODE_ADAPTIVE, AT313_CODE_CODE_ADAPTIVE },
        { AT313_DBG_OBJECT_SIZE, 16 }, { AT313_DBG_OBJECT_TYPE, AT313_OBJECT_TYPE },
        { AT313_DBG_TYPE_SIZE, 920 }, { AT313_DBG_TYPE_NAME, AT313_TYPE_NAME },
        { AT313_DBG_TYPE_FLAGS, AT313_TYPE_FLAGS },
        { AT313_DBG_TUPLE_SIZE, 32 }, { AT313_DBG_TUPLE_ITEMS, AT313_TUPLE_ITEMS },
        { AT313_DBG_LIST_SIZE, 40 }, { AT313_DBG_LIST_ITEMS, AT313_LIST_ITEMS },
        { AT313_DBG_FLOAT_SIZE, 24 }, { AT313_DBG_FLOAT_FVAL, AT313_FLOAT_FVAL },
        { AT313_DBG_DICT_SIZE, 48 }, { AT313_DBG_DICT_KEYS, AT313_DICT_KEYS },
        { AT313_DBG_DICT_VALUES, AT313_DICT_VALUES },
        { AT313_DBG_LONG_SIZE, 32 }, { AT313_DBG_LONG_LV_TAG, AT313_LONG_LV_TAG },
        { AT313_DBG_LONG_DIGITS, AT313_LONG_DIGITS },
        { AT313_DBG_BYTES_SIZE, 40 }, { AT313_DBG_BYTES_SVAL, AT313_BYTES_SVAL },
        { AT313_DBG_UNICODE_SIZE, 80 }, { AT313_DBG_UNICODE_STATE, AT313_UNICODE_STATE },
        { AT313_DBG_UNICODE_LENGTH, AT313_UNICODE_LENGTH },
        { AT313_DBG_UNICODE_ASCIIOBJECT_SIZE, AT313_SIZEOF_PYASCIIOBJECT },
    };
    memset(d, 0, AT313_SIZEOF_DEBUG_OFFSETS);
    memcpy(d + AT313_DBG_COOKIE, AT313_DEBUG_COOKIE, 8);
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        put_u64(d, f[i].pos, f[i].v);
}

/* A process as at_py_proc_open has it just before the layout is chosen. */
static void fake_proc(at_py_proc_t *p, uint64_t hex, const char *version, const char *path)
{
    memset(p, 0, sizeof *p);
    p->pid = 4242;
    p->version_hex = hex;
    snprintf(p->version, sizeof p->version, "%s", version);
    snprintf(p->path, sizeof p->path, "%s", path);
}

Test(py_proc, each_version_gets_its_table)
{
    static const struct { uint64_t hex; int minor; const char *path; } v[] = {
        { 0x030b02f0, 11, "/usr/bin/python3.11" },
        { 0x030b07f0, 11, "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0" },
        { 0x030c01f0, 12, "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0" },
    };
    char err[256] = "";
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        at_py_proc_t p;
        fake_proc(&p, v[i].hex, "3.x", v[i].path);
        cr_assert_eq(at_py_proc_pick_layout(&p, NULL, 0, err, sizeof err), 0, "%#lx: %s", (unsigned long)v[i].hex,
                     err);
        cr_assert_eq(p.layout.minor, v[i].minor, "%#lx: the 3.%d table", (unsigned long)v[i].hex, v[i].minor);
        cr_assert(at_py_proc_layout_fits(&p.layout), "the 3.%d table fits the readers' buffers", v[i].minor);
    }
}

Test(py_proc, a_313_takes_its_debug_offsets)
{
    uint8_t dbg[AT313_SIZEOF_DEBUG_OFFSETS];
    char err[256] = "";
    at_py_proc_t p;
    fake_debug_offsets(dbg);
    put_u64(dbg, AT313_DBG_TSTATE_NATIVE_THREAD_ID, AT313_TSTATE_NATIVE_THREAD_ID + 8); /* as if it moved */
    fake_proc(&p, 0x030d00f0, "3.13.0", "/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0");
    cr_assert_eq(at_py_proc_pick_layout(&p, dbg, sizeof dbg, err, sizeof err), 0, "a sound block: %s", err);
    cr_assert_eq(p.layout.minor, 13, "the 3.13 table");
    cr_assert_eq(p.layout.tstate_native_thread_id, AT313_TSTATE_NATIVE_THREAD_ID + 8,
                 "the target's own offset wins over the table's");
    cr_assert_eq(p.layout.tstate_current_frame, AT313_TSTATE_CURRENT_FRAME, "the others are the table's");
}

/* A free-threaded build: by the flag in its debug offsets, or by its
 * name when they cannot be read; refused as unsupported (status 5) with
 * its own reason. */
Test(py_proc, a_free_threaded_build_is_refused)
{
    uint8_t dbg[AT313_SIZEOF_DEBUG_OFFSETS];
    char err[256] = "";
    at_py_proc_t p;
    fake_debug_offsets(dbg);
    put_u64(dbg, AT313_DBG_FREE_THREADED, 1);
    fake_proc(&p, 0x030d00f0, "3.13.0", "/opt/python/lib/libpython3.13.so.1.0");
    int rc = at_py_proc_pick_layout(&p, dbg, sizeof dbg, err, sizeof err);
    cr_assert_eq(rc, -EPROTONOSUPPORT, "flagged free-threaded: %d (%s)", rc, err);
    cr_assert(strstr(err, "process 4242 runs a free-threaded Python 3.13.0") == err && strstr(err, "no GIL"),
              "the reason: %s", err);
    cr_assert_eq(at_py_proc_exit_status(rc), AT_EXIT_UNSUPPORTED, "exit status 5");
    cr_assert_eq(p.layout.major, 0, "no layout chosen");

    fake_proc(&p, 0x030d00f0, "3.13.0", "/root/.pyenv/versions/3.13.0t/lib/libpython3.13t.so.1.0");
    err[0] = '\0';
    rc = at_py_proc_pick_layout(&p, NULL, 0, err, sizeof err);
    cr_assert(rc == -EPROTONOSUPPORT && strstr(err, "free-threaded"), "named 3.13t: %d (%s)", rc, err);
    fake_proc(&p, 0x030e00f0, "3.14.0", "/usr/local/bin/python3.14t");
    rc = at_py_proc_pick_layout(&p, NULL, 0, err, sizeof err);
    cr_assert(rc == -EPROTONOSUPPORT && strstr(err, "free-threaded"), "named 3.14t, no table either: %d (%s)", rc,
              err);
}

Test(py_proc, a_version_without_a_table_is_refused)
{
    static const uint64_t hex[] = { 0x030a0df0, 0x030e00f0, 0x020712f0 };
    static const char *const ver[] = { "3.10.13", "3.14.0", "2.7.18" };
    for (size_t i = 0; i < 3; i++) {
        char err[256] = "", want[128];
        at_py_proc_t p;
        fake_proc(&p, hex[i], ver[i], "/usr/bin/python");
        int rc = at_py_proc_pick_layout(&p, NULL, 0, err, sizeof err);
        snprintf(want, sizeof want, "process 4242 runs Python %s; archtrace supports CPython 3.11 to 3.13", ver[i]);
        cr_assert_eq(rc, -EPROTONOSUPPORT, "%s: %d", ver[i], rc);
        cr_assert_str_eq(err, want, "%s: the reason", ver[i]);
        cr_assert_eq(at_py_proc_exit_status(rc), AT_EXIT_UNSUPPORTED, "%s: exit status 5", ver[i]);
    }
}

/* Debug offsets are the target's memory: a wrong cookie, a version that
 * is not Py_Version's, an offset past its struct or past what archtrace
 * reads of it, or none at all, and the process is refused, not guessed. */
Test(py_proc, untrusted_debug_offsets_are_checked)
{
    static const struct { uint16_t pos; uint64_t v; const char *what, *says; } bad[] = {
        { AT313_DBG_COOKIE, 0x7970677562656479ull, "the cookie (\"ydebugpy\")", "do not check out" },
        { AT313_DBG_VERSION, 0x030c01f0, "the version", "do not check out" },
        { AT313_DBG_TSTATE_NEXT, 5000, "an offset past the thread state", "do not check out" },
        { AT313_DBG_TSTATE_NATIVE_THREAD_ID, 3000, "an offset past what is read of it", "lie past" },
        { AT313_DBG_IFRAME_OWNER, 79, "the frame owner past the frame read", "lie past" },
        { AT313_DBG_UNICODE_STATE, 60, "the str state past the ASCII header", "lie past" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t dbg[AT313_SIZEOF_DEBUG_OFFSETS];
        char err[256] = "";
        at_py_proc_t p;
        fake_debug_offsets(dbg);
        put_u64(dbg, bad[i].pos, bad[i].v);
        fake_proc(&p, 0x030d00f0, "3.13.0", "/usr/lib/libpython3.13.so.1.0");
        int rc = at_py_proc_pick_layout(&p, dbg, sizeof dbg, err, sizeof err);
        cr_assert_eq(rc, -EPROTO, "%s: %d (%s)", bad[i].what, rc, err);
        cr_assert(strstr(err, bad[i].says) && strstr(err, "refusing to guess"), "%s: the reason: %s", bad[i].what,
                  err);
        cr_assert_eq(p.layout.major, 0, "%s: no layout chosen", bad[i].what);
    }
    char err[256] = "";
    at_py_proc_t p;
    fake_proc(&p, 0x030d00f0, "3.13.0", "/usr/lib/libpython3.13.so.1.0");
    cr_assert_eq(at_py_proc_pick_layout(&p, NULL, 0, err, sizeof err), -EPROTO, "unreadable offsets: %s", err);
    cr_assert(strstr(err, "cannot be read"), "the reason: %s", err);
}

/* A real interpreter of each version opens with its own table. */
ParameterizedTestParameters(py_proc, opens_each_interpreter)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, py_proc, opens_each_interpreter, .timeout = 20)
{
    const char *py = at_test_python_or_skip(s->name);
    char *argv[] = { (char *)py, "-c", "import time; time.sleep(30)", NULL };
    char err[256] = "", want[8];
    pid_t pid = tu_spawn(argv);
    at_py_proc_t p;
    uint64_t head = 0;
    int rc = -EAGAIN;
    /* until it has exec'd the interpreter and initialised it */
    for (int i = 0; i < 100 && rc != 0; i++, tu_sleep(0.05))
        if ((rc = at_py_proc_open(&p, pid, err, sizeof err)) == 0)
            rc = at_py_proc_check(&p, &head, err, sizeof err);
    tu_kill(pid);
    cr_assert_eq(rc, 0, "%s: %s", s->name, err);
    snprintf(want, sizeof want, "%s", s->name[0] == '3' ? s->name : "3.11");
    cr_assert_str_eq(p.layout.name, want, "%s: the table of its version (Python %s)", s->name, p.version);
    cr_assert(!strncmp(p.version, want, strlen(want)), "%s: Py_Version reads %s", s->name, p.version);
    cr_assert_str_eq(at_py_proc_build(&p), strcmp(s->name, "static") ? "shared" : "static", "%s: its build shape",
                     s->name);
}
