/* SPDX-License-Identifier: MIT */
/* test_json.c - the JSON writer: structure, commas, escaping. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

static char *render(void (*fn)(at_json_t *), int pretty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    at_json_t j;
    at_json_init(&j, f, pretty);
    fn(&j);
    fclose(f);
    return buf;
}

static void nested(at_json_t *j)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "a", "x");
    at_json_key(j, "list");
    at_json_arr_begin(j);
    at_json_int(j, -1);
    at_json_uint(j, 18446744073709551615ull);
    at_json_obj_begin(j);
    at_json_obj_end(j);
    at_json_arr_end(j);
    at_json_kv_bool(j, "t", 1);
    at_json_key(j, "n");
    at_json_null(j);
    at_json_kv_double(j, "nan", 0.0 / 0.0);
    at_json_obj_end(j);
}

Test(json, nested_structure_compact)
{
    char *s = render(nested, 0);
    cr_assert_str_eq(s, "{\"a\":\"x\",\"list\":[-1,18446744073709551615,{}],\"t\":true,\"n\":null,\"nan\":null}",
                     "compact output was %s", s);
    free(s);
}

static void hostile(at_json_t *j)
{
    at_json_arr_begin(j);
    at_json_str(j, "quote\" back\\ nl\n esc\033[2J del\x7f");
    at_json_str(j, "bad utf8 \xff\xfe ok \xc3\xa9");
    at_json_str(j, NULL);
    at_json_arr_end(j);
}

Test(json, escapes_control_characters_and_bad_utf8)
{
    char *s = render(hostile, 0);
    cr_assert_str_eq(s,
                     "[\"quote\\\" back\\\\ nl\\n esc\\u001b[2J del\\u007f\","
                     "\"bad utf8 \\ufffd\\ufffd ok \xc3\xa9\",null]",
                     "escaped output was %s", s);
    free(s);
}

Test(json, pretty_output_parses_the_same)
{
    char *s = render(nested, 1);
    cr_assert(strstr(s, "\n  \"a\": \"x\""), "pretty output is indented: %s", s);
    free(s);
}

/* Sequences that look like UTF-8 but are not (RFC 3629): an overlong
 * E0 9F 9B, a surrogate ED A0 80, F4 AE 81 8E past U+10FFFF, an overlong
 * C0 AF, F5 80 80 80: each lead byte becomes U+FFFD and the continuation
 * bytes after it too (none is written as is, so a strict reader, such as
 * Python's json, parses the document); valid 3- and 4-byte ones pass. */
static void not_quite_utf8(at_json_t *j)
{
    at_json_str(j, "\xe0\x9f\x9b|\xed\xa0\x80|\xf4\xae\x81\x8e|\xc0\xaf|\xf5\x80\x80\x80|\xe2\x82\xac\xf0\x9f\x98\x80");
}

Test(json, rejects_overlong_surrogate_and_out_of_range_utf8)
{
    char *s = render(not_quite_utf8, 0);
    cr_assert_str_eq(s,
                     "\"\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|"
                     "\\ufffd\\ufffd\\ufffd\\ufffd|\xe2\x82\xac\xf0\x9f\x98\x80\"",
                     "escaped output was %s", s);
    free(s);
}
