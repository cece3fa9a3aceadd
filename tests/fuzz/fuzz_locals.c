/* SPDX-License-Identifier: MIT */
/* fuzz_locals.c - libFuzzer target: the repr and frame-variables readers fed random "target memory".
 *
 * The input is walk_image.h's format; its image starts with three
 * pointers the reads begin from: image word 0 a code object, word 1 a
 * frame running it, word 2 any object.  at_locals_read(frame, code) runs
 * with and without JSON values, at_py_repr(object) once, and again after
 * the patch (the target moved on).  The known types and singletons sit at
 * walk_image.h's WALK_*_TYPE addresses when the flags export them, so a
 * pointer field equal to one passes the type check.  Any break of the
 * contract in py_repr.h and locals.h aborts:
 *   - results are 0 or a -errno; -ESRCH only once the target exited;
 *   - every repr, type and name is NUL-terminated within its buffer and
 *     valid UTF-8, every variable has a repr (and, asked for, a JSON
 *     value unless unbound or unreadable);
 *   - at most AT_LOCALS_MAX variables, and a bounded number of reads per
 *     value (py_repr.c's budget), so a hostile target cannot stall dump.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_target.h"
#include "remote/locals.h"
#include "remote/py_repr.h"
#include "walk_image.h"

/* py_repr.c's read budget is 1024 a value, plus its first probe; a
 * frame reads its code, names, kinds, slots and per variable a name and
 * a cell. */
#define MAX_VALUE_READS 1100u
#define MAX_FRAME_READS (8u + AT_LOCALS_MAX * (MAX_VALUE_READS + 4u))

static void check_rc(int rc)
{
    if (rc > 0 || rc < -4095 || (rc == -ESRCH && !fake_target_died()))
        abort();
}

static void repr_call(at_py_proc_t *proc, uint64_t addr)
{
    at_repr_t r;
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    at_json_t j;
    if (!f)
        return;
    at_json_init(&j, f, 0);
    unsigned before = target.reads;
    int rc = at_py_repr(proc, addr, &r, &j);
    fclose(f);
    check_rc(rc);
    if (target.reads - before > MAX_VALUE_READS || len == 0)
        abort();
    fake_check_text(r.text, sizeof r.text);
    fake_check_text(r.type, sizeof r.type);
    free(json);
}

static void locals_call(at_py_proc_t *proc, uint64_t frame, uint64_t code, int json)
{
    at_frame_locals_t fl;
    unsigned before = target.reads;
    int rc = at_locals_read(proc, frame, code, json, &fl);
    check_rc(rc);
    if (target.reads - before > MAX_FRAME_READS || fl.n < 0 || fl.n > AT_LOCALS_MAX || fl.more < 0)
        abort();
    fake_check_text(fl.error, sizeof fl.error);
    for (int i = 0; i < fl.n && rc == 0; i++) {
        const at_local_t *v = &fl.vars[i];
        fake_check_text(v->name, sizeof v->name);
        fake_check_text(v->type, sizeof v->type);
        fake_check_text(v->repr, AT_REPR_TEXT_MAX);
        if ((unsigned)v->kind > AT_LOCAL_FREE || (json && !v->unbound && !v->error && !v->json))
            abort();
    }
    at_locals_free(&fl);
}

static uint64_t image_word(const fake_input_t *in, size_t i)
{
    uint64_t v = 0;
    if (in->image_size >= (i + 1) * 8)
        memcpy(&v, in->image + i * 8, 8);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_input_t in;
    if (fake_target_open(&in, data, size) < 0)
        return 0;
    at_py_proc_t proc;
    fake_target_proc(&in, &proc);
    uint64_t code = image_word(&in, 0), frame = image_word(&in, 1), obj = image_word(&in, 2);
    locals_call(&proc, frame, code, 1);
    locals_call(&proc, frame, code, 0);
    repr_call(&proc, obj);
    fake_target_patch(&in);
    locals_call(&proc, frame, code, 1);
    repr_call(&proc, obj);
    fake_target_close(&in);
    return 0;
}
