/* SPDX-License-Identifier: MIT */
/* py_proc.c - locate _PyRuntime and Py_Version in a running process (see py_proc.h). */
#include "remote/py_proc.h"
#include "out/textout.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/options.h"
#include "py313.h"   /* AT313_SIZEOF_DEBUG_OFFSETS: what to read at _PyRuntime */

#define MAX_CANDIDATES 8

/* One file mapped into the target that may hold the interpreter. */
typedef struct mapped_file {
    char path[PATH_MAX];     /* path as /proc/PID/maps shows it            */
    char via[96];            /* /proc/PID/map_files/START-END of a mapping */
    uint64_t base;           /* start of the mapping at file offset 0      */
    int have_base;           /* base is known                              */
    int is_lib;              /* a libpython*.so, not the executable        */
} mapped_file_t;

/* What one ELF file exports that we need. */
typedef struct elf_syms {
    uint64_t first_load;     /* p_vaddr of the first PT_LOAD, page-aligned */
    uint64_t runtime, version, code_type, unicode_type, bytes_type;
    uint64_t eval, eval_size;
    uint64_t known[AT_PYSYM_COUNT];
    int have_runtime, have_version;
} elf_syms_t;

const char *const at_pysym_names[AT_PYSYM_COUNT] = {
    [AT_PYSYM_LONG_TYPE] = "PyLong_Type",         [AT_PYSYM_BOOL_TYPE] = "PyBool_Type",
    [AT_PYSYM_FLOAT_TYPE] = "PyFloat_Type",       [AT_PYSYM_TUPLE_TYPE] = "PyTuple_Type",
    [AT_PYSYM_LIST_TYPE] = "PyList_Type",         [AT_PYSYM_DICT_TYPE] = "PyDict_Type",
    [AT_PYSYM_SET_TYPE] = "PySet_Type",           [AT_PYSYM_FROZENSET_TYPE] = "PyFrozenSet_Type",
    [AT_PYSYM_CELL_TYPE] = "PyCell_Type",         [AT_PYSYM_NONE] = "_Py_NoneStruct",
    [AT_PYSYM_TRUE] = "_Py_TrueStruct",           [AT_PYSYM_FALSE] = "_Py_FalseStruct",
    [AT_PYSYM_CORO_TYPE] = "PyCoro_Type",         [AT_PYSYM_GEN_TYPE] = "PyGen_Type",
};

static void set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    if (!err || !n)
        return;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static void read_comm(pid_t pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)n, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
    if (!out[0])
        snprintf(out, n, "?");
}

ssize_t at_py_proc_read(pid_t pid, const char *name, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return fd >= 0 ? n : -1;
}

int at_py_proc_gone(pid_t pid)
{
    char buf[512];
    if (at_py_proc_read(pid, "stat", buf, sizeof buf) <= 0)
        return 1;
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static int is_libpython(const char *path)
{
    const char *base = strrchr(path, '/');
    return strncmp(base ? base + 1 : path, "libpython", 9) == 0;
}

static mapped_file_t *find_or_add(mapped_file_t *files, int *n, const char *path, int is_lib)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(files[i].path, path) == 0)
            return &files[i];
    if (*n >= MAX_CANDIDATES)
        return NULL;
    mapped_file_t *f = &files[(*n)++];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->is_lib = is_lib;
    return f;
}

/* A /proc/PID/maps line: "start-end perms offset dev inode   path".
 * Its three numbers, and where its path starts (NULL for a malformed
 * line).  By hand: sscanf took ~4 500 instructions a line, 87 % of an
 * attach's time in a process of 60 mappings. */
static char *maps_fields(char *line, unsigned long *start, unsigned long *end, unsigned long *off)
{
    char *p;
    *start = strtoul(line, &p, 16);
    if (p == line || *p != '-')
        return NULL;
    *end = strtoul(p + 1, &p, 16);
    p = strchr(p, ' ');                        /* perms */
    if (!p || !(p = strchr(p + 1, ' ')))       /* offset */
        return NULL;
    *off = strtoul(p + 1, &p, 16);
    if (*p != ' ' || !(p = strchr(p + 1, ' ')))   /* dev, inode */
        return NULL;
    strtoul(p + 1, &p, 10);
    while (*p == ' ')
        p++;
    return p;
}

