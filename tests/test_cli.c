/* SPDX-License-Identifier: MIT */
/* test_cli.c - the command-line contract of DESIGN.md. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>
#include "cli/cli.h"

static int parse(at_options_t *o, char *err, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "archtrace";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return at_cli_parse(argc, argv, o, err, 256);
}

Test(cli, run_is_the_default_command)
{
    at_options_t o;
    char err[256];
    const char *a[] = { "python3", "lab08.py", "--rate", "5", NULL };
    cr_assert_eq(parse(&o, err, a), 0, "parse failed: %s", err);
    cr_assert_eq(o.command, AT_CMD_RUN, "default command must be run");
    cr_assert_eq(o.argc, 4, "everything after COMMAND belongs to it, got %d", o.argc);
    cr_assert_str_eq(o.argv[0], "python3", "command is argv[0]");
    cr_assert_eq(o.rate_hz, 100.0, "--rate after COMMAND is the command's, not ours");
}

Test(cli, options_before_the_command_and_double_dash)
{
    at_options_t o;
    char err[256];
    const char *a[] = { "run", "--json", "out.json", "--rate=250", "--no-gil", "-o", "sess",
                        "--top", "7", "--", "-weird-cmd", NULL };
    cr_assert_eq(parse(&o, err, a), 0, "parse failed: %s", err);
    cr_assert_str_eq(o.json_file, "out.json", "--json FILE");
    cr_assert_eq(o.rate_hz, 250.0, "--rate=VALUE form");
    cr_assert(o.no_gil && !o.no_alloc, "--no-gil only");
    cr_assert_str_eq(o.output_dir, "sess", "-o DIR");
    cr_assert_eq(o.top_n, 7, "--top N");
    cr_assert_str_eq(o.argv[0], "-weird-cmd", "after -- everything is the command");
}

Test(cli, pid_commands)
{
    at_options_t o;
    char err[256];
    const char *dump[] = { "-p", "4242", "dump", NULL };
    cr_assert_eq(parse(&o, err, dump), 0, "parse failed: %s", err);
    cr_assert_eq(o.command, AT_CMD_DUMP, "dump");
    cr_assert_eq(o.pid, 4242, "-p PID");
    cr_assert(!o.locals && !o.json_file, "no --locals, no --json");
    const char *locals[] = { "-p", "4242", "dump", "--locals", "--json", "-", NULL };
    cr_assert_eq(parse(&o, err, locals), 0, "parse failed: %s", err);
    cr_assert(o.locals, "dump --locals");
    cr_assert_str_eq(o.json_file, "-", "dump --json - (stdout)");
    cr_assert(!o.asyncio, "no --asyncio");
    const char *tasks[] = { "-p", "4242", "dump", "--asyncio", "--json", "-", NULL };
    cr_assert_eq(parse(&o, err, tasks), 0, "parse failed: %s", err);
    cr_assert(o.asyncio && !o.locals, "dump --asyncio");
    const char *rec[] = { "-p", "7", "record", "-d", "2.5", "-o", "x", NULL };
    cr_assert_eq(parse(&o, err, rec), 0, "parse failed: %s", err);
    cr_assert_eq(o.command, AT_CMD_RECORD, "record");
    cr_assert_eq(o.duration_s, 2.5, "-d SECS");
    const char *rep[] = { "report", "--format", "chrome", "dir", NULL };
    cr_assert_eq(parse(&o, err, rep), 0, "parse failed: %s", err);
    cr_assert_eq(o.format, AT_FMT_CHROME, "--format chrome");
    cr_assert_str_eq(o.report_dir, "dir", "report DIR");
}

/* Inline arrays, not pointers: Criterion may run each parameter in a
 * re-executed child where the parent's pointers mean nothing. */
typedef struct bad_case {
    char args[6][16];
    char message_part[24];
} bad_case_t;

ParameterizedTestParameters(cli, rejects_bad_input)
{
    static bad_case_t cases[] = {
        { { "--rate", "-5", "python3" }, "invalid --rate" },
        { { "--rate", "abc", "python3" }, "invalid --rate" },
        { { "--format", "pdf", "python3" }, "unknown format" },
        { { "--frobnicate", "python3" }, "unknown option" },
        { { "" }, "no command" },
        { { "-p", "12" }, "needs a command" },
        { { "-p", "0", "dump" }, "invalid pid" },
        { { "-p", "x1", "dump" }, "invalid pid" },
        { { "dump" }, "needs -p" },
        { { "report" }, "session directory" },
        { { "--top", "0", "python3" }, "invalid --top" },
        { { "--json" }, "needs a value" },
        { { "--locals", "python3" }, "only goes with dump" },
        { { "-p", "7", "record", "--locals" }, "only goes with dump" },
        { { "top", "--asyncio", "--", "python3" }, "record and run" },
        { { "-p", "7", "record", "--bpf", "--asyncio" }, "no task view" },
        { { "--asyncio", "--no-sample", "python3" }, "it needs the sampler" },
    };
    return cr_make_param_array(bad_case_t, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(bad_case_t *c, cli, rejects_bad_input)
{
    at_options_t o;
    char err[256] = "";
    const char *args[7] = { NULL };
    for (int i = 0; i < 6 && c->args[i][0]; i++)
        args[i] = c->args[i];
    cr_assert_eq(parse(&o, err, args), -EINVAL, "bad input must be refused");
    cr_assert(strstr(err, c->message_part), "message '%s' should mention '%s'", err, c->message_part);
    cr_assert(!strchr(err, '\n'), "one line");
}

Test(cli, help_and_version)
{
    at_options_t o;
    char err[256];
    const char *h[] = { "--help", NULL };
    const char *v[] = { "--version", NULL };
    cr_assert_eq(parse(&o, err, h), 1, "--help asks for usage");
    cr_assert_eq(parse(&o, err, v), 2, "--version");
    cr_assert(strstr(at_cli_usage(), "archtrace -p PID dump"), "usage lists dump");
}
