/* SPDX-License-Identifier: MIT */
/* layout_probe.c - see layout_probe.h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures/testutil.h"
#include "layout_probe.h"
#include "testlib.h"

#define MAX_NAME   64
#define MAX_VALUES 256
#define MAX_PATH   512 /* an include directory; "%511s" below */

/* ---- the header's own names ------------------------------------------- */

typedef struct {
    char names[MAX_VALUES][MAX_NAME];
    size_t count;
} name_list_t;

/* Every `#define NAME` in the header, in order (asserts it can be read). */
static void read_defined_names(const char *header, name_list_t *list)
{
    FILE *f = fopen(header, "r");
    cr_assert(f, "cannot open %s (run the test from the repository root)", header);
    char line[512];
    list->count = 0;
    while (fgets(line, sizeof line, f)) {
        char name[MAX_NAME];
        if (sscanf(line, " # define %63[A-Za-z0-9_]", name) != 1)
            continue;
        cr_assert_lt(list->count, MAX_VALUES, "more than %d macros in %s", MAX_VALUES, header);
        snprintf(list->names[list->count++], MAX_NAME, "%s", name);
    }
    fclose(f);
}

static int in_names(const name_list_t *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->names[i], name) == 0)
            return 1;
    return 0;
}

static int times_in_tables(const at_layout_table_t *t, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < t->nrows; i++)
        n += strcmp(t->rows[i].name, name) == 0;
    for (size_t i = 0; i < t->nunchecked; i++)
        n += strcmp(t->unchecked[i].name, name) == 0;
    return n;
}

void at_layout_check_names(const at_layout_table_t *t)
{
    static name_list_t defined; /* big: not on Criterion's stack */
    read_defined_names(t->header, &defined);
    cr_assert_gt(defined.count, t->nunchecked, "parsed only %zu #define names from %s",
                 defined.count, t->header);
    for (size_t i = 0; i < defined.count; i++) {
        int n = times_in_tables(t, defined.names[i]);
        cr_expect_eq(n, 1,
                     "%s is defined in %s but has %s in its test table: add a row with its "
                     "offsetof/sizeof expression, or a reason in `unchecked`",
                     defined.names[i], t->header, n ? "more than one entry" : "no entry");
    }
    for (size_t i = 0; i < t->nrows; i++)
        cr_expect(in_names(&defined, t->rows[i].name), "row %s is not a #define of %s any more",
                  t->rows[i].name, t->header);
    for (size_t i = 0; i < t->nunchecked; i++)
        cr_expect(in_names(&defined, t->unchecked[i].name), "unchecked %s is not a #define of %s",
                  t->unchecked[i].name, t->header);
}

/* ---- the probe -------------------------------------------------------- */

/* Values the probe printed, one "NAME VALUE" line each. */
typedef struct {
    char names[MAX_VALUES][MAX_NAME];
    long values[MAX_VALUES];
    size_t count;
    char version[32]; /* PY_VERSION of the headers */
} probe_result_t;

static void write_probe(const at_layout_table_t *t, const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs("#define Py_BUILD_CORE 1\n"
          "#include <Python.h>\n"
          "#include <internal/pycore_gil.h>\n"     /* struct _gil_runtime_state */
          "#include <internal/pycore_runtime.h>\n" /* _PyRuntimeState, _Py_DebugOffsets */
          "#include <internal/pycore_interp.h>\n"  /* PyInterpreterState */
          "#include <internal/pycore_frame.h>\n"   /* _PyInterpreterFrame, owners */
          "#include <internal/pycore_code.h>\n"
          "#include <internal/pycore_dict.h>\n"   /* PyDictKeysObject, entries */
          "#include <internal/pycore_moduleobject.h>\n" /* PyModuleObject */
          "#include <internal/pycore_object.h>\n" /* managed dicts, inline values */
          "#include <stddef.h>\n#include <stdio.h>\n"
          "int main(void)\n{\n"
          "    printf(\"PY_VERSION %s\\n\", PY_VERSION);\n",
          f);
    for (size_t i = 0; i < t->nrows; i++)
        fprintf(f, "    printf(\"%%s %%ld\\n\", \"%s\", (long)(%s));\n", t->rows[i].name,
                t->rows[i].expr);
    fputs("    return 0;\n}\n", f);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

static void parse_probe_output(char *out, probe_result_t *res)
{
    memset(res, 0, sizeof *res);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "PY_VERSION %31s", res->version) == 1)
            continue;
        cr_assert_lt(res->count, MAX_VALUES, "the probe printed too many lines");
        cr_assert_eq(sscanf(line, "%63s %ld", res->names[res->count], &res->values[res->count]), 2,
                     "unexpected probe line: %s", line);
        res->count++;
    }
}

