/* SPDX-License-Identifier: MIT */
/* cli.c - the command-line contract of DESIGN.md, parsed without getopt so
 * that everything after COMMAND belongs to the command untouched. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "report/thresholds.h"

static const char usage[] =
    "usage: archtrace [run] [OPTIONS] [--] COMMAND [ARGS...]\n"
    "       archtrace report [--format FMT] [--json FILE] DIR\n"
    "       archtrace report --diff A B [DIR]   (A, B: a marker, peak, exit, DIR, DIR:NAME)\n"
    "       archtrace report --leaks [--leaks-since MARKER] DIR\n"
    "       archtrace -p PID dump [--subprocesses] [--locals] [--asyncio] [--json FILE]\n"
    "       archtrace -p PID record [--bpf] [--subprocesses] [-d SECS] [--rate HZ] [-o DIR]\n"
    "       archtrace top [-p PID | -- COMMAND [ARGS...]]\n"
    "       archtrace agent [--metrics HOST:PORT] [--profiles DIR] [--push URL]\n"
    "\n"
    "options:\n"
    "  -o, --output DIR     keep the session in DIR (for `archtrace report`)\n"
    "  --json FILE          write the JSON report to FILE (dump: its JSON,\n"
    "                       '-' for stdout instead of the text)\n"
    "  --locals             (dump) each Python frame's arguments and\n"
    "                       variables, short reprs read from its memory\n"
    "  --asyncio            dump: every asyncio task by event loop: name,\n"
    "                       state, what it awaits, its coroutine stack;\n"
    "                       record, run: each sample under the task it ran\n"
    "  --format FMT         text (default, stderr) | json | collapsed | chrome | svg\n"
    "                       | pprof (gzipped profile.proto: go tool pprof, Pyroscope)\n"
    "                       | speedscope (speedscope.app, a profile per thread)\n"
    "                       | html (one page: summary, GIL timeline, flame graphs,\n"
    "                       memory plot, the text report; works offline)\n"
    "  --out FILE           where --format output goes (default: stdout for\n"
    "                       report/record, archtrace.<ext> for run)\n"
    "  --no-alloc --no-gil --no-imports --no-sample\n"
    "  --rate HZ            sampling rate (default 100)\n"
    "  --no-poll            from 2 kHz, sleep between samples instead of\n"
    "                       polling the clock on a spare CPU\n"
    "  --native             add native frames (libunwind, stops threads)\n"
    "  --idle               include idle threads' stacks\n"
    "  --bpf                use eBPF probes (for -p PID record)\n"
    "  --subprocesses       (-p PID dump, record) every Python process under PID,\n"
    "                       also when PID is not Python (a shell, a master);\n"
    "                       record: those started or exec'd later too, with the\n"
    "                       sampler or (--bpf) the probes of each CPython binary\n"
    "  --alloc              memory flame graph instead of CPU (svg)\n"
    "  --memory-plot        with --format svg: memory over time (Python, native,\n"
    "                       RSS) with the archtrace.snapshot markers\n"
    "  --alloc-depth N      frames kept per allocation (default 1)\n"
    "  --alloc-sample BYTES sample one allocation per BYTES on average\n"
    "                       (default 16384)\n"
    "  --alloc-exact        count every allocation (tracemalloc's numbers)\n"
    "  --top N              rows per table (default 5)\n"
    "  --fail-if EXPR       exit 10 when a figure crosses a limit, e.g. 'peak>200MiB',\n"
    "                       'gil_wait_ratio>0.3', 'imports_failed>0' (repeatable;\n"
    "                       peak native_peak gil_wait_ratio gil_wait imports_failed\n"
    "                       import_time wall)\n"
    "  --full               the text report unabridged: the whole import tree\n"
    "                       (default: failed and unusual imports, the slowest)\n"
    "  -d, --duration SECS  how long `record` samples (default: until exit)\n"
    "agent (every CPython on the host, eBPF, until SIGINT/SIGTERM or -d):\n"
    "  --metrics HOST:PORT  Prometheus text exposition at /metrics\n"
    "                       (default 127.0.0.1:9464; HOST defaults to 127.0.0.1)\n"
    "  --profiles DIR       a pprof profile per process every --interval\n"
    "  --interval SECS      profile length (default 10)\n"
    "  --profiles-max MB    oldest profiles removed past this (default 256)\n"
    "  --push URL           POST each profile to a Pyroscope /ingest endpoint\n"
    "  -q, --quiet          no text report\n"
    "  -h, --help           this help;  --version  the version\n"
    "\n"
    "exit status: the command's own; 10 a --fail-if limit was crossed;\n"
    "125 archtrace failed or bad usage;\n"
    "126 the command could not run; 127 it was not found; for -p PID:\n"
    "3 no such process, 4 not Python, 5 a Python other than 3.11 to 3.13\n"
    "(or free-threaded), 6 no permission, 7 eBPF refused.\n";

const char *at_cli_usage(void)
{
    return usage;
}

void at_options_defaults(at_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->command = AT_CMD_RUN;
    o->rate_hz = 100.0;
    o->top_n = 5;
    o->interval_s = 10.0;
    o->profiles_max_mb = 256;
    o->alloc_depth = 1;
    o->alloc_sample = AT_ALLOC_SAMPLE_DEFAULT;
}

int at_format_from_name(const char *name)
{
    static const char *names[] = { "text", "json", "collapsed", "chrome", "svg", "pprof", "speedscope", "html" };
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Options that take a value: returns its canonical name or NULL. */
static const char *valued_option(const char *name)
{
    static const char *const table[][2] = {
        { "-o", "--output" }, { "--output", "--output" }, { "--json", "--json" },
        { "--format", "--format" }, { "--out", "--out" }, { "--rate", "--rate" },
        { "--top", "--top" }, { "-d", "--duration" }, { "--duration", "--duration" },
        { "--alloc-depth", "--alloc-depth" }, { "--alloc-sample", "--alloc-sample" },
        { "-p", "--pid" }, { "--pid", "--pid" },
        { "--metrics", "--metrics" }, { "--profiles", "--profiles" }, { "--push", "--push" },
        { "--interval", "--interval" }, { "--profiles-max", "--profiles-max" },
        { "--fail-if", "--fail-if" }, { "--leaks-since", "--leaks-since" },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(name, table[i][0]) == 0)
            return table[i][1];
    return NULL;
}

