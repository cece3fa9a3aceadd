/* SPDX-License-Identifier: MIT */
/* gil_live.h - the shim's per-thread GIL state, read while it runs.
 *
 * The shim keeps, for every thread, whether it holds the GIL, waits for
 * it in take_gil or neither (at_gil_thread_t.state, "kept current") in
 * <pid>.gil, a file it writes through a shared mapping.  The run sampler
 * reads the file's thread table (not its ring) once per sample and looks
 * each thread's state up, so a sample can say the thread was waiting for
 * the GIL there: a few hundred bytes a sample, nothing asked of the
 * target.
 */
#ifndef AT_GIL_LIVE_H
#define AT_GIL_LIVE_H
#include <stdint.h>
#include <sys/types.h>

typedef struct at_gil_live at_gil_live_t;

/* Open <dir>/<pid>.gil; NULL when it is not there (yet). */
at_gil_live_t *at_gil_live_open(const char *dir, pid_t pid);
void at_gil_live_close(at_gil_live_t *g);

/* Read the thread table as it is now (an invalid file reads as empty). */
void at_gil_live_refresh(at_gil_live_t *g);

/* 1 when thread tid was blocked in take_gil at the last refresh. */
int at_gil_live_waiting(const at_gil_live_t *g, uint32_t tid);

#endif
