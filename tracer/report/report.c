/* SPDX-License-Identifier: MIT */
/* report.c - render a session: the process table and, per process, each
 * feature's part (alloc, GIL, imports, samples), as text, JSON, collapsed
 * stacks, Chrome trace JSON or SVG.
 *
 * The report core knows only the processes (<pid>.seg, session.meta);
 * features render their own data through report_features.h, weakly
 * linked, so any subset of features works.
 *
 * A damaged session is reported with what can be read (salvage.h): a
 * process whose segment is damaged is still listed from its intact
 * feature files, and every damaged file is named in the text header and
 * in JSON ("damaged").  Only a directory that is no session at all, or
 * whose process files are all unreadable, fails (-ENODATA).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report/chrome.h"
#include "json.h"
#include "session/meta.h"
#include "session/procs.h"
#include "report/report.h"
#include "report/report_int.h"
#include "report/report_features.h"
#include "session/salvage.h"
#include "session/session.h"
#include "out/textout.h"


/* ---- damaged sessions ------------------------------------------------------ */

static void rebase_argv(at_proc_t *p)
{
    char *s = p->args;
    for (int i = 0; i < p->argc; i++) {
        p->argv[i] = s;
        s += strlen(s) + 1;
    }
}

/* A process whose segment is missing or damaged but whose feature files
 * can be read: listed with what is known (its pid) so they are reported. */
static int add_recovered(render_ctx_t *c, const at_salvage_pid_t *sp)
{
    at_proc_list_t *l = &c->procs;
    at_proc_t *np = realloc(l->procs, (l->count + 1) * sizeof *np);
    if (!np)
        return -ENOMEM;
    l->procs = np;
    for (size_t i = 0; i < l->count; i++)
        rebase_argv(&l->procs[i]);     /* argv points into each struct */
    at_proc_t *p = &l->procs[l->count++];
    memset(p, 0, sizeof *p);
    p->pid = at_key_pid(sp->pid);
    p->key = sp->pid;
    p->state = AT_SEG_RUNNING;
    p->supported = 1;
    p->exit_code = -1;
    snprintf(p->version, sizeof p->version, "unknown");
    char kinds[64];
    at_salvage_kinds(sp->readable, kinds, sizeof kinds);
    snprintf(p->notes, sizeof p->notes, "listed from its %s alone: %s", kinds,
             sp->present & AT_SALVAGE_SEG ? "its segment is damaged" : "it has no segment");
    c->recovered++;
    return 0;
}

static int is_listed(const at_proc_list_t *l, pid_t key)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->procs[i].key == key)
            return 1;
    return 0;
}

