/* SPDX-License-Identifier: MIT */
/* pace.h - a fixed-rate schedule for a sampling thread: ticks at
 * start + k * period, and how the thread waits between them.
 *
 * Sleeping on a timer: the thread is raised to SCHED_FIFO (priority 1)
 * when allowed, else to nice -10: at nice 0 a sampler on a busy 2-core
 * machine waits milliseconds behind the threads it samples and misses
 * most ticks.  A real-time sampler must never starve its target, so it
 * always sleeps between samples (at least period/8) and drops back to
 * SCHED_OTHER when sampling takes more than half a CPU over a second.
 *
 * Polling the clock: from AT_PACE_POLL_HZ up, each wake-up costs the
 * target more than the sample itself.  Measured on a 2-vCPU virtual
 * machine at 10 kHz, a sampler that only slept and woke made a 4-thread
 * target 1.18x slower: the timer interrupt, the wake-up and the
 * preemption land on whichever CPU a target thread runs on.  A thread
 * that polls the clock instead (the vDSO: no system call, no interrupt)
 * costs one whole CPU but leaves the target's alone: 1.02-1.05x there.
 * So at high rates with 2+ CPUs the pace polls (at nice -10, not
 * real-time: it never sleeps), and goes back to the timer for a while
 * whenever it finds it has no CPU to itself (ticks missed: it was
 * preempted; or other tasks kept waiting for a CPU, by PSI).  --no-poll
 * keeps the timer.
 */
#ifndef AT_PACE_H
#define AT_PACE_H
#include <signal.h>
#include <stdint.h>

#define AT_PACE_POLL_HZ 2000.0    /* poll from this rate up (when allowed) */

typedef struct at_pace {
    uint64_t period_ns;       /* 1e9 / rate                               */
    uint64_t next_ns;         /* next tick                                */
    uint64_t woke_ns;         /* when the last wait ended                 */
    uint64_t window_ns;       /* start of the duty-cycle window           */
    uint64_t busy_ns;         /* time awake in the window                 */
    uint64_t window_missed;   /* ticks missed in the window               */
    uint64_t window_ticks;    /* ticks in the window                      */
    int realtime;             /* running SCHED_FIFO                       */
    int may_poll;             /* the rate and the machine allow polling   */
    int ncpus;                /* online CPUs                              */
    int polling;              /* waiting by polling the clock now         */
    uint64_t no_poll_until;   /* after contention: the timer until then   */
    int64_t window_stall_us;  /* PSI cpu "some" total at the window start */
    uint64_t polled, timed;   /* waits of each kind (for the report)      */
} at_pace_t;

/* Monotonic clock in ns. */
uint64_t at_now_ns(void);

/* rate_hz clamped to what the samplers take (0 or less: the default). */
double at_pace_rate(double rate_hz);

/* Start the schedule now; may_poll 0: always sleep on a timer (--no-poll). */
void at_pace_init(at_pace_t *p, double rate_hz, int may_poll);
/* Wait until the next tick (or until *stop).  Returns how many ticks
 * were skipped because sampling ran late. */
uint64_t at_pace_wait(at_pace_t *p, volatile sig_atomic_t *stop);
/* Put the thread's scheduling back to normal. */
void at_pace_end(at_pace_t *p);

#endif
