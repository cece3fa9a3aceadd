/* SPDX-License-Identifier: MIT */
/* test_imports.c - import chains: the <pid>.imports reader, the extra 3.11
 * offsets, and archtrace against -X importtime and lab 02 on both python3.11
 * build shapes.
 *
 * Integration tests run build/archtrace (ARCHTRACE_BIN overrides) from the
 * repository root with only the imports feature, and read its --json
 * report through tests/fixtures/imports_flatten.py (one tab-separated line
 * per import record).  Times are compared in the same process (archtrace
 * running `python -X importtime`), so a loaded machine changes both alike.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imports.h"
#include "imports_format.h"
#include "report/report_features.h"
#include "testlib.h"

/* ---- helpers: processes and files ------------------------------------ */

/* Run a shell command, its stdout into out; the exit status, -1 if it
 * could not run. */
static int sh(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = out ? fread(out, 1, n - 1, p) : 0;
    if (out) {
        out[got] = '\0';
        while (got && (out[got - 1] == '\n' || out[got - 1] == ' '))
            out[--got] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, p) > 0)
            ;
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (buf)
        buf[got] = '\0';
    return buf;
}

static const char *archtrace_bin(void)
{
    return at_test_archtrace();
}

/* The interpreter of a build shape into py, or skip the test. */
static void need_python(const char *shape, char *py, size_t n)
{
    if (access(archtrace_bin(), X_OK) != 0)
        cr_skip_test("%s is not built (run make first)", archtrace_bin());
    snprintf(py, n, "%s", at_test_python_or_skip(shape));
}

static void make_tmpdir(char *dir, size_t n)
{
    snprintf(dir, n, "%s/at-imports-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(dir), "cannot create a temporary directory: %s", strerror(errno));
}

static void remove_tmpdir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    sh(cmd, NULL, 0);
}

/* archtrace (imports only) on `python ARGS`: stdout/stderr/JSON into dir.
 * Returns archtrace's exit status. */
static int run_traced(const char *dir, const char *py, const char *args, const char *extra)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s --no-alloc --no-gil --no-sample %s --json '%s/out.json' -- '%s' %s "
             ">'%s/stdout' 2>'%s/stderr' </dev/null",
             archtrace_bin(), extra ? extra : "-q", dir, py, args, dir, dir);
    return sh(cmd, NULL, 0);
}

/* ---- helpers: the flattened JSON report ------------------------------ */

enum { F_PID, F_MODULE, F_PARENT, F_FINDER, F_PATH_FINDER, F_PATH_ENTRY, F_LOADER, F_ORIGIN,
       F_FOUND, F_VIA, F_THREAD, F_DEPTH, F_ENC_THREAD, F_CUM, F_SELF, F_NAMESPACE, F_ERROR,
       F_CONSULTED, F_OBSERVED, F_COUNT };

typedef struct rec {
    char *line;                      /* owns the fields                 */
    char *f[F_COUNT];
} rec_t;

typedef struct recs {
    rec_t *v;
    size_t n;
} recs_t;

static void load_recs(const char *dir, recs_t *rs)
{
    char cmd[1200], path[600];
    snprintf(path, sizeof path, "%s/flat.tsv", dir);
    snprintf(cmd, sizeof cmd, "python3 tests/fixtures/imports_flatten.py '%s/out.json' >'%s'", dir, path);
    cr_assert_eq(sh(cmd, NULL, 0), 0, "imports_flatten.py could not read %s/out.json", dir);
    char *all = slurp(path);
    cr_assert(all, "no flattened report in %s", path);
    rs->n = 0;
    rs->v = NULL;
    for (char *save, *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        rs->v = realloc(rs->v, (rs->n + 1) * sizeof(rec_t));
        rec_t *r = &rs->v[rs->n++];
        r->line = strdup(line);
        char *p = r->line;
        for (int i = 0; i < F_COUNT; i++)
            r->f[i] = p ? strsep(&p, "\t") : "";
    }
    free(all);
}

static void free_recs(recs_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].line);
    free(rs->v);
}

/* The first record of a module (in any process when pid is NULL). */
static const rec_t *rec_of(const recs_t *rs, const char *module, const char *pid)
{
    for (size_t i = 0; i < rs->n; i++)
        if (!strcmp(rs->v[i].f[F_MODULE], module) && (!pid || !strcmp(rs->v[i].f[F_PID], pid)))
            return &rs->v[i];
    return NULL;
}

static const rec_t *must(const recs_t *rs, const char *module)
{
    const rec_t *r = rec_of(rs, module, NULL);
    cr_assert(r, "archtrace recorded no import of %s (%zu records)", module, rs->n);
    return r;
}

