/* SPDX-License-Identifier: MIT */
/* chrome.h - pieces of the Chrome trace event format that every feature's
 * chrome output shares (Perfetto and chrome://tracing read them). */
#ifndef AT_CHROME_H
#define AT_CHROME_H
#include <stdint.h>
#include <sys/types.h>
#include "json.h"

/* A metadata event naming a track: "process_name" (tid < 0: the process)
 * or "thread_name" for thread (or track) tid of process pid. */
void at_chrome_track_name(at_json_t *j, pid_t pid, int64_t tid, const char *name);

#endif
