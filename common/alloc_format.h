/* SPDX-License-Identifier: MIT */
/* alloc_format.h - <pid>.alloc: allocation sites, their live/cumulative
 * counts and the snapshots, shared by preload/alloc*.c and the reader.
 *
 * Written by the shim through a shared mapping, so whatever was counted
 * survives a SIGKILL of the target; read by tracer/session/alloc_model.c after
 * the process ended.  Layout, little-endian, every region at the offset
 * the header gives (the reader checks each against the file size):
 *
 *     at_alloc_header_t                     header_size bytes
 *     at_alloc_site_t  sites[site_cap]      one per (code, instruction[, outer frames], kind)
 *     at_alloc_group_t groups[group_cap]    one per (file, line, function, python|native)
 *     uint32_t         frames[frame_cap]    outer frames of deep sites (group indexes)
 *     char             strings[str_cap]     [u16 length][bytes][NUL] records
 *     at_alloc_snap_t  snaps[snap_cap]      peak (2 slots), exit, markers
 *
 * Strings are resolved when a site is first seen (the code object is
 * alive then: its frame holds it), so counts and names are both on disk
 * at every moment; nothing needs the process at report time.
 * Totals (live and cumulative block counts, cumulative bytes) are the
 * sums over the sites: the hot path keeps only what the peak needs.
 * Counters of sampled runs (flags & AT_ALLOC_F_SAMPLED) are estimates:
 * bytes are bytes, counts are in 1/count_scale units.
 */
#ifndef AT_ALLOC_FORMAT_H
#define AT_ALLOC_FORMAT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define AT_ALLOC_MAGIC        0x434c4c41u /* "ALLC" little-endian         */
#define AT_ALLOC_VERSION      1u

#define AT_ALLOC_SITE_CAP     65536u      /* < 2^18: packed into shadow   */
#define AT_ALLOC_GROUP_CAP    65536u
#define AT_ALLOC_FRAME_CAP    (1u << 20)  /* only with depth > 1          */
#define AT_ALLOC_STR_CAP      (2u << 20)
#define AT_ALLOC_SNAP_TOP     192u        /* entries kept per snapshot    */
#define AT_ALLOC_SNAP_NATIVE  64u         /* ... of which at most native  */
#define AT_ALLOC_SNAP_CAP     32u
#define AT_ALLOC_SNAP_PEAK0   0u          /* slots 0, 1: the peak, written
                                           * alternately (one is whole)   */
#define AT_ALLOC_SNAP_EXIT    2u
#define AT_ALLOC_SNAP_MARKER0 3u          /* markers, in the order raised */
#define AT_ALLOC_LABEL_MAX    64u
#define AT_ALLOC_STR_MAX      1024u       /* longer names are cut          */
#define AT_ALLOC_COUNT_SCALE  1024u       /* count unit when sampling      */

/* Header flags. */
#define AT_ALLOC_F_RUNNING    0x1u  /* hooks installed                    */
#define AT_ALLOC_F_EXITED     0x2u  /* on_exit ran: the exit snapshot is there */
#define AT_ALLOC_F_FORKED     0x4u  /* a fork() child: counts start at the fork */
#define AT_ALLOC_F_SAMPLED    0x8u  /* --alloc-sample: counters are estimates */
#define AT_ALLOC_F_NATIVE     0x10u /* libc malloc family interposed      */
#define AT_ALLOC_F_PY_EXITED  0x20u /* the exit snapshot came from atexit (Python alive) */

/* Site kinds: which hook counted it, and so how its counters are kept. */
#define AT_ALLOC_KIND_PY      0u    /* PYMEM_DOMAIN_OBJ / MEM (GIL held)   */
#define AT_ALLOC_KIND_RAW     1u    /* PYMEM_DOMAIN_RAW (maybe no GIL)     */
#define AT_ALLOC_KIND_NATIVE  2u    /* libc malloc outside CPython's domains */
#define AT_ALLOC_KINDS        3u

/* Group kinds: python (OBJ, MEM, RAW together, like tracemalloc) or native. */
#define AT_ALLOC_GROUP_PY     0u
#define AT_ALLOC_GROUP_NATIVE 1u

/* Group flags. */
#define AT_ALLOC_G_TOOL       0x1u  /* innermost frame in tracemalloc.py: the
                                     * in-process tracer's own memory, kept
                                     * out of totals, peaks and tops      */
#define AT_ALLOC_G_NOFRAME    0x2u  /* no Python frame (C thread, start-up) */
#define AT_ALLOC_G_OVERFLOW   0x4u  /* a table was full: sums of the rest */

