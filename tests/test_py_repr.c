/* SPDX-License-Identifier: MIT */
/* test_py_repr.c - the repr and locals readers against a fake target's memory.
 *
 * A live target only ever shows well-formed objects; these tests build
 * objects by hand in a memory image that fuzz/fake_target.h serves in
 * place of process_vm_readv (this binary's reads never reach a real
 * process), with the cases a hostile or torn target brings: pointers to
 * nowhere, a list that holds itself, a str whose state is no str's,
 * digits that are no int's, lengths of 2^50, a type name of control
 * bytes, a frame whose code or names cannot be read.  Each must degrade
 * to a readable message in place, never crash or run on; the layouts of
 * 3.11 and 3.13 (ints and strs differ) both serve.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "fuzz/fake_target.h"
#include "remote/locals.h"
#include "remote/py_repr.h"

/* Type objects and singletons live outside the image: only their
 * addresses are compared. */
#define T_LONG   0x0fffff000400ull
#define T_STR    0x0fffff000500ull
#define T_BYTES  0x0fffff000600ull
#define T_TUPLE  0x0fffff000700ull
#define T_LIST   0x0fffff000800ull
#define T_CODE   0x0fffff000900ull
#define T_CELL   0x0fffff000a00ull
#define O_NONE   0x0fffff000b00ull
#define NOWHERE  0x00dead000000ull   /* unmapped                            */
#define STR_ASCII_STATE 0xe4u          /* kind 1, compact, ascii, ready (3.11) */

static uint8_t img[16384];
static at_py_proc_t proc;
static const at_pylayout_t *L;

static uint64_t at(size_t off)
{
    return WALK_IMAGE_BASE + off;
}

static void put64(size_t off, uint64_t v)
{
    memcpy(img + off, &v, sizeof v);
}

static void put32(size_t off, uint32_t v)
{
    memcpy(img + off, &v, sizeof v);
}

static void setup(int minor)
{
    memset(img, 0, sizeof img);
    fake_target_load(img, sizeof img, 0);
    proc = (at_py_proc_t){ .pid = 1, .layout = *at_pylayout_find(3, minor) };
    at_remote_init(&proc.mem, 1);
    L = &proc.layout;
    proc.unicode_type = T_STR;
    proc.bytes_type = T_BYTES;
    proc.code_type = T_CODE;
    proc.known[AT_PYSYM_LONG_TYPE] = T_LONG;
    proc.known[AT_PYSYM_TUPLE_TYPE] = T_TUPLE;
    proc.known[AT_PYSYM_LIST_TYPE] = T_LIST;
    proc.known[AT_PYSYM_CELL_TYPE] = T_CELL;
    proc.known[AT_PYSYM_NONE] = O_NONE;
}

/* ---- objects written into the image ----------------------------------- */

static uint64_t make_int(size_t off, uint32_t digit)
{
    put64(off + (size_t)L->object_type, T_LONG);
    if (L->long_lv_tag == AT_PYLAYOUT_NONE)
        put64(off + (size_t)L->var_size, 1);
    else
        put64(off + (size_t)L->long_lv_tag, 1u << L->long_non_size_bits);
    put32(off + (size_t)L->long_digits, digit);
    return at(off);
}

static uint64_t make_str(size_t off, const char *s)
{
    put64(off + (size_t)L->object_type, T_STR);
    put64(off + (size_t)L->unicode_length, strlen(s));
    put32(off + (size_t)L->unicode_state, STR_ASCII_STATE);
    memcpy(img + off + L->sizeof_pyasciiobject, s, strlen(s));
    return at(off);
}

/* A compact non-ASCII str of 4 bytes a character (UCS-4). */
static uint64_t make_str4(size_t off, const uint32_t *chars, size_t n)
{
    put64(off + (size_t)L->object_type, T_STR);
    put64(off + (size_t)L->unicode_length, n);
    put32(off + (size_t)L->unicode_state, 4u << 2 | 1u << 5 | 1u << 7); /* kind 4, compact, ready (3.11) */
    memcpy(img + off + L->sizeof_pycompactunicodeobject, chars, n * 4);
    return at(off);
}

