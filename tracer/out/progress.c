/* SPDX-License-Identifier: MIT */
/* progress.c - the in-place progress line of recordings (see progress.h). */
#include "out/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void at_progress_init(at_progress_t *p)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO) == 1;
    p->start_ns = p->last_ns = mono_ns();
}

const char *at_progress_count(char *buf, unsigned long n, uint64_t count)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)count);
    size_t out = 0;
    for (int i = 0; i < len && out + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    if (n)
        buf[out < n ? out : n - 1] = '\0';
    return buf;
}

void at_progress_update(at_progress_t *p, uint64_t count, const char *unit, int processes)
{
    if (!p->on)
        return;
    uint64_t now = mono_ns();
    if (now - p->start_ns < AT_PROGRESS_DELAY_NS || now - p->last_ns < AT_PROGRESS_EVERY_NS)
        return;
    char num[32];
    p->last_ns = now;
    p->drawn = 1;
    /* \033[K erases what a longer previous line left on the right */
    fprintf(stderr, "\rrecording %.1f s, %s %s, %d process%s\033[K", (double)(now - p->start_ns) / 1e9,
            at_progress_count(num, sizeof num, count), unit, processes, processes == 1 ? "" : "es");
    fflush(stderr);
}

void at_progress_end(at_progress_t *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->on = p->drawn = 0;
}
