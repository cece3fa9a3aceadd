/* SPDX-License-Identifier: MIT */
/* main.c - archtrace's entry: parse the command line, dispatch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "report/alloc_diff.h"
#include "report/report.h"
#include "cli/run.h"
#include "cli/fail_if.h"
#include "session/launch.h"

#define AT_VERSION "0.1.0"

/* Provided by cli/cmd_dump.c, cmd_record.c, top/ and agent/; weak so that a build
 * without it still runs `run` and `report`. */
extern int at_cmd_dump(const at_options_t *o) __attribute__((weak));
extern int at_cmd_record(const at_options_t *o) __attribute__((weak));
extern int at_cmd_top(const at_options_t *o) __attribute__((weak));
extern int at_cmd_agent(const at_options_t *o) __attribute__((weak));

static int unavailable(const char *what)
{
    fprintf(stderr, "archtrace: %s is not available in this build\n", what);
    return AT_EXIT_FAILED;
}

static int cmd_report(const at_options_t *o)
{
    if (o->diff_a || o->leaks) {
        int drc = o->diff_a ? at_alloc_diff(o) : at_alloc_leaks(o);
        return drc == 0 ? 0 : drc == -ENOENT ? AT_EXIT_NO_SESSION : AT_EXIT_FAILED;
    }
    int rc = at_report_render(o->report_dir, o, -1);
    return rc == 0 ? at_fail_if_status(o, o->report_dir, 0) : rc == -ENODATA ? AT_EXIT_NO_SESSION : AT_EXIT_FAILED;
}

int main(int argc, char **argv)
{
    at_options_t o;
    char err[256] = "";
    at_launch_note_signals();
    int rc = at_cli_parse(argc, argv, &o, err, sizeof(err));
    if (rc == 1) {
        fputs(at_cli_usage(), stdout);
        return 0;
    }
    if (rc == 2) {
        printf("archtrace %s (CPython 3.11 to 3.13)\n", AT_VERSION);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s\n", err);
        return AT_EXIT_FAILED;
    }
    switch (o.command) {
    case AT_CMD_RUN:
        return at_cmd_run(&o);
    case AT_CMD_REPORT:
        return cmd_report(&o);
    case AT_CMD_DUMP:
        return at_cmd_dump ? at_cmd_dump(&o) : unavailable("dump");
    case AT_CMD_RECORD:
        return at_cmd_record ? at_cmd_record(&o) : unavailable("record");
    case AT_CMD_TOP:
        return at_cmd_top ? at_cmd_top(&o) : unavailable("top");
    case AT_CMD_AGENT:
        return at_cmd_agent ? at_cmd_agent(&o) : unavailable("agent");
    }
    return AT_EXIT_FAILED;
}
