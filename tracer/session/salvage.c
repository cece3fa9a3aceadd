/* SPDX-License-Identifier: MIT */
/* salvage.c - check each file of a session on its own (see salvage.h). */
#include "session/salvage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_format.h"
#include "session/bpf_data.h"
#include "gil_format.h"
#include "imports_format.h"
#include "session/meta.h"
#include "session/procs.h"
#include "session/session.h"
#include "session/stacks.h"

#define MAX_CHECK_BYTES (1ull << 30)  /* larger files are left to the reader */

/* The readers' validators, weak like the features themselves: a build
 * without a feature leaves its files unchecked (present, not readable). */
extern int at_alloc_parse(unsigned char *buf, size_t size, at_alloc_data_t *d, char *why, size_t n)
    __attribute__((weak));
extern void at_alloc_free(at_alloc_data_t *d) __attribute__((weak));
extern int at_imports_decode(const void *raw, size_t size, at_imp_view_t *v, char *why, size_t why_size)
    __attribute__((weak));
extern int at_stacks_load(const char *dir, pid_t pid, at_stacks_t **out, char *err, size_t errlen)
    __attribute__((weak));
extern void at_stacks_free(at_stacks_t *s) __attribute__((weak));
extern int at_bpf_data_load(const char *dir, pid_t pid, at_bpf_data_t *d, char *err, size_t errlen)
    __attribute__((weak));
extern void at_bpf_data_free(at_bpf_data_t *d) __attribute__((weak));

static const char *const kind_names[] = { "seg", "alloc", "gil", "imports", "stacks", "bpf" };
#define NKINDS (sizeof kind_names / sizeof *kind_names)

const char *at_salvage_kind_name(unsigned bit)
{
    for (unsigned i = 0; i < NKINDS; i++)
        if (bit == 1u << i)
            return kind_names[i];
    return "?";
}

void at_salvage_kinds(unsigned bits, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < NKINDS && used < n; i++)
        if (bits & 1u << i) {
            int w = snprintf(buf + used, n - used, "%s.%s", used ? " " : "", kind_names[i]);
            used += w > 0 ? (size_t)w : 0;
        }
}

