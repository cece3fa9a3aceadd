/* SPDX-License-Identifier: MIT */
/* shim.c - libarchtrace.so core: detect CPython, add the audit hook, start
 * the features, give forked children their own segment, mark the exit.
 *
 * Design: the constructor reads the environment (walking environ, no
 * getenv allocation surprises), resolves the C-API with dlsym, chooses the
 * layout of this CPython (pyversion.c: 3.11, 3.12 or 3.13, a
 * free-threaded build refused) and, only in a supported CPython with a
 * session, creates <pid>.seg and adds an audit hook
 * (allowed before Py_Initialize).  The first cpython.run_* event means the
 * interpreter is fully up and __main__ is about to run: features start
 * there, with the GIL held, and an atexit callback is registered so their
 * final snapshot sees __main__'s data still alive.  In every other process
 * (shells, compilers, other Pythons) the shim does nothing but pass its
 * interposed calls straight through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "audit_hooks.h"
#include "pyversion.h"
#include "segment_format.h"
#include "shim.h"

extern char **environ;

typedef void (*exit_fn)(int);
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
static exit_fn real_exit;               /* libc's, found at start-up     */
static execve_fn real_execve, real_execvpe;
static void resolve_real_calls(void);

at_shim_t at_shim;
__thread int at_in_shim;

static at_seg_header_t *seg;          /* this process's <pid>.seg         */
static int features_exited;           /* on_exit already delivered        */

static const at_feature_t *feature_table(size_t i)
{
    const at_feature_t *all[] = { &at_feature_alloc, &at_feature_gil, &at_feature_imports };
    return i < sizeof(all) / sizeof(all[0]) ? all[i] : NULL;
}
#define FOR_EACH_FEATURE(f) \
    for (size_t f##_i = 0; f##_i < 3; f##_i++) \
        for (const at_feature_t *f = feature_table(f##_i); f; f = NULL)

/* ---- environment ------------------------------------------------------ */

static const char *env_value(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static unsigned parse_features(const char *s)
{
    unsigned bits = 0;
    if (!s)
        return AT_FEAT_ALLOC | AT_FEAT_GIL | AT_FEAT_IMPORTS;
    if (strstr(s, "alloc"))
        bits |= AT_FEAT_ALLOC;
    if (strstr(s, "gil"))
        bits |= AT_FEAT_GIL;
    if (strstr(s, "imports"))
        bits |= AT_FEAT_IMPORTS;
    return bits;
}

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *v = env_value(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < lo || x > hi) ? dflt : x;
}

static int read_config(void)
{
    const char *session = env_value("ARCHTRACE_SESSION");
    if (!session || !*session || strlen(session) >= sizeof(at_shim.session))
        return -ENOENT;
    strcpy(at_shim.session, session);
    at_shim.features = parse_features(env_value("ARCHTRACE_FEATURES"));
    at_shim.alloc_depth = (int)env_long("ARCHTRACE_ALLOC_DEPTH", 1, 1, 128);
    at_shim.alloc_sample = env_long("ARCHTRACE_ALLOC_SAMPLE", 0, 0, 1L << 40);
    at_shim.top_n = (int)env_long("ARCHTRACE_TOP", 5, 1, 1000);
    return 0;
}

/* ---- segment header ----------------------------------------------------- */

static void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void read_self_argv(at_seg_header_t *h)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, h->argv, sizeof(h->argv) - 1);
    close(fd);
    h->argv_len = n > 0 ? (uint32_t)n : 0;
    h->argv[h->argv_len] = '\0';
    ssize_t e = readlink("/proc/self/exe", h->exe, sizeof(h->exe) - 1);
    h->exe[e > 0 ? e : 0] = '\0';
}

static void python_version(char *out, size_t n, uint32_t *hex)
{
    const char *v = at_py.Py_GetVersion();
    size_t len = strcspn(v, " ");
    copy_str(out, len + 1 < n ? len + 1 : n, v);
    if (at_py.Py_Version) {
        *hex = (uint32_t)*at_py.Py_Version;
    } else {
        unsigned major = 0, minor = 0, micro = 0;
        sscanf(v, "%u.%u.%u", &major, &minor, &micro);
        *hex = (major << 24) | (minor << 16) | (micro << 8);
    }
}

static void stamp_start(at_seg_header_t *h)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    h->start_realtime_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
    h->start_mono_ns = at_now_ns();
    h->end_mono_ns = 0;
    h->pid = (int32_t)at_shim.pid;
    h->ppid = (int32_t)getppid();
    h->exit_code = -1;
    h->audit_events = 0;
    h->state = AT_SEG_RUNNING;
}

static at_seg_header_t *create_segment(void)
{
    at_seg_keep_previous();
    at_seg_header_t *h = at_seg_map("seg", sizeof(*h));
    if (!h)
        return NULL;
    h->magic = AT_SEG_MAGIC;
    h->version = AT_SEG_VERSION;
    h->size = sizeof(*h);
    h->build = at_py.shared ? AT_BUILD_SHARED : AT_BUILD_STATIC;
    python_version(h->python_version, sizeof(h->python_version), &h->python_hexversion);
    read_self_argv(h);
    stamp_start(h);
    return h;
}

