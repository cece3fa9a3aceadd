/* SPDX-License-Identifier: MIT */
/* bpf_elf.c - where to put uprobes: function offsets, USDT notes and their arguments, mapped libraries.
 *
 * Uprobes are placed by (file, file offset), so every address found in an
 * ELF file is turned into a file offset through the PT_LOAD segment that
 * holds it.  USDT probes are plain uprobes here: the note gives the site,
 * the semaphore (the kernel bumps it through ref_ctr_offset, which turns
 * the interpreter's probe code on) and where each argument lives, which
 * we decode into the word the BPF side reads (archtrace_bpf.h).
 */
#include "bpf/ebpf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT_STAPSDT     3
#define VERSYM_HIDDEN  0x8000

typedef struct elf_file {
    int fd;
    Elf *elf;
} elf_file_t;

static int elf_open(elf_file_t *f, const char *path)
{
    f->elf = NULL;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return -errno;
    elf_version(EV_CURRENT);
    f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
    if (!f->elf || elf_kind(f->elf) != ELF_K_ELF) {
        if (f->elf)
            elf_end(f->elf);
        close(f->fd);
        return -ENOEXEC;
    }
    return 0;
}

static void elf_close(elf_file_t *f)
{
    elf_end(f->elf);
    close(f->fd);
}

/* vaddr -> file offset through the PT_LOAD segment holding it. */
static int vaddr_to_off(Elf *elf, uint64_t vaddr, uint64_t *off)
{
    size_t n;
    if (elf_getphdrnum(elf, &n) != 0)
        return -ENOEXEC;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
            *off = vaddr - ph.p_vaddr + ph.p_offset;
            return 0;
        }
    }
    return -ENOENT;
}

static Elf_Scn *find_section(Elf *elf, Elf64_Word type, const char *name, GElf_Shdr *sh)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        if (!gelf_getshdr(scn, sh) || sh->sh_type != type)
            continue;
        const char *n = elf_strptr(elf, shstrndx, sh->sh_name);
        if (!name || (n && strcmp(n, name) == 0))
            return scn;
    }
    return NULL;
}

/* "name" or "name@@VERSION" (the default version in a .symtab). */
static int name_matches(const char *sym, const char *name, size_t len)
{
    if (strncmp(sym, name, len) != 0)
        return 0;
    return sym[len] == '\0' || strncmp(sym + len, "@@", 2) == 0;
}

/* Search one symbol table; versym (may be NULL) marks hidden versions. */
static int search_syms(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, Elf_Data *versym,
                       const char *name, uint64_t *vaddr)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    size_t len = strlen(name);
    if (!data || !sh->sh_entsize)
        return -ENOENT;
    size_t count = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        GElf_Versym vs;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        int type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
            continue;
        const char *s = elf_strptr(elf, sh->sh_link, sym.st_name);
        if (!s || !name_matches(s, name, len))
            continue;
        if (versym && gelf_getversym(versym, (int)i, &vs) && (vs & VERSYM_HIDDEN))
            continue;  /* an old version kept for old binaries */
        *vaddr = sym.st_value;
        return 0;
    }
    return -ENOENT;
}

int at_bpf_elf_func(const char *path, const char *name, uint64_t *file_off)
{
    elf_file_t f;
    GElf_Shdr sh, vsh;
    uint64_t vaddr = 0;
    int rc = elf_open(&f, path);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    Elf_Scn *scn = find_section(f.elf, SHT_SYMTAB, NULL, &sh);
    if (scn)
        rc = search_syms(f.elf, scn, &sh, NULL, name, &vaddr);
    if (rc < 0 && (scn = find_section(f.elf, SHT_DYNSYM, NULL, &sh))) {
        Elf_Scn *vscn = find_section(f.elf, SHT_GNU_versym, NULL, &vsh);
        rc = search_syms(f.elf, scn, &sh, vscn ? elf_getdata(vscn, NULL) : NULL, name, &vaddr);
    }
    if (rc == 0)
        rc = vaddr_to_off(f.elf, vaddr, file_off);
    elf_close(&f);
    return rc;
}

