/* SPDX-License-Identifier: MIT */
/* bpf_sym.c - name the Python frames that the BPF sampler read: code object -> (qualname, file, line).
 *
 * The BPF program only copies (code, prev_instr offset, owner) out of each
 * _PyInterpreterFrame.  Here, while the target still runs, each code
 * object is read once through process_vm_readv and cached by address;
 * because an address can be reused by a new code object, a cached entry
 * is trusted for one poll batch (epoch) and re-validated on first use in
 * the next by re-reading its header and comparing the fields it was built
 * from (the same rule as the ptrace walker's cache).  Offsets are the
 * target's layout (proc->layout), as the probes' were.
 */
#include "bpf/ebpf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "remote/linetable.h"
#include "remote/py_proc.h"
#include "remote/py_str.h"
#include "session/stacks.h"

#define CODE_SLOTS      4096                 /* power of two               */
#define HDR_READ        AT_READ_CODE_MAX     /* header through co_code_adaptive at most */
#define MAX_CHARS       512                  /* longer names are cut       */
#define STR_READ        (AT_READ_STR_HEAD_MAX + MAX_CHARS * 4)
#define MAX_LINETABLE   (512 * 1024)
#define MAX_CODE_UNITS  (1 << 24)

typedef struct code_ent {
    uint64_t addr;            /* remote PyCodeObject *, 0 = free          */
    uint32_t epoch;           /* batch in which it was last validated     */
    int32_t firstlineno;
    int32_t firsttraceable;
    uint32_t sym;             /* (qualname, filename) in the symtab       */
    uint64_t filename, qualname, linetable; /* what it was built from     */
    int64_t size;             /* code units                               */
    int nranges;              /* -1: no line table                        */
    at_line_range_t *ranges;
} code_ent_t;

struct at_bpf_sym {
    at_py_proc_t *proc;       /* the target (not owned)                   */
    const at_pylayout_t *L;   /* its layout (proc->layout)                */
    at_stacks_t *stacks;      /* where samples go (not owned)             */
    at_symtab_t *syms;
    code_ent_t *codes;        /* CODE_SLOTS                               */
    uint32_t epoch;
    uint32_t sym_unknown, sym_truncated, sym_no_python, sym_no_tstate;
    at_frame_t frames[AT_BPF_PY_MAX + 2];
    char str[MAX_CHARS * 4 + 8];  /* one decoded name                  */
    uint8_t raw[STR_READ];        /* one str object as read             */
};

/* ---- strings ---------------------------------------------------------------- */

/* A compact str object as UTF-8 in s->str; NULL when it is not one. */
static const char *read_str(at_bpf_sym_t *s, uint64_t addr)
{
    const at_pylayout_t *L = s->L;
    uint8_t *buf = s->raw;
    long got = at_remote_read_some(&s->proc->mem, addr, buf, sizeof s->raw);
    if (got < L->sizeof_pyasciiobject)
        return NULL;
    if (s->proc->unicode_type && at_get_u64(buf, L->object_type) != s->proc->unicode_type)
        return NULL;
    int64_t len = (int64_t)at_get_u64(buf, L->unicode_length);
    uint32_t st = at_get_u32(buf, L->unicode_state);
    int kind = st >> 2 & 7, compact = st >> 5 & 1, ascii = st >> 6 & 1;
    if (!compact || len < 0 || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1))
        return NULL;
    size_t off = (size_t)(ascii ? L->sizeof_pyasciiobject : L->sizeof_pycompactunicodeobject);
    size_t n = len > MAX_CHARS ? MAX_CHARS : (size_t)len, o = 0;
    if (off + n * (size_t)kind > (size_t)got)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = buf + off + i * (size_t)kind;
        uint32_t c = kind == 1 ? p[0] : kind == 2 ? (uint32_t)(p[0] | p[1] << 8) : at_get_u32(p, 0);
        o += at_utf8_put(s->str + o, c);
    }
    if (len > MAX_CHARS) {
        memcpy(s->str + o, "...", 3);
        o += 3;
    }
    s->str[o] = '\0';
    return s->str;
}

/* ---- code objects ------------------------------------------------------------ */

