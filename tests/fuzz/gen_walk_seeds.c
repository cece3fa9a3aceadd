/* SPDX-License-Identifier: MIT */
/* gen_walk_seeds.c - write the seed corpus of fuzz_frame_walk (tests/fuzz/corpus/frame_walk).
 *
 * Each seed is a well-formed fake 3.11 target (the layout of py311.h,
 * like tests/test_frame_walk.c builds in its own memory) with one twist,
 * so the fuzzer starts from inputs that reach deep into the walker
 * instead of failing at the first pointer.  The seeds are kept in git;
 * this program documents how they were made and remakes them:
 *     cc -Icommon -Itests/fuzz -o /tmp/gen tests/fuzz/gen_walk_seeds.c && /tmp/gen DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "py311.h"
#include "walk_image.h"

/* Where each object sits in the image. */
enum {
    O_RT = 0x000, O_INTERP = 0x300, O_TS1 = 0x380, O_TS2 = 0x440, O_CF1 = 0x500, O_CF2 = 0x510,
    O_FRAMES = 0x520,                 /* 4 frames of 80 bytes             */
    O_CODES = 0x660,                  /* 3 code objects of 0xd0 bytes     */
    O_NAMES = 0x8d0,                  /* 3 str objects of 0x40 bytes      */
    O_FILE = 0x990, O_TABLE = 0x9d0,  /* str, bytes (16 entries)          */
    O_WIDE = 0xa00,                   /* a UCS-2 name                     */
    IMAGE_SIZE = 0xa80,
};

static uint8_t img[IMAGE_SIZE];

static uint64_t at(unsigned off)
{
    return WALK_IMAGE_BASE + off;
}

static void put64(unsigned off, uint64_t v)
{
    memcpy(img + off, &v, 8);
}

static void put32(unsigned off, uint32_t v)
{
    memcpy(img + off, &v, 4);
}

static void make_str(unsigned o, const char *s)
{
    put64(o + AT_OBJECT_TYPE, WALK_UNICODE_TYPE);
    put64(o + AT_UNICODE_LENGTH, strlen(s));
    put32(o + AT_UNICODE_STATE, 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7); /* kind 1, compact, ascii, ready */
    memcpy(img + o + AT_SIZEOF_PYASCIIOBJECT, s, strlen(s) + 1);
}

static void make_wide(unsigned o)
{
    static const uint16_t chars[] = { 0x3bb, 0x3b1, 0x3bc, 0x3b2, 0xd800 }; /* "λαμβ" + a lone surrogate */
    put64(o + AT_OBJECT_TYPE, WALK_UNICODE_TYPE);
    put64(o + AT_UNICODE_LENGTH, 5);
    put32(o + AT_UNICODE_STATE, 2u << 2 | 1u << 5 | 1u << 7); /* kind 2, compact, ready */
    memcpy(img + o + AT_SIZEOF_PYCOMPACTUNICODEOBJECT, chars, sizeof chars);
}

static unsigned code_at(int i)
{
    return O_CODES + (unsigned)i * 0xd0;
}

static unsigned frame_at(int k)
{
    return O_FRAMES + (unsigned)k * 80;
}

static void make_code(int i, unsigned name)
{
    unsigned c = code_at(i);
    put64(c + AT_OBJECT_TYPE, WALK_CODE_TYPE);
    put64(c + AT_VAR_SIZE, 16);
    put32(c + AT_CODE_FIRSTLINENO, (uint32_t)(10 * (i + 1)));
    put64(c + AT_CODE_FILENAME, at(O_FILE));
    put64(c + AT_CODE_QUALNAME, at(name));
    put64(c + AT_CODE_LINETABLE, at(O_TABLE));
    put32(c + AT_CODE_FIRSTTRACEABLE, 2);
}

static void make_frame(int k, int code, int unit, uint64_t prev, int entry)
{
    unsigned f = frame_at(k);
    put64(f + AT_IFRAME_CODE, at(code_at(code)));
    put64(f + AT_IFRAME_PREVIOUS, prev);
    put64(f + AT_IFRAME_PREV_INSTR, at(code_at(code)) + AT_CODE_CODE_ADAPTIVE + (uint64_t)unit * 2);
    img[f + AT_IFRAME_IS_ENTRY] = (uint8_t)entry;
}