static void note(at_salvage_pid_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(at_salvage_pid_t *p, const char *fmt, ...)
{
    if (p->nnotes >= AT_SALVAGE_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->notes[p->nnotes++], AT_SALVAGE_NOTE_LEN, fmt, ap);
    va_end(ap);
}

/* The whole of <dir>/<pid>.<kind>, zero-padded to at least `min` bytes
 * (validators may look at a header before checking the size).  0 or
 * -errno; -EFBIG past MAX_CHECK_BYTES. */
static int read_whole(const char *dir, pid_t pid, const char *kind, size_t min,
                      unsigned char **buf, size_t *size)
{
    FILE *f = at_session_open_file(dir, pid, kind);
    if (!f)
        return -errno;
    struct stat st;
    int rc = fstat(fileno(f), &st) < 0 ? -errno : 0;
    if (rc == 0 && (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size > MAX_CHECK_BYTES))
        rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
    size_t len = rc == 0 ? (size_t)st.st_size : 0;
    *buf = rc == 0 ? calloc(1, len > min ? len : min ? min : 1) : NULL;
    if (rc == 0 && !*buf)
        rc = -ENOMEM;
    size_t got = 0;
    while (rc == 0 && got < len) {
        size_t n = fread(*buf + got, 1, len - got, f);
        if (n == 0)
            break;          /* shrank meanwhile: check what is there */
        got += n;
    }
    fclose(f);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    *size = got;
    return rc;
}

static int check_seg(const char *dir, at_salvage_pid_t *p)
{
    FILE *f = at_session_open_file(dir, p->pid, "seg");
    if (!f) {
        note(p, "seg unreadable: %s", strerror(errno));
        return -EIO;
    }
    /* only the header is read back: whatever follows is the shim's */
    at_seg_header_t *h = calloc(1, sizeof *h);
    at_proc_t *proc = malloc(sizeof *proc);
    size_t size = h ? fread(h, 1, sizeof *h, f) : 0;
    fclose(f);
    int rc = h && proc ? at_proc_decode(h, size, proc) : -ENOMEM;
    if (rc == 0 && proc->pid != at_key_pid(p->pid))
        rc = -EINVAL;
    if (rc == 0)
        p->execed = proc->state == AT_SEG_EXECED;
    else if (rc == -ENOMEM)
        note(p, "seg not checked: out of memory");
    else if (size >= sizeof h->magic && h->magic != AT_SEG_MAGIC)
        note(p, "seg corrupt: not a segment (bad magic, %zu bytes)", size);
    else if (size < sizeof *h)
        note(p, "seg truncated at %zu of %zu bytes", size, sizeof *h);
    else
        note(p, "seg corrupt: not a valid segment header");
    free(proc);
    free(h);
    return rc;
}

static int check_alloc(const char *dir, at_salvage_pid_t *p)
{
    if (!at_alloc_parse || !at_alloc_free)
        return -ENOSYS;
    unsigned char *buf;
    size_t size;
    char why[200] = "";
    int rc = read_whole(dir, p->pid, "alloc", sizeof(at_alloc_header_t), &buf, &size);
    if (rc < 0) {
        note(p, "alloc unreadable: %s", strerror(-rc));
        return rc;
    }
    at_alloc_data_t d;
    rc = at_alloc_parse(buf, size, &d, why, sizeof why);   /* d owns buf */
    at_alloc_free(&d);
    if (rc < 0)
        note(p, "alloc %s", why);
    return rc;
}

static int check_gil(const char *dir, at_salvage_pid_t *p)
{
    unsigned char *buf;
    size_t size;
    const char *why = NULL;
    int rc = read_whole(dir, p->pid, "gil", sizeof(at_gil_header_t), &buf, &size);
    if (rc < 0) {
        note(p, "gil unreadable: %s", strerror(-rc));
        return rc;
    }
    rc = at_gil_check(buf, size, &why);
    if (rc < 0) {
        if (why && !strncmp(why, "truncated", 9))
            note(p, "gil truncated at %zu of %zu bytes", size, (size_t)AT_GIL_FILE_SIZE);
        else
            note(p, "gil %s", why ? why : "corrupt");
    }
    free(buf);
    return rc;
}

static int check_imports(const char *dir, at_salvage_pid_t *p)
{
    if (!at_imports_decode)
        return -ENOSYS;
    unsigned char *buf;
    size_t size;
    char why[160] = "";
    int rc = read_whole(dir, p->pid, AT_IMP_SUFFIX, sizeof(at_imp_header_t), &buf, &size);
    if (rc < 0) {
        note(p, "imports unreadable: %s", strerror(-rc));
        return rc;
    }
    at_imp_view_t v;
    rc = at_imports_decode(buf, size, &v, why, sizeof why);
    if (rc < 0)
        note(p, "imports %s", why);
    free(buf);
    return rc;
}

static int check_stacks(const char *dir, at_salvage_pid_t *p)
{
    if (!at_stacks_load || !at_stacks_free)
        return -ENOSYS;
    at_stacks_t *s = NULL;
    char why[200] = "";
    int rc = at_stacks_load(dir, p->pid, &s, why, sizeof why);
    if (s)
        at_stacks_free(s);
    if (rc < 0)
        note(p, "stacks %s", why[0] ? why : strerror(-rc));
    return rc;
}

static int check_bpf(const char *dir, at_salvage_pid_t *p)
{
    if (!at_bpf_data_load || !at_bpf_data_free)
        return -ENOSYS;
    at_bpf_data_t *d = calloc(1, sizeof *d);
    char why[200] = "";
    int rc = d ? at_bpf_data_load(dir, p->pid, d, why, sizeof why) : -ENOMEM;
    if (d) {
        at_bpf_data_free(d);
        free(d);
    }
    if (rc < 0)
        note(p, "bpf %s", why[0] ? why : strerror(-rc));
    return rc;
}

typedef int (*check_fn)(const char *, at_salvage_pid_t *);
static const check_fn checks[NKINDS] = { check_seg, check_alloc, check_gil,
                                         check_imports, check_stacks, check_bpf };

/* "<key>.<kind>" -> key (session.h) and kind bit, else 0. */
static pid_t parse_name(const char *name, unsigned *bit)
{
    const char *kind;
    pid_t key = at_session_parse_name(name, &kind);
    for (unsigned i = 0; key && i < NKINDS; i++)
        if (!strcmp(kind, kind_names[i])) {
            *bit = 1u << i;
            return key;
        }
    return 0;
}

static at_salvage_pid_t *entry(at_salvage_t *s, size_t *cap, pid_t pid)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->pids[i].pid == pid)
            return &s->pids[i];
    if (s->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        at_salvage_pid_t *np = realloc(s->pids, ncap * sizeof *np);
        if (!np)
            return NULL;
        s->pids = np;
        *cap = ncap;
    }
    at_salvage_pid_t *p = &s->pids[s->count++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    return p;
}

