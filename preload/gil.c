/* SPDX-License-Identifier: MIT */
/* gil.c - GIL accounting: who waits for CPython's GIL, who holds it.
 *
 * Design: CPython builds its GIL from a mutex and two condition variables
 * in a struct _gil_runtime_state (3.11: _PyRuntime.ceval.gil; 3.12 and
 * 3.13: the one interp->ceval.gil points at, the main interpreter's own,
 * embedded in _PyRuntime), the same struct in all three, and calls
 * pthread through the PLT on every build shape, so the preloaded shim
 * sees every GIL operation.  We interpose four pthread functions and
 * recognise the GIL's objects by address (the version's table, checked on
 * the live interpreter before anything is watched; a subinterpreter with
 * a GIL of its own is not watched).  For every other mutex and condition
 * variable of the process the cost is one compare and a tail call.
 *
 *   take_gil:  mutex_lock(mutex)           -> the thread starts waiting
 *              cond_timedwait(cond, mutex) -> timed out, GIL still locked,
 *                                             switch_number unchanged:
 *                                             it asked for a drop
 *              cond_signal(switch_cond)    -> it holds the GIL (always
 *                                             made at the end of take_gil)
 *   drop_gil:  cond_signal(cond)           -> it released the GIL
 *              cond_wait(switch_cond)      -> after a forced drop, the
 *                                             handoff to the next holder
 *
 * Every event but the handoff happens with the GIL's own mutex held, so
 * the tables and the ring in <pid>.gil have exactly one writer at a time
 * and need no atomics; the handoff is kept in thread-local storage and
 * written at the thread's next event.  Per-thread state lives in TLS (the
 * table row mirrors it for the reader and for on_exit).  A generation
 * number invalidates the TLS of a previous accounting (fork child).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gil.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"
#include "shim.h"

/* Watched addresses sit here while accounting is off: no user pointer is
 * this high, so the fast-path compares fail (also the range check of
 * pthread_cond_signal, since c - NOT_WATCHED wraps to c + 4096). */
#define NOT_WATCHED ((uintptr_t)-4096)
#define SIGNAL_SPAN ((uintptr_t)(AT312_GIL_SWITCH_COND - AT312_GIL_COND))
_Static_assert(AT_RT_GIL_SWITCH_COND - AT_RT_GIL_COND == AT312_GIL_SWITCH_COND - AT312_GIL_COND &&
               AT313_GIL_SWITCH_COND - AT313_GIL_COND == AT312_GIL_SWITCH_COND - AT312_GIL_COND,
               "cond and switch_cond are as far apart in every version (one constant on the fast path)");
_Static_assert(AT312_GIL_INTERVAL == 0 && AT313_GIL_INTERVAL == 0, "interval is the GIL's first field");
/* Takes at which an unnamed thread's frames are looked at (a thread of
 * threading has its frames from its second take on). */
#define NAME_PROBES 16

typedef int (*lock_fn)(pthread_mutex_t *);
typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*signal_fn)(pthread_cond_t *);

/* The addresses the fast paths compare against (relaxed loads). */
static uintptr_t w_mutex = NOT_WATCHED;   /* &gil->mutex       */
static uintptr_t w_cond = NOT_WATCHED;    /* &gil->cond        */
static uintptr_t w_switch = NOT_WATCHED;  /* &gil->switch_cond */

typedef struct gil_state {
    at_gil_header_t *hdr;      /* the mapped <pid>.gil, NULL when none     */
    at_gil_thread_t *threads;  /* its thread table                         */
    at_gil_event_t *ring;      /* its interval ring                        */
    uintptr_t gil;             /* the struct _gil_runtime_state watched    */
    const int *locked;         /* its fields (the version's offsets)       */
    const unsigned long *switch_number;
    const uintptr_t *last_holder;
    int on;                    /* accounting live (read under gil->mutex)  */
    uint32_t gen;              /* bumped at every (re)start                */
    int pending_request;       /* a drop request not yet honoured          */
    int key_ok;                /* key was created                          */
    pthread_key_t key;         /* its destructor marks a thread's end      */
} gil_state_t;

static gil_state_t g;

