/* SPDX-License-Identifier: MIT */
/* test_session.c - session directory, segment headers and session.meta. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meta.h"
#include "procs.h"
#include "segment_format.h"
#include "session.h"
#include "testlib.h"
#include "textout.h"

static at_seg_header_t make_header(pid_t pid)
{
    at_seg_header_t h;
    memset(&h, 0, sizeof(h));
    h.magic = AT_SEG_MAGIC;
    h.version = AT_SEG_VERSION;
    h.size = sizeof(h);
    h.state = AT_SEG_EXITED;
    h.pid = pid;
    h.ppid = 1;
    h.start_mono_ns = 1000000000ull;
    h.end_mono_ns = 3500000000ull;
    h.supported = 1;
    h.build = AT_BUILD_SHARED;
    strcpy(h.python_version, "3.11.7");
    memcpy(h.argv, "python3\0-c\0pass\0", 16);
    h.argv_len = 16;
    return h;
}

static void write_seg(const char *dir, pid_t pid, const void *data, size_t size)
{
    FILE *f = at_session_create_file(dir, pid, "seg");
    cr_assert_not_null(f, "create segment file");
    fwrite(data, 1, size, f);
    fclose(f);
}

Test(session, decode_valid_header)
{
    at_seg_header_t h = make_header(77);
    at_proc_t p;
    cr_assert_eq(at_proc_decode(&h, sizeof(h), &p), 0, "valid header decodes");
    cr_assert_eq(p.pid, 77, "pid");
    cr_assert_eq(p.argc, 3, "argv split on NULs, got %d", p.argc);
    cr_assert_str_eq(p.argv[2], "pass", "last argument");
    cr_assert_str_eq(at_build_name(p.build), "shared", "build shape");
    cr_assert_float_eq(at_proc_wall_s(&p), 2.5, 1e-9, "wall from monotonic stamps");
}

Test(session, rejects_corrupt_headers)
{
    at_seg_header_t h = make_header(5);
    at_proc_t p;
    cr_assert_eq(at_proc_decode(&h, sizeof(h) - 1, &p), -EINVAL, "truncated");
    h.magic ^= 1;
    cr_assert_eq(at_proc_decode(&h, sizeof(h), &p), -EINVAL, "bad magic");
    h = make_header(5);
    h.argv_len = AT_SEG_ARGV_MAX + 1;
    cr_assert_eq(at_proc_decode(&h, sizeof(h), &p), -EINVAL, "argv length out of bounds");
    h = make_header(5);
    h.state = 99;
    cr_assert_eq(at_proc_decode(&h, sizeof(h), &p), -EINVAL, "unknown state");
}

Test(session, list_skips_corrupt_and_execed_segments)
{
    char *dir = at_test_tmpdir();
    at_seg_header_t a = make_header(10), b = make_header(11), c = make_header(12);
    b.start_mono_ns = 10;   /* started first: listed first */
    c.state = AT_SEG_EXECED;
    write_seg(dir, 10, &a, sizeof(a));
    write_seg(dir, 11, &b, sizeof(b));
    write_seg(dir, 12, &c, sizeof(c));
    write_seg(dir, 13, "garbage", 7);
    at_proc_list_t list;
    cr_assert_eq(at_proc_list_load(dir, &list), 0, "load");
    cr_assert_eq(list.count, 2, "two live processes, got %zu", list.count);
    cr_assert_eq(list.corrupt, 1, "one corrupt segment counted");
    cr_assert_eq(list.execed, 1, "one exec'd segment counted");
    cr_assert_eq(list.procs[0].pid, 11, "sorted by start time");
    at_proc_list_free(&list);
    at_session_remove(dir);
    free(dir);
}

Test(session, meta_round_trip_keeps_any_argument)
{
    char *dir = at_test_tmpdir();
    at_meta_t m = { .complete = 1, .exit_status = 3, .root_pid = 42, .wall_s = 1.5 };
    strcpy(m.kind, "run");
    char *argv[] = { "bash", "-c", "echo 'a=b\nc'", NULL };
    at_meta_set_argv(&m, 3, argv);
    cr_assert_eq(at_meta_write(dir, &m), 0, "write meta");
    at_meta_t r;
    cr_assert_eq(at_meta_read(dir, &r), 0, "read meta");
    cr_assert_eq(r.exit_status, 3, "exit status");
    cr_assert_eq(r.argc, 3, "argc");
    cr_assert_str_eq(r.argv[2], "echo 'a=b\nc'", "newline and '=' survive");
    at_session_remove(dir);
    free(dir);
}

Test(session, create_is_private_and_refuses_symlinks)
{
    char *base = at_test_tmpdir();
    char want[700], got[600], link[700];
    snprintf(want, sizeof(want), "%s/s", base);
    cr_assert_eq(at_session_create(want, got, sizeof(got)), 0, "create");
    struct stat st;
    cr_assert_eq(stat(got, &st), 0, "exists");
    cr_assert_eq(st.st_mode & 0777, 0700, "mode 0700, got %o", st.st_mode & 0777);
    FILE *f = at_session_create_file(got, 1, "x");
    cr_assert_not_null(f, "file");
    fclose(f);
    snprintf(want, sizeof(want), "%s/1.x", got);
    cr_assert_eq(stat(want, &st), 0, "file exists");
    cr_assert_eq(st.st_mode & 0777, 0600, "file mode 0600, got %o", st.st_mode & 0777);
    cr_assert_eq(at_session_create(got, link, sizeof(link)), -ENOTEMPTY, "non-empty dir refused");
    snprintf(link, sizeof(link), "%s/2.y", got);
    cr_assert_eq(symlink("/etc/passwd", link), 0, "symlink");
    cr_assert_null(at_session_open_file(got, 2, "y"), "symlinks are never followed");
    at_session_remove(got);
    rmdir(base);
    free(base);
}

Test(textout, escapes_terminal_control)
{
    char buf[128];
    at_text_escape(buf, sizeof(buf), "mod\033[31mred\x9b\xc2\x9b ok \xc3\xa9");
    cr_assert_str_eq(buf, "mod\\x1b[31mred\\x9b\\xc2\\x9b ok \xc3\xa9", "escaped: %s", buf);
    at_text_bytes(buf, sizeof(buf), 6.0 * 1024 * 1024);
    cr_assert_str_eq(buf, "6.00 MiB", "bytes: %s", buf);
    at_text_bytes(buf, sizeof(buf), 512);
    cr_assert_str_eq(buf, "512 B", "bytes: %s", buf);
    at_text_duration(buf, sizeof(buf), 0.0123);
    cr_assert_str_eq(buf, "12.3 ms", "duration: %s", buf);
}
