/* SPDX-License-Identifier: MIT */
/* frame_walk.c - the _PyInterpreterFrame chain of one thread of a CPython 3.11-3.13 process (see frame_walk.h), and the walker's lifetime.
 *
 * A chain is read as the last sample left it when it can be (one call),
 * then frame by frame; the walk is kept for the next sample.  The
 * thread list is frame_walk_threads.c's, code objects are
 * frame_walk_code.c's, and the /proc task state frame_walk_idle.c's.
 *
 * Every offset is a field of the target's layout table (w->L, a copy in
 * the walker: one load where py311.h had a constant), chosen once when
 * the process was opened; buffers are sized for the largest version. */
#include "remote/frame_walk_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the code cache, per frame ----------------------------------------- */

/* The cached code object at addr when its header need not be read again:
 * it read back the same within CODE_RECHECK_NS.  A code object is freed
 * only when no frame runs it, so between checks a frame naming addr runs
 * that same object unless it was freed and another allocated in its
 * place; the caller also checks that the frame's instruction pointer
 * lies inside it (code_runs), which most such impostors fail.  This is
 * what takes code headers off the per-sample reads (they were a third of
 * the remote ranges of a 10-frame sample). */
static const code_entry_t *code_fresh(const at_walker_t *w, uint64_t addr)
{
    const code_entry_t *e = code_slot(w, addr);
    return addr && e->addr == addr && w->now_ns - e->checked_ns < CODE_RECHECK_NS ? e : NULL;
}

/* The frame's last instruction as an index into e's code units: the
 * same arithmetic on 3.11/3.12's prev_instr and 3.13's instr_ptr
 * (_PyInterpreterFrame_LASTI), whose line CPython shows either way. */
static int64_t frame_lasti(const at_pylayout_t *L, uint64_t code, const uint8_t *fr)
{
    /* unsigned: a wild pointer wraps instead of overflowing */
    uint64_t instr = at_get_u64(fr, L->iframe_instr), first = code + (uint64_t)L->code_code_adaptive;
    return (int64_t)(instr - first) / CODE_UNIT;
}

/* The code object frame fr runs, or NO_CODE_CSTACK for a frame owned by
 * the C stack (3.12+): the entry frame each eval-loop call pushes, whose
 * f_code is the interpreter's trampoline (3.12) or None (3.13), nothing
 * to show or to read.  3.13's f_executable is any object: code_lookup
 * checks its type before it is used as code. */
static uint64_t frame_code(const at_walker_t *w, const uint8_t *fr)
{
    const at_pylayout_t *L = &w->L;
    if (L->frame_owned_by_cstack != AT_PYLAYOUT_NONE && fr[L->iframe_owner] == L->frame_owned_by_cstack)
        return NO_CODE_CSTACK;
    return at_get_u64(fr, L->iframe_code);
}

/* Whether frame fr may be resolved through the cache alone (a C-stack
 * frame needs no code at all). */
static int code_runs(const at_walker_t *w, uint64_t code, const uint8_t *fr)
{
    if (code == NO_CODE_CSTACK)
        return frame_code(w, fr) == NO_CODE_CSTACK;
    const code_entry_t *e = code_fresh(w, code);
    int64_t lasti = frame_lasti(&w->L, code, fr);
    return e && frame_code(w, fr) == code && lasti >= -1 && lasti < e->size;
}

/* ---- frames ---------------------------------------------------------- */

/* A frame owned by the C stack (3.12+) ends the frames of one eval-loop
 * call, as 3.11's is_entry frame does: kept in the walk (the chains
 * remember it) as an entry, hidden like an incomplete frame. */
static void add_cstack_frame(at_walker_t *w, at_pyframe_t *f)
{
    *f = (at_pyframe_t){ .sym = w->sym_unknown, .line = -1, .entry = 1, .skip = 1 };
}

/* One frame into st: its code resolved from hdr (the header just read),
 * or from the cache when hdr is NULL (the caller checked code_runs). */
static void resolve_frame(at_walker_t *w, at_pyframe_t *f, uint64_t code, const uint8_t *hdr,
                          const uint8_t *fr);