static void expect_chain(const rec_t *r, const char *finder, const char *path_finder, const char *loader)
{
    const char *m = r->f[F_MODULE];
    cr_expect_str_eq(r->f[F_FINDER], finder, "%s: finder is '%s', expected %s", m, r->f[F_FINDER], finder);
    cr_expect_str_eq(r->f[F_PATH_FINDER], path_finder, "%s: path entry finder is '%s', expected '%s'", m,
                     r->f[F_PATH_FINDER], path_finder);
    cr_expect_str_eq(r->f[F_LOADER], loader, "%s: loader is '%s', expected %s", m, r->f[F_LOADER], loader);
    cr_expect_str_eq(r->f[F_FOUND], "1", "%s: not found (error '%s')", m, r->f[F_ERROR]);
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* ---- helpers: -X importtime ------------------------------------------ */

typedef struct it_line {
    char name[160];
    long self_us, cum_us;
    int level;
} it_line_t;

/* Parse "import time: SELF | CUM | <indent>name" lines. */
static size_t parse_importtime(const char *text, it_line_t *out, size_t max)
{
    size_t n = 0;
    for (const char *l = text; l && *l && n < max; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int off = 0;
        if (sscanf(l, "import time: %ld | %ld |%n", &out[n].self_us, &out[n].cum_us, &off) != 2)
            continue;
        const char *name = l + off + 1;    /* one space after the bar */
        int spaces = 0;
        while (name[spaces] == ' ')
            spaces++;
        out[n].level = spaces / 2;
        size_t len = strcspn(name + spaces, "\n");
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)len, name + spaces);
        n++;
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names -X importtime listed and the names archtrace recorded through
 * the import machinery's C path (via "import") must be the same multiset. */
static size_t count_name(const char *const *v, size_t n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += !strcmp(v[i], name);
    return c;
}

/* `extra`: a module -X importtime may list once more than archtrace (one
 * archtrace itself imported in the same process), or NULL. */
static void expect_same_modules(const it_line_t *it, size_t nit, const recs_t *rs, const char *what,
                                const char *extra)
{
    const char **a = calloc(nit + 1, sizeof *a), **b = calloc(rs->n + 1, sizeof *b);
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < nit; i++)
        a[na++] = it[i].name;
    for (size_t i = 0; i < rs->n; i++)
        if (!strcmp(rs->v[i].f[F_VIA], "import") && !strcmp(rs->v[i].f[F_PID], rs->v[0].f[F_PID]))
            b[nb++] = rs->v[i].f[F_MODULE];
    qsort(a, na, sizeof *a, cmp_str);
    qsort(b, nb, sizeof *b, cmp_str);
    if (extra && count_name(a, na, extra) == count_name(b, nb, extra) + 1) {
        size_t k = 0;
        while (strcmp(a[k], extra))
            k++;
        memmove(&a[k], &a[k + 1], (na - k - 1) * sizeof *a);
        na--;
    }
    size_t i = 0;
    while (i < na && i < nb && !strcmp(a[i], b[i]))
        i++;
    cr_expect(i == na && i == nb,
              "%s: -X importtime listed %zu imports, archtrace %zu; first difference: "
              "importtime '%s' vs archtrace '%s'",
              what, na, nb, i < na ? a[i] : "(end)", i < nb ? b[i] : "(end)");
    free(a);
    free(b);
}

/* ---- the file format ------------------------------------------------- */

typedef struct fake {
    unsigned char *buf;
    size_t size;
    at_imp_header_t *h;
    at_imp_record_t *r;
    char *arena;
} fake_t;

static at_imp_str_t fake_str(fake_t *f, const char *s)
{
    at_imp_str_t ref = { f->h->arena_used, (uint32_t)strlen(s) };
    memcpy(f->arena + ref.off, s, ref.len);
    f->h->arena_used += ref.len;
    return ref;
}

/* A small valid file: json (top level) importing json.decoder. */
static void fake_make(fake_t *f, uint32_t capacity, uint32_t arena)
{
    f->size = at_imp_file_size(capacity, arena);
    f->buf = calloc(1, f->size);
    f->h = (at_imp_header_t *)f->buf;
    f->r = (at_imp_record_t *)(f->buf + sizeof(at_imp_header_t));
    f->arena = (char *)(f->r + capacity);
    *f->h = (at_imp_header_t){ .magic = AT_IMP_MAGIC, .version = AT_IMP_VERSION,
                               .header_size = sizeof(at_imp_header_t),
                               .record_size = sizeof(at_imp_record_t), .capacity = capacity,
                               .arena_size = arena, .count = 2, .pid = 42,
                               .state = AT_IMP_STATE_EXITED, .start_phase = AT_IMP_PHASE_INIT };
    const at_imp_str_t none = { AT_IMP_NONE, 0 };
    for (int i = 0; i < 2; i++) {
        at_imp_record_t *r = &f->r[i];
        *r = (at_imp_record_t){ .tid = 42, .flags = AT_IMP_F_DONE | AT_IMP_F_OK | AT_IMP_F_SPEC,
                                .start_ns = 1000 + 100 * (uint64_t)i, .end_ns = 5000 - 100 * (uint64_t)i };
        r->parent = r->path_entry = r->error = r->consulted = none;
        r->finder = fake_str(f, "PathFinder");
        r->path_finder = fake_str(f, "FileFinder");
        r->loader = fake_str(f, "SourceFileLoader");
        r->origin = fake_str(f, "/x.py");
    }
    f->r[0].module = fake_str(f, "json");
    f->r[0].enclosing = AT_IMP_NONE;
    f->r[0].children_ns = 3800;
    f->r[1].module = fake_str(f, "json.decoder");
    f->r[1].enclosing = 0;
    f->r[1].depth = 1;
}

/* Decode; the reason on failure. */
static int fake_decode(fake_t *f, char *why, size_t n)
{
    at_imp_view_t v;
    return at_imports_decode(f->buf, f->size, &v, why, n);
}

