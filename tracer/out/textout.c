/* SPDX-License-Identifier: MIT */
/* textout.c - units, escaping and headings for the text reports. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "out/textout.h"
#include "utf8.h"

void at_text_bytes(char *buf, size_t n, double bytes)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    double v = bytes < 0 ? -bytes : bytes;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (bytes < 0)
        v = -v;
    if (u == 0)
        snprintf(buf, n, "%.0f B", v);
    else
        snprintf(buf, n, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void at_text_duration(char *buf, size_t n, double s)
{
    if (s < 0.001)
        snprintf(buf, n, "%.0f us", s * 1e6);
    else if (s < 1.0)
        snprintf(buf, n, "%.1f ms", s * 1e3);
    else
        snprintf(buf, n, "%.3f s", s);
}

static int is_plain(unsigned char c)
{
    return c >= 0x20 && c != 0x7f;
}

/* Length of a complete UTF-8 sequence at s, 0 when it is not one (a NUL
 * ends a short sequence: it is not a continuation byte). */
static size_t utf8_len(const unsigned char *s)
{
    size_t len = at_utf8_len(s, 4);
    /* C1 controls (U+0080..U+009F) can act as escapes on some terminals */
    if (len == 2 && s[0] == 0xC2 && s[1] < 0xA0)
        return 0;
    return len;
}

void at_text_escape(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && o + 5 < n) {
        size_t len = utf8_len(p);
        if (len == 1 && is_plain(*p)) {
            buf[o++] = (char)*p++;
        } else if (len > 1 && o + len < n) {
            memcpy(buf + o, p, len);
            o += len;
            p += len;
        } else {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p++);
        }
    }
    buf[o] = '\0';
}

size_t at_text_put_escaped(FILE *out, const char *s, size_t max)
{
    char buf[1024];
    size_t cap = max + 1 < sizeof(buf) ? max + 1 : sizeof(buf);
    at_text_escape(buf, cap, s);
    fputs(buf, out);
    return strlen(buf);
}

int at_text_color(FILE *out)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc)
        return 0;
    return isatty(fileno(out));
}

void at_text_heading(FILE *out, const char *title)
{
    if (at_text_color(out))
        fprintf(out, "\n\033[1m%s\033[0m\n", title);
    else
        fprintf(out, "\n%s\n", title);
}

const char *at_errstr(int err)
{
    static __thread char buf[128];
    char tmp[128];
    const char *s = strerror_r(err < 0 ? -err : err, tmp, sizeof tmp);
    snprintf(buf, sizeof buf, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}
