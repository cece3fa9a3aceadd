/* SPDX-License-Identifier: MIT */
/* test_alloc_format.c - the <pid>.alloc reader and the pieces of the
 * allocation report that need no target: validation of corrupt and
 * truncated files, merging groups into tracemalloc's (file, line) rows,
 * tracemalloc's size format, and the shim's line-table decoder against
 * CPython's own co_lines(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc_format.h"
#include "report/report_features.h"
#include "testlib.h"

/* The shim's decoder is static to the .so: compile its source here. */
#include "../preload/alloc_line.c"

/* ---- a synthetic file ---------------------------------------------------- */

typedef struct image {
    unsigned char *buf;
    size_t size;
    at_alloc_header_t *h;
} image_t;

static uint32_t put_str(image_t *im, const char *s)
{
    at_alloc_header_t *h = im->h;
    uint32_t off = (uint32_t)h->str_used;
    uint16_t len = (uint16_t)strlen(s);
    char *base = (char *)im->buf + h->off_strs + off;
    memcpy(base, &len, 2);
    memcpy(base + 2, s, len + 1);
    h->str_used += len + 3u;
    return off;
}

static void put_site(image_t *im, uint32_t group, int64_t live, int64_t total, uint8_t kind)
{
    at_alloc_site_t *s = (at_alloc_site_t *)(im->buf + im->h->off_sites) + im->h->nsites++;
    *s = (at_alloc_site_t){ .group = group, .kind = kind, .nframes = 1, .live_bytes = live,
                            .live_count = live / 100, .total_bytes = (uint64_t)total,
                            .total_count = (uint64_t)total / 100 };
}

/* Three groups: a.py:10 twice (two functions on one line: tracemalloc
 * merges them), b.py:20, and a native group; one marker snapshot. */
static image_t make_image(void)
{
    at_alloc_header_t proto = {
        .magic = AT_ALLOC_MAGIC, .version = AT_ALLOC_VERSION, .header_size = sizeof(at_alloc_header_t),
        .site_size = sizeof(at_alloc_site_t), .group_size = sizeof(at_alloc_group_t),
        .snap_size = sizeof(at_alloc_snap_t), .site_cap = 64, .group_cap = 64, .frame_cap = 0,
        .snap_cap = AT_ALLOC_SNAP_MARKER0 + 2, .str_cap = 4096, .pid = 4242, .depth = 1,
        .count_scale = 1, .flags = AT_ALLOC_F_RUNNING | AT_ALLOC_F_EXITED,
    };
    image_t im;
    im.size = (size_t)at_alloc_layout(&proto);
    im.buf = calloc(1, im.size);
    im.h = (at_alloc_header_t *)im.buf;
    memcpy(im.h, &proto, sizeof(proto));
    uint32_t a = put_str(&im, "a.py"), b = put_str(&im, "b.py"), f = put_str(&im, "f"), g = put_str(&im, "g");
    at_alloc_group_t *grp = (at_alloc_group_t *)(im.buf + im.h->off_groups);
    grp[0] = (at_alloc_group_t){ a, f, 10, AT_ALLOC_GROUP_PY, 0 };
    grp[1] = (at_alloc_group_t){ a, g, 10, AT_ALLOC_GROUP_PY, 0 };
    grp[2] = (at_alloc_group_t){ b, f, 20, AT_ALLOC_GROUP_PY, 0 };
    grp[3] = (at_alloc_group_t){ b, g, 30, AT_ALLOC_GROUP_NATIVE, 0 };
    im.h->ngroups = 4;
    put_site(&im, 0, 3000, 9000, AT_ALLOC_KIND_PY);
    put_site(&im, 1, 2000, 2000, AT_ALLOC_KIND_RAW);
    put_site(&im, 2, 4000, 4000, AT_ALLOC_KIND_PY);
    put_site(&im, 3, 7000, 7000, AT_ALLOC_KIND_NATIVE);
    at_alloc_snap_t *sn = (at_alloc_snap_t *)(im.buf + im.h->off_snaps) + AT_ALLOC_SNAP_MARKER0;
    sn->seq = 2;
    sn->kind = AT_ALLOC_SNAP_KIND_MARKER;
    strcpy(sn->label, "mark");
    sn->n = 4;
    sn->top[0] = (at_alloc_snap_entry_t){ 2, 0, 4000, 40 };
    sn->top[1] = (at_alloc_snap_entry_t){ 0, 0, 3000, 30 };
    sn->top[2] = (at_alloc_snap_entry_t){ 1, 0, 2000, 20 };
    sn->top[3] = (at_alloc_snap_entry_t){ 3, 0, 7000, 70 };
    im.h->nmarkers = 1;
    return im;
}

