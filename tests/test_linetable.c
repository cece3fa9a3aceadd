/* SPDX-License-Identifier: MIT */
/* test_linetable.c - the 3.11 location-table decoder against CPython's own co_lines(),
 * on 3.11's two shapes and on 3.12 and 3.13, which keep the same format. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures/testutil.h"
#include "remote/linetable.h"

/* ---- helpers -------------------------------------------------------- */

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (; s[0] && s[1] && n < cap; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            cr_assert_fail("bad hex in fixture output: %.8s", s);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* ---- real code objects ---------------------------------------------- */

/* Decode every table the fixture dumped; compare each code unit's line.
 * `ver` "3.11" with a shape, or "3.12"/"3.13" with shape NULL. */
static void check_python(const char *ver, const char *shape)
{
    char py[512], script[512], cmd[2048], out[] = "/tmp/at_lt_XXXXXX";
    if (tu_find_python(ver, shape, py, sizeof py) < 0)
        cr_skip_test("no %s python%s on this machine", shape ? shape : "default-build", ver);
    if (!shape)
        shape = ver; /* names the run in messages */
    int fd = mkstemp(out);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s %s", py, tu_fixture("dump_linetables.py", script, sizeof script), out);
    cr_assert(system(cmd) == 0, "fixture failed: %s", cmd);
    FILE *f = fopen(out, "r");
    cr_assert(f, "cannot open fixture output %s", out);

    static char line[1 << 20];
    static uint8_t tab[1 << 19];
    static at_line_range_t ranges[1 << 17];
    size_t tablen = 0, ncodes = 0, nunits = 0;
    int first = 0, nranges = 0;
    char name[256] = "";
    while (fgets(line, sizeof line, f)) {
        static char hex[sizeof line];
        int a, b;
        if (sscanf(line, "code %d %d %s %255s", &first, &a, hex, name) == 4) {
            tablen = unhex(hex, tab, sizeof tab);
            nranges = at_linetable_decode(tab, tablen, first, ranges, sizeof ranges / sizeof *ranges);
            if (nranges < 0)
                cr_assert_fail("%s: table of %s does not decode (%d)", shape, name, nranges);
            ncodes++;
        } else if (sscanf(line, "line %d %d", &a, &b) == 2) {
            /* one assertion per unit would flood Criterion's event pipe:
             * check here, assert on the first mismatch */
            int slow = (tablen < 1024 || a % 17 == 0) ? at_linetable_addr2line(tab, tablen, first, a) : b;
            int fast = at_linetable_lookup(ranges, (size_t)nranges, first, a);
            if (slow != b || fast != b)
                cr_assert_fail("%s: %s unit %d: addr2line %d, lookup %d, co_lines() %d",
                               shape, name, a, slow, fast, b);
            nunits++;
        }
    }
    fclose(f);
    unlink(out);
    cr_assert(ncodes > 500 && nunits > 20000, "%s: fixture dumped too little (%zu codes, %zu units)",
              shape, ncodes, nunits);
}

Test(linetable, matches_co_lines_static_build, .timeout = 30)
{
    check_python("3.11", "static");
}

Test(linetable, matches_co_lines_shared_build, .timeout = 30)
{
    check_python("3.11", "shared");
}

Test(linetable, matches_co_lines_312, .timeout = 30)
{
    check_python("3.12", NULL);
}

Test(linetable, matches_co_lines_313, .timeout = 30)
{
    check_python("3.13", NULL);
}

/* ---- hand-made tables ----------------------------------------------- */

typedef struct lt_case {
    const char *what;      /* description for the message              */
    uint8_t tab[16];       /* the table                                */
    size_t len;            /* its length                               */
    int first;             /* co_firstlineno                           */
    int index;             /* code unit asked                          */
    int line;              /* expected line                            */
} lt_case_t;

ParameterizedTestParameters(linetable, hand_made)
{
    static lt_case_t cases[] = {
        { "negative index gives firstlineno", { 0x80, 0x00 }, 2, 7, -1, 7 },
        { "short form keeps the line", { 0x81, 0x00 }, 2, 7, 1, 7 },
        { "past the end is -1", { 0x80, 0x00 }, 2, 7, 1, -1 },
        { "empty table is -1", { 0 }, 0, 7, 0, -1 },
        { "one-line form adds 2", { 0xe0, 0x01, 0x02 }, 3, 10, 0, 12 },
        { "no-columns svarint +3", { 0xe8, 0x06 }, 2, 10, 0, 13 },
        { "no-columns svarint -3", { 0xe8, 0x07 }, 2, 10, 0, 7 },
        { "long form two-chunk varint", { 0xf0, 0x50, 0x03, 0x00, 0x00, 0x00 }, 6, 1, 0, 1 + 104 },
        { "no location is -1", { 0xf8 }, 1, 5, 0, -1 },
        { "no location keeps the running line", { 0xd8, 0x02, 0xf8, 0x80, 0x00 }, 5, 5, 2, 6 },
        { "length bits cover 8 units", { 0xdf, 0x02 }, 2, 5, 7, 6 },
        { "truncated varint is malformed", { 0xe8, 0x46 }, 2, 5, 0, -1 },
        { "continuation byte first is malformed", { 0x01, 0x80 }, 2, 5, 0, -1 },
    };
    return cr_make_param_array(lt_case_t, cases, sizeof cases / sizeof *cases);
}

ParameterizedTest(lt_case_t *c, linetable, hand_made)
{
    int got = at_linetable_addr2line(c->tab, c->len, c->first, c->index);
    cr_assert_eq(got, c->line, "%s: addr2line gives %d, want %d", c->what, got, c->line);
    at_line_range_t r[8];
    int n = at_linetable_decode(c->tab, c->len, c->first, r, 8);
    if (n >= 0) {
        got = at_linetable_lookup(r, (size_t)n, c->first, c->index);
        cr_assert_eq(got, c->line, "%s: lookup gives %d, want %d", c->what, got, c->line);
    } else {
        cr_assert_eq(n, -EINVAL, "%s: decode fails with %d, want -EINVAL", c->what, n);
    }
}

Test(linetable, garbage_never_reads_past_the_end)
{
    uint8_t tab[64];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < len; i++)
            tab[i] = (uint8_t)rand_r(&seed);
        /* copied to an exact-size heap block so ASan sees any overread */
        uint8_t *heap = malloc(len ? len : 1);
        cr_assert(heap, "malloc failed");
        memcpy(heap, tab, len);
        int n = at_linetable_decode(heap, len, 1, NULL, 0);
        cr_assert(n >= -EINVAL && n <= (int)len, "round %d: decode returned %d for %zu bytes", round, n, len);
        (void)at_linetable_addr2line(heap, len, 1, (int)(rand_r(&seed) % 600));
        free(heap);
    }
}
