/* SPDX-License-Identifier: MIT */
/* tsv.h - the escaping shared by archtrace's tab-separated session files
 * (<pid>.stacks, <pid>.bpf): names from a target may hold any byte, so
 * backslash, tab, newline, CR and other control bytes are written as
 * \\ \t \n \r \xNN and a line always splits cleanly at its tabs. */
#ifndef AT_TSV_H
#define AT_TSV_H
#include <stdio.h>

/* Write s escaped. */
void at_tsv_put(FILE *f, const char *s);

/* Undo at_tsv_put in place; 0, or -1 on a malformed escape (a corrupt file). */
int at_tsv_unescape(char *s);

#endif