/* Snapshot kinds. */
#define AT_ALLOC_SNAP_KIND_PEAK   1u
#define AT_ALLOC_SNAP_KIND_EXIT   2u
#define AT_ALLOC_SNAP_KIND_MARKER 3u

typedef struct at_alloc_site {
    uint64_t code;         /* key: code object of the innermost frame, 0: none */
    uint64_t okey;         /* key: hash of its co_linetable address (guards
                            * against a new code object at a dead one's
                            * address) and of the outer frames          */
    uint32_t instr;        /* key: instruction index (code units, int32)  */
    uint32_t group;        /* innermost frame's group                     */
    uint32_t frames;       /* first outer frame in frames[], nframes-1 of them */
    uint16_t nframes;      /* frames recorded (1..depth), 0: no frame     */
    uint8_t kind;          /* AT_ALLOC_KIND_*                             */
    uint8_t flags;         /* the innermost group's AT_ALLOC_G_*          */
    int64_t live_bytes;    /* allocated and not yet freed                 */
    int64_t live_count;
    uint64_t total_bytes;  /* ever allocated here                         */
    uint64_t total_count;
} at_alloc_site_t;

typedef struct at_alloc_group {
    uint32_t file;         /* string offset: co_filename                  */
    uint32_t func;         /* string offset: co_qualname                  */
    int32_t line;          /* as tracemalloc reports it (0: unknown)      */
    uint16_t kind;         /* AT_ALLOC_GROUP_*                            */
    uint16_t flags;        /* AT_ALLOC_G_*                                */
} at_alloc_group_t;

typedef struct at_alloc_snap_entry {
    uint32_t group;        /* index into groups[]                         */
    uint32_t reserved;
    int64_t bytes;         /* live bytes of the group at the snapshot     */
    int64_t count;         /* live blocks (count_scale units)             */
} at_alloc_snap_entry_t;

typedef struct at_alloc_snap {
    uint64_t seq;          /* 0: empty; odd: being written; even: whole   */
    uint32_t kind;         /* AT_ALLOC_SNAP_KIND_*                        */
    uint32_t n;            /* entries used, biggest first                 */
    uint64_t ns;           /* CLOCK_MONOTONIC when taken                  */
    int64_t py_bytes;      /* Python live total (tool memory excluded)    */
    int64_t py_count;
    int64_t native_bytes;  /* native live total                           */
    int64_t native_count;
    uint32_t groups_live;  /* groups with live memory (n may be fewer)    */
    uint32_t reserved;
    char label[AT_ALLOC_LABEL_MAX]; /* marker label, "peak", "exit"       */
    at_alloc_snap_entry_t top[AT_ALLOC_SNAP_TOP];
} at_alloc_snap_t;

typedef struct at_alloc_header {
    /* layout: fixed when the file is created */
    uint32_t magic;        /* AT_ALLOC_MAGIC                              */
    uint32_t version;      /* AT_ALLOC_VERSION                            */
    uint32_t header_size;  /* sizeof(at_alloc_header_t)                   */
    uint32_t site_size;    /* sizeof(at_alloc_site_t)                     */
    uint32_t group_size;   /* sizeof(at_alloc_group_t)                    */
    uint32_t snap_size;    /* sizeof(at_alloc_snap_t)                     */
    uint32_t site_cap, group_cap, frame_cap, snap_cap;
    uint64_t str_cap;
    uint64_t off_sites, off_groups, off_frames, off_strs, off_snaps;
    uint64_t file_size;    /* total bytes, the reader checks it           */
    /* run */
    int32_t pid;
    uint32_t flags;        /* AT_ALLOC_F_*                                */
    int32_t depth;         /* frames kept per site (--alloc-depth)        */
    uint32_t count_scale;  /* 1, or AT_ALLOC_COUNT_SCALE when sampling    */
    int64_t sample_bytes;  /* --alloc-sample mean interval, 0 = exact     */
    uint64_t start_ns;     /* hooks installed (CLOCK_MONOTONIC)           */
    uint64_t end_ns;       /* on_exit; 0 if it never ran                  */
    /* table fill (monotonic, the reader clamps them to the caps) */
    uint32_t nsites, ngroups, nframes, nmarkers;
    uint64_t str_used;
    uint64_t peak_seq;     /* seq of the newest whole peak snapshot       */
    /* drops: nothing is lost silently */
    uint64_t sites_dropped;    /* allocations counted on an overflow site */
    uint64_t groups_dropped;   /* sites that got the overflow group       */
    uint64_t frames_dropped;   /* deep sites cut to one frame             */
    uint64_t strs_dropped;     /* names replaced by "?"                   */
    uint64_t markers_dropped;  /* archtrace.snapshot events past the slots */
    uint64_t untracked_blocks; /* allocations the tables could not hold   */
    uint64_t untracked_bytes;
    uint64_t layers;           /* allocator layers installed (re-wraps over
                                * a tracemalloc started later)           */
    /* memory the shim itself uses (bench table): virtual and resident */
    uint64_t shadow_bytes, shadow_resident;
    uint64_t private_bytes, file_resident;
    uint64_t reserved0[4];
    /* hot counters, on their own cache lines */
    int64_t py_live __attribute__((aligned(64)));  /* OBJ+MEM, GIL held   */
    int64_t py_peak;       /* max of py_live + raw_live (tool excluded)  */
    uint64_t py_peak_ns;
    int64_t tool_live, tool_peak;  /* tracemalloc.py's own memory        */
    int64_t raw_live __attribute__((aligned(64)));  /* RAW (atomic)       */
    int64_t native_live __attribute__((aligned(64))); /* atomic           */
    int64_t native_live_count;
    int64_t native_peak;
    uint64_t native_total_bytes;
    uint64_t reserved1[8] __attribute__((aligned(64)));
} at_alloc_header_t;

