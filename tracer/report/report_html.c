/* SPDX-License-Identifier: MIT */
/* report_html.c - `--format html`: the other renderers' output gathered for html.c's page.
 *
 * Each part (the JSON report, the Chrome trace, the flame graphs, the
 * memory plot, the text report) is rendered into memory by its own
 * writer; a part with no data is left out of the page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "report/html.h"
#include "report/report_int.h"

/* ---- HTML: the other formats' output on one page --------------------- */

typedef int (*part_writer_t)(FILE *out, const render_ctx_t *c);

static int part_text(FILE *out, const render_ctx_t *c)
{
    at_report_text(out, c);
    return 0;
}

static int part_json(FILE *out, const render_ctx_t *c)
{
    at_report_json(out, c);
    return 0;
}

static int part_trace(FILE *out, const render_ctx_t *c)
{
    at_report_chrome(out, c);
    return 0;
}

static int part_cpu_svg(FILE *out, const render_ctx_t *c)
{
    return at_stacks_write_svg ? at_stacks_write_svg(c->dir, out, c->o) : -ENOSYS;
}

static int part_memory_plot(FILE *out, const render_ctx_t *c)
{
    return at_report_procs(out, c, at_memory_write_svg);
}

/* One part rendered into a malloc'd buffer; a part with no data is left
 * out (its writer's complaint, if any, already went to stderr). */
static void render_part(const render_ctx_t *c, part_writer_t w, at_html_part_t *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? w(f, c) : -ENOMEM;
    if (f)
        fclose(f);
    p->data = rc == 0 ? buf : NULL;
    p->len = rc == 0 ? len : 0;
    if (rc != 0)
        free(buf);
}

int at_report_html(FILE *out, const render_ctx_t *c)
{
    static const struct { at_html_kind_t kind; const char *title; part_writer_t w; } plan[] = {
        { AT_HTML_JSON, "", part_json },
        { AT_HTML_TRACE, "", part_trace },
        { AT_HTML_SVG, "CPU flame graph (sampled stacks)", part_cpu_svg },
        { AT_HTML_SVG, "memory flame graph (bytes allocated, by stack)", at_report_alloc_svg },
        { AT_HTML_SVG, "memory over time", part_memory_plot },
        { AT_HTML_TEXT, "text report", part_text },
    };
    at_html_part_t parts[sizeof plan / sizeof *plan];
    char title[256];
    for (size_t i = 0; i < sizeof plan / sizeof *plan; i++) {
        parts[i] = (at_html_part_t){ .kind = plan[i].kind, .title = plan[i].title };
        render_part(c, plan[i].w, &parts[i]);
    }
    snprintf(title, sizeof title, "archtrace report: %s", c->have_meta && c->meta.argc ? c->meta.argv[0] : c->dir);
    int rc = at_html_write(out, title, parts, (int)(sizeof plan / sizeof *plan));
    for (size_t i = 0; i < sizeof plan / sizeof *plan; i++)
        free((void *)parts[i].data);
    return rc;
}

