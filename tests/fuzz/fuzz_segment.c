/* SPDX-License-Identifier: MIT */
/* fuzz_segment.c - libFuzzer target: <pid>.seg headers and session.meta,
 * the two files of a session archtrace itself reads back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session/meta.h"
#include "session/procs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_proc_t *p = malloc(sizeof(*p));
    if (at_proc_decode(data, size, p) == 0) {
        /* everything decoded must be bounded and terminated */
        if (strlen(p->version) >= sizeof(p->version) || p->argc > AT_PROC_MAX_ARGS)
            abort();
        for (int i = 0; i < p->argc; i++)
            if (strlen(p->argv[i]) > AT_SEG_ARGV_MAX)
                abort();
        (void)at_proc_wall_s(p);
    }
    free(p);

    FILE *f = fmemopen((void *)data, size, "r");
    if (f) {
        at_meta_t *m = malloc(sizeof(*m));
        if (at_meta_parse(f, m) == 0 && m->argc > AT_META_MAX_ARGS)
            abort();
        free(m);
        fclose(f);
    }
    return 0;
}