static void add_frame(at_walker_t *w, at_pystack_t *st, uint64_t code, const uint8_t *hdr,
                      const uint8_t *fr)
{
    at_pyframe_t *f = &st->frames[st->n++];
    if (code == NO_CODE_CSTACK)
        add_cstack_frame(w, f);
    else
        resolve_frame(w, f, code, hdr, fr);
}

/* Frame fr's function and line into f. */
static void resolve_frame(at_walker_t *w, at_pyframe_t *f, uint64_t code, const uint8_t *hdr,
                          const uint8_t *fr)
{
    const at_pylayout_t *L = &w->L;
    const code_entry_t *e = hdr ? at_walker_code_lookup(w, code, hdr) : code_fresh(w, code);
    int owner = fr[L->iframe_owner];
    int64_t lasti = frame_lasti(L, code, fr);
    f->entry = L->iframe_is_entry != AT_PYLAYOUT_NONE && fr[L->iframe_is_entry] != 0;
    f->skip = 0;
    f->line = -1;
    f->sym = w->sym_unknown;
    if (!e)
        return;
    f->sym = e->sym;
    /* _PyFrame_IsIncomplete: a frame still in its prologue is hidden */
    f->skip = owner != L->frame_owned_by_generator && lasti < e->firsttraceable;
    /* lasti as CPython computes it; -1 (before the first instruction)
     * gives co_firstlineno like PyCode_Addr2Line(code, -2) */
    if (lasti >= -1 && lasti < e->size && e->nranges >= 0)
        f->line = at_linetable_lookup(e->ranges, (size_t)e->nranges, e->firstlineno, (int)lasti);
}

static int seen_before(const uint64_t *addrs, int n, uint64_t a)
{
    for (int i = 0; i < n; i++)
        if (addrs[i] == a)
            return 1;
    return 0;
}

/* ---- the remembered chains -------------------------------------------- */

static chain_t *chain_store(at_walker_t *w, uint64_t tstate, const uint64_t *frames, const uint64_t *codes, int n)
{
    chain_t *c = chain_find(w, tstate);
    if (!c) { /* the least recently used slot (free ones have used 0) */
        c = &w->chains[0];
        for (int i = 1; i < SPEC_CHAINS; i++)
            if (w->chains[i].used < c->used)
                c = &w->chains[i];
    }
    c->tstate = tstate;
    c->used = w->clock;
    c->n = n;
    memcpy(c->frames, frames, sizeof *frames * (size_t)n);
    memcpy(c->codes, codes, sizeof *codes * (size_t)n);
    c->tag_ok = 0;
    return c;
}

/* Index the old chain's frame addresses for O(1) "where was this frame". */
static void index_chain(at_walker_t *w, const chain_t *c)
{
    w->index_gen++;
    for (int i = 0; c && i < c->n; i++) {
        uint32_t h = (uint32_t)(c->frames[i] * 0x9e3779b97f4a7c15ull >> 40) & (CHAIN_SLOTS - 1);
        while (w->index_stamp[h] == w->index_gen)
            h = (h + 1) & (CHAIN_SLOTS - 1);
        w->index_stamp[h] = w->index_gen;
        w->index_key[h] = c->frames[i];
        w->index_pos[h] = (uint16_t)i;
    }
}

static int old_index(const at_walker_t *w, uint64_t addr)
{
    uint32_t h = (uint32_t)(addr * 0x9e3779b97f4a7c15ull >> 40) & (CHAIN_SLOTS - 1);
    for (; w->index_stamp[h] == w->index_gen; h = (h + 1) & (CHAIN_SLOTS - 1))
        if (w->index_key[h] == addr)
            return w->index_pos[h];
    return -1;
}

/* ---- reading a remembered chain in one call ------------------------------ */
/* Segments for old->frames[from..from+m) into segs (room for 2m), laid
 * out in buf (room for m * (FRAME_READ + w->code_read)).  Returns how many. */
