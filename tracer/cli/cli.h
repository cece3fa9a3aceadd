/* SPDX-License-Identifier: MIT */
/* cli.h - parse archtrace's command line into at_options_t. */
#ifndef AT_CLI_H
#define AT_CLI_H
#include <stddef.h>
#include "cli/options.h"

/* Fill `o` from argv (argv[0] is the program).  0 on success, 1 when the
 * caller should print help and exit 0, 2 for --version, or -EINVAL with a
 * one-line lowercase reason in err. */
int at_cli_parse(int argc, char **argv, at_options_t *o, char *err, size_t err_size);

/* Set the defaults (rate 100 Hz, top 5, ...). */
void at_options_defaults(at_options_t *o);

/* "json" -> AT_FMT_JSON; -1 when unknown. */
int at_format_from_name(const char *name);

/* The usage text. */
const char *at_cli_usage(void);

#endif
