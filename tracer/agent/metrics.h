/* SPDX-License-Identifier: MIT */
/* metrics.h - the agent's readings in Prometheus text exposition (0.0.4).
 *
 * Per process (labels pid, comm, python, build) and thread (tid, thread:
 * its threading name): GIL wait seconds, waits and drop requests, the
 * longest wait; imports and failed imports; GC collections, seconds and
 * objects collected by generation; samples taken and lost, events lost;
 * whether each probe view is attached.  eBPF sees the GIL's waits, not its
 * holds: hold time is in the shim's figures (`archtrace run`), not here.
 * Then the agent's own health: processes watched, attached, exited and
 * refused (by reason), its CPU seconds and resident memory, profiles
 * written, pushed and removed, scrapes served.
 */
#ifndef AT_AGENT_METRICS_H
#define AT_AGENT_METRICS_H
#include <stdint.h>
#include <stdio.h>

#include "agent/profiles.h"
#include "agent/watch.h"

/* Write every metric to out. */
void at_metrics_write(FILE *out, at_watch_t *w, const at_profiles_t *pr, uint64_t scrapes);

#endif