int at_walker_spec_plan(spec_view_t *v, const at_walker_t *w, const chain_t *old, int from, int m, uint8_t *buf,
                        at_remote_seg_t *segs, int seg0)
{
    uint64_t distinct[SPEC_DEDUP];
    int nd = 0;
    *v = (spec_view_t){ .w = w, .old = old, .tstate = old->tstate, .from = from, .m = m, .seg0 = seg0, .buf = buf };
    for (int i = 0; i < m; i++)
        segs[i] = (at_remote_seg_t){ old->frames[from + i], buf + (size_t)i * FRAME_READ, FRAME_READ };
    for (int i = 0; i < m; i++) {
        uint64_t code = old->codes[from + i];
        int u = 0;
        if (code == NO_CODE_CSTACK || code_fresh(v->w, code)) {
            v->slot[i] = NO_HEADER;
            continue;
        }
        while (u < nd && distinct[u] != code)
            u++;
        if (u == nd) {
            u = v->nslots++;
            if (nd < SPEC_DEDUP)
                distinct[nd++] = code;
            segs[m + u] = (at_remote_seg_t){ code, buf + (size_t)m * FRAME_READ + (size_t)u * w->code_read, w->code_read };
        }
        v->slot[i] = (uint16_t)u;
    }
    return m + v->nslots;
}

/* ---- walking one chain -------------------------------------------------- */

/* State of one thread's walk. */
typedef struct walk {
    at_walker_t *w;
    at_pystack_t *st;
    const chain_t *old;             /* its chain last time, or NULL        */
    const spec_view_t *pre;         /* old read with the thread list, or NULL */
    int pre_got;                    /* segments of that read completed     */
    int speculated;                 /* a batch read of old was made        */
    uint64_t addr;                  /* next frame to take                  */
    int have;                       /* fr holds the frame at addr          */
    uint8_t fr[FRAME_READ];
    uint64_t frames[AT_MAX_STACK_DEPTH]; /* this walk's frame addresses    */
    uint64_t codes[AT_MAX_STACK_DEPTH];  /* and their code objects         */
} walk_t;

static void take_frame(walk_t *k, uint64_t addr, uint64_t code, const uint8_t *hdr, const uint8_t *fr)
{
    k->frames[k->st->n] = addr;
    k->codes[k->st->n] = code;
    add_frame(k->w, k->st, code, hdr, fr);
}

/* Take the batch-read frames from old->frames[j] on while every link
 * checks out (read completely, not seen, same code, previous = the next
 * remembered frame).  Leaves k->addr (and k->fr when k->have) where
 * plain reads go on. */
static void spec_take(walk_t *k, const spec_view_t *v, int got, int j)
{
    const chain_t *old = v->old;
    int room = AT_MAX_STACK_DEPTH - k->st->n;
    for (int i = j - v->from; i < v->m && room-- > 0; i++) {
        const uint8_t *fr = v->buf + (size_t)i * FRAME_READ;
        int cached = v->slot[i] == NO_HEADER;
        const uint8_t *hdr = cached ? NULL : v->buf + (size_t)v->m * FRAME_READ + (size_t)v->slot[i] * v->w->code_read;
        uint64_t addr = old->frames[v->from + i], code = old->codes[v->from + i];
        if (v->seg0 + i >= got || seen_before(k->frames, k->st->n, addr))
            return; /* k->addr is still this frame: read plainly */
        if (frame_code(k->w, fr) != code || (!cached && v->seg0 + v->m + v->slot[i] >= got) ||
            (cached && !code_runs(k->w, code, fr))) {
            memcpy(k->fr, fr, FRAME_READ);
            k->have = 1;
            return;
        }
        take_frame(k, addr, code, hdr, fr);
        k->addr = at_get_u64(fr, k->w->L.iframe_previous);
        if (i + 1 >= v->m || k->addr != old->frames[v->from + i + 1])
            return;
    }
}

/* The frame at k->addr is old->frames[j]: take it and what follows from
 * the read made with the thread list, else read the rest of the old
 * chain in one call. */
