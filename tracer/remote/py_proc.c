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
#include "py311.h"

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
    int have_runtime, have_version;
} elf_syms_t;

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
        int pos = 0;
        if (sscanf(line, "%lx-%lx %*s %lx %*s %*u %n", &start, &end, &off, &pos) < 3 || !pos)
            continue;
        char *p = line + pos;
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

/* "3.10" from ".../python3.10" or "libpython3.10.so.1.0"; 0 if none. */
static int version_from_name(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    const char *p = strstr(base ? base + 1 : path, "python");
    if (!p || !isdigit((unsigned char)p[6]))
        return 0;
    int major = 0, minor = -1, len = 0;
    if (sscanf(p + 6, "%d.%d%n", &major, &minor, &len) == 2 && len > 0)
        snprintf(out, n, "%d.%d", major, minor);
    else
        snprintf(out, n, "%d", major);
    return 1;
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
    p->eval_start = s->eval ? p->bias + s->eval : 0;
    p->eval_end = s->eval ? p->eval_start + s->eval_size : 0;
    p->shared = m->is_lib;
    snprintf(p->path, sizeof p->path, "%s", m->path);
    return 1;
}

/* No _PyRuntime anywhere: another Python by its name, or not Python. */
static int classify_without_runtime(at_py_proc_t *p, const char *exe, mapped_file_t *files,
                                    int n, char *err, size_t errlen)
{
    char ver[16];
    for (int i = 0; i < n; i++)
        if (version_from_name(files[i].path, ver, sizeof ver) && strcmp(ver, "3.11") != 0) {
            set_err(err, errlen, "process %d runs Python %s; archtrace supports 3.11 only",
                    (int)p->pid, ver);
            return -EPROTONOSUPPORT;
        }
    if (version_from_name(exe, ver, sizeof ver) && strcmp(ver, "3.11") == 0) {
        set_err(err, errlen, "process %d (%s) looks like Python 3.11 but exports no _PyRuntime",
                (int)p->pid, p->comm);
        return -EPROTO;
    }
    set_err(err, errlen, "process %d (%s) is not a Python process", (int)p->pid, p->comm);
    return -ENOEXEC;
}

static int check_version(at_py_proc_t *p, const elf_syms_t *s, char *err, size_t errlen)
{
    uint64_t v = 0;
    if (!s->have_version) {
        char ver[16];
        if (!version_from_name(p->path, ver, sizeof ver))
            snprintf(ver, sizeof ver, "older than 3.11");
        set_err(err, errlen, "process %d runs Python %s; archtrace supports 3.11 only", (int)p->pid, ver);
        return -EPROTONOSUPPORT;
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
    if (((v >> 24) & 0xff) != 3 || ((v >> 16) & 0xff) != 11) {
        set_err(err, errlen, "process %d runs Python %s; archtrace supports 3.11 only",
                (int)p->pid, p->version);
        return -EPROTONOSUPPORT;
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
    uint64_t back = 0;
    int rc = at_remote_read_u64(&p->mem, p->runtime + AT_RT_INTERPRETERS_HEAD, head);
    if (rc == 0 && *head == 0) {
        set_err(err, errlen, "process %d: the Python interpreter is not initialised yet", (int)p->pid);
        return -EAGAIN;
    }
    if (rc == 0)
        rc = at_remote_read_u64(&p->mem, *head + AT_INTERP_RUNTIME, &back);
    if (rc == -EPERM || rc == -EACCES)
        return permission_error(p->pid, rc, err, errlen);
    if (rc == -ESRCH) {
        set_err(err, errlen, "no such process: %d", (int)p->pid);
        return rc;
    }
    if (rc < 0 || back != p->runtime) {
        set_err(err, errlen, "process %d: interpreter layout does not match CPython 3.11 "
                "(interp->runtime != &_PyRuntime); refusing to guess", (int)p->pid);
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