typedef struct gil_tls {
    at_gil_thread_t *slot;     /* this thread's row, NULL before its first event */
    uint32_t gen;              /* g.gen this TLS belongs to                */
    uint32_t state;            /* AT_GIL_OUT/WAITING/HELD (authoritative)  */
    uint64_t since;            /* when state began                         */
    uint64_t handoff_start;    /* a handoff not yet written ...            */
    uint64_t handoff_ns;       /* ... and its length (0: none)             */
    uint32_t tid;              /* gettid()                                 */
    int key_set;               /* pthread_setspecific done                 */
    int probes;                /* name probes made (NAME_PROBES: done)     */
    uintptr_t tstate;          /* its PyThreadState, as take_gil set it    */
} gil_tls_t;

static __thread gil_tls_t tl;

/* ---- the real functions, found on first use ---------------------------- */

/* dlvsym with the versions CPython links against (nm -D: cond functions
 * at GLIBC_2.3.2, the default; mutex at GLIBC_2.2.5); plain dlsym as a
 * fallback for a libc that versions them otherwise. */
static void *real_sym(const char *name, const char *version)
{
    void *p = dlvsym(RTLD_NEXT, name, version);
    return p ? p : dlsym(RTLD_NEXT, name);
}

static int first_mutex_lock(pthread_mutex_t *m);
static int first_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t);
static int first_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
static int first_cond_signal(pthread_cond_t *c);

static lock_fn real_mutex_lock = first_mutex_lock;
static timedwait_fn real_cond_timedwait = first_cond_timedwait;
static wait_fn real_cond_wait = first_cond_wait;
static signal_fn real_cond_signal = first_cond_signal;

#define RESOLVE(var, type, name, version) \
    type fn = (type)real_sym(name, version); \
    if (fn) \
        __atomic_store_n(&var, fn, __ATOMIC_RELAXED)

static int first_mutex_lock(pthread_mutex_t *m)
{
    RESOLVE(real_mutex_lock, lock_fn, "pthread_mutex_lock", "GLIBC_2.2.5");
    return fn ? fn(m) : ENOSYS;
}

static int first_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    RESOLVE(real_cond_timedwait, timedwait_fn, "pthread_cond_timedwait", "GLIBC_2.3.2");
    return fn ? fn(c, m, t) : ENOSYS;
}

static int first_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    RESOLVE(real_cond_wait, wait_fn, "pthread_cond_wait", "GLIBC_2.3.2");
    return fn ? fn(c, m) : ENOSYS;
}

static int first_cond_signal(pthread_cond_t *c)
{
    RESOLVE(real_cond_signal, signal_fn, "pthread_cond_signal", "GLIBC_2.3.2");
    return fn ? fn(c) : ENOSYS;
}

/* ---- the GIL's own fields ------------------------------------------------ */

static int gil_locked(void)
{
    return __atomic_load_n(g.locked, __ATOMIC_RELAXED);
}

static unsigned long gil_switch_number(void)
{
    return __atomic_load_n(g.switch_number, __ATOMIC_RELAXED);
}

static uintptr_t gil_last_holder(void)
{
    return __atomic_load_n(g.last_holder, __ATOMIC_RELAXED);
}

/* The GIL's fields, where the version's table puts them (once, at start). */
static void set_gil(uintptr_t gil)
{
    g.gil = gil;
    g.locked = (const int *)(gil + at_pyl.gil_locked);
    g.switch_number = (const unsigned long *)(gil + at_pyl.gil_switch_number);
    g.last_holder = (const uintptr_t *)(gil + at_pyl.gil_last_holder);
}

static void watch(int on)
{
    uintptr_t base = on ? g.gil : 0;
    __atomic_store_n(&w_mutex, on ? base + at_pyl.gil_mutex : NOT_WATCHED, __ATOMIC_RELEASE);
    __atomic_store_n(&w_cond, on ? base + at_pyl.gil_cond : NOT_WATCHED, __ATOMIC_RELEASE);
    __atomic_store_n(&w_switch, on ? base + at_pyl.gil_switch_cond : NOT_WATCHED, __ATOMIC_RELEASE);
}

static int is_on(void)
{
    return __atomic_load_n(&g.on, __ATOMIC_ACQUIRE);
}

