/* SPDX-License-Identifier: MIT */
/* py_repr.h - short, bounded reprs of objects in a CPython 3.11-3.13 target's memory.
 *
 * `dump --locals` shows a frame's variables as a person would want to
 * read them, from outside: nothing runs in the target, so no __repr__ is
 * called.  The builtin types are recognised by their type object's
 * address (proc->known: PyLong_Type, PyFloat_Type, ... and None, True,
 * False themselves, exported by every build) and decoded from their
 * layout; anything else, a subclass of a builtin included, is shown as
 * `<TypeName at 0x...>` with tp_name read bounded.
 *
 * Every read is of untrusted memory: strings and bytes are cut at
 * AT_REPR_STR_CHARS, containers at AT_REPR_MAX_ITEMS items and
 * AT_REPR_MAX_DEPTH levels (deeper ones read as `[...]`, which also ends
 * any cycle), ints past AT_REPR_INT_DIGITS 30-bit digits take a bounded
 * form, and a pointer that cannot be read says so in its place.  One
 * value costs at most 1024 small reads (a list of 6 lists of 6 short
 * strs: 50).
 *
 * The same walk writes the text (Python-like: 'str', b'bytes', 3.5,
 * [1, 2, ...]) and, when asked, a JSON value (docs/JSON.md, "locals").
 */
#ifndef AT_PY_REPR_H
#define AT_PY_REPR_H
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "remote/py_proc.h"

#define AT_REPR_STR_CHARS  60   /* characters of a str or bytes shown        */
#define AT_REPR_MAX_ITEMS  6    /* items of a container shown                */
#define AT_REPR_MAX_DEPTH  2    /* containers shown inside containers        */
#define AT_REPR_INT_DIGITS 10   /* 30-bit digits printed exactly (~90 decimal digits) */
#define AT_REPR_TEXT_MAX   1024 /* bytes of one repr, NUL included           */
#define AT_REPR_TYPE_MAX   64   /* bytes of a type name, NUL included        */
#define AT_REPR_CUT        "\xe2\x80\xa6" /* "…": where a str, bytes or repr was cut */

/* What at_py_repr found. */
typedef struct at_repr {
    char text[AT_REPR_TEXT_MAX]; /* the repr, NUL-ended UTF-8             */
    char type[AT_REPR_TYPE_MAX]; /* its type's name ("int", "Point"), or "" */
    int truncated;               /* something in it was cut               */
} at_repr_t;

/* Read the object at addr into out (text and type) and, when j is not
 * NULL, write its JSON value to j.  Returns 0, -ESRCH when the process
 * is gone, or another -errno when the object itself could not be read
 * or is not what its type says (out->text then says so, "<unreadable
 * 0x...>", and j got {"type": null, "repr": ..., "error": ...}); an item
 * of a container that cannot be read is shown as unreadable in its
 * place, not an error. */
int at_py_repr(at_py_proc_t *p, uint64_t addr, at_repr_t *out, at_json_t *j);

/* Why a value could not be read, for an -errno at_py_repr returned:
 * "bad address", "not what CPython would write there" (-EPROTO),
 * "the process exited", "too many reads". */
const char *at_py_repr_why(int err);

/* Replace in s (NUL-ended) each byte that does not start a visible
 * UTF-8 character (controls, spaces, bidi overrides and the like, bad
 * UTF-8) with '?': for names read from a target before they are shown. */
void at_py_repr_mask(char *s);

/* Format d as Python's repr(float) does (shortest round-trip digits,
 * "1.0", "1e+16", "inf", "nan") into buf (size >= 32). */
void at_py_repr_float(double d, char *buf, size_t size);

#endif
