/* SPDX-License-Identifier: MIT */
/* test_py311.c - every number in common/py311.h re-derived from the real
 * CPython 3.11 headers of both build shapes.
 *
 * py311.h is plain numbers so the shim, the sampler and the BPF programs
 * can share it without Python.h.  Here one table pairs each macro with the
 * C expression (offsetof, sizeof, an enum value) that states it in the
 * CPython headers.  For each shape the test asks its interpreter where its
 * headers are (sysconfig's "include"), writes a probe from the table that
 * includes them with Py_BUILD_CORE and the internal pycore_*.h, builds it
 * with cc and compares what it prints with the macros.  Another test parses
 * the #define names of py311.h, so a macro added there without a row here
 * (or a reason in the unchecked list) fails.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py311.h"
#include "testlib.h"

#define PY311_HEADER "common/py311.h"
#define MAX_NAME     64
#define MAX_VALUES   128
#define MAX_PATH     512 /* an include directory; "%511s" below */

/* One macro of py311.h and the expression that gives it in CPython. */
typedef struct {
    const char *name; /* the macro's name, as py311.h spells it         */
    long value;       /* its value, as compiled into archtrace           */
    const char *expr; /* C over the CPython 3.11 headers that must agree */
} layout_row_t;

#define ROW(macro, expr) { #macro, (long)(macro), expr }

