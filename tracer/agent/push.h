/* SPDX-License-Identifier: MIT */
/* push.h - a profile POSTed to a Pyroscope-compatible ingest endpoint.
 *
 * Pyroscope's HTTP ingest API: POST <URL>/ingest?name=APP{LABELS}&from=S
 * &until=S&format=pprof&spyName=archtrace, the gzipped profile.proto as
 * the multipart form field "profile" (Grafana Alloy's
 * pyroscope.receive_http takes the same).  libcurl does the HTTP.
 */
#ifndef AT_AGENT_PUSH_H
#define AT_AGENT_PUSH_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One profile of process pid (comm, Python version) over [from_s, until_s]
 * (UNIX seconds).  0, or -1 with the reason in err. */
int at_push_profile(const char *url, const void *pprof, size_t len, pid_t pid, const char *comm,
                    const char *version, uint64_t from_s, uint64_t until_s, char *err, size_t errlen);

#endif
