/* SPDX-License-Identifier: MIT */
/* test_remote.c - the one remote-read function: batches, merging, bad and partial addresses. */
#include <criterion/criterion.h>
#include <sys/mman.h>

#include "fixtures/testutil.h"
#include "cli/options.h"
#include "remote/py_proc.h"
#include "remote/remote.h"

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