/* ---- the table and the ring (callers hold gil->mutex) ---------------- */

static uint32_t slot_index(const at_gil_thread_t *s)
{
    return (uint32_t)(s - g.threads);
}

static at_gil_thread_t *new_slot(uint32_t tid, uint64_t now)
{
    at_gil_header_t *h = g.hdr;
    uint32_t n = h->nthreads, last = h->thread_cap - 1;
    at_gil_thread_t *s = &g.threads[n < last ? n : last];
    if (n < last) {
        s->tid = tid;
        s->first_ns = now;
    } else {
        if (n == last) {   /* the last row adds up everyone after it */
            s->flags = AT_GIL_T_OVERFLOW;
            s->first_ns = now;
        }
        h->threads_dropped++;
    }
    if (n <= last)
        __atomic_store_n(&h->nthreads, n + 1, __ATOMIC_RELEASE);
    return s;
}

/* This thread's row; TLS from an older accounting starts afresh. */
static at_gil_thread_t *my_slot(uint64_t now)
{
    if (tl.gen != g.gen) {
        tl.gen = g.gen;
        tl.slot = NULL;
        tl.state = AT_GIL_OUT;
        tl.handoff_ns = 0;
        tl.probes = 0;
        tl.tid = 0;                    /* a fork child has another tid */
    }
    if (!tl.slot) {
        if (!tl.tid)
            tl.tid = (uint32_t)gettid();
        tl.slot = new_slot(tl.tid, now);
    }
    return tl.slot;
}

static void set_state(at_gil_thread_t *s, uint32_t state, uint64_t now)
{
    tl.state = state;
    tl.since = now;
    if (!(s->flags & AT_GIL_T_OVERFLOW)) {
        s->state = state;
        s->since_ns = now;
    }
    g.hdr->last_ns = now;
}

static void ring_add(uint64_t start, uint64_t dur, uint32_t slot, uint32_t kind)
{
    at_gil_header_t *h = g.hdr;
    uint64_t n = h->ring_written;
    at_gil_event_t *e = &g.ring[n & (AT_GIL_RING_CAP - 1)];
    if (n >= AT_GIL_RING_CAP && e->kind < AT_GIL_EV_KINDS) {
        h->ring_dropped_ns[e->kind] += e->dur_ns;
        h->ring_dropped[e->kind]++;
    }
    e->start_ns = start;
    e->dur_ns = dur;
    e->slot = slot;
    e->kind = kind;
    h->ring_written = n + 1;
}

_Static_assert((AT_GIL_RING_CAP & (AT_GIL_RING_CAP - 1)) == 0, "ring capacity is a power of two");

/* Close the current hold or wait of row s at `now`. */
static void account(at_gil_thread_t *s, uint32_t state, uint64_t since, uint64_t now)
{
    uint64_t d = now > since ? now - since : 0;
    if (state == AT_GIL_HELD) {
        s->hold_ns += d;
        if (d > s->max_hold_ns)
            s->max_hold_ns = d;
        ring_add(since, d, slot_index(s), AT_GIL_EV_HOLD);
    } else if (state == AT_GIL_WAITING) {
        s->wait_ns += d;
        if (d > s->max_wait_ns)
            s->max_wait_ns = d;
        ring_add(since, d, slot_index(s), AT_GIL_EV_WAIT);
    }
}

static void flush_handoff(at_gil_thread_t *s)
{
    if (!tl.handoff_ns)
        return;
    s->handoff_ns += tl.handoff_ns;
    ring_add(tl.handoff_start, tl.handoff_ns, slot_index(s), AT_GIL_EV_HANDOFF);
    tl.handoff_ns = 0;
}

/* ---- events --------------------------------------------------------------- */

/* take_gil began at t0 and now holds gil->mutex. */
static void on_wait_begin(uint64_t t0)
{
    at_gil_thread_t *s = my_slot(t0);
    flush_handoff(s);
    if (tl.state == AT_GIL_OUT)
        set_state(s, AT_GIL_WAITING, t0);
}