static int speculate(walk_t *k, int j)
{
    at_remote_seg_t segs[2 * AT_MAX_STACK_DEPTH];
    spec_view_t *v = k->w->spec_view;
    if (k->pre && j >= k->pre->from && j < k->pre->from + k->pre->m) {
        spec_take(k, k->pre, k->pre_got, j);
        k->pre = NULL;
        return 0;
    }
    int m = k->old->n - j, room = AT_MAX_STACK_DEPTH - k->st->n;
    int nseg = at_walker_spec_plan(v, k->w, k->old, j, m < room ? m : room, k->w->spec, segs, 0);
    k->speculated = 1;
    int got = at_remote_readv(&k->w->proc->mem, segs, nseg, NULL);
    if (got == -ESRCH)
        return got;
    spec_take(k, v, got, j);
    return 0;
}

/* Whether the frame at addr would be taken from a batch read. */
static int can_speculate(const walk_t *k, uint64_t addr)
{
    return addr && k->old && (k->pre || !k->speculated) && old_index(k->w, addr) >= 0;
}

/* One plain step: this frame's code header and the next frame in one
 * call (or the old chain from the next frame on, when it is known). */
static int step(walk_t *k)
{
    uint8_t hdr[CODE_READ_MAX], next[FRAME_READ];
    uint64_t code = frame_code(k->w, k->fr), prev = at_get_u64(k->fr, k->w->L.iframe_previous);
    int spec_next = can_speculate(k, prev), cached = code_runs(k->w, code, k->fr);
    at_remote_seg_t segs[2] = { { code, hdr, k->w->code_read }, { prev, next, FRAME_READ } };
    int skip = cached, want = (prev && !spec_next ? 2 : 1) - skip;
    int got = want ? at_remote_readv(&k->w->proc->mem, segs + skip, want, NULL) : 0;
    if (got == -ESRCH)
        return got;
    if (got < 1 && !cached)
        return -EFAULT;
    take_frame(k, k->addr, code, cached ? NULL : hdr, k->fr);
    k->addr = prev;
    k->have = 0;
    if (prev && !spec_next) {
        if (got < want)
            return -EFAULT;   /* this frame is taken; the walk ends here */
        memcpy(k->fr, next, FRAME_READ);
        k->have = 1;
    }
    return 0;
}

static int walk_chain(walk_t *k)
{
    while (k->addr) {
        int rc = 0, j;
        if (k->st->n >= AT_MAX_STACK_DEPTH || seen_before(k->frames, k->st->n, k->addr)) {
            k->st->truncated = 1;
            return 0;
        }
        if (!k->have && can_speculate(k, k->addr) && (j = old_index(k->w, k->addr)) >= 0) {
            if ((rc = speculate(k, j)) < 0)
                return rc;
            continue;
        }
        if (!k->have) {
            rc = at_remote_read(&k->w->proc->mem, k->addr, k->fr, FRAME_READ);
            k->have = rc == 0;
        }
        if (rc == 0)
            rc = step(k);
        if (rc == -ESRCH)
            return rc;
        if (rc < 0) {
            k->st->truncated = 1;
            return 0;
        }
    }
    return 0;
}

/* ---- reuse while the GIL did not change hands -------------------------- *
 *
 * Python frames are pushed and popped only by the thread holding the GIL,
 * and every time the GIL goes to a thread other than its last holder,
 * the GIL's switch_number grows (take_gil: in _PyRuntime.ceval.gil in
 * 3.11, behind interp->ceval.gil from 3.12, the same rule).  So when the
 * count read with the thread list equals the count read with the list
 * before the walk of thread T, no thread but the (unchanged) last holder
 * held the GIL from before that walk until now: if T is not that holder,
 * its frames are the ones walked, and the walk itself read them while
 * they stood still.  At 1 kHz on threads trading the GIL every 5 ms, four
 * ticks in five skip reading the waiting threads' frames; with every
 * tick seeing a switch (100 Hz) nothing is planned on that guess. */

