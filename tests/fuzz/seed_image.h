/* SPDX-License-Identifier: MIT */
/* seed_image.h - building fake 3.11 target images for the fuzz seed generators
 * (gen_walk_seeds.c, gen_names_seeds.c): write fields of the layout in
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
