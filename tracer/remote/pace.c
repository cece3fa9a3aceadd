/* SPDX-License-Identifier: MIT */
/* pace.c - fixed-rate pacing of a sampling thread (see pace.h). */
#include "remote/pace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RATE_HZ    100.0
#define MAX_RATE_HZ        1000000.0      /* the CLI may cap lower */
#define SAMPLER_NICE       -10            /* see pace.h                     */
#define WINDOW_NS          1000000000ull  /* duty and contention checks     */
#define POLL_BACKOFF_NS    10000000000ull /* the timer for 10 s after contention */
#define POLL_MISSED_MAX    20             /* 1 tick in 20 missed: no CPU of our own */
#define POLL_STALL_MAX     70             /* CPUs' worth of tasks waiting for one, in % */

uint64_t at_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double at_pace_rate(double hz)
{
    return hz > 0 && hz <= MAX_RATE_HZ ? hz : hz > MAX_RATE_HZ ? MAX_RATE_HZ : DEFAULT_RATE_HZ;
}

static void normal_priority(int nice)
{
    struct sched_param sp = { .sched_priority = 0 };
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) < 0)
        errno = 0; /* not allowed: stay as we are */
}

/* Sleeping: real-time when allowed (see pace.h). */
static void use_timer(at_pace_t *p)
{
    struct sched_param sp = { .sched_priority = 1 };
    p->polling = 0;
    p->realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    if (!p->realtime)
        normal_priority(SAMPLER_NICE);
}

/* Polling never sleeps: never real-time. */
static void use_polling(at_pace_t *p)
{
    p->polling = 1;
    p->realtime = 0;
    normal_priority(SAMPLER_NICE);
}

/* Microseconds some task of the machine waited for a CPU (PSI), or -1. */
static int64_t cpu_stall_us(void)
{
    char buf[256];
    int fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *total = strstr(buf, "total=");   /* the "some" line is first */
    return total ? (int64_t)strtoull(total + 6, NULL, 10) : -1;
}

void at_pace_init(at_pace_t *p, double rate_hz, int may_poll)
{
    memset(p, 0, sizeof *p);
    double hz = at_pace_rate(rate_hz);
    p->period_ns = (uint64_t)(1e9 / hz);
    if (!p->period_ns)
        p->period_ns = 1;
    p->next_ns = p->woke_ns = p->window_ns = at_now_ns();
    long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->ncpus = ncpus > 0 ? (int)ncpus : 1;
    p->may_poll = may_poll && hz >= AT_PACE_POLL_HZ && p->ncpus >= 2;
    p->window_stall_us = cpu_stall_us();
    /* a 1 ns timer slack instead of the default 50 µs, or 10 kHz drifts */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (p->may_poll)
        use_polling(p);
    else
        use_timer(p);
}

void at_pace_end(at_pace_t *p)
{
    if (p->realtime || p->polling)
        normal_priority(0);
    p->realtime = p->polling = 0;
}

/* Polling found no CPU of its own over the window: ticks missed (it was
 * preempted), or tasks waiting for a CPU worth most of one CPU (it took
 * one they wanted).  PSI's system-wide "some" share is averaged over the
 * CPUs (one oversubscribed CPU of n reads 1/n), so it is scaled by n:
 * n busy loops on n CPUs next to a poller read 1.0 on any n.  A Python
 * target's threads wait for a CPU briefly at every GIL handoff: 0.3-0.45
 * on 2 CPUs (timer or poller), where polling still costs it far less
 * than timer wake-ups do. */
static int poll_contended(const at_pace_t *p, uint64_t now, int64_t stall_us)
{
    if (p->window_missed * POLL_MISSED_MAX > p->window_ticks)
        return 1;
    if (stall_us < 0 || p->window_stall_us < 0 || stall_us < p->window_stall_us)
        return 0;
    uint64_t window_us = (now - p->window_ns) / 1000;
    uint64_t waiting = (uint64_t)(stall_us - p->window_stall_us) * (uint64_t)p->ncpus;
    return waiting * 100 > window_us * POLL_STALL_MAX;
}

/* Once a second: a real-time sampler awake more than half the time gives
 * the CPU back (nice -10); a polling one that is contended goes back to
 * the timer for a while, and comes back to polling after that. */
static void check_window(at_pace_t *p, uint64_t now)
{
    p->busy_ns += now - p->woke_ns;
    if (now - p->window_ns < WINDOW_NS)
        return;
    int64_t stall = p->may_poll ? cpu_stall_us() : -1;
    if (p->polling && poll_contended(p, now, stall)) {
        p->no_poll_until = now + POLL_BACKOFF_NS;
        use_timer(p);
    } else if (!p->polling && p->may_poll && now >= p->no_poll_until) {
        use_polling(p);
    } else if (p->realtime && p->busy_ns * 2 > now - p->window_ns) {
        normal_priority(SAMPLER_NICE);
        p->realtime = 0;
    }
    p->window_ns = now;
    p->window_stall_us = stall;
    p->busy_ns = p->window_missed = p->window_ticks = 0;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

uint64_t at_pace_wait(at_pace_t *p, volatile sig_atomic_t *stop)
{
    uint64_t now = at_now_ns(), skipped = 0;
    check_window(p, now);
    /* the timer always rests a little (a real-time thread must); polling
     * needs no rest */
    uint64_t earliest = p->polling ? now : now + p->period_ns / 8;
    p->next_ns += p->period_ns;
    if (p->next_ns < earliest) {
        /* late: ticks that can no longer be kept are missed */
        skipped = (earliest - p->next_ns + p->period_ns - 1) / p->period_ns;
        p->next_ns += skipped * p->period_ns;
    }
    p->window_ticks += 1 + skipped;
    p->window_missed += skipped;
    if (p->polling) {
        p->polled++;
        while (at_now_ns() < p->next_ns && !(stop && *stop))
            cpu_relax();
    } else {
        p->timed++;
        struct timespec ts = { (time_t)(p->next_ns / 1000000000ull), (long)(p->next_ns % 1000000000ull) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !(stop && *stop))
            ;
    }
    p->woke_ns = at_now_ns();
    return skipped;
}