static void keep_for_reuse(at_walker_t *w, const at_thread_t *t, chain_t *c, const at_pystack_t *st)
{
    c->tag_ok = w->sw_before_ok && t->tstate != w->holder_last && !t->stopped;
    c->tag_sw = w->sw_before;
    c->cframe = t->cframe;
    c->out_n = st->n;
    c->out_truncated = st->truncated;
    memcpy(c->out, st->frames, sizeof *st->frames * (size_t)st->n);
}

/* Where the frames taken were read (two small copies a thread). */
static void note_addresses(at_pystack_t *st, const uint64_t *frames, const uint64_t *codes)
{
    memcpy(st->frame_addr, frames, sizeof *frames * (size_t)st->n);
    memcpy(st->code_addr, codes, sizeof *codes * (size_t)st->n);
}

int at_walker_stack(at_walker_t *w, const at_thread_t *t, at_pystack_t *st)
{
    walk_t *k = w->walk;
    int rc = 0;
    const chain_t *kept = t->reuse ? chain_find(w, t->tstate) : NULL;
    if (kept && kept->tag_ok && kept->out_n > 0 && kept->out_n == kept->n) {
        st->n = kept->out_n;
        st->truncated = kept->out_truncated;
        memcpy(st->frames, kept->out, sizeof *st->frames * (size_t)st->n);
        note_addresses(st, kept->frames, kept->codes);
        return 0;
    }
    memset(k, 0, offsetof(walk_t, fr));
    k->w = w;
    k->st = st;
    w->now_ns = mono_ns();
    st->n = 0;
    st->truncated = 0;
    k->addr = t->frame;
    if (!t->frame_known)
        rc = at_remote_read_u64(&w->proc->mem, t->cframe + (uint64_t)w->fp_off, &k->addr);
    if (rc < 0) {
        st->truncated = rc != -ESRCH;
        return rc == -ESRCH ? rc : 0;
    }
    k->old = chain_find(w, t->tstate);
    if (k->old && t->prefetch >= 0 && t->prefetch < w->pre_n && w->pre[t->prefetch].old == k->old &&
        w->pre[t->prefetch].tstate == t->tstate && k->old->tstate == t->tstate) {
        k->pre = &w->pre[t->prefetch];
        k->pre_got = w->pre_got;
    }
    index_chain(w, k->old);
    if ((rc = walk_chain(k)) < 0)
        return rc;
    note_addresses(st, k->frames, k->codes);
    /* a chain that broke off was most likely read while it changed: it
     * must not seed the next walk's speculation (nor this one's retry) */
    if (st->n && (!st->truncated || st->n >= AT_MAX_STACK_DEPTH))
        keep_for_reuse(w, t, chain_store(w, t->tstate, k->frames, k->codes, st->n), st);
    return 0;
}

int at_walker_frame(at_walker_t *w, uint64_t frame, at_pyframe_t *out)
{
    uint8_t fr[FRAME_READ], hdr[CODE_READ_MAX];
    int rc = at_remote_read(&w->proc->mem, frame, fr, sizeof fr);
    if (rc < 0)
        return rc;
    uint64_t code = frame_code(w, fr);
    if (code == NO_CODE_CSTACK || !code)
        return -EPROTO;
    if ((rc = at_remote_read(&w->proc->mem, code, hdr, w->code_read)) < 0)
        return rc == -ESRCH ? rc : -EPROTO;
    w->now_ns = mono_ns();
    resolve_frame(w, out, code, hdr, fr);
    return out->sym == w->sym_unknown ? -EPROTO : 0;
}

int at_walker_reload(at_walker_t *w, at_thread_t *t)
{
    t->frame_known = 0;
    t->reuse = 0;
    t->stopped = 1;   /* its walk is not kept for reuse: see keep_for_reuse */
    t->prefetch = -1; /* read before the thread stood still */
    if (w->fp_in_tstate) {  /* at_walker_stack reads the frame pointer there */
        t->cframe = t->tstate;
        return 0;
    }
    return at_remote_read_u64(&w->proc->mem, t->tstate + (uint64_t)w->L.tstate_cframe, &t->cframe);
}

/* ---- lifetime --------------------------------------------------------- */