/* A list whose item pointers are at items_off. */
static uint64_t make_list(size_t off, size_t items_off, const uint64_t *items, int n)
{
    put64(off + (size_t)L->object_type, T_LIST);
    put64(off + (size_t)L->var_size, (uint64_t)n);
    put64(off + (size_t)L->list_items, at(items_off));
    for (int i = 0; i < n; i++)
        put64(items_off + (size_t)i * 8, items[i]);
    return at(off);
}

static uint64_t make_tuple(size_t off, const uint64_t *items, int n)
{
    put64(off + (size_t)L->object_type, T_TUPLE);
    put64(off + (size_t)L->var_size, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put64(off + (size_t)L->tuple_items + (size_t)i * 8, items[i]);
    return at(off);
}

static int repr(uint64_t addr, at_repr_t *r)
{
    return at_py_repr(&proc, addr, r, NULL);
}

/* The value's JSON, compact (static buffer). */
static const char *json_of(uint64_t addr)
{
    static char buf[4096];
    at_repr_t r;
    FILE *f = fmemopen(buf, sizeof buf, "w");
    at_json_t j;
    at_json_init(&j, f, 0);
    at_py_repr(&proc, addr, &r, &j);
    fclose(f);
    return buf;
}

#define LAYOUTS_TEST(name)                                                                 \
    ParameterizedTestParameters(py_repr, name)                                             \
    {                                                                                      \
        static int minors[] = { 11, 13 };                                                  \
        return cr_make_param_array(int, minors, 2);                                        \
    }                                                                                      \
    ParameterizedTest(int *minor, py_repr, name)

/* ---- values ------------------------------------------------------------ */

LAYOUTS_TEST(well_formed_objects_read_as_python_shows_them)
{
    setup(*minor);
    uint64_t items[] = { make_int(0x100, 5), make_str(0x200, "a'b"), O_NONE };
    at_repr_t r;
    cr_assert_eq(repr(make_list(0x300, 0x380, items, 3), &r), 0);
    cr_expect_str_eq(r.text, "[5, \"a'b\", None]");
    cr_expect_str_eq(r.type, "list");
    cr_expect_str_eq(json_of(at(0x300)),
                     "{\"type\":\"list\",\"len\":3,\"items\":[5,\"a'b\",null],\"truncated\":false}");
}

/* What Python's own repr() gives for these characters: what a terminal
 * would act on or hide is escaped, the rest printed as it is. */
LAYOUTS_TEST(unprintable_characters_are_escaped_as_python_does)
{
    setup(*minor);
    static const uint32_t s[] = { 'a', 0x202e, 'b', 0x2028, 'c', 0xa0, 'd', 0x200b, 'e',
                                  0xfeff, 0xe0041, 0x1f40d, 0xe9, 0x3000, 0x2065 };
    at_repr_t r;
    cr_assert_eq(repr(make_str4(0x100, s, sizeof s / sizeof *s), &r), 0);
    cr_expect_str_eq(r.text, "'a\\u202eb\\u2028c\\xa0d\\u200be\\ufeff\\U000e0041"
                             "\xf0\x9f\x90\x8d\xc3\xa9\\u3000\\u2065'");
}

LAYOUTS_TEST(an_unreadable_object_is_an_error_in_one_line)
{
    setup(*minor);
    at_repr_t r;
    cr_expect_eq(repr(NOWHERE, &r), -EFAULT);
    cr_expect_str_eq(r.text, "<unreadable 0xdead000000>");
    cr_expect_str_eq(r.type, "");
    cr_expect_str_eq(json_of(NOWHERE),
                     "{\"type\":null,\"repr\":\"<unreadable 0xdead000000>\",\"error\":\"bad address\"}");
}

LAYOUTS_TEST(an_unreadable_item_is_shown_in_its_place)
{
    setup(*minor);
    uint64_t items[] = { make_int(0x100, 5), NOWHERE, make_str(0x200, "z") };
    at_repr_t r;
    cr_assert_eq(repr(make_tuple(0x300, items, 3), &r), 0, "the tuple itself is readable");
    cr_expect_str_eq(r.text, "(5, <unreadable 0xdead000000>, 'z')");
}

LAYOUTS_TEST(a_list_that_holds_itself_ends_at_the_depth_limit)
{
    setup(*minor);
    uint64_t self = at(0x300);
    at_repr_t r;
    cr_assert_eq(repr(make_list(0x300, 0x380, &self, 1), &r), 0);
    cr_expect_str_eq(r.text, "[[[...]]]");
    cr_expect(r.truncated, "the elided level is a cut");
}

LAYOUTS_TEST(corrupt_headers_read_as_unreadable_not_as_values)
{
    setup(*minor);
    uint64_t items[4];
    items[0] = make_str(0x100, "ok");
    put32(0x100 + (size_t)L->unicode_state, 0x3);          /* not compact: no str */
    items[1] = make_int(0x200, 1u << 31);                  /* a digit of 31 bits */
    items[2] = make_tuple(0x300, NULL, 0);
    put64(0x300 + (size_t)L->var_size, 1ull << 50);        /* a tuple of 2^50 items */
    items[3] = make_str(0x400, "fine");
    at_repr_t r;
    cr_assert_eq(repr(make_list(0x500, 0x580, items, 4), &r), 0);
    char want[256];
    snprintf(want, sizeof want, "[<unreadable 0x%llx>, <unreadable 0x%llx>, <unreadable 0x%llx>, 'fine']",
             (unsigned long long)items[0], (unsigned long long)items[1], (unsigned long long)items[2]);
    cr_expect_str_eq(r.text, want);
    /* asked for on their own, each is an error, and says which */
    cr_expect_eq(repr(items[0], &r), -EPROTO, "a str whose state is no str's");
    cr_expect_eq(repr(items[2], &r), -EPROTO, "a tuple of 2^50 items");
    cr_expect_eq(repr(items[3], &r), 0, "a sound str");
    cr_expect_str_eq(at_py_repr_why(-EPROTO), "not what CPython would write there");
}

LAYOUTS_TEST(a_type_name_of_control_bytes_is_shown_masked)
{
    setup(*minor);
    size_t type = 0x600, name = 0x700;
    put64(0x100 + (size_t)L->object_type, at(type));
    put64(type + (size_t)L->type_name, at(name));
    memcpy(img + name, "Evil\n\x1b[2J\xff\xe2\x80\xae\xc3\xa9", 15);   /* ..., U+202E, U+00E9 */
    at_repr_t r;
    cr_assert_eq(repr(at(0x100), &r), 0);
    cr_expect_str_eq(r.text, "<Evil??[2J????\xc3\xa9 at 0x100000000100>");
    cr_expect_str_eq(r.type, "Evil??[2J????\xc3\xa9");
}

LAYOUTS_TEST(a_list_whose_item_array_is_unreadable_is_an_error)
{
    setup(*minor);
    at_repr_t r;
    uint64_t none = 0;
    cr_assert_eq(repr(make_list(0x300, 0x380, &none, 0), &r), 0);
    cr_expect_str_eq(r.text, "[]");
    put64(0x300 + (size_t)L->var_size, 1ull << 39);   /* 2^39 items, none readable */
    put64(0x300 + (size_t)L->list_items, NOWHERE);
    cr_expect_eq(repr(at(0x300), &r), -EFAULT, "its header reads, its repr cannot be made");
    cr_expect_str_eq(r.text, "<unreadable 0x100000000300>");
}

/* A dict at off over keys at keys_off: n general entries (hash, key,
 * value) after 8 one-byte indices, used live ones. */
static uint64_t make_dict(size_t off, size_t keys_off, const uint64_t (*kv)[2], int n, int used)
{
    put64(off + (size_t)L->object_type, proc.known[AT_PYSYM_DICT_TYPE]);
    put64(off + (size_t)L->dict_used, (uint64_t)used);
    put64(off + (size_t)L->dict_keys, at(keys_off));
    img[keys_off + (size_t)L->dictkeys_log2_index_bytes] = 3;
    img[keys_off + (size_t)L->dictkeys_kind] = (uint8_t)L->dict_keys_general;
    put64(keys_off + (size_t)L->dictkeys_nentries, (uint64_t)n);
    size_t e = keys_off + (size_t)L->dictkeys_indices + 8;
    for (int i = 0; i < n; i++) {
        put64(e + (size_t)i * (size_t)L->sizeof_dict_key_entry + 8, kv[i][0]);
        put64(e + (size_t)i * (size_t)L->sizeof_dict_key_entry + 16, kv[i][1]);
    }
    return at(off);
}

LAYOUTS_TEST(dicts_show_live_entries_in_order)
{
    setup(*minor);
    proc.known[AT_PYSYM_DICT_TYPE] = 0x0fffff000c00ull;
    uint64_t one = make_int(0x100, 1), two = make_int(0x140, 2), s = make_str(0x200, "k");
    const uint64_t kv[3][2] = { { one, s }, { 0, 0 }, { two, O_NONE } };   /* the middle one deleted */
    at_repr_t r;
    cr_assert_eq(repr(make_dict(0x400, 0x500, kv, 3, 2), &r), 0);
    cr_expect_str_eq(r.text, "{1: 'k', 2: None}");
    cr_expect_str_eq(json_of(at(0x400)),
                     "{\"type\":\"dict\",\"len\":2,\"items\":[[1,\"k\"],[2,null]],\"truncated\":false}");
    static uint64_t deleted[70][2];   /* 70 entries, the live one past what is scanned */
    deleted[69][0] = one;
    deleted[69][1] = two;
    cr_assert_eq(repr(make_dict(0x800, 0xa00, deleted, 70, 1), &r), 0);
    cr_expect_str_eq(r.text, "{...}");
    cr_expect(r.truncated);
}

LAYOUTS_TEST(a_long_repr_is_cut_within_its_buffer)
{
    setup(*minor);
    char s[61];
    memset(s, '\x01', 60);   /* each shown as \x01: 4 bytes */
    s[60] = '\0';
    uint64_t str = make_str(0x100, s), inner[6], outer[6];
    for (int i = 0; i < 6; i++)
        inner[i] = str;
    uint64_t list = make_list(0x400, 0x480, inner, 6);
    for (int i = 0; i < 6; i++)
        outer[i] = list;
    at_repr_t r;
    cr_assert_eq(repr(make_list(0x600, 0x680, outer, 6), &r), 0);
    size_t len = strlen(r.text);
    cr_expect_lt(len, sizeof r.text);
    cr_expect(len >= 3 && !strcmp(r.text + len - 3, AT_REPR_CUT), "ends in the cut mark: %s", r.text);
    cr_expect(r.truncated);
}

/* ---- a frame's variables ------------------------------------------------- */

/* A code object at 0x1000 naming n variables "v0".. (strs at 0x1800 +
 * 0x80 i), all locals, 1 argument; the frame at 0x3000. */
static void make_frame(int n, const uint64_t *slots)
{
    size_t code = 0x1000, names = 0x1400, kinds = 0x1600;
    put64(code + (size_t)L->object_type, T_CODE);
    put32(code + (size_t)L->code_nlocalsplus, (uint32_t)n);
    put32(code + (size_t)L->code_argcount, 1);
    put64(code + (size_t)L->code_localsplusnames, at(names));
    put64(code + (size_t)L->code_localspluskinds, at(kinds));
    uint64_t name_ptrs[8];
    for (int i = 0; i < n; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "v%d", i);
        name_ptrs[i] = make_str(0x1800 + (size_t)i * 0x80, nm);
    }
    make_tuple(names, name_ptrs, n);
    put64(kinds + (size_t)L->object_type, T_BYTES);
    put64(kinds + (size_t)L->var_size, (uint64_t)n);
    memset(img + kinds + L->bytes_sval, L->co_fast_local, (size_t)n);
    for (int i = 0; i < n; i++)
        put64(0x3000 + (size_t)L->iframe_localsplus + (size_t)i * 8, slots[i]);
}

