/* SPDX-License-Identifier: MIT */
/* gil_names.c - threading.Thread names and scheduler statistics for the
 * GIL table.
 *
 * Design: a thread's row is keyed by its OS tid, which the pthread hooks
 * know; its Python name is only known to its threading.Thread object, and
 * CPython raises no audit event when a thread starts.  So the thread is
 * found from its own frames: when it takes the GIL (take_gil has set
 * `locked` and `last_holder`, so no other thread runs Python) its oldest
 * frame with code (3.12+ put an entry frame of the C stack below it), if
 * it is threading's Thread._bootstrap, has the Thread as local 0; at its
 * first take, before it has frames, the thread that started it waits in
 * Thread.start(), whose self is the same object.  Raw reads only
 * there (the thread state is not current yet, so no C-API), and one
 * reference taken, as Py_INCREF would, under the GIL.
 * The name itself is read with the C-API where that is safe: the next
 * audit event in any thread, or atexit; then the reference goes.  At exit
 * threading._active is walked as well (late renames, the main thread).
 * Everything is read from instance and module dicts: no Python code of
 * the target runs (no properties, no __getattr__).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "gil.h"
#include "shim.h"

#define PENDING_MAX 1024       /* threads started between two audit events */
#define START_DEPTH 4          /* start() -> Event.wait -> Condition.wait */
#define STARTERS_MAX 1024      /* thread states looked at                 */

/* Thread objects, strong references; touched only by a thread that holds
 * the GIL (on_take, the audit hook, atexit). */
static PyObject *pending[PENDING_MAX];
static int npending;
static int nstale;                       /* the first nstale came over fork */

typedef struct names_api {
    PyObject *(*generic_get_dict)(PyObject *, void *);
    PyObject *(*dict_get_item_string)(PyObject *, const char *);
    int (*dict_next)(PyObject *, at_py_ssize_t *, PyObject **, PyObject **);
    int (*type_is_subtype)(PyObject *, PyObject *);
    PyObject *(*module_get_dict)(PyObject *);
    int ok;
} names_api_t;

static names_api_t api;

static int api_ready(void)
{
    if (!api.ok) {
        api.generic_get_dict = (PyObject * (*)(PyObject *, void *)) at_py_sym("PyObject_GenericGetDict");
        api.dict_get_item_string = (PyObject * (*)(PyObject *, const char *)) at_py_sym("PyDict_GetItemString");
        api.dict_next = (int (*)(PyObject *, at_py_ssize_t *, PyObject **, PyObject **))at_py_sym("PyDict_Next");
        api.type_is_subtype = (int (*)(PyObject *, PyObject *))at_py_sym("PyType_IsSubtype");
        api.module_get_dict = (PyObject * (*)(PyObject *)) at_py_sym("PyModule_GetDict");
        api.ok = api.generic_get_dict && api.dict_get_item_string && api.dict_next &&
                 api.type_is_subtype && api.module_get_dict ? 1 : -1;
    }
    return api.ok == 1;
}

/* ---- raw reads, in take_gil -------------------------------------------------- */

static uintptr_t rd(uintptr_t addr, size_t off)
{
    return addr ? *(const uintptr_t *)(addr + off) : 0;
}

/* A frame's code object, or 0 for an entry frame of the C stack (3.13
 * keeps None there, 3.12 a trampoline that is no function of ours). */
static uintptr_t frame_code(uintptr_t f)
{
    return at_pyl_frame_is_cstack(f) ? 0 : rd(f, (size_t)at_pyl.iframe_code);
}

/* A compact ASCII str's bytes and length, else NULL (raw reads only). */
static const char *ascii_str(uintptr_t u, size_t *len)
{
    uintptr_t type = rd(u, (size_t)at_pyl.object_type);
    const char *tp = type ? (const char *)rd(type, (size_t)at_pyl.type_name) : NULL;
    if (!tp || strcmp(tp, "str") != 0)
        return NULL;
    uint32_t state = *(const uint32_t *)(u + at_pyl.unicode_state);
    if ((state & (uint32_t)at_pyl.unicode_compact_ascii) != (uint32_t)at_pyl.unicode_compact_ascii)
        return NULL;
    *len = (size_t)*(const at_py_ssize_t *)(u + at_pyl.unicode_length);
    return (const char *)(u + at_pyl.sizeof_pyasciiobject);
}

static int ascii_is(uintptr_t u, const char *want, int suffix)
{
    size_t len, n = strlen(want);
    const char *s = ascii_str(u, &len);
    if (!s || len < n || (!suffix && len != n))
        return 0;
    return memcmp(s + len - n, want, n) == 0;
}

