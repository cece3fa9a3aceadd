/* SPDX-License-Identifier: MIT */
/* json.h - a small streaming JSON writer (commas and escaping handled here).
 *
 * Usage: at_json_t j; at_json_init(&j, fp, 1);
 *        at_json_obj_begin(&j); at_json_key(&j, "pid"); at_json_int(&j, 42);
 *        at_json_obj_end(&j);
 * Strings read from a target are untrusted: at_json_str escapes every
 * control character and invalid UTF-8 byte, so the output always parses.
 */
#ifndef AT_JSON_H
#define AT_JSON_H
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#define AT_JSON_MAX_DEPTH 32

typedef struct at_json {
    FILE *out;                       /* destination stream                 */
    int pretty;                      /* indent with two spaces when set    */
    int depth;                       /* current nesting level              */
    int need_comma[AT_JSON_MAX_DEPTH]; /* an element was written at level */
    int after_key;                   /* a key was just written             */
} at_json_t;

void at_json_init(at_json_t *j, FILE *out, int pretty);
void at_json_obj_begin(at_json_t *j);
void at_json_obj_end(at_json_t *j);
void at_json_arr_begin(at_json_t *j);
void at_json_arr_end(at_json_t *j);
void at_json_key(at_json_t *j, const char *key);
void at_json_str(at_json_t *j, const char *s);          /* NULL -> null */
void at_json_strn(at_json_t *j, const char *s, size_t n);
void at_json_int(at_json_t *j, int64_t v);
void at_json_uint(at_json_t *j, uint64_t v);
void at_json_double(at_json_t *j, double v);            /* NaN/inf -> null */
void at_json_bool(at_json_t *j, int v);
void at_json_null(at_json_t *j);
/* A value already written out: a number's digits ("-12", "1.5e-05",
 * past int64) or JSON another writer made; copied verbatim, so the
 * caller makes sure it is one JSON value. */
void at_json_raw(at_json_t *j, const char *text);

/* key + value shorthands */
void at_json_kv_str(at_json_t *j, const char *key, const char *s);
void at_json_kv_int(at_json_t *j, const char *key, int64_t v);
void at_json_kv_uint(at_json_t *j, const char *key, uint64_t v);
void at_json_kv_double(at_json_t *j, const char *key, double v);
void at_json_kv_bool(at_json_t *j, const char *key, int v);

#endif