static int add_all_recovered(render_ctx_t *c)
{
    for (size_t i = 0; i < c->salvage.count; i++) {
        const at_salvage_pid_t *sp = &c->salvage.pids[i];
        if (sp->execed || is_listed(&c->procs, sp->pid) || !(sp->readable & ~AT_SALVAGE_SEG))
            continue;
        int rc = add_recovered(c, sp);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void print_damage(FILE *out, const render_ctx_t *c)
{
    for (size_t i = 0; i < c->salvage.count; i++) {
        const at_salvage_pid_t *sp = &c->salvage.pids[i];
        if (!sp->nnotes)
            continue;
        char kinds[64], stem[32];
        at_salvage_kinds(sp->readable & ~AT_SALVAGE_SEG, kinds, sizeof kinds);
        fprintf(out, "warning: process %s damaged: ", at_key_name(sp->pid, stem, sizeof stem));
        for (int k = 0; k < sp->nnotes; k++) {
            fputs(k ? "; " : "", out);
            at_text_put_escaped(out, sp->notes[k], AT_SALVAGE_NOTE_LEN);
        }
        if (!sp->readable)
            fprintf(out, " (nothing of it could be read)\n");
        else if (!(sp->readable & AT_SALVAGE_SEG))
            fprintf(out, " (reported from its %s)\n", kinds);
        else
            fprintf(out, " (the rest is reported)\n");
    }
}

static void json_damage(at_json_t *j, const at_salvage_pid_t *sp, int with_pid)
{
    char line[AT_SALVAGE_NOTE_LEN + 32], stem[32];
    for (int k = 0; sp && k < sp->nnotes; k++) {
        if (with_pid)
            snprintf(line, sizeof line, "%s.%s", at_key_name(sp->pid, stem, sizeof stem), sp->notes[k]);
        at_json_str(j, with_pid ? line : sp->notes[k]);
    }
}

/* ---- text ---------------------------------------------------------------- */

static void print_argv(FILE *out, int argc, char *const argv[], size_t max)
{
    size_t used = 0;
    for (int i = 0; i < argc && used < max; i++) {
        if (i)
            fputc(' ', out);
        used += at_text_put_escaped(out, argv[i], max - used) + 1;
    }
}

static void print_process_row(FILE *out, const at_proc_t *p)
{
    char wall[32], version[96];
    double w = at_proc_wall_s(p);
    if (w < 0)
        snprintf(wall, sizeof(wall), "incomplete");
    else
        at_text_duration(wall, sizeof(wall), w);
    snprintf(version, sizeof(version), "%s%s", p->version, p->supported ? "" : " (unsupported)");
    fprintf(out, "  %-7d %-7d %-22s %-7s %10s %8llu  ", (int)p->pid, (int)p->ppid, version,
            at_build_name(p->build), wall, (unsigned long long)p->audit_events);
    print_argv(out, p->argc, p->argv, 60);
    fprintf(out, "%s%s\n", p->forked ? "  (forked)" : p->attached ? "  (attached: -p)" : "",
            p->state == AT_SEG_REPLACED ? "  (exec'd the next)" : "");
}

static void print_notes(FILE *out, const at_proc_t *p)
{
    if (!p->notes[0])
        return;
    char *copy = strdup(p->notes);
    for (char *save, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        fprintf(out, "  note for %d: ", (int)p->pid);
        at_text_put_escaped(out, line, 200);
        fputc('\n', out);
    }
    free(copy);
}

static void print_header(FILE *out, const render_ctx_t *c)
{
    size_t n = c->procs.count;
    char wall[32] = "?";
    if (c->have_meta && c->meta.wall_s >= 0)
        at_text_duration(wall, sizeof(wall), c->meta.wall_s);
    at_text_heading(out, "archtrace report");
    fprintf(out, "command: ");
    if (c->have_meta)
        print_argv(out, c->meta.argc, c->meta.argv, 200);
    char status[48];
    if (c->have_meta && !strcmp(c->meta.kind, "record"))
        snprintf(status, sizeof(status), "recorded from outside (-p)");
    else if (c->exit_status < 0)
        snprintf(status, sizeof(status), "exit status: unknown");
    else
        snprintf(status, sizeof(status), "exit status: %d", c->exit_status);
    fprintf(out, "\n%s: %s   %s   Python processes: %zu\n",
            c->have_meta && !strcmp(c->meta.kind, "record") ? "recorded for" : "wall time", wall, status, n);
    if (c->have_meta && !c->meta.complete)
        fprintf(out, "warning: archtrace did not finish this session: data is incomplete\n");
    print_damage(out, c);
}

static void print_unsupported(FILE *out, const at_proc_t *p)
{
    if (!p->supported)
        fprintf(out, "process %d runs Python %s: unsupported, archtrace supports 3.11, 3.12 and 3.13\n",
                (int)p->pid, p->version);
}

void at_report_text(FILE *out, const render_ctx_t *c)
{
    print_header(out, c);
    if (!c->procs.count) {
        fprintf(out, "no Python process seen\n");
        return;
    }
    fprintf(out, "\n  %-7s %-7s %-22s %-7s %10s %8s  %s\n", "PID", "PPID", "PYTHON", "BUILD",
            "WALL", "AUDIT", "ARGV");
    for (size_t i = 0; i < c->procs.count; i++)
        print_process_row(out, &c->procs.procs[i]);
    for (size_t i = 0; i < c->procs.count; i++) {
        const at_proc_t *p = &c->procs.procs[i];
        print_notes(out, p);
        print_unsupported(out, p);
        if (!p->supported)
            continue;
        if (at_gil_report_text)
            at_gil_report_text(c->dir, p->key, out, c->o);
        if (at_alloc_report_text)
            at_alloc_report_text(c->dir, p->key, out, c->o);
        if (at_memory_report_text)
            at_memory_report_text(c->dir, p->key, out, c->o);
        if (at_imports_report_text)
            at_imports_report_text(c->dir, p->key, out, c->o);
        if (at_stacks_report_text)
            at_stacks_report_text(c->dir, p->key, out, c->o);
        if (at_bpf_report_text)
            at_bpf_report_text(c->dir, p->key, out, c->o);
    }
}

/* ---- JSON ---------------------------------------------------------------- */

typedef int (*json_part_fn)(const char *, pid_t, at_json_t *, const at_options_t *);

/* Write "key": value through a feature, or nothing when it has no data.
 * The key is written first, so a feature without data gets null. */
static void json_part(at_json_t *j, const char *key, json_part_fn fn, const render_ctx_t *c, pid_t pid)
{
    if (!fn)
        return;
    at_json_key(j, key);
    fn(c->dir, pid, j, c->o);
    if (j->after_key)          /* the feature wrote nothing */
        at_json_null(j);
}

static void json_process(at_json_t *j, const render_ctx_t *c, const at_proc_t *p)
{
    at_json_obj_begin(j);
    at_json_kv_int(j, "pid", p->pid);
    at_json_kv_int(j, "ppid", p->ppid);
    at_json_key(j, "argv");
    at_json_arr_begin(j);
    for (int i = 0; i < p->argc; i++)
        at_json_str(j, p->argv[i]);
    at_json_arr_end(j);
    at_json_kv_str(j, "exe", p->exe);
    at_json_key(j, "python");
    at_json_obj_begin(j);
    at_json_kv_str(j, "version", p->version);
    at_json_kv_str(j, "build", at_build_name(p->build));
    at_json_kv_bool(j, "supported", p->supported);
    at_json_obj_end(j);
    at_json_kv_bool(j, "forked", p->forked);
    at_json_kv_bool(j, "execed", p->state == AT_SEG_REPLACED);   /* exec'd the next program */
    at_json_kv_bool(j, "attached", p->attached);
    at_json_kv_bool(j, "complete", p->complete);
    at_json_kv_double(j, "wall_s", at_proc_wall_s(p));
    at_json_kv_uint(j, "audit_events", p->audit_events);
    if (p->exit_code >= 0)
        at_json_kv_int(j, "exit_code", p->exit_code);
    at_json_kv_str(j, "notes", p->notes);
    const at_salvage_pid_t *sp = at_salvage_find(&c->salvage, p->key);
    at_json_kv_bool(j, "recovered", sp && !(sp->readable & AT_SALVAGE_SEG));
    at_json_key(j, "damaged");
    at_json_arr_begin(j);
    json_damage(j, sp, 0);
    at_json_arr_end(j);
    if (p->supported) {
        json_part(j, "alloc", at_alloc_report_json, c, p->key);
        json_part(j, "memory", at_memory_report_json, c, p->key);
        json_part(j, "gil", at_gil_report_json, c, p->key);
        json_part(j, "imports", at_imports_report_json, c, p->key);
        json_part(j, "samples", at_stacks_report_json, c, p->key);
        json_part(j, "bpf", at_bpf_report_json, c, p->key);
    }
    at_json_obj_end(j);
}

void at_report_json(FILE *out, const render_ctx_t *c)
{
    at_json_t j;
    at_json_init(&j, out, 1);
    at_json_obj_begin(&j);
    at_json_kv_str(&j, "schema", "archtrace/1");
    at_json_key(&j, "command");
    at_json_arr_begin(&j);
    for (int i = 0; c->have_meta && i < c->meta.argc; i++)
        at_json_str(&j, c->meta.argv[i]);
    at_json_arr_end(&j);
    at_json_kv_int(&j, "exit_status", c->exit_status);
    at_json_kv_double(&j, "wall_s", c->have_meta ? c->meta.wall_s : -1);
    at_json_kv_bool(&j, "complete", c->have_meta && c->meta.complete);
    at_json_kv_uint(&j, "corrupt_segments", c->procs.corrupt);
    at_json_kv_uint(&j, "damaged_files", c->salvage.damaged_files);
    at_json_key(&j, "damaged");
    at_json_arr_begin(&j);
    if (c->salvage.meta == -ENOENT)
        at_json_str(&j, "session.meta missing");
    else if (c->salvage.meta < 0)
        at_json_str(&j, "session.meta corrupt");
    for (size_t i = 0; i < c->salvage.count; i++)
        json_damage(&j, &c->salvage.pids[i], 1);
    at_json_arr_end(&j);
    at_json_key(&j, "processes");
    at_json_arr_begin(&j);
    for (size_t i = 0; i < c->procs.count; i++)
        json_process(&j, c, &c->procs.procs[i]);
    at_json_arr_end(&j);
    at_json_obj_end(&j);
}

/* ---- Chrome trace -------------------------------------------------------- */

/* What a person would call the process: the script, `-m module` or
 * `-c`, skipping the interpreter's own options (`python -B -c ...`). */
static void process_title(const at_proc_t *p, char *buf, size_t n)
{
    for (int i = 1; i < p->argc; i++) {
        const char *a = p->argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "-c")) {
            snprintf(buf, n, "%s %s", a, a[1] == 'm' && i + 1 < p->argc ? p->argv[i + 1] : "");
            return;
        }
        if (!strcmp(a, "-W") || !strcmp(a, "-X")) {
            i++;                /* the option's value */
            continue;
        }
        if (a[0] != '-') {
            snprintf(buf, n, "%s", a);
            return;
        }
    }
    snprintf(buf, n, "%s", p->argc ? p->argv[0] : "python");
}

