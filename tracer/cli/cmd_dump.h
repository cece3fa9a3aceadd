/* SPDX-License-Identifier: MIT */
/* cmd_dump.h - `archtrace -p PID dump [--locals] [--json FILE] [--subprocesses]`. */
#ifndef AT_CMD_DUMP_H
#define AT_CMD_DUMP_H
#include "cli/options.h"
#include "remote/proc_tree.h"
#include "remote/sampler.h"

/* Print every thread's stack of o->pid once, most recent call last, to
 * stdout; with o->locals each Python frame's variables under it; with
 * o->json_file the same as a JSON document there ("-": stdout, instead
 * of the text); with o->subprocesses every Python process under o->pid
 * (subprocesses.c).  0, or an AT_EXIT_* status after one line on stderr. */
int at_cmd_dump(const at_options_t *o);

/* One process's dump: its target and what was read of it. */
typedef struct at_dumped at_dumped_t;

/* Read every thread of t (which it then owns) once; parent (may be NULL)
 * is named in the header.  NULL with *status (said on stderr) when it
 * could not be read. */
at_dumped_t *at_dump_read(const at_options_t *o, at_target_t *t, const at_proc_row_t *parent, int *status);

/* Its text on stdout, unless the JSON goes there (--json -). */
void at_dump_print(const at_options_t *o, const at_dumped_t *one);

/* One JSON document of n processes' dumps to o->json_file: 0, or 125
 * after one line on stderr. */
int at_dump_write_all(const at_options_t *o, at_dumped_t *const *all, int n);

void at_dumped_free(at_dumped_t *one);

/* --subprocesses (subprocesses.c). */
int at_dump_tree(const at_options_t *o);

#endif