/* ---- USDT ------------------------------------------------------------------ */

/* x86_64 struct pt_regs, in 8-byte slots. */
enum { R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8, RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP,
       CS, EFLAGS, RSP, SS };

static const struct { const char *names[4]; int slot; } regs[] = {
    { { "rax", "eax", "ax", "al" }, RAX },   { { "rbx", "ebx", "bx", "bl" }, RBX },
    { { "rcx", "ecx", "cx", "cl" }, RCX },   { { "rdx", "edx", "dx", "dl" }, RDX },
    { { "rsi", "esi", "si", "sil" }, RSI },  { { "rdi", "edi", "di", "dil" }, RDI },
    { { "rbp", "ebp", "bp", "bpl" }, RBP },  { { "rsp", "esp", "sp", "spl" }, RSP },
    { { "r8", "r8d", "r8w", "r8b" }, R8 },   { { "r9", "r9d", "r9w", "r9b" }, R9 },
    { { "r10", "r10d", "r10w", "r10b" }, R10 }, { { "r11", "r11d", "r11w", "r11b" }, R11 },
    { { "r12", "r12d", "r12w", "r12b" }, R12 }, { { "r13", "r13d", "r13w", "r13b" }, R13 },
    { { "r14", "r14d", "r14w", "r14b" }, R14 }, { { "r15", "r15d", "r15w", "r15b" }, R15 },
    { { "rip", NULL, NULL, NULL }, RIP },
};

static int reg_slot(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        for (int k = 0; k < 4; k++)
            if (regs[i].names[k] && strlen(regs[i].names[k]) == len &&
                strncmp(regs[i].names[k], name, len) == 0)
                return regs[i].slot;
    return -1;
}

static int size_log2(long size)
{
    switch (size) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return -1;
    }
}

/* "%reg)" or "%reg" at s: the slot, with *end past the name. */
static int parse_reg(const char *s, const char **end)
{
    if (*s != '%')
        return -1;
    size_t len = strspn(s + 1, "abcdefghijklmnopqrstuvwxyz0123456789");
    *end = s + 1 + len;
    return reg_slot(s + 1, len);
}

int at_bpf_usdt_arg(const char *spec, uint32_t *word)
{
    char *end;
    long size = strtol(spec, &end, 10);
    int lg = size_log2(size < 0 ? -size : size);
    if (end == spec || *end != '@' || lg < 0)
        return -EINVAL;
    uint32_t w = AT_BPF_ARG_VALID | (uint32_t)lg << AT_BPF_ARG_SIZE_SHIFT;
    if (size < 0)
        w |= AT_BPF_ARG_SIGNED;
    const char *p = end + 1, *rest;
    long off = 0;
    int slot;
    if (*p == '$') {                            /* constant */
        off = strtol(p + 1, &end, 0);
        if (end == p + 1 || *end || off < INT16_MIN || off > INT16_MAX)
            return -EINVAL;
        *word = w | AT_BPF_ARG_CONST | ((uint32_t)off & 0xffff);
        return 0;
    }
    if (*p == '%') {                            /* register */
        if ((slot = parse_reg(p, &rest)) < 0 || *rest)
            return -EINVAL;
        *word = w | (uint32_t)slot << AT_BPF_ARG_REG_SHIFT;
        return 0;
    }
    if (*p != '(') {                            /* OFF(%reg) */
        off = strtol(p, &end, 0);
        if (end == p || *end != '(' || off < INT16_MIN || off > INT16_MAX)
            return -EINVAL;
        p = end;
    }
    if ((slot = parse_reg(p + 1, &rest)) < 0 || strcmp(rest, ")") != 0)
        return -EINVAL;                         /* (%base,%index,scale) too */
    *word = w | AT_BPF_ARG_DEREF | (uint32_t)slot << AT_BPF_ARG_REG_SHIFT | ((uint32_t)off & 0xffff);
    return 0;
}