/* cond_signal(switch_cond) at the end of take_gil: the thread holds it. */
static void on_take(void)
{
    uint64_t now = at_now_ns();
    at_gil_thread_t *s = my_slot(now);
    at_gil_header_t *h = g.hdr;
    flush_handoff(s);
    if (tl.state != AT_GIL_OUT)
        account(s, tl.state, tl.since, now);
    if (tl.state == AT_GIL_HELD || gil_locked() != 1)
        h->anomalies++;
    s->acquisitions++;
    unsigned long sn = gil_switch_number();
    if (sn != h->switch_last) {
        s->switches += sn - h->switch_last;
        h->switch_last = sn;
    }
    set_state(s, AT_GIL_HELD, now);
    tl.tstate = gil_last_holder();
    if (tl.probes < NAME_PROBES && !(s->flags & (AT_GIL_T_NAMED | AT_GIL_T_MAIN | AT_GIL_T_OVERFLOW)))
        tl.probes = at_gil_names_probe(tl.tstate) ? NAME_PROBES : tl.probes + 1;
}

/* The last drop of a thread: _PyThreadState_DeleteCurrent has unlinked
 * its state from the interpreter (join() returns from here on), then
 * drops the GIL.  Safe to read: nobody takes the GIL while we hold its
 * mutex, so the predecessor cannot be freed under us. */
static int thread_finished(void)
{
    uintptr_t ts = tl.tstate;
    if (!ts || ts != gil_last_holder())
        return 0;
    uintptr_t prev = *(const uintptr_t *)(ts + at_pyl.tstate_prev);
    if (prev)
        return *(const uintptr_t *)(prev + at_pyl.tstate_next) != ts;
    uintptr_t interp = *(const uintptr_t *)(ts + at_pyl.tstate_interp);
    return interp && *(const uintptr_t *)(interp + at_pyl.interp_tstate_head) != ts;
}

/* cond_signal(cond) in drop_gil: the thread released it. */
static void on_drop(void)
{
    uint64_t now = at_now_ns();
    at_gil_thread_t *s = my_slot(now);
    if (tl.state == AT_GIL_HELD)
        account(s, AT_GIL_HELD, tl.since, now);
    else
        g.hdr->anomalies++;
    if (gil_locked() != 0)
        g.hdr->anomalies++;
    if (g.pending_request) {   /* a waiter asked; this drop honours it */
        s->forced_drops++;
        g.pending_request = 0;
    }
    set_state(s, AT_GIL_OUT, now);
    if (!(s->flags & (AT_GIL_T_MAIN | AT_GIL_T_OVERFLOW | AT_GIL_T_ENDED)) && thread_finished()) {
        s->end_ns = now;
        __atomic_fetch_or(&s->flags, AT_GIL_T_ENDED, __ATOMIC_RELEASE);
    }
}

/* ---- slow paths (the GIL's own objects) ---------------------------------- */

/* A GIL condition variable waited on with a mutex that is not its pair:
 * the addresses are not what the version's table says.  Stop, and say why. */
__attribute__((noinline, cold)) static void disable(const char *why)
{
    at_gil_header_t *h = g.hdr;
    __atomic_store_n(&g.on, 0, __ATOMIC_RELEASE);
    watch(0);
    if (!h)
        return;
    strncpy(h->error, why, sizeof(h->error) - 1);
    __atomic_fetch_or(&h->flags, AT_GIL_F_DISABLED, __ATOMIC_RELEASE);
}

