/* SPDX-License-Identifier: MIT */
/* test_session.c - session directory, segment headers and session.meta. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "session/meta.h"
#include "session/procs.h"
#include "session/salvage.h"
#include "segment_format.h"
#include "session/session.h"
#include "testlib.h"
#include "out/textout.h"

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

/* ---- issue 25: sessions that keep what they can -------------------------- */

/* A real session of one static-shape Python process, kept in <base>/s:
 * .seg, .alloc, .gil, .imports and .stacks.  Returns its pid. */
static long make_session(const char *base)
{
    const char *py = at_test_python_or_skip("static");
    char *out, *err;
    int rc = at_test_shf(&out, &err,
                         "%s -q --rate 1000 -o %s/s %s -c 'import json, os, time; "
                         "x = [bytes(1000) for _ in range(1000)]; t = time.time()\n"
                         "while time.time() - t < 0.1: pass\nprint(os.getpid())'",
                         at_test_archtrace(), base, py);
    cr_assert_eq(rc, 0, "archtrace run -o: %d: %s", rc, err);
    long pid = atol(out);
    cr_assert_gt(pid, 0, "the pid printed: '%s'", out);
    free(out), free(err);
    return pid;
}

/* `archtrace report -q --json <base>/r.json <base>/s`: its status. */
static int report_json(const char *base, char **err)
{
    return at_test_shf(NULL, err, "%s report -q --json %s/r.json %s/s", at_test_archtrace(), base, base);
}

static char *json_of(const char *base, const char *expr)
{
    char path[600];
    snprintf(path, sizeof path, "%s/r.json", base);
    char *v = at_test_json(path, expr);
    cr_assert_not_null(v, "JSON query %s", expr);
    return v;
}

static void assert_one_line(const char *err, const char *what)
{
    const char *nl = strchr(err, '\n');
    cr_assert(nl && nl[1] == '\0', "%s: one line on stderr, got: '%s'", what, err);
}

