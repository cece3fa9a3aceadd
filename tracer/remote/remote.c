/* SPDX-License-Identifier: MIT */
/* remote.c - process_vm_readv behind one function (see remote.h). */
#include "remote/remote.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* x86_64 user space ends below 2^47; anything above is not a real
 * pointer of the target and is refused without a system call. */
#define USER_ADDR_LIMIT 0x0000800000000000ull

void at_remote_init(at_remote_t *r, pid_t pid)
{
    r->pid = pid;
    r->calls = 0;
    r->bytes = 0;
}

static int seg_ok(const at_remote_seg_t *s)
{
    return s->addr >= 4096 && s->len <= AT_REMOTE_MAX_LEN &&
           s->addr < USER_ADDR_LIMIT && s->len <= USER_ADDR_LIMIT - s->addr;
}

/* The only process_vm_readv call.  Out of line and non-const: callers
 * fill the iovecs up to n, which GCC's -Wmaybe-uninitialized cannot see
 * through a const-pointer parameter. */
static __attribute__((noinline)) ssize_t sys_readv(at_remote_t *r, struct iovec *local,
                                                   struct iovec *remote, int n)
{
    r->calls++;
    ssize_t got = process_vm_readv(r->pid, local, (unsigned long)n, remote, (unsigned long)n, 0);
    if (got < 0)
        return -errno;
    r->bytes += (unsigned long)got;
    return got;
}

/* Nearby segments are read as one remote range: the kernel pins pages
 * and walks page tables once per remote iovec, which costs far more than
 * copying a gap.  Ranges closer than MERGE_GAP are merged while the
 * staging buffer lasts. */
#define MERGE_GAP    4096
#define STAGE_BYTES  (128 * 1024)

typedef struct range {
    uint64_t lo, hi;          /* remote [lo, hi)                          */
    size_t stage;             /* offset of lo in the staging buffer       */
} range_t;

/* Sort keys (address << 10 | segment index) by address.  Walkers hand
 * over a few runs (a chain's frames in falling addresses, thread states,
 * code headers), so this is a natural merge sort: each run found, a
 * falling one reversed, then neighbouring runs merged through tmp.  It
 * replaced qsort_r, whose comparison calls were most of the user time of
 * a 50-deep sample. */
_Static_assert(AT_REMOTE_MAX_SEGS <= 1024, "a segment index must fit the key's 10 low bits");

static void sort_keys(uint64_t *key, uint64_t *tmp, int k)
{
    int runs[AT_REMOTE_MAX_SEGS + 1], nruns = 0;
    for (int i = 0; i < k;) {
        int j = i + 1;
        if (j < k && key[j] < key[i]) {
            while (j < k && key[j] < key[j - 1])
                j++;
            for (int a = i, b = j - 1; a < b; a++, b--) {
                uint64_t t = key[a];
                key[a] = key[b];
                key[b] = t;
            }
        } else {
            while (j < k && key[j] >= key[j - 1])
                j++;
        }
        runs[nruns++] = i;
        i = j;
    }
    runs[nruns] = k;
    while (nruns > 1) {
        int out = 0;
        for (int r = 0; r < nruns; r += 2) {
            /* runs r and r + 1 (empty when r is the odd one out) */
            int lo = runs[r], mid = runs[r + 1], hi = runs[r + 2 <= nruns ? r + 2 : nruns];
            int a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = key[b] < key[a] ? key[b++] : key[a++];
            while (a < mid)
                tmp[o++] = key[a++];
            while (b < hi)
                tmp[o++] = key[b++];
            memcpy(key + lo, tmp + lo, sizeof *key * (size_t)(hi - lo));
            runs[out++] = lo;
        }
        runs[out] = k;
        nruns = out;
    }
}

/* Merge the (sorted) segments into ranges; returns how many, 0 when the
 * staging buffer would overflow (then no merging is done). */
static int merge_ranges(const at_remote_seg_t *segs, const int *order, int k, range_t *rg, int *owner)
{
    int nr = 0;
    size_t staged = 0;
    for (int i = 0; i < k; i++) {
        const at_remote_seg_t *s = &segs[order[i]];
        uint64_t end = s->addr + s->len;
        int join = nr && s->addr <= rg[nr - 1].hi + MERGE_GAP;
        size_t grow = join ? (end > rg[nr - 1].hi ? end - rg[nr - 1].hi : 0) : s->len;
        if (staged + grow > STAGE_BYTES)
            return 0;
        if (join) {
            rg[nr - 1].hi += grow;
        } else {
            rg[nr] = (range_t){ s->addr, end, staged };
            nr++;
        }
        staged += grow;
        owner[order[i]] = nr - 1;
    }
    return nr;
}