/* The first two arguments of a note ("8@%rax -4@%edx") as a cookie. */
static int note_cookie(const char *args, uint64_t *cookie)
{
    char buf[256];
    char *save = NULL, *tok;
    int i = 0;
    snprintf(buf, sizeof buf, "%s", args);
    *cookie = 0;
    for (tok = strtok_r(buf, " ", &save); tok && i < 2; tok = strtok_r(NULL, " ", &save), i++) {
        uint32_t w;
        if (at_bpf_usdt_arg(tok, &w) < 0)
            return -ENOTSUP;
        *cookie |= (uint64_t)w << (32 * i);
    }
    return 0;
}

typedef struct note_ctx {
    Elf *elf;
    const char *provider, *name;
    uint64_t base_addr;        /* .stapsdt.base's address, 0 when absent   */
    at_bpf_usdt_t *u;
    int bad_args;
} note_ctx_t;

/* One NT_STAPSDT descriptor: pc, base, semaphore, provider, name, args. */
static void take_note(note_ctx_t *c, const char *desc, size_t len)
{
    uint64_t pc, base, sema, off, cookie;
    if (len < 24 + 3)
        return;
    memcpy(&pc, desc, 8);
    memcpy(&base, desc + 8, 8);
    memcpy(&sema, desc + 16, 8);
    const char *prov = desc + 24, *end = desc + len;
    const char *nm = memchr(prov, '\0', (size_t)(end - prov));
    if (!nm++ || nm >= end)
        return;
    const char *args = memchr(nm, '\0', (size_t)(end - nm));
    if (!args++ || args >= end || !memchr(args, '\0', (size_t)(end - args)))
        return;
    if (strcmp(prov, c->provider) != 0 || strcmp(nm, c->name) != 0)
        return;
    if (c->base_addr) {                         /* prelinked: move with base */
        pc += c->base_addr - base;
        if (sema)
            sema += c->base_addr - base;
    }
    if (note_cookie(args, &cookie) < 0) {
        c->bad_args = 1;
        return;
    }
    if (c->u->nsites >= AT_BPF_USDT_SITES || vaddr_to_off(c->elf, pc, &off) < 0)
        return;
    if (sema && vaddr_to_off(c->elf, sema, &c->u->sema_off) < 0)
        return;
    c->u->off[c->u->nsites] = off;
    c->u->cookie[c->u->nsites++] = cookie;
}

int at_bpf_elf_usdt(const char *path, const char *provider, const char *name, at_bpf_usdt_t *u)
{
    elf_file_t f;
    GElf_Shdr sh;
    int rc = elf_open(&f, path);
    if (rc < 0)
        return rc;
    memset(u, 0, sizeof *u);
    note_ctx_t c = { f.elf, provider, name, 0, u, 0 };
    if (find_section(f.elf, SHT_PROGBITS, ".stapsdt.base", &sh))
        c.base_addr = sh.sh_addr;
    Elf_Scn *scn = find_section(f.elf, SHT_NOTE, ".note.stapsdt", &sh);
    Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
    size_t off = 0, name_off, desc_off;
    GElf_Nhdr nh;
    while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        const char *d = (const char *)data->d_buf;
        if (nh.n_type == NT_STAPSDT && nh.n_namesz == 8 && strcmp(d + name_off, "stapsdt") == 0)
            take_note(&c, d + desc_off, nh.n_descsz);
    }
    elf_close(&f);
    if (u->nsites)
        return 0;
    return c.bad_args ? -ENOTSUP : -ENOENT;
}

/* ---- mapped libraries -------------------------------------------------------- */

int at_bpf_mapped_lib(pid_t pid, const char *prefix, char *out, size_t n)
{
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -ESRCH;
    int rc = -ENOENT;
    while (rc < 0 && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p)
            continue;
        p[strcspn(p, "\n")] = '\0';
        const char *base = strrchr(p, '/') + 1;
        if (strncmp(base, prefix, strlen(prefix)) == 0 && !strstr(p, " (deleted)")) {
            snprintf(out, n, "/proc/%d/root%s", (int)pid, p);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}
