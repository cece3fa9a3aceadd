/* SPDX-License-Identifier: MIT */
/* flamegraph.c - the SVG flame graph (see flamegraph.h) and at_stacks_write_svg. */
#include "report/flamegraph.h"
#include "utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "out/progress.h"
#include "report/report_features.h"
#include "session/session.h"
#include "session/stacks.h"
#include "out/textout.h"

#define PAD          10      /* px around the graph                        */
#define TOP          48      /* px for the title lines                     */
#define BOTTOM       24      /* px for the details line                    */
#define CHAR_PX      7.4     /* average glyph width of 12 px monospace     */
#define MIN_PX       0.1     /* narrower nodes are not drawn               */
#define MAX_DEPTH    1100    /* tree depth: process + thread + frames      */
#define LABEL_MAX    2048

typedef struct node {
    char *label;             /* frame label (UTF-8, from the target)       */
    int kind;                /* 0 py, 1 native, 2 marker/group             */
    uint64_t count;          /* samples (or bytes) in this node and below  */
    uint64_t blocks;         /* allocations those bytes came in (bytes)    */
    struct node *child;      /* first child                                */
    struct node *next;       /* next sibling                               */
} node_t;

struct at_flame {
    node_t root;             /* "all"                                      */
    char *title;             /* first title line                           */
    int depth;               /* deepest stack seen                         */
    enum at_flame_unit unit; /* what counts are                            */
};

at_flame_t *at_flame_new(const char *title)
{
    at_flame_t *f = calloc(1, sizeof *f);
    if (!f || !(f->title = strdup(title ? title : "Flame graph")) || !(f->root.label = strdup("all"))) {
        at_flame_free(f);
        return NULL;
    }
    f->root.kind = 2;
    return f;
}

static void free_children(node_t *n)
{
    node_t *c = n->child;
    while (c) {
        node_t *next = c->next;
        free_children(c);
        free(c->label);
        free(c);
        c = next;
    }
}

void at_flame_free(at_flame_t *f)
{
    if (!f)
        return;
    free_children(&f->root);
    free(f->root.label);
    free(f->title);
    free(f);
}

static node_t *child_of(node_t *parent, const char *label, int kind)
{
    node_t **link = &parent->child;
    for (; *link; link = &(*link)->next)
        if ((*link)->kind == kind && !strcmp((*link)->label, label))
            return *link;
    node_t *c = calloc(1, sizeof *c);
    if (!c || !(c->label = strdup(label))) {
        free(c);
        return NULL;
    }
    c->kind = kind;
    *link = c;
    return c;
}

void at_flame_set_unit(at_flame_t *f, enum at_flame_unit unit)
{
    f->unit = unit;
}

uint64_t at_flame_total(const at_flame_t *f)
{
    return f->root.count;
}

int at_flame_add_blocks(at_flame_t *f, const char *const *labels, const int *kinds, int n,
                        uint64_t count, uint64_t blocks)
{
    node_t *at = &f->root;
    if (n > MAX_DEPTH)
        n = MAX_DEPTH;
    /* a path is created whole before any count moves, so a failed
     * allocation never leaves a parent counting more than its children */
    for (int i = 0; i < n; i++)
        if (!(at = child_of(at, labels[i], kinds[i])))
            return -ENOMEM;
    at = &f->root;
    at->count += count;
    at->blocks += blocks;
    for (int i = 0; i < n; i++) {
        at = child_of(at, labels[i], kinds[i]);
        at->count += count;
        at->blocks += blocks;
    }
    if (n > f->depth)
        f->depth = n;
    return 0;
}

int at_flame_add(at_flame_t *f, const char *const *labels, const int *kinds, int n, uint64_t count)
{
    return at_flame_add_blocks(f, labels, kinds, n, count, 0);
}

/* ---- SVG ------------------------------------------------------------------- */