static int by_pid(const void *a, const void *b)
{
    const at_salvage_pid_t *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

int at_salvage_scan(const char *dir, at_salvage_t *s)
{
    memset(s, 0, sizeof *s);
    s->meta = -ENOENT;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    int rc = 0, have_meta = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        unsigned bit = 0;
        pid_t pid = parse_name(e->d_name, &bit);
        struct stat st;
        if (pid) {
            at_salvage_pid_t *p = entry(s, &cap, pid);
            if (!p) {
                rc = -ENOMEM;
            } else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       !S_ISREG(st.st_mode)) {
                /* a FIFO would block the reader, a link is never followed */
                note(p, "%s is not a regular file, not read", at_salvage_kind_name(bit));
                s->damaged_files++;
            } else {
                p->present |= bit;
            }
        } else if (!strcmp(e->d_name, "session.meta")) {
            have_meta = 1;
        } else if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            s->others++;
        }
    }
    closedir(d);
    if (rc < 0) {
        at_salvage_free(s);
        return rc;
    }
    if (have_meta) {
        at_meta_t *m = malloc(sizeof *m);
        FILE *f = m ? at_session_open_file(dir, 0, "session.meta") : NULL;
        s->meta = !m ? -ENOMEM : f ? at_meta_parse(f, m) : -errno;
        if (f)
            fclose(f);
        free(m);
    }
    for (size_t i = 0; i < s->count; i++) {
        at_salvage_pid_t *p = &s->pids[i];
        for (unsigned k = 0; k < NKINDS; k++) {
            if (!(p->present & 1u << k))
                continue;
            int r = checks[k](dir, p);
            if (r == 0)
                p->readable |= 1u << k;
            else if (r != -ENOSYS)
                s->damaged_files++;
        }
    }
    if (s->count)
        qsort(s->pids, s->count, sizeof *s->pids, by_pid);
    return 0;
}

void at_salvage_free(at_salvage_t *s)
{
    free(s->pids);
    memset(s, 0, sizeof *s);
}

const at_salvage_pid_t *at_salvage_find(const at_salvage_t *s, pid_t pid)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->pids[i].pid == pid)
            return &s->pids[i];
    return NULL;
}

int at_salvage_is_empty(const at_salvage_t *s)
{
    return s->meta == -ENOENT && s->count == 0;
}

int at_salvage_nothing_readable(const at_salvage_t *s)
{
    /* no process files: a session of no Python process is fine, one of
     * only a damaged session.meta (a full disk at start) has nothing */
    if (s->count == 0)
        return s->meta < 0;
    for (size_t i = 0; i < s->count; i++)
        if (s->pids[i].readable)
            return 0;
    return 1;
}
