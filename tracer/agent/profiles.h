/* SPDX-License-Identifier: MIT */
/* profiles.h - a pprof profile per watched process every --interval.
 *
 * Each cut takes the samples the probes named since the last one
 * (at_bpf_cut_stacks), renders them with the report's pprof writer
 * (report/pprof.c: CPU samples and on-CPU nanoseconds, labelled by pid,
 * thread and thread name) and writes DIR/<comm>-<pid>-<UTC time>.pb.gz
 * (renamed into place whole), then POSTs the same bytes to --push.  An
 * interval without samples writes nothing.  Past --profiles-max MB in
 * DIR, the oldest profiles archtrace wrote there are removed.
 */
#ifndef AT_AGENT_PROFILES_H
#define AT_AGENT_PROFILES_H
#include <stdint.h>

#include "agent/watch.h"
#include "cli/options.h"

typedef struct at_profiles {
    const at_options_t *o;
    uint64_t written;             /* files written                         */
    uint64_t failed;              /* renders or writes that failed         */
    uint64_t pushed, push_failed; /* POSTs to --push                       */
    uint64_t removed;             /* old files removed by the size bound   */
    uint64_t bytes;               /* bytes of profiles produced            */
    int quiet;
} at_profiles_t;

void at_profiles_init(at_profiles_t *pr, const at_options_t *o);

/* Cut process p's profile now (its interval ends). */
void at_profiles_cut(at_profiles_t *pr, at_watched_t *p);

#endif
