/* SPDX-License-Identifier: MIT */
/* cmd_record.h - `archtrace -p PID record`. */
#ifndef AT_CMD_RECORD_H
#define AT_CMD_RECORD_H
#include "cli/options.h"

/* Sample o->pid at o->rate_hz until o->duration_s elapses (0: no limit),
 * the process exits, or SIGINT/SIGTERM; write the session (o->output_dir
 * or a temporary one, removed afterwards) and render the report.  With
 * o->bpf the eBPF probes (bpf.h) record instead of the ptrace sampler:
 * GIL waits, imports, GC and on-CPU stacks, into <pid>.bpf and
 * <pid>.stacks.  A progress line is drawn on stderr when it is a TTY.
 * 0, or an AT_EXIT_* status after one line on stderr (7: the kernel
 * refused eBPF).  With o->subprocesses, every Python process of the
 * tree under o->pid instead (subprocesses.c, subprocesses_bpf.c). */
int at_cmd_record(const at_options_t *o);

/* --subprocesses: every Python process of the tree under o->pid, those
 * that start later included (subprocesses.c). */
int at_record_tree(const at_options_t *o);

/* --bpf --subprocesses: the same with the eBPF probes, each Python
 * process joining its binary's host-wide probe set (subprocesses_bpf.c). */
int at_record_tree_bpf(const at_options_t *o);

#endif