static void chrome_process_name(at_json_t *j, const at_proc_t *p)
{
    char name[160], title[128];
    process_title(p, title, sizeof(title));
    snprintf(name, sizeof(name), "%s (pid %d)", title, (int)p->pid);
    at_chrome_track_name(j, p->key, -1, name);   /* a track per program */
}

void at_report_chrome(FILE *out, const render_ctx_t *c)
{
    at_json_t j;
    at_json_init(&j, out, 0);
    at_json_obj_begin(&j);
    at_json_kv_str(&j, "displayTimeUnit", "ms");
    at_json_key(&j, "traceEvents");
    at_json_arr_begin(&j);
    for (size_t i = 0; i < c->procs.count; i++) {
        const at_proc_t *p = &c->procs.procs[i];
        chrome_process_name(&j, p);
        if (!p->supported)
            continue;
        if (at_gil_chrome)
            at_gil_chrome(c->dir, p->key, &j, c->o);
        if (at_imports_chrome)
            at_imports_chrome(c->dir, p->key, &j, c->o);
        if (at_alloc_chrome)
            at_alloc_chrome(c->dir, p->key, &j, c->o);
        if (at_memory_chrome)
            at_memory_chrome(c->dir, p->key, &j, c->o);
        if (at_bpf_chrome)
            at_bpf_chrome(c->dir, p->key, &j, c->o);
    }
    at_json_arr_end(&j);
    at_json_obj_end(&j);
    fputc('\n', out);
}

