/* SPDX-License-Identifier: MIT */
/* textout.h - helpers for human output: units, escaping, headings, colour. */
#ifndef AT_TEXTOUT_H
#define AT_TEXTOUT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "512 B", "3.5 KiB", "12.0 MiB", "1.20 GiB" */
void at_text_bytes(char *buf, size_t n, double bytes);

/* "850 us", "12.3 ms", "1.234 s" */
void at_text_duration(char *buf, size_t n, double seconds);

/* Print at most max bytes of s with control characters and invalid
 * bytes shown as \xNN: text read from a target must never drive the
 * terminal.  Returns the bytes printed. */
size_t at_text_put_escaped(FILE *out, const char *s, size_t max);

/* Copy s into buf escaped the same way (always NUL-terminated). */
void at_text_escape(char *buf, size_t n, const char *s);

/* Colour only on a terminal and never with NO_COLOR set. */
int at_text_color(FILE *out);

/* A section heading, bold on a colour terminal. */
void at_text_heading(FILE *out, const char *title);

/* strerror(err) in lowercase for archtrace's messages ("operation not
 * permitted"); err may be negative.  Thread-local buffer. */
const char *at_errstr(int err);

/* part as a percentage of whole (0 when whole is 0): the share columns. */
static inline double at_pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

#endif