static void expect_rejected(fake_t *f, const char *reason_part, const char *what)
{
    char why[200];
    int rc = fake_decode(f, why, sizeof why);
    cr_expect_eq(rc, -EINVAL, "%s: decode returned %d, expected -EINVAL", what, rc);
    cr_expect(strstr(why, reason_part), "%s: reason '%s' does not say '%s'", what, why, reason_part);
    free(f->buf);
}

Test(imports_format, valid_file_decodes)
{
    fake_t f;
    char why[200];
    fake_make(&f, 8, 256);
    at_imp_view_t v;
    cr_assert_eq(at_imports_decode(f.buf, f.size, &v, why, sizeof why), 0, "rejected: %s", why);
    cr_expect_eq(v.h->count, 2, "two records, got %u", v.h->count);
    cr_expect_eq(v.rec[1].enclosing, 0, "json.decoder nests in json");
    cr_expect(!memcmp(v.arena + v.rec[1].module.off, "json.decoder", 12), "module string readable");
    free(f.buf);
}

Test(imports_format, rejects_truncated_and_foreign_files)
{
    fake_t f;
    char why[200];
    fake_make(&f, 8, 256);
    cr_expect_eq(at_imports_decode(f.buf, 100, &(at_imp_view_t){ 0 }, why, sizeof why), -EINVAL,
                 "a file shorter than its header must be refused");
    cr_expect(strstr(why, "truncated"), "reason says truncated: %s", why);
    cr_expect_eq(at_imports_decode(f.buf, f.size - 1, &(at_imp_view_t){ 0 }, why, sizeof why), -EINVAL,
                 "a file one byte short must be refused");
    cr_expect(strstr(why, "truncated"), "reason says truncated: %s", why);
    cr_expect_eq(at_imports_decode(NULL, 0, &(at_imp_view_t){ 0 }, why, sizeof why), -EINVAL,
                 "no data must be refused");
    free(f.buf);

    fake_make(&f, 8, 256);
    f.h->magic = AT_IMP_MAGIC + 1;
    expect_rejected(&f, "magic", "wrong magic");
    fake_make(&f, 8, 256);
    f.h->version = 99;
    expect_rejected(&f, "version 99", "future version");
    fake_make(&f, 8, 256);
    f.h->record_size = 64;
    expect_rejected(&f, "layout", "other record size");
}

Test(imports_format, rejects_inconsistent_contents)
{
    fake_t f;
    fake_make(&f, 8, 256);
    f.h->count = 9;
    expect_rejected(&f, "9 records in a table of 8", "count beyond capacity");
    fake_make(&f, 8, 256);
    f.h->arena_used = 257;
    expect_rejected(&f, "arena", "arena overflow");
    fake_make(&f, 8, 256);
    f.r[1].origin.off = f.h->arena_used - 2;
    f.r[1].origin.len = 5;
    expect_rejected(&f, "record 1 string", "string past the arena");
    fake_make(&f, 8, 256);
    f.r[0].enclosing = 1;
    expect_rejected(&f, "enclosed by later record", "forward nesting");
    fake_make(&f, 8, 256);
    f.r[1].tid = 7;
    expect_rejected(&f, "does not nest", "nesting across threads");
    fake_make(&f, 8, 256);
    f.r[0].children_ns = 1u << 20;
    expect_rejected(&f, "inconsistent times", "children longer than the parent");
}

Test(imports_format, unfinished_records_are_accepted)
{
    fake_t f;
    char why[200];
    fake_make(&f, 8, 256);
    f.r[1].flags = 0;       /* killed inside the import: no end time */
    f.r[1].end_ns = 0;
    cr_expect_eq(fake_decode(&f, why, sizeof why), 0, "an unfinished import is data, not corruption: %s",
                 why);
    free(f.buf);
}

/* Whatever bytes a corrupt file holds, the reader refuses it or renders it:
 * never a crash (run under ASan by `make asan`). */
Test(imports_format, random_corruption_is_refused_or_rendered, .timeout = 60)
{
    char dir[256], path[400];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/4242.%s", dir, AT_IMP_SUFFIX);
    FILE *devnull = fopen("/dev/null", "w");
    unsigned seed = 12345, accepted = 0;
    for (int round = 0; round < 300; round++) {
        fake_t f;
        fake_make(&f, 8, 256);
        for (int k = 0; k < 1 + round % 6; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % f.size;
            f.buf[at] ^= (unsigned char)(1u << ((seed >> 4) % 8));
        }
        char why[200];
        at_imp_view_t v;
        int rc = at_imports_decode(f.buf, f.size, &v, why, sizeof why);
        cr_assert(rc == 0 || rc == -EINVAL, "round %d: decode returned %d", round, rc);
        FILE *out = fopen(path, "w");
        cr_assert(out, "cannot write %s", path);
        fwrite(f.buf, 1, f.size, out);
        fclose(out);
        at_json_t j;
        at_json_init(&j, devnull, 0);
        FILE *saved = stderr;
        stderr = devnull;   /* the reader names each refused file on stderr */
        int t = at_imports_report_text(dir, 4242, devnull, NULL);
        int js = at_imports_report_json(dir, 4242, &j, NULL);
        stderr = saved;
        cr_expect_eq(t, rc, "round %d: text rendering %d disagrees with decode %d", round, t, rc);
        cr_expect_eq(js, rc, "round %d: JSON rendering %d disagrees with decode %d", round, js, rc);
        accepted += rc == 0;
        free(f.buf);
    }
    fclose(devnull);
    remove_tmpdir(dir);
    cr_expect_gt(accepted, 0, "some flips (in unused bytes or times) leave a valid file");
    cr_expect_lt(accepted, 300, "most flips are caught");
}