void at_svg_text(FILE *out, const char *s, size_t max)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; chars++) {
        if (chars == max) {
            fputs("..", out);
            return;
        }
        int len = (int)at_utf8_len(p, 4);   /* a NUL ends a short sequence: not 10xxxxxx */
        if (*p == '&')
            fputs("&amp;", out);
        else if (*p == '<')
            fputs("&lt;", out);
        else if (*p == '>')
            fputs("&gt;", out);
        else if (*p == '"')
            fputs("&quot;", out);
        else if (len == 0 || *p < 0x20 || *p == 0x7f)
            fputc('?', out);
        else
            fwrite(p, 1, (size_t)len, out);
        p += len ? len : 1;
    }
}

static uint32_t label_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void node_colour(const node_t *n, char *buf, size_t len)
{
    uint32_t h = label_hash(n->label);
    if (n->kind == 0) /* Python: warm */
        snprintf(buf, len, "rgb(%u,%u,%u)", 205 + h % 50, 80 + (h >> 8) % 120, 40 + (h >> 16) % 40);
    else if (n->kind == 1) /* native: cool */
        snprintf(buf, len, "rgb(%u,%u,%u)", 80 + h % 40, 150 + (h >> 8) % 60, 200 + (h >> 16) % 50);
    else
        snprintf(buf, len, "rgb(%u,%u,%u)", 190 + h % 20, 190 + h % 20, 200 + h % 20);
}

/* "1,234 samples" or "12.3 MiB (12,902,112 B) in 1,234 blocks". */
static void put_count(FILE *out, enum at_flame_unit unit, uint64_t count, uint64_t blocks)
{
    char num[32], human[32];
    if (unit == AT_FLAME_SAMPLES) {
        fprintf(out, "%s sample%s", at_progress_count(num, sizeof num, count), count == 1 ? "" : "s");
        return;
    }
    at_text_bytes(human, sizeof human, (double)count);
    fprintf(out, "%s (%s B)", human, at_progress_count(num, sizeof num, count));
    if (blocks)
        fprintf(out, " in %s block%s", at_progress_count(num, sizeof num, blocks), blocks == 1 ? "" : "s");
}

typedef struct draw {
    FILE *out;
    enum at_flame_unit unit; /* samples or bytes                           */
    double scale;            /* px per sample                              */
    uint64_t total;          /* samples at the root                        */
    int height;              /* svg height                                 */
} draw_t;

static void draw_node(const draw_t *d, const node_t *n, uint64_t x, int depth)
{
    double w = (double)n->count * d->scale;
    if (w < MIN_PX || depth > MAX_DEPTH)
        return;
    char colour[32];
    double px = PAD + (double)x * d->scale;
    int y = d->height - BOTTOM - (depth + 1) * AT_FLAME_ROW;
    node_colour(n, colour, sizeof colour);
    fprintf(d->out, "<g class=\"f\" data-x=\"%" PRIu64 "\" data-w=\"%" PRIu64 "\" data-d=\"%d\"><title>",
            x, n->count, depth);
    at_svg_text(d->out, n->label, LABEL_MAX);
    fputc('\n', d->out);
    put_count(d->out, d->unit, n->count, n->blocks);
    fprintf(d->out, ", %.2f%%</title>", d->total ? 100.0 * (double)n->count / (double)d->total : 0.0);
    fprintf(d->out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" rx=\"2\" fill=\"%s\"/>",
            px, y, w > 0.5 ? w - 0.5 : w, AT_FLAME_ROW - 1, colour);
    fprintf(d->out, "<text x=\"%.2f\" y=\"%d\">", px + 3, y + AT_FLAME_ROW - 5);
    if (w > 3 * CHAR_PX)
        at_svg_text(d->out, n->label, (size_t)((w - 6) / CHAR_PX));
    fputs("</text></g>\n", d->out);
    for (const node_t *c = n->child; c; c = c->next) {
        draw_node(d, c, x, depth + 1);
        x += c->count;
    }
}

/* Zoom: a click on a node widens it to the full width, keeps its
 * ancestors full width and hides what lies outside; clicking the
 * background (or "reset zoom") restores. */