static const layout_row_t layout[] = {
    /* _PyRuntimeState: interpreters, gilstate, ceval.gil (pycore_gil.h) */
    ROW(AT_RT_INTERPRETERS_HEAD, "offsetof(_PyRuntimeState, interpreters.head)"),
    ROW(AT_RT_INTERPRETERS_MAIN, "offsetof(_PyRuntimeState, interpreters.main)"),
    ROW(AT_RT_GILSTATE_TSTATE_CURRENT, "offsetof(_PyRuntimeState, gilstate.tstate_current)"),
    ROW(AT_RT_GIL, "offsetof(_PyRuntimeState, ceval.gil)"),
    ROW(AT_RT_GIL_LAST_HOLDER, "offsetof(_PyRuntimeState, ceval.gil.last_holder)"),
    ROW(AT_RT_GIL_LOCKED, "offsetof(_PyRuntimeState, ceval.gil.locked)"),
    ROW(AT_RT_GIL_SWITCH_NUMBER, "offsetof(_PyRuntimeState, ceval.gil.switch_number)"),
    ROW(AT_RT_GIL_COND, "offsetof(_PyRuntimeState, ceval.gil.cond)"),
    ROW(AT_RT_GIL_MUTEX, "offsetof(_PyRuntimeState, ceval.gil.mutex)"),
    ROW(AT_RT_GIL_SWITCH_COND, "offsetof(_PyRuntimeState, ceval.gil.switch_cond)"),
    ROW(AT_RT_GIL_SWITCH_MUTEX, "offsetof(_PyRuntimeState, ceval.gil.switch_mutex)"),
    ROW(AT_RT_AUDIT_HOOK_HEAD, "offsetof(_PyRuntimeState, audit_hook_head)"),
    ROW(AT_AUDIT_ENTRY_NEXT, "offsetof(_Py_AuditHookEntry, next)"),
    ROW(AT_AUDIT_ENTRY_HOOK, "offsetof(_Py_AuditHookEntry, hookCFunction)"),
    /* PyInterpreterState (pycore_interp.h) */
    ROW(AT_INTERP_NEXT, "offsetof(PyInterpreterState, next)"),
    ROW(AT_INTERP_TSTATE_HEAD, "offsetof(PyInterpreterState, threads.head)"),
    ROW(AT_INTERP_RUNTIME, "offsetof(PyInterpreterState, runtime)"),
    ROW(AT_INTERP_ID, "offsetof(PyInterpreterState, id)"),
    ROW(AT_INTERP_GC_GENERATION_STATS, "offsetof(PyInterpreterState, gc.generation_stats)"),
    ROW(AT_INTERP_MODULES, "offsetof(PyInterpreterState, modules)"),
    /* PyThreadState (cpython/pystate.h) */
    ROW(AT_TSTATE_PREV, "offsetof(PyThreadState, prev)"),
    ROW(AT_TSTATE_NEXT, "offsetof(PyThreadState, next)"),
    ROW(AT_TSTATE_INTERP, "offsetof(PyThreadState, interp)"),
    ROW(AT_TSTATE_CFRAME, "offsetof(PyThreadState, cframe)"),
    ROW(AT_TSTATE_THREAD_ID, "offsetof(PyThreadState, thread_id)"),
    ROW(AT_TSTATE_NATIVE_THREAD_ID, "offsetof(PyThreadState, native_thread_id)"),
    ROW(AT_TSTATE_ID, "offsetof(PyThreadState, id)"),
    ROW(AT_CFRAME_CURRENT_FRAME, "offsetof(_PyCFrame, current_frame)"),
    /* _PyInterpreterFrame (pycore_frame.h) */
    ROW(AT_IFRAME_CODE, "offsetof(_PyInterpreterFrame, f_code)"),
    ROW(AT_IFRAME_PREVIOUS, "offsetof(_PyInterpreterFrame, previous)"),
    ROW(AT_IFRAME_PREV_INSTR, "offsetof(_PyInterpreterFrame, prev_instr)"),
    ROW(AT_IFRAME_STACKTOP, "offsetof(_PyInterpreterFrame, stacktop)"),
    ROW(AT_IFRAME_IS_ENTRY, "offsetof(_PyInterpreterFrame, is_entry)"),
    ROW(AT_IFRAME_OWNER, "offsetof(_PyInterpreterFrame, owner)"),
    ROW(AT_FRAME_OWNED_BY_GENERATOR, "FRAME_OWNED_BY_GENERATOR"),
    /* PyCodeObject (cpython/code.h) */
    ROW(AT_CODE_FIRSTLINENO, "offsetof(PyCodeObject, co_firstlineno)"),
    ROW(AT_CODE_NLOCALSPLUS, "offsetof(PyCodeObject, co_nlocalsplus)"),
    ROW(AT_CODE_FILENAME, "offsetof(PyCodeObject, co_filename)"),
    ROW(AT_CODE_NAME, "offsetof(PyCodeObject, co_name)"),
    ROW(AT_CODE_QUALNAME, "offsetof(PyCodeObject, co_qualname)"),
    ROW(AT_CODE_LINETABLE, "offsetof(PyCodeObject, co_linetable)"),
    ROW(AT_CODE_FIRSTTRACEABLE, "offsetof(PyCodeObject, _co_firsttraceable)"),
    ROW(AT_CODE_CODE_ADAPTIVE, "offsetof(PyCodeObject, co_code_adaptive)"),
    ROW(AT_SIZEOF_CODEUNIT, "sizeof(_Py_CODEUNIT)"),
    /* objects the walkers decode: type names, bytes, str */
    ROW(AT_OBJECT_TYPE, "offsetof(PyObject, ob_type)"),
    ROW(AT_VAR_SIZE, "offsetof(PyVarObject, ob_size)"),
    ROW(AT_TYPE_NAME, "offsetof(PyTypeObject, tp_name)"),
    ROW(AT_BYTES_SVAL, "offsetof(PyBytesObject, ob_sval)"),
    ROW(AT_UNICODE_LENGTH, "offsetof(PyASCIIObject, length)"),
    ROW(AT_UNICODE_STATE, "offsetof(PyASCIIObject, state)"),
    ROW(AT_SIZEOF_PYASCIIOBJECT, "sizeof(PyASCIIObject)"),
    ROW(AT_SIZEOF_PYCOMPACTUNICODEOBJECT, "sizeof(PyCompactUnicodeObject)"),
    /* what the thread-name reader walks: modules, dicts, instances, ints */
    ROW(AT_TYPE_FLAGS, "offsetof(PyTypeObject, tp_flags)"),
    ROW(AT_TPFLAGS_MANAGED_DICT, "Py_TPFLAGS_MANAGED_DICT"),
    ROW(AT_HEAPTYPE_CACHED_KEYS, "offsetof(PyHeapTypeObject, ht_cached_keys)"),
    ROW(AT_MODULE_DICT, "offsetof(PyModuleObject, md_dict)"),
    ROW(AT_LONG_DIGITS, "offsetof(PyLongObject, ob_digit)"),
    ROW(AT_LONG_SHIFT, "PyLong_SHIFT"),
    ROW(AT_DICT_KEYS, "offsetof(PyDictObject, ma_keys)"),
    ROW(AT_DICT_VALUES, "offsetof(PyDictObject, ma_values)"),
    ROW(AT_DICTKEYS_LOG2_INDEX_BYTES, "offsetof(PyDictKeysObject, dk_log2_index_bytes)"),
    ROW(AT_DICTKEYS_KIND, "offsetof(PyDictKeysObject, dk_kind)"),
    ROW(AT_DICTKEYS_NENTRIES, "offsetof(PyDictKeysObject, dk_nentries)"),
    ROW(AT_DICTKEYS_INDICES, "offsetof(PyDictKeysObject, dk_indices)"),
    ROW(AT_DICT_KEYS_GENERAL, "DICT_KEYS_GENERAL"),
    ROW(AT_SIZEOF_DICT_KEY_ENTRY, "sizeof(PyDictKeyEntry)"),
    ROW(AT_SIZEOF_DICT_UNICODE_ENTRY, "sizeof(PyDictUnicodeEntry)"),
};
#define N_LAYOUT (sizeof layout / sizeof layout[0])