static int32_t min3(int32_t a, int32_t b, int32_t c)
{
    int32_t m = a < b ? a : b;
    return m < c ? m : c;
}

static int32_t max3(int32_t a, int32_t b, int32_t c)
{
    int32_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Where each read starts and how long it is, for layout L (checked by
 * at_py_proc_layout_fits to stay within the buffers).  On 3.11 these
 * are the sizes the constants gave. */
static void plan_reads(at_walker_t *w, const at_pylayout_t *L)
{
    w->L = *L;
    w->code_read = (size_t)L->code_code_adaptive;
    w->fp_in_tstate = L->tstate_current_frame != AT_PYLAYOUT_NONE;
    w->fp_off = w->fp_in_tstate ? L->tstate_current_frame : L->cframe_current_frame;
    int32_t fp_field = w->fp_in_tstate ? L->tstate_current_frame : L->tstate_cframe;
    w->tstate_read = (size_t)max3(max3(L->tstate_prev, L->tstate_next, L->tstate_interp), fp_field,
                                  L->tstate_native_thread_id) + 8;
    w->interp_first = min3(L->interp_next, L->interp_tstate_head, L->interp_runtime);
    w->interp_read = (size_t)(max3(L->interp_next, L->interp_tstate_head, L->interp_runtime) + 8 - w->interp_first);
    w->gil_in_rt = L->rt_gil != AT_PYLAYOUT_NONE;
    w->rt_first = L->rt_interpreters_head < L->rt_interpreters_main ? L->rt_interpreters_head
                                                                    : L->rt_interpreters_main;
    int32_t rt_end = w->gil_in_rt ? L->rt_gil + L->gil_switch_number + 8 : L->rt_interpreters_main + 8;
    if (L->rt_interpreters_head + 8 > rt_end)
        rt_end = L->rt_interpreters_head + 8;
    w->rt_read = (size_t)(rt_end - w->rt_first);
}

at_walker_t *at_walker_new(at_py_proc_t *proc, at_symtab_t *syms)
{
    if (!at_py_proc_layout_fits(&proc->layout)) {
        errno = EINVAL;   /* no layout chosen, or one the buffers cannot hold */
        return NULL;
    }
    at_walker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    plan_reads(w, &proc->layout);
    w->proc = proc;
    w->syms = syms;
    w->codes = calloc(CODE_SLOTS, sizeof *w->codes);
    w->chains = calloc(SPEC_CHAINS, sizeof *w->chains);
    w->walk = calloc(1, sizeof *w->walk);
    w->spec = malloc(SPEC_BYTES);
    w->spec_view = calloc(1, sizeof *w->spec_view);
    w->pre = calloc(PRE_THREADS, sizeof *w->pre);
    w->pre_buf = malloc(PRE_BYTES);
    w->sym_truncated = at_symtab_intern(syms, AT_SYM_MARK, "[truncated]", "");
    w->sym_unknown = at_symtab_intern(syms, AT_SYM_MARK, "[unknown]", "");
    if (!w->codes || !w->chains || !w->walk || !w->spec || !w->spec_view || !w->pre || !w->pre_buf ||
        w->sym_truncated == AT_SYM_NONE || w->sym_unknown == AT_SYM_NONE) {
        at_walker_free(w);
        errno = ENOMEM;
        return NULL;
    }
    return w;
}

void at_walker_free(at_walker_t *w)
{
    if (!w)
        return;
    for (int i = 0; w->codes && i < CODE_SLOTS; i++)
        free(w->codes[i].ranges);
    for (int i = 0; i < FD_SLOTS; i++)
        if (w->fds[i].tid)
            close(w->fds[i].fd);
    free(w->codes);
    free(w->chains);
    free(w->walk);
    free(w->spec);
    free(w->spec_view);
    free(w->pre);
    free(w->pre_buf);
    free(w);
}

uint64_t at_walker_proc_reads(const at_walker_t *w)
{
    return w->proc_reads;
}

uint32_t at_walker_sym_truncated(const at_walker_t *w)
{
    return w->sym_truncated;
}
