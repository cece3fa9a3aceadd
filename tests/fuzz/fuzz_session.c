/* SPDX-License-Identifier: MIT */
/* fuzz_session.c - libFuzzer target: `archtrace report` over a damaged session.
 *
 * Input: one byte, then a file's contents.  The byte's low bits choose
 * the file (<pid>.seg, .alloc, .gil, .imports, .stacks, .bpf,
 * session.meta or .memory); bit 7 adds a valid segment for the pid (when the file is
 * not the segment itself), bit 6 a valid session.meta.  The scratch
 * session is checked file by file (salvage.c) and rendered as text and
 * JSON to /dev/null: the report may name the damage or refuse the session
 * (-ENODATA), but must not read out of bounds, leak or crash.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session/meta.h"
#include "report/report.h"
#include "session/salvage.h"
#include "segment_format.h"

#define PID 4242 /* the seeds' files name this pid */

static char dir[64];

static void remove_dir(void)
{
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/at-fuzz-session-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir);
    /* the text report and the readers' complaints go to stderr, silenced
     * by -close_fd_mask=2 (fuzz_session.options) */
    return 0;
}

static void write_file(const char *name, const void *data, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

static void write_valid_seg(void)
{
    at_seg_header_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->magic = AT_SEG_MAGIC;
    h->version = AT_SEG_VERSION;
    h->size = sizeof *h;
    h->state = AT_SEG_EXITED;
    h->pid = PID;
    h->ppid = 1;
    h->start_mono_ns = 1000;
    h->end_mono_ns = 2000;
    h->supported = 1;
    h->build = AT_BUILD_STATIC;
    memcpy(h->python_version, "3.11.2", 7);
    memcpy(h->argv, "python3\0-c\0pass\0", 16);
    h->argv_len = 16;
    write_file("4242.seg", h, sizeof *h);
    free(h);
}

static void write_valid_meta(void)
{
    at_meta_t *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    char *argv[] = { "python3", "-c", "pass", NULL };
    m->complete = 1;
    m->root_pid = PID;
    m->wall_s = 0.5;
    snprintf(m->kind, sizeof m->kind, "run");
    at_meta_set_argv(m, 3, argv);
    if (at_meta_write(dir, m) < 0)
        abort();
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "4242.seg", "4242.alloc", "4242.gil", "4242.imports",
                                         "4242.stacks", "4242.bpf", "session.meta", "4242.memory" };
    if (size < 1)
        return 0;
    unsigned which = (data[0] & 0x3f) % 8;
    if ((data[0] & 0x80) && which != 0)
        write_valid_seg();
    if ((data[0] & 0x40) && which != 6)
        write_valid_meta();
    write_file(names[which], data + 1, size - 1);

    at_salvage_t s;
    if (at_salvage_scan(dir, &s) == 0) {
        if (s.count > 1 || (s.count == 1 && s.pids[0].pid != PID))
            abort();
        for (size_t i = 0; i < s.count; i++)
            if (s.pids[i].nnotes > AT_SALVAGE_NOTES)
                abort();
        at_salvage_free(&s);
    }
    at_options_t o = { .command = AT_CMD_REPORT, .top_n = 5, .rate_hz = 100, .alloc_depth = 1,
                       .json_file = "/dev/null" };
    int rc = at_report_render(dir, &o, -1);
    if (rc > 0)
        abort();

    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    return 0;
}
