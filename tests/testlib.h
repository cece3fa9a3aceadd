/* SPDX-License-Identifier: MIT */
/* testlib.h - helpers shared by the integration tests: find the two
 * CPython 3.11 build shapes, run commands, query JSON reports. */
#ifndef AT_TESTLIB_H
#define AT_TESTLIB_H
#include <sys/types.h>
#include <stddef.h>

/* Path of the interpreter of a build shape ("static": Debian's
 * /usr/bin/python3.11; "shared": the libpython3.11.so one first on PATH),
 * or of a newer CPython ("3.12", "3.13": the newest such release found
 * in a venv, /usr/bin, pyenv or on PATH, never a free-threaded one), or
 * NULL when this machine has none (then skip with the reason). */
const char *at_test_python(const char *shape);

/* at_test_python, or skip the current test saying which shape is missing
 * (or that $ARCHTRACE_TEST_SHAPES, a comma-separated list, leaves it out:
 * the ASan reruns of `make test` take two of the four). */
const char *at_test_python_or_skip(const char *shape);

/* Every interpreter the integration tests cover: 3.11's two build
 * shapes, then 3.12 and 3.13, as a Criterion parameter (names inline, no
 * pointers: Criterion copies a parameter into the test's own process);
 * each test skips where this machine has no such Python:
 *
 *     ParameterizedTestParameters(dump, call_chain)
 *     {
 *         static at_test_shape_t shapes[] = AT_TEST_SHAPES;
 *         return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
 *     }
 *     ParameterizedTest(at_test_shape_t *s, dump, call_chain) { ... at_test_python_or_skip(s->name) ... }
 */
typedef struct at_test_shape {
    char name[8];             /* "static", "shared" (3.11), "3.12", "3.13" */
} at_test_shape_t;

#define AT_TEST_SHAPES { { "static" }, { "shared" }, { "3.12" }, { "3.13" } }
#define AT_TEST_NSHAPES 4
#define AT_TEST_SHAPES_SHARED { { "shared" }, { "3.12" }, { "3.13" } } /* one build per version */
#define AT_TEST_SHAPES_311 { { "static" }, { "shared" } }  /* the labs' 3.11, both build shapes */

/* A test run once per interpreter of a list (AT_TEST_SHAPES, or
 * AT_TEST_SHAPES_ENDS: the oldest and newest layouts, 3.11 static and
 * 3.13, for a test whose per-version part another test already runs on
 * all four, to keep `make test` in its time), its body seeing `shape`
 * (const char *); needs <criterion/parameterized.h>:
 *     AT_TEST_EACH_SHAPE(alloc, lab04_top5, .timeout = 90) { lab04(shape); } */
#define AT_TEST_SHAPES_ENDS { { "static" }, { "3.13" } }
#define AT_TEST_EACH_IN(list, suite, test, ...)                                            \
    ParameterizedTestParameters(suite, test)                                               \
    {                                                                                      \
        static at_test_shape_t shapes[] = list;                                            \
        return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes); \
    }                                                                                      \
    static void suite##_##test##_body(const char *shape);                                  \
    ParameterizedTest(at_test_shape_t *param, suite, test, __VA_ARGS__)                    \
    {                                                                                      \
        suite##_##test##_body(param->name);                                                \
    }                                                                                      \
    static void suite##_##test##_body(const char *shape)
#define AT_TEST_EACH_SHAPE(suite, test, ...) AT_TEST_EACH_IN(AT_TEST_SHAPES, suite, test, __VA_ARGS__)
#define AT_TEST_EACH_END_SHAPE(suite, test, ...) AT_TEST_EACH_IN(AT_TEST_SHAPES_ENDS, suite, test, __VA_ARGS__)

/* "3.11." for 3.11's shapes, else "3.12." / "3.13.": what the report's
 * version of a process run with that interpreter starts with. */
const char *at_test_shape_version(const char *shape);

/* at_test_json as a number (True/False as 1/0); fails the test when the
 * expression cannot be evaluated. */
double at_test_json_num(const char *path, const char *expr);

/* A note on stderr that does not fail the run: Criterion 2.4 makes the
 * whole binary exit 1 after any cr_log_warn, even when every test passed. */
void at_test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run `sh -c cmd`; stdout/stderr into malloc'd strings (either may be
 * NULL to discard).  Returns the exit status, 128+N for a signal. */
int at_test_sh(const char *cmd, char **out, char **err);

/* printf-style at_test_sh, output discarded unless asked. */
int at_test_shf(char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Evaluate a Python expression over the JSON document in `path` (bound
 * to `d`) with python3, e.g. "len(d['processes'])"; malloc'd str() of the
 * result without the newline, or NULL on error. */
char *at_test_json(const char *path, const char *expr);

/* A fresh private temp directory (malloc'd path). */
char *at_test_tmpdir(void);

/* Wait up to timeout_ms for path to exist (a fixture's "ready" file):
 * 1 when it does, 0 when it never came. */
int at_test_wait_file(const char *path, long timeout_ms);

/* The pid a fixture wrote into dir/name once it ran (waited for 15 s at
 * most; the test fails when it never comes or is not a pid). */
int at_test_pid_file(const char *dir, const char *name);

/* `sh -c cmd` in the background, leading a process group of its own,
 * stdin from /dev/null, stdout into `out` and stderr into `err` (the same
 * file, one offset, when err is NULL or names out).  The group is
 * remembered for at_test_kill_groups. */
pid_t at_test_spawn_group(const char *cmd, const char *out, const char *err);

/* SIGKILL every group at_test_spawn_group started: a suite's .fini, so a
 * server, client or target spinning forever does not outlive a test that
 * failed half-way. */
void at_test_kill_groups(void);

/* `archtrace -p PID dump ARGS`: its stdout (malloc'd); fails the test
 * unless it exits 0 with nothing on stderr (shape names the case). */
char *at_test_dump(pid_t pid, const char *shape, const char *args);

/* Absolute path of build/archtrace (ARCHTRACE_BIN overrides, e.g. for
 * the ASan build). */
const char *at_test_archtrace(void);

#endif
