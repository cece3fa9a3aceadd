/* SPDX-License-Identifier: MIT */
/* test_stacks.c - <pid>.stacks round trip, corrupt files, and the text/JSON/collapsed/SVG reports. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "fixtures/testutil.h"
#include "report/flamegraph.h"
#include "report/report_features.h"
#include "session/stacks.h"

#define PID 4242

/* A session with known counts: thread 10 runs f 70 times and g 30 times
 * under main; thread 11 sleeps 100 times (idle); names are hostile. */
typedef struct known {
    char dir[256];
    uint32_t main, f, g, sleep, weird, native;
} known_t;

static void make_known(known_t *k)
{
    cr_assert(tu_tmpdir(k->dir, sizeof k->dir), "mkdtemp failed: %s", strerror(errno));
    at_stacks_t *s = at_stacks_new(PID);
    cr_assert(s, "at_stacks_new failed");
    at_symtab_t *t = at_stacks_symtab(s);
    k->main = at_symtab_intern(t, AT_SYM_PY, "<module>", "/app/main.py");
    k->f = at_symtab_intern(t, AT_SYM_PY, "f", "/app/main.py");
    k->g = at_symtab_intern(t, AT_SYM_PY, "Klass.g", "/app/lib.py");
    k->sleep = at_symtab_intern(t, AT_SYM_NATIVE, "clock_nanosleep", "libc.so.6");
    k->weird = at_symtab_intern(t, AT_SYM_PY, "we\tird\n\"f;n\" \\ \x01\xff", "/tmp/ü;<&>.py");
    at_frame_t a[] = { { k->main, 1 }, { k->f, 5 } }, b[] = { { k->main, 1 }, { k->g, 7 } };
    at_frame_t c[] = { { k->main, 2 }, { k->sleep, 0 } }, w[] = { { k->weird, 3 } };
    cr_assert_eq(at_stacks_add(s, 10, 0, 1, a, 2, 60), 0, "add failed");
    cr_assert_eq(at_stacks_add(s, 10, 0, 0, a, 2, 10), 0, "add failed");
    cr_assert_eq(at_stacks_add(s, 10, 0, 1, b, 2, 30), 0, "add failed");
    cr_assert_eq(at_stacks_add(s, 11, 1, 0, c, 2, 100), 0, "add failed");
    cr_assert_eq(at_stacks_add(s, 12, 1, 0, w, 1, 1), 0, "add failed");
    cr_assert_eq(at_thread_names_set(at_stacks_names(s), 11, "sleep;er\tß"), 0, "name failed");
    at_stacks_meta_t *m = at_stacks_meta(s);
    snprintf(m->comm, sizeof m->comm, "python3.11");
    snprintf(m->version, sizeof m->version, "3.11.7");
    snprintf(m->build, sizeof m->build, "shared");
    m->rate_hz = 100;
    m->samples = 200;
    m->missed = 3;
    m->duration_s = 2.0;
    m->waits_polled = 150;
    m->waits_timed = 53;
    cr_assert_eq(at_stacks_save(s, k->dir), 0, "save failed: %s", strerror(errno));
    at_stacks_free(s);
}

static char *stacks_path(const known_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%d.stacks", k->dir, PID);
    return buf;
}

/* Run fn(out) into a string. */
static char *capture(int (*fn)(const char *, FILE *, const at_options_t *), const char *dir,
                     const at_options_t *o, int *rc)
{
    char path[] = "/tmp/at_cap_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    FILE *f = fdopen(fd, "w");
    *rc = fn(dir, f, o);
    fclose(f);
    char *text = tu_slurp(path);
    unlink(path);
    return text;
}

static int text_of(const char *dir, FILE *out, const at_options_t *o)
{
    return at_stacks_report_text(dir, PID, out, o);
}

static int json_of(const char *dir, FILE *out, const at_options_t *o)
{
    at_json_t j;
    at_json_init(&j, out, 0);
    return at_stacks_report_json(dir, PID, &j, o);
}

/* ---- round trip ------------------------------------------------------- */

