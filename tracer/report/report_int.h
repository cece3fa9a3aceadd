/* SPDX-License-Identifier: MIT */
/* report_int.h - what report.c (the session's reports) and report_html.c
 * (the one-page HTML) share: the render context and the writers the page
 * gathers. */
#ifndef AT_REPORT_INT_H
#define AT_REPORT_INT_H
#include <stdio.h>
#include <sys/types.h>

#include "cli/options.h"
#include "report/report_features.h"
#include "session/meta.h"
#include "session/procs.h"
#include "session/salvage.h"

typedef struct render_ctx {
    const char *dir;
    const at_options_t *o;
    at_proc_list_t procs;
    at_meta_t meta;
    int have_meta;
    int exit_status;
    at_salvage_t salvage;     /* what of each file could be read           */
    size_t recovered;         /* processes listed without a readable .seg  */
} render_ctx_t;

typedef int (*procs_writer_t)(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o);

void at_report_text(FILE *out, const render_ctx_t *c);
void at_report_json(FILE *out, const render_ctx_t *c);
void at_report_chrome(FILE *out, const render_ctx_t *c);
/* A renderer of every process of the session at once (weak: -ENOSYS
 * when it is not linked in). */
int at_report_procs(FILE *out, const render_ctx_t *c, procs_writer_t writer);
int at_report_alloc_svg(FILE *out, const render_ctx_t *c);
/* The whole session as one HTML page (report_html.c). */
int at_report_html(FILE *out, const render_ctx_t *c);

#endif
