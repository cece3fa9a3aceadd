/* SPDX-License-Identifier: MIT */
/* bpf_elf.c - where to put uprobes: function offsets, USDT notes and their arguments, mapped libraries.
 *
 * Uprobes are placed by (file, file offset), so every address found in an
 * ELF file is turned into a file offset through the PT_LOAD segment that
 * holds it.
 *
 * USDT: the notes are read here only to plan (does this interpreter have
 * python:import__find__load__start and the others, or do the views fall
 * back to uprobes on functions); libbpf attaches them
 * (bpf_program__attach_usdt, BPF_USDT in the probes).  Until issue 18
 * this file decoded each note's arguments ("-4@112(%rsp)") into words
 * the probes read from the uprobe's cookie; libbpf 1.1 does the same
 * from the same notes, for every argument form (ours refused SIB
 * operands and fell back), sets the semaphores, and attaches every site
 * (ours kept 8).  It attaches the same probes on both 3.11 shapes:
 * Debian's static /usr/bin/python3.11 has the notes (usdt for imports
 * and GC, pid-filtered for record --bpf and with pid -1 for the agent,
 * checked by test_bpf, test_record_bpf and test_agent); the shared
 * pyenv/python:3.11-slim builds, 3.12 and 3.13 here have none (built
 * without --with-dtrace), so they take the function uprobes either way.
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

typedef struct note_ctx {
    Elf *elf;
    const char *provider, *name;
    uint64_t base_addr;        /* .stapsdt.base's address, 0 when absent   */
    at_bpf_usdt_t *u;
} note_ctx_t;

/* One NT_STAPSDT descriptor: pc, base, semaphore, provider, name, args. */
static void take_note(note_ctx_t *c, const char *desc, size_t len)
{
    uint64_t pc, base, sema, off;
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
    if (c->u->nsites >= AT_BPF_USDT_SITES || vaddr_to_off(c->elf, pc, &off) < 0)
        return;
    if (sema && vaddr_to_off(c->elf, sema, &c->u->sema_off) < 0)
        return;
    c->u->off[c->u->nsites++] = off;
}

int at_bpf_elf_usdt(const char *path, const char *provider, const char *name, at_bpf_usdt_t *u)
{
    elf_file_t f;
    GElf_Shdr sh;
    int rc = elf_open(&f, path);
    if (rc < 0)
        return rc;
    memset(u, 0, sizeof *u);
    note_ctx_t c = { f.elf, provider, name, 0, u };
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
    return u->nsites ? 0 : -ENOENT;
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
