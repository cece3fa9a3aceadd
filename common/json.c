/* SPDX-License-Identifier: MIT */
/* json.c - streaming JSON writer with strict escaping. */
#include "json.h"
#include "utf8.h"
#include <math.h>
#include <inttypes.h>
#include <string.h>

void at_json_init(at_json_t *j, FILE *out, int pretty)
{
    j->out = out;
    j->pretty = pretty;
    j->depth = 0;
    j->after_key = 0;
    for (int i = 0; i < AT_JSON_MAX_DEPTH; i++)
        j->need_comma[i] = 0;
}

static void newline_indent(at_json_t *j)
{
    if (!j->pretty)
        return;
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

/* Called before every value or key: writes the separating comma. */
static void before_value(at_json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0) {
        if (j->need_comma[j->depth])
            fputc(',', j->out);
        newline_indent(j);
        j->need_comma[j->depth] = 1;
    }
}

static void open_container(at_json_t *j, char c)
{
    before_value(j);
    fputc(c, j->out);
    if (j->depth < AT_JSON_MAX_DEPTH - 1)
        j->depth++;
    j->need_comma[j->depth] = 0;
}

static void close_container(at_json_t *j, char c)
{
    int had_items = j->need_comma[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (had_items)
        newline_indent(j);
    fputc(c, j->out);
    if (j->depth == 0 && j->pretty)
        fputc('\n', j->out);
}

void at_json_obj_begin(at_json_t *j) { open_container(j, '{'); }
void at_json_obj_end(at_json_t *j) { close_container(j, '}'); }
void at_json_arr_begin(at_json_t *j) { open_container(j, '['); }
void at_json_arr_end(at_json_t *j) { close_container(j, ']'); }

static void write_escaped(FILE *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            size_t len = at_utf8_len(p + i, n - i);
            if (len == 0) {             /* invalid byte: U+FFFD */
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(p + i, 1, len, out);
                i += len;
            }
        }
    }
    fputc('"', out);
}

void at_json_key(at_json_t *j, const char *key)
{
    before_value(j);
    write_escaped(j->out, key, strlen(key));
    fputs(j->pretty ? ": " : ":", j->out);
    j->after_key = 1;
}

void at_json_strn(at_json_t *j, const char *s, size_t n)
{
    before_value(j);
    write_escaped(j->out, s, n);
}

void at_json_str(at_json_t *j, const char *s)
{
    if (!s) {
        at_json_null(j);
        return;
    }
    at_json_strn(j, s, strlen(s));
}

void at_json_int(at_json_t *j, int64_t v)
{
    before_value(j);
    fprintf(j->out, "%" PRId64, v);
}

void at_json_uint(at_json_t *j, uint64_t v)
{
    before_value(j);
    fprintf(j->out, "%" PRIu64, v);
}

void at_json_double(at_json_t *j, double v)
{
    if (!isfinite(v)) {
        at_json_null(j);
        return;
    }
    before_value(j);
    fprintf(j->out, "%.6g", v);
}

void at_json_bool(at_json_t *j, int v)
{
    before_value(j);
    fputs(v ? "true" : "false", j->out);
}

void at_json_null(at_json_t *j)
{
    before_value(j);
    fputs("null", j->out);
}

void at_json_raw(at_json_t *j, const char *text)
{
    before_value(j);
    fputs(text, j->out);
}

void at_json_kv_str(at_json_t *j, const char *k, const char *s) { at_json_key(j, k); at_json_str(j, s); }
void at_json_kv_int(at_json_t *j, const char *k, int64_t v) { at_json_key(j, k); at_json_int(j, v); }
void at_json_kv_uint(at_json_t *j, const char *k, uint64_t v) { at_json_key(j, k); at_json_uint(j, v); }
void at_json_kv_double(at_json_t *j, const char *k, double v) { at_json_key(j, k); at_json_double(j, v); }
void at_json_kv_bool(at_json_t *j, const char *k, int v) { at_json_key(j, k); at_json_bool(j, v); }
