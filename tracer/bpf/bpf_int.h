/* SPDX-License-Identifier: MIT */
/* bpf_int.h - what the eBPF backend's files share: a process's state (struct
 * at_bpf), its plan, the probe sets and the host that keeps them, and the
 * functions one file calls in another.
 *
 * bpf_load.c runs a process's recording (start, events, stop) and calls
 * bpf_attach.c (what to attach, attaching it), bpf_sets.c (the probe sets
 * and the processes they watch) and bpf_read.c (reading the probes' maps).
 * The helpers of bpf_elf.c, bpf_layout.c, bpf_tracefs.c and bpf_sym.c are
 * in ebpf.h's internal part.
 */
#ifndef AT_BPF_INT_H
#define AT_BPF_INT_H
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/ebpf.h"
#include "remote/py_proc.h"
#include "session/stacks.h"

struct archtrace_bpf;
struct bpf_link;
struct ring_buffer;

/* How a view attaches (plan_t, set_key_t). */
enum { MODE_OFF = 0, MODE_USDT, MODE_UPROBE };

/* What to attach where, decided from the target's files before any BPF. */
typedef struct plan {
    char py[PATH_MAX + 64];       /* /proc/PID/root + the file with _PyRuntime */
    char libc[PATH_MAX + 64];     /* /proc/PID/root + libc.so.6           */
    uint64_t cond_wait;           /* pthread_cond_timedwait in libc       */
    int imports, gc;              /* MODE_*                               */
    at_bpf_usdt_t imp_start, imp_done, gc_start, gc_done;
    uint64_t imp_level, imp_audit, gc_main; /* fallback uprobe offsets    */
    double hz;                    /* sampling rate, 0 = no sampler        */
    uint32_t ring_bytes;          /* the events' ring buffer              */
} plan_t;

/* Links kept together, destroyed together. */
typedef struct links {
    struct bpf_link **l;
    int n, cap;
    int err;                      /* first attach failure (-errno)        */
} links_t;

/* What makes two processes share a probe set: the same files and the
 * same things to read in them. */
typedef struct set_key {
    dev_t py_dev, libc_dev;
    ino_t py_ino, libc_ino;
    int gil, imports, gc, sampler;/* views planned                        */
    struct at_bpf_py py;          /* the version's offsets (rodata)       */
} set_key_t;

enum { SET_LOADING, SET_READY, SET_FAILED };

typedef struct set {
    at_bpf_host_t *host;          /* NULL: one process's (record --bpf)   */
    struct set *next;             /* in host->sets                        */
    set_key_t key;
    int refs;                     /* processes (and starts) using it      */
    int state;                    /* SET_*                                */
    int err;                      /* SET_FAILED: -errno ...               */
    char why[512];                /* ... and the reason                   */
    struct archtrace_bpf *skel;
    struct ring_buffer *rb;
    links_t links;                /* its uprobes                          */
    int avail[AT_BPF_VIEWS];      /* GIL, imports, GC as attached         */
    char how[AT_BPF_VIEWS][AT_BPF_HOW_MAX];
    char used[AT_BPF_MAX_PROCS];  /* slots taken                          */
    at_bpf_t *slots[AT_BPF_MAX_PROCS]; /* ... and whose events go where   */
    int nslots;                   /* highest used slot + 1                */
} set_t;

/* Every probe set of the host, shared by the agent's attacher threads
 * (starts and stops) and its main thread (at_bpf_host_poll).  The lock
 * guards the list, each set's refs, state and slots; the slow work
 * (load, attach, detach) is done outside it. */
struct at_bpf_host {
    pthread_mutex_t lock;
    pthread_cond_t changed;       /* a set finished loading               */
    set_t *sets;
    int keep;                     /* sets outlive their last process      */
};

struct at_bpf {
    at_py_proc_t proc;            /* the target's interpreter             */
    struct at_bpf_py py;          /* its version's offsets (the set's rodata) */
    struct at_bpf_proc pp;        /* its addresses (its procs entry)      */
    set_t *set;                   /* the probes it is watched by          */
    int slot;                     /* its row in the set, -1: none yet     */
    int watching;                 /* its procs entry is in                */
    links_t links;                /* its sampler's perf events            */
    int pidfd, epfd;              /* target exit, and what poll waits on  */
    at_stacks_t *stacks;          /* samples, aggregated                  */
    at_bpf_sym_t *sym;            /* names their Python frames            */
    at_bpf_data_t data;           /* everything else recorded             */
    plan_t plan;
    char dir[PATH_MAX];           /* the session                          */
    uint64_t cut_ns;              /* at_bpf_cut_stacks: the last cut      */
    uint64_t cut_samples;         /* ... and data.samples then            */
};

/* ---- bpf_load.c: messages and events --------------------------------- */

/* printf into why[n] (nothing when why is NULL). */
void at_bpf_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The one line for a kernel that refuses BPF (err > 0) while doing what. */
void at_bpf_refusal(char *why, size_t n, const char *what, int err);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t at_bpf_now_ns(void);
/* The last component of path p. */
const char *at_bpf_base_name(const char *p);
/* The ring buffer callback of a set (ctx): each event to its process. */
int at_bpf_on_event(void *ctx, void *data, size_t size);

/* ---- bpf_attach.c: the plan, and attaching it -------------------------- */

/* b->plan and b's views as planned from its files and o (no BPF yet). */
void at_bpf_plan(at_bpf_t *b, const at_options_t *o);
/* Load only the programs s->key's plan uses. */
void at_bpf_set_autoload(set_t *s);
/* s's uprobes on pid (-1: every process that maps the files), as b
 * planned them; a view that cannot attach is said in b. */
void at_bpf_set_attach(set_t *s, at_bpf_t *b, pid_t pid);
/* Attach b's sampler (b->plan.hz > 0): its perf events go in b->links. */
void at_bpf_sampler_start(at_bpf_t *b);
/* Destroy the links of ls from the last down to index from. */
void at_bpf_links_drop(links_t *ls, int from);
/* Destroy every link of ls and free its array. */
void at_bpf_links_free(links_t *ls);

/* ---- bpf_sets.c: probe sets and the processes they watch --------------- */

/* b->set: the host's set for b's files (h; made or joined), or one of
 * b's own (h NULL).  0, or -errno with the reason in why. */
int at_bpf_set_join(at_bpf_host_t *h, at_bpf_t *b, char *why, size_t n);
/* One user fewer of s; the last one destroys it. */
void at_bpf_set_put(set_t *s);
/* Take a slot of b's set and add b to the probes' procs map. */
int at_bpf_watch(at_bpf_t *b, char *why, size_t n);
/* Take b out of the procs map: the probes stop counting it. */
void at_bpf_unwatch(at_bpf_t *b);
/* Hand b no more of its set's events. */
void at_bpf_unregister(at_bpf_t *b);
/* Give b's slot back, and its threads' rows in a host's shared maps. */
void at_bpf_release_slot(at_bpf_t *b);

/* ---- bpf_read.c: the probes' maps -------------------------------------- */

/* Read b's maps as of end, and write <pid>.bpf and <pid>.stacks.  0, or
 * the first -errno. */
int at_bpf_save_recording(at_bpf_t *b, uint64_t end);

#endif