/* ---- dispatch ------------------------------------------------------------ */

static const char *format_ext(at_format_t f)
{
    static const char *ext[] = { "txt", "json", "folded", "trace.json", "svg", "pb.gz", "speedscope.json", "html" };
    return ext[f];
}

/* --alloc: memory instead of CPU samples, for the stack formats. */
static int write_alloc_collapsed(FILE *out, const render_ctx_t *c)
{
    int found = 0, rc = 0;
    if (!at_alloc_write_collapsed)
        return -ENOSYS;
    for (size_t i = 0; i < c->procs.count; i++) {
        int r = at_alloc_write_collapsed(c->dir, c->procs.procs[i].key, out);
        found += r == 0;
        if (r < 0 && r != -ENOENT && !rc)
            rc = r;
    }
    return rc ? rc : found ? 0 : -ENOENT;
}

/* The keys of the session's processes, in the process table's order
 * (malloc'd), or NULL. */
static pid_t *proc_keys(const render_ctx_t *c)
{
    pid_t *keys = malloc((c->procs.count + 1) * sizeof *keys);
    for (size_t i = 0; keys && i < c->procs.count; i++)
        keys[i] = c->procs.procs[i].key;
    return keys;
}

int at_report_procs(FILE *out, const render_ctx_t *c, procs_writer_t writer)
{
    if (!writer)
        return -ENOSYS;
    pid_t *keys = proc_keys(c);
    int rc = keys ? writer(c->dir, keys, c->procs.count, out, c->o) : -ENOMEM;
    free(keys);
    return rc;
}

int at_report_alloc_svg(FILE *out, const render_ctx_t *c)
{
    return at_report_procs(out, c, at_alloc_write_svg);
}

/* pprof or speedscope: the samples, or with --alloc the allocations. */
static int write_profile(FILE *out, const render_ctx_t *c)
{
    return at_report_procs(out, c, c->o->format == AT_FMT_PPROF ? at_pprof_write : at_speedscope_write);
}

