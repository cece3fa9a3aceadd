/* SPDX-License-Identifier: MIT */
/* fuzz_features.c - libFuzzer target: the feature files of a session, as `archtrace report` reads them.
 *
 * Input: one byte choosing the file (<pid>.alloc, .gil, .stacks, .bpf,
 * .imports), then its contents.  The bytes are written into a scratch
 * session directory and every renderer of that feature runs on it (text,
 * JSON, Chrome trace; collapsed and SVG for stacks) with its output going
 * to /dev/null: whatever the file holds, a renderer may refuse it with one
 * line on stderr but must not read out of bounds, leak or crash.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/ebpf.h"
#include "report/report_features.h"
#include "session/stacks.h"

#define PID 4242 /* the seeds' files name this pid */

static char dir[64];
static FILE *sink;

static void remove_dir(void)
{
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/at-fuzz-features-XXXXXX");
    if (!mkdtemp(dir) || !(sink = fopen("/dev/null", "w")))
        abort();
    atexit(remove_dir);
    /* the renderers' one-line complaints on stderr are silenced by
     * -close_fd_mask=2 (fuzz_features.options), which keeps libFuzzer's
     * and ASan's own reports */
    return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = size ? write(fd, data, size) : 0;
    close(fd);
    return n == (ssize_t)size ? 0 : -1;
}

typedef int (*text_fn)(const char *, pid_t, FILE *, const at_options_t *);
typedef int (*json_fn)(const char *, pid_t, at_json_t *, const at_options_t *);

static void render(text_fn text, json_fn json, json_fn chrome, const at_options_t *o)
{
    at_json_t j;
    if (text)
        (void)text(dir, PID, sink, o);
    if (json) {
        at_json_init(&j, sink, 0);
        at_json_obj_begin(&j);
        at_json_key(&j, "feature");
        (void)json(dir, PID, &j, o);
        at_json_obj_end(&j);
    }
    if (chrome) {
        at_json_init(&j, sink, 0);
        at_json_arr_begin(&j);
        (void)chrome(dir, PID, &j, o);
        at_json_arr_end(&j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ext[] = { "alloc", "gil", "stacks", "bpf", "imports" };
    at_options_t o = { .command = AT_CMD_REPORT, .top_n = 5, .rate_hz = 100, .alloc_depth = 1 };
    char path[128];
    if (size < 1)
        return 0;
    int which = data[0] % 5;
    o.idle = data[0] >> 7;
    snprintf(path, sizeof path, "%s/%d.%s", dir, PID, ext[which]);
    if (write_file(path, data + 1, size - 1) < 0)
        abort();
    switch (which) {
    case 0:
        render(at_alloc_report_text, at_alloc_report_json, at_alloc_chrome, &o);
        break;
    case 1:
        render(at_gil_report_text, at_gil_report_json, at_gil_chrome, &o);
        break;
    case 2:
        render(at_stacks_report_text, at_stacks_report_json, NULL, &o);
        (void)at_stacks_write_collapsed(dir, sink, &o);
        (void)at_stacks_write_svg(dir, sink, &o);
        break;
    case 3:
        render(at_bpf_report_text, at_bpf_report_json, at_bpf_chrome, &o);
        break;
    default:
        render(at_imports_report_text, at_imports_report_json, at_imports_chrome, &o);
        break;
    }
    unlink(path);
    return 0;
}
