/* SPDX-License-Identifier: MIT */
/* gil_format.h - <pid>.gil: per-thread GIL accounting and a timeline ring.
 *
 * Written by preload/gil.c through a shared mapping (so what was counted
 * survives a crash or os._exit of the target), read by tracer/session/gil_model.c.
 * Layout, all little-endian, fixed size:
 *
 *     at_gil_header_t                       header_size bytes
 *     at_gil_thread_t  threads[thread_cap]  thread_size bytes each
 *     at_gil_event_t   ring[ring_cap]       event_size bytes each
 *
 * Times are CLOCK_MONOTONIC nanoseconds (the clock of every other feature,
 * so Chrome traces of several processes line up).  The shim writes the
 * tables and the ring only under the GIL's own mutex, so there is one
 * writer at a time; the reader runs after the process ended (or died) and
 * trusts nothing: at_gil_check() validates the header and the reader
 * validates every slot and every event.
 */
#ifndef AT_GIL_FORMAT_H
#define AT_GIL_FORMAT_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define AT_GIL_MAGIC       0x4c494754u /* "TGIL" little-endian            */
#define AT_GIL_VERSION     1u
#define AT_GIL_MAX_THREADS 256u        /* the last slot collects overflow */
#define AT_GIL_RING_CAP    32768u      /* intervals kept (oldest overwritten) */
#define AT_GIL_NAME_MAX    48u

/* What a thread is doing, as far as the GIL goes (at_gil_thread_t.state). */
#define AT_GIL_OUT      0u   /* not holding, not asking (I/O, sleep, C)  */
#define AT_GIL_WAITING  1u   /* inside take_gil, blocked on the GIL      */
#define AT_GIL_HELD     2u   /* between take_gil's end and drop_gil      */

/* Interval kinds in the ring (at_gil_event_t.kind). */
#define AT_GIL_EV_HOLD     1u /* the thread held the GIL                  */
#define AT_GIL_EV_WAIT     2u /* it waited in take_gil                    */
#define AT_GIL_EV_HANDOFF  3u /* after a forced drop, it waited on
                               * switch_cond for another thread to take   */
#define AT_GIL_EV_KINDS    4u

/* Header flags. */
#define AT_GIL_F_RUNNING   0x1u /* accounting started (on_run or fork)    */
#define AT_GIL_F_EXITED    0x2u /* on_exit closed every open interval     */
#define AT_GIL_F_DISABLED  0x4u /* a layout/consistency check failed      */
#define AT_GIL_F_FORKED    0x8u /* this process is a fork() child         */

/* Thread flags. */
#define AT_GIL_T_MAIN      0x1u /* the thread that ran __main__ (or forked) */
#define AT_GIL_T_ENDED     0x2u /* the thread exited; end_ns is its end   */
#define AT_GIL_T_SCHED     0x4u /* cpu_ns/runq_ns/slices are valid        */
#define AT_GIL_T_NAMED     0x8u /* name is the threading.Thread name      */
#define AT_GIL_T_OVERFLOW  0x10u /* sums of every thread past the table   */

typedef struct at_gil_header {
    uint32_t magic;            /* AT_GIL_MAGIC                             */
    uint32_t version;          /* AT_GIL_VERSION                           */
    uint32_t header_size;      /* sizeof(at_gil_header_t)                  */
    uint32_t thread_size;      /* sizeof(at_gil_thread_t)                  */
    uint32_t thread_cap;       /* slots in the thread table                */
    uint32_t event_size;       /* sizeof(at_gil_event_t)                   */
    uint32_t ring_cap;         /* slots in the interval ring               */
    uint32_t flags;            /* AT_GIL_F_*                               */
    int32_t pid;               /* this process                             */
    int32_t ppid;              /* its parent                               */
    uint64_t start_ns;         /* accounting started (on_run, fork)        */
    uint64_t end_ns;           /* on_exit closed the books; 0: never did   */
    uint64_t last_ns;          /* time of the last recorded event          */
    uint64_t interval_us;      /* the GIL switch interval at start         */
    uint64_t switch_start;     /* _PyRuntime.ceval.gil.switch_number at start */
    uint64_t switch_end;       /* ... at on_exit (valid with F_EXITED)     */
    uint64_t switch_last;      /* ... as last seen at a take               */
    uint64_t drop_requests;    /* timed-out waits that asked for a drop    */
    uint32_t nthreads;         /* slots in use (<= thread_cap)             */
    uint32_t threads_dropped;  /* threads folded into the overflow slot    */
    uint32_t names_dropped;    /* thread names that could not be kept      */
    uint32_t anomalies;        /* events that did not fit the state machine */
    uint64_t ring_written;     /* intervals ever appended to the ring      */
    uint64_t ring_dropped_ns[AT_GIL_EV_KINDS]; /* by kind: overwritten ns  */
    uint64_t ring_dropped[AT_GIL_EV_KINDS];    /* by kind: overwritten count */
    char error[96];            /* why accounting stopped (F_DISABLED)      */
    uint8_t reserved[224];     /* pads the header to 512 bytes             */
} at_gil_header_t;