Test(stacks, save_load_round_trip)
{
    known_t k;
    char err[512];
    at_stacks_t *s;
    make_known(&k);
    cr_assert_eq(at_stacks_load(k.dir, PID, &s, err, sizeof err), 0, "load failed: %s", err);
    const at_stacks_meta_t *m = at_stacks_meta(s);
    cr_assert(m->samples == 200 && m->missed == 3 && m->duration_s == 2.0 && m->rate_hz == 100,
              "meta differs after the round trip");
    cr_assert(m->waits_polled == 150 && m->waits_timed == 53, "waits differ after the round trip: %lu %lu",
              (unsigned long)m->waits_polled, (unsigned long)m->waits_timed);
    cr_assert_str_eq(m->version, "3.11.7", "version differs");
    at_symtab_t *t = at_stacks_symtab(s);
    cr_assert_str_eq(at_symtab_func(t, k.weird), "we\tird\n\"f;n\" \\ \x01\xff", "escaped name differs");
    cr_assert_str_eq(at_symtab_file(t, k.weird), "/tmp/ü;<&>.py", "UTF-8 file name differs");
    cr_assert_eq(at_symtab_kind(t, k.sleep), AT_SYM_NATIVE, "kind differs");
    cr_assert_str_eq(at_thread_names_get(at_stacks_names(s), 11), "sleep;er\tß", "thread name differs");
    cr_assert_null(at_thread_names_get(at_stacks_names(s), 10), "an unnamed thread stays unnamed");
    uint64_t total = 0;
    int n = 0;
    size_t c = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &c, &v)) {
        total += v.count;
        n++;
    }
    cr_assert(n == 5 && total == 201, "%d stacks, %lu samples after the round trip", n, (unsigned long)total);
    at_stacks_free(s);
    tu_rmtree(k.dir);
}

Test(stacks, missing_pid_gives_enoent_and_no_output)
{
    known_t k;
    int rc;
    at_options_t o = { .top_n = 5 };
    make_known(&k);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/none", k.dir);
    char *out = capture(text_of, dir, &o, &rc);
    cr_assert(rc == -ENOENT && !out[0], "text: rc %d, output \"%s\"", rc, out);
    free(out);
    out = capture(json_of, dir, &o, &rc);
    cr_assert(rc == -ENOENT && !out[0], "json: rc %d, output \"%s\"", rc, out);
    free(out);
    tu_rmtree(k.dir);
}

/* ---- reports -------------------------------------------------------------- */

Test(stacks, text_report_cpu_view)
{
    known_t k;
    int rc;
    at_options_t o = { .top_n = 5 };
    make_known(&k);
    char *out = capture(text_of, k.dir, &o, &rc);
    cr_log_info("%s", out);
    cr_assert_eq(rc, 0, "text report failed: %d", rc);
    cr_assert(strstr(out, "200 samples in 2.00 s: 100.0 Hz achieved of 100 Hz asked, 3 missed"),
              "header lacks rate and missed:\n%s", out);
    cr_assert(strstr(out, "CPU view: 100 thread-samples (101 idle left out"), "wrong CPU view:\n%s", out);
    const char *f = strstr(out, "  70.0    70.0        70  f "), *g = strstr(out, "  30.0    30.0        30  Klass.g");
    const char *m = strstr(out, "   0.0   100.0         0  <module>");
    cr_assert(f && g && m && f < g, "rows wrong or out of order:\n%s", out);
    cr_assert(strstr(f, "/app/main.py:5\n") && strstr(g, "/app/lib.py:7\n"), "file:line wrong:\n%s", out);
    cr_assert(!strstr(out, "clock_nanosleep"), "idle stacks must be left out:\n%s", out);
    free(out);
    tu_rmtree(k.dir);
}

Test(stacks, text_report_wall_view_escapes_names)
{
    known_t k;
    int rc;
    at_options_t o = { .top_n = 10, .idle = 1 };
    make_known(&k);
    char *out = capture(text_of, k.dir, &o, &rc);
    cr_assert_eq(rc, 0, "text report failed: %d", rc);
    cr_assert(strstr(out, "wall view: 201 thread-samples"), "wrong wall view:\n%s", out);
    cr_assert(strstr(out, "clock_nanosleep"), "idle stacks must be in with --idle:\n%s", out);
    for (const char *p = out; *p; p++)
        cr_assert(*p == '\n' || (unsigned char)*p >= 0x20, "raw control byte 0x%02x in the text report", *p);
    free(out);
    tu_rmtree(k.dir);
}

