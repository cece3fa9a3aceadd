/* SPDX-License-Identifier: MIT */
/* py_repr_num.c - ints and floats of a target, as Python's repr writes them.
 *
 * An int's 30-bit digits come with the header value() read; up to
 * AT_REPR_INT_DIGITS of them are printed exactly, longer ints as their
 * size.  A float is the shortest text that reads back the same. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_repr_int.h"

#define INT_DEC_MAX    (AT_REPR_INT_DIGITS * 10 + 2) /* decimal digits, sign, NUL */

void at_py_repr_float(double d, char *buf, size_t size)
{
    if (isnan(d) || isinf(d)) {
        snprintf(buf, size, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    /* the shortest %.*e that reads back the same, then Python's choice
     * between fixed and scientific (repr uses fixed for 1e-4 <= |d| < 1e16) */
    char e[40];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, d);
        if (strtod(e, NULL) == d)
            break;
    }
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) {
        char *ep = strchr(e, 'e');   /* "1.5e-05": drop ".0" Python drops */
        snprintf(buf, size, "%.*se%c%02d", (int)(ep - e), e, exp10 < 0 ? '-' : '+', abs(exp10));
        return;
    }
    int decimals = prec - exp10 > 0 ? prec - exp10 : 0;
    snprintf(buf, size, "%.*f", decimals, d);
    if (!strchr(buf, '.') && strlen(buf) + 2 < size)
        strcat(buf, ".0");
}

void at_repr_float(walk_t *w, const uint8_t *head, long got, uint64_t addr)
{
    char buf[48];
    if (got < w->L->float_fval + 8) {
        at_repr_unreadable(w, addr, -EFAULT);
        return;
    }
    double d;
    size_t mark = w->len;
    memcpy(&d, head + w->L->float_fval, sizeof d);
    at_py_repr_float(d, buf, sizeof buf);
    at_repr_put(w, buf);
    if (!w->j)
        return;
    if (isfinite(d))
        at_json_raw(w->j, buf);
    else   /* JSON has no inf or nan */
        at_repr_json_described(w, "float", mark, 0);
}

/* ---- int ------------------------------------------------------------------ */

/* An int's digit count and sign from its header: 3.11's signed ob_size,
 * or 3.12+'s lv_tag (ndigits << NON_SIZE_BITS | sign: 0 +, 1 zero, 2 -). */
static void int_shape(const at_pylayout_t *L, const uint8_t *head, int64_t *ndigits, int *negative)
{
    if (L->long_lv_tag == AT_PYLAYOUT_NONE) {
        int64_t size = (int64_t)at_get_u64(head, L->var_size);
        *negative = size < 0;
        *ndigits = size < 0 ? (size == INT64_MIN ? INT64_MAX : -size) : size;
        return;
    }
    uint64_t tag = at_get_u64(head, L->long_lv_tag);
    *negative = (tag & (uint64_t)L->long_sign_mask) == 2;
    *ndigits = (int64_t)(tag >> L->long_non_size_bits);
}

/* Digits d[0..n) (base 2^30, least significant first, destroyed) in
 * decimal into out (INT_DEC_MAX bytes). */
static void digits_to_decimal(uint32_t *d, int n, int negative, char *out)
{
    char rev[INT_DEC_MAX];
    size_t r = 0;
    while (n > 0 && r + 9 < sizeof rev) {
        uint64_t rem = 0;
        for (int i = n - 1; i >= 0; i--) {
            uint64_t cur = rem << 30 | d[i];
            d[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (n > 0 && d[n - 1] == 0)
            n--;
        for (int k = 0; k < 9 && (n > 0 || rem); k++, rem /= 10)
            rev[r++] = (char)('0' + rem % 10);
    }
    size_t o = 0;
    if (r == 0)
        rev[r++] = '0';
    if (negative)
        out[o++] = '-';
    while (r > 0)
        out[o++] = rev[--r];
    out[o] = '\0';
}

static void int_too_big(walk_t *w, int64_t ndigits, int negative)
{
    char buf[80];
    size_t mark = w->len;
    snprintf(buf, sizeof buf, "<%sint of about %" PRId64 " bits>", negative ? "negative " : "",
             ndigits > INT64_MAX / 30 ? INT64_MAX : ndigits * 30);
    at_repr_put(w, buf);
    w->out->truncated = 1;
    at_repr_json_described(w, "int", mark, 1);
}

void at_repr_int(walk_t *w, const uint8_t *head, long got, uint64_t addr)
{
    const at_pylayout_t *L = w->L;
    int64_t ndigits;
    int negative;
    uint32_t d[AT_REPR_INT_DIGITS];
    char dec[INT_DEC_MAX];
    int_shape(L, head, &ndigits, &negative);
    if (ndigits > AT_REPR_INT_DIGITS) {
        int_too_big(w, ndigits, negative);
        return;
    }
    if (got < L->long_digits + ndigits * 4) {
        at_repr_unreadable(w, addr, -EFAULT);
        return;
    }
    for (int64_t i = 0; i < ndigits; i++) {
        d[i] = at_get_u32(head, (size_t)L->long_digits + (size_t)i * 4);
        if (d[i] >> L->long_shift) {   /* not a digit: not an int after all */
            at_repr_unreadable(w, addr, -EPROTO);
            return;
        }
    }
    digits_to_decimal(d, (int)ndigits, negative, dec);
    at_repr_put(w, dec);
    if (w->j)
        at_json_raw(w->j, dec);
}
