/* SPDX-License-Identifier: MIT */
/* gil_live.c - the shim's per-thread GIL state, read at each sample (see gil_live.h).
 *
 * Read with pread into a buffer of our own, not mapped: the program
 * could truncate its file under a mapping and the sampler would die of
 * SIGBUS.  Two reads a sample: the header (how many rows are in use),
 * then those rows.
 */
#include "session/gil_live.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gil_format.h"
#include "session/session.h"

#define ROWS_READ_MAX 256   /* threads looked up (the table's own bound)  */

struct at_gil_live {
    int fd;
    uint32_t n;                               /* rows read at the last refresh */
    at_gil_thread_t rows[ROWS_READ_MAX];
};

at_gil_live_t *at_gil_live_open(const char *dir, pid_t pid)
{
    FILE *f = at_session_open_file(dir, pid, "gil");
    at_gil_live_t *g = f ? calloc(1, sizeof *g) : NULL;
    if (g)
        g->fd = dup(fileno(f));
    if (f)
        fclose(f);
    if (g && g->fd < 0) {
        free(g);
        g = NULL;
    }
    return g;
}

void at_gil_live_close(at_gil_live_t *g)
{
    if (!g)
        return;
    close(g->fd);
    free(g);
}

void at_gil_live_refresh(at_gil_live_t *g)
{
    at_gil_header_t h;
    const char *why;
    g->n = 0;
    /* the header's sizes checked as for a whole file, but only the table read */
    if (pread(g->fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
        at_gil_check(&h, sizeof h + (size_t)h.thread_cap * sizeof(at_gil_thread_t) +
                              (size_t)h.ring_cap * sizeof(at_gil_event_t), &why) < 0)
        return;
    uint32_t n = h.nthreads < ROWS_READ_MAX ? h.nthreads : ROWS_READ_MAX;
    ssize_t got = pread(g->fd, g->rows, n * sizeof *g->rows, sizeof h);
    g->n = got > 0 ? (uint32_t)((size_t)got / sizeof *g->rows) : 0;
}

int at_gil_live_waiting(const at_gil_live_t *g, uint32_t tid)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->rows[i].tid == tid && !(g->rows[i].flags & AT_GIL_T_OVERFLOW))
            return g->rows[i].state == AT_GIL_WAITING;
    return 0;
}