/* Read the merged ranges, then hand each segment its bytes.  A segment
 * is complete when its whole range part was read. */
static ssize_t read_merged(at_remote_t *r, const at_remote_seg_t *segs, int k, const range_t *rg, int nr,
                           const int *owner, uint8_t *stage, int *complete)
{
    struct iovec local[AT_REMOTE_MAX_SEGS], remote[AT_REMOTE_MAX_SEGS];
    if (nr <= 0 || nr > AT_REMOTE_MAX_SEGS)
        return -EINVAL;
    for (int i = 0; i < nr; i++) {
        local[i] = (struct iovec){ stage + rg[i].stage, rg[i].hi - rg[i].lo };
        remote[i] = (struct iovec){ (void *)(uintptr_t)rg[i].lo, rg[i].hi - rg[i].lo };
    }
    ssize_t got = sys_readv(r, local, remote, nr);
    if (got < 0)
        return got;
    for (int i = 0; i < k; i++) {
        const range_t *g = &rg[owner[i]];
        size_t off = g->stage + (segs[i].addr - g->lo);
        complete[i] = off + segs[i].len <= (size_t)got;
        if (complete[i])
            memcpy(segs[i].buf, stage + off, segs[i].len);
    }
    return got;
}

static int readv_direct(at_remote_t *r, const at_remote_seg_t *segs, int k, size_t *partial)
{
    struct iovec local[AT_REMOTE_MAX_SEGS], remote[AT_REMOTE_MAX_SEGS];
    if (k <= 0 || k > AT_REMOTE_MAX_SEGS)
        return -EINVAL;
    for (int i = 0; i < k; i++) {
        local[i] = (struct iovec){ segs[i].buf, segs[i].len };
        remote[i] = (struct iovec){ (void *)(uintptr_t)segs[i].addr, segs[i].len };
    }
    ssize_t got = sys_readv(r, local, remote, k);
    if (got < 0)
        return (int)got;
    int done = 0;
    size_t left = (size_t)got;
    while (done < k && left >= segs[done].len)
        left -= segs[done++].len;
    if (done == 0 && got == 0)
        return -EFAULT;
    if (partial && done < k)
        *partial = left;
    return done;
}

int at_remote_readv(at_remote_t *r, const at_remote_seg_t *segs, int n, size_t *partial)
{
    static __thread uint8_t stage[STAGE_BYTES];
    int order[AT_REMOTE_MAX_SEGS], owner[AT_REMOTE_MAX_SEGS], complete[AT_REMOTE_MAX_SEGS];
    uint64_t key[AT_REMOTE_MAX_SEGS], tmp[AT_REMOTE_MAX_SEGS];
    range_t rg[AT_REMOTE_MAX_SEGS];
    int k = 0;
    if (partial)
        *partial = 0;
    /* stop at the first bad segment: the ones before it are still read */
    while (k < n && k < AT_REMOTE_MAX_SEGS && seg_ok(&segs[k]))
        k++;
    if (k == 0)
        return n == 0 ? 0 : -EFAULT;
    if (k == 1)
        return readv_direct(r, segs, k, partial);
    for (int i = 0; i < k; i++)
        key[i] = segs[i].addr << 10 | (uint64_t)i;
    sort_keys(key, tmp, k);
    for (int i = 0; i < k; i++)
        order[i] = (int)(key[i] & 1023);
    int nr = merge_ranges(segs, order, k, rg, owner);
    if (nr == 0)
        return readv_direct(r, segs, k, partial);
    ssize_t got = read_merged(r, segs, k, rg, nr, owner, stage, complete);
    if (got < 0)
        return (int)got;
    int done = 0;
    while (done < k && complete[done])
        done++;
    return done == 0 && got == 0 ? -EFAULT : done;
}

int at_remote_read(at_remote_t *r, uint64_t addr, void *buf, size_t len)
{
    at_remote_seg_t s = { addr, buf, len };
    if (len == 0)
        return 0;
    int rc = at_remote_readv(r, &s, 1, NULL);
    return rc < 0 ? rc : rc == 1 ? 0 : -EFAULT;
}

long at_remote_read_some(at_remote_t *r, uint64_t addr, void *buf, size_t len)
{
    at_remote_seg_t s = { addr, buf, len };
    size_t part;
    if (len == 0)
        return 0;
    int rc = at_remote_readv(r, &s, 1, &part);
    return rc < 0 ? rc : rc == 1 ? (long)len : (long)part;
}

int at_remote_read_u64(at_remote_t *r, uint64_t addr, uint64_t *out)
{
    return at_remote_read(r, addr, out, sizeof *out);
}

const char *at_remote_permission_hint(void)
{
    return "run archtrace as root, or set kernel.yama.ptrace_scope=0, "
           "or grant it CAP_SYS_PTRACE";
}