/* Collect the executable and libpython mappings, libraries first (in a
 * shared build the executable is a thin stub). */
static int scan_maps(pid_t pid, const char *exe, mapped_file_t *files, int *n)
{
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? -ESRCH : -errno;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end, off;
        char *p = maps_fields(line, &start, &end, &off);
        if (!p)
            continue;
        p[strcspn(p, "\n")] = '\0';
        if (p[0] != '/')
            continue;
        int lib = is_libpython(p);
        if (!lib && strcmp(p, exe) != 0)
            continue;
        mapped_file_t *m = find_or_add(files, n, p, lib);
        if (!m)
            continue;
        if (!m->via[0])
            snprintf(m->via, sizeof m->via, "/proc/%d/map_files/%lx-%lx", (int)pid, start, end);
        if (off == 0 && !m->have_base) {
            m->base = start;
            m->have_base = 1;
        }
    }
    fclose(f);
    /* libraries first */
    for (int i = 1; i < *n; i++)
        if (files[i].is_lib && !files[0].is_lib) {
            mapped_file_t t = files[0];
            files[0] = files[i];
            files[i] = t;
        }
    return 0;
}

static int open_mapped(pid_t pid, const mapped_file_t *m)
{
    char path[PATH_MAX + 64];
    int fd = open(m->via, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    snprintf(path, sizeof path, "/proc/%d/root%s", (int)pid, m->path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : open(m->path, O_RDONLY | O_CLOEXEC);
}

static void note_symbol(elf_syms_t *s, const char *name, const GElf_Sym *sym)
{
    if (sym->st_shndx == SHN_UNDEF || sym->st_value == 0)
        return;
    if (strcmp(name, "_PyRuntime") == 0) {
        s->runtime = sym->st_value;
        s->have_runtime = 1;
    } else if (strcmp(name, "Py_Version") == 0) {
        s->version = sym->st_value;
        s->have_version = 1;
    } else if (strcmp(name, "PyCode_Type") == 0) {
        s->code_type = sym->st_value;
    } else if (strcmp(name, "PyUnicode_Type") == 0) {
        s->unicode_type = sym->st_value;
    } else if (strcmp(name, "PyBytes_Type") == 0) {
        s->bytes_type = sym->st_value;
    } else if (strcmp(name, "_PyEval_EvalFrameDefault") == 0) {
        s->eval = sym->st_value;
        s->eval_size = sym->st_size;
    } else {
        for (int i = 0; i < AT_PYSYM_COUNT; i++)
            if (strcmp(name, at_pysym_names[i]) == 0)
                s->known[i] = sym->st_value;
    }
}

static void scan_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, elf_syms_t *s)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || !sh->sh_entsize)
        return;
    size_t count = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
        if (name && name[0] && (name[0] == '_' || name[0] == 'P'))
            note_symbol(s, name, &sym);
    }
}

static int first_load_vaddr(Elf *elf, uint64_t *out)
{
    size_t n;
    if (elf_getphdrnum(elf, &n) != 0)
        return -ENOEXEC;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
            *out = ph.p_vaddr & ~(uint64_t)0xfff;
            return 0;
        }
    }
    return -ENOEXEC;
}

/* Read the symbols we need from an ELF file: .dynsym, then .symtab. */
static int read_elf_syms(int fd, elf_syms_t *s)
{
    memset(s, 0, sizeof *s);
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    int rc = -ENOEXEC;
    if (!elf || elf_kind(elf) != ELF_K_ELF || first_load_vaddr(elf, &s->first_load) < 0)
        goto out;
    for (int pass = 0; pass < 2; pass++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(elf, scn))) {
            GElf_Shdr sh;
            if (gelf_getshdr(scn, &sh) && sh.sh_type == (pass ? SHT_SYMTAB : SHT_DYNSYM))
                scan_symtab(elf, scn, &sh, s);
        }
        if (s->have_runtime && s->have_version && s->code_type && s->eval)
            break;
    }
    rc = 0;
out:
    if (elf)
        elf_end(elf);
    return rc;
}

/* "3.10" from ".../python3.10" or "libpython3.10.so.1.0"; 0 if none.
 * *ft_out (when given) is set for free-threaded names: "python3.13t". */
