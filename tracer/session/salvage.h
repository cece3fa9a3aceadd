/* SPDX-License-Identifier: MIT */
/* salvage.h - what of a session can still be read, file by file.
 *
 * A session is damaged when the target or archtrace was killed mid-write,
 * the disk filled up, or someone edited it.  Each per-process file
 * (<pid>.seg, .alloc, .gil, .imports, .stacks, .bpf) is checked on its own
 * with the reader's own validator, so a damaged segment does not hide an
 * intact .alloc, and the report can say exactly what was lost: "seg
 * truncated at 100 of 5528 bytes".  Checking never trusts the bytes: every
 * validator bounds-checks what it reads (the fuzz targets cover them).
 */
#ifndef AT_SALVAGE_H
#define AT_SALVAGE_H
#include <stddef.h>
#include <sys/types.h>

#define AT_SALVAGE_NOTES     8      /* damage notes kept per process       */
#define AT_SALVAGE_NOTE_LEN  160    /* bytes per note                      */

/* The per-process files a session may hold (bits of at_salvage_pid_t). */
enum {
    AT_SALVAGE_SEG = 1u << 0,
    AT_SALVAGE_ALLOC = 1u << 1,
    AT_SALVAGE_GIL = 1u << 2,
    AT_SALVAGE_IMPORTS = 1u << 3,
    AT_SALVAGE_STACKS = 1u << 4,
    AT_SALVAGE_BPF = 1u << 5,
};

/* One process's files. */
typedef struct at_salvage_pid {
    pid_t pid;                /* the key of its files (session.h)          */
    unsigned present;         /* AT_SALVAGE_* files found                  */
    unsigned readable;        /* ... of them that passed their check       */
    unsigned execed;          /* its segment says it exec'd (not damage)   */
    int nnotes;               /* damage notes                              */
    char notes[AT_SALVAGE_NOTES][AT_SALVAGE_NOTE_LEN]; /* "seg truncated at ..." */
} at_salvage_pid_t;

/* A session directory's health. */
typedef struct at_salvage {
    int meta;                 /* at_meta_read's result: 0, -ENOENT, -EINVAL */
    size_t others;            /* other entries (not ours)                  */
    at_salvage_pid_t *pids;   /* by pid, ascending                         */
    size_t count;
    size_t damaged_files;     /* files present but unreadable              */
} at_salvage_t;

/* Check every file of dir (nothing printed).  0 or -errno when dir itself
 * cannot be read. */
int at_salvage_scan(const char *dir, at_salvage_t *s);
void at_salvage_free(at_salvage_t *s);

/* The entry of pid, or NULL. */
const at_salvage_pid_t *at_salvage_find(const at_salvage_t *s, pid_t pid);

/* Nothing that looks like a session: no session.meta, no <pid>.* file. */
int at_salvage_is_empty(const at_salvage_t *s);

/* Some process file exists, yet none of them could be read; or there is
 * none and session.meta is damaged too. */
int at_salvage_nothing_readable(const at_salvage_t *s);

/* Name of a file bit ("seg", "alloc", ...). */
const char *at_salvage_kind_name(unsigned bit);

/* The kinds of `bits` as " .alloc .gil" into buf. */
void at_salvage_kinds(unsigned bits, char *buf, size_t n);

#endif