static const char zoom_script[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "(function(){\n"
    "var svg=document.documentElement, W=" "%d" ", P=" "%d" ", C=" "%.1f" ";\n"
    "var gs=[].slice.call(document.querySelectorAll('g.f'));\n"
    "var total=gs.length?+gs[0].getAttribute('data-w'):1;\n"
    "function label(g){return g.querySelector('title').textContent.split('\\n')[0];}\n"
    "function fit(g,x,w){var r=g.querySelector('rect'),t=g.querySelector('text');\n"
    " r.setAttribute('x',x);r.setAttribute('width',Math.max(w-0.5,0));t.setAttribute('x',x+3);\n"
    " var n=Math.floor((w-6)/C),s=label(g);t.textContent=w<3*C?'':(s.length>n?s.slice(0,n)+'..':s);}\n"
    "function zoom(z){var zx=z?+z.getAttribute('data-x'):0,zw=z?+z.getAttribute('data-w'):total,\n"
    " zd=z?+z.getAttribute('data-d'):0,k=(W-2*P)/zw;\n"
    " gs.forEach(function(g){var x=+g.getAttribute('data-x'),w=+g.getAttribute('data-w'),d=+g.getAttribute('data-d');\n"
    "  var inside=x>=zx&&x+w<=zx+zw, above=d<zd&&x<=zx&&x+w>=zx+zw;\n"
    "  if(inside&&w*k>=0.1){g.style.display='';fit(g,P+(x-zx)*k,w*k);}\n"
    "  else if(above){g.style.display='';fit(g,P,W-2*P);}\n"
    "  else g.style.display='none';});\n"
    " document.getElementById('reset').style.opacity=z?1:0;}\n"
    "gs.forEach(function(g){g.addEventListener('click',function(e){e.stopPropagation();zoom(g);});});\n"
    "document.getElementById('bg').addEventListener('click',function(){zoom(null);});\n"
    "document.getElementById('reset').addEventListener('click',function(){zoom(null);});\n"
    "})();\n"
    "]]></script>\n";

static void write_head(const at_flame_t *f, FILE *out, int height)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                 "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "xmlns=\"http://www.w3.org/2000/svg\">\n", AT_FLAME_WIDTH, height, AT_FLAME_WIDTH, height);
    fputs("<style>text{font-family:monospace;font-size:12px;fill:#000;pointer-events:none}"
          "g.f:hover rect{stroke:#000;stroke-width:0.7;cursor:pointer}"
          ".title{font-size:17px;font-family:sans-serif}.sub{font-size:12px;fill:#555;font-family:sans-serif}"
          "#reset{cursor:pointer;opacity:0;fill:#236}</style>\n", out);
    fprintf(out, "<rect id=\"bg\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f2\"/>\n",
            AT_FLAME_WIDTH, height);
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"22\" text-anchor=\"middle\">", AT_FLAME_WIDTH / 2);
    at_svg_text(out, f->title, 200);
    fprintf(out, "</text>\n<text class=\"sub\" x=\"%d\" y=\"40\" text-anchor=\"middle\">",
            AT_FLAME_WIDTH / 2);
    put_count(out, f->unit, f->root.count, f->root.blocks);
    fputs(f->unit == AT_FLAME_BYTES ? " allocated" : "", out);
    fputs("; hover for details, click to zoom</text>\n", out);
    fprintf(out, "<text id=\"reset\" x=\"%d\" y=\"22\">reset zoom</text>\n", PAD);
}

int at_flame_write(const at_flame_t *f, FILE *out)
{
    int height = TOP + BOTTOM + (f->depth + 1) * AT_FLAME_ROW;
    draw_t d = { out, f->unit, f->root.count ? (double)(AT_FLAME_WIDTH - 2 * PAD) / (double)f->root.count : 0,
                 f->root.count, height };
    write_head(f, out, height);
    if (f->root.count)
        draw_node(&d, &f->root, 0, 0);
    fprintf(out, zoom_script, AT_FLAME_WIDTH, PAD, CHAR_PX);
    fputs("</svg>\n", out);
    return ferror(out) ? -EIO : 0;
}

