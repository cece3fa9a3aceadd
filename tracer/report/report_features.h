/* SPDX-License-Identifier: MIT */
/* report_features.h - what each feature contributes to a report.
 *
 * The report core (report.c) iterates the processes of a session and, for
 * each pid, asks each feature to render its part.  All are weak so the
 * report works with any subset present.  Each returns 0, or -ENOENT when
 * the feature has no data for that pid (and then wrote nothing), or
 * another -errno (corrupt data: it printed one line on stderr).
 *   *_text: a titled table on `out`, lined up, units B/KiB/MiB and ms.
 *   *_json: the VALUE of the process's key ("alloc", "gil", "imports",
 *           "samples", "bpf");
 *           the caller has written the key.
 *   *_chrome: events appended to an open "traceEvents" array.
 */
#ifndef AT_REPORT_FEATURES_H
#define AT_REPORT_FEATURES_H
#include <stdio.h>
#include <sys/types.h>
#include "json.h"
#include "cli/options.h"

#define AT_WEAK __attribute__((weak))

AT_WEAK int at_alloc_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_alloc_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_alloc_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);

/* <pid>.memory (memory over time, session/memory_series.h): a few lines
 * after the allocations; the "memory" key; counter events. */
AT_WEAK int at_memory_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_memory_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_memory_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
/* --format svg --memory-plot: the series of every process as line charts. */
AT_WEAK int at_memory_write_svg(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o);

AT_WEAK int at_gil_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_gil_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_gil_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);

AT_WEAK int at_imports_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_imports_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_imports_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);

/* <pid>.bpf (an eBPF recording).  The "bpf" key's value:
 *   {"attached_ns", "probes": {"gil": "...", ...}, "unavailable": [...],
 *    "gil": {"threads": [{"tid","wait_ns","waits","calls","timeouts",
 *            "max_wait_ns","wait_fraction"}], "wait_ratio"},
 *    "imports": [{"module","cumulative_us","self_us","tid","depth","found",
 *            "start_ns"}],
 *    "gc": {"runs","total_us","collected","by_generation":[...]},
 *    "stacks": {"rate_hz","samples","lost","top":[{"thread","gil","frames","count"}]},
 *    "dropped": {...}} */
AT_WEAK int at_bpf_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_bpf_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_bpf_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);

/* Whether a stack is shown: idle ones only with --idle. */
struct at_stack_view;
int at_stacks_included(const struct at_stack_view *v, const at_options_t *o);
AT_WEAK int at_stacks_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
AT_WEAK int at_stacks_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
AT_WEAK int at_stacks_write_collapsed(const char *dir, FILE *out, const at_options_t *o);
AT_WEAK int at_stacks_write_svg(const char *dir, FILE *out, const at_options_t *o);

/* The sampled stacks of every process, or with o->alloc_mode the
 * allocations of the processes keys[0..n), as one pprof profile (gzipped
 * profile.proto) on out.  0, -ENOENT when there is no such data, other
 * -errno. */
AT_WEAK int at_pprof_write(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o);
/* The same as a speedscope file: a profile per thread (wall or CPU ns),
 * or with --alloc one per process weighted by bytes. */
AT_WEAK int at_speedscope_write(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o);

/* Memory (--alloc): bytes allocated by stack, over the given pids'
 * <pid>.alloc, as folded stacks (one process) or one SVG flame graph.
 * 0, -ENOENT when none of them has allocation data, other -errno. */
AT_WEAK int at_alloc_write_collapsed(const char *dir, pid_t pid, FILE *out);
AT_WEAK int at_alloc_write_svg(const char *dir, const pid_t *pids, size_t n, FILE *out,
                               const at_options_t *o);

#endif