static int parse(image_t *im, size_t size, char *why)
{
    at_alloc_data_t d;
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, im->buf, size);
    int rc = at_alloc_parse(copy, size, &d, why, 200);
    at_alloc_free(&d);
    return rc;
}

Test(alloc_format, valid_image_parses)
{
    image_t im = make_image();
    char why[200] = "";
    cr_assert_eq(parse(&im, im.size, why), 0, "a well-formed file parses: %s", why);
    free(im.buf);
}

typedef struct corruption {
    const char *name;
    void (*apply)(image_t *im);
    size_t cut;          /* bytes removed from the end                   */
    const char *reason;  /* expected in the message                      */
} corruption_t;

static void bad_magic(image_t *im) { im->h->magic = 0x12345678; }
static void bad_version(image_t *im) { im->h->version = 99; }
static void bad_sizes(image_t *im) { im->h->site_size = 32; }
static void bad_offsets(image_t *im) { im->h->off_snaps += 8; }
static void bad_fill(image_t *im) { im->h->nsites = 1000; }
static void bad_group(image_t *im) { ((at_alloc_site_t *)(im->buf + im->h->off_sites))[1].group = 60; }
static void bad_string(image_t *im) { ((at_alloc_group_t *)(im->buf + im->h->off_groups))[2].file = 4000; }
static void bad_snapshot(image_t *im)
{
    ((at_alloc_snap_t *)(im->buf + im->h->off_snaps))[AT_ALLOC_SNAP_MARKER0].top[1].group = 63;
}
static void nothing(image_t *im) { (void)im; }

Test(alloc_format, corrupt_files_are_rejected_with_a_reason)
{
    static const corruption_t cases[] = {
        { "magic", bad_magic, 0, "not an allocation file" },
        { "version", bad_version, 0, "format version 99" },
        { "record sizes", bad_sizes, 0, "record sizes" },
        { "offsets", bad_offsets, 0, "region offsets" },
        { "fill counters", bad_fill, 0, "fill counters" },
        { "site group", bad_group, 0, "points at group 60" },
        { "name offset", bad_string, 0, "bad name offset" },
        { "snapshot group", bad_snapshot, 0, "snapshot 3 points at group 63" },
        { "truncated by one byte", nothing, 1, "truncated" },
        { "header cut", nothing, 0, "truncated" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        image_t im = make_image();
        char why[200] = "";
        cases[i].apply(&im);
        size_t size = strcmp(cases[i].name, "header cut") == 0 ? 40 : im.size - cases[i].cut;
        cr_assert_eq(parse(&im, size, why), -EINVAL, "%s: rejected", cases[i].name);
        cr_assert(strstr(why, cases[i].reason), "%s: reason '%s' in '%s'", cases[i].name, cases[i].reason, why);
        free(im.buf);
    }
}

/* Write the image as <dir>/4242.alloc. */
static char *session_with(image_t *im)
{
    char *dir = at_test_tmpdir(), path[600];
    snprintf(path, sizeof(path), "%s/4242.alloc", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "write %s", path);
    cr_assert_eq(fwrite(im->buf, 1, im->size, f), im->size, "whole image written");
    fclose(f);
    return dir;
}

Test(alloc_format, rows_merge_by_file_and_line_like_tracemalloc)
{
    image_t im = make_image();
    char *dir = session_with(&im), *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    at_json_t j;
    at_options_t o = { .top_n = 5 };
    at_json_init(&j, out, 0);
    cr_assert_eq(at_alloc_report_json(dir, 4242, &j, &o), 0, "report from the synthetic file");
    fclose(out);
    /* marker: a.py:10 = 3000 + 2000 (OBJ and RAW, two functions) first */
    const char *mark = strstr(buf, "\"label\":\"mark\"");
    cr_assert_not_null(mark, "marker snapshot in %s", buf);
    const char *first = strstr(mark, "\"file\":\"a.py\",\"line\":10,\"size\":5000,\"count\":50");
    const char *second = strstr(mark, "\"file\":\"b.py\",\"line\":20,\"size\":4000");
    cr_assert(first && second && first < second, "a.py:10 (5000) before b.py:20 (4000): %s", mark);
    cr_assert_not_null(strstr(mark, "\"native_top\":[{\"file\":\"b.py\",\"line\":30,\"size\":7000"),
                       "native kept apart: %s", mark);
    cr_assert_not_null(strstr(buf, "\"cumulative\":{\"top\":[{\"file\":\"a.py\",\"line\":10,\"size\":11000"),
                       "cumulative merges too: %s", buf);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(buf), free(dir), free(im.buf);
}

Test(alloc_format, text_report_reads_like_tracemalloc)
{
    image_t im = make_image();
    char *dir = session_with(&im), *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    at_options_t o = { .top_n = 5 };
    cr_assert_eq(at_alloc_report_text(dir, 4242, out, &o), 0, "text report");
    fclose(out);
    cr_assert_not_null(strstr(buf, "    a.py:10: size=5000 B, count=50, average=100 B\n"),
                       "Statistic's format: %s", buf);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(buf), free(dir), free(im.buf);
}

Test(alloc_format, missing_file_is_enoent)
{
    at_alloc_data_t d;
    cr_assert_eq(at_alloc_load("/nonexistent", 1, &d), -ENOENT, "no file: -ENOENT, nothing printed");
}

/* ---- tracemalloc's _format_size ----------------------------------------- */

Test(alloc_format, sizes_print_like_tracemalloc)
{
    static const double sizes[] = { 0, 1, 63.4, 63.5, 99, 100, 1023, 10239, 10240, 10752, 102399,
                                    102400, 6291456, 31374976, 1048575, 10485759.5, 1.5e12, 3e15 };
    char expr[2048] = "import tracemalloc; print('|'.join(tracemalloc._format_size(x, False) for x in [";
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        snprintf(expr + strlen(expr), sizeof(expr) - strlen(expr), "%s%.17g", i ? "," : "", sizes[i]);
    strcat(expr, "]))");
    char *want = NULL;
    int rc = at_test_shf(&want, NULL, "python3 -c \"%s\"", expr);
    cr_assert_eq(rc, 0, "python3 runs tracemalloc._format_size");
    char *save = NULL, *tok = strtok_r(want, "|\n", &save);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++, tok = strtok_r(NULL, "|\n", &save)) {
        char got[32];
        at_alloc_format_size(got, sizeof(got), sizes[i]);
        cr_assert_not_null(tok, "an expected value for %g", sizes[i]);
        cr_assert_str_eq(got, tok, "%.17g formats as tracemalloc does", sizes[i]);
    }
    free(want);
}

