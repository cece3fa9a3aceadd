/* SPDX-License-Identifier: MIT */
/* gil_int.h - what gil.c (the hooks and the accounting) and gil_start.c (starting, fork, exit) share.
 *
 * The state of the accounting and this thread's part of it, and the
 * accounting's steps that starting and stopping make too.  Callers hold
 * the GIL's mutex (see gil.c) unless a comment says otherwise.  Not for
 * use outside gil*.c. */
#ifndef AT_GIL_INT_H
#define AT_GIL_INT_H
#include <pthread.h>
#include <stdint.h>
#include "gil.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"

#define AT_GIL_HIDDEN __attribute__((visibility("hidden")))

/* Watched addresses sit here while accounting is off: no user pointer is
 * this high, so the fast-path compares fail (also the range check of
 * pthread_cond_signal, since c - NOT_WATCHED wraps to c + 4096). */
#define NOT_WATCHED ((uintptr_t)-4096)
#define SIGNAL_SPAN ((uintptr_t)(AT312_GIL_SWITCH_COND - AT312_GIL_COND))
_Static_assert(AT_RT_GIL_SWITCH_COND - AT_RT_GIL_COND == AT312_GIL_SWITCH_COND - AT312_GIL_COND &&
               AT313_GIL_SWITCH_COND - AT313_GIL_COND == AT312_GIL_SWITCH_COND - AT312_GIL_COND,
               "cond and switch_cond are as far apart in every version (one constant on the fast path)");
_Static_assert(AT312_GIL_INTERVAL == 0 && AT313_GIL_INTERVAL == 0, "interval is the GIL's first field");

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

extern gil_state_t at_gil AT_GIL_HIDDEN;           /* the accounting            */
extern __thread gil_tls_t at_gil_tls AT_GIL_HIDDEN; /* this thread's part of it */
/* pthread_mutex_lock of libc (resolved on first use) */
extern int (*at_gil_real_mutex_lock)(pthread_mutex_t *) AT_GIL_HIDDEN;

/* The GIL's own fields (relaxed loads). */
static inline int at_gil_locked(void)
{
    return __atomic_load_n(at_gil.locked, __ATOMIC_RELAXED);
}

static inline unsigned long at_gil_switch_number(void)
{
    return __atomic_load_n(at_gil.switch_number, __ATOMIC_RELAXED);
}

static inline int at_gil_is_on(void)
{
    return __atomic_load_n(&at_gil.on, __ATOMIC_ACQUIRE);
}

/* gil.c: point the hooks' compares at the GIL's objects, or at nothing. */
void at_gil_watch(int on) AT_GIL_HIDDEN;
/* gil.c: this thread's row; TLS from an older accounting starts afresh. */
at_gil_thread_t *at_gil_my_slot(uint64_t now) AT_GIL_HIDDEN;
/* gil.c: row s (this thread's) enters state at now. */
void at_gil_set_state(at_gil_thread_t *s, uint32_t state, uint64_t now) AT_GIL_HIDDEN;
/* gil.c: close the current hold or wait of row s at now. */
void at_gil_account(at_gil_thread_t *s, uint32_t state, uint64_t since, uint64_t now) AT_GIL_HIDDEN;
/* gil.c: write this thread's pending handoff into row s. */
void at_gil_flush_handoff(at_gil_thread_t *s) AT_GIL_HIDDEN;

#endif
