/* SPDX-License-Identifier: MIT */
/* thread_names.h - threading names of a sampled process's threads, kept
 * with its stacks (<pid>.stacks "tname TID NAME" lines) so reports and
 * flame graphs can say "thread 4843 "worker-0"" rather than a bare id. */
#ifndef AT_THREAD_NAMES_H
#define AT_THREAD_NAMES_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>


#define AT_PY_NAME_MAX 64         /* bytes kept of a name, NUL included (UTF-8) */
#define AT_THREAD_NAMES_MAX 512   /* threads named; later ones stay bare */

#define AT_THREAD_NAMES_EVERY_NS 1000000000ull /* re-read the names this often   */
#define AT_THREAD_NAMES_NEW_NS   50000000ull   /* ... or this soon for a new thread */

typedef struct at_thread_name_entry {
    uint32_t tid;
    uint8_t misses;               /* readings that found it without a name */
    char name[AT_PY_NAME_MAX];    /* "" while it has none                  */
} at_thread_name_entry_t;

typedef struct at_thread_names {
    at_thread_name_entry_t *v;    /* AT_THREAD_NAMES_MAX, on first use    */
    uint32_t n;
    uint64_t active;              /* threading._active, once found        */
    uint64_t read_ns;             /* last read from the target            */
} at_thread_names_t;

enum { AT_NAMES_NOT_DUE, AT_NAMES_IF_NEW_THREAD, AT_NAMES_DUE };

void at_thread_names_free(at_thread_names_t *t);
/* Name tid (a later name replaces an earlier one).  0 or -ENOMEM. */
int at_thread_names_set(at_thread_names_t *t, uint32_t tid, const char *name);
/* tid's name, or NULL (never named, or looked up and has none). */
const char *at_thread_names_get(const at_thread_names_t *t, uint32_t tid);
/* Whether tid has a name, or two readings found it without one (the
 * first may have come before a new thread entered threading._active). */
int at_thread_names_known(const at_thread_names_t *t, uint32_t tid);
/* Count a reading that found tid running (it may have no name). */
void at_thread_names_looked_up(at_thread_names_t *t, uint32_t tid);
/* Whether to read the names now: AT_NAMES_DUE once a second,
 * AT_NAMES_IF_NEW_THREAD after AT_THREAD_NAMES_NEW_NS (read then only if
 * a running thread is not known: a short-lived thread would end before
 * the next reading), else AT_NAMES_NOT_DUE.  Cheap: no lookups. */
int at_thread_names_due(const at_thread_names_t *t, uint64_t now_ns);
/* "thread TID" or "thread TID "NAME"" into buf. */
const char *at_thread_names_label(const at_thread_names_t *t, uint32_t tid, char *buf, size_t n);
/* The file lines ("tname\tTID\tNAME", escaped) and reading one back
 * (fields after the tag, unescaped in place): 0 or -1 if malformed. */
void at_thread_names_save(const at_thread_names_t *t, FILE *f);
int at_thread_names_load(at_thread_names_t *t, const char *tid, char *name);

#endif