static int version_from_name(const char *path, char *out, size_t n, int *ft_out)
{
    const char *base = strrchr(path, '/');
    const char *p = strstr(base ? base + 1 : path, "python");
    if (ft_out)
        *ft_out = 0;
    if (!p || !isdigit((unsigned char)p[6]))
        return 0;
    int major = 0, minor = -1, len = 0;
    if (sscanf(p + 6, "%d.%d%n", &major, &minor, &len) == 2 && len > 0) {
        snprintf(out, n, "%d.%d", major, minor);
        if (ft_out)
            *ft_out = p[6 + len] == 't';
    } else {
        snprintf(out, n, "%d", major);
    }
    return 1;
}

/* Whether archtrace has a table for a "3.12"-style version name. */
static int name_supported(const char *ver)
{
    int major = 0, minor = -1;
    return sscanf(ver, "%d.%d", &major, &minor) == 2 && at_pylayout_find(major, minor) != NULL;
}

const char *at_py_proc_supported(char *buf, size_t size)
{
    size_t n;
    const at_pylayout_t *all = at_pylayout_all(&n);
    snprintf(buf, size, "%s to %s", n ? all[0].name : "?", n ? all[n - 1].name : "?");
    return buf;
}

static void format_version(unsigned long v, char *out, size_t n)
{
    static const char *levels[16] = { [0xa] = "a", [0xb] = "b", [0xc] = "rc" };
    unsigned level = (v >> 4) & 0xf;
    int len = snprintf(out, n, "%lu.%lu.%lu", (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff);
    if (level != 0xf && levels[level] && len > 0 && (size_t)len < n)
        snprintf(out + len, n - (size_t)len, "%s%lu", levels[level], v & 0xf);
}

static int permission_error(pid_t pid, int rc, char *err, size_t errlen)
{
    set_err(err, errlen, "cannot read process %d: %s (%s)", (int)pid, at_errstr(-rc),
            at_remote_permission_hint());
    return rc;
}

/* Resolve addresses in one candidate file; 1 when it holds _PyRuntime. */
static int try_candidate(at_py_proc_t *p, const mapped_file_t *m, elf_syms_t *s)
{
    int fd = open_mapped(p->pid, m);
    if (fd < 0)
        return 0;
    int rc = read_elf_syms(fd, s);
    close(fd);
    if (rc < 0 || !s->have_runtime || !m->have_base)
        return 0;
    p->bias = m->base - s->first_load;
    p->runtime = p->bias + s->runtime;
    p->code_type = s->code_type ? p->bias + s->code_type : 0;
    p->unicode_type = s->unicode_type ? p->bias + s->unicode_type : 0;
    p->bytes_type = s->bytes_type ? p->bias + s->bytes_type : 0;
    for (int i = 0; i < AT_PYSYM_COUNT; i++)
        p->known[i] = s->known[i] ? p->bias + s->known[i] : 0;
    p->eval_start = s->eval ? p->bias + s->eval : 0;
    p->eval_end = s->eval ? p->eval_start + s->eval_size : 0;
    p->shared = m->is_lib;
    snprintf(p->path, sizeof p->path, "%s", m->path);
    return 1;
}

static int refuse_unsupported(const at_py_proc_t *p, const char *ver, char *err, size_t errlen)
{
    char range[32];
    set_err(err, errlen, "process %d runs Python %s; archtrace supports CPython %s", (int)p->pid, ver,
            at_py_proc_supported(range, sizeof range));
    return -EPROTONOSUPPORT;
}

static int refuse_free_threaded(const at_py_proc_t *p, const char *ver, char *err, size_t errlen)
{
    set_err(err, errlen, "process %d runs a free-threaded Python %s, which archtrace does not support: "
            "it has no GIL to account for and another object layout", (int)p->pid, ver);
    return -EPROTONOSUPPORT;
}

/* No _PyRuntime anywhere: another Python by its name, or not Python. */
static int classify_without_runtime(at_py_proc_t *p, const char *exe, mapped_file_t *files,
                                    int n, char *err, size_t errlen)
{
    char ver[16];
    int ft = 0;
    for (int i = 0; i < n; i++)
        if (version_from_name(files[i].path, ver, sizeof ver, &ft) && (ft || !name_supported(ver)))
            return ft ? refuse_free_threaded(p, ver, err, errlen) : refuse_unsupported(p, ver, err, errlen);
    if (version_from_name(exe, ver, sizeof ver, NULL) && name_supported(ver)) {
        set_err(err, errlen, "process %d (%s) looks like Python %s but exports no _PyRuntime",
                (int)p->pid, p->comm, ver);
        return -EPROTO;
    }
    set_err(err, errlen, "process %d (%s) is not a Python process", (int)p->pid, p->comm);
    return -ENOEXEC;
}

/* Whether field + width bytes lie within [0, limit); a missing field
 * (AT_PYLAYOUT_NONE) fits. */
static int fits(int32_t field, int32_t width, int32_t limit)
{
    return field == AT_PYLAYOUT_NONE || (field >= 0 && field <= limit - width);
}

static int frame_fits(const at_pylayout_t *L)
{
    return fits(L->iframe_code, 8, AT_READ_FRAME) && fits(L->iframe_previous, 8, AT_READ_FRAME) &&
           fits(L->iframe_instr, 8, AT_READ_FRAME) && fits(L->iframe_owner, 1, AT_READ_FRAME) &&
           fits(L->iframe_is_entry, 1, AT_READ_FRAME);
}

static int code_fits(const at_pylayout_t *L)
{
    int32_t end = L->code_code_adaptive;
    return end > 0 && end <= AT_READ_CODE_MAX && fits(L->object_type, 8, end) && fits(L->var_size, 8, end) &&
           fits(L->code_filename, 8, end) && fits(L->code_qualname, 8, end) && fits(L->code_linetable, 8, end) &&
           fits(L->code_firstlineno, 4, end) && fits(L->code_firsttraceable, 4, end) && L->sizeof_codeunit == 2 &&
           fits(L->code_nlocalsplus, 4, end) && fits(L->code_argcount, 4, end) &&
           fits(L->code_kwonlyargcount, 4, end) && fits(L->code_flags, 4, end) &&
           fits(L->code_localsplusnames, 8, end) && fits(L->code_localspluskinds, 8, end);
}

/* The fields `dump --locals` takes from a value's header, within one
 * read of AT_READ_VALUE_HEAD_MAX bytes. */
static int values_fit(const at_pylayout_t *L)
{
    const int32_t words[] = { L->tuple_items, L->list_items, L->float_fval, L->cell_ref, L->dict_used,
                              L->set_used, L->set_mask, L->set_table, L->var_size, L->object_type };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!fits(words[i], 8, AT_READ_VALUE_HEAD_MAX))
            return 0;
    return L->sizeof_setentry >= 16 && L->sizeof_setentry <= 64 && L->iframe_localsplus >= 0;
}