/* Build the probe against the headers in `include_dir` and run it. */
static void run_probe(const at_layout_table_t *t, const char *include_dir, probe_result_t *res)
{
    char *dir = at_test_tmpdir();
    cr_assert(dir, "cannot create a temporary directory");
    char src[512];
    snprintf(src, sizeof src, "%s/probe.c", dir);
    write_probe(t, src);
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "cc -I'%s' -o '%s/probe' '%s' 2>&1 && '%s/probe'", include_dir,
                         dir, src, dir);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
    cr_assert_eq(rc, 0, "the offsetof probe for %s failed against %s (exit %d):\n%s", t->header,
                 include_dir, rc, out ? out : "");
    parse_probe_output(out, res);
    free(out);
}

static const long *probe_value(const probe_result_t *res, const char *name)
{
    for (size_t i = 0; i < res->count; i++)
        if (strcmp(res->names[i], name) == 0)
            return &res->values[i];
    return NULL;
}

void at_layout_check_python(const at_layout_table_t *t, const char *python, const char *what)
{
    if (!python)
        cr_skip_test("%s: no CPython %s interpreter on this machine, %s not checked", what,
                     t->version, t->header);
    char inc[MAX_PATH] = "", py_version[32] = "", internal[MAX_PATH + 64];
    char *out = NULL;
    int rc = at_test_shf(&out, NULL,
                         "'%s' -c 'import platform, sysconfig; "
                         "print(platform.python_version(), sysconfig.get_path(\"include\"))'",
                         python);
    int got = rc == 0 && out ? sscanf(out, "%31s %511s", py_version, inc) : 0;
    free(out);
    cr_assert_eq(got, 2, "%s: cannot ask %s where its headers are (exit %d)", what, python, rc);
    snprintf(internal, sizeof internal, "%s/internal/pycore_frame.h", inc);
    if (access(internal, R_OK) != 0)
        cr_skip_test("%s (%s): no CPython internal headers at %s (a -dev package or a "
                     "source build installs them), %s not checked",
                     what, python, internal, t->header);

    static probe_result_t res; /* big: not on Criterion's stack */
    run_probe(t, inc, &res);
    size_t vlen = strlen(t->version);
    cr_assert(strncmp(res.version, t->version, vlen) == 0 && res.version[vlen] == '.',
              "%s: headers at %s are CPython %s, not %s", what, inc, res.version, t->version);
    cr_expect_str_eq(res.version, py_version, "%s: headers at %s are %s but %s is %s", what, inc,
                     res.version, python, py_version);
    size_t agree = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        const long *v = probe_value(&res, t->rows[i].name);
        cr_expect(v, "the probe printed no value for %s", t->rows[i].name);
        if (!v)
            continue;
        cr_expect_eq(*v, t->rows[i].value,
                     "%s is %ld in %s but %s is %ld in the CPython %s headers at %s",
                     t->rows[i].name, t->rows[i].value, t->header, t->rows[i].expr, *v, res.version,
                     inc);
        agree += *v == t->rows[i].value;
    }
    at_test_note("%s: %zu of %zu values of %s agree with CPython %s (%s)", what, agree, t->nrows,
                 t->header, res.version, python);
}

/* ---- finding an interpreter of a minor version ------------------------- */

/* tu_find_python (fixtures/testutil.h) is the tests' one finder: the
 * version's venv, /usr/bin, pyenv's newest, then PATH; default builds
 * only.  Remembered per version: the probes ask more than once. */
const char *at_layout_find_python(const char *minor)
{
    static struct {
        char minor[8];
        char *path;
    } cache[8];
    static int ncache;
    for (int i = 0; i < ncache; i++)
        if (strcmp(cache[i].minor, minor) == 0)
            return cache[i].path;
    char buf[4096];
    char *path = tu_find_python(minor, NULL, buf, sizeof buf) == 0 ? strdup(buf) : NULL;
    if (ncache < (int)(sizeof cache / sizeof cache[0])) {
        snprintf(cache[ncache].minor, sizeof cache[ncache].minor, "%s", minor);
        cache[ncache++].path = path;
    }
    return path;
}
