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
#include "seed_image.h"
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

static void make_wide(unsigned o)
{
    static const uint16_t chars[] = { 0x3bb, 0x3b1, 0x3bc, 0x3b2, 0xd800 }; /* "λαμβ" + a lone surrogate */
    seed_str_ucs2(o, chars, sizeof chars / sizeof chars[0]);
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
    seed_put64(c + AT_OBJECT_TYPE, WALK_CODE_TYPE);
    seed_put64(c + AT_VAR_SIZE, 16);
    seed_put32(c + AT_CODE_FIRSTLINENO, (uint32_t)(10 * (i + 1)));
    seed_put64(c + AT_CODE_FILENAME, seed_at(O_FILE));
    seed_put64(c + AT_CODE_QUALNAME, seed_at(name));
    seed_put64(c + AT_CODE_LINETABLE, seed_at(O_TABLE));
    seed_put32(c + AT_CODE_FIRSTTRACEABLE, 2);
}

static void make_frame(int k, int code, int unit, uint64_t prev, int entry)
{
    unsigned f = frame_at(k);
    seed_put64(f + AT_IFRAME_CODE, seed_at(code_at(code)));
    seed_put64(f + AT_IFRAME_PREVIOUS, prev);
    seed_put64(f + AT_IFRAME_PREV_INSTR, seed_at(code_at(code)) + AT_CODE_CODE_ADAPTIVE + (uint64_t)unit * 2);
    img[f + AT_IFRAME_IS_ENTRY] = (uint8_t)entry;
}

static void make_thread(unsigned ts, unsigned cf, uint64_t next, uint64_t frame, uint32_t tid)
{
    seed_put64(ts + AT_TSTATE_NEXT, next);
    seed_put64(ts + AT_TSTATE_INTERP, seed_at(O_INTERP));
    seed_put64(ts + AT_TSTATE_CFRAME, seed_at(cf));
    seed_put64(ts + AT_TSTATE_NATIVE_THREAD_ID, tid);
    seed_put64(cf + AT_CFRAME_CURRENT_FRAME, frame);
}

/* Two threads: inner <- middle <- outer, and one frame of "λαμβ". */
static void base_image(void)
{
    memset(img, 0, sizeof img);
    seed_put64(O_TABLE + AT_OBJECT_TYPE, WALK_BYTES_TYPE);
    seed_put64(O_TABLE + AT_VAR_SIZE, 16);
    memset(img + O_TABLE + AT_BYTES_SVAL, 0xd8, 16); /* 16 entries "+1 line" */
    seed_str_ascii(O_FILE, "/fake/app.py");
    seed_str_ascii(O_NAMES, "outer");
    seed_str_ascii(O_NAMES + 0x40, "middle");
    make_wide(O_WIDE);
    make_code(0, O_NAMES);
    make_code(1, O_NAMES + 0x40);
    make_code(2, O_WIDE);
    make_frame(0, 2, 5, seed_at(frame_at(1)), 0);
    make_frame(1, 1, 3, seed_at(frame_at(2)), 0);
    make_frame(2, 0, 4, 0, 1);
    make_frame(3, 1, 9, 0, 1);
    make_thread(O_TS1, O_CF1, seed_at(O_TS2), seed_at(frame_at(0)), 101);
    make_thread(O_TS2, O_CF2, 0, seed_at(frame_at(3)), 102);
    seed_put64(O_INTERP + AT_INTERP_TSTATE_HEAD, seed_at(O_TS1));
    seed_put64(O_INTERP + AT_INTERP_RUNTIME, seed_at(O_RT));
    seed_put64(O_RT + AT_RT_INTERPRETERS_HEAD, seed_at(O_INTERP));
    seed_put64(O_RT + AT_RT_GIL_LAST_HOLDER, seed_at(O_TS1));
    seed_put32(O_RT + AT_RT_GIL_LOCKED, 1);
}

/* Header, patch, image. */
int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/frame_walk";
    uint64_t v;
    int bad = 0;

    seed_use(img, sizeof img);
    base_image();
    bad |= seed_write(dir, "two_threads", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    bad |= seed_write(dir, "untyped_reload", WALK_RELOAD, 0, 0, NULL, 0);
    bad |= seed_write(dir, "exits_mid_walk", WALK_TYPES_EXPORTED, 9, 0, NULL, 0);
    v = seed_at(frame_at(0)); /* third sample: outer's frame points back to inner, a cycle */
    bad |= seed_write(dir, "cycle_later", WALK_TYPES_EXPORTED, 0, frame_at(2) + AT_IFRAME_PREVIOUS, &v, 8);
    v = seed_at(O_FRAMES + 7); /* third sample: thread 1 runs a misaligned frame */
    bad |= seed_write(dir, "moved_frame", WALK_TYPES_EXPORTED, 0, O_CF1 + AT_CFRAME_CURRENT_FRAME, &v, 8);
    v = (uint64_t)-5; /* a code object with a negative size */
    bad |= seed_write(dir, "bad_code_size", WALK_TYPES_EXPORTED, 0, code_at(1) + AT_VAR_SIZE, &v, 8);

    base_image(); /* a thread list that loops back on itself */
    seed_put64(O_TS2 + AT_TSTATE_NEXT, seed_at(O_TS1));
    img[frame_at(1) + AT_IFRAME_OWNER] = AT_FRAME_OWNED_BY_GENERATOR;
    bad |= seed_write(dir, "thread_cycle_generator", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    return bad;
}
