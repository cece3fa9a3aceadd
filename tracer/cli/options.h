/* SPDX-License-Identifier: MIT */
/* options.h - the parsed command line, shared by every archtrace command. */
#ifndef AT_OPTIONS_H
#define AT_OPTIONS_H
#include <stdint.h>
#include <sys/types.h>

typedef enum at_command {
    AT_CMD_RUN = 0,   /* archtrace [run] [OPTIONS] [--] COMMAND [ARGS...] */
    AT_CMD_REPORT,    /* archtrace report [--format FMT] DIR               */
    AT_CMD_DUMP,      /* archtrace -p PID dump                             */
    AT_CMD_RECORD,    /* archtrace -p PID record [-d SECS] [-o DIR]        */
    AT_CMD_TOP,       /* archtrace top [-p PID | -- COMMAND]               */
    AT_CMD_AGENT,     /* archtrace agent [--metrics ADDR] [--profiles DIR] */
} at_command_t;

typedef enum at_format {
    AT_FMT_TEXT = 0,  /* human report on stderr (default)                  */
    AT_FMT_JSON,      /* the archtrace/1 JSON document                     */
    AT_FMT_COLLAPSED, /* folded stacks for flamegraph.pl / speedscope      */
    AT_FMT_CHROME,    /* Chrome trace event JSON for Perfetto              */
    AT_FMT_SVG,       /* self-drawn interactive flame graph                */
    AT_FMT_PPROF,     /* gzipped profile.proto: go tool pprof, Pyroscope  */
    AT_FMT_SPEEDSCOPE,/* speedscope's file format, a profile per thread    */
    AT_FMT_HTML,      /* one self-contained page (report/html.h)           */
} at_format_t;

typedef struct at_options {
    at_command_t command;     /* which subcommand                          */
    pid_t pid;                /* -p PID, 0 when not given                  */
    const char *output_dir;   /* -o DIR: keep the session there            */
    const char *json_file;    /* --json FILE                               */
    const char *out_file;     /* --out FILE for --format output, NULL = stdout */
    at_format_t format;       /* --format                                  */
    int no_alloc;             /* --no-alloc                                */
    int no_gil;               /* --no-gil                                  */
    int no_imports;           /* --no-imports                              */
    int no_sample;            /* --no-sample                               */
    double rate_hz;           /* --rate HZ (default 100)                   */
    int native;               /* --native                                  */
    int bpf;                  /* --bpf                                     */
    int idle;                 /* --idle: include idle stacks               */
    int no_poll;              /* --no-poll: sleep on a timer at any rate   */
    int alloc_mode;           /* --alloc: memory flame graph (svg)         */
    int top_n;                /* --top N rows per table (default 5)        */
    double duration_s;        /* -d SECS for record, 0 = until Ctrl-C/exit */
    int alloc_depth;          /* --alloc-depth N (default 1)               */
    long alloc_sample;        /* --alloc-sample BYTES, 0 = exact           */
    int alloc_sample_given;   /* --alloc-sample was on the command line    */
    int alloc_exact;          /* --alloc-exact: every block (tracemalloc's
                               * own numbers), not the sampled default     */
    int quiet;                /* -q: no text report                        */
    const char *fail_if[16];  /* --fail-if EXPR, as given (report/thresholds.h) */
    int n_fail_if;
    const char *diff_a, *diff_b; /* report --diff A B (report/alloc_diff.h) */
    int leaks;                /* report --leaks                            */
    const char *leaks_since;  /* --leaks-since NAME (implies --leaks)      */
    int memory_plot;          /* --memory-plot: with --format svg, memory
                                 over time instead of a flame graph       */
    int full;                 /* --full: the text report unabridged (every
                                 import of the tree)                       */
    int subprocesses;         /* --subprocesses: -p PID's whole tree, its
                               * Python processes, whatever PID runs       */
    int locals;               /* --locals: dump shows each frame's variables */
    int asyncio;              /* --asyncio: dump lists the asyncio tasks;
                                 record/run put samples under them      */
    const char *report_dir;   /* DIR for `archtrace report`                */
    const char *metrics_addr; /* agent --metrics HOST:PORT                 */
    const char *profiles_dir; /* agent --profiles DIR                      */
    const char *push_url;     /* agent --push URL (Pyroscope ingest)       */
    double interval_s;        /* agent --interval SECS between profiles    */
    long profiles_max_mb;     /* agent --profiles-max MB kept in DIR       */
    uint32_t bpf_ring_bytes;  /* eBPF events' ring buffer (0: the default,
                                 8 MiB); the agent's are smaller, one per
                                 process                                   */
    char **argv;              /* COMMAND [ARGS...] for run/top, NULL-ended */
    int argc;                 /* number of entries in argv                 */
} at_options_t;



/* Allocation tracking samples by default: one block per this many bytes
 * allocated, on average (Poisson, each block weighted by 1/P(sampled)).
 * At 16 KiB a program allocating 1 GB/s takes ~60,000 samples a second,
 * ~1% of its time; --alloc-exact counts every block instead. */
#define AT_ALLOC_SAMPLE_DEFAULT 16384L

/* Exit statuses (documented in the README).  `run` returns the target's
 * own status; these are archtrace's own. */
#define AT_EXIT_NO_SUCH_PROCESS   3   /* -p PID: no such process           */
#define AT_EXIT_NOT_PYTHON        4   /* -p PID: not a Python process      */
#define AT_EXIT_UNSUPPORTED       5   /* -p PID: Python, not 3.11 to 3.13 (or free-threaded) */
#define AT_EXIT_PERMISSION        6   /* -p PID: ptrace/read not permitted */
#define AT_EXIT_BPF_UNAVAILABLE   7   /* --bpf required but refused        */
#define AT_EXIT_THRESHOLD        10   /* a --fail-if limit was crossed     */
#define AT_EXIT_FAILED          125   /* archtrace failed (also bad usage) */
#define AT_EXIT_CANNOT_RUN      126   /* command found but not executable  */
#define AT_EXIT_NOT_FOUND       127   /* command not found                 */
#endif
