/* SPDX-License-Identifier: MIT */
/* imports_format.h - <pid>.imports: the import chain of one Python process.
 *
 * Written by the shim (preload/imports.c) through a shared mapping, read
 * by the session model (tracer/session/imports_model.c).  One file of fixed size:
 *
 *     header (256 B) | records[capacity] (128 B each) | string arena
 *
 * A record is one import attempt (a call of importlib's _find_and_load:
 * an import statement, __import__, importlib.import_module), started in
 * time order.  Strings (module names, class qualnames, paths) live in the
 * arena and are referenced by (offset, length); equal strings are stored
 * once.  The shim bumps `count` and `arena_used` before it writes what they
 * cover, and sets AT_IMP_F_DONE last, so a file cut short by a SIGKILL
 * still reads consistently: an unfinished record is reported as such.
 * Everything is little-endian, native x86_64 layout; the reader checks
 * every size, count and reference and refuses the whole file on the first
 * inconsistency (at_imports_decode).
 */
#ifndef AT_IMPORTS_FORMAT_H
#define AT_IMPORTS_FORMAT_H
#include <stddef.h>
#include <stdint.h>

#define AT_IMP_MAGIC       0x504d4954u  /* "TIMP" little-endian           */
#define AT_IMP_VERSION     1u
#define AT_IMP_SUFFIX      "imports"    /* <session>/<pid>.imports        */

#define AT_IMP_CAPACITY    8192u        /* records per process            */
#define AT_IMP_ARENA_SIZE  (2u << 20)   /* bytes of strings per process   */
#define AT_IMP_STR_MAX     1024u        /* longest single string kept     */
#define AT_IMP_MAX_CONSULTED 16u        /* finder names kept per record   */
#define AT_IMP_NONE        0xffffffffu  /* no record / no string          */

/* header.state */
#define AT_IMP_STATE_RUNNING 1u
#define AT_IMP_STATE_EXITED  2u         /* on_exit ran                    */

/* header.start_phase: when recording began */
#define AT_IMP_PHASE_INIT  1u           /* at the first import of start-up */
#define AT_IMP_PHASE_RUN   2u           /* at cpython.run_* (start-up missed) */

/* record.flags */
#define AT_IMP_F_DONE        0x0001u    /* end_ns is valid                 */
#define AT_IMP_F_OK          0x0002u    /* returned a module               */
#define AT_IMP_F_SPEC        0x0004u    /* a meta path finder returned a spec */
#define AT_IMP_F_AUDITED     0x0008u    /* raised the `import` audit event (import
                                           statement, __import__, C API); clear:
                                           importlib.import_module/_gcd_import */
#define AT_IMP_F_NAMESPACE   0x0010u    /* namespace package               */
#define AT_IMP_F_TRUNCATED   0x0020u    /* a string was cut or dropped     */
#define AT_IMP_F_NO_FIND     0x0040u    /* no finder ran: the module showed up in
                                           sys.modules meanwhile (parent import,
                                           another thread)                 */
#define AT_IMP_F_FIND_RAISED 0x0080u    /* the finder in `finder` raised   */
#define AT_IMP_F_UNOBSERVED  0x0100u    /* the finder search could not be
                                           observed (tracing suspended)    */

/* A string in the arena; off == AT_IMP_NONE means null (absent). */
typedef struct at_imp_str {
    uint32_t off;                   /* byte offset into the arena        */
    uint32_t len;                   /* bytes, no NUL counted (none stored) */
} at_imp_str_t;

typedef struct at_imp_record {
    uint64_t start_ns;              /* CLOCK_MONOTONIC at _find_and_load entry */
    uint64_t end_ns;                /* at its return; valid with F_DONE  */
    uint64_t children_ns;           /* sum of the direct children's cumulative */
    uint64_t find_ns;               /* time inside _find_spec (the finders) */
    uint32_t tid;                   /* OS thread id of the importing thread */
    uint32_t enclosing;             /* index of the import this one runs inside
                                       (same thread), AT_IMP_NONE at top level */
    uint16_t depth;                 /* nesting depth on its thread, 0 = top */
    uint16_t flags;                 /* AT_IMP_F_*                        */
    uint16_t n_consulted;           /* finders asked before the winner (all,
                                       even beyond those kept in `consulted`) */
    uint16_t reserved;
    at_imp_str_t module;            /* absolute module name              */
    at_imp_str_t parent;            /* __name__ of the code that imported it */
    at_imp_str_t finder;            /* qualname of the meta path finder that
                                       returned the spec                 */
    at_imp_str_t path_finder;       /* path entry finder's qualname      */
    at_imp_str_t path_entry;        /* its sys.path / __path__ entry     */
    at_imp_str_t loader;            /* qualname of spec.loader           */
    at_imp_str_t origin;            /* spec.origin                       */
    at_imp_str_t error;             /* exception type name when it failed */
    at_imp_str_t consulted;         /* qualnames, NUL-separated, in order */
    uint64_t spare;                 /* pads the record to 128 bytes      */
} at_imp_record_t;

typedef struct at_imp_header {
    uint32_t magic;                 /* AT_IMP_MAGIC                      */
    uint32_t version;               /* AT_IMP_VERSION                    */
    uint32_t header_size;           /* sizeof(at_imp_header_t)           */
    uint32_t record_size;           /* sizeof(at_imp_record_t)           */
    uint32_t capacity;              /* records the file has room for     */
    uint32_t arena_size;            /* bytes of the string arena         */
    uint32_t count;                 /* records started (<= capacity)     */
    uint32_t arena_used;            /* arena bytes written               */
    uint64_t dropped_records;       /* imports not recorded: table full or
                                       nesting deeper than the shim tracks */
    uint64_t dropped_strings;       /* strings cut or left out (arena full) */
    uint64_t t0_ns;                 /* CLOCK_MONOTONIC when recording began */
    int32_t pid;                    /* the process                       */
    uint32_t state;                 /* AT_IMP_STATE_*                    */
    uint32_t start_phase;           /* AT_IMP_PHASE_*                    */
    uint32_t reserved0;
    uint64_t find_windows;          /* finder searches observed          */
    uint64_t profile_events;        /* profile callbacks inside them     */
    uint8_t reserved[168];          /* pads the header to 256 bytes      */
} at_imp_header_t;

_Static_assert(sizeof(at_imp_record_t) == 128, "record layout is part of the format");
_Static_assert(sizeof(at_imp_header_t) == 256, "header layout is part of the format");

/* Total size of a file with this capacity and arena. */
static inline size_t at_imp_file_size(uint32_t capacity, uint32_t arena_size)
{
    return sizeof(at_imp_header_t) + (size_t)capacity * sizeof(at_imp_record_t) + arena_size;
}

/* ---- reader (tracer/session/imports_model.c) ------------------------- */

/* A validated view of a raw file: pointers into the caller's buffer. */
typedef struct at_imp_view {
    const at_imp_header_t *h;
    const at_imp_record_t *rec;     /* h->count records                  */
    const char *arena;              /* h->arena_used bytes               */
} at_imp_view_t;

/* Check a raw <pid>.imports image and fill v.  0, or -EINVAL with a
 * one-line reason in why (which is always written). */
int at_imports_decode(const void *raw, size_t size, at_imp_view_t *v, char *why, size_t why_size);

/* Read <dir>/<pid>.imports into *buf (malloc'd, caller frees) and decode
 * it.  0, -ENOENT (no file), or -EINVAL/-EIO with the reason on stderr. */
int at_imports_load(const char *dir, int pid, void **buf, at_imp_view_t *v);

#endif
