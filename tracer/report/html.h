/* SPDX-License-Identifier: MIT */
/* html.h - `--format html`: one self-contained page of a session.
 *
 * report.c renders the parts with the other formats' writers (the JSON
 * report, the text report, the CPU and memory flame graphs, the memory
 * plot, the Chrome trace) into memory; html.c puts them in one file that
 * needs nothing else (no CDN, no fonts): a summary built in the page from
 * the JSON (processes; per process the GIL wait ratio and threads, the
 * Python peak and its top lines, the hottest functions), the GIL timeline
 * drawn from the Chrome trace's GIL intervals, the SVGs as embedded
 * objects (their own zoom scripts run in their own documents), and the
 * text report.  A script error shows in the page itself.
 */
#ifndef AT_HTML_H
#define AT_HTML_H
#include <stddef.h>
#include <stdio.h>

typedef enum at_html_kind {
    AT_HTML_JSON,             /* the archtrace/1 report                    */
    AT_HTML_TRACE,            /* the Chrome trace                          */
    AT_HTML_SVG,              /* a picture                                 */
    AT_HTML_TEXT,             /* the text report                           */
} at_html_kind_t;

typedef struct at_html_part {
    at_html_kind_t kind;
    const char *title;        /* a section heading (SVG, text)             */
    const char *data;         /* NULL or empty: the part is left out       */
    size_t len;
} at_html_part_t;

/* Write the page.  0, or -errno when out fails. */
int at_html_write(FILE *out, const char *title, const at_html_part_t *parts, int n);

#endif
