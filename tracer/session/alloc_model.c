/* SPDX-License-Identifier: MIT */
/* alloc_model.c - read and validate <pid>.alloc, the shim's allocation
 * tables (common/alloc_format.h), for the report and `top`.
 *
 * The file is read whole (only the parts in use) and validated once
 * (at_alloc_parse): every index and offset a reader uses later has been
 * checked against the caps and the file size.  Allocations are only seen
 * from inside the process: the shim is this model's one source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "alloc_format.h"
#include "session/session.h"

/* ---- parsing ------------------------------------------------------------ */

static int fail(char *why, size_t n, const char *msg, unsigned long long a, unsigned long long b)
{
    snprintf(why, n, msg, a, b);
    return -EINVAL;
}

static int str_ok(const at_alloc_data_t *d, uint32_t off)
{
    uint16_t len;
    if ((uint64_t)off + 3 > d->str_used)
        return 0;
    memcpy(&len, d->strs + off, sizeof(len));
    return (uint64_t)off + 2 + len + 1 <= d->str_used && d->strs[off + 2 + len] == '\0';
}

static int check_layout(const at_alloc_header_t *h, size_t size, char *why, size_t n)
{
    if (h->header_size != sizeof(at_alloc_header_t) || h->site_size != sizeof(at_alloc_site_t) ||
        h->group_size != sizeof(at_alloc_group_t) || h->snap_size != sizeof(at_alloc_snap_t))
        return fail(why, n, "record sizes do not match this archtrace (header %llu, site %llu)",
                    h->header_size, h->site_size);
    if (h->site_cap >= (1u << 18) || h->group_cap > (1u << 24) || h->frame_cap > (1u << 26) ||
        h->snap_cap < AT_ALLOC_SNAP_MARKER0 || h->snap_cap > 4096 || h->str_cap > (1ull << 31))
        return fail(why, n, "table capacities out of range (sites %llu, snapshots %llu)",
                    h->site_cap, h->snap_cap);
    at_alloc_header_t copy = *h;
    uint64_t total = at_alloc_layout(&copy);
    if (copy.off_sites != h->off_sites || copy.off_groups != h->off_groups ||
        copy.off_frames != h->off_frames || copy.off_strs != h->off_strs ||
        copy.off_snaps != h->off_snaps || total != h->file_size)
        return fail(why, n, "region offsets do not match the capacities (%llu bytes declared, %llu expected)",
                    h->file_size, total);
    if (h->file_size > size)
        return fail(why, n, "truncated: %llu bytes, the header declares %llu", size, h->file_size);
    if (h->nsites > h->site_cap || h->ngroups > h->group_cap || h->nframes > h->frame_cap ||
        h->str_used > h->str_cap)
        return fail(why, n, "fill counters exceed the tables (%llu sites, %llu groups)", h->nsites,
                    h->ngroups);
    return 0;
}

static int check_tables(const at_alloc_data_t *d, char *why, size_t n)
{
    for (uint32_t i = 0; i < d->ngroups; i++)
        if (!str_ok(d, d->groups[i].file) || !str_ok(d, d->groups[i].func) ||
            d->groups[i].kind > AT_ALLOC_GROUP_NATIVE)
            return fail(why, n, "group %llu has a bad name offset or kind (%llu)", i, d->groups[i].kind);
    for (uint32_t i = 0; i < d->nsites; i++) {
        const at_alloc_site_t *s = &d->sites[i];
        if (s->group >= d->ngroups || s->kind >= AT_ALLOC_KINDS)
            return fail(why, n, "site %llu points at group %llu", i, s->group);
        if (s->nframes > 1 && ((uint64_t)s->frames + s->nframes - 1 > d->nframes))
            return fail(why, n, "site %llu has frames past the frame table (%llu)", i, s->frames);
    }
    for (uint32_t i = 0; i < d->nframes; i++)
        if (d->frames[i] >= d->ngroups)
            return fail(why, n, "frame %llu points at group %llu", i, d->frames[i]);
    for (uint32_t i = 0; i < d->h->snap_cap; i++) {
        const at_alloc_snap_t *sn = &d->snaps[i];
        if (!sn->seq || (sn->seq & 1))
            continue;
        if (sn->n > AT_ALLOC_SNAP_TOP)
            return fail(why, n, "snapshot %llu has %llu entries", i, sn->n);
        for (uint32_t k = 0; k < sn->n; k++)
            if (sn->top[k].group >= d->ngroups)
                return fail(why, n, "snapshot %llu points at group %llu", i, sn->top[k].group);
    }
    return 0;
}

