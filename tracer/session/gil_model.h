/* SPDX-License-Identifier: MIT */
/* gil_model.h - one process's GIL figures, whichever backend measured them.
 *
 * The shim (<pid>.gil: every take and drop, a timeline of intervals) and
 * the eBPF probes (<pid>.bpf: waits in take_gil only) both fill this
 * model, and report/report_gil.c renders it the same way for both.  What
 * a backend did not measure is said by `measured`, never shown as zero.
 *
 * The threads' totals come from the thread table, which never drops a
 * count; the timeline from the ring, which may have overwritten its oldest
 * intervals.  A process that was killed never closed its books: its open
 * intervals are closed at its last recorded event, in the totals and in
 * the timeline alike, so the two always agree.  Contended phases are found
 * on the timeline: stretches between thread starts and ends where two or
 * more threads were in Python (holding or waiting).
 */
#ifndef AT_GIL_MODEL_H
#define AT_GIL_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gil_format.h"

/* What the backend measured (at_gil_model_t.measured). */
#define AT_GIL_M_WAIT     0x1u  /* wait_ns, max_wait_ns, drop_requests        */
#define AT_GIL_M_HOLD     0x2u  /* holds, handoffs, acquisitions, switches,
                                   forced drops: every take and drop seen    */
#define AT_GIL_M_TIMELINE 0x4u  /* intervals, hence contended phases         */
#define AT_GIL_M_WAITS    0x8u  /* the number of takes that had to wait      */

typedef struct at_gil_tmodel {
    at_gil_thread_t row;           /* the thread's row (a copy; eBPF: built) */
    char name[AT_GIL_NAME_MAX];    /* NUL-terminated, maybe ""               */
    uint64_t ns[AT_GIL_EV_KINDS];  /* totals by AT_GIL_EV_* kind             */
    uint64_t python_ns;            /* time in Python: hold + wait + handoff;
                                      eBPF: the attached window it lived in */
    uint64_t waits;                /* takes that waited (AT_GIL_M_WAITS)     */
    uint64_t start, end;           /* lifetime inside the accounting         */
    int open;                      /* an interval was left open              */
} at_gil_tmodel_t;

typedef struct at_gil_phase {
    uint64_t start, end;           /* window on CLOCK_MONOTONIC              */
    uint64_t ns[AT_GIL_EV_KINDS];  /* per kind, clipped to the window        */
    uint32_t threads;              /* threads in Python in the window        */
} at_gil_phase_t;

typedef struct at_gil_model {
    const char *source;            /* "preload" or "ebpf"                    */
    unsigned measured;             /* AT_GIL_M_*                             */
    at_gil_header_t h;             /* the file's header (eBPF: built)        */
    at_gil_tmodel_t *t;            /* threads, table order                   */
    uint32_t nt;
    at_gil_event_t *ev;            /* valid intervals, sorted by start       */
    size_t nev;
    size_t bad_events;             /* ring entries that failed checks        */
    uint64_t start, end;           /* accounting (or attached) window        */
    at_gil_phase_t *ph;            /* contended phases                       */
    size_t nph;
} at_gil_model_t;

/* The GIL figures of process `key` in session dir: from <key>.gil when the
 * shim wrote one, else from the GIL view of <key>.bpf.  0; -ENOENT when
 * neither has them (nothing printed); another -errno after one line on
 * stderr saying what is wrong with the file. */
int at_gil_model_load(const char *dir, pid_t key, at_gil_model_t *m);
void at_gil_model_free(at_gil_model_t *m);

/* Intervals the ring overwrote (the timeline covers the end only). */
uint64_t at_gil_model_timeline_dropped(const at_gil_model_t *m);

/* `top`'s live reading of a running process's <pid>.gil: the header and
 * the first AT_GIL_LIVE_MAX rows of its thread table (not the ring), as
 * the shim keeps them current, open intervals included.  A malloc'd
 * buffer (free it) or NULL when there is no such file or it fails its
 * checks.  at_gil_live_row finds a thread's row in it, or NULL. */
#define AT_GIL_LIVE_MAX (AT_GIL_MAX_THREADS * 4u)
void *at_gil_live_read(const char *dir, pid_t pid);
const at_gil_thread_t *at_gil_live_row(const void *gil, uint32_t tid);

#endif
