/* SPDX-License-Identifier: MIT */
/* frame_walk_threads.c - the walker's thread list: interpreters, thread states and the GIL, batch-read with each thread's last chain.
 *
 * A sample starts here (at_walker_threads): one call reads _PyRuntime,
 * the GIL, every thread state, every current frame pointer and each
 * thread's chain as the last sample left it, and every link is checked
 * against the list remembered; the plain walk, one interpreter and one
 * thread state at a time, decides where the batch cannot. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "remote/frame_walk_int.h"

/* ---- threads --------------------------------------------------------- */

typedef struct gil_view {
    uint64_t holder;         /* the GIL's last_holder (3.11: in _PyRuntime,
                              * 3.12+: main interp->ceval.gil)             */
    int locked;              /* and .locked                                 */
    uint64_t switches;       /* and .switch_number                          */
} gil_view_t;

/* A thread list was read along with g: it is the last one now. */
static void note_switches(at_walker_t *w, const gil_view_t *g)
{
    w->sw_before = w->sw_last;
    w->sw_before_ok = w->sw_known;
    w->sw_last = g->switches;
    w->holder_last = g->holder;
    w->sw_known = 1;
}

/* Thread t from its thread state tb as read.  Where the frame pointer is
 * in the thread state itself (3.13), it came with it; before, it is
 * behind the cframe pointer, read later (or with the next batch). */
static void put_thread(const at_walker_t *w, at_thread_t *t, uint64_t ts, const uint8_t *tb, const gil_view_t *g)
{
    t->tstate = ts;
    t->cframe = w->fp_in_tstate ? ts : at_get_u64(tb, w->L.tstate_cframe);
    t->frame = w->fp_in_tstate ? at_get_u64(tb, w->fp_off) : 0;
    t->frame_known = (uint8_t)w->fp_in_tstate;
    t->prefetch = -1;
    t->tid = (uint32_t)at_get_u64(tb, w->L.tstate_native_thread_id);
    t->gil = ts == g->holder && g->locked > 0;
    t->idle = 0;
    t->reuse = 0;
    t->stopped = 0;
}

/* Append the thread states of one interpreter; returns the new count. */
static int list_interp(at_walker_t *w, const uint8_t *ib, uint64_t interp, const gil_view_t *g,
                       at_thread_t *out, int n, int cap)
{
    uint8_t tb[TSTATE_READ_MAX];
    uint64_t ts = at_get_u64(ib, w->L.interp_tstate_head - w->interp_first);
    for (int k = 0; ts && n < cap && k < AT_MAX_THREADS; k++) {
        for (int i = 0; i < n; i++)
            if (out[i].tstate == ts)
                return n; /* a cycle */
        if (at_remote_read(&w->proc->mem, ts, tb, w->tstate_read) < 0)
            break;
        if (at_get_u64(tb, w->L.tstate_interp) != interp)
            break; /* torn or freed while we read: stop here */
        put_thread(w, &out[n++], ts, tb, g);
        ts = at_get_u64(tb, w->L.tstate_next);
    }
    return n;
}

/* The GIL from the struct _gil_runtime_state read at gb. */
static void gil_from(const at_walker_t *w, const uint8_t *gb, gil_view_t *g)
{
    g->holder = at_get_u64(gb, w->L.gil_last_holder);
    g->locked = at_get_i32(gb, w->L.gil_locked);
    g->switches = at_get_u64(gb, w->L.gil_switch_number);
}

/* Bytes of the GIL read: through switch_number. */
static size_t gil_read_size(const at_walker_t *w)
{
    return (size_t)w->L.gil_switch_number + 8;
}

/* The GIL of a _PyRuntime read rt (3.11), or of one read on its own at
 * w->gil_addr (3.12+: gb, zeros while the address is not known). */
static void gil_of(const at_walker_t *w, const uint8_t *rt, const uint8_t *gb, gil_view_t *g)
{
    if (w->gil_in_rt)
        gil_from(w, rt + (w->L.rt_gil - w->rt_first), g);
    else if (w->gil_addr)
        gil_from(w, gb, g);
    else
        *g = (gil_view_t){ 0 };
}

/* 3.12+: where the main interpreter's GIL is (interp->ceval.gil, a
 * pointer the runtime sets once at start-up), for the reads that
 * follow; the interpreter list names it in 3.11's _PyRuntime instead. */