__attribute__((noinline, cold)) static int gil_mutex_lock(pthread_mutex_t *m)
{
    if (tl.state == AT_GIL_HELD && tl.gen == g.gen)
        return real_mutex_lock(m);                 /* drop_gil's lock */
    if (!tl.key_set && g.key_ok) {                 /* before any lock: may allocate */
        tl.key_set = 1;
        pthread_setspecific(g.key, &tl);
    }
    uint64_t t0 = at_now_ns();
    int rc = real_mutex_lock(m);
    if (rc == 0 && is_on())
        on_wait_begin(t0);
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                                              const struct timespec *abstime)
{
    if (is_on() && (uintptr_t)m != w_mutex)
        disable("the GIL cond was waited on with another mutex: layout mismatch");
    if (!is_on())
        return real_cond_timedwait(c, m, abstime);
    at_gil_thread_t *s = my_slot(at_now_ns());
    if (tl.state == AT_GIL_OUT)                    /* began before we did */
        set_state(s, AT_GIL_WAITING, at_now_ns());
    unsigned long saved = gil_switch_number();
    int rc = real_cond_timedwait(c, m, abstime);
    /* The test take_gil itself makes, on the same values, under the
     * same mutex: this wait is about to set gil_drop_request. */
    if (rc == ETIMEDOUT && is_on() && tl.gen == g.gen && gil_locked() && gil_switch_number() == saved) {
        g.hdr->drop_requests++;
        s->drop_requests++;
        g.pending_request = 1;
    }
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (is_on() && (uintptr_t)m != g.gil + at_pyl.gil_switch_mutex)
        disable("the GIL switch_cond was waited on with another mutex: layout mismatch");
    if (!is_on())
        return real_cond_wait(c, m);
    uint64_t t0 = at_now_ns();
    int rc = real_cond_wait(c, m);
    uint64_t t1 = at_now_ns();
    if (tl.gen == g.gen) {
        if (!tl.handoff_ns)
            tl.handoff_start = t0;
        tl.handoff_ns += t1 > t0 ? t1 - t0 : 1;
    }
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_signal(pthread_cond_t *c)
{
    if (is_on()) {
        if ((uintptr_t)c == w_cond)
            on_drop();
        else if ((uintptr_t)c == w_switch)
            on_take();
    }
    return real_cond_signal(c);
}

/* ---- the interposed entry points: one compare, then a tail call --------- */

#define WATCHED(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)

AT_API int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (__builtin_expect((uintptr_t)m == WATCHED(w_mutex), 0))
        return gil_mutex_lock(m);
    return real_mutex_lock(m);
}

AT_API int pthread_cond_timedwait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
                                  const struct timespec *restrict abstime)
{
    if (__builtin_expect((uintptr_t)c == WATCHED(w_cond), 0))
        return gil_cond_timedwait(c, m, abstime);
    return real_cond_timedwait(c, m, abstime);
}

AT_API int pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m)
{
    if (__builtin_expect((uintptr_t)c == WATCHED(w_switch), 0))
        return gil_cond_wait(c, m);
    return real_cond_wait(c, m);
}

/* cond and switch_cond are SIGNAL_SPAN bytes apart: one unsigned range
 * compare covers both. */
AT_API int pthread_cond_signal(pthread_cond_t *c)
{
    if (__builtin_expect((uintptr_t)c - WATCHED(w_cond) <= SIGNAL_SPAN, 0))
        return gil_cond_signal(c);
    return real_cond_signal(c);
}

/* ---- thread end ------------------------------------------------------------ */

/* pthread key destructor: the thread is exiting (its last drop_gil is
 * behind it); take its scheduler statistics while /proc still has them.
 * Its end is normally known already (thread_finished). */
static void thread_end(void *unused)
{
    (void)unused;
    at_gil_thread_t *s = tl.slot;
    if (!is_on() || tl.gen != g.gen || !s || (s->flags & AT_GIL_T_OVERFLOW))
        return;
    uint64_t st[3];
    if (at_gil_schedstat(tl.tid, st) == 0) {
        s->cpu_ns = st[0];
        s->runq_ns = st[1];
        s->slices = st[2];
        __atomic_fetch_or(&s->flags, AT_GIL_T_SCHED, __ATOMIC_RELAXED);
    }
    if (!(s->flags & AT_GIL_T_ENDED))
        s->end_ns = at_now_ns();
    __atomic_fetch_or(&s->flags, AT_GIL_T_ENDED, __ATOMIC_RELEASE);
}

/* ---- start, verification --------------------------------------------------- */

/* Where the GIL of this thread's interpreter is: 3.11 _PyRuntime.ceval.gil,
 * 3.12+ interp->ceval.gil, which must be the main interpreter's (the
 * features run in the main interpreter only). */
static uintptr_t find_gil(uintptr_t interp)
{
    if (at_pyl.rt_gil != AT_PYLAYOUT_NONE)
        return at_shim.runtime + (uintptr_t)at_pyl.rt_gil;
    if (interp != *(const uintptr_t *)(at_shim.runtime + at_pyl.rt_interpreters_main))
        return 0;
    return *(const uintptr_t *)(interp + at_pyl.interp_ceval_gil);
}

