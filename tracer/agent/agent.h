/* SPDX-License-Identifier: MIT */
/* agent.h - `archtrace agent`: every CPython process of the host, watched
 * with the eBPF probes, as Prometheus metrics and pprof profiles. */
#ifndef AT_AGENT_H
#define AT_AGENT_H
#include "cli/options.h"

/* Run until SIGINT/SIGTERM or -d SECS: scan for CPython processes every
 * second, attach to new ones, serve --metrics, cut profiles every
 * --interval into --profiles and --push.  0, or an AT_EXIT_* status after
 * one line on stderr (7: the kernel refused eBPF). */
int at_cmd_agent(const at_options_t *o);

#endif
