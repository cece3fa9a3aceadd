/* SPDX-License-Identifier: MIT */
/* gen_feature_seeds.c - compact seeds for fuzz_features from a real session.
 *
 * The shim's .alloc, .gil and .imports files are fixed-size tables of
 * several MiB, mostly unused; a fuzzer cannot find their exact layout by
 * itself and would waste its time mutating zeros.  This program rewrites
 * the files of one recorded process with small capacities (the used part
 * only, offsets recomputed as the shim lays them out) and writes each as
 * a fuzz_features input (selector byte + file) for pid 4242:
 *     cc -Icommon -o /tmp/gen tests/fuzz/gen_feature_seeds.c
 *     /tmp/gen SESSION_DIR PID tests/fuzz/corpus/features
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_format.h"
#include "gil_format.h"
#include "imports_format.h"

#define FUZZ_PID   4242
#define KEEP_ROWS  64u  /* sites, ring events, import records kept */

static unsigned char *slurp(const char *dir, const char *pid, const char *ext, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, pid, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return perror(path), NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *buf = malloc(*len ? *len : 1);
    if (buf && fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int emit(const char *out, const char *name, int selector, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return perror(path), 1;
    fputc(selector, f);
    fwrite(data, 1, len, f);
    return fclose(f) != 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* selector 0: the same tables with capacities cut to what is used */
static int compact_alloc(const unsigned char *in, size_t len, const char *out)
{
    at_alloc_header_t h;
    if (len < sizeof h)
        return 1;
    memcpy(&h, in, sizeof h);
    const at_alloc_header_t old = h;
    h.nsites = h.site_cap = min_u32(h.nsites, KEEP_ROWS);
    h.group_cap = h.ngroups;
    h.frame_cap = h.nframes;
    h.str_cap = h.str_used;
    h.nmarkers = min_u32(h.nmarkers, 1);
    h.snap_cap = AT_ALLOC_SNAP_MARKER0 + h.nmarkers;
    h.pid = FUZZ_PID;
    size_t size = at_alloc_layout(&h);
    unsigned char *buf = calloc(1, size);
    if (!buf || old.file_size > len)
        return free(buf), 1;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + h.off_sites, in + old.off_sites, (size_t)h.nsites * sizeof(at_alloc_site_t));
    memcpy(buf + h.off_groups, in + old.off_groups, (size_t)h.ngroups * sizeof(at_alloc_group_t));
    memcpy(buf + h.off_frames, in + old.off_frames, (size_t)h.nframes * sizeof(uint32_t));
    memcpy(buf + h.off_strs, in + old.off_strs, h.str_used);
    memcpy(buf + h.off_snaps, in + old.off_snaps, (size_t)h.snap_cap * sizeof(at_alloc_snap_t));
    int rc = emit(out, "alloc_compact", 0, buf, size);
    free(buf);
    return rc;
}

/* selector 1: the threads in use and the first ring events */
static int compact_gil(const unsigned char *in, size_t len, const char *out)
{
    at_gil_header_t h;
    const char *why;
    if (at_gil_check(in, len, &why) < 0)
        return fprintf(stderr, "gil: %s\n", why), 1;
    memcpy(&h, in, sizeof h);
    h.thread_cap = h.nthreads ? h.nthreads : 1;
    h.ring_cap = min_u32(h.ring_cap, KEEP_ROWS);
    h.ring_written = h.ring_written < h.ring_cap ? h.ring_written : h.ring_cap;
    h.pid = FUZZ_PID;
    size_t threads = (size_t)h.thread_cap * sizeof(at_gil_thread_t), ring = (size_t)h.ring_cap * sizeof(at_gil_event_t);
    unsigned char *buf = calloc(1, sizeof h + threads + ring);
    if (!buf)
        return 1;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, at_gil_threads(in), threads);
    memcpy(buf + sizeof h + threads, at_gil_ring(in), ring);
    int rc = emit(out, "gil_compact", 1, buf, sizeof h + threads + ring);
    free(buf);
    return rc;
}

/* selector 4: the first records and the arena they point into */
static int compact_imports(const unsigned char *in, size_t len, const char *out)
{
    at_imp_header_t h;
    if (len < sizeof h)
        return 1;
    memcpy(&h, in, sizeof h);
    const at_imp_header_t old = h;
    if (at_imp_file_size(old.capacity, old.arena_size) > len || old.arena_used > old.arena_size)
        return 1;
    h.count = h.capacity = min_u32(h.count, KEEP_ROWS);
    h.arena_size = h.arena_used;
    h.pid = FUZZ_PID;
    size_t size = at_imp_file_size(h.capacity, h.arena_size), recs = (size_t)h.capacity * sizeof(at_imp_record_t);
    unsigned char *buf = calloc(1, size);
    if (!buf)
        return 1;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, in + sizeof h, recs);
    memcpy(buf + sizeof h + recs, in + sizeof h + (size_t)old.capacity * sizeof(at_imp_record_t), h.arena_used);
    int rc = emit(out, "imports_compact", 4, buf, size);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const ext[] = { "alloc", "gil", "imports" };
    int (*const compact[])(const unsigned char *, size_t, const char *) = { compact_alloc, compact_gil,
                                                                             compact_imports };
    if (argc != 4)
        return fprintf(stderr, "usage: %s SESSION_DIR PID OUT_DIR\n", argv[0]), 2;
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        unsigned char *in = slurp(argv[1], argv[2], ext[i], &len);
        bad |= !in || compact[i](in, len, argv[3]);
        free(in);
    }
    return bad;
}