/* Names in py311.h that no CPython header can confirm, and why. */
static const struct {
    const char *name;
    const char *why;
} unchecked[] = {
    { "AT_PY311_H", "the include guard, not a value" },
    { "AT_MAX_STACK_DEPTH", "archtrace's own bound on a frame walk, not a CPython layout" },
    { "AT_MAX_THREADS", "archtrace's own bound on a thread list walk, not a CPython layout" },
    { "AT_MAX_INTERPRETERS", "archtrace's own bound on an interpreter walk, not a CPython layout" },
    { "AT_OBJECT_MANAGED_DICT", "returned by the inline _PyObject_ManagedDictPointer (obj - 3 words), "
                                "no field to take offsetof of; the thread-name test reads real objects" },
    { "AT_OBJECT_MANAGED_VALUES", "returned by the inline _PyObject_ValuesPointer (obj - 4 words), "
                                  "no field to take offsetof of; the thread-name test reads real objects" },
};
#define N_UNCHECKED (sizeof unchecked / sizeof unchecked[0])

/* ---- py311.h's own names ---------------------------------------------- */

typedef struct {
    char names[MAX_VALUES][MAX_NAME];
    size_t count;
} name_list_t;

/* Every `#define NAME` in the header, in order (asserts it can be read). */
static void read_defined_names(name_list_t *list)
{
    FILE *f = fopen(PY311_HEADER, "r");
    cr_assert(f, "cannot open %s (run the test from the repository root)", PY311_HEADER);
    char line[512];
    list->count = 0;
    while (fgets(line, sizeof line, f)) {
        char name[MAX_NAME];
        if (sscanf(line, " # define %63[A-Za-z0-9_]", name) != 1)
            continue;
        cr_assert_lt(list->count, MAX_VALUES, "more than %d macros in %s", MAX_VALUES,
                     PY311_HEADER);
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

static int times_in_tables(const char *name)
{
    int n = 0;
    for (size_t i = 0; i < N_LAYOUT; i++)
        n += strcmp(layout[i].name, name) == 0;
    for (size_t i = 0; i < N_UNCHECKED; i++)
        n += strcmp(unchecked[i].name, name) == 0;
    return n;
}

Test(py311, every_macro_is_checked_or_excused)
{
    name_list_t defined;
    read_defined_names(&defined);
    cr_assert_gt(defined.count, N_UNCHECKED, "parsed only %zu #define names from %s",
                 defined.count, PY311_HEADER);
    for (size_t i = 0; i < defined.count; i++)
        cr_expect_eq(times_in_tables(defined.names[i]), 1,
                     "%s is defined in %s but has %s in tests/test_py311.c: add a row with "
                     "its offsetof/sizeof expression, or a reason in `unchecked`",
                     defined.names[i], PY311_HEADER,
                     times_in_tables(defined.names[i]) ? "more than one entry" : "no entry");
    for (size_t i = 0; i < N_LAYOUT; i++)
        cr_expect(in_names(&defined, layout[i].name), "row %s is not a #define of %s any more",
                  layout[i].name, PY311_HEADER);
    for (size_t i = 0; i < N_UNCHECKED; i++)
        cr_expect(in_names(&defined, unchecked[i].name), "unchecked %s is not a #define of %s",
                  unchecked[i].name, PY311_HEADER);
}

/* ---- the probe -------------------------------------------------------- */

/* Values the probe printed, one "NAME VALUE" line each. */
typedef struct {
    char names[MAX_VALUES][MAX_NAME];
    long values[MAX_VALUES];
    size_t count;
    char version[32]; /* PY_VERSION of the headers */
} probe_result_t;

static void write_probe(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs("#define Py_BUILD_CORE 1\n"
          "#include <Python.h>\n"
          "#include <internal/pycore_gil.h>\n"     /* struct _gil_runtime_state */
          "#include <internal/pycore_runtime.h>\n" /* _PyRuntimeState */
          "#include <internal/pycore_interp.h>\n"  /* PyInterpreterState */
          "#include <internal/pycore_frame.h>\n"   /* _PyInterpreterFrame, owners */
          "#include <internal/pycore_code.h>\n"
          "#include <internal/pycore_dict.h>\n"   /* PyDictKeysObject, entries */
          "#include <internal/pycore_moduleobject.h>\n" /* PyModuleObject */
          "#include <stddef.h>\n#include <stdio.h>\n"
          "int main(void)\n{\n"
          "    printf(\"PY_VERSION %s\\n\", PY_VERSION);\n",
          f);
    for (size_t i = 0; i < N_LAYOUT; i++)
        fprintf(f, "    printf(\"%%s %%ld\\n\", \"%s\", (long)(%s));\n", layout[i].name,
                layout[i].expr);
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
static void run_probe(const char *include_dir, probe_result_t *res)
{
    char *dir = at_test_tmpdir();
    cr_assert(dir, "cannot create a temporary directory");
    char src[512];
    snprintf(src, sizeof src, "%s/probe.c", dir);
    write_probe(src);
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "cc -I'%s' -o '%s/probe' '%s' 2>&1 && '%s/probe'", include_dir,
                         dir, src, dir);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
    cr_assert_eq(rc, 0, "the offsetof probe failed against %s (exit %d):\n%s", include_dir, rc,
                 out ? out : "");
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

/* ---- the two build shapes --------------------------------------------- */

/* Where a shape's headers are: asked from its interpreter, so the headers
 * checked belong to the python the tests trace; the usual install path
 * when that interpreter is not found.  Version into `version` ("" when
 * there is no interpreter to ask). */
static void shape_include_dir(const char *shape, char dir[MAX_PATH], char version[32])
{
    const char *py = at_test_python(shape);
    char *out = NULL;
    version[0] = '\0';
    if (py && at_test_shf(&out, NULL,
                          "'%s' -c 'import platform, sysconfig; "
                          "print(platform.python_version(), sysconfig.get_path(\"include\"))'",
                          py) == 0 && out && sscanf(out, "%31s %511s", version, dir) == 2) {
        free(out);
        return;
    }
    free(out);
    version[0] = '\0';
    if (strcmp(shape, "static") == 0) {
        snprintf(dir, MAX_PATH, "/usr/include/python3.11");
        return;
    }
    const char *root = getenv("PYENV_ROOT");
    const char *home = getenv("HOME");
    if (root && *root)
        snprintf(dir, MAX_PATH, "%s/versions/3.11.7/include/python3.11", root);
    else
        snprintf(dir, MAX_PATH, "%s/.pyenv/versions/3.11.7/include/python3.11",
                 home ? home : "/root");
}

static void check_shape(const char *shape)
{
    char inc[MAX_PATH], py_version[32], internal[MAX_PATH + 64];
    shape_include_dir(shape, inc, py_version);
    snprintf(internal, sizeof internal, "%s/internal/pycore_frame.h", inc);
    if (access(internal, R_OK) != 0)
        cr_skip_test("%s build: no CPython internal headers at %s (%s)", shape, internal,
                     strcmp(shape, "static") == 0 ? "apt-get install python3.11-dev"
                                                  : "is a shared-libpython 3.11 installed?");

    probe_result_t res;
    run_probe(inc, &res);
    cr_assert_eq(strncmp(res.version, "3.11.", 5), 0, "%s: headers are CPython %s, not 3.11", inc,
                 res.version);
    if (py_version[0])
        cr_expect_str_eq(res.version, py_version,
                         "%s build: headers at %s are %s but its interpreter is %s", shape, inc,
                         res.version, py_version);
    for (size_t i = 0; i < N_LAYOUT; i++) {
        const long *got = probe_value(&res, layout[i].name);
        cr_expect(got, "the probe printed no value for %s", layout[i].name);
        if (got)
            cr_expect_eq(*got, layout[i].value,
                         "%s is %ld in %s but %s is %ld in the CPython %s headers at %s",
                         layout[i].name, layout[i].value, PY311_HEADER, layout[i].expr, *got,
                         res.version, inc);
    }
}

Test(py311, static_build_headers_agree, .timeout = 30)
{
    check_shape("static");
}

Test(py311, shared_build_headers_agree, .timeout = 30)
{
    check_shape("shared");
}