static int find_gil(at_walker_t *w, const uint8_t *rt, uint8_t *gb)
{
    uint64_t main_interp = at_get_u64(rt, w->L.rt_interpreters_main - w->rt_first), gil = 0;
    if (w->gil_in_rt)
        return 0;
    int rc = at_remote_read_u64(&w->proc->mem, main_interp + (uint64_t)w->L.interp_ceval_gil, &gil);
    if (rc == -ESRCH)
        return rc;
    w->gil_addr = rc == 0 ? gil : 0;
    if (w->gil_addr && at_remote_read(&w->proc->mem, w->gil_addr, gb, gil_read_size(w)) < 0)
        w->gil_addr = 0;
    return 0;
}

/* The plain walk: interpreters, then each one's thread states. */
static int list_plain(at_walker_t *w, at_thread_t *out, int cap)
{
    uint8_t rt[RT_READ_MAX], ib[INTERP_READ_MAX], gb[GIL_READ_MAX];
    at_remote_t *mem = &w->proc->mem;
    gil_view_t g;
    int rc = at_remote_read(mem, w->proc->runtime + (uint64_t)w->rt_first, rt, w->rt_read), n = 0, ninterp = 0;
    if (rc == 0)
        rc = find_gil(w, rt, gb);
    if (rc < 0)
        return rc;
    uint64_t interp = at_get_u64(rt, w->L.rt_interpreters_head - w->rt_first), first = interp;
    gil_of(w, rt, gb, &g);
    if (!interp)
        return -EAGAIN;
    note_switches(w, &g);
    for (; interp && ninterp < AT_MAX_INTERPRETERS && n < cap; ninterp++) {
        if ((rc = at_remote_read(mem, interp + (uint64_t)w->interp_first, ib, w->interp_read)) < 0)
            return rc == -ESRCH ? rc : n;
        if (at_get_u64(ib, w->L.interp_runtime - w->interp_first) != w->proc->runtime)
            return ninterp == 0 ? -EPROTO : n;
        n = list_interp(w, ib, interp, &g, out, n, cap);
        interp = at_get_u64(ib, w->L.interp_next - w->interp_first);
    }
    /* remember a single interpreter's list for the next batch read */
    w->list_n = ninterp == 1 && n <= SPEC_THREADS ? n : 0;
    w->list_interp = first;
    for (int i = 0; i < w->list_n; i++) {
        w->list_ts[i] = out[i].tstate;
        w->list_cframe[i] = out[i].cframe;
    }
    return n;
}

/* Check the batch: every link must be the one remembered.  The thread
 * states are a doubly linked list (pystate.c, 3.11 to 3.13, keeps prev and next
 * both, under the head lock): a thread added goes in at the head and
 * sets the old head's prev, one removed changes its neighbours' links,
 * so the interpreter's head pointer need not be read (one remote range
 * less per sample).  A new interpreter changes _PyRuntime's head. */
static int list_links_hold(const at_walker_t *w, const uint8_t *rt)
{
    int n = w->list_n;
    const at_pylayout_t *L = &w->L;
    if (at_get_u64(rt, L->rt_interpreters_head - w->rt_first) != w->list_interp)
        return 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *tb = w->spec + (size_t)i * w->tstate_read;
        uint64_t next = i + 1 < n ? w->list_ts[i + 1] : 0, prev = i > 0 ? w->list_ts[i - 1] : 0;
        if (at_get_u64(tb, L->tstate_interp) != w->list_interp || at_get_u64(tb, L->tstate_next) != next ||
            at_get_u64(tb, L->tstate_prev) != prev)
            return 0;
    }
    return 1;
}

/* Plan the read of each listed thread's last chain (from its current
 * frame on) after segs[0..nseg), within the segment and buffer budget.
 * Returns the new segment count. */
static int plan_prefetch(at_walker_t *w, at_remote_seg_t *segs, int nseg)
{
    size_t used = 0;
    w->pre_n = 0;
    for (int i = 0; i < w->list_n && w->pre_n < PRE_THREADS; i++) {
        const chain_t *c = chain_find(w, w->list_ts[i]);
        if (!c || c->n <= 0 || w->list_guess[i])
            continue;
        int m = c->n;
        size_t bytes = (size_t)m * (FRAME_READ + w->code_read);
        if (nseg + 2 * m > AT_REMOTE_MAX_SEGS || used + bytes > PRE_BYTES)
            break;
        w->list_pre[i] = (int16_t)w->pre_n;
        nseg += at_walker_spec_plan(&w->pre[w->pre_n++], w, c, 0, m, w->pre_buf + used, segs + nseg, nseg);
        used += bytes;
    }
    return nseg;
}