static void decode_lines(at_bpf_sym_t *s, code_ent_t *e)
{
    const at_pylayout_t *L = s->L;
    uint8_t head[AT_READ_STR_HEAD_MAX];
    e->nranges = -1;
    if (at_remote_read(&s->proc->mem, e->linetable, head, (size_t)L->bytes_sval) < 0)
        return;
    if (s->proc->bytes_type && at_get_u64(head, L->object_type) != s->proc->bytes_type)
        return;
    int64_t size = (int64_t)at_get_u64(head, L->var_size);
    if (size < 0 || size > MAX_LINETABLE)
        return;
    uint8_t *tab = malloc((size_t)size + 1);
    if (!tab || at_remote_read(&s->proc->mem, e->linetable + (uint64_t)L->bytes_sval, tab, (size_t)size) < 0) {
        free(tab);
        return;
    }
    int n = at_linetable_decode(tab, (size_t)size, e->firstlineno, NULL, 0);
    if (n >= 0 && (e->ranges = malloc(sizeof *e->ranges * (size_t)(n ? n : 1))))
        e->nranges = at_linetable_decode(tab, (size_t)size, e->firstlineno, e->ranges, (size_t)n);
    free(tab);
}

static int header_sane(const at_bpf_sym_t *s, const uint8_t *h)
{
    const at_pylayout_t *L = s->L;
    int64_t size = (int64_t)at_get_u64(h, L->var_size);
    int32_t ft = at_get_i32(h, L->code_firsttraceable);
    if (s->proc->code_type && at_get_u64(h, L->object_type) != s->proc->code_type)
        return 0;
    return size > 0 && size <= MAX_CODE_UNITS && ft >= 0 && ft <= size;
}

static int header_matches(const at_pylayout_t *L, const code_ent_t *e, const uint8_t *h)
{
    return e->filename == at_get_u64(h, L->code_filename) &&
           e->qualname == at_get_u64(h, L->code_qualname) &&
           e->linetable == at_get_u64(h, L->code_linetable) &&
           e->size == (int64_t)at_get_u64(h, L->var_size) &&
           e->firstlineno == at_get_i32(h, L->code_firstlineno) &&
           e->firsttraceable == at_get_i32(h, L->code_firsttraceable);
}

static void code_clear(code_ent_t *e)
{
    free(e->ranges);
    memset(e, 0, sizeof *e);
}

static int code_fill(at_bpf_sym_t *s, code_ent_t *e, uint64_t addr, const uint8_t *h)
{
    const at_pylayout_t *L = s->L;
    char func[sizeof s->str];
    code_clear(e);
    e->filename = at_get_u64(h, L->code_filename);
    e->qualname = at_get_u64(h, L->code_qualname);
    e->linetable = at_get_u64(h, L->code_linetable);
    e->size = (int64_t)at_get_u64(h, L->var_size);
    e->firstlineno = at_get_i32(h, L->code_firstlineno);
    e->firsttraceable = at_get_i32(h, L->code_firsttraceable);
    const char *str = read_str(s, e->qualname);
    if (!str)
        return -EFAULT;
    snprintf(func, sizeof func, "%s", str);
    if (!(str = read_str(s, e->filename)))
        return -EFAULT;
    e->sym = at_symtab_intern(s->syms, AT_SYM_PY, func, str);
    if (e->sym == AT_SYM_NONE)
        return -ENOMEM;
    decode_lines(s, e);
    e->addr = addr;
    e->epoch = s->epoch;
    return 0;
}

static const code_ent_t *code_lookup(at_bpf_sym_t *s, uint64_t addr)
{
    uint8_t h[HDR_READ];
    code_ent_t *e = &s->codes[(addr >> 4) * 0x9e3779b97f4a7c15ull >> 52 & (CODE_SLOTS - 1)];
    if (e->addr == addr && e->epoch == s->epoch)
        return e;
    /* the header through co_code_adaptive (py_proc keeps it in HDR_READ) */
    if (at_remote_read(&s->proc->mem, addr, h, (size_t)s->L->code_code_adaptive) < 0 || !header_sane(s, h))
        return NULL;
    if (e->addr == addr && header_matches(s->L, e, h)) {
        e->epoch = s->epoch;
        return e;
    }
    if (code_fill(s, e, addr, h) < 0) {
        code_clear(e);
        return NULL;
    }
    return e;
}