LAYOUTS_TEST(a_frame_reads_its_variables_and_marks_the_unreadable_one)
{
    setup(*minor);
    uint64_t slots[] = { make_int(0x100, 42), NOWHERE, 0 };
    make_frame(3, slots);
    at_frame_locals_t fl;
    cr_assert_eq(at_locals_read(&proc, at(0x3000), at(0x1000), 1, &fl), 0);
    cr_assert_str_eq(fl.error, "");
    cr_assert_eq(fl.n, 3);
    cr_expect_str_eq(fl.vars[0].name, "v0");
    cr_expect_eq(fl.vars[0].kind, AT_LOCAL_ARG);
    cr_expect_str_eq(fl.vars[0].repr, "42");
    cr_expect_str_eq(fl.vars[0].json, "42");
    cr_expect_eq(fl.vars[1].kind, AT_LOCAL_LOCAL);
    cr_expect_str_eq(fl.vars[1].repr, "<unreadable 0xdead000000>");
    cr_expect_eq(fl.vars[1].error, -EFAULT);
    cr_expect(fl.vars[2].unbound);
    cr_expect_str_eq(fl.vars[2].repr, "<unbound>");
    at_locals_free(&fl);
}

LAYOUTS_TEST(a_frame_whose_code_is_unreadable_says_why)
{
    setup(*minor);
    at_frame_locals_t fl;
    cr_assert_eq(at_locals_read(&proc, at(0x3000), NOWHERE, 1, &fl), 0, "not an error: a message");
    cr_expect_str_eq(fl.error, "code object unreadable: bad address");
    cr_expect_eq(fl.n, 0);
    at_locals_free(&fl);
}