/* Keep a reference to Thread object t for naming, once. */
static void pend(PyObject *t)
{
    for (int i = 0; i < npending; i++)
        if (pending[i] == t)
            return;
    if (npending >= PENDING_MAX) {
        at_gil_header()->names_dropped++;
        return;
    }
    (*(at_py_ssize_t *)t)++;            /* Py_INCREF, with the GIL ours */
    pending[npending++] = t;
}

/* `self` of a threading Thread.start() among a thread's newest frames
 * (it waits there, in _started.wait(), for the thread it started). */
static PyObject *starting(uintptr_t tstate)
{
    uintptr_t f = at_pyl_current_frame(tstate);
    for (int depth = 0; f && depth < START_DEPTH; depth++, f = rd(f, (size_t)at_pyl.iframe_previous)) {
        uintptr_t code = frame_code(f);
        if (code && ascii_is(rd(code, (size_t)at_pyl.code_name), "start", 0) &&
            ascii_is(rd(code, (size_t)at_pyl.code_filename), "threading.py", 1))
            return (PyObject *)rd(f, (size_t)at_pyl.iframe_localsplus);
    }
    return NULL;
}

/* A new thread's first take has no frame of its own yet, and a thread
 * that never gives the GIL up again (it runs to its end within a switch
 * interval) is never probed with one.  But whoever started it is blocked
 * in Thread.start() right now, its frames still: take the Thread from
 * there.  Which thread it is does not matter: naming goes by the Thread's
 * own _native_id.  Every thread state is stable while we hold the GIL. */
static void from_starters(uintptr_t tstate)
{
    uintptr_t ts = rd(rd(tstate, (size_t)at_pyl.tstate_interp), (size_t)at_pyl.interp_tstate_head);
    for (int n = 0; ts && n < STARTERS_MAX; n++, ts = rd(ts, (size_t)at_pyl.tstate_next)) {
        PyObject *t = ts != tstate ? starting(ts) : NULL;
        if (t)
            pend(t);
    }
}

/* The oldest frame of a chain that has code (0 when none does, or the
 * chain is too long to be trusted). */
static uintptr_t oldest_with_code(uintptr_t f)
{
    uintptr_t oldest = 0;
    for (int depth = 0; f; depth++, f = rd(f, (size_t)at_pyl.iframe_previous)) {
        if (depth >= AT_MAX_STACK_DEPTH)
            return 0;
        if (frame_code(f))
            oldest = f;
    }
    return oldest;
}

int at_gil_names_probe(uintptr_t tstate)
{
    uintptr_t top = at_pyl_current_frame(tstate);
    if (!top) {
        from_starters(tstate);
        return 0;                       /* no Python frame yet: later */
    }
    uintptr_t f = oldest_with_code(top);
    uintptr_t code = f ? frame_code(f) : 0;
    if (!code || !ascii_is(rd(code, (size_t)at_pyl.code_name), "_bootstrap", 0) ||
        !ascii_is(rd(code, (size_t)at_pyl.code_filename), "threading.py", 1))
        return 1;                       /* not a threading.Thread */
    PyObject *self = (PyObject *)rd(f, (size_t)at_pyl.iframe_localsplus);
    if (self)
        pend(self);
    return 1;
}

/* ---- names, with the GIL held in Python context ----------------------------- */

static int type_is(PyObject *o, const char *name)
{
    return o && strcmp(at_py_type_name(o), name) == 0;
}

/* threading.Thread, borrowed from sys.modules (never imported by us). */
static PyObject *threading_dict(void)
{
    PyObject *mods = at_py.PySys_GetObject("modules");
    PyObject *mod = type_is(mods, "dict") ? api.dict_get_item_string(mods, "threading") : NULL;
    return type_is(mod, "module") ? api.module_get_dict(mod) : NULL;
}

static PyObject *thread_class(PyObject *threading)
{
    PyObject *cls = threading ? api.dict_get_item_string(threading, "Thread") : NULL;
    return type_is(cls, "type") ? cls : NULL;
}

static int is_thread(PyObject *o, PyObject *cls)
{
    PyObject *type = o ? *(PyObject **)((char *)o + at_pyl.object_type) : NULL;
    return cls && type && api.type_is_subtype(type, cls);
}

/* Copy t._name to the row of t._native_id.  1 when done, 0 when the
 * thread has not stored its id yet (or has no row). */
static int name_from_thread(PyObject *t)
{
    PyObject *d = api.generic_get_dict(t, NULL);
    if (!d)
        return 0;
    int done = 0;
    PyObject *nid = type_is(d, "dict") ? api.dict_get_item_string(d, "_native_id") : NULL;
    PyObject *name = nid ? api.dict_get_item_string(d, "_name") : NULL;
    const char *s = name ? at_py_str(name) : NULL;
    if (type_is(nid, "int") && s) {
        long tid = at_py.PyLong_AsLong(nid);
        if (tid > 0 && tid <= 0x7fffffffL)
            done = at_gil_set_name((uint32_t)tid, s) == 0;
    }
    at_py.Py_DecRef(d);
    return done;
}