static int tstate_fits(const at_pylayout_t *L)
{
    return fits(L->tstate_prev, 8, AT_READ_TSTATE_MAX) && fits(L->tstate_next, 8, AT_READ_TSTATE_MAX) &&
           fits(L->tstate_interp, 8, AT_READ_TSTATE_MAX) && fits(L->tstate_cframe, 8, AT_READ_TSTATE_MAX) &&
           fits(L->tstate_current_frame, 8, AT_READ_TSTATE_MAX) &&
           fits(L->tstate_thread_id, 8, AT_READ_TSTATE_MAX) &&
           fits(L->tstate_native_thread_id, 8, AT_READ_TSTATE_MAX) &&
           (L->tstate_cframe != AT_PYLAYOUT_NONE) != (L->tstate_current_frame != AT_PYLAYOUT_NONE);
}

/* The interpreter's next, threads and runtime within one read; the
 * runtime's interpreter pointers (and 3.11's GIL) within another. */
static int interp_and_runtime_fit(const at_pylayout_t *L)
{
    int32_t lo = L->interp_next, hi = L->interp_next;
    const int32_t f[] = { L->interp_tstate_head, L->interp_runtime };
    for (size_t i = 0; i < 2; i++) {
        lo = f[i] < lo ? f[i] : lo;
        hi = f[i] > hi ? f[i] : hi;
    }
    int32_t rt_lo = L->rt_interpreters_head < L->rt_interpreters_main ? L->rt_interpreters_head
                                                                       : L->rt_interpreters_main;
    int32_t rt_hi = L->rt_gil != AT_PYLAYOUT_NONE ? L->rt_gil + L->gil_switch_number : L->rt_interpreters_main;
    return lo >= 0 && hi - lo <= AT_READ_INTERP_MAX - 8 && rt_lo >= 0 && rt_hi - rt_lo <= AT_READ_RT_MAX - 8 &&
           fits(L->gil_last_holder, 8, AT_READ_GIL_MAX) && fits(L->gil_locked, 4, AT_READ_GIL_MAX) &&
           fits(L->gil_switch_number, 8, AT_READ_GIL_MAX) &&
           (L->rt_gil != AT_PYLAYOUT_NONE || L->interp_ceval_gil >= 0);
}