/* ---- the extra CPython offsets ---------------------------------------- */

Test(imports_layout, offsets_match_the_installed_headers, .timeout = 60)
{
    const char *inc = "/usr/include/python3.11";
    if (access("/usr/include/python3.11/internal/pycore_frame.h", R_OK) != 0)
        cr_skip_test("python3.11-dev internal headers not installed");
    char dir[256], cmd[2048], out[4096];
    make_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "cat >'%s/off.c' <<'EOF'\n"
             "#define Py_BUILD_CORE 1\n#include <Python.h>\n#include <frameobject.h>\n"
             "#include <internal/pycore_frame.h>\n#include <stddef.h>\n#include <stdio.h>\n"
             "int main(void){printf(\"%%zu %%zu %%zu %%zu %%zu %%zu %%zu %%zu %%zu %%zu %%zu\","
             "offsetof(PyThreadState,tracing),offsetof(PyThreadState,c_profilefunc),"
             "offsetof(PyThreadState,c_tracefunc),offsetof(PyThreadState,c_profileobj),"
             "offsetof(_PyCFrame,use_tracing),offsetof(PyFrameObject,f_frame),"
             "offsetof(_PyInterpreterFrame,f_globals),offsetof(_PyInterpreterFrame,localsplus),"
             "offsetof(PyCFunctionObject,m_ml),offsetof(PyCFunctionObject,m_self),"
             "offsetof(PyTypeObject,tp_flags));return 0;}\n"
             "EOF\n"
             "cc -I%s -o '%s/off' '%s/off.c' 2>&1 && '%s/off'",
             dir, inc, dir, dir, dir);
    int rc = sh(cmd, out, sizeof out);
    remove_tmpdir(dir);
    cr_assert_eq(rc, 0, "cannot build the offsetof probe: %s", out);
    size_t got[11];
    cr_assert_eq(sscanf(out, "%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu", &got[0], &got[1], &got[2],
                        &got[3], &got[4], &got[5], &got[6], &got[7], &got[8], &got[9], &got[10]),
                 11, "probe output: %s", out);
    const size_t want[11] = { AT_TSTATE_TRACING, AT_TSTATE_C_PROFILEFUNC, AT_TSTATE_C_TRACEFUNC,
                              AT_TSTATE_C_PROFILEOBJ, AT_CFRAME_USE_TRACING, AT_FRAMEOBJ_F_FRAME,
                              AT_IFRAME_GLOBALS, AT_IFRAME_LOCALSPLUS, AT_CFUNC_M_ML, AT_CFUNC_M_SELF,
                              AT_TYPE_FLAGS };
    for (int i = 0; i < 11; i++)
        cr_expect_eq(got[i], want[i], "offset #%d: headers say %zu, common/py311.h says %zu", i,
                     got[i], want[i]);
}

/* ---- finders and loaders, module set, times --------------------------- */