void at_shim_note(const char *feature, const char *why)
{
    if (!seg)
        return;
    size_t used = strnlen(seg->notes, sizeof(seg->notes));
    snprintf(seg->notes + used, sizeof(seg->notes) - used, "%s: %s\n", feature, why);
}

/* ---- exit --------------------------------------------------------------- */

static void deliver_exit(int python_alive)
{
    if (features_exited)
        return;
    features_exited = 1;
    at_in_shim++;
    FOR_EACH_FEATURE(f)
        if (f->on_exit && (seg->features & f->bit))
            f->on_exit(python_alive);
    at_in_shim--;
}

static void mark_exited(int code)
{
    if (!seg || getpid() != at_shim.pid || seg->state != AT_SEG_RUNNING)
        return;
    deliver_exit(0);
    seg->exit_code = code;
    seg->end_mono_ns = at_now_ns();
    __atomic_store_n(&seg->state, AT_SEG_EXITED, __ATOMIC_RELEASE);
}

/* METH_NOARGS callable registered with atexit.register: runs before
 * module teardown, so __main__'s objects are still alive. */
struct at_method_def {
    const char *ml_name;
    void *ml_meth;
    int ml_flags;
    const char *ml_doc;
};

static PyObject *atexit_callback(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (seg && getpid() == at_shim.pid)
        deliver_exit(1);
    PyObject *none = at_py_sym("_Py_NoneStruct");
    at_py.Py_IncRef(none);
    return none;
}

static struct at_method_def atexit_def = {
    "_archtrace_atexit", (void *)atexit_callback, 0x0004 /* METH_NOARGS */, NULL
};

/* sys.modules["atexit"] when present (borrowed), else NULL. */
static PyObject *loaded_module(const char *name)
{
    static PyObject *(*get_item)(PyObject *, const char *);
    if (!get_item)
        *(void **)&get_item = at_py_sym("PyDict_GetItemString");
    PyObject *modules = at_py.PySys_GetObject("modules");
    return modules && get_item ? get_item(modules, name) : NULL;
}

/* We import atexit only to register our callback: a program that never
 * imported it must not find it in sys.modules (lab02 counts them).  The
 * callback lives on in the interpreter's atexit state, and a later
 * `import atexit` makes a fresh module over that same state. */
static void forget_module(const char *name)
{
    static int (*del_item)(PyObject *, const char *);
    if (!del_item)
        *(void **)&del_item = at_py_sym("PyDict_DelItemString");
    PyObject *modules = at_py.PySys_GetObject("modules");
    if (modules && del_item && del_item(modules, name) < 0)
        at_py.PyErr_Clear();
}

static void register_atexit(void)
{
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    int was_loaded = loaded_module("atexit") != NULL;
    PyObject *mod = at_py.PyImport_ImportModule("atexit");
    PyObject *reg = mod ? at_py.PyObject_GetAttrString(mod, "register") : NULL;
    PyObject *fn = at_py.PyCFunction_NewEx(&atexit_def, NULL, NULL);
    PyObject *r = (reg && fn && at_py.PyObject_CallOneArg) ? at_py.PyObject_CallOneArg(reg, fn) : NULL;
    if (!r)
        at_shim_note("core", "could not register the atexit callback");
    if (mod && !was_loaded)
        forget_module("atexit");
    PyObject *objs[] = { r, fn, reg, mod };
    for (size_t i = 0; i < 4; i++)
        if (objs[i])
            at_py.Py_DecRef(objs[i]);
    at_py.PyErr_Clear();
    at_py.PyErr_Restore(t, v, tb);
}

/* ---- start-up ----------------------------------------------------------- */

/* The chosen table is only trusted once the live interpreter agrees:
 * the main interpreter must point back at _PyRuntime. */
static int runtime_layout_ok(void)
{
    if (!at_shim.runtime)
        return 0;
    uintptr_t interp = *(const uintptr_t *)(at_shim.runtime + at_pyl.rt_interpreters_main);
    if (!interp)
        return 0;
    return *(const uintptr_t *)(interp + at_pyl.interp_runtime) == at_shim.runtime;
}

static void start_features(void)
{
    at_shim.running = 1;
    if (!runtime_layout_ok()) {
        char why[96];
        snprintf(why, sizeof(why), "CPython runtime layout does not match %s: features off", at_pyl.name);
        at_shim_note("core", why);
        return;
    }
    FOR_EACH_FEATURE(f) {
        if (!(at_shim.features & f->bit))
            continue;
        if (f->on_run)
            f->on_run();
        seg->features |= f->bit;
    }
    register_atexit();
}