LAYOUTS_TEST(names_that_disagree_with_the_code_are_refused)
{
    setup(*minor);
    uint64_t slots[] = { make_int(0x100, 1), make_int(0x180, 2) };
    make_frame(2, slots);
    put64(0x1400 + (size_t)L->var_size, 7);   /* 7 names for 2 variables */
    at_frame_locals_t fl;
    cr_assert_eq(at_locals_read(&proc, at(0x3000), at(0x1000), 0, &fl), 0);
    cr_expect_str_eq(fl.error, "variable names unreadable: not what CPython would write there");
    cr_expect_eq(fl.n, 0);
    at_locals_free(&fl);
}

LAYOUTS_TEST(an_exited_process_is_told_apart)
{
    setup(*minor);
    uint64_t slots[] = { make_int(0x100, 1) };
    make_frame(1, slots);
    fake_target_load(img, sizeof img, 3);   /* gone at the third read */
    at_frame_locals_t fl;
    cr_expect_eq(at_locals_read(&proc, at(0x3000), at(0x1000), 0, &fl), -ESRCH);
    at_locals_free(&fl);
}

Test(py_repr, names_are_masked_to_visible_characters)
{
    char s[] = "ok_\xd0\xb8\xd0\xbc\xd1\x8f\n\xe2\x80\xae\xff x";
    at_py_repr_mask(s);
    cr_expect_str_eq(s, "ok_\xd0\xb8\xd0\xbc\xd1\x8f??????x");
}

Test(py_repr, floats_read_as_python_prints_them)
{
    static const struct { double d; const char *want; } cases[] = {
        { 1.5, "1.5" }, { 0.1, "0.1" }, { 100.0, "100.0" }, { -0.0, "-0.0" }, { 1e16, "1e+16" },
        { 1.5e-05, "1.5e-05" }, { 123456.789, "123456.789" }, { 1e-07, "1e-07" },
        { 2.0 / 3.0, "0.6666666666666666" }, { 1e300 * 1e10, "inf" }, { 9007199254740993.0, "9007199254740992.0" },
    };
    char buf[48];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        at_py_repr_float(cases[i].d, buf, sizeof buf);
        cr_expect_str_eq(buf, cases[i].want, "repr(%.17g)", cases[i].d);
    }
}
