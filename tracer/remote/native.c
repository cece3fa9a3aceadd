/* SPDX-License-Identifier: MIT */
/* native.c - ptrace stop, libunwind-ptrace unwinding, libdw symbols (see native.h). */
#include "remote/native.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <libunwind-ptrace.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include "remote/reap.h"
#include "remote/sampler.h"

#define IP_SLOTS         8192                 /* symbol cache, power of two */
#define STOP_TIMEOUT_NS  250000000ull         /* give up on a stop after    */
#define RELEASE_TIMEOUT_NS 5000000000ull      /* wait for a late stop       */
/* Modules are re-read, at most this often, when an address is in none
 * of them (a library loaded since: an extension module imported late) */
#define REPORT_EVERY_NS  100000000ull
#define EVAL_NAME        "_PyEval_EvalFrameDefault"

typedef struct ip_entry {
    uint64_t ip;              /* looked-up address, 0 = free               */
    uint32_t sym;             /* its symbol id                             */
    uint8_t is_eval;          /* inside _PyEval_EvalFrameDefault           */
} ip_entry_t;

struct at_native {
    at_py_proc_t *proc;       /* the target (not owned)                    */
    at_symtab_t *syms;        /* where names go (not owned)                */
    unw_addr_space_t as;      /* libunwind over _UPT accessors             */
    Dwfl *dwfl;               /* the process's modules                     */
    uint64_t reported_ns;     /* when the modules were last read           */
    int pending_sig;          /* signal seen at the stop, re-sent on detach */
    ip_entry_t *ips;          /* IP_SLOTS entries                          */
};

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

/* (Re)read the process's modules; libraries loaded later appear here. */
static int report_modules(at_native_t *n)
{
    if (n->dwfl)
        dwfl_end(n->dwfl);
    n->dwfl = dwfl_begin(&dwfl_callbacks);
    if (!n->dwfl)
        return -ENOMEM;
    dwfl_report_begin(n->dwfl);
    int rc = dwfl_linux_proc_report(n->dwfl, n->proc->pid);
    dwfl_report_end(n->dwfl, NULL, NULL);
    n->reported_ns = at_now_ns();
    return rc == 0 ? 0 : rc > 0 ? -rc : -EIO;
}

at_native_t *at_native_new(at_py_proc_t *proc, at_symtab_t *syms)
{
    at_native_t *n = calloc(1, sizeof *n);
    int rc = n ? 0 : -ENOMEM;
    if (rc == 0) {
        n->proc = proc;
        n->syms = syms;
        n->ips = calloc(IP_SLOTS, sizeof *n->ips);
        n->as = unw_create_addr_space(&_UPT_accessors, 0);
        rc = n->ips && n->as ? report_modules(n) : -ENOMEM;
    }
    if (rc < 0) {
        at_native_free(n);
        errno = -rc;
        return NULL;
    }
    unw_set_caching_policy(n->as, UNW_CACHE_GLOBAL);
    return n;
}

void at_native_free(at_native_t *n)
{
    if (!n)
        return;
    if (n->as)
        unw_destroy_addr_space(n->as);
    if (n->dwfl)
        dwfl_end(n->dwfl);
    free(n->ips);
    free(n);
}

/* ---- stopping ------------------------------------------------------------- */

static void pause_briefly(int round)
{
    if (round < 64) {
        sched_yield();
        return;
    }
    struct timespec ts = { 0, 20000 };
    nanosleep(&ts, NULL);
}

/* Wait for the stop that PTRACE_INTERRUPT (or a signal) causes.  Polled,
 * not blocking, so a sample cannot hang; through at_reap_poll, because a
 * thread that ends here may be the command itself, whose exit status
 * `run` must still get (see reap.h). */
static int wait_stopped(int *pending_sig, uint32_t tid, uint64_t timeout_ns)
{
    uint64_t deadline = at_now_ns() + timeout_ns;
    for (int round = 0; at_now_ns() < deadline; round++) {
        int st;
        pid_t r = at_reap_poll((pid_t)tid, &st);
        if (r < 0)
            return -errno;
        if (r == (pid_t)tid) {
            if (!WIFSTOPPED(st))
                return -ESRCH;
            /* a signal-delivery stop keeps its signal for the detach */
            int sig = WSTOPSIG(st);
            *pending_sig = (st >> 16) == 0 && sig != SIGTRAP && sig != SIGSTOP ? sig : 0;
            return 0;
        }
        pause_briefly(round);
    }
    return -ETIMEDOUT;
}

/* Let a seized thread go.  PTRACE_DETACH needs it stopped: one whose
 * interrupt stop has not come yet (a thread in D state on a loaded
 * machine can take longer than STOP_TIMEOUT_NS) fails with ESRCH, and
 * would stop later with nobody left to resume it: the command hangs in
 * a tracing stop.  Wait for that stop, then detach.  A thread still
 * seized after that is let go by the next at_thread_stop on it. */
static void release(uint32_t tid, int sig)
{
    if (ptrace(PTRACE_DETACH, (pid_t)tid, NULL, (void *)(long)sig) == 0 || errno != ESRCH)
        return;
    int pending = 0;
    if (wait_stopped(&pending, tid, RELEASE_TIMEOUT_NS) == 0)
        ptrace(PTRACE_DETACH, (pid_t)tid, NULL, (void *)(long)(sig ? sig : pending));
}

/* PTRACE_SEIZE says EPERM when this thread already traces tid: a thread
 * left seized by a release that timed out.  Take its stop and let it go. */
