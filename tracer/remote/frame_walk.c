/* SPDX-License-Identifier: MIT */
/* frame_walk.c - threads and _PyInterpreterFrame chains of a CPython 3.11-3.13 process (see frame_walk.h).
 *
 * Every offset is a field of the target's layout table (w->L, a copy in
 * the walker: one load where py311.h had a constant), chosen once when
 * the process was opened; buffers are sized for the largest version. */
#include "remote/frame_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "remote/linetable.h"
#include "remote/py_str.h"

#define CODE_SLOTS      4096               /* code cache, power of two     */
#define CODE_RECHECK_NS AT_WALKER_CODE_RECHECK_NS
#define FD_SLOTS        1024               /* /proc task stat fds, pow. 2  */
#define FD_SWEEP_EVERY  512                /* samples between fd sweeps    */
#define MAX_STR_CHARS   1024               /* longer names are cut         */
#define STR_OUT_MAX     (MAX_STR_CHARS * 4 + 8)
#define MAX_LINETABLE   (512 * 1024)       /* bytes of co_linetable        */
#define MAX_CODE_UNITS  (1 << 24)          /* a sane upper bound on Py_SIZE */
/* Buffers hold the largest version's structs (py_proc.h's AT_READ_*,
 * which every layout is checked against); reads take the target's sizes. */
#define FRAME_READ      AT_READ_FRAME      /* _PyInterpreterFrame through owner, every version */
#define CODE_READ_MAX   AT_READ_CODE_MAX   /* code header: up to co_code_adaptive (184-200) */
#define TSTATE_READ_MAX AT_READ_TSTATE_MAX /* thread state: through native_thread_id (152-168) */
#define INTERP_READ_MAX AT_READ_INTERP_MAX /* interpreter: next .. runtime (48-120) */
#define RT_READ_MAX     AT_READ_RT_MAX     /* _PyRuntime from interpreters.head (3.11: + GIL) */
#define GIL_READ_MAX    AT_READ_GIL_MAX    /* struct _gil_runtime_state through switch_number */
#define STR_HEAD_READ   (AT_READ_STR_HEAD_MAX + 256)
#define NO_CODE_CSTACK  1ull               /* code of a frame owned by the C stack (3.12+): none */
/* A code unit is 2 bytes in every version (at_py_proc_layout_fits, which
 * at_walker_new asks, refuses another): a constant divisor per frame. */
#define CODE_UNIT       2
#define BYTES_HEAD_READ 512
#define SPEC_CHAINS     64                 /* threads whose chain is kept  */
#define SPEC_THREADS    256                /* thread states batch-read     */
#define CHAIN_SLOTS     512                /* frame index, pow. 2, > 2x depth */
#define PRE_THREADS     64                 /* chains read with the list    */
#define PRE_BYTES       (64 * 1024)        /* their buffer                 */
#define SPEC_BYTES      (AT_MAX_STACK_DEPTH * (FRAME_READ + CODE_READ_MAX) > SPEC_THREADS * TSTATE_READ_MAX \
                         ? AT_MAX_STACK_DEPTH * (FRAME_READ + CODE_READ_MAX) : SPEC_THREADS * TSTATE_READ_MAX)

/* A code object as last validated; addr 0 = free slot. */
typedef struct code_entry {
    uint64_t addr;           /* remote PyCodeObject *                       */
    uint64_t filename;       /* generation check: these pointers and ints   */
    uint64_t qualname;       /* must read back the same on every use        */
    uint64_t linetable;
    int64_t size;            /* Py_SIZE: code units                         */
    int32_t firstlineno;
    int32_t firsttraceable;
    uint32_t sym;            /* (qualname, filename) in the symtab          */
    uint64_t checked_ns;     /* when the header last read back the same     */
    int nranges;             /* -1 when the table did not decode            */
    at_line_range_t *ranges; /* decoded co_linetable                        */
} code_entry_t;