static int set_valued(at_options_t *o, const char *name, const char *v, char *err, size_t n)
{
    long l;
    if (!strcmp(name, "--output"))
        o->output_dir = v;
    else if (!strcmp(name, "--json"))
        o->json_file = v;
    else if (!strcmp(name, "--out"))
        o->out_file = v;
    else if (!strcmp(name, "--format")) {
        int f = at_format_from_name(v);
        if (f < 0)
            return fail(err, n, "unknown format '%s' (text, json, collapsed, chrome, svg)", v);
        o->format = (at_format_t)f;
    } else if (!strcmp(name, "--rate")) {
        if (parse_double(v, 0.1, 1000000.0, &o->rate_hz) < 0)
            return fail(err, n, "invalid --rate '%s': expected a number of Hz in (0, 1000000]", v);
    } else if (!strcmp(name, "--duration")) {
        if (parse_double(v, 0.0, 31536000.0, &o->duration_s) < 0)
            return fail(err, n, "invalid --duration '%s': expected seconds >= 0", v);
    } else if (!strcmp(name, "--top")) {
        if (parse_long(v, 1, 1000, &l) < 0)
            return fail(err, n, "invalid --top '%s': expected 1..1000", v);
        o->top_n = (int)l;
    } else if (!strcmp(name, "--alloc-depth")) {
        if (parse_long(v, 1, 128, &l) < 0)
            return fail(err, n, "invalid --alloc-depth '%s': expected 1..128", v);
        o->alloc_depth = (int)l;
    } else if (!strcmp(name, "--alloc-sample")) {
        if (parse_long(v, 1, 1L << 40, &l) < 0)
            return fail(err, n, "invalid --alloc-sample '%s': expected bytes >= 1", v);
        o->alloc_sample = l;
        o->alloc_sample_given = 1;
    } else if (!strcmp(name, "--metrics")) {
        o->metrics_addr = v;
    } else if (!strcmp(name, "--profiles")) {
        o->profiles_dir = v;
    } else if (!strcmp(name, "--push")) {
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
            return fail(err, n, "invalid --push '%s': expected an http:// or https:// URL", v);
        o->push_url = v;
    } else if (!strcmp(name, "--interval")) {
        if (parse_double(v, 0.1, 86400.0, &o->interval_s) < 0)
            return fail(err, n, "invalid --interval '%s': expected seconds in [0.1, 86400]", v);
    } else if (!strcmp(name, "--profiles-max")) {
        if (parse_long(v, 1, 1L << 20, &l) < 0)
            return fail(err, n, "invalid --profiles-max '%s': expected MB >= 1", v);
        o->profiles_max_mb = l;
    } else if (!strcmp(name, "--leaks-since")) {
        o->leaks_since = v;
        o->leaks = 1;
    } else if (!strcmp(name, "--fail-if")) {
        at_threshold_t t;
        if (o->n_fail_if == (int)(sizeof o->fail_if / sizeof *o->fail_if))
            return fail(err, n, "too many --fail-if (at most %d)", o->n_fail_if);
        if (at_threshold_parse(v, &t, err, n) < 0)
            return -EINVAL;
        o->fail_if[o->n_fail_if++] = v;
    } else if (!strcmp(name, "--pid")) {
        if (parse_long(v, 1, 0x7fffffff, &l) < 0)
            return fail(err, n, "invalid pid '%s'", v);
        o->pid = (pid_t)l;
    }
    return 0;
}