static int audit_hook(const char *event, PyObject *args, void *data)
{
    (void)data;
    at_audit_hooks_see(event);
    if (at_in_shim || !seg || getpid() != at_shim.pid)
        return 0;
    at_in_shim++;
    seg->audit_events++;
    if (!at_shim.running && strncmp(event, "cpython.run_", 12) == 0)
        start_features();
    if (at_shim.running)
        FOR_EACH_FEATURE(f)
            if (f->on_audit && (seg->features & f->bit))
                f->on_audit(event, args);
    at_in_shim--;
    return 0;
}

/* In the child of fork(): a new process, a new segment.  Only syscalls
 * here (another thread may have held any lock at the fork). */
static void fork_child(void)
{
    if (!seg)
        return;
    at_seg_header_t *parent = seg;
    at_shim.pid = getpid();
    at_seg_header_t *child = at_seg_map("seg", sizeof(*child));
    if (child) {
        memcpy(child, parent, sizeof(*child));
        stamp_start(child);
        child->forked = 1;
        /* the parent's notes name the parent's files; the child's
         * features note their own failures in on_fork_child */
        child->notes[0] = '\0';
    }
    at_seg_unmap(parent, sizeof(*parent));
    seg = child;
    features_exited = 0;
    if (!seg)
        return;
    FOR_EACH_FEATURE(f)
        if (f->on_fork_child && (seg->features & f->bit))
            f->on_fork_child();
}

__attribute__((constructor)) static void shim_init(void)
{
    resolve_real_calls();
    if (getauxval(AT_SECURE))         /* setuid: ignore the environment */
        return;
    if (read_config() < 0 || at_pyapi_resolve() < 0)
        return;                        /* no session, or not a CPython   */
    at_shim.python = 1;
    at_shim.pid = getpid();
    at_shim.runtime = (uintptr_t)at_py.runtime;
    seg = create_segment();
    if (!seg)
        return;
    const char *why = NULL;
    if (at_pyversion_choose(seg->python_hexversion, at_py.runtime, &why) < 0) {
        at_shim_note("core", why);
        return;
    }
    seg->supported = 1;
    at_shim.supported = 1;
    at_shim.active = 1;
    pthread_atfork(NULL, NULL, fork_child);
    if (at_audit_hook_add(audit_hook) != 0)
        at_shim_note("core", "PySys_AddAuditHook refused the hook");
}

__attribute__((destructor)) static void shim_fini(void)
{
    mark_exited(-1);
}

/* ---- interposed exit and exec ------------------------------------------ */

AT_API void _exit(int status)
{
    mark_exited(status);
    if (real_exit)
        real_exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

AT_API void _Exit(int status)
{
    _exit(status);
}

/* exec*: the image is replaced, so this segment ends here; if the new
 * image is a Python it makes its own (same pid).  A program that ran
 * Python code is closed like an exit and marked AT_SEG_REPLACED, so the
 * next Python image keeps its files (at_seg_keep_previous) and the report
 * lists both programs.  A forked copy that execs before running any
 * Python (subprocess's child: no audit event since the fork) has nothing
 * of its own: AT_SEG_EXECED, replaced and not reported.  A vfork child
 * shares our memory but has another pid: leave the parent's segment alone. */
static void exec_begin(void)
{
    if (!seg || getpid() != at_shim.pid || seg->state != AT_SEG_RUNNING)
        return;
    if (seg->forked && seg->audit_events == 0) {
        seg->state = AT_SEG_EXECED;
        return;
    }
    /* no Python API: exec may come from C code without the GIL */
    deliver_exit(0);
    seg->end_mono_ns = at_now_ns();
    __atomic_store_n(&seg->state, AT_SEG_REPLACED, __ATOMIC_RELEASE);
}

/* The program goes on; its features were closed for the exec, so the
 * rest of its run is not recorded (the report says so). */
static void exec_failed(void)
{
    if (!seg || getpid() != at_shim.pid)
        return;
    if (seg->state == AT_SEG_REPLACED) {
        seg->end_mono_ns = 0;
        at_shim_note("core", "an exec failed: nothing after it was recorded");
    }
    if (seg->state == AT_SEG_EXECED || seg->state == AT_SEG_REPLACED)
        seg->state = AT_SEG_RUNNING;
}


/* Looked up once from the constructor: dlsym may allocate, which is not
 * welcome in a vfork child or on the way out. */
static void resolve_real_calls(void)
{
    real_exit = (exit_fn)dlsym(RTLD_NEXT, "_exit");
    real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
}

/* Restores the segment state after a failed exec, keeping errno. */
static int exec_end(int rc)
{
    int saved = errno;
    exec_failed();
    errno = saved;
    return rc;
}

AT_API int execve(const char *path, char *const argv[], char *const envp[])
{
    exec_begin();
    if (!real_execve)
        return exec_end((int)syscall(SYS_execve, path, argv, envp));
    return exec_end(real_execve(path, argv, envp));
}

AT_API int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

AT_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    if (!real_execvpe)
        real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    exec_begin();
    return exec_end(real_execvpe(file, argv, envp));
}

AT_API int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}