/* A thread's chain at the last sample: where to batch-read next time. */
typedef struct chain {
    uint64_t tstate;         /* the thread state, 0 = free                  */
    uint32_t used;           /* walker clock at the last use (LRU)          */
    int n;                   /* frames                                      */
    uint64_t frames[AT_MAX_STACK_DEPTH]; /* frame addresses, most recent first */
    uint64_t codes[AT_MAX_STACK_DEPTH];  /* their code objects               */
    /* The stack as walked, for reuse while the thread cannot have run
     * Python since (see gil_reuse): valid when the GIL's switch count
     * reads tag_sw, this thread is not the last holder and its cframe
     * still reads cframe. */
    int tag_ok;
    uint64_t tag_sw;
    uint64_t cframe;
    int out_n, out_truncated;
    at_pyframe_t out[AT_MAX_STACK_DEPTH];
} chain_t;

struct walk;

/* An open /proc/PID/task/TID/stat, read with pread on every sample. */
typedef struct tid_fd {
    uint32_t tid;            /* 0 = free                                    */
    int fd;
    uint32_t seen;           /* sweep epoch when last used                  */
} tid_fd_t;

struct at_walker {
    at_py_proc_t *proc;      /* the target (not owned)                      */
    at_pylayout_t L;         /* its offsets (copied from proc->layout)      */
    size_t code_read;        /* bytes of a code header read                 */
    size_t tstate_read;      /* bytes of a thread state read                */
    int32_t interp_first;    /* an interpreter is read from this offset ... */
    size_t interp_read;      /* ... this many bytes (next, threads, runtime) */
    int32_t rt_first;        /* _PyRuntime is read from interpreters.head ...*/
    size_t rt_read;          /* ... this many bytes (3.11: through the GIL)  */
    int gil_in_rt;           /* 3.11: the GIL is inside that read            */
    uint64_t gil_addr;       /* 3.12+: main interp->ceval.gil, 0 = not known */
    int fp_in_tstate;        /* 3.13+: the frame pointer is in the thread state */
    int32_t fp_off;          /* its offset in the cframe (or thread state)   */
    at_symtab_t *syms;       /* where names go (not owned)                  */
    code_entry_t *codes;     /* CODE_SLOTS entries                          */
    tid_fd_t fds[FD_SLOTS];
    uint32_t epoch;          /* fd sweep epoch                              */
    int state_file;          /* index in STATE_FILES: 0 syscall, 1 stat     */
    int state_file_known;    /* one was opened: no more probing             */
    uint32_t clock;          /* at_walker_threads calls                     */
    uint64_t proc_reads;     /* reads of /proc task files (statistics)      */
    uint64_t now_ns;         /* monotonic clock at the start of this walk   */
    uint64_t sw_last;        /* GIL switch count of the last thread list    */
    uint64_t holder_last;    /* and its last holder                         */
    int sw_known;            /* sw_last was read                            */
    uint64_t sw_before;      /* the count of the list before it             */
    int sw_before_ok;        /* there was one                               */
    chain_t *chains;         /* SPEC_CHAINS remembered chains               */
    struct walk *walk;       /* scratch for at_walker_stack                 */
    uint8_t *spec;           /* SPEC_BYTES: batch-read buffer               */
    struct spec_view *spec_view; /* the layout of the last read into spec   */
    struct spec_view *pre;   /* PRE_THREADS chains read with the list       */
    uint8_t *pre_buf;        /* PRE_BYTES: where they were read             */
    int pre_n;               /* of them in use                              */
    int pre_got;             /* segments that list read completed           */
    uint64_t list_interp;    /* the thread list last time (one interpreter) */
    int list_n;              /* its threads, 0 = no batch                   */
    uint64_t list_ts[SPEC_THREADS];
    uint64_t list_cframe[SPEC_THREADS];
    int16_t list_pre[SPEC_THREADS]; /* their chain's index in pre, or -1   */
    uint8_t list_guess[SPEC_THREADS]; /* its kept stack is expected to stand */
    uint32_t index_gen;      /* frame index of the chain being walked       */
    uint32_t index_stamp[CHAIN_SLOTS];
    uint64_t index_key[CHAIN_SLOTS];
    uint16_t index_pos[CHAIN_SLOTS];
    uint32_t sym_truncated;  /* "[truncated]" marker                        */
    uint32_t sym_unknown;    /* "[unknown]": a frame whose code is unreadable */
    char str[STR_OUT_MAX];   /* scratch for one decoded string              */
    uint8_t raw[MAX_STR_CHARS * 4]; /* scratch for one string's data        */
};

static void sweep_fds(at_walker_t *w);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- strings -------------------------------------------------------- */