/* Flags without a value; 1 if handled, 0 if unknown. */
static int set_flag(at_options_t *o, const char *a)
{
    static const struct { const char *name; size_t off; } flags[] = {
        { "--no-alloc", offsetof(at_options_t, no_alloc) },
        { "--no-gil", offsetof(at_options_t, no_gil) },
        { "--no-imports", offsetof(at_options_t, no_imports) },
        { "--no-sample", offsetof(at_options_t, no_sample) },
        { "--native", offsetof(at_options_t, native) },
        { "--bpf", offsetof(at_options_t, bpf) },
        { "--idle", offsetof(at_options_t, idle) },
        { "--no-poll", offsetof(at_options_t, no_poll) },
        { "--alloc", offsetof(at_options_t, alloc_mode) },
        { "--alloc-exact", offsetof(at_options_t, alloc_exact) },
        { "-q", offsetof(at_options_t, quiet) },
        { "--quiet", offsetof(at_options_t, quiet) },
        { "--full", offsetof(at_options_t, full) },
        { "--memory-plot", offsetof(at_options_t, memory_plot) },
        { "--leaks", offsetof(at_options_t, leaks) },
        { "--subprocesses", offsetof(at_options_t, subprocesses) },
        { "--locals", offsetof(at_options_t, locals) },
        { "--asyncio", offsetof(at_options_t, asyncio) },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!strcmp(a, flags[i].name)) {
            *(int *)((char *)o + flags[i].off) = 1;
            return 1;
        }
    return 0;
}

static int command_word(const char *w, at_command_t *cmd)
{
    static const struct { const char *name; at_command_t cmd; } words[] = {
        { "run", AT_CMD_RUN }, { "report", AT_CMD_REPORT }, { "dump", AT_CMD_DUMP },
        { "record", AT_CMD_RECORD }, { "top", AT_CMD_TOP }, { "agent", AT_CMD_AGENT },
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(w, words[i].name)) {
            *cmd = words[i].cmd;
            return 1;
        }
    return 0;
}

/* One option at argv[*i]; advances *i past its value.  0, 1 (help),
 * 2 (version) or -EINVAL. */
