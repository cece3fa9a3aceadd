/* SPDX-License-Identifier: MIT */
/* progress.h - the one-line progress report of a long recording, on stderr.
 *
 *     recording 12.3 s, 12,301 samples, 3 processes
 *
 * Redrawn in place ('\r') at most about four times a second, only when
 * stderr is a terminal (a log or a pipe gets nothing), and erased at the
 * end so the report starts on a clean line.  Updates are cheap when
 * nothing is drawn: callers may call at_progress_update on every tick.
 * Not thread-safe: one thread owns an at_progress_t.
 */
#ifndef AT_PROGRESS_H
#define AT_PROGRESS_H
#include <stdint.h>

#define AT_PROGRESS_EVERY_NS  250000000ull  /* redraw period           */
#define AT_PROGRESS_DELAY_NS  500000000ull  /* nothing for short runs  */

typedef struct at_progress {
    int on;                  /* stderr is a TTY: draw                     */
    int drawn;               /* a line is on screen (to erase)            */
    uint64_t start_ns;       /* recording started (CLOCK_MONOTONIC)       */
    uint64_t last_ns;        /* last redraw                               */
} at_progress_t;

/* Start timing; draws only when stderr is a terminal. */
void at_progress_init(at_progress_t *p);

/* Redraw "recording T s, COUNT UNIT, N process(es)" if the period has
 * passed.  unit is plural ("samples", "events"). */
void at_progress_update(at_progress_t *p, uint64_t count, const char *unit, int processes);

/* Erase the line (if one was drawn); further updates draw nothing. */
void at_progress_end(at_progress_t *p);

/* "12,301": count with thousands separators, into buf. */
const char *at_progress_count(char *buf, unsigned long n, uint64_t count);

#endif
