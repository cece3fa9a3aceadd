/* SPDX-License-Identifier: MIT */
/* profiles.c - a pprof profile per watched process every --interval (see profiles.h). */
#include "agent/profiles.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/push.h"
#include "out/textout.h"
#include "remote/sampler.h"
#include "report/report_features.h"
#include "session/session.h"

#define MAX_LISTED 65536          /* profiles looked at by the size bound  */
#define SUFFIX     ".pb.gz"

void at_profiles_init(at_profiles_t *pr, const at_options_t *o)
{
    memset(pr, 0, sizeof *pr);
    pr->o = o;
    pr->quiet = o->quiet;
}

/* The interval's samples as a gzipped profile in memory; its length, 0
 * when there were none, -1 on failure. */
static long render(at_profiles_t *pr, at_watched_t *p, char **buf)
{
    char cut[PATH_MAX + 8];
    snprintf(cut, sizeof cut, "%s.cut", p->dir);
    if (mkdir(cut, 0700) < 0 && errno != EEXIST)
        return -1;
    int samples = at_bpf_cut_stacks(p->bpf, cut);
    long len = samples;
    if (samples > 0) {
        at_options_t o = *pr->o;
        o.format = AT_FMT_PPROF, o.alloc_mode = 0;
        size_t size = 0;
        FILE *f = open_memstream(buf, &size);
        int rc = f && at_pprof_write ? at_pprof_write(cut, NULL, 0, f, &o) : -ENOSYS;
        if (f && fclose(f) != 0)
            rc = rc ? rc : -EIO;
        len = rc == 0 ? (long)size : -1;
    }
    at_session_remove(cut);
    return len;
}

/* DIR/<comm>-<pid>-<UTC>.pb.gz, whole or not at all. */
static int write_file(const char *dir, const at_watched_t *p, const char *buf, size_t len, uint64_t until_s)
{
    char name[PATH_MAX], tmp[PATH_MAX + 8], stamp[32], comm[32];
    time_t t = (time_t)until_s;
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
    const at_bpf_data_t *d = at_bpf_data(p->bpf);
    size_t k = 0;
    for (const char *c = d->comm; *c && k + 1 < sizeof comm; c++)   /* a file name: no '/' */
        comm[k++] = (*c == '/' || *c == ' ') ? '_' : *c;
    comm[k] = '\0';
    snprintf(name, sizeof name, "%s/%s-%d-%s" SUFFIX, dir, comm, (int)p->pid, stamp);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    FILE *f = fopen(tmp, "wbe");
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, name) == 0)
        return 0;
    unlink(tmp);
    return -1;
}

typedef struct listed {
    char name[256];
    time_t mtime;
    off_t size;
} listed_t;

static int older_first(const void *a, const void *b)
{
    const listed_t *x = a, *y = b;
    return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

static int ours(const char *name)
{
    size_t n = strlen(name), s = strlen(SUFFIX);
    return n > s && !strcmp(name + n - s, SUFFIX);
}

/* Keep DIR's profiles under --profiles-max MB, the oldest going first. */
static void bound_size(at_profiles_t *pr, const char *dir)
{
    DIR *d = opendir(dir);
    listed_t *l = d ? malloc(MAX_LISTED * sizeof *l) : NULL;
    size_t n = 0;
    long long total = 0, limit = (long long)pr->o->profiles_max_mb << 20;
    for (struct dirent *e; l && n < MAX_LISTED && (e = readdir(d));) {
        struct stat st;
        if (!ours(e->d_name) || strlen(e->d_name) >= sizeof l->name || fstatat(dirfd(d), e->d_name, &st, 0) < 0)
            continue;
        snprintf(l[n].name, sizeof l[n].name, "%s", e->d_name);
        l[n].mtime = st.st_mtime, l[n].size = st.st_size;
        total += st.st_size;
        n++;
    }
    if (l && total > limit) {
        qsort(l, n, sizeof *l, older_first);
        for (size_t i = 0; i < n && total > limit; i++)
            if (unlinkat(dirfd(d), l[i].name, 0) == 0)
                total -= l[i].size, pr->removed++;
    }
    free(l);
    if (d)
        closedir(d);
}

static void push(at_profiles_t *pr, const at_watched_t *p, const char *buf, size_t len, uint64_t until_s)
{
    char err[256];
    const at_bpf_data_t *d = at_bpf_data(p->bpf);
    if (at_push_profile(pr->o->push_url, buf, len, p->pid, d->comm, d->version, p->interval_real_s, until_s, err,
                        sizeof err) == 0) {
        pr->pushed++;
        return;
    }
    /* one line per failure would flood a host of many processes: the
     * first, then every hundredth (the metrics count them all) */
    if (!pr->quiet && pr->push_failed % 100 == 0)
        fprintf(stderr, "archtrace agent: push to %s failed: %s\n", pr->o->push_url, err);
    pr->push_failed++;
}

void at_profiles_cut(at_profiles_t *pr, at_watched_t *p)
{
    char *buf = NULL;
    uint64_t until_s = (uint64_t)time(NULL);
    long len = render(pr, p, &buf);
    if (len < 0)
        pr->failed++;
    if (len > 0) {
        pr->bytes += (uint64_t)len;
        if (pr->o->profiles_dir) {
            if (write_file(pr->o->profiles_dir, p, buf, (size_t)len, until_s) == 0)
                pr->written++;
            else
                pr->failed++;
            bound_size(pr, pr->o->profiles_dir);
        }
        if (pr->o->push_url)
            push(pr, p, buf, (size_t)len, until_s);
    }
    free(buf);
    p->interval_ns = at_now_ns();
    p->interval_real_s = until_s;
}