/* Refuse rather than guess: the live interpreter must agree with the
 * offsets before a single address is watched.  Called with the GIL held
 * by this thread (on_run), so `locked` is 1 and `last_holder` is us.
 * *gil is set to the GIL found. */
static const char *verify_layout(uintptr_t *gil_out)
{
    static void *(*thread_state_get)(void);
    if (!thread_state_get)
        thread_state_get = (void *(*)(void))at_py_sym("PyThreadState_Get");
    if (!at_shim.runtime || !thread_state_get)
        return "no _PyRuntime or PyThreadState_Get: GIL accounting off";
    uintptr_t ts = (uintptr_t)thread_state_get();
    uintptr_t interp = ts ? *(const uintptr_t *)(ts + at_pyl.tstate_interp) : 0;
    if (!interp || *(const uintptr_t *)(interp + at_pyl.interp_runtime) != at_shim.runtime)
        return "thread state does not point back at _PyRuntime: GIL accounting off";
    uintptr_t gil = find_gil(interp);
    if (!gil)
        return "no GIL found in the main interpreter: GIL accounting off";
    if (at_pyl.gil_switch_cond - at_pyl.gil_cond != (int32_t)SIGNAL_SPAN)
        return "the GIL's condition variables are not where the fast path expects: GIL accounting off";
    if (*(const int *)(gil + at_pyl.gil_locked) != 1)
        return "the GIL's locked is not 1 with the GIL held: GIL accounting off";
    if (*(const uintptr_t *)(gil + at_pyl.gil_last_holder) != ts)
        return "the GIL's last_holder is not the running thread: GIL accounting off";
    unsigned long interval = *(const unsigned long *)gil;   /* interval, the first field */
    if (interval < 1 || interval > 100000000ul)
        return "the GIL's interval is out of range: GIL accounting off";
    const uintptr_t mutexes[] = { gil + at_pyl.gil_mutex, gil + at_pyl.gil_switch_mutex };
    for (int i = 0; i < 2; i++)
        if (*(const int *)(mutexes[i] + AT_GLIBC_MUTEX_KIND) & AT_GLIBC_MUTEX_KIND_TYPE_MASK)
            return "the GIL mutexes are not default pthread mutexes: GIL accounting off";
    *gil_out = gil;
    return NULL;
}

/* Map a fresh <pid>.gil and start counting.  `held`: this thread holds
 * the GIL now (on_run); in a fork child it is taken again by
 * PyOS_AfterFork_Child, which the hooks see. */
static int start(int held, int forked, const char *main_name)
{
    at_gil_header_t *h = at_seg_map("gil", AT_GIL_FILE_SIZE);
    if (!h)
        return -ENOMEM;
    uint64_t now = at_now_ns();
    *h = (at_gil_header_t){
        .magic = AT_GIL_MAGIC, .version = AT_GIL_VERSION,
        .header_size = sizeof(at_gil_header_t), .thread_size = sizeof(at_gil_thread_t),
        .thread_cap = AT_GIL_MAX_THREADS, .event_size = sizeof(at_gil_event_t),
        .ring_cap = AT_GIL_RING_CAP, .flags = AT_GIL_F_RUNNING | (forked ? AT_GIL_F_FORKED : 0),
        .pid = (int32_t)getpid(), .ppid = (int32_t)getppid(),
        .start_ns = now, .last_ns = now,
        .interval_us = *(const unsigned long *)g.gil,   /* interval, the first field */
        .switch_start = gil_switch_number(), .switch_last = gil_switch_number(),
    };
    g.hdr = h;
    g.threads = (at_gil_thread_t *)(h + 1);
    g.ring = (at_gil_event_t *)(g.threads + AT_GIL_MAX_THREADS);
    g.pending_request = 0;
    g.gen++;
    at_gil_thread_t *s = my_slot(now);
    s->flags |= AT_GIL_T_MAIN;
    strncpy(s->name, main_name, sizeof(s->name) - 1);
    if (held)
        set_state(s, AT_GIL_HELD, now);
    __atomic_store_n(&g.on, 1, __ATOMIC_RELEASE);
    watch(1);
    return 0;
}

