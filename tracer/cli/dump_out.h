/* SPDX-License-Identifier: MIT */
/* dump_out.h - what `archtrace -p PID dump` read, and its text and JSON.
 *
 * cmd_dump.c collects one moment of every thread into at_dump_t; the
 * functions here print it: the text on stdout (threads, frames most
 * recent call last, with --locals each Python frame's variables under
 * it, with --asyncio the tasks of every event loop before them) and the
 * JSON document of docs/JSON.md ("dump").
 */
#ifndef AT_DUMP_OUT_H
#define AT_DUMP_OUT_H
#include <stdint.h>
#include <stdio.h>

#include "remote/locals.h"
#include "remote/py_asyncio.h"
#include "remote/sampler.h"

typedef struct at_dump_frame {
    at_frame_t f;                 /* function and line, as sampled        */
    at_frame_locals_t *locals;    /* its variables (malloc'd), or NULL    */
} at_dump_frame_t;

typedef struct at_dump_thread {
    uint32_t tid;
    uint8_t gil, idle;
    int n;                        /* frames[0..n), root first             */
    at_dump_frame_t *frames;
} at_dump_thread_t;

typedef struct at_dump {
    at_dump_thread_t *threads;    /* AT_MAX_THREADS, main thread first once sorted */
    int n;
    int locals;                   /* variables were read (--locals)       */
    at_asyncio_t *asyncio;        /* the tasks (--asyncio), else NULL     */
    pid_t ppid;                   /* --subprocesses: its parent, else 0   */
    char parent_comm[32];
} at_dump_t;

/* Main thread first, then by thread id. */
void at_dump_sort(at_dump_t *d, pid_t main_tid);

/* The text of the dump, as `archtrace -p PID dump` prints it. */
void at_dump_print_text(FILE *out, const at_target_t *t, const at_dump_t *d);

/* The JSON document of n processes' dumps; 0 or -errno from writing it. */
int at_dump_write_json(FILE *out, const at_target_t *const *t, const at_dump_t *const *d, int n);

/* Free every thread's frames and variables (d->threads stays). */
void at_dump_clear(at_dump_t *d);

#endif