static int objects_fit(const at_pylayout_t *L)
{
    int32_t ascii = L->sizeof_pyasciiobject;
    return ascii > 0 && ascii <= L->sizeof_pycompactunicodeobject &&
           L->sizeof_pycompactunicodeobject <= AT_READ_STR_HEAD_MAX && fits(L->object_type, 8, ascii) &&
           fits(L->unicode_length, 8, ascii) && fits(L->unicode_state, 4, ascii) &&
           fits(L->var_size, 8, L->bytes_sval) && L->bytes_sval <= AT_READ_STR_HEAD_MAX &&
           L->long_digits <= AT_READ_LONG_HEAD_MAX && fits(L->var_size, 8, L->long_digits) &&
           fits(L->long_lv_tag, 8, L->long_digits) && L->dict_values == L->dict_keys + 8;
}

int at_py_proc_layout_fits(const at_pylayout_t *L)
{
    return L->major == 3 && frame_fits(L) && code_fits(L) && tstate_fits(L) && interp_and_runtime_fit(L) &&
           objects_fit(L) && values_fit(L);
}

int at_py_proc_pick_layout(at_py_proc_t *p, const void *dbg, size_t dbg_len, char *err, size_t errlen)
{
    char name_ver[16];
    int ft = 0;
    const at_pylayout_t *base = at_pylayout_find_hex(p->version_hex);
    if (version_from_name(p->path, name_ver, sizeof name_ver, &ft) && ft)
        return refuse_free_threaded(p, p->version, err, errlen);
    if (!base)
        return refuse_unsupported(p, p->version, err, errlen);
    at_pylayout_t chosen = *base;
    int rc = 0;
    if (base->rt_debug_offsets != AT_PYLAYOUT_NONE)
        rc = dbg ? at_pylayout_apply_debug(base, dbg, dbg_len, &chosen) : -EINVAL;
    if (rc == -EOPNOTSUPP)
        return refuse_free_threaded(p, p->version, err, errlen);
    if (rc < 0 || !at_py_proc_layout_fits(&chosen)) {
        set_err(err, errlen, "process %d: the debug offsets of Python %s %s; refusing to guess", (int)p->pid,
                p->version, !dbg ? "cannot be read" : rc < 0 ? "do not check out (cookie, version or an offset)"
                                                        : "lie past what archtrace reads of their structs");
        return -EPROTO;
    }
    p->layout = chosen;
    return 0;
}

/* From 3.13 the offsets in the target's own _PyRuntime: read them
 * (NULL, 0 when the version has none or they cannot be read). */
static const void *read_debug_offsets(at_py_proc_t *p, uint8_t *buf, size_t size, size_t *len)
{
    const at_pylayout_t *base = at_pylayout_find_hex(p->version_hex);
    *len = 0;
    if (!base || base->rt_debug_offsets == AT_PYLAYOUT_NONE ||
        at_remote_read(&p->mem, p->runtime + (uint64_t)base->rt_debug_offsets, buf, size) < 0)
        return NULL;
    *len = size;
    return buf;
}