/* Validate with Python's own parsers: what users will use. */
static void python_check(const char *data, const char *code, const char *what)
{
    char path[] = "/tmp/at_check_XXXXXX", cmd[4096];
    int fd = mkstemp(path);
    cr_assert(fd >= 0 && write(fd, data, strlen(data)) == (ssize_t)strlen(data), "cannot write %s", path);
    close(fd);
    snprintf(cmd, sizeof cmd, "python3 -c '%s' %s", code, path);
    int st = system(cmd);
    unlink(path);
    cr_assert_eq(st, 0, "%s: the Python check failed: %s", what, code);
}

Test(stacks, json_report_shape)
{
    known_t k;
    int rc;
    at_options_t o = { .top_n = 5 };
    make_known(&k);
    char *out = capture(json_of, k.dir, &o, &rc);
    cr_assert_eq(rc, 0, "json report failed: %d", rc);
    python_check(out,
                 "import json,sys; d=json.load(open(sys.argv[1]));"
                 "assert d[\"rate_hz\"]==100 and d[\"count\"]==200 and d[\"missed\"]==3 and d[\"duration_s\"]==2.0;"
                 "s=d[\"stacks\"]; assert len(s)==3, s;"
                 "assert s[0]==dict(thread=10,frames=[\"<module> (/app/main.py:1)\",\"f (/app/main.py:5)\"],count=60,idle=False,gil=True,gil_wait=False), s[0];"
                 "assert all(not x[\"idle\"] for x in s);"
                 "assert d[\"top\"][0][\"function\"]==\"f\" and d[\"top\"][0][\"self\"]==70",
                 "json");
    free(out);
    tu_rmtree(k.dir);
}

Test(stacks, collapsed_lines)
{
    known_t k;
    int rc;
    at_options_t o = { .idle = 1 };
    make_known(&k);
    char *out = capture(at_stacks_write_collapsed, k.dir, &o, &rc);
    cr_assert_eq(rc, 0, "collapsed failed: %d", rc);
    cr_assert(strstr(out, "python3.11 (4242);thread 10;<module> (/app/main.py:1);f (/app/main.py:5) 70\n"),
              "the flags must merge into one line:\n%s", out);
    cr_assert(strstr(out, "python3.11 (4242);thread 11 \"sleep,er?ß\";<module> (/app/main.py:2);"
                          "clock_nanosleep (libc.so.6) 100\n"),
              "native frame line (thread named, its ';' and tab made safe) missing:\n%s", out);
    cr_assert_eq(count_lines_of(out), 4, "4 lines expected:\n%s", out);
    for (char *l = out; *l;) {
        char *nl = strchr(l, '\n');
        cr_assert(nl, "unterminated line");
        *nl = '\0';
        cr_assert(count_char(l, ';') == (int)(strstr(l, "thread 12") ? 2 : 3), "a ';' leaked from a name: %s", l);
        l = nl + 1;
    }
    free(out);
    tu_rmtree(k.dir);
}

Test(stacks, svg_parses_and_scales)
{
    known_t k;
    int rc;
    at_options_t o = { 0 };
    make_known(&k);
    char *out = capture(at_stacks_write_svg, k.dir, &o, &rc);
    cr_assert_eq(rc, 0, "svg failed: %d", rc);
    python_check(out,
                 "import sys, xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot();"
                 "n=\"{http://www.w3.org/2000/svg}\"; gs=r.findall(\".//\"+n+\"g\");"
                 "w={g.find(n+\"title\").text.split(chr(10))[0]: float(g.find(n+\"rect\").get(\"width\"))+0.5 for g in gs};"
                 "assert abs(w[\"f (/app/main.py:5)\"]/w[\"thread 10\"]-0.7)<0.01, w;"
                 "assert int(r.get(\"width\"))==1200 and r.find(n+\"script\") is not None;"
                 "assert \"clock_nanosleep (libc.so.6)\" not in w",
                 "svg");
    free(out);
    tu_rmtree(k.dir);
}