static int write_format(FILE *out, const render_ctx_t *c)
{
    switch (c->o->format) {
    case AT_FMT_TEXT:
        at_report_text(out, c);
        return 0;
    case AT_FMT_JSON:
        at_report_json(out, c);
        return 0;
    case AT_FMT_CHROME:
        at_report_chrome(out, c);
        return 0;
    case AT_FMT_COLLAPSED:
        if (c->o->alloc_mode)
            return write_alloc_collapsed(out, c);
        return at_stacks_write_collapsed ? at_stacks_write_collapsed(c->dir, out, c->o) : -ENOSYS;
    case AT_FMT_SVG:
        if (c->o->memory_plot)
            return at_report_procs(out, c, at_memory_write_svg);
        if (c->o->alloc_mode)
            return at_report_alloc_svg(out, c);
        return at_stacks_write_svg ? at_stacks_write_svg(c->dir, out, c->o) : -ENOSYS;
    case AT_FMT_PPROF:
    case AT_FMT_SPEEDSCOPE:
        return write_profile(out, c);
    case AT_FMT_HTML:
        return at_report_html(out, c);
    }
    return -EINVAL;
}

/* --format output: --out FILE, else stdout for report/record and
 * ./archtrace.<ext> for run (the command owns stdout). */
static int render_format(const render_ctx_t *c)
{
    const at_options_t *o = c->o;
    char path[64];
    const char *target = o->out_file;
    if (!target && o->command == AT_CMD_RUN) {
        snprintf(path, sizeof(path), "archtrace.%s", format_ext(o->format));
        target = path;
    }
    FILE *out = target && strcmp(target, "-") ? fopen(target, "w") : stdout;
    if (!out) {
        fprintf(stderr, "archtrace: cannot write %s: %s\n", target, strerror(errno));
        return -errno;
    }
    int to_file = out != stdout;
    int rc = write_format(out, c);
    if (rc == -ENOSYS)
        fprintf(stderr, "archtrace: this build has no sampler: --format %s unavailable\n",
                format_ext(o->format));
    else if (rc == -ENOENT && o->alloc_mode)
        fprintf(stderr, "archtrace: no allocation data in this session (was --no-alloc given, or "
                        "was the process recorded from outside?): nothing to draw\n");
    else if (rc == -ENOENT)
        fprintf(stderr, "archtrace: no sampled stacks in this session (was --no-sample given?): "
                        "nothing to draw\n");
    if (to_file && fclose(out) != 0 && rc == 0)
        rc = -errno;
    if (!to_file)
        fflush(stdout);
    if (rc == 0 && to_file)
        fprintf(stderr, "archtrace: wrote %s\n", target);
    return rc;
}

static int write_json_file(const render_ctx_t *c)
{
    FILE *f = fopen(c->o->json_file, "w");
    if (!f) {
        fprintf(stderr, "archtrace: cannot write %s: %s\n", c->o->json_file, strerror(errno));
        return -errno;
    }
    at_report_json(f, c);
    return fclose(f) == 0 ? 0 : -errno;
}

int at_report_render(const char *dir, const at_options_t *o, int exit_status)
{
    render_ctx_t c = { .dir = dir, .o = o, .exit_status = exit_status };
    int rc = at_salvage_scan(dir, &c.salvage);
    if (rc < 0) {               /* missing, not a directory, not ours: 125 */
        fprintf(stderr, "archtrace: cannot read session %s: %s\n", dir, strerror(-rc));
        return rc == -ENODATA ? -EIO : rc;
    }
    if (at_salvage_is_empty(&c.salvage)) {
        fprintf(stderr, "archtrace: %s is not an archtrace session: %s\n", dir,
                c.salvage.others ? "no session.meta and no <pid>.seg in it" : "it is empty");
        at_salvage_free(&c.salvage);
        return -ENODATA;
    }
    rc = at_proc_list_load(dir, &c.procs);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot read session %s: %s\n", dir, strerror(-rc));
        at_salvage_free(&c.salvage);
        return rc;
    }
    rc = add_all_recovered(&c);
    c.have_meta = at_meta_read(dir, &c.meta) == 0;
    if (c.exit_status < 0 && c.have_meta)
        c.exit_status = c.meta.exit_status;
    if (!o->quiet && (o->format != AT_FMT_TEXT || !o->out_file))
        at_report_text(stderr, &c);
    if (o->json_file && rc == 0)
        rc = write_json_file(&c);
    if (o->format != AT_FMT_TEXT || o->out_file)
        rc = render_format(&c) < 0 ? -EIO : rc;
    if (rc == 0 && at_salvage_nothing_readable(&c.salvage)) {
        fprintf(stderr, "archtrace: nothing in session %s could be read: %zu damaged file(s)\n", dir,
                c.salvage.damaged_files + (c.salvage.meta < 0 && c.salvage.meta != -ENOENT));
        rc = -ENODATA;
    }
    at_proc_list_free(&c.procs);
    at_salvage_free(&c.salvage);
    return rc;
}