static void check_chain(const char *shape)
{
    char py[512], dir[256], args[2048];
    need_python(shape, py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    cr_assert_eq(run_traced(dir, py, "tests/fixtures/imports_chain.py", NULL), 0,
                 "archtrace %s imports_chain.py failed: see %s/stderr", shape, dir);
    recs_t rs;
    load_recs(dir, &rs);

    const rec_t *json = must(&rs, "json");
    expect_chain(json, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect(ends_with(json->f[F_ORIGIN], "/json/__init__.py"), "json origin: %s", json->f[F_ORIGIN]);
    cr_expect(json->f[F_PATH_ENTRY][0] && strstr(json->f[F_ORIGIN], json->f[F_PATH_ENTRY]) == json->f[F_ORIGIN],
              "json's path entry '%s' must be the sys.path directory holding %s", json->f[F_PATH_ENTRY],
              json->f[F_ORIGIN]);
    cr_expect_str_eq(json->f[F_PARENT], "__main__", "json imported by __main__, not %s", json->f[F_PARENT]);
    cr_expect_str_eq(json->f[F_DEPTH], "0", "json is a top-level import");
    cr_expect(strstr(json->f[F_CONSULTED], "BuiltinImporter,FrozenImporter"),
              "json: BuiltinImporter and FrozenImporter declined before PathFinder: '%s'",
              json->f[F_CONSULTED]);
    const rec_t *dec = must(&rs, "json.decoder");
    expect_chain(dec, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect_str_eq(dec->f[F_PARENT], "json", "json.decoder is imported by json");
    cr_expect(ends_with(dec->f[F_PATH_ENTRY], "/json"), "a submodule is found on its package's __path__: %s",
              dec->f[F_PATH_ENTRY]);

    expect_chain(must(&rs, "decimal"), "PathFinder", "FileFinder", "SourceFileLoader");
    expect_chain(must(&rs, "_decimal"), "PathFinder", "FileFinder", "ExtensionFileLoader");
    const rec_t *mini = must(&rs, "xml.dom.minidom");
    expect_chain(mini, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect(ends_with(mini->f[F_PATH_ENTRY], "/xml/dom"), "xml.dom.minidom path entry: %s",
              mini->f[F_PATH_ENTRY]);
    const rec_t *xml = must(&rs, "xml");
    expect_chain(xml, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect_str_eq(xml->f[F_PARENT], "__main__", "`import xml.dom.minidom` in __main__ imports xml");

    const rec_t *sym = must(&rs, "_symtable");
    expect_chain(sym, "BuiltinImporter", "", "BuiltinImporter");
    cr_expect_str_eq(sym->f[F_ORIGIN], "built-in", "_symtable origin");
    const rec_t *hello = must(&rs, "__hello__");
    expect_chain(hello, "FrozenImporter", "", "FrozenImporter");
    cr_expect_str_eq(hello->f[F_ORIGIN], "frozen", "__hello__ origin");

    const rec_t *miss = must(&rs, "archtrace_no_such_module");
    cr_expect_str_eq(miss->f[F_FOUND], "", "a failed import is recorded as not found");
    cr_expect_str_eq(miss->f[F_FINDER], "", "no finder answered for a missing module");
    cr_expect_str_eq(miss->f[F_ERROR], "ModuleNotFoundError", "the error is named");
    cr_expect(strstr(miss->f[F_CONSULTED], "BuiltinImporter,FrozenImporter,PathFinder"),
              "every finder was asked: '%s'", miss->f[F_CONSULTED]);

    const rec_t *sp = must(&rs, "stringprep");
    expect_chain(sp, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect_str_eq(sp->f[F_VIA], "import", "__import__() goes through the import statement's path");
    const rec_t *cs = must(&rs, "colorsys");
    expect_chain(cs, "PathFinder", "FileFinder", "SourceFileLoader");
    cr_expect_str_eq(cs->f[F_VIA], "importlib", "importlib.import_module is seen although it raises no audit event");
    cr_expect_str_eq(cs->f[F_PARENT], "__main__", "the caller of import_module is the importer");

    /* the module set, against a plain -X importtime run of the same file */
    snprintf(args, sizeof args, "'%s' -X importtime tests/fixtures/imports_chain.py 2>'%s/it' >/dev/null", py, dir);
    cr_assert_eq(sh(args, NULL, 0), 0, "plain python -X importtime failed");
    snprintf(args, sizeof args, "%s/it", dir);
    char *text = slurp(args);
    static it_line_t it[4096];
    size_t nit = parse_importtime(text, it, 4096);
    cr_assert_gt(nit, 20, "-X importtime listed only %zu imports", nit);
    expect_same_modules(it, nit, &rs, shape, NULL);
    free(text);
    free_recs(&rs);
    remove_tmpdir(dir);
}

AT_TEST_EACH_SHAPE(imports_chain, finders_loaders_and_module_set, .timeout = 120) { check_chain(shape); }

static int by_cum_desc(const void *a, const void *b)
{
    const it_line_t *x = a, *y = b;
    return (x->cum_us < y->cum_us) - (x->cum_us > y->cum_us);
}

/* The 10 slowest top-level imports: archtrace's cumulative time against
 * -X importtime's for the same imports in the same process. */
static void check_times(const char *shape)
{
    char py[512], dir[256], path[600];
    need_python(shape, py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    cr_assert_eq(run_traced(dir, py, "-X importtime tests/fixtures/imports_heavy.py", NULL), 0,
                 "archtrace %s -X importtime imports_heavy.py failed: see %s/stderr", shape, dir);
    recs_t rs;
    load_recs(dir, &rs);
    snprintf(path, sizeof path, "%s/stderr", dir);
    char *text = slurp(path);
    static it_line_t it[4096], top[4096];
    size_t nit = parse_importtime(text, it, 4096), ntop = 0;
    cr_assert_gt(nit, 200, "-X importtime listed %zu imports: imports_heavy.py should make 200+", nit);
    /* In this process archtrace's core itself imports atexit when
     * __main__ starts (to register its exit callback): -X importtime lists
     * that import, archtrace rightly does not record its own. */
    expect_same_modules(it, nit, &rs, shape, "atexit");
    for (size_t i = 0; i < nit; i++)
        if (it[i].level == 0)
            top[ntop++] = it[i];
    qsort(top, ntop, sizeof *top, by_cum_desc);
    for (size_t i = 0; i < ntop && i < 10; i++) {
        const rec_t *r = NULL;
        for (size_t k = 0; k < rs.n && !r; k++)
            if (!strcmp(rs.v[k].f[F_MODULE], top[i].name) && !strcmp(rs.v[k].f[F_DEPTH], "0"))
                r = &rs.v[k];
        cr_assert(r, "%s: no top-level record of %s", shape, top[i].name);
        double cum = atof(r->f[F_CUM]), want = (double)top[i].cum_us;
        cr_expect(cum >= want * 0.8 - 50 && cum <= want * 1.2 + 50,
                  "%s: %s cumulative %.0f us, -X importtime says %.0f us (more than 20%% apart)", shape,
                  top[i].name, cum, want);
    }
    free(text);
    free_recs(&rs);
    remove_tmpdir(dir);
}

AT_TEST_EACH_SHAPE(imports_times, ten_slowest_agree_with_importtime, .timeout = 120) { check_times(shape); }

/* ---- lab 02 ----------------------------------------------------------- */

static void check_lab02(const char *shape)
{
    char py[512], dir[256], path[600];
    if (access("labs/lab02.py", R_OK) != 0)
        cr_skip_test("labs/lab02.py is not there yet");
    need_python(shape, py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    cr_assert_eq(run_traced(dir, py, "labs/lab02.py", NULL), 0,
                 "lab02 under archtrace (%s) did not pass: see %s/stdout", shape, dir);
    snprintf(path, sizeof path, "%s/stdout", dir);
    char *out = slurp(path);
    const char *chain = out ? strstr(out, "CHAIN finder=") : NULL;
    cr_assert(chain, "lab02 printed no CHAIN line");
    char finder[128], loader[128], module[128];
    cr_assert_eq(sscanf(chain, "CHAIN finder=%127s loader=%127s module=%127s", finder, loader, module), 3,
                 "cannot parse the lab's line: %.100s", chain);
    cr_expect(strstr(out, "VERIFY lab02") && strstr(out, "... ok"), "lab02 verified itself under archtrace");

    recs_t rs;
    load_recs(dir, &rs);
    const rec_t *r = must(&rs, module);
    cr_expect_str_eq(r->f[F_FINDER], finder, "the lab says finder %s, archtrace says '%s'", finder, r->f[F_FINDER]);
    cr_expect_str_eq(r->f[F_LOADER], loader, "the lab says loader %s, archtrace says '%s'", loader, r->f[F_LOADER]);
    cr_expect_str_eq(r->f[F_PATH_FINDER], "", "a meta path finder of its own: no path entry finder");
    cr_expect_str_eq(r->f[F_FOUND], "1", "the synthetic module was imported");
    cr_expect_str_eq(r->f[F_PARENT], "__main__", "the lab's own code imported it");
    /* the lab's path hook section, when it has one */
    const rec_t *v = rec_of(&rs, "virtual_colors", NULL);
    if (v && strstr(out, "VirtualPathEntryFinder")) {
        cr_expect_str_eq(v->f[F_FINDER], "PathFinder", "virtual_colors comes through PathFinder");
        cr_expect_str_eq(v->f[F_PATH_FINDER], "VirtualPathEntryFinder", "found by the lab's path entry finder");
        cr_expect(strstr(out, v->f[F_PATH_ENTRY]) != NULL, "its path entry '%s' is the lab's", v->f[F_PATH_ENTRY]);
    }
    free(out);
    free_recs(&rs);
    remove_tmpdir(dir);
}

Test(imports_lab02, static_chain_matches_the_lab, .timeout = 120) { check_lab02("static"); }
Test(imports_lab02, shared_chain_matches_the_lab, .timeout = 120) { check_lab02("shared"); }

/* ---- what the program sees -------------------------------------------- */

/* Temporary directory names differ between runs: blank them out. */
static void normalize(char *s)
{
    const char *tag = "archtrace-imports-";
    for (char *p = strstr(s, tag); p; p = strstr(p, tag)) {
        char *q = p + strlen(tag);
        while (isalnum((unsigned char)*q) || *q == '_')
            *q++ = 'X';
        p = q;
    }
}

static void expect_same_text(char *plain, char *traced, const char *what)
{
    normalize(plain);
    normalize(traced);
    char *sa, *sb;
    char *a = strtok_r(plain, "\n", &sa), *b = strtok_r(traced, "\n", &sb);
    int line = 1;
    while (a && b && !strcmp(a, b)) {
        a = strtok_r(NULL, "\n", &sa);
        b = strtok_r(NULL, "\n", &sb);
        line++;
    }
    cr_expect(!a && !b, "%s: output differs at line %d:\n  plain:     %.300s\n  archtrace: %.300s", what, line,
              a ? a : "(end)", b ? b : "(end)");
}

/* Finder searches watched through the window, summed over the
 * processes' <pid>.imports headers in a kept session. */
static uint64_t windows_in(const char *session)
{
    char cmd[700], *out = NULL;
    uint64_t sum = 0;
    snprintf(cmd, sizeof cmd, "ls '%s'/*.imports", session);
    at_test_sh(cmd, &out, NULL);
    for (char *save, *f = strtok_r(out, "\n", &save); f; f = strtok_r(NULL, "\n", &save)) {
        FILE *fp = fopen(f, "rb");
        at_imp_header_t h;
        if (fp && fread(&h, sizeof h, 1, fp) == 1)
            sum += h.find_windows;
        if (fp)
            fclose(fp);
    }
    free(out);
    return sum;
}

/* One run of imports_behaviour.py into dir/<tag>, records into rs. */
static void run_behaviour(const char *dir, const char *py, const char *tag, const char *env, recs_t *rs)
{
    char sub[300], cmd[3400];
    snprintf(sub, sizeof sub, "%s/%s", dir, tag);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && %s %s --no-alloc --no-gil --no-sample -q -o '%s/s' --json '%s/out.json' "
             "-- '%s' tests/fixtures/imports_behaviour.py >'%s/stdout' 2>'%s/stderr' </dev/null",
             sub, env, archtrace_bin(), sub, sub, py, sub, sub);
    cr_assert_eq(sh(cmd, NULL, 0), 0, "imports_behaviour.py (%s) failed: see %s", tag, sub);
    load_recs(sub, rs);
}

static void normalize(char *s);

/* Which record of its module (0 for the first) rs->v[i] is. */
static int nth_of(const recs_t *rs, size_t i)
{
    int n = 0;
    for (size_t k = 0; k < i; k++)
        n += !strcmp(rs->v[k].f[F_MODULE], rs->v[i].f[F_MODULE]);
    return n;
}

static const rec_t *nth_rec(const recs_t *rs, const char *module, int nth)
{
    for (size_t k = 0; k < rs->n; k++)
        if (!strcmp(rs->v[k].f[F_MODULE], module) && nth-- == 0)
            return &rs->v[k];
    return NULL;
}

/* The stock import system is read from each search's result, not
 * watched (imports_stock.c): every record must say what the window says
 * (ARCHTRACE_IMPORTS_WATCH_ALL=1 watches every search), on a program
 * with namespace packages, a zip, bytecode-only modules, custom finders
 * and a fork; and the window must really be skipped. */
static void check_stock_reading(const char *shape)
{
    static const int fields[] = { F_FINDER, F_PATH_FINDER, F_PATH_ENTRY, F_LOADER, F_ORIGIN, F_FOUND,
                                  F_NAMESPACE, F_ERROR, F_CONSULTED, F_OBSERVED };
    char py[512], dir[256], path[600];
    need_python(shape, py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    recs_t read, watched;
    run_behaviour(dir, py, "read", "", &read);
    run_behaviour(dir, py, "watched", "env ARCHTRACE_IMPORTS_WATCH_ALL=1", &watched);
    cr_assert_eq(read.n, watched.n, "%s: %zu records read, %zu watched", shape, read.n, watched.n);
    cr_assert_gt(read.n, 50, "%s: only %zu records", shape, read.n);
    for (size_t i = 0; i < read.n; i++) {
        const rec_t *a = &read.v[i], *b = nth_rec(&watched, a->f[F_MODULE], nth_of(&read, i));
        cr_assert(b, "%s: %s read but not watched", shape, a->f[F_MODULE]);
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            normalize(a->f[fields[k]]);
            normalize(b->f[fields[k]]);
            cr_expect_str_eq(a->f[fields[k]], b->f[fields[k]], "%s: %s field %d: read '%s', watched '%s'", shape,
                             a->f[F_MODULE], fields[k], a->f[fields[k]], b->f[fields[k]]);
        }
    }
    snprintf(path, sizeof path, "%s/read/s", dir);
    uint64_t w_read = windows_in(path);
    snprintf(path, sizeof path, "%s/watched/s", dir);
    uint64_t w_all = windows_in(path);
    cr_expect_gt(w_all, 50, "%s: the window watched only %llu searches", shape, (unsigned long long)w_all);
    cr_expect_lt(w_read * 2, w_all, "%s: %llu of %llu searches still watched: the stock system is not read", shape,
                 (unsigned long long)w_read, (unsigned long long)w_all);
    free_recs(&read);
    free_recs(&watched);
    remove_tmpdir(dir);
}

AT_TEST_EACH_SHAPE(imports_stock, read_from_results_equals_the_window, .timeout = 120) { check_stock_reading(shape); }

static void check_behaviour(const char *shape)
{
    char py[512], dir[256], cmd[1200], path[600];
    need_python(shape, py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "'%s' tests/fixtures/imports_behaviour.py >'%s/plain' 2>&1", py, dir);
    cr_assert_eq(sh(cmd, NULL, 0), 0, "imports_behaviour.py fails without archtrace: see %s/plain", dir);
    cr_assert_eq(run_traced(dir, py, "tests/fixtures/imports_behaviour.py", NULL), 0,
                 "imports_behaviour.py fails under archtrace (%s): see %s/stdout", shape, dir);
    snprintf(path, sizeof path, "%s/plain", dir);
    char *plain = slurp(path);
    snprintf(path, sizeof path, "%s/stdout", dir);
    char *traced = slurp(path);
    cr_assert(plain && traced, "missing outputs in %s", dir);
    expect_same_text(plain, traced, shape);

    recs_t rs;
    load_recs(dir, &rs);
    const char *main_pid = rs.n ? rs.v[0].f[F_PID] : "";
    const rec_t *a = must(&rs, "beh_slow_a"), *b = must(&rs, "beh_slow_b");
    cr_expect_str_neq(a->f[F_THREAD], b->f[F_THREAD], "the two importing threads are told apart");
    cr_expect_str_eq(a->f[F_VIA], "importlib", "the threads use importlib.import_module");
    const rec_t *ac = must(&rs, "beh_slow_a_child"), *bc = must(&rs, "beh_slow_b_child");
    cr_expect_str_eq(ac->f[F_THREAD], a->f[F_THREAD], "a thread's child import stays on its thread");
    cr_expect_str_eq(bc->f[F_THREAD], b->f[F_THREAD], "a thread's child import stays on its thread");
    cr_expect_str_eq(ac->f[F_DEPTH], "1", "beh_slow_a_child nests in beh_slow_a, not in the other thread's import");
    cr_expect_str_eq(ac->f[F_PARENT], "beh_slow_a", "importer of beh_slow_a_child");
    for (size_t i = 0; i < rs.n; i++)
        if (rs.v[i].f[F_ENC_THREAD][0])
            cr_expect_str_eq(rs.v[i].f[F_ENC_THREAD], rs.v[i].f[F_THREAD], "%s nests in another thread's import",
                             rs.v[i].f[F_MODULE]);

    const rec_t *ns = must(&rs, "beh_ns");
    cr_expect_str_eq(ns->f[F_NAMESPACE], "1", "beh_ns is a namespace package");
    cr_expect_str_eq(ns->f[F_LOADER], "NamespaceLoader", "namespace packages get a NamespaceLoader");
    cr_expect_str_eq(ns->f[F_PATH_FINDER], "FileFinder", "its portion was found by a FileFinder");
    const rec_t *zipped = must(&rs, "beh_zipped");
    expect_chain(zipped, "PathFinder", "zipimporter", "zipimporter");
    cr_expect(ends_with(zipped->f[F_PATH_ENTRY], "beh_lib.zip"), "zip path entry: %s", zipped->f[F_PATH_ENTRY]);
    expect_chain(must(&rs, "beh_compiled"), "PathFinder", "FileFinder", "SourcelessFileLoader");
    const rec_t *raises = must(&rs, "beh_raises");
    cr_expect_str_eq(raises->f[F_FOUND], "", "an import whose module raises is a failed import");
    cr_expect_str_eq(raises->f[F_LOADER], "SourceFileLoader", "it was still found and loaded");
    cr_expect_str_eq(raises->f[F_ERROR], "ValueError", "the module's own exception is named");
    const rec_t *fr = must(&rs, "beh_finder_raises");
    cr_expect_str_eq(fr->f[F_FINDER], "RaisingFinder", "the finder that raised is named");
    cr_expect_str_eq(fr->f[F_ERROR], "RuntimeError", "its exception is named");
    const rec_t *sp = must(&rs, "beh_finder_sets_profile");
    cr_expect_str_eq(sp->f[F_OBSERVED], "", "a finder that replaced the profiler makes the search unobserved");
    cr_expect_str_eq(sp->f[F_FINDER], "", "and then no finder is claimed");
    const rec_t *fk = must(&rs, "beh_forked");
    cr_expect_str_neq(fk->f[F_PID], main_pid, "the forked child's import is in the child's own process");
    cr_expect(!rec_of(&rs, "beh_forked", main_pid), "the parent did not import beh_forked");
    free(plain);
    free(traced);
    free_recs(&rs);
    remove_tmpdir(dir);
}

AT_TEST_EACH_SHAPE(imports_behaviour, program_sees_no_difference, .timeout = 120) { check_behaviour(shape); }

/* ---- the text and chrome renderings --------------------------------------- */

static const char *line_with(const char *text, const char *a, const char *b)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        size_t n = strcspn(l, "\n");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), l);
        if (strstr(buf, a) && (!b || strstr(buf, b)))
            return l;
    }
    return NULL;
}

static int indent_of(const char *line)
{
    const char *p = line;
    for (int col = 0; col < 2; col++) {   /* skip the two time columns */
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
    }
    int n = 0;
    for (p += 2; *p == ' '; p++)
        n++;
    return n;
}

/* Without --full the text lists only the failed imports and those served
 * by other finders or loaders than the standard ones, then the summary,
 * and says how to see the whole tree. */
Test(imports_text, default_is_abridged, .timeout = 120)
{
    char py[512], dir[256], path[600];
    need_python("static", py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    cr_assert_eq(run_traced(dir, py, "tests/fixtures/imports_chain.py", ""), 0, "archtrace failed: %s", dir);
    snprintf(path, sizeof path, "%s/stderr", dir);
    char *text = slurp(path);
    cr_assert(text, "no text report");
    cr_expect(line_with(text, "archtrace_no_such_module ", "not found"), "the failed import is listed:\n%s", text);
    cr_expect(!line_with(text, " json.decoder ", "-> SourceFileLoader"), "no tree line of a standard import:\n%s", text);
    cr_expect(line_with(text, "finders: ", "PathFinder "), "summary of finders:\n%s", text);
    cr_expect(line_with(text, "(the whole import tree of ", ": --full, or --format json)"), "the hint:\n%s", text);
    free(text);
    remove_tmpdir(dir);
}

Test(imports_text, tree_summary_and_chrome, .timeout = 120)
{
    char py[512], dir[256], path[600], extra[400];
    need_python("static", py, sizeof py);
    make_tmpdir(dir, sizeof dir);
    snprintf(extra, sizeof extra, "--full --format chrome --out '%s/trace.json'", dir);
    cr_assert_eq(run_traced(dir, py, "tests/fixtures/imports_chain.py", extra), 0, "archtrace failed: %s", dir);
    snprintf(path, sizeof path, "%s/stderr", dir);
    char *text = slurp(path);
    cr_assert(text, "no text report");
    const char *json = line_with(text, " json ", "PathFinder/FileFinder -> SourceFileLoader");
    const char *dec = line_with(text, " json.decoder ", "PathFinder/FileFinder -> SourceFileLoader");
    cr_expect(json && dec, "the tree names finder/path finder -> loader for json and json.decoder");
    if (json && dec)
        cr_expect_gt(indent_of(dec), indent_of(json), "json.decoder is indented under json");
    cr_expect(line_with(text, " _symtable ", "BuiltinImporter -> BuiltinImporter"), "built-in module line");
    cr_expect(line_with(text, " archtrace_no_such_module ", "not found"), "failed import line");
    cr_expect(line_with(text, " colorsys ", "[importlib]"), "import_module is marked");
    cr_expect(line_with(text, "finders: ", "PathFinder "), "summary of finders");
    cr_expect(line_with(text, "loaders: ", "SourceFileLoader "), "summary of loaders");
    snprintf(path, sizeof path, "%s/trace.json", dir);
    char *trace = slurp(path);
    cr_expect(trace && strstr(trace, "\"cat\":\"import\"") && strstr(trace, "\"name\":\"json\""),
              "the chrome trace has import slices");
    free(trace);
    free(text);
    remove_tmpdir(dir);
}