/* Name what can be named; keep the rest unless `final`.  The list is
 * emptied first and references dropped last: a deallocation may run
 * Python code, release the GIL and let another thread append, or raise
 * an audit event that comes back here (it returns at once: the work
 * lists are static, too big for a thread's stack). */
static void resolve_pending(int final)
{
    static PyObject *work[PENDING_MAX], *drop[PENDING_MAX];
    static int resolving;
    if (resolving)
        return;
    resolving = 1;
    int n = npending, ndrop = 0;
    memcpy(work, pending, sizeof(work[0]) * (size_t)n);
    for (int i = 0; i < nstale && i < n; i++)
        drop[ndrop++] = work[i];
    int first = nstale < n ? nstale : n;
    npending = nstale = 0;
    PyObject *cls = thread_class(threading_dict());
    for (int i = first; i < n; i++) {
        int done = is_thread(work[i], cls) ? name_from_thread(work[i]) : 1;
        if (done || final || npending >= PENDING_MAX)
            drop[ndrop++] = work[i];
        else
            pending[npending++] = work[i];
    }
    for (int i = 0; i < ndrop; i++)
        at_py.Py_DecRef(drop[i]);
    resolving = 0;
}

void at_gil_names_audit(const char *event, PyObject *args)
{
    (void)event;
    (void)args;
    if (!npending || !api_ready() || !at_py.PyGILState_Check())
        return;                                   /* the common case */
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    resolve_pending(0);
    at_py.PyErr_Clear();
    at_py.PyErr_Restore(t, v, tb);
}

/* Every thread threading still knows (main thread, late renames). */
static void walk_active(PyObject *threading)
{
    PyObject *cls = thread_class(threading);
    PyObject *active = threading ? api.dict_get_item_string(threading, "_active") : NULL;
    if (!cls || !type_is(active, "dict"))
        return;
    at_py_ssize_t pos = 0;
    PyObject *key, *value;
    while (api.dict_next(active, &pos, &key, &value))
        if (is_thread(value, cls))
            name_from_thread(value);
}

void at_gil_names_exit(void)
{
    if (!api_ready() || !at_py.PyGILState_Check())
        return;
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    resolve_pending(1);
    walk_active(threading_dict());
    at_py.PyErr_Clear();
    at_py.PyErr_Restore(t, v, tb);
}

/* The child inherited our references (the objects exist in it too):
 * they are dropped at the first chance with the GIL in Python context. */
void at_gil_names_fork_child(void)
{
    nstale = npending;
}

/* ---- rows ------------------------------------------------------------------ */

/* Copy at most n-1 bytes of s, cut at a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t n, const char *s)
{
    size_t len = strnlen(s, n - 1);
    if (len == n - 1)
        while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

int at_gil_set_name(uint32_t tid, const char *name)
{
    at_gil_header_t *h = at_gil_header();
    at_gil_thread_t *rows = at_gil_slots();
    if (!h || !rows)
        return -ENOENT;
    uint32_t n = __atomic_load_n(&h->nthreads, __ATOMIC_ACQUIRE);
    for (uint32_t i = n; i-- > 0;) {   /* newest first: tids get reused */
        at_gil_thread_t *s = &rows[i];
        if (s->tid != tid || (s->flags & AT_GIL_T_OVERFLOW))
            continue;
        copy_utf8(s->name, sizeof(s->name), name);
        __atomic_fetch_or(&s->flags, AT_GIL_T_NAMED, __ATOMIC_RELAXED);
        return 0;
    }
    return -ENOENT;
}

/* ---- /proc/self/task/<tid>/schedstat ------------------------------------- */

static char *put_uint(char *p, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 11);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static const char *parse_u64(const char *p, const char *end, uint64_t *out)
{
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *out = v;
    return p;
}

int at_gil_schedstat(uint32_t tid, uint64_t out[3])
{
    int saved = errno, rc = 0;
    char path[64] = "/proc/self/task/", buf[128];
    char *p = put_uint(path + strlen(path), tid);
    memcpy(p, "/schedstat", sizeof("/schedstat"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (fd >= 0)
        close(fd);
    const char *q = n > 0 ? buf : NULL, *end = buf + (n > 0 ? n : 0);
    for (int i = 0; i < 3 && q; i++)
        q = parse_u64(q, end, &out[i]);
    if (!q)
        rc = (fd < 0 || n < 0) && errno ? -errno : -EINVAL;
    errno = saved;
    return rc;
}
