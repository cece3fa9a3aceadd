/* SPDX-License-Identifier: MIT */
/* walk_image.h - the input format of fuzz_frame_walk, shared with its seed generator.
 *
 * An input is a small header and then a memory image of a fake CPython
 * 3.11 target: image byte i stands at remote address WALK_IMAGE_BASE + i,
 * and _PyRuntime is at WALK_IMAGE_BASE.  Every other address reads as
 * unmapped.  The type objects live outside the image (the walker only
 * compares against their addresses), so a fuzzed pointer field equal to
 * one of these constants passes the type check.
 *
 * Header (WALK_HDR_SIZE bytes):
 *   [0] flags: WALK_TYPES_EXPORTED, WALK_RELOAD, and which layout table
 *       the walker reads the image with: 3.11 (the seeds' own), or
 *       WALK_LAYOUT_312 / WALK_LAYOUT_313 (mutations explore those)
 *   [1] the target "exits" (reads fail with ESRCH) after this many
 *       reads; 0 = never
 *   [2..3] offset in the image of a patch applied before the third sample
 *   [4] patch length (0..WALK_PATCH_MAX); the patch bytes follow the header
 */
#ifndef AT_WALK_IMAGE_H
#define AT_WALK_IMAGE_H

#define WALK_IMAGE_BASE      0x100000000000ull
#define WALK_CODE_TYPE       0x0fffff000100ull
#define WALK_UNICODE_TYPE    0x0fffff000200ull
#define WALK_BYTES_TYPE      0x0fffff000300ull
/* the types and singletons py_repr.c knows by address (fuzz_locals) */
#define WALK_LONG_TYPE       0x0fffff000400ull
#define WALK_FLOAT_TYPE      0x0fffff000500ull
#define WALK_TUPLE_TYPE      0x0fffff000600ull
#define WALK_LIST_TYPE       0x0fffff000700ull
#define WALK_DICT_TYPE       0x0fffff000800ull
#define WALK_SET_TYPE        0x0fffff000900ull
#define WALK_FROZENSET_TYPE  0x0fffff000a00ull
#define WALK_CELL_TYPE       0x0fffff000b00ull
#define WALK_BOOL_TYPE       0x0fffff000c00ull
#define WALK_NONE            0x0fffff000d00ull
#define WALK_TRUE            0x0fffff000e00ull
#define WALK_FALSE           0x0fffff000f00ull
/* the coroutine and generator types py_asyncio.c follows (fuzz_asyncio) */
#define WALK_CORO_TYPE       0x0fffff001000ull
#define WALK_GEN_TYPE        0x0fffff001100ull

#define WALK_HDR_SIZE        5
#define WALK_PATCH_MAX       32
#define WALK_TYPES_EXPORTED  0x01  /* check ob_type of code, str, bytes */
#define WALK_RELOAD          0x02  /* at_walker_reload before sample 3  */
#define WALK_LAYOUT_312      0x04  /* read with 3.12's table           */
#define WALK_LAYOUT_313      0x08  /* read with 3.13's (over 3.12's)   */

#endif