/* UCS1/2/4 code points to UTF-8 in w->str; "..." marks a cut. */
static const char *to_utf8(at_walker_t *w, const uint8_t *data, size_t nchars, int kind, int cut)
{
    size_t o = 0;
    for (size_t i = 0; i < nchars; i++) {
        uint16_t c2;
        uint32_t c = data[i];
        if (kind == 2) {
            memcpy(&c2, data + i * 2, sizeof c2);
            c = c2;
        } else if (kind == 4) {
            c = at_get_u32(data, i * 4);
        }
        o += at_utf8_put(w->str + o, c);
    }
    if (cut) {
        memcpy(w->str + o, "...", 3);
        o += 3;
    }
    w->str[o] = '\0';
    return w->str;
}

/* Read a compact str object; NULL when it is not one. */
static const char *read_str(at_walker_t *w, uint64_t addr)
{
    uint8_t head[STR_HEAD_READ];
    const at_pylayout_t *L = &w->L;
    long got = at_remote_read_some(&w->proc->mem, addr, head, sizeof head);
    if (got < L->sizeof_pyasciiobject)
        return NULL;
    if (w->proc->unicode_type && at_get_u64(head, L->object_type) != w->proc->unicode_type)
        return NULL;
    int64_t len = (int64_t)at_get_u64(head, L->unicode_length);
    int ascii, kind = at_py_str_compact_kind(L, at_get_u32(head, L->unicode_state), &ascii);
    if (kind < 0 || len < 0)
        return NULL;
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    size_t nchars = len > MAX_STR_CHARS ? MAX_STR_CHARS : (size_t)len;
    size_t nbytes = nchars * (size_t)kind;
    const uint8_t *data = head + off;
    if (off + nbytes > (size_t)got) {
        if (at_remote_read(&w->proc->mem, addr + off, w->raw, nbytes) < 0)
            return NULL;
        data = w->raw;
    }
    return to_utf8(w, data, nchars, kind, len > MAX_STR_CHARS);
}

/* ---- code objects ---------------------------------------------------- */

static uint8_t *read_bytes_obj(at_walker_t *w, uint64_t addr, size_t *len)
{
    uint8_t head[BYTES_HEAD_READ];
    const at_pylayout_t *L = &w->L;
    long got = at_remote_read_some(&w->proc->mem, addr, head, sizeof head);
    if (got < L->bytes_sval)
        return NULL;
    if (w->proc->bytes_type && at_get_u64(head, L->object_type) != w->proc->bytes_type)
        return NULL;
    int64_t size = (int64_t)at_get_u64(head, L->var_size);
    if (size < 0 || size > MAX_LINETABLE)
        return NULL;
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf)
        return NULL;
    if (L->bytes_sval + size <= got)
        memcpy(buf, head + L->bytes_sval, (size_t)size);
    else if (at_remote_read(&w->proc->mem, addr + (uint64_t)L->bytes_sval, buf, (size_t)size) < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)size;
    return buf;
}

static void decode_lines(at_walker_t *w, code_entry_t *e)
{
    size_t len = 0;
    uint8_t *tab = read_bytes_obj(w, e->linetable, &len);
    e->nranges = -1;
    if (!tab)
        return;
    int n = at_linetable_decode(tab, len, e->firstlineno, NULL, 0);
    if (n >= 0 && (e->ranges = malloc(sizeof *e->ranges * (size_t)(n ? n : 1))))
        e->nranges = at_linetable_decode(tab, len, e->firstlineno, e->ranges, (size_t)n);
    free(tab);
}

static int header_sane(const at_walker_t *w, const uint8_t *hdr)
{
    const at_pylayout_t *L = &w->L;
    int64_t size = (int64_t)at_get_u64(hdr, L->var_size);
    int32_t ft = at_get_i32(hdr, L->code_firsttraceable);
    if (w->proc->code_type && at_get_u64(hdr, L->object_type) != w->proc->code_type)
        return 0;
    return size > 0 && size <= MAX_CODE_UNITS && ft >= 0 && ft <= size;
}

