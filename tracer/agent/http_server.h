/* SPDX-License-Identifier: MIT */
/* http_server.h - the little HTTP/1.1 server behind --metrics.
 *
 * One listening TCP socket; the agent's loop waits on it and serves one
 * request at a time (a Prometheus server scrapes every few seconds):
 * GET /metrics answers with the exposition text, / with a line saying
 * where the metrics are, anything else 404 or 405.  A client gets 2 s to
 * send its request head and the agent never blocks on it longer.
 */
#ifndef AT_AGENT_HTTP_H
#define AT_AGENT_HTTP_H
#include <stddef.h>
#include <stdio.h>

typedef struct at_http {
    int fd;                       /* listening socket, -1 when closed      */
    char addr[128];               /* "HOST:PORT" as bound (port resolved)  */
} at_http_t;

/* Listen on "HOST:PORT", ":PORT" or "PORT" (HOST 127.0.0.1); port 0 picks
 * a free one.  0, or -errno with the reason in err. */
int at_http_listen(at_http_t *h, const char *spec, char *err, size_t errlen);

/* Writes the body of GET /metrics. */
typedef void (*at_http_body_fn)(FILE *out, void *ctx);

/* Wait up to timeout_ms for a client and serve it.  1 when a /metrics
 * request was served, 0 otherwise. */
int at_http_serve(at_http_t *h, int timeout_ms, at_http_body_fn body, void *ctx);

void at_http_close(at_http_t *h);

#endif
