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
 *
 * This file is the hooks and the accounting they do; starting it (the
 * layout checked first), a fork child's restart, a thread's end and the
 * books closed at exit are gil_start.c's, through gil_int.h.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gil_int.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"
#include "shim.h"

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

gil_state_t at_gil;                /* the accounting (gil_int.h)      */
__thread gil_tls_t at_gil_tls;     /* this thread's part of it        */

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

lock_fn at_gil_real_mutex_lock = first_mutex_lock;
static timedwait_fn real_cond_timedwait = first_cond_timedwait;
static wait_fn real_cond_wait = first_cond_wait;
static signal_fn real_cond_signal = first_cond_signal;

#define RESOLVE(var, type, name, version) \
    type fn = (type)real_sym(name, version); \
    if (fn) \
        __atomic_store_n(&var, fn, __ATOMIC_RELAXED)

static int first_mutex_lock(pthread_mutex_t *m)
{
    RESOLVE(at_gil_real_mutex_lock, lock_fn, "pthread_mutex_lock", "GLIBC_2.2.5");
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

static uintptr_t gil_last_holder(void)
{
    return __atomic_load_n(at_gil.last_holder, __ATOMIC_RELAXED);
}

/* Point the hooks' compares at the GIL's objects, or at nothing. */
void at_gil_watch(int on)
{
    uintptr_t base = on ? at_gil.gil : 0;
    __atomic_store_n(&w_mutex, on ? base + at_pyl.gil_mutex : NOT_WATCHED, __ATOMIC_RELEASE);
    __atomic_store_n(&w_cond, on ? base + at_pyl.gil_cond : NOT_WATCHED, __ATOMIC_RELEASE);
    __atomic_store_n(&w_switch, on ? base + at_pyl.gil_switch_cond : NOT_WATCHED, __ATOMIC_RELEASE);
}

/* ---- the table and the ring (callers hold gil->mutex) ---------------- */

static uint32_t slot_index(const at_gil_thread_t *s)
{
    return (uint32_t)(s - at_gil.threads);
}

static at_gil_thread_t *new_slot(uint32_t tid, uint64_t now)
{
    at_gil_header_t *h = at_gil.hdr;
    uint32_t n = h->nthreads, last = h->thread_cap - 1;
    at_gil_thread_t *s = &at_gil.threads[n < last ? n : last];
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
at_gil_thread_t *at_gil_my_slot(uint64_t now)
{
    if (at_gil_tls.gen != at_gil.gen) {
        at_gil_tls.gen = at_gil.gen;
        at_gil_tls.slot = NULL;
        at_gil_tls.state = AT_GIL_OUT;
        at_gil_tls.handoff_ns = 0;
        at_gil_tls.probes = 0;
        at_gil_tls.tid = 0;            /* a fork child has another tid */
    }
    if (!at_gil_tls.slot) {
        if (!at_gil_tls.tid)
            at_gil_tls.tid = (uint32_t)gettid();
        at_gil_tls.slot = new_slot(at_gil_tls.tid, now);
    }
    return at_gil_tls.slot;
}

void at_gil_set_state(at_gil_thread_t *s, uint32_t state, uint64_t now)
{
    at_gil_tls.state = state;
    at_gil_tls.since = now;
    if (!(s->flags & AT_GIL_T_OVERFLOW)) {
        s->state = state;
        s->since_ns = now;
    }
    at_gil.hdr->last_ns = now;
}

static void ring_add(uint64_t start, uint64_t dur, uint32_t slot, uint32_t kind)
{
    at_gil_header_t *h = at_gil.hdr;
    uint64_t n = h->ring_written;
    at_gil_event_t *e = &at_gil.ring[n & (AT_GIL_RING_CAP - 1)];
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
void at_gil_account(at_gil_thread_t *s, uint32_t state, uint64_t since, uint64_t now)
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

void at_gil_flush_handoff(at_gil_thread_t *s)
{
    if (!at_gil_tls.handoff_ns)
        return;
    s->handoff_ns += at_gil_tls.handoff_ns;
    ring_add(at_gil_tls.handoff_start, at_gil_tls.handoff_ns, slot_index(s), AT_GIL_EV_HANDOFF);
    at_gil_tls.handoff_ns = 0;
}

/* ---- events --------------------------------------------------------------- */

/* take_gil began at t0 and now holds gil->mutex. */
static void on_wait_begin(uint64_t t0)
{
    at_gil_thread_t *s = at_gil_my_slot(t0);
    at_gil_flush_handoff(s);
    if (at_gil_tls.state == AT_GIL_OUT)
        at_gil_set_state(s, AT_GIL_WAITING, t0);
}

/* cond_signal(switch_cond) at the end of take_gil: the thread holds it. */
static void on_take(void)
{
    uint64_t now = at_now_ns();
    at_gil_thread_t *s = at_gil_my_slot(now);
    at_gil_header_t *h = at_gil.hdr;
    at_gil_flush_handoff(s);
    if (at_gil_tls.state != AT_GIL_OUT)
        at_gil_account(s, at_gil_tls.state, at_gil_tls.since, now);
    if (at_gil_tls.state == AT_GIL_HELD || at_gil_locked() != 1)
        h->anomalies++;
    s->acquisitions++;
    unsigned long sn = at_gil_switch_number();
    if (sn != h->switch_last) {
        s->switches += sn - h->switch_last;
        h->switch_last = sn;
    }
    at_gil_set_state(s, AT_GIL_HELD, now);
    at_gil_tls.tstate = gil_last_holder();
    if (at_gil_tls.probes < NAME_PROBES && !(s->flags & (AT_GIL_T_NAMED | AT_GIL_T_MAIN | AT_GIL_T_OVERFLOW)))
        at_gil_tls.probes = at_gil_names_probe(at_gil_tls.tstate) ? NAME_PROBES : at_gil_tls.probes + 1;
}

/* The last drop of a thread: _PyThreadState_DeleteCurrent has unlinked
 * its state from the interpreter (join() returns from here on), then
 * drops the GIL.  Safe to read: nobody takes the GIL while we hold its
 * mutex, so the predecessor cannot be freed under us. */
static int thread_finished(void)
{
    uintptr_t ts = at_gil_tls.tstate;
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
    at_gil_thread_t *s = at_gil_my_slot(now);
    if (at_gil_tls.state == AT_GIL_HELD)
        at_gil_account(s, AT_GIL_HELD, at_gil_tls.since, now);
    else
        at_gil.hdr->anomalies++;
    if (at_gil_locked() != 0)
        at_gil.hdr->anomalies++;
    if (at_gil.pending_request) {   /* a waiter asked; this drop honours it */
        s->forced_drops++;
        at_gil.pending_request = 0;
    }
    at_gil_set_state(s, AT_GIL_OUT, now);
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
    at_gil_header_t *h = at_gil.hdr;
    __atomic_store_n(&at_gil.on, 0, __ATOMIC_RELEASE);
    at_gil_watch(0);
    if (!h)
        return;
    strncpy(h->error, why, sizeof(h->error) - 1);
    __atomic_fetch_or(&h->flags, AT_GIL_F_DISABLED, __ATOMIC_RELEASE);
}

__attribute__((noinline, cold)) static int gil_mutex_lock(pthread_mutex_t *m)
{
    if (at_gil_tls.state == AT_GIL_HELD && at_gil_tls.gen == at_gil.gen)
        return at_gil_real_mutex_lock(m);                 /* drop_gil's lock */
    if (!at_gil_tls.key_set && at_gil.key_ok) {                 /* before any lock: may allocate */
        at_gil_tls.key_set = 1;
        pthread_setspecific(at_gil.key, &at_gil_tls);
    }
    uint64_t t0 = at_now_ns();
    int rc = at_gil_real_mutex_lock(m);
    if (rc == 0 && at_gil_is_on())
        on_wait_begin(t0);
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                                              const struct timespec *abstime)
{
    if (at_gil_is_on() && (uintptr_t)m != w_mutex)
        disable("the GIL cond was waited on with another mutex: layout mismatch");
    if (!at_gil_is_on())
        return real_cond_timedwait(c, m, abstime);
    at_gil_thread_t *s = at_gil_my_slot(at_now_ns());
    if (at_gil_tls.state == AT_GIL_OUT)                    /* began before we did */
        at_gil_set_state(s, AT_GIL_WAITING, at_now_ns());
    unsigned long saved = at_gil_switch_number();
    int rc = real_cond_timedwait(c, m, abstime);
    /* The test take_gil itself makes, on the same values, under the
     * same mutex: this wait is about to set gil_drop_request. */
    if (rc == ETIMEDOUT && at_gil_is_on() && at_gil_tls.gen == at_gil.gen && at_gil_locked() && at_gil_switch_number() == saved) {
        at_gil.hdr->drop_requests++;
        s->drop_requests++;
        at_gil.pending_request = 1;
    }
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (at_gil_is_on() && (uintptr_t)m != at_gil.gil + at_pyl.gil_switch_mutex)
        disable("the GIL switch_cond was waited on with another mutex: layout mismatch");
    if (!at_gil_is_on())
        return real_cond_wait(c, m);
    uint64_t t0 = at_now_ns();
    int rc = real_cond_wait(c, m);
    uint64_t t1 = at_now_ns();
    if (at_gil_tls.gen == at_gil.gen) {
        if (!at_gil_tls.handoff_ns)
            at_gil_tls.handoff_start = t0;
        at_gil_tls.handoff_ns += t1 > t0 ? t1 - t0 : 1;
    }
    return rc;
}

__attribute__((noinline, cold)) static int gil_cond_signal(pthread_cond_t *c)
{
    if (at_gil_is_on()) {
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
    return at_gil_real_mutex_lock(m);
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
