/* SPDX-License-Identifier: MIT */
/* layout_probe.h - check a common/py3XX.h layout header against the real
 * CPython headers of that version, for tests/test_py3XX.c.
 *
 * A layout test is a table pairing each macro of the header with the C
 * expression (offsetof, sizeof, an enum or flag) that states it in the
 * CPython headers, plus the names that no header can confirm and why.
 * at_layout_check_names() parses the header's #define names so a macro
 * without a row (or a reason) fails; at_layout_check_python() asks an
 * interpreter where its headers are, builds a probe from the table with
 * cc over them (Py_BUILD_CORE and the internal pycore_*.h), runs it and
 * compares every value it prints with the compiled-in macro.
 */
#ifndef AT_LAYOUT_PROBE_H
#define AT_LAYOUT_PROBE_H
#include <stddef.h>

/* One macro of a layout header and the expression that gives it. */
typedef struct {
    const char *name; /* the macro's name, as the header spells it       */
    long value;       /* its value, as compiled into archtrace           */
    const char *expr; /* C over that version's CPython headers           */
} at_layout_row_t;

#define AT_LAYOUT_ROW(macro, expr) { #macro, (long)(macro), expr }

/* A name of the header that no CPython expression confirms, and why. */
typedef struct {
    const char *name;
    const char *why;
} at_layout_excuse_t;

/* One header and everything needed to check it. */
typedef struct {
    const char *header;                 /* "common/py312.h"              */
    const char *version;                /* "3.12": the headers' PY_VERSION prefix */
    const at_layout_row_t *rows;
    size_t nrows;
    const at_layout_excuse_t *unchecked;
    size_t nunchecked;
} at_layout_table_t;

#define AT_LAYOUT_TABLE(hdr, ver, rows_, excuses_)                                        \
    {                                                                                     \
        hdr, ver, rows_, sizeof rows_ / sizeof rows_[0], excuses_,                        \
            sizeof excuses_ / sizeof excuses_[0]                                          \
    }

/* Every #define of t->header has exactly one row or excuse, and every
 * row and excuse names a #define of it (Criterion expectations). */
void at_layout_check_names(const at_layout_table_t *t);

/* Build the probe against the headers of `python` (sysconfig's
 * "include"), run it and expect every row to agree; `what` names the
 * interpreter in messages ("static build", "3.12").  Skips the test,
 * saying why, when python is NULL or its internal headers are absent. */
void at_layout_check_python(const at_layout_table_t *t, const char *python, const char *what);

/* A default (GIL) build of CPython `minor` ("3.12"), found as every
 * test finds one (tu_find_python: .venv, /usr/bin, the newest in
 * `pyenv root`'s versions, PATH); never a free-threaded build.  Its
 * path, or NULL when this machine has none. */
const char *at_layout_find_python(const char *minor);

#endif