_Static_assert(sizeof(at_alloc_site_t) == 64, "a site is one cache line");
_Static_assert(sizeof(at_alloc_group_t) == 16, "group record size");
_Static_assert(sizeof(at_alloc_snap_entry_t) == 24, "snapshot entry size");
_Static_assert(AT_ALLOC_SITE_CAP < (1u << 18), "site index fits the shadow entry");
_Static_assert(sizeof(at_alloc_header_t) % 64 == 0, "header keeps regions aligned");

/* Byte size of a file with these capacities, and the region offsets. */
static inline uint64_t at_alloc_layout(at_alloc_header_t *h)
{
    uint64_t off = sizeof(at_alloc_header_t);
    h->off_sites = off;
    off += (uint64_t)h->site_cap * sizeof(at_alloc_site_t);
    h->off_groups = off;
    off += (uint64_t)h->group_cap * sizeof(at_alloc_group_t);
    h->off_frames = off;
    off += (uint64_t)h->frame_cap * sizeof(uint32_t);
    h->off_strs = off;
    off += (h->str_cap + 63) & ~63ull;
    h->off_snaps = off;
    off += (uint64_t)h->snap_cap * sizeof(at_alloc_snap_t);
    h->file_size = off;
    return off;
}

/* ---- reader (tracer/session/alloc_model.c) ------------------------------------ */

/* A validated, read-only view of one <pid>.alloc. */
typedef struct at_alloc_data {
    unsigned char *buf;            /* the whole file                     */
    size_t size;
    const at_alloc_header_t *h;
    const at_alloc_site_t *sites;  /* nsites of them (clamped)            */
    const at_alloc_group_t *groups;
    const uint32_t *frames;
    const char *strs;
    const at_alloc_snap_t *snaps;
    uint32_t nsites, ngroups, nframes;
    uint64_t str_used;
} at_alloc_data_t;

/* Validate a file image (takes ownership of buf, freed by at_alloc_free).
 * 0, or -EINVAL with a one-line reason in why (bad magic, version,
 * sizes, truncated, region outside the file). */
int at_alloc_parse(unsigned char *buf, size_t size, at_alloc_data_t *d, char *why, size_t why_len);

/* Read and validate <dir>/<pid>.alloc: 0, -ENOENT (no such file), or
 * -EINVAL after printing "archtrace: <pid>.alloc: <reason>" on stderr. */
int at_alloc_load(const char *dir, pid_t pid, at_alloc_data_t *d);
void at_alloc_free(at_alloc_data_t *d);

/* The string at offset off ("?" when the offset is bad). */
const char *at_alloc_str(const at_alloc_data_t *d, uint32_t off);
/* A group's function as reports name it (or a bracketed note for the
 * no-frame and overflow groups), and its file ("" for those). */
const char *at_alloc_group_func(const at_alloc_data_t *d, uint32_t g);
const char *at_alloc_group_file(const at_alloc_data_t *d, uint32_t g);

/* tracemalloc's _format_size(size, sign=False): "6144 KiB", "63 B", "12.5 MiB". */
void at_alloc_format_size(char *out, size_t n, double size);

/* Folded stacks of live memory at exit ("file:func:line;... bytes"),
 * outermost frame first, for flamegraph.pl / speedscope. */
int at_alloc_write_collapsed(const char *dir, pid_t pid, FILE *out);

#endif