static int seize(uint32_t tid)
{
    if (ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) == 0)
        return 0;
    if (errno != EPERM)
        return -errno;
    int st, sig = 0;
    if (at_reap_poll((pid_t)tid, &st) != (pid_t)tid || !WIFSTOPPED(st))
        return -EPERM;
    if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP && WSTOPSIG(st) != SIGSTOP)
        sig = WSTOPSIG(st);
    ptrace(PTRACE_DETACH, (pid_t)tid, NULL, (void *)(long)sig);
    return ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) == 0 ? 0 : -errno;
}

int at_thread_stop(uint32_t tid, int *sig)
{
    *sig = 0;
    int rc = seize(tid);
    if (rc < 0)
        return rc;
    rc = ptrace(PTRACE_INTERRUPT, (pid_t)tid, NULL, NULL) < 0 ? -errno : wait_stopped(sig, tid, STOP_TIMEOUT_NS);
    if (rc < 0)
        release(tid, 0);
    return rc;
}

void at_thread_resume(uint32_t tid, int sig)
{
    ptrace(PTRACE_DETACH, (pid_t)tid, NULL, (void *)(long)sig);
}

int at_native_stop(at_native_t *n, uint32_t tid)
{
    return at_thread_stop(tid, &n->pending_sig);
}

void at_native_resume(at_native_t *n, uint32_t tid)
{
    at_thread_resume(tid, n->pending_sig);
    n->pending_sig = 0;
}

/* ---- symbols ------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "?";
}

static Dwfl_Module *module_of(at_native_t *n, uint64_t ip)
{
    Dwfl_Module *m = dwfl_addrmodule(n->dwfl, (Dwarf_Addr)ip);
    if (!m && at_now_ns() - n->reported_ns > REPORT_EVERY_NS && report_modules(n) == 0)
        m = dwfl_addrmodule(n->dwfl, (Dwarf_Addr)ip);
    return m;
}

static void resolve(at_native_t *n, uint64_t ip, ip_entry_t *e)
{
    char plain[512];
    Dwfl_Module *m = module_of(n, ip);
    const char *name = m ? dwfl_module_addrname(m, (Dwarf_Addr)ip) : NULL;
    const char *mod = NULL;
    if (name && strchr(name, '@')) { /* "memcpy@@GLIBC_2.14": drop the version */
        snprintf(plain, sizeof plain, "%.*s", (int)strcspn(name, "@"), name);
        name = plain;
    }
    if (m)
        dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, &mod, NULL);
    e->ip = ip;
    e->is_eval = (n->proc->eval_start && ip >= n->proc->eval_start && ip < n->proc->eval_end) ||
                 (name && !strncmp(name, EVAL_NAME, sizeof EVAL_NAME - 1) &&
                  (name[sizeof EVAL_NAME - 1] == '\0' || name[sizeof EVAL_NAME - 1] == '.'));
    e->sym = at_symtab_intern(n->syms, AT_SYM_NATIVE, name ? name : "[unknown]", base_name(mod));
    if (!m)
        e->ip = 0;   /* not kept: the next sample looks again, once its module is read */
}

static const ip_entry_t *lookup_ip(at_native_t *n, uint64_t ip)
{
    ip_entry_t *e = &n->ips[(ip * 0x9e3779b97f4a7c15ull) >> 51 & (IP_SLOTS - 1)];
    if (e->ip != ip)
        resolve(n, ip, e);
    return e;
}

/* ---- unwinding ----------------------------------------------------------- */

int at_native_unwind(at_native_t *n, uint32_t tid, at_frame_t *out, uint8_t *is_eval, int cap)
{
    unw_cursor_t c;
    void *ui = _UPT_create((pid_t)tid);
    int k = 0;
    if (!ui)
        return -ENOMEM;
    if (unw_init_remote(&c, n->as, ui) < 0) {
        _UPT_destroy(ui);
        return -EIO;
    }
    do {
        unw_word_t ip;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        /* above the top frame ip is a return address: look up the call */
        const ip_entry_t *e = lookup_ip(n, k == 0 ? (uint64_t)ip : (uint64_t)ip - 1);
        out[k] = (at_frame_t){ e->sym, 0 };
        is_eval[k] = e->is_eval;
        k++;
    } while (k < cap && unw_step(&c) > 0);
    _UPT_destroy(ui);
    return k;
}

/* ---- merging ------------------------------------------------------------- */

int at_native_merge(const at_frame_t *nat, const uint8_t *is_eval, int nn,
                    const at_pystack_t *py, at_frame_t *out, int cap)
{
    at_frame_t tmp[AT_NATIVE_MAX_DEPTH + AT_MAX_STACK_DEPTH];
    int k = 0, pi = 0, max = (int)(sizeof tmp / sizeof *tmp);
    for (int i = 0; i < nn && k < max; i++) {
        if (!is_eval[i] || pi >= py->n) {
            tmp[k++] = nat[i];
            continue;
        }
        /* this eval call runs the frames up to and including an entry frame */
        for (int entry = 0; !entry && pi < py->n && k < max; pi++) {
            entry = py->frames[pi].entry;
            if (!py->frames[pi].skip)
                tmp[k++] = (at_frame_t){ py->frames[pi].sym, py->frames[pi].line };
        }
    }
    for (; pi < py->n && k < max; pi++)
        if (!py->frames[pi].skip)
            tmp[k++] = (at_frame_t){ py->frames[pi].sym, py->frames[pi].line };
    int n = k < cap ? k : cap;
    for (int i = 0; i < n; i++)
        out[i] = tmp[k - 1 - i];
    return n;
}