static int header_matches(const at_pylayout_t *L, const code_entry_t *e, const uint8_t *hdr)
{
    return e->filename == at_get_u64(hdr, L->code_filename) &&
           e->qualname == at_get_u64(hdr, L->code_qualname) &&
           e->linetable == at_get_u64(hdr, L->code_linetable) &&
           e->size == (int64_t)at_get_u64(hdr, L->var_size) &&
           e->firstlineno == at_get_i32(hdr, L->code_firstlineno) &&
           e->firsttraceable == at_get_i32(hdr, L->code_firsttraceable);
}

static void code_clear(code_entry_t *e)
{
    free(e->ranges);
    memset(e, 0, sizeof *e);
}

/* (Re)fill a slot from a freshly read header: names, then the line table. */
static int code_fill(at_walker_t *w, code_entry_t *e, uint64_t addr, const uint8_t *hdr)
{
    const at_pylayout_t *L = &w->L;
    char func[STR_OUT_MAX];
    code_clear(e);
    e->filename = at_get_u64(hdr, L->code_filename);
    e->qualname = at_get_u64(hdr, L->code_qualname);
    e->linetable = at_get_u64(hdr, L->code_linetable);
    e->size = (int64_t)at_get_u64(hdr, L->var_size);
    e->firstlineno = at_get_i32(hdr, L->code_firstlineno);
    e->firsttraceable = at_get_i32(hdr, L->code_firsttraceable);
    const char *s = read_str(w, e->qualname);
    if (!s)
        return -EFAULT;
    snprintf(func, sizeof func, "%s", s);
    if (!(s = read_str(w, e->filename)))
        return -EFAULT;
    e->sym = at_symtab_intern(w->syms, AT_SYM_PY, func, s);
    if (e->sym == AT_SYM_NONE)
        return -ENOMEM;
    decode_lines(w, e);
    e->addr = addr;
    return 0;
}

static code_entry_t *code_slot(const at_walker_t *w, uint64_t addr)
{
    return &w->codes[(addr >> 4) * 0x9e3779b97f4a7c15ull >> 52 & (CODE_SLOTS - 1)];
}

static const code_entry_t *code_lookup(at_walker_t *w, uint64_t addr, const uint8_t *hdr)
{
    code_entry_t *e = code_slot(w, addr);
    if (!header_sane(w, hdr))
        return NULL;
    if (!(e->addr == addr && header_matches(&w->L, e, hdr)) && code_fill(w, e, addr, hdr) < 0) {
        code_clear(e);
        return NULL;
    }
    e->checked_ns = w->now_ns;
    return e;
}

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
    const code_entry_t *e = hdr ? code_lookup(w, code, hdr) : code_fresh(w, code);
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

static chain_t *chain_find(at_walker_t *w, uint64_t tstate)
{
    for (int i = 0; i < SPEC_CHAINS; i++)
        if (w->chains[i].tstate == tstate)
            return &w->chains[i];
    return NULL;
}

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

/* Frames old->frames[from..from+m) as batch-read: frame i at
 * buf + i * FRAME_READ, its code header at buf + m * FRAME_READ +
 * slot[i] * w->code_read (a code object shared by several frames, as in a
 * recursion, is read once; one whose cached header is fresh, see
 * code_fresh, not at all: slot NO_HEADER).  Segment `seg0 + i` holds
 * frame i and `seg0 + m + slot` a header: what at_remote_readv completed
 * is known from its count of leading segments. */
typedef struct spec_view {
    const at_walker_t *w;    /* whose code cache decided what was read      */
    const chain_t *old;      /* the chain read (a walker slot)              */
    uint64_t tstate;         /* its thread, to check the slot still is it   */
    int from, m;             /* frames read                                 */
    int seg0, nslots;        /* first segment; header slots used            */
    uint8_t *buf;
    uint16_t slot[AT_MAX_STACK_DEPTH];
} spec_view_t;

#define SPEC_DEDUP 16        /* distinct code objects looked up per chain   */
#define NO_HEADER  UINT16_MAX /* slot of a frame whose header is not read   */

/* Segments for old->frames[from..from+m) into segs (room for 2m), laid
 * out in buf (room for m * (FRAME_READ + w->code_read)).  Returns how many. */