static void make_thread(unsigned ts, unsigned cf, uint64_t next, uint64_t frame, uint32_t tid)
{
    put64(ts + AT_TSTATE_NEXT, next);
    put64(ts + AT_TSTATE_INTERP, at(O_INTERP));
    put64(ts + AT_TSTATE_CFRAME, at(cf));
    put64(ts + AT_TSTATE_NATIVE_THREAD_ID, tid);
    put64(cf + AT_CFRAME_CURRENT_FRAME, frame);
}

/* Two threads: inner <- middle <- outer, and one frame of "λαμβ". */
static void base_image(void)
{
    memset(img, 0, sizeof img);
    put64(O_TABLE + AT_OBJECT_TYPE, WALK_BYTES_TYPE);
    put64(O_TABLE + AT_VAR_SIZE, 16);
    memset(img + O_TABLE + AT_BYTES_SVAL, 0xd8, 16); /* 16 entries "+1 line" */
    make_str(O_FILE, "/fake/app.py");
    make_str(O_NAMES, "outer");
    make_str(O_NAMES + 0x40, "middle");
    make_wide(O_WIDE);
    make_code(0, O_NAMES);
    make_code(1, O_NAMES + 0x40);
    make_code(2, O_WIDE);
    make_frame(0, 2, 5, at(frame_at(1)), 0);
    make_frame(1, 1, 3, at(frame_at(2)), 0);
    make_frame(2, 0, 4, 0, 1);
    make_frame(3, 1, 9, 0, 1);
    make_thread(O_TS1, O_CF1, at(O_TS2), at(frame_at(0)), 101);
    make_thread(O_TS2, O_CF2, 0, at(frame_at(3)), 102);
    put64(O_INTERP + AT_INTERP_TSTATE_HEAD, at(O_TS1));
    put64(O_INTERP + AT_INTERP_RUNTIME, at(O_RT));
    put64(O_RT + AT_RT_INTERPRETERS_HEAD, at(O_INTERP));
    put64(O_RT + AT_RT_GIL_LAST_HOLDER, at(O_TS1));
    put32(O_RT + AT_RT_GIL_LOCKED, 1);
}

/* Header, patch, image. */
static int write_seed(const char *dir, const char *name, int flags, int die_after, unsigned patch_off,
                      const void *patch, unsigned patch_len)
{
    char path[4096];
    uint8_t hdr[WALK_HDR_SIZE] = { (uint8_t)flags, (uint8_t)die_after, (uint8_t)(patch_off & 0xff),
                                   (uint8_t)(patch_off >> 8), (uint8_t)patch_len };
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return perror(path), 1;
    fwrite(hdr, 1, sizeof hdr, f);
    fwrite(patch, 1, patch_len, f);
    fwrite(img, 1, sizeof img, f);
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/frame_walk";
    uint64_t v;
    int bad = 0;

    base_image();
    bad |= write_seed(dir, "two_threads", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    bad |= write_seed(dir, "untyped_reload", WALK_RELOAD, 0, 0, NULL, 0);
    bad |= write_seed(dir, "exits_mid_walk", WALK_TYPES_EXPORTED, 9, 0, NULL, 0);
    v = at(frame_at(0)); /* third sample: outer's frame points back to inner, a cycle */
    bad |= write_seed(dir, "cycle_later", WALK_TYPES_EXPORTED, 0, frame_at(2) + AT_IFRAME_PREVIOUS, &v, 8);
    v = at(O_FRAMES + 7); /* third sample: thread 1 runs a misaligned frame */
    bad |= write_seed(dir, "moved_frame", WALK_TYPES_EXPORTED, 0, O_CF1 + AT_CFRAME_CURRENT_FRAME, &v, 8);
    v = (uint64_t)-5; /* a code object with a negative size */
    bad |= write_seed(dir, "bad_code_size", WALK_TYPES_EXPORTED, 0, code_at(1) + AT_VAR_SIZE, &v, 8);

    base_image(); /* a thread list that loops back on itself */
    put64(O_TS2 + AT_TSTATE_NEXT, at(O_TS1));
    img[frame_at(1) + AT_IFRAME_OWNER] = AT_FRAME_OWNED_BY_GENERATOR;
    bad |= write_seed(dir, "thread_cycle_generator", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    return bad;
}