/* ---- the shim's line-table decoder vs co_lines() ------------------------ */

static int hexval(int c)
{
    return c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

Test(alloc_format, addr2line_matches_cpython, .timeout = 60)
{
    const char *py = at_test_python("static");
    if (!py && !(py = at_test_python("shared")))
        cr_skip_test("no CPython 3.11 to produce location tables");
    char *dir = at_test_tmpdir(), path[600];
    snprintf(path, sizeof(path), "%s/lt.txt", dir);
    cr_assert_eq(at_test_shf(NULL, NULL, "%s tests/fixtures/dump_linetables.py %s", py, path), 0,
                 "dump_linetables.py ran");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "its output");
    static uint8_t tab[1 << 16];
    size_t len = 0, lines = 0, codes = 0;
    int first = 0;
    char kind[8], hex[1 << 17], name[512];
    char *row = NULL;
    size_t cap = 0;
    while (getline(&row, &cap, f) > 0) {
        int a, b;
        if (sscanf(row, "code %d %d %131071s %511s", &first, &a, hex, name) == 4) {
            len = strcmp(hex, "-") ? strlen(hex) / 2 : 0;
            for (size_t i = 0; i < len; i++)
                tab[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
            codes++;
            cr_assert_eq(at_alloc_addr2line(tab, len, first, -1), first, "%s: index -1 is firstlineno", name);
        } else if (sscanf(row, "%7s %d %d", kind, &a, &b) == 3 && !strcmp(kind, "line")) {
            int got = at_alloc_addr2line(tab, len, first, a);
            cr_assert_eq(got, b, "%s unit %d: line %d, CPython says %d", name, a, got, b);
            lines++;
        }
    }
    fclose(f);
    free(row);
    cr_assert_gt(codes, 100, "many code objects checked (%zu)", codes);
    cr_assert_gt(lines, 10000, "many instructions checked (%zu)", lines);
    cr_assert_eq(at_alloc_addr2line(tab, 0, 7, 3), -1, "an empty table has no line");
    const uint8_t truncated[] = { 0xf0 };   /* code 14, its varint missing */
    cr_assert_eq(at_alloc_addr2line(truncated, 1, 7, 0), -1, "a malformed table ends the walk");
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}