/* The batch: _PyRuntime (and, 3.12+, the GIL), every thread state,
 * every current frame pointer (3.11/3.12: behind the cframe; 3.13: in
 * the thread state, read with it) and every thread's last chain at last
 * sample's addresses, in one call.  Returns the count, -EAGAIN when the
 * plain walk must decide, or -ESTALE when a guess (see below) was wrong
 * and the batch must be read again without guessing. */
static int list_batch(at_walker_t *w, at_thread_t *out, int cap, int guess)
{
    at_remote_seg_t segs[AT_REMOTE_MAX_SEGS];
    uint8_t rt[RT_READ_MAX], gb[GIL_READ_MAX];
    uint64_t cur[SPEC_THREADS];
    int n = w->list_n, fixed = w->gil_in_rt ? 1 : 2, nfp = w->fp_in_tstate ? 0 : n;
    if (n == 0 || n > cap || (!w->gil_in_rt && !w->gil_addr))
        return -EAGAIN;
    segs[0] = (at_remote_seg_t){ w->proc->runtime + (uint64_t)w->rt_first, rt, w->rt_read };
    if (!w->gil_in_rt)
        segs[1] = (at_remote_seg_t){ w->gil_addr, gb, gil_read_size(w) };
    for (int i = 0; i < n; i++) {
        uint64_t ts = w->list_ts[i];
        /* guess that no switch happened since the last two lists (the
         * guess is checked below): then the frames of a thread whose kept
         * stack is tagged with that count are not read (its frame pointer
         * is pointed into _PyRuntime's range, which costs nothing) */
        w->list_guess[i] = guess && w->sw_known && w->sw_before_ok && w->sw_before == w->sw_last &&
                           reusable(w, ts, w->list_cframe[i], w->sw_last, w->holder_last) != NULL;
        segs[fixed + i] = (at_remote_seg_t){ ts, w->spec + (size_t)i * w->tstate_read, w->tstate_read };
        if (nfp)
            segs[fixed + n + i] = w->list_guess[i]
                ? (at_remote_seg_t){ w->proc->runtime + (uint64_t)w->rt_first, &cur[i], 8 }
                : (at_remote_seg_t){ w->list_cframe[i] + (uint64_t)w->fp_off, &cur[i], 8 };
        w->list_pre[i] = -1;
    }
    int nseg = plan_prefetch(w, segs, fixed + n + nfp);
    int got = at_remote_readv(&w->proc->mem, segs, nseg, NULL);
    w->pre_got = got;
    if (got == -ESRCH)
        return got;
    if (got < fixed + n || !list_links_hold(w, rt)) {
        w->pre_n = 0;
        return -EAGAIN;
    }
    gil_view_t g;
    int wrong = 0;
    gil_of(w, rt, gb, &g);
    note_switches(w, &g);
    for (int i = 0; i < n; i++) {
        put_thread(w, &out[i], w->list_ts[i], w->spec + (size_t)i * w->tstate_read, &g);
        if (reusable(w, out[i].tstate, out[i].cframe, g.switches, g.holder)) {
            out[i].reuse = 1;   /* see keep_for_reuse */
        } else if (w->list_guess[i]) {
            wrong = 1;          /* its frames were not read */
        } else if (w->fp_in_tstate) {
            out[i].prefetch = w->list_pre[i]; /* its frame came with the thread state */
        } else if (fixed + n + i < got && out[i].cframe == w->list_cframe[i]) {
            /* the frame pointer read is right only if cframe did not move */
            out[i].frame = cur[i];
            out[i].frame_known = 1;
            out[i].prefetch = w->list_pre[i];
        }
        w->list_cframe[i] = out[i].cframe;
    }
    /* Two calls for each thread guessed wrong cost more than one more
     * batch (the GIL changes hands every 5-10 ms: a tick in 5-10 at
     * 1 kHz) */
    if (wrong)
        w->pre_n = 0;
    return wrong ? -ESTALE : n;
}

int at_walker_threads(at_walker_t *w, at_thread_t *out, int cap)
{
    w->clock++;
    w->now_ns = mono_ns();
    w->pre_n = 0;
    if (w->clock % FD_SWEEP_EVERY == 0)
        at_walker_sweep_fds(w);
    int n = list_batch(w, out, cap, 1);
    if (n == -ESTALE)
        n = list_batch(w, out, cap, 0);
    return n == -EAGAIN ? list_plain(w, out, cap) : n;
}