typedef struct at_gil_thread {
    uint32_t tid;              /* OS thread id (gettid), 0 for overflow    */
    uint32_t flags;            /* AT_GIL_T_*                               */
    uint32_t state;            /* AT_GIL_OUT/WAITING/HELD, kept current    */
    uint32_t reserved;
    uint64_t since_ns;         /* when `state` began                       */
    uint64_t first_ns;         /* first GIL event of the thread            */
    uint64_t end_ns;           /* thread exit (T_ENDED) or 0               */
    uint64_t hold_ns;          /* total time holding the GIL               */
    uint64_t wait_ns;          /* total time blocked in take_gil           */
    uint64_t handoff_ns;       /* total time in forced-drop handoffs       */
    uint64_t acquisitions;     /* times it took the GIL                    */
    uint64_t switches;         /* takes that bumped switch_number          */
    uint64_t forced_drops;     /* drops that honoured a drop request       */
    uint64_t drop_requests;    /* drop requests this thread made (waiting) */
    uint64_t max_wait_ns;      /* longest single wait                      */
    uint64_t max_hold_ns;      /* longest single hold                      */
    uint64_t cpu_ns;           /* /proc schedstat: time on a CPU           */
    uint64_t runq_ns;          /* /proc schedstat: runnable, not on a CPU  */
    uint64_t slices;           /* /proc schedstat: times scheduled in      */
    char name[AT_GIL_NAME_MAX]; /* NUL-terminated; "" when unknown         */
} at_gil_thread_t;

typedef struct at_gil_event {
    uint64_t start_ns;         /* interval start                           */
    uint64_t dur_ns;           /* interval length                          */
    uint32_t slot;             /* index into the thread table              */
    uint32_t kind;             /* AT_GIL_EV_*                              */
} at_gil_event_t;

_Static_assert(sizeof(at_gil_header_t) == 512, "gil header is 512 bytes");
_Static_assert(sizeof(at_gil_thread_t) == 184, "gil thread slot is 184 bytes");
_Static_assert(sizeof(at_gil_event_t) == 24, "gil event is 24 bytes");

/* Bytes of a .gil file with the compiled-in capacities. */
#define AT_GIL_FILE_SIZE \
    (sizeof(at_gil_header_t) + (size_t)AT_GIL_MAX_THREADS * sizeof(at_gil_thread_t) + \
     (size_t)AT_GIL_RING_CAP * sizeof(at_gil_event_t))

/* Validate the header of a .gil image of `size` bytes: 0 when the tables
 * it announces fit, else -EPROTO (not ours) or -EBADMSG (truncated, inconsistent) with *why set to a
 * lowercase reason.  Slots and events are checked one by one by the
 * reader (a crash can leave one half-written). */
static inline int at_gil_check(const void *buf, size_t size, const char **why)
{
    const at_gil_header_t *h = (const at_gil_header_t *)buf;
    if (size < sizeof(*h))
        return *why = "truncated: shorter than the header", -EBADMSG;
    if (h->magic != AT_GIL_MAGIC)
        return *why = "bad magic (not a .gil file)", -EPROTO;
    if (h->version != AT_GIL_VERSION)
        return *why = "unsupported version", -EPROTO;
    if (h->header_size != sizeof(at_gil_header_t) || h->thread_size != sizeof(at_gil_thread_t) ||
        h->event_size != sizeof(at_gil_event_t))
        return *why = "record sizes do not match this archtrace", -EPROTO;
    if (h->thread_cap == 0 || h->thread_cap > 65536 || h->ring_cap > (1u << 24) ||
        h->nthreads > h->thread_cap)
        return *why = "table sizes out of range", -EBADMSG;
    size_t need = sizeof(*h) + (size_t)h->thread_cap * sizeof(at_gil_thread_t) +
                  (size_t)h->ring_cap * sizeof(at_gil_event_t);
    if (size < need)
        return *why = "truncated: tables extend past the end of the file", -EBADMSG;
    return 0;
}

static inline const at_gil_thread_t *at_gil_threads(const void *buf)
{
    return (const at_gil_thread_t *)((const char *)buf + sizeof(at_gil_header_t));
}

static inline const at_gil_event_t *at_gil_ring(const void *buf)
{
    const at_gil_header_t *h = (const at_gil_header_t *)buf;
    return (const at_gil_event_t *)((const char *)at_gil_threads(buf) +
                                    (size_t)h->thread_cap * sizeof(at_gil_thread_t));
}

#endif