static int parse_option(int argc, char **argv, int *i, at_options_t *o, char *err, size_t n)
{
    const char *a = argv[*i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
        return 1;
    if (!strcmp(a, "--version"))
        return 2;
    if (set_flag(o, a))
        return 0;
    if (!strcmp(a, "--diff")) {   /* the one option with two values */
        if (*i + 2 >= argc)
            return fail(err, n, "--diff needs two snapshots: --diff A B (a marker name, peak, exit, DIR or DIR:NAME)");
        o->diff_a = argv[++*i];
        o->diff_b = argv[++*i];
        return 0;
    }
    char name[64];
    const char *eq = strchr(a, '=');
    const char *value = NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    if (len >= sizeof(name))
        return fail(err, n, "unknown option '%s'", a);
    memcpy(name, a, len);
    name[len] = '\0';
    const char *canon = valued_option(name);
    if (!canon)
        return fail(err, n, "unknown option '%s' (see archtrace --help)", a);
    if (eq)
        value = eq + 1;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return fail(err, n, "option %s needs a value", name);
    return set_valued(o, canon, value, err, n);
}

static int check_command(at_options_t *o, int saw_word, char *err, size_t n)
{
    if (o->alloc_exact && o->alloc_sample_given)
        return fail(err, n, "--alloc-exact and --alloc-sample contradict each other: give one");
    if (o->alloc_exact)
        o->alloc_sample = 0;
    if (o->pid && !saw_word)
        return fail(err, n, "-p PID needs a command: dump or record");
    if (o->locals && o->command != AT_CMD_DUMP)
        return fail(err, n, "--locals only goes with dump (archtrace -p PID dump --locals)");
    if (o->asyncio && o->command != AT_CMD_DUMP && o->command != AT_CMD_RECORD && o->command != AT_CMD_RUN)
        return fail(err, n, "--asyncio goes with dump, record and run");
    if (o->asyncio && o->bpf)
        return fail(err, n, "--asyncio reads the running tasks with the sampler; --bpf has no task view");
    if (o->leaks && (o->command != AT_CMD_REPORT || o->diff_a))
        return fail(err, n, "--leaks goes with report (archtrace report --leaks [--leaks-since NAME] DIR), not --diff");
    if (o->diff_a && o->command != AT_CMD_REPORT)
        return fail(err, n, "--diff goes with report: archtrace report --diff A B DIR");
    if (o->memory_plot && o->format != AT_FMT_SVG)
        return fail(err, n, "--memory-plot draws an SVG: give --format svg");
    if (o->n_fail_if && o->command != AT_CMD_RUN && o->command != AT_CMD_RECORD && o->command != AT_CMD_REPORT)
        return fail(err, n, "--fail-if goes with run, record and report");
    if (o->asyncio && o->command == AT_CMD_RUN && o->no_sample)
        return fail(err, n, "--asyncio puts samples under tasks: it needs the sampler (drop --no-sample)");
    switch (o->command) {
    case AT_CMD_RUN:
        if (o->subprocesses)
            return fail(err, n, "--subprocesses is for -p PID dump and record (run follows its children already)");
        if (!o->argc)
            return fail(err, n, "no command given (see archtrace --help)");
        return 0;
    case AT_CMD_TOP:
        if (!o->argc && !o->pid)
            return fail(err, n, "top needs -p PID or -- COMMAND");
        if (o->argc && o->pid)
            return fail(err, n, "top takes -p PID or -- COMMAND, not both");
        return 0;
    case AT_CMD_AGENT:
        if (o->pid || o->argc)
            return fail(err, n, "agent watches every Python process of the host: no -p PID or COMMAND");
        return 0;
    case AT_CMD_REPORT:
        if (!o->report_dir && !o->diff_a)
            return fail(err, n, "report needs a session directory");
        return 0;
    case AT_CMD_DUMP:
    case AT_CMD_RECORD:
        if (o->subprocesses && o->bpf && o->command == AT_CMD_DUMP)
            return fail(err, n, "dump reads the stacks with ptrace: --bpf goes with record (record --bpf --subprocesses)");
        if (!o->pid)
            return fail(err, n, "%s needs -p PID", o->command == AT_CMD_DUMP ? "dump" : "record");
        return 0;
    }
    return 0;
}

int at_cli_parse(int argc, char **argv, at_options_t *o, char *err, size_t n)
{
    at_options_defaults(o);
    int saw_word = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            o->argv = argv + i + 1;
            o->argc = argc - i - 1;
            break;
        }
        if (a[0] == '-' && a[1]) {
            int rc = parse_option(argc, argv, &i, o, err, n);
            if (rc)
                return rc;
            continue;
        }
        if (!saw_word && command_word(a, &o->command)) {
            saw_word = 1;
            continue;
        }
        if (o->command == AT_CMD_REPORT && !o->report_dir) {
            o->report_dir = a;
            continue;
        }
        if (o->command == AT_CMD_RUN || o->command == AT_CMD_TOP) {
            o->argv = argv + i;
            o->argc = argc - i;
            break;
        }
        return fail(err, n, "unexpected argument '%s'", a);
    }
    return check_command(o, saw_word || o->command != AT_CMD_RUN, err, n);
}
