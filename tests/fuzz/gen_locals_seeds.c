/* SPDX-License-Identifier: MIT */
/* gen_locals_seeds.c - write the seed corpus of fuzz_locals (tests/fuzz/corpus/locals).
 *
 * Each seed is a well-formed fake 3.11 target (py311.h's layout) whose
 * image starts with fuzz_locals's three pointers: a code object naming
 * four variables (an argument, a local, a cell, an empty free cell), a
 * frame holding them, and a list reaching every container the repr
 * reader decodes (a tuple with a UCS-2 str and True, a unicode-keyed dict, a set with a float, a
 * self reference).  The twists: no exported types, the target exiting
 * mid-read, a patch that turns the list into its own item array's
 * owner of 2^40 items.  Kept in git; remade with
 *     cc -Icommon -Itests/fuzz -o /tmp/gen tests/fuzz/gen_locals_seeds.c && /tmp/gen DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "py311.h"
#include "seed_image.h"
#include "walk_image.h"

enum {
    O_CODE = 0x100, O_NAMES = 0x300, O_KINDS = 0x400, O_STRS = 0x500, O_FRAME = 0x800,
    O_INT = 0x900, O_HELLO = 0x940, O_CELL = 0x9c0, O_EMPTY_CELL = 0xa00, O_UCS2 = 0xa40, O_LIST = 0x1000,
    O_ITEMS = 0x1100, O_TUPLE = 0x1200, O_DICT = 0x1300, O_SET = 0x1400, O_KEYS = 0x1500,
    O_TABLE = 0x1600, O_FLOAT = 0x1700, IMAGE = 0x1800,
};

static uint8_t img[IMAGE];

static void obj(unsigned o, uint64_t type, uint64_t size)
{
    seed_put64(o + AT_OBJECT_TYPE, type);
    seed_put64(o + AT_VAR_SIZE, size);
}

static void code_and_frame(void)
{
    static const char *const names[] = { "arg", "local", "cell", "free" };
    static const uint8_t kinds[] = { AT_CO_FAST_LOCAL, AT_CO_FAST_LOCAL, AT_CO_FAST_CELL, AT_CO_FAST_FREE };
    seed_put64(O_CODE + AT_OBJECT_TYPE, WALK_CODE_TYPE);
    seed_put32(O_CODE + AT_CODE_NLOCALSPLUS, 4);
    seed_put32(O_CODE + AT_CODE_ARGCOUNT, 1);
    seed_put64(O_CODE + AT_CODE_LOCALSPLUSNAMES, seed_at(O_NAMES));
    seed_put64(O_CODE + AT_CODE_LOCALSPLUSKINDS, seed_at(O_KINDS));
    obj(O_NAMES, WALK_TUPLE_TYPE, 4);
    obj(O_KINDS, WALK_BYTES_TYPE, 4);
    memcpy(img + O_KINDS + AT_BYTES_SVAL, kinds, 4);
    for (unsigned i = 0; i < 4; i++) {
        seed_str_ascii(O_STRS + i * 0x40, names[i]);
        seed_put64(O_NAMES + AT_TUPLE_ITEMS + i * 8, seed_at(O_STRS + i * 0x40));
    }
    obj(O_INT, WALK_LONG_TYPE, 1);
    seed_put32(O_INT + AT_LONG_DIGITS, 7);
    seed_str_ascii(O_HELLO, "hello");
    seed_put64(O_CELL + AT_OBJECT_TYPE, WALK_CELL_TYPE);
    seed_put64(O_CELL + AT_CELL_REF, seed_at(O_LIST));
    seed_put64(O_EMPTY_CELL + AT_OBJECT_TYPE, WALK_CELL_TYPE);
    const uint64_t slots[] = { seed_at(O_INT), seed_at(O_HELLO), seed_at(O_CELL), seed_at(O_EMPTY_CELL) };
    memcpy(img + O_FRAME + AT_IFRAME_LOCALSPLUS, slots, sizeof slots);
}

static void containers(void)
{
    obj(O_LIST, WALK_LIST_TYPE, 4);
    seed_put64(O_LIST + AT_LIST_ITEMS, seed_at(O_ITEMS));
    const uint64_t items[] = { seed_at(O_TUPLE), seed_at(O_DICT), seed_at(O_SET), seed_at(O_LIST) };
    memcpy(img + O_ITEMS, items, sizeof items);
    obj(O_TUPLE, WALK_TUPLE_TYPE, 2);
    static const uint16_t privet[] = { 0x41f, 0x440, 0x438, 0x432, 0x435, 0x442 };
    seed_str_ucs2(O_UCS2, privet, 6);
    seed_put64(O_TUPLE + AT_TUPLE_ITEMS, seed_at(O_UCS2));
    seed_put64(O_TUPLE + AT_TUPLE_ITEMS + 8, WALK_TRUE);
    /* {"arg": 7}: unicode keys, 8 one-byte indices, then (key, value) */
    seed_put64(O_DICT + AT_OBJECT_TYPE, WALK_DICT_TYPE);
    seed_put64(O_DICT + AT_DICT_USED, 1);
    seed_put64(O_DICT + AT_DICT_KEYS, seed_at(O_KEYS));
    img[O_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    img[O_KEYS + AT_DICTKEYS_KIND] = 1;
    seed_put64(O_KEYS + AT_DICTKEYS_NENTRIES, 1);
    seed_put64(O_KEYS + AT_DICTKEYS_INDICES + 8, seed_at(O_STRS));
    seed_put64(O_KEYS + AT_DICTKEYS_INDICES + 16, seed_at(O_INT));
    /* {7, 1.5}: an 8-slot table of (key, hash) */
    seed_put64(O_SET + AT_OBJECT_TYPE, WALK_SET_TYPE);
    seed_put64(O_SET + AT_SET_USED, 2);
    seed_put64(O_SET + AT_SET_MASK, 7);
    seed_put64(O_SET + AT_SET_TABLE, seed_at(O_TABLE));
    seed_put64(O_TABLE + 7 * AT_SIZEOF_SETENTRY, seed_at(O_INT));
    seed_put64(O_TABLE + 7 * AT_SIZEOF_SETENTRY + 8, 7);
    seed_put64(O_TABLE + 1 * AT_SIZEOF_SETENTRY, seed_at(O_FLOAT));
    seed_put64(O_TABLE + 1 * AT_SIZEOF_SETENTRY + 8, 1);
    double d = 1.5;
    seed_put64(O_FLOAT + AT_OBJECT_TYPE, WALK_FLOAT_TYPE);
    memcpy(img + O_FLOAT + AT_FLOAT_FVAL, &d, sizeof d);
}

static void base_image(void)
{
    memset(img, 0, sizeof img);
    seed_use(img, sizeof img);
    seed_put64(0, seed_at(O_CODE));
    seed_put64(8, seed_at(O_FRAME));
    seed_put64(16, seed_at(O_LIST));
    code_and_frame();
    containers();
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/locals";
    uint64_t v = 1ull << 40;
    int bad = 0;
    base_image();
    bad |= seed_write(dir, "frame", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    bad |= seed_write(dir, "untyped", 0, 0, 0, NULL, 0);
    bad |= seed_write(dir, "exits_mid_read", WALK_TYPES_EXPORTED, 9, 0, NULL, 0);
    bad |= seed_write(dir, "list_grows", WALK_TYPES_EXPORTED, 0, O_LIST + AT_VAR_SIZE, &v, 8);
    bad |= seed_write(dir, "layout_313", WALK_TYPES_EXPORTED | WALK_LAYOUT_312 | WALK_LAYOUT_313, 0, 0, NULL, 0);
    return bad;
}
