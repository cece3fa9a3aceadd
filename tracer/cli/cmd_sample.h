/* SPDX-License-Identifier: MIT */
/* cmd_sample.h - `archtrace -p PID dump` and `archtrace -p PID record`. */
#ifndef AT_CMD_SAMPLE_H
#define AT_CMD_SAMPLE_H
#include "cli/options.h"
#include "remote/sampler.h"

/* Open o->pid for sampling, waiting a little (2 s) for an interpreter
 * still starting.  0, or an AT_EXIT_* status after one line on stderr. */
int at_cmd_open_target(const at_options_t *o, at_target_t **t);

/* Print every thread's stack of o->pid once, most recent call last, to
 * stdout; with o->locals each Python frame's variables under it; with
 * o->json_file the same as a JSON document there ("-": stdout, instead
 * of the text).  0, or an AT_EXIT_* status after one line on stderr.
 * (cmd_dump.c) */
int at_cmd_dump(const at_options_t *o);

/* Sample o->pid at o->rate_hz until o->duration_s elapses (0: no limit),
 * the process exits, or SIGINT/SIGTERM; write the session (o->output_dir
 * or a temporary one, removed afterwards) and render the report.  With
 * o->bpf the eBPF probes (bpf.h) record instead of the ptrace sampler:
 * GIL waits, imports, GC and on-CPU stacks, into <pid>.bpf and
 * <pid>.stacks.  A progress line is drawn on stderr when it is a TTY.
 * 0, or an AT_EXIT_* status after one line on stderr (7: the kernel
 * refused eBPF). */
int at_cmd_record(const at_options_t *o);

#endif