static void gil_on_run(void)
{
    uintptr_t gil = 0;
    const char *why = verify_layout(&gil);
    if (why) {
        at_shim_note("gil", why);
        return;
    }
    set_gil(gil);
    if (!g.key_ok)
        g.key_ok = pthread_key_create(&g.key, thread_end) == 0;
    start(1, 0, "MainThread");      /* a failed file is noted by the core */
}

static void gil_on_audit(const char *event, PyObject *args)
{
    if (g.hdr)
        at_gil_names_audit(event, args);
}

/* ---- fork, exit -------------------------------------------------------- */

static void gil_on_fork_child(void)
{
    char name[AT_GIL_NAME_MAX] = "MainThread";
    int was_on = is_on();
    if (was_on && tl.gen == g.gen && tl.slot && tl.slot->name[0] && !(tl.slot->flags & AT_GIL_T_OVERFLOW))
        memcpy(name, tl.slot->name, sizeof(name));
    name[sizeof(name) - 1] = '\0';
    __atomic_store_n(&g.on, 0, __ATOMIC_RELEASE);
    watch(0);
    /* The parent's file is shared with the parent: never write it here. */
    at_seg_unmap(g.hdr, AT_GIL_FILE_SIZE);
    g.hdr = NULL;
    at_gil_names_fork_child();
    if (was_on)
        start(0, 1, name);          /* a failed file is noted by the core */
}

static void read_sched(at_gil_thread_t *s)
{
    uint64_t st[3];
    if ((s->flags & (AT_GIL_T_SCHED | AT_GIL_T_OVERFLOW)) || at_gil_schedstat(s->tid, st) < 0)
        return;
    s->cpu_ns = st[0];
    s->runq_ns = st[1];
    s->slices = st[2];
    __atomic_fetch_or(&s->flags, AT_GIL_T_SCHED, __ATOMIC_RELAXED);
}

/* Close every open interval at `now` and stop.  Caller holds gil->mutex
 * when it can. */
static void close_books(uint64_t now)
{
    at_gil_header_t *h = g.hdr;
    if (tl.gen == g.gen && tl.slot)
        flush_handoff(tl.slot);
    uint32_t n = h->nthreads < h->thread_cap ? h->nthreads : h->thread_cap;
    for (uint32_t i = 0; i < n; i++) {
        at_gil_thread_t *s = &g.threads[i];
        if (s->flags & AT_GIL_T_OVERFLOW)
            continue;
        account(s, s->state, s->since_ns, now);
        s->state = AT_GIL_OUT;
        s->since_ns = now;
        read_sched(s);
    }
    if (gil_locked() >= 0)
        h->switch_end = gil_switch_number();
    h->end_ns = now;
    h->last_ns = now;
    __atomic_store_n(&g.on, 0, __ATOMIC_RELEASE);
    watch(0);
    __atomic_fetch_or(&h->flags, AT_GIL_F_EXITED, __ATOMIC_RELEASE);
}

/* python_alive: at atexit time, GIL held.  Else from _exit or the
 * destructor: the GIL may be gone, another thread may hold its mutex. */
static void gil_on_exit(int python_alive)
{
    if (!g.hdr)
        return;
    int saved = errno;
    if (python_alive)
        at_gil_names_exit();
    if (is_on()) {
        pthread_mutex_t *m = (pthread_mutex_t *)(g.gil + at_pyl.gil_mutex);
        int locked = 0;
        if (python_alive)
            locked = real_mutex_lock(m) == 0;
        else if (gil_locked() >= 0)
            locked = pthread_mutex_trylock(m) == 0;
        close_books(at_now_ns());
        if (locked)
            pthread_mutex_unlock(m);
    }
    errno = saved;
}

at_gil_header_t *at_gil_header(void)
{
    return g.hdr;
}

at_gil_thread_t *at_gil_slots(void)
{
    return g.hdr ? g.threads : NULL;
}

const at_feature_t at_feature_gil = {
    .name = "gil",
    .bit = AT_FEAT_GIL,
    .on_run = gil_on_run,
    .on_audit = gil_on_audit,
    .on_fork_child = gil_on_fork_child,
    .on_exit = gil_on_exit,
};