/* ---- samples ------------------------------------------------------------------ */

/* One BPF frame into f; 0 when it is a frame CPython hides: incomplete,
 * or (3.12+) the entry frame an eval-loop call pushes on the C stack,
 * which runs no code of its own (3.12: the trampoline, 3.13: None). */
static int name_frame(at_bpf_sym_t *s, const struct at_bpf_pyframe *pf, at_frame_t *f)
{
    const at_pylayout_t *L = s->L;
    if (L->frame_owned_by_cstack != AT_PYLAYOUT_NONE && pf->owner == L->frame_owned_by_cstack)
        return 0;
    const code_ent_t *e = code_lookup(s, pf->code);
    f->sym = s->sym_unknown;
    f->line = -1;
    if (!e)
        return 1;
    f->sym = e->sym;
    if (pf->instr_off == AT_BPF_INSTR_NONE)
        return 1;
    /* bytes from the first instruction: 3.11/3.12's prev_instr and
     * 3.13's instr_ptr give the line the same way (frame_walk.c) */
    int64_t rel = (int64_t)pf->instr_off - L->code_code_adaptive;
    if (pf->owner != L->frame_owned_by_generator && rel < (int64_t)e->firsttraceable * L->sizeof_codeunit)
        return 0;                       /* _PyFrame_IsIncomplete */
    int64_t lasti = rel / L->sizeof_codeunit;
    if (lasti >= -1 && lasti < e->size && e->nranges >= 0)
        f->line = at_linetable_lookup(e->ranges, (size_t)e->nranges, e->firstlineno, (int)lasti);
    return 1;
}

int at_bpf_sym_sample(at_bpf_sym_t *s, const struct at_bpf_sample_ev *e)
{
    int n = 0, npy = e->n_py > AT_BPF_PY_MAX ? AT_BPF_PY_MAX : e->n_py;
    at_frame_t *out = s->frames;
    if (e->flags & AT_BPF_S_TRUNCATED)
        out[n++] = (at_frame_t){ s->sym_truncated, 0 };
    for (int i = npy - 1; i >= 0; i--)   /* the event is most recent first */
        if (name_frame(s, &e->py[i], &out[n]))
            n++;
    int py = n > 0;
    if (!py)
        out[n++] = (at_frame_t){ e->flags & AT_BPF_S_TSTATE ? s->sym_no_python : s->sym_no_tstate, 0 };
    int rc = at_stacks_add(s->stacks, e->tid, 0, (e->flags & AT_BPF_S_GIL) != 0, out, n, 1);
    return rc < 0 ? rc : py;
}

void at_bpf_sym_epoch(at_bpf_sym_t *s)
{
    s->epoch++;
}

at_bpf_sym_t *at_bpf_sym_new(struct at_py_proc *proc, struct at_stacks *stacks)
{
    at_bpf_sym_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->proc = proc;
    s->L = &proc->layout;
    s->stacks = stacks;
    s->syms = at_stacks_symtab(stacks);
    s->epoch = 1;
    s->codes = calloc(CODE_SLOTS, sizeof *s->codes);
    s->sym_unknown = at_symtab_intern(s->syms, AT_SYM_MARK, "[unknown]", "");
    s->sym_truncated = at_symtab_intern(s->syms, AT_SYM_MARK, "[truncated]", "");
    s->sym_no_python = at_symtab_intern(s->syms, AT_SYM_MARK, "[no Python frames]", "");
    s->sym_no_tstate = at_symtab_intern(s->syms, AT_SYM_MARK, "[not a Python thread]", "");
    if (!s->codes || s->sym_unknown == AT_SYM_NONE || s->sym_truncated == AT_SYM_NONE ||
        s->sym_no_python == AT_SYM_NONE || s->sym_no_tstate == AT_SYM_NONE) {
        at_bpf_sym_free(s);
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

void at_bpf_sym_free(at_bpf_sym_t *s)
{
    if (!s)
        return;
    for (int i = 0; s->codes && i < CODE_SLOTS; i++)
        free(s->codes[i].ranges);
    free(s->codes);
    free(s);
}
