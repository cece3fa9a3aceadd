/* SPDX-License-Identifier: MIT */
/* test_html.c - `--format html`: one page, rendered by a real headless Chromium.
 *
 * A workload with two threads fighting for the GIL, 32 MiB kept on one
 * line and a marker is recorded, rendered as HTML and loaded in Debian's
 * chromium (--dump-dom: the DOM after the page's script ran).  The
 * script must have finished without an error, built the summary tables
 * with the figures of the JSON report (the two threads by name, the
 * allocating line at the top), drawn the GIL timeline, and the page must
 * embed its three pictures and nothing from the network.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define WORKLOAD                                                                                        \
    "import sys, threading\n"                                                                           \
    "keep = [bytearray(1 << 20) for _ in range(32)]\n"                                                  \
    "sys.audit('archtrace.snapshot', 'kept')\n"                                                         \
    "def spin():\n"                                                                                     \
    "    n = 0\n"                                                                                       \
    "    for i in range(2000000): n += i\n"                                                         \
    "ts = [threading.Thread(target=spin, name='spinner-%d' % i) for i in range(2)]\n"                   \
    "[t.start() for t in ts]; [t.join() for t in ts]\n"

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, html, page_renders_in_chromium_with_the_figures, .timeout = 120)
{
    if (at_test_shf(NULL, NULL, "command -v chromium >/dev/null") != 0)
        cr_skip_test("no chromium (make deps installs Debian's)");
    char *dir = at_test_tmpdir(), *dom = NULL, *page = NULL, path[1024];
    snprintf(path, sizeof path, "%s/w.py", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(WORKLOAD, f);
    fclose(f);
    int rc = at_test_shf(NULL, NULL, "'%s' -q -o '%s/s' '%s' '%s'", at_test_archtrace(), dir,
                         at_test_python_or_skip(shape), path);
    cr_assert_eq(rc, 0, "the workload under archtrace: exit %d", rc);
    rc = at_test_shf(NULL, NULL, "'%s' -q report --format html --out '%s/r.html' '%s/s'", at_test_archtrace(), dir, dir);
    cr_assert_eq(rc, 0, "--format html: exit %d", rc);
    snprintf(path, sizeof path, "%s/r.html", dir);
    page = at_test_shf(&dom, NULL, "timeout 90 chromium --headless --no-sandbox --disable-gpu --dump-dom 'file://%s' "
                       "2>/dev/null", path) == 0 ? dom : NULL;
    char *html = NULL, *remote = NULL;
    at_test_shf(&html, NULL, "cat '%s'", path);
    /* references to the network outside the embedded data: URIs (base64
     * may spell anything) and the SVG namespace */
    at_test_shf(&remote, NULL, "python3 -c \"import re, sys; t = re.sub(r'data:[^\\\"]*', '', open(sys.argv[1]).read()); "
                "print(len([u for u in re.findall(r'https?://[^\\\"\\s]*', t) if not u.startswith('http://www.w3.org/')]))\" "
                "'%s'", path);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    cr_assert(page, "chromium did not render the page");
    cr_expect(strstr(dom, "data-ready=\"1\""), "the page's script did not finish:\n%.2000s", dom);
    cr_expect(strstr(dom, "<pre id=\"errors\"></pre>"), "script errors:\n%.2000s", strstr(dom, "id=\"errors\""));
    cr_expect(strstr(dom, "<table id=\"processes\""), "no process table");
    cr_expect(strstr(dom, "<td>spinner-0</td>") && strstr(dom, "<td>spinner-1</td>"), "the GIL table has no spinners");
    cr_expect(strstr(dom, "/w.py:2</td><td>32.0 MiB</td>") || strstr(dom, "/w.py:2</td><td>32.1 MiB</td>"),
              "the peak table does not start with the 32 MiB line:\n%.3000s", strstr(dom, "<table id=\"alloc-"));
    cr_expect(strstr(dom, "id=\"gil-timeline\"") && strstr(dom, "fill=\"#d62728\""), "no GIL timeline with waits");
    int objects = 0;
    for (const char *p = html; p && (p = strstr(p, "<object type=\"image/svg+xml\"")); p++)
        objects++;
    cr_expect_eq(objects, 3, "%d pictures embedded (CPU and memory flame graphs, memory plot)", objects);
    cr_expect(remote && atoi(remote) == 0 && remote[0] == '0', "the page refers to the network (%s)", remote);
    free(dir), free(dom), free(html), free(remote);
}