/* ---- corrupt files ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    char *data = tu_slurp(path);
    cr_assert(data, "cannot read %s", path);
    *len = strlen(data);
    return data;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    cr_assert(f && fwrite(data, 1, len, f) == len, "cannot write %s", path);
    fclose(f);
}

Test(stacks, truncated_file_is_a_clear_error, .timeout = 30)
{
    known_t k;
    char path[512], err[512];
    size_t len;
    make_known(&k);
    char *good = read_file(stacks_path(&k, path, sizeof path), &len);
    for (size_t cut = 0; cut < len; cut++) {
        at_stacks_t *s;
        write_file(path, good, cut);
        int rc = at_stacks_load(k.dir, PID, &s, err, sizeof err);
        if (rc != -EBADMSG)
            cr_assert_fail("cut at %zu of %zu: rc %d, want -EBADMSG", cut, len, rc);
        if (!strstr(err, "4242.stacks: line "))
            cr_assert_fail("cut at %zu: message lacks the place: %s", cut, err);
    }
    cr_log_info("last message: %s", err);
    free(good);
    tu_rmtree(k.dir);
}

Test(stacks, random_corruption_never_crashes, .timeout = 60)
{
    known_t k;
    char path[512], err[512];
    size_t len;
    unsigned seed = 7;
    make_known(&k);
    char *good = read_file(stacks_path(&k, path, sizeof path), &len);
    char *bad = malloc(len);
    int rejected = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(bad, good, len);
        for (int flips = 1 + rand_r(&seed) % 3; flips; flips--)
            bad[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
        write_file(path, bad, len);
        at_stacks_t *s = NULL;
        int rc = at_stacks_load(k.dir, PID, &s, err, sizeof err);
        if (rc != 0 && rc != -EBADMSG)
            cr_assert_fail("round %d: rc %d", round, rc);
        rejected += rc != 0;
        if (s) { /* what loads must render */
            FILE *null = fopen("/dev/null", "w");
            at_options_t o = { .idle = 1 };
            at_stacks_report_text(k.dir, PID, null, &o);
            fclose(null);
            at_stacks_free(s);
        }
    }
    cr_log_info("%d of 3000 corrupted files rejected", rejected);
    cr_assert(rejected > 1000, "only %d of 3000 corrupted files rejected", rejected);
    free(bad);
    free(good);
    tu_rmtree(k.dir);
}

Test(stacks, corrupt_file_in_report_prints_one_line)
{
    known_t k;
    char path[512], errpath[] = "/tmp/at_err_XXXXXX";
    int rc;
    make_known(&k);
    const char *bad = "archtrace-stacks\t1\npid\t4242\nstack\t1\t2\n";
    write_file(stacks_path(&k, path, sizeof path), bad, strlen(bad));
    int fd = mkstemp(errpath), saved = dup(2);
    dup2(fd, 2);
    at_options_t o = { 0 };
    char *out = capture(text_of, k.dir, &o, &rc);
    fflush(stderr);
    dup2(saved, 2);
    char *err = tu_slurp(errpath);
    unlink(errpath);
    cr_assert(rc == -EBADMSG && !out[0], "rc %d, output \"%s\"", rc, out);
    cr_assert(err && count_lines_of(err) == 1 && strstr(err, "archtrace: ") == err && strstr(err, "line 3"),
              "expected one line naming line 3, got: %s", err);
    free(out);
    free(err);
    tu_rmtree(k.dir);
}

/* ---- symbols ------------------------------------------------------------------- */

Test(stacks, symtab_interns_by_kind_and_strings)
{
    at_symtab_t *t = at_symtab_new();
    uint32_t a = at_symtab_intern(t, AT_SYM_PY, "f", "x.py"), b = at_symtab_intern(t, AT_SYM_NATIVE, "f", "x.py");
    uint32_t c = at_symtab_intern(t, AT_SYM_PY, "f", "x.py");
    cr_assert(a != b && a == c, "interning broken: %u %u %u", a, b, c);
    for (int i = 0; i < 50000; i++) {
        char name[32];
        snprintf(name, sizeof name, "fn%d", i);
        cr_assert_neq(at_symtab_intern(t, AT_SYM_PY, name, "y.py"), AT_SYM_NONE, "intern %d failed", i);
    }
    cr_assert_eq(at_symtab_intern(t, AT_SYM_PY, "fn123", "y.py"), 123 + 2, "lookup after growth failed");
    at_symtab_free(t);
}
