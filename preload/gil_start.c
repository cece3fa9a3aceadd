/* SPDX-License-Identifier: MIT */
/* gil_start.c - starting GIL accounting (the layout checked on the live interpreter first), a fork child's fresh start, the books closed at exit.
 *
 * Cold code, apart from the hooks (gil.c): it runs at the first
 * cpython.run_* event, in a fork child, at a thread's end and at exit.
 * The accounting's own steps (a row, a state, an interval) are gil.c's,
 * through gil_int.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "gil_int.h"
#include "shim.h"

/* The GIL's fields, where the version's table puts them (once, at start). */
static void set_gil(uintptr_t gil)
{
    at_gil.gil = gil;
    at_gil.locked = (const int *)(gil + at_pyl.gil_locked);
    at_gil.switch_number = (const unsigned long *)(gil + at_pyl.gil_switch_number);
    at_gil.last_holder = (const uintptr_t *)(gil + at_pyl.gil_last_holder);
}

/* ---- thread end ------------------------------------------------------------ */

/* pthread key destructor: the thread is exiting (its last drop_gil is
 * behind it); take its scheduler statistics while /proc still has them.
 * Its end is normally known already (thread_finished). */
static void thread_end(void *unused)
{
    (void)unused;
    at_gil_thread_t *s = at_gil_tls.slot;
    if (!at_gil_is_on() || at_gil_tls.gen != at_gil.gen || !s || (s->flags & AT_GIL_T_OVERFLOW))
        return;
    uint64_t st[3];
    if (at_gil_schedstat(at_gil_tls.tid, st) == 0) {
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
        .interval_us = *(const unsigned long *)at_gil.gil,   /* interval, the first field */
        .switch_start = at_gil_switch_number(), .switch_last = at_gil_switch_number(),
    };
    at_gil.hdr = h;
    at_gil.threads = (at_gil_thread_t *)(h + 1);
    at_gil.ring = (at_gil_event_t *)(at_gil.threads + AT_GIL_MAX_THREADS);
    at_gil.pending_request = 0;
    at_gil.gen++;
    at_gil_thread_t *s = at_gil_my_slot(now);
    s->flags |= AT_GIL_T_MAIN;
    strncpy(s->name, main_name, sizeof(s->name) - 1);
    if (held)
        at_gil_set_state(s, AT_GIL_HELD, now);
    __atomic_store_n(&at_gil.on, 1, __ATOMIC_RELEASE);
    at_gil_watch(1);
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
    if (!at_gil.key_ok)
        at_gil.key_ok = pthread_key_create(&at_gil.key, thread_end) == 0;
    start(1, 0, "MainThread");      /* a failed file is noted by the core */
}

static void gil_on_audit(const char *event, PyObject *args)
{
    if (at_gil.hdr)
        at_gil_names_audit(event, args);
}

/* ---- fork, exit -------------------------------------------------------- */

static void gil_on_fork_child(void)
{
    char name[AT_GIL_NAME_MAX] = "MainThread";
    int was_on = at_gil_is_on();
    if (was_on && at_gil_tls.gen == at_gil.gen && at_gil_tls.slot && at_gil_tls.slot->name[0] && !(at_gil_tls.slot->flags & AT_GIL_T_OVERFLOW))
        memcpy(name, at_gil_tls.slot->name, sizeof(name));
    name[sizeof(name) - 1] = '\0';
    __atomic_store_n(&at_gil.on, 0, __ATOMIC_RELEASE);
    at_gil_watch(0);
    /* The parent's file is shared with the parent: never write it here. */
    at_seg_unmap(at_gil.hdr, AT_GIL_FILE_SIZE);
    at_gil.hdr = NULL;
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
    at_gil_header_t *h = at_gil.hdr;
    if (at_gil_tls.gen == at_gil.gen && at_gil_tls.slot)
        at_gil_flush_handoff(at_gil_tls.slot);
    uint32_t n = h->nthreads < h->thread_cap ? h->nthreads : h->thread_cap;
    for (uint32_t i = 0; i < n; i++) {
        at_gil_thread_t *s = &at_gil.threads[i];
        if (s->flags & AT_GIL_T_OVERFLOW)
            continue;
        at_gil_account(s, s->state, s->since_ns, now);
        s->state = AT_GIL_OUT;
        s->since_ns = now;
        read_sched(s);
    }
    if (at_gil_locked() >= 0)
        h->switch_end = at_gil_switch_number();
    h->end_ns = now;
    h->last_ns = now;
    __atomic_store_n(&at_gil.on, 0, __ATOMIC_RELEASE);
    at_gil_watch(0);
    __atomic_fetch_or(&h->flags, AT_GIL_F_EXITED, __ATOMIC_RELEASE);
}

/* python_alive: at atexit time, GIL held.  Else from _exit or the
 * destructor: the GIL may be gone, another thread may hold its mutex. */
static void gil_on_exit(int python_alive)
{
    if (!at_gil.hdr)
        return;
    int saved = errno;
    if (python_alive)
        at_gil_names_exit();
    if (at_gil_is_on()) {
        pthread_mutex_t *m = (pthread_mutex_t *)(at_gil.gil + at_pyl.gil_mutex);
        int locked = 0;
        if (python_alive)
            locked = at_gil_real_mutex_lock(m) == 0;
        else if (at_gil_locked() >= 0)
            locked = pthread_mutex_trylock(m) == 0;
        close_books(at_now_ns());
        if (locked)
            pthread_mutex_unlock(m);
    }
    errno = saved;
}

at_gil_header_t *at_gil_header(void)
{
    return at_gil.hdr;
}

at_gil_thread_t *at_gil_slots(void)
{
    return at_gil.hdr ? at_gil.threads : NULL;
}

const at_feature_t at_feature_gil = {
    .name = "gil",
    .bit = AT_FEAT_GIL,
    .on_run = gil_on_run,
    .on_audit = gil_on_audit,
    .on_fork_child = gil_on_fork_child,
    .on_exit = gil_on_exit,
};
