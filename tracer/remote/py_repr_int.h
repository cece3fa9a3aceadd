/* SPDX-License-Identifier: MIT */
/* py_repr_int.h - what the repr's files share: the walk over one value, its output and its bounded reads.
 *
 * py_repr.c reads a value's header and dispatches on its type (and
 * shows what it does not decode by type name); py_repr_num.c writes
 * ints and floats, py_repr_text.c str and bytes, py_repr_items.c the
 * containers, whose items go back through at_repr_value.  Not for use
 * outside these files. */
#ifndef AT_PY_REPR_INT_H
#define AT_PY_REPR_INT_H
#include <stddef.h>
#include <stdint.h>

#include "remote/py_repr.h"

#define MAX_LEN        (1ll << 40) /* a longer container or str is corrupt */

typedef struct walk {
    at_py_proc_t *p;
    const at_pylayout_t *L;
    at_repr_t *out;
    size_t len;              /* bytes of out->text in use                 */
    int full;                /* out->text reached its end (marked cut)    */
    at_json_t *j;            /* NULL: text only                           */
    int reads_left;          /* of READ_BUDGET                            */
    int gone;                /* a read said the process exited            */
    int top_err;             /* -errno: the object asked for was unreadable */
    int depth;               /* of the value being read (0: the one asked for) */
} walk_t;

/* The builtin kinds the repr decodes; OTHER is shown by type name. */
typedef enum kind {
    K_OTHER, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT, K_SET, K_FROZENSET
} kind_t;

extern const char *const at_repr_kind_names[]; /* "int", "list", ... by kind_t */

/* The text written since `mark`, for a JSON "repr". */
static inline const char *since(const walk_t *w, size_t mark)
{
    return w->out->text + mark;
}

/* py_repr.c: output, reads and the walk itself */
void at_repr_put_n(walk_t *w, const char *s, size_t n);   /* n bytes of text, or the cut mark */
void at_repr_put(walk_t *w, const char *s);
void at_repr_json_described(walk_t *w, const char *type, size_t mark, int truncated);
long at_repr_read_some(walk_t *w, uint64_t addr, void *buf, size_t len);
int at_repr_read_all(walk_t *w, uint64_t addr, void *buf, size_t len);
void at_repr_unreadable(walk_t *w, uint64_t addr, int err); /* "<unreadable 0x...>" in its place */
void at_repr_value(walk_t *w, uint64_t addr, int depth);   /* one value at depth (0: the one asked for) */

/* the kinds, each from the header value() read (head, got bytes) */
void at_repr_int(walk_t *w, const uint8_t *head, long got, uint64_t addr);      /* py_repr_num.c */
void at_repr_float(walk_t *w, const uint8_t *head, long got, uint64_t addr);    /* py_repr_num.c */
void at_repr_str(walk_t *w, uint64_t addr, const uint8_t *head, long got);      /* py_repr_text.c */
void at_repr_bytes(walk_t *w, uint64_t addr, const uint8_t *head, long got);    /* py_repr_text.c */
void at_repr_container(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, int depth); /* py_repr_items.c */

/* py_repr_text.c: a code point Python's repr escapes besides the controls */
int at_repr_hidden_char(uint32_t c);

#endif
