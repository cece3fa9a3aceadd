/* SPDX-License-Identifier: MIT */
/* cmd_sample.h - `archtrace -p PID dump`. */
#ifndef AT_CMD_SAMPLE_H
#define AT_CMD_SAMPLE_H
#include "cli/options.h"
#include "remote/proc_tree.h"
#include "remote/sampler.h"

/* Print every thread's stack of o->pid once, most recent call last, to
 * stdout.  0, or an AT_EXIT_* status after one line on stderr. */
int at_cmd_dump(const at_options_t *o);

/* Dump one open target (then freed), its header naming parent when
 * given.  0, or an AT_EXIT_* status after one line on stderr. */
int at_dump_target(at_target_t *t, const at_proc_row_t *parent);

/* --subprocesses: every Python process of the tree under o->pid
 * (subprocesses.c). */
int at_dump_tree(const at_options_t *o);

#endif