static int spec_plan(spec_view_t *v, const at_walker_t *w, const chain_t *old, int from, int m, uint8_t *buf,
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
    int nseg = spec_plan(v, k->w, k->old, j, m < room ? m : room, k->w->spec, segs, 0);
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

/* Thread tstate's kept stack if it may stand for this sample, with the
 * switch count sw and last holder read now. */
static const chain_t *reusable(const at_walker_t *w, uint64_t tstate, uint64_t cframe, uint64_t sw, uint64_t holder)
{
    const chain_t *c = chain_find((at_walker_t *)w, tstate);
    return c && c->tag_ok && c->tag_sw == sw && tstate != holder && c->cframe == cframe ? c : NULL;
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
    if (st->n)
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
        nseg += spec_plan(&w->pre[w->pre_n++], w, c, 0, m, w->pre_buf + used, segs + nseg, nseg);
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
        sweep_fds(w);
    int n = list_batch(w, out, cap, 1);
    if (n == -ESTALE)
        n = list_batch(w, out, cap, 0);
    return n == -EAGAIN ? list_plain(w, out, cap) : n;
}

/* ---- idle: /proc task state ------------------------------------------ */

static void sweep_fds(at_walker_t *w)
{
    tid_fd_t keep[FD_SLOTS];
    int nkeep = 0;
    for (int i = 0; i < FD_SLOTS; i++) {
        tid_fd_t *e = &w->fds[i];
        if (!e->tid)
            continue;
        if (e->seen == w->epoch)
            keep[nkeep++] = *e;
        else
            close(e->fd);
        e->tid = 0;
    }
    w->epoch++;
    for (int i = 0; i < nkeep; i++) {
        uint32_t h = keep[i].tid * 2654435761u & (FD_SLOTS - 1);
        while (w->fds[h].tid)
            h = (h + 1) & (FD_SLOTS - 1);
        w->fds[h] = keep[i];
    }
}

static tid_fd_t *fd_slot(at_walker_t *w, uint32_t tid)
{
    uint32_t h = tid * 2654435761u & (FD_SLOTS - 1);
    for (int probe = 0; probe < FD_SLOTS; probe++, h = (h + 1) & (FD_SLOTS - 1)) {
        if (w->fds[h].tid == tid || !w->fds[h].tid)
            return &w->fds[h];
    }
    return NULL;
}

/* Which /proc task file tells "running or not".  /proc/PID/task/TID/syscall
 * says "running" exactly when the task state is TASK_RUNNING (stat's 'R')
 * and costs a quarter of stat here (1-2 µs against 4-5 µs a read: stat
 * formats 52 fields and unwinds a blocked task's stack for its wchan
 * flag); per thread per sample that was a third of a 4-thread sample.
 * Kernels without it (no arch tracehook) get stat. */
static const char *const STATE_FILES[] = { "syscall", "stat" };

static int task_exists(const at_walker_t *w, uint32_t tid)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/%d/task/%u", (int)w->proc->pid, tid);
    return access(path, F_OK) == 0;
}

static int open_state(at_walker_t *w, tid_fd_t *e, uint32_t tid)
{
    char path[80];
    int fd = -1, err = ENOENT;
    for (int i = w->state_file; i < 2 && fd < 0; i++) {
        snprintf(path, sizeof path, "/proc/%d/task/%u/%s", (int)w->proc->pid, tid, STATE_FILES[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        err = errno;
        if (fd < 0 && err == ENOENT && i == 0 && !w->state_file_known && task_exists(w, tid))
            w->state_file = 1; /* the task is there but has no syscall file */
    }
    w->state_file_known |= fd >= 0;
    if (fd < 0)
        return -err;
    e->tid = tid;
    e->fd = fd;
    return 0;
}

/* 1 when the text of the state file says the task is not running. */
static int idle_from(const at_walker_t *w, const char *buf)
{
    if (w->state_file == 0) /* "running" or "NR args... sp pc" / "-1 sp pc" */
        return strncmp(buf, "running", 7) != 0;
    /* "tid (comm) S ...": comm may hold ')' and spaces, so take the last */
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ')
        return -EINVAL;
    return rp[2] != 'R';
}

int at_walker_idle(at_walker_t *w, uint32_t tid)
{
    char buf[160];
    tid_fd_t *e = fd_slot(w, tid);
    if (!tid || !e)
        return -EINVAL;
    if (!e->tid && open_state(w, e, tid) < 0)
        return -ESRCH;
    e->seen = w->epoch;
    w->proc_reads++;
    ssize_t n = pread(e->fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    return idle_from(w, buf);
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