int at_alloc_parse(unsigned char *buf, size_t size, at_alloc_data_t *d, char *why, size_t n)
{
    memset(d, 0, sizeof(*d));
    d->buf = buf;
    d->size = size;
    const at_alloc_header_t *h = (const at_alloc_header_t *)buf;
    if (size < sizeof(at_alloc_header_t))
        return fail(why, n, "truncated: %llu bytes, the header alone needs %llu", size,
                    sizeof(at_alloc_header_t));
    if (h->magic != AT_ALLOC_MAGIC)
        return fail(why, n, "not an allocation file (magic %#llx, expected %#llx)", h->magic, AT_ALLOC_MAGIC);
    if (h->version != AT_ALLOC_VERSION)
        return fail(why, n, "format version %llu, this archtrace reads %llu", h->version, AT_ALLOC_VERSION);
    int rc = check_layout(h, size, why, n);
    if (rc < 0)
        return rc;
    d->h = h;
    d->sites = (const at_alloc_site_t *)(buf + h->off_sites);
    d->groups = (const at_alloc_group_t *)(buf + h->off_groups);
    d->frames = (const uint32_t *)(buf + h->off_frames);
    d->strs = (const char *)buf + h->off_strs;
    d->snaps = (const at_alloc_snap_t *)(buf + h->off_snaps);
    d->nsites = h->nsites;
    d->ngroups = h->ngroups;
    d->nframes = h->nframes;
    d->str_used = h->str_used;
    return check_tables(d, why, n);
}

void at_alloc_free(at_alloc_data_t *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

/* Read [off, off + len) of the file into the same place of buf, clamped
 * to the file: what is not read stays zero. */
static int read_range(int fd, unsigned char *buf, size_t size, uint64_t off, uint64_t len)
{
    if (off >= size)
        return 0;
    if (len > size - off)
        len = size - off;
    while (len) {
        ssize_t n = pread(fd, buf + off, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* Read the header and then only the used part of each table: the file
 * is mostly reserved, untouched space (calloc gives zero pages for it). */
static int read_used(int fd, unsigned char **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    unsigned char *buf = calloc(1, size > sizeof(at_alloc_header_t) ? size : sizeof(at_alloc_header_t));
    if (!buf)
        return -ENOMEM;
    const at_alloc_header_t *h = (const at_alloc_header_t *)buf;
    int rc = read_range(fd, buf, size, 0, sizeof(*h));
    if (rc == 0 && size >= sizeof(*h) && h->magic == AT_ALLOC_MAGIC && h->version == AT_ALLOC_VERSION) {
        uint64_t ranges[][2] = {
            { h->off_sites, (uint64_t)h->nsites * sizeof(at_alloc_site_t) },
            { h->off_groups, (uint64_t)h->ngroups * sizeof(at_alloc_group_t) },
            { h->off_frames, (uint64_t)h->nframes * sizeof(uint32_t) },
            { h->off_strs, h->str_used },
            { h->off_snaps, (uint64_t)h->snap_cap * sizeof(at_alloc_snap_t) },
        };
        for (size_t i = 0; rc == 0 && i < sizeof(ranges) / sizeof(ranges[0]); i++)
            rc = read_range(fd, buf, size, ranges[i][0], ranges[i][1]);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = size;
    return 0;
}

int at_alloc_load(const char *dir, pid_t pid, at_alloc_data_t *d)
{
    char stem[32];
    memset(d, 0, sizeof(*d));
    FILE *f = at_session_open_file(dir, pid, "alloc");
    if (!f) {
        int e = errno;
        if (e != ENOENT)
            fprintf(stderr, "archtrace: %s.alloc: cannot open: %s\n", at_key_name(pid, stem, sizeof stem), strerror(e));
        return -e;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_used(fileno(f), &buf, &len);
    fclose(f);
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s.alloc: cannot read: %s\n", at_key_name(pid, stem, sizeof stem), strerror(-rc));
        return rc;
    }
    char why[200];
    rc = at_alloc_parse(buf, len, d, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s.alloc: %s\n", at_key_name(pid, stem, sizeof stem), why);
        at_alloc_free(d);
    }
    return rc;
}

const char *at_alloc_str(const at_alloc_data_t *d, uint32_t off)
{
    return str_ok(d, off) ? d->strs + off + 2 : "?";
}

const char *at_alloc_group_func(const at_alloc_data_t *d, uint32_t g)
{
    const at_alloc_group_t *grp = &d->groups[g];
    if (grp->flags & AT_ALLOC_G_NOFRAME)
        return "[no Python frame: C thread or start-up]";
    if (grp->flags & AT_ALLOC_G_OVERFLOW)
        return "[archtrace: table full, the rest summed]";
    return at_alloc_str(d, grp->func);
}

const char *at_alloc_group_file(const at_alloc_data_t *d, uint32_t g)
{
    return d->groups[g].flags & (AT_ALLOC_G_NOFRAME | AT_ALLOC_G_OVERFLOW) ? "" : at_alloc_str(d, d->groups[g].file);
}