static int check_version(at_py_proc_t *p, const elf_syms_t *s, char *err, size_t errlen)
{
    uint64_t v = 0;
    if (!s->have_version) {
        char ver[16];
        if (!version_from_name(p->path, ver, sizeof ver, NULL))
            snprintf(ver, sizeof ver, "older than 3.11");
        return refuse_unsupported(p, ver, err, errlen);
    }
    int rc = at_remote_read_u64(&p->mem, p->bias + s->version, &v);
    if (rc == -EPERM || rc == -EACCES)
        return permission_error(p->pid, rc, err, errlen);
    if (rc == -ESRCH) {
        set_err(err, errlen, "no such process: %d", (int)p->pid);
        return rc;
    }
    if (rc < 0) {
        set_err(err, errlen, "cannot read Py_Version of process %d: %s", (int)p->pid, at_errstr(-rc));
        return rc;
    }
    p->version_hex = (unsigned long)v;
    format_version(p->version_hex, p->version, sizeof p->version);
    uint8_t dbg[AT313_SIZEOF_DEBUG_OFFSETS];
    size_t dbg_len;
    const void *d = read_debug_offsets(p, dbg, sizeof dbg, &dbg_len);
    if ((rc = at_py_proc_pick_layout(p, d, dbg_len, err, errlen)) < 0)
        return rc;
    /* 3.13's frames name a PyObject (f_executable), not surely code:
     * without PyCode_Type to check it against, no frame is trusted */
    if (p->layout.minor >= 13 && !p->code_type) {
        set_err(err, errlen, "process %d: Python %s exports no PyCode_Type to check its frames against; "
                "refusing to guess", (int)p->pid, p->version);
        return -EPROTO;
    }
    return 0;
}

int at_py_proc_open(at_py_proc_t *p, pid_t pid, char *err, size_t errlen)
{
    mapped_file_t files[MAX_CANDIDATES];
    char exe[PATH_MAX], link[64];
    elf_syms_t s;
    int n = 0, rc;

    memset(p, 0, sizeof *p);
    p->pid = pid;
    at_remote_init(&p->mem, pid);
    if (pid <= 0 || at_py_proc_gone(pid)) {
        set_err(err, errlen, "no such process: %d", (int)pid);
        return -ESRCH;
    }
    read_comm(pid, p->comm, sizeof p->comm);
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t len = readlink(link, exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    rc = scan_maps(pid, exe, files, &n);
    if (rc == -ESRCH) {
        set_err(err, errlen, "no such process: %d", (int)pid);
        return rc;
    }
    if (rc < 0)
        return permission_error(pid, rc, err, errlen);
    for (int i = 0; i < n; i++)
        if (try_candidate(p, &files[i], &s))
            return check_version(p, &s, err, errlen);
    return classify_without_runtime(p, exe, files, n, err, errlen);
}

int at_py_proc_check(at_py_proc_t *p, uint64_t *head, char *err, size_t errlen)
{
    const at_pylayout_t *L = &p->layout;
    uint64_t back = 0;
    if (!L->major) {
        set_err(err, errlen, "process %d: no layout chosen for its Python", (int)p->pid);
        return -EPROTO;
    }
    int rc = at_remote_read_u64(&p->mem, p->runtime + (uint64_t)L->rt_interpreters_head, head);
    if (rc == 0 && *head == 0) {
        set_err(err, errlen, "process %d: the Python interpreter is not initialised yet", (int)p->pid);
        return -EAGAIN;
    }
    if (rc == 0)
        rc = at_remote_read_u64(&p->mem, *head + (uint64_t)L->interp_runtime, &back);
    if (rc == -EPERM || rc == -EACCES)
        return permission_error(p->pid, rc, err, errlen);
    if (rc == -ESRCH) {
        set_err(err, errlen, "no such process: %d", (int)p->pid);
        return rc;
    }
    if (rc < 0 || back != p->runtime) {
        set_err(err, errlen, "process %d: interpreter layout does not match CPython %s "
                "(interp->runtime != &_PyRuntime); refusing to guess", (int)p->pid, L->name);
        return -EPROTO;
    }
    return 0;
}

int at_py_proc_exit_status(int rc)
{
    switch (rc) {
    case 0:                return 0;
    case -ESRCH:           return AT_EXIT_NO_SUCH_PROCESS;
    case -ENOEXEC:         return AT_EXIT_NOT_PYTHON;
    case -EPROTONOSUPPORT: return AT_EXIT_UNSUPPORTED;
    case -EPERM:
    case -EACCES:          return AT_EXIT_PERMISSION;
    default:               return AT_EXIT_FAILED;
    }
}

const char *at_py_proc_build(const at_py_proc_t *p)
{
    return p->shared ? "shared" : "static";
}
