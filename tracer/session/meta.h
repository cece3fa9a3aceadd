/* SPDX-License-Identifier: MIT */
/* meta.h - session.meta: what archtrace itself knows about a session. */
#ifndef AT_META_H
#define AT_META_H
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define AT_META_MAX_ARGS 64

typedef struct at_meta {
    int complete;                 /* archtrace finished writing          */
    int exit_status;              /* the command's status, -1 unknown    */
    pid_t root_pid;               /* the process archtrace started       */
    uint64_t start_realtime_ns;   /* when the session began              */
    double wall_s;                /* archtrace's wall time, -1 unknown   */
    char kind[16];                /* "run" or "record"                   */
    int argc;
    char *argv[AT_META_MAX_ARGS]; /* the command, into args              */
    char args[4096];
} at_meta_t;

/* Write <dir>/session.meta (replacing it).  0 or -errno. */
int at_meta_write(const char *dir, const at_meta_t *m);

/* Read it; -ENOENT when absent, -EINVAL when corrupt. */
int at_meta_read(const char *dir, at_meta_t *m);

/* Parse session.meta from an open stream (the reader, and the fuzzer). */
int at_meta_parse(FILE *f, at_meta_t *m);

/* Fill argv/args from a command line. */
void at_meta_set_argv(at_meta_t *m, int argc, char **argv);

#endif
