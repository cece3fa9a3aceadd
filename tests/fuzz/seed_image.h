/* SPDX-License-Identifier: MIT */
/* seed_image.h - building fake 3.11 target images for the fuzz seed generators
 * (gen_walk_seeds.c, gen_names_seeds.c, ...): write fields of the layout in
 * py311.h into an image, then write it out as a fuzz input in
 * walk_image.h's format.  Header-only: each generator is one program.
 */
#ifndef AT_SEED_IMAGE_H
#define AT_SEED_IMAGE_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "py311.h"
#include "walk_image.h"

static uint8_t *seed_img;      /* the image being built                */
static size_t seed_img_size;   /* bytes of it written out              */

static void seed_use(uint8_t *img, size_t size)
{
    seed_img = img;
    seed_img_size = size;
}

/* The remote address of image offset off. */
static uint64_t seed_at(unsigned off)
{
    return WALK_IMAGE_BASE + off;
}

static void seed_put64(unsigned off, uint64_t v)
{
    memcpy(seed_img + off, &v, 8);
}

static void seed_put32(unsigned off, uint32_t v)
{
    memcpy(seed_img + off, &v, 4);
}

/* A compact ASCII str object at o. */
static void seed_str_ascii(unsigned o, const char *s)
{
    seed_put64(o + AT_OBJECT_TYPE, WALK_UNICODE_TYPE);
    seed_put64(o + AT_UNICODE_LENGTH, strlen(s));
    seed_put32(o + AT_UNICODE_STATE, 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7); /* kind 1, compact, ascii, ready */
    memcpy(seed_img + o + AT_SIZEOF_PYASCIIOBJECT, s, strlen(s) + 1);
}

/* A compact UCS-2 str object at o (not ASCII: its data after 72 bytes). */
static void seed_str_ucs2(unsigned o, const uint16_t *chars, size_t n)
{
    seed_put64(o + AT_OBJECT_TYPE, WALK_UNICODE_TYPE);
    seed_put64(o + AT_UNICODE_LENGTH, n);
    seed_put32(o + AT_UNICODE_STATE, 2u << 2 | 1u << 5 | 1u << 7); /* kind 2, compact, ready */
    memcpy(seed_img + o + AT_SIZEOF_PYCOMPACTUNICODEOBJECT, chars, n * sizeof *chars);
}

/* The dict helpers below are inline so that a generator which builds no
 * dict does not warn about them. */

/* A C string at off, and the type at type naming it (tp_name): py_names.c
 * recognises dicts, modules and ints by that name. */
static inline void seed_type_name(unsigned type, unsigned off, const char *name)
{
    memcpy(seed_img + off, name, strlen(name) + 1);
    seed_put64(type + AT_TYPE_NAME, seed_at(off));
}

/* A dict object of type `type` at o over keys at k: kind (general,
 * unicode or split), 8 one-byte indices, nentries entries used. */
static inline void seed_dict(unsigned o, uint64_t type, unsigned k, int kind, int64_t nentries)
{
    seed_put64(o + AT_OBJECT_TYPE, type);
    seed_put64(o + AT_DICT_KEYS, seed_at(k));
    seed_img[k + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    seed_img[k + AT_DICTKEYS_KIND] = (uint8_t)kind;
    seed_put64(k + AT_DICTKEYS_NENTRIES, (uint64_t)nentries);
}

/* Entry i of the keys at k: (hash, key, value) when general, else (key, value). */
static inline void seed_dict_entry(unsigned k, int general, int i, uint64_t key, uint64_t value)
{
    unsigned e = k + AT_DICTKEYS_INDICES + 8 + (unsigned)i * (general ? 24 : 16);
    if (general)
        seed_put64(e, 0x5eed0000u + (unsigned)i), e += 8;
    seed_put64(e, key);
    seed_put64(e + 8, value);
}

/* dir/name: the header, the patch, then the image.  0, or 1 on error. */
static int seed_write(const char *dir, const char *name, int flags, int die_after, unsigned patch_off,
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
    fwrite(seed_img, 1, seed_img_size, f);
    return fclose(f) != 0;
}

#endif