Test(salvage, report_of_an_empty_dir_is_8_one_line)
{
    char *dir = at_test_tmpdir(), *out, *err;
    int rc = at_test_shf(&out, &err, "%s report %s", at_test_archtrace(), dir);
    cr_assert_eq(rc, 8, "empty dir: 8, got %d: %s", rc, err);
    assert_one_line(err, "empty dir");
    cr_assert(strstr(err, "not an archtrace session"), "says why: %s", err);
    cr_assert_str_eq(out, "", "nothing on stdout");
    free(out), free(err);
    rc = at_test_shf(NULL, &err, "touch %s/notes.txt; %s report %s", dir, at_test_archtrace(), dir);
    cr_assert_eq(rc, 8, "no session.meta, no segment: 8, got %d: %s", rc, err);
    assert_one_line(err, "a dir of other files");
    free(err);
    rc = at_test_shf(NULL, &err, "%s report %s/no-such-dir", at_test_archtrace(), dir);
    cr_assert_eq(rc, 125, "missing dir: 125 (cannot read it), got %d: %s", rc, err);
    assert_one_line(err, "missing dir");
    free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(salvage, a_random_bytes_segment_alone_is_8)
{
    char *dir = at_test_tmpdir(), *err;
    for (int size = 1; size <= 20000; size *= 7) {
        int rc = at_test_shf(NULL, &err, "head -c %d /dev/urandom > %s/99.seg; %s report %s",
                             size, dir, at_test_archtrace(), dir);
        cr_assert_eq(rc, 8, "%d random bytes as the only segment: 8, got %d: %s", size, rc, err);
        cr_assert(strstr(err, "nothing in session"), "says nothing could be read: %s", err);
        free(err);
    }
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(salvage, truncated_segment_keeps_the_feature_files, .timeout = 60)
{
    char *base = at_test_tmpdir(), *err;
    long pid = make_session(base);
    at_test_shf(NULL, NULL, "truncate -s 100 %s/s/%ld.seg", base, pid);
    int rc = report_json(base, &err);
    cr_assert_eq(rc, 0, "something was recovered: 0, got %d: %s", rc, err);
    free(err);
    char *v = json_of(base, "[p['pid'] for p in d['processes']]");
    char want[64];
    snprintf(want, sizeof want, "[%ld]", pid);
    cr_assert_str_eq(v, want, "the process is still listed");
    free(v);
    v = json_of(base, "d['processes'][0]['recovered'], d['processes'][0]['damaged']");
    cr_assert(strstr(v, "True") && strstr(v, "seg truncated at 100 of"), "marked recovered and damaged: %s", v);
    free(v);
    v = json_of(base, "[k for k in ('alloc', 'gil', 'imports', 'samples') if d['processes'][0][k] is None]");
    cr_assert_str_eq(v, "[]", "alloc, gil, imports and samples reported from their files: missing %s", v);
    free(v);
    v = json_of(base, "d['damaged_files'], d['damaged']");
    cr_assert(strstr(v, "(1, [") && strstr(v, ".seg truncated at 100 of"), "session lists the damage: %s", v);
    free(v);
    /* the text header says so */
    rc = at_test_shf(NULL, &err, "%s report %s/s", at_test_archtrace(), base);
    cr_assert_eq(rc, 0, "text report: %d", rc);
    snprintf(want, sizeof want, "warning: process %ld damaged: seg truncated at 100 of", pid);
    cr_assert(strstr(err, want), "text header names the damage: %.3000s", err);
    cr_assert(strstr(err, "allocations (pid"), "allocations still shown: %.3000s", err);
    free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", base);
    free(base);
}

Test(salvage, truncated_feature_file_is_named_and_the_rest_reported, .timeout = 60)
{
    char *base = at_test_tmpdir(), *err;
    long pid = make_session(base);
    at_test_shf(NULL, NULL, "truncate -s 3000 %s/s/%ld.alloc", base, pid);
    int rc = report_json(base, &err);
    cr_assert_eq(rc, 0, "0, got %d: %s", rc, err);
    free(err);
    char *v = json_of(base, "d['processes'][0]['recovered'], d['processes'][0]['damaged']");
    cr_assert(strstr(v, "False") && strstr(v, "alloc truncated"), "the .alloc is named damaged: %s", v);
    free(v);
    v = json_of(base, "d['processes'][0]['alloc'] is None, d['processes'][0]['gil'] is None, "
                      "d['processes'][0]['python']['version'][:5]");
    cr_assert_str_eq(v, "(True, False, '3.11.')", "alloc lost, gil and the segment kept: %s", v);
    free(v);
    at_test_shf(NULL, NULL, "rm -rf %s", base);
    free(base);
}

Test(salvage, missing_session_meta_is_named_and_the_rest_reported, .timeout = 60)
{
    char *base = at_test_tmpdir(), *err;
    make_session(base);
    at_test_shf(NULL, NULL, "rm %s/s/session.meta", base);
    int rc = report_json(base, &err);
    cr_assert_eq(rc, 0, "0, got %d: %s", rc, err);
    cr_assert(strstr(err, "session.meta: missing"), "says so: %s", err);
    free(err);
    char *v = json_of(base, "d['damaged'], len(d['processes']), d['processes'][0]['alloc'] is None");
    cr_assert_str_eq(v, "(['session.meta missing'], 1, False)", "meta named, process reported: %s", v);
    free(v);
    at_test_shf(NULL, NULL, "rm -rf %s", base);
    free(base);
}

/* Random bytes (and truncations) in every file of a real session: report
 * exits 0 or 8, never crashes or hangs. */
Test(salvage, random_bytes_in_any_file_never_crash, .timeout = 240)
{
    char *base = at_test_tmpdir(), *err;
    long pid = make_session(base);
    static const char *const files[] = { "seg", "alloc", "gil", "imports", "stacks", "bpf", "meta" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        for (int round = 0; round < 3; round++) {
            char name[64];
            if (!strcmp(files[i], "meta"))
                snprintf(name, sizeof name, "session.meta");
            else
                snprintf(name, sizeof name, "%ld.%s", pid, files[i]);
            /* round 0: random bytes; 1: the file cut at a random point; 2: random bytes spliced in */
            const char *how[] = {
                "head -c $(shuf -i 1-70000 -n 1) /dev/urandom > %s/c/%s",
                "[ -f %s/c/%s ] && truncate -s $(( $(shuf -i 0-100 -n 1) * $(stat -c %%s %s/c/%s) / 100 )) %s/c/%s",
                "[ -f %s/c/%s ] && head -c 512 /dev/urandom | dd of=%s/c/%s bs=1 seek=$(shuf -i 0-4000 -n 1) conv=notrunc 2>/dev/null",
            };
            at_test_shf(NULL, NULL, "rm -rf %s/c; cp -r %s/s %s/c", base, base, base);
            char cmd[2048];
            snprintf(cmd, sizeof cmd, how[round], base, name, base, name, base, name);
            at_test_sh(cmd, NULL, NULL);
            int rc = at_test_shf(NULL, &err, "timeout 30 %s report --json %s/r.json %s/c", at_test_archtrace(),
                                 base, base);
            cr_assert(rc == 0 || rc == 8, "%s, round %d: report exits 0 or 8, got %d: %.2000s", name, round, rc, err);
            free(err);
        }
    }
    at_test_shf(NULL, NULL, "rm -rf %s", base);
    free(base);
}

/* The checker itself, on synthetic files. */
Test(salvage, scan_names_each_damaged_file)
{
    char *dir = at_test_tmpdir();
    at_seg_header_t a = make_header(10), b = make_header(11);
    write_seg(dir, 10, &a, sizeof(a));
    write_seg(dir, 11, &b, 100);            /* truncated */
    write_seg(dir, 12, "garbage!", 8);      /* bad magic */
    FILE *f = at_session_create_file(dir, 11, "gil");
    fputs("not a gil file", f);
    fclose(f);
    at_salvage_t s;
    cr_assert_eq(at_salvage_scan(dir, &s), 0, "scan");
    cr_assert_eq(s.count, 3, "three pids, got %zu", s.count);
    cr_assert_eq(s.meta, -ENOENT, "no session.meta");
    cr_assert_eq(s.damaged_files, 3, "three damaged files, got %zu", s.damaged_files);
    const at_salvage_pid_t *p = at_salvage_find(&s, 11);
    cr_assert(p && p->nnotes == 2, "pid 11: two notes");
    cr_assert(strstr(p->notes[0], "seg truncated at 100 of"), "note: %s", p->notes[0]);
    cr_assert(strstr(p->notes[1], "gil "), "note: %s", p->notes[1]);
    p = at_salvage_find(&s, 12);
    cr_assert(p && strstr(p->notes[0], "bad magic"), "pid 12: bad magic");
    cr_assert_eq(at_salvage_find(&s, 10)->readable, AT_SALVAGE_SEG, "pid 10's segment is fine");
    cr_assert(!at_salvage_nothing_readable(&s), "something is readable");
    at_salvage_free(&s);
    at_session_remove(dir);
    free(dir);
}