/* ---- a session's stacks as a flame graph ---------------------------------- */

static int kind_of(int sym_kind)
{
    return sym_kind == AT_SYM_PY ? 0 : sym_kind == AT_SYM_NATIVE ? 1 : 2;
}

static int add_process(at_flame_t *f, at_stacks_t *s, const at_options_t *o)
{
    char (*labels)[LABEL_MAX] = malloc(sizeof *labels * MAX_DEPTH);
    const char *ptrs[MAX_DEPTH];
    int kinds[MAX_DEPTH];
    const at_stacks_meta_t *m = at_stacks_meta(s);
    at_stack_view_t v;
    size_t c = 0;
    int rc = labels ? 0 : -ENOMEM;
    while (rc == 0 && at_stacks_next(s, &c, &v)) {
        if (!at_stacks_included(&v, o))
            continue;
        int n = 0;
        snprintf(labels[n], LABEL_MAX, "%s (%d)", m->comm, (int)at_key_pid(m->pid));
        kinds[n++] = 2;
        at_stacks_thread_label(s, v.tid, labels[n], LABEL_MAX);
        kinds[n++] = 2;
        for (int k = 0; k < v.n && n < MAX_DEPTH; k++) {
            at_stacks_frame_label(s, &v.frames[k], labels[n], LABEL_MAX);
            kinds[n++] = kind_of(at_symtab_kind(at_stacks_symtab(s), v.frames[k].sym));
        }
        for (int k = 0; k < n; k++)
            ptrs[k] = labels[k];
        rc = at_flame_add(f, ptrs, kinds, n, v.count);
    }
    free(labels);
    return rc;
}

static int load_into(at_flame_t *f, const char *dir, pid_t pid, const at_options_t *o)
{
    char err[512];
    at_stacks_t *s;
    int rc = at_stacks_load(dir, pid, &s, err, sizeof err);
    if (rc == -ENOENT)
        return rc;
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s\n", err);
        return rc;
    }
    rc = add_process(f, s, o);
    at_stacks_free(s);
    return rc;
}

int at_stacks_write_svg(const char *dir, FILE *out, const at_options_t *o)
{
    pid_t pids[4096];
    int n = at_stacks_list(dir, pids, 4096), found = 0, rc = 0;
    if (n < 0) {
        fprintf(stderr, "archtrace: cannot read %s: %s\n", dir, at_errstr(-n));
        return n;
    }
    at_flame_t *f = at_flame_new(o && o->idle ? "archtrace flame graph (wall: idle included)"
                                              : "archtrace flame graph (CPU: idle left out)");
    if (!f)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        int r = load_into(f, dir, pids[i], o);
        found += r == 0;
        if (r < 0 && r != -ENOENT && !rc)
            rc = r;
    }
    if (found)
        rc = at_flame_write(f, out) < 0 && !rc ? -EIO : rc;
    at_flame_free(f);
    return rc ? rc : found ? 0 : -ENOENT;
}

/* ---- a session's allocations as a flame graph ------------------------------ */

int at_alloc_write_svg(const char *dir, const pid_t *pids, size_t n, FILE *out, const at_options_t *o)
{
    int found = 0, rc = 0;
    (void)o;
    at_flame_t *f = at_flame_new("archtrace memory flame graph (bytes allocated, by stack)");
    if (!f)
        return -ENOMEM;
    at_flame_set_unit(f, AT_FLAME_BYTES);
    for (size_t i = 0; i < n; i++) {
        int r = at_alloc_flame_add(dir, pids[i], f);
        found += r == 0;
        if (r < 0 && r != -ENOENT && !rc)
            rc = r;
    }
    if (found)
        rc = at_flame_write(f, out) < 0 && !rc ? -EIO : rc;
    at_flame_free(f);
    return rc ? rc : found ? 0 : -ENOENT;
}
