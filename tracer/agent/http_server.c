/* SPDX-License-Identifier: MIT */
/* http_server.c - the little HTTP/1.1 server behind --metrics (see http_server.h). */
#include "agent/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX       8192       /* request head read at most             */
#define CLIENT_TIMEOUT 2          /* seconds a client has to send / take   */

/* "HOST:PORT", ":PORT", "PORT" or "[V6]:PORT" into host and port. */
static int split_addr(const char *spec, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(spec, ':');
    const char *p = colon ? colon + 1 : spec;
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']')
        spec++, hl -= 2;
    if (hl >= hn || strlen(p) >= pn || !*p)
        return -1;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (!*host)
        snprintf(host, hn, "127.0.0.1");
    snprintf(port, pn, "%s", p);
    return 0;
}

static void describe_bound(at_http_t *h)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(h->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        }
    }
    snprintf(h->addr, sizeof h->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

int at_http_listen(at_http_t *h, const char *spec, char *err, size_t errlen)
{
    char host[256], port[32];
    h->fd = -1;
    if (split_addr(spec, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "invalid --metrics '%s': expected HOST:PORT", spec);
        return -EINVAL;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "--metrics %s: %s", spec, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -e;
    }
    freeaddrinfo(ai);
    h->fd = fd;
    describe_bound(h);
    return 0;
}

/* The request head, NUL-terminated; its length or -1. */
static int read_head(int c, char *buf, size_t n)
{
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = recv(c, buf + got, n - 1 - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (int)got;
    }
    return -1;
}

static void send_all(int c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w, n -= (size_t)w;
    }
}

static void respond(int c, const char *status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, type, len);
    send_all(c, head, (size_t)n);
    send_all(c, body, len);
}

/* One request on client c: 1 when it was GET /metrics. */
static int serve_client(int c, at_http_body_fn body, void *ctx)
{
    char head[HEAD_MAX], method[16], path[1024];
    struct timeval tv = { CLIENT_TIMEOUT, 0 };
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (read_head(c, head, sizeof head) < 0 || sscanf(head, "%15s %1023s", method, path) != 2) {
        static const char bad[] = "bad request\n";
        respond(c, "400 Bad Request", "text/plain", bad, sizeof bad - 1);
        return 0;
    }
    char *query = strchr(path, '?');
    if (query)
        *query = '\0';
    if (strcmp(method, "GET")) {
        static const char no[] = "only GET\n";
        respond(c, "405 Method Not Allowed", "text/plain", no, sizeof no - 1);
        return 0;
    }
    if (!strcmp(path, "/")) {
        static const char home[] = "archtrace agent: the metrics are at /metrics\n";
        respond(c, "200 OK", "text/plain; charset=utf-8", home, sizeof home - 1);
        return 0;
    }
    if (strcmp(path, "/metrics")) {
        static const char nf[] = "not found: the metrics are at /metrics\n";
        respond(c, "404 Not Found", "text/plain", nf, sizeof nf - 1);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        body(f, ctx);
        fclose(f);
    }
    respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text ? text : "", text ? len : 0);
    free(text);
    return 1;
}

int at_http_serve(at_http_t *h, int timeout_ms, at_http_body_fn body, void *ctx)
{
    struct pollfd p = { .fd = h->fd, .events = POLLIN };
    if (h->fd < 0 || poll(&p, 1, timeout_ms) <= 0)
        return 0;
    int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return 0;
    int served = serve_client(c, body, ctx);
    close(c);
    return served;
}

void at_http_close(at_http_t *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}
