"""Lab 05 - calling C from Python with ctypes (and seeing memory as C does).

What the lab shows, with the standard library only:

  1. ctypes.CDLL: loading the C library and declaring argtypes/restype;
  2. Structure and POINTER: C structs with real offsets, a struct returned
     by value (div), a struct filled through byref (gettimeofday), and the
     CPython object header itself read as a Structure;
  3. Union: one piece of memory seen as different types (byte order, the
     bits of a float);
  4. cast: reinterpreting a pointer as a pointer to another type;
  5. libc malloc / memset / free: memory Python's allocator knows nothing
     about;
  6. CFUNCTYPE callbacks: libc's qsort sorting a ctypes array by calling a
     Python comparator (the lab's verification), then sorting structs.

Targets CPython 3.11 on Linux (glibc).  Run it from anywhere:

    python3 labs/lab05.py

The last line is "VERIFY lab05: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import ctypes
import ctypes.util
import os
import struct
import sys
import time

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


def load_libc():
    """Open glibc by its soname; fall back to asking ctypes.util."""
    for name in ("libc.so.6", ctypes.util.find_library("c")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name, use_errno=True), name
        except OSError:
            continue
    return None, None


def declare(libc):
    """Give every function we call a prototype; without one, ctypes
    assumes int arguments and an int result, which truncates pointers."""
    c = ctypes
    libc.strlen.argtypes, libc.strlen.restype = [c.c_char_p], c.c_size_t
    libc.getpid.argtypes, libc.getpid.restype = [], c.c_int
    libc.labs.argtypes, libc.labs.restype = [c.c_long], c.c_long
    libc.malloc.argtypes, libc.malloc.restype = [c.c_size_t], c.c_void_p
    libc.free.argtypes, libc.free.restype = [c.c_void_p], None
    libc.memset.argtypes, libc.memset.restype = [c.c_void_p, c.c_int, c.c_size_t], c.c_void_p
    libc.div.argtypes, libc.div.restype = [c.c_int, c.c_int], DivT
    libc.gettimeofday.argtypes = [c.POINTER(Timeval), c.c_void_p]
    libc.gettimeofday.restype = c.c_int
    libc.qsort.argtypes = [c.c_void_p, c.c_size_t, c.c_size_t, c.c_void_p]
    libc.qsort.restype = None


# --- C types used below -------------------------------------------------------

class DivT(ctypes.Structure):
    """div_t from <stdlib.h>: { int quot; int rem; }"""
    _fields_ = [("quot", ctypes.c_int), ("rem", ctypes.c_int)]


class Timeval(ctypes.Structure):
    """struct timeval from <sys/time.h>"""
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Sample(ctypes.Structure):
    """A struct with padding: char, then a double aligned to 8."""
    _fields_ = [("tag", ctypes.c_char), ("value", ctypes.c_double), ("id", ctypes.c_uint16)]


class PyObjectHead(ctypes.Structure):
    """The first fields of every object in a release build of CPython 3.11."""
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p)]


class PyVarObjectHead(ctypes.Structure):
    """PyObject_VAR_HEAD: the header plus ob_size (list, tuple, bytes ...)."""
    _fields_ = [("ob_base", PyObjectHead), ("ob_size", ctypes.c_ssize_t)]


class Word(ctypes.Union):
    """Four bytes seen as one 32-bit integer, as bytes, or as a float."""
    _fields_ = [("u32", ctypes.c_uint32), ("raw", ctypes.c_uint8 * 4), ("f32", ctypes.c_float)]


class Score(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 8), ("points", ctypes.c_int)]


# --- sections -------------------------------------------------------------------

def section_cdll(libc, name):
    heading("1. ctypes.CDLL: loading libc and calling it")
    print("  loaded %r (CDLL handle from dlopen)" % name)
    n = libc.strlen(b"archtrace")
    pid = libc.getpid()
    a = libc.labs(-123456789012)
    print("  strlen(b'archtrace') = %d" % n)
    print("  getpid()             = %d (os.getpid() agrees: %s)" % (pid, pid == os.getpid()))
    print("  labs(-123456789012)  = %d (needs restype c_long, not the default int)" % a)
    check(n == 9 and pid == os.getpid() and a == 123456789012, "libc calls return C results")


def section_structs(libc):
    heading("2. Structure and POINTER")
    print("  Sample { char tag; double value; uint16_t id; }")
    for fname, _ in Sample._fields_:
        f = getattr(Sample, fname)
        print("     %-6s offset %2d size %d" % (fname, f.offset, f.size))
    print("  sizeof(Sample) = %d, alignment %d (7 padding bytes after tag, 6 at the end)"
          % (ctypes.sizeof(Sample), ctypes.alignment(Sample)))
    check(Sample.value.offset == 8 and ctypes.sizeof(Sample) == 24, "struct padding as in C")

    r = libc.div(47, 5)
    print("  div(47, 5) returned a struct by value: quot=%d rem=%d" % (r.quot, r.rem))
    check((r.quot, r.rem) == (9, 2), "div_t returned by value")

    tv = Timeval()
    rc = libc.gettimeofday(ctypes.byref(tv), None)
    drift = abs(tv.tv_sec + tv.tv_usec / 1e6 - time.time())
    print("  gettimeofday(byref(tv), NULL) -> rc %d, matches time.time(): %s"
          % (rc, drift < 5))
    check(rc == 0 and drift < 5, "gettimeofday filled the struct through byref")

    samples = (Sample * 3)((b"a", 1.5, 10), (b"b", 2.5, 20), (b"c", 3.5, 30))
    p = ctypes.cast(samples, ctypes.POINTER(Sample))
    print("  POINTER(Sample) indexing: p[2].value = %.1f, p[2].id = %d" % (p[2].value, p[2].id))
    p[1].value = 99.0
    print("  writing p[1].value = 99.0 changes the array: samples[1].value = %.1f"
          % samples[1].value)
    check(samples[1].value == 99.0, "a pointer writes through to the array")

    # The same idea archtrace uses from outside: an object's memory starts
    # with PyObject_HEAD.  id() is the address in CPython.
    items = [10, 20, 30, 40]
    head = PyVarObjectHead.from_address(id(items))
    print("  a Python list read as PyVarObject: ob_refcnt=%d ob_type==id(list): %s ob_size=%d"
          % (head.ob_base.ob_refcnt, head.ob_base.ob_type == id(list), head.ob_size))
    check(head.ob_base.ob_type == id(list) and head.ob_size == len(items),
          "PyVarObject header of a list (type pointer and length)")


def section_union():
    heading("3. Union: one memory, several types")
    w = Word()
    w.u32 = 0x11223344
    raw = bytes(w.raw)
    order = "little" if raw[0] == 0x44 else "big"
    print("  u32 = 0x11223344 -> bytes %s (%s-endian; sys.byteorder = %s)"
          % (raw.hex(" "), order, sys.byteorder))
    w.f32 = 1.0
    print("  f32 = 1.0 -> u32 = 0x%08x (sign 0, exponent 127, mantissa 0)" % w.u32)
    w.f32 = -2.5
    print("  f32 = -2.5 -> u32 = 0x%08x" % w.u32)
    print("  sizeof(Word) = %d: a union is as big as its largest member" % ctypes.sizeof(Word))
    check(order == sys.byteorder, "byte order seen through the union matches sys.byteorder")
    check(w.u32 == struct.unpack("<I", struct.pack("<f", -2.5))[0] and ctypes.sizeof(Word) == 4,
          "float bits through the union agree with struct")


def section_cast():
    heading("4. cast: the same pointer, another type")
    values = (ctypes.c_double * 3)(1.0, -0.0, 0.1)
    as_u64 = ctypes.cast(values, ctypes.POINTER(ctypes.c_uint64))
    for i in range(3):
        print("  double %-5r bits 0x%016x" % (values[i], as_u64[i]))
    text = ctypes.create_string_buffer(b"ABC")
    as_bytes = ctypes.cast(text, ctypes.POINTER(ctypes.c_uint8))
    print("  char buffer b'ABC' as uint8: %s (and the NUL terminator %d)"
          % ([as_bytes[i] for i in range(3)], as_bytes[3]))
    addr = ctypes.addressof(values)
    back = ctypes.cast(ctypes.c_void_p(addr), ctypes.POINTER(ctypes.c_double))
    print("  an address as a plain integer cast back to double*: %r" % back[2])
    check(as_u64[0] == 0x3FF0000000000000 and as_u64[1] == 0x8000000000000000,
          "double bit patterns through cast")
    check([as_bytes[i] for i in range(4)] == [65, 66, 67, 0] and back[2] == 0.1,
          "cast to uint8* and back from an address")


def section_malloc(libc):
    heading("5. libc malloc / memset / free")
    size = 64
    ptr = libc.malloc(size)
    if not ptr:
        check(False, "malloc(64) returned NULL")
        return
    try:
        libc.memset(ptr, 0xAB, size)
        view = (ctypes.c_uint8 * size).from_address(ptr)
        print("  malloc(%d) -> a pointer outside Python's heap (not traced by tracemalloc)" % size)
        print("  after memset(ptr, 0xAB, %d): first 8 bytes %s" % (size, bytes(view[:8]).hex(" ")))
        ctypes.memmove(ptr, b"hello from python\0", 18)
        msg = ctypes.string_at(ptr)
        print("  memmove(ptr, b'hello from python\\0') -> string_at(ptr) = %r" % msg)
        length = libc.strlen(ctypes.cast(ptr, ctypes.c_char_p))
        print("  strlen(ptr) = %d; byte 18 is still 0x%02x" % (length, view[18]))
        check(all(b == 0xAB for b in view[18:]) and msg == b"hello from python",
              "memset and memmove wrote where expected")
    finally:
        libc.free(ptr)
        print("  free(ptr): done (touching view now would be a use-after-free)")


COMPARE_CALLS = 0


def compare_ints(pa, pb):
    """int (*)(const void *, const void *) for qsort, written in Python."""
    global COMPARE_CALLS
    COMPARE_CALLS += 1
    a, b = pa[0], pb[0]
    return (a > b) - (a < b)


def section_qsort(libc):
    heading("6. CFUNCTYPE: libc qsort calling a Python comparator")
    CMP_INT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                               ctypes.POINTER(ctypes.c_int))
    # Deterministic "random" numbers from a small LCG.
    values, x = [], 12345
    for _ in range(24):
        x = (1103515245 * x + 12345) % 2 ** 31
        values.append(x % 1000 - 500)
    arr = (ctypes.c_int * len(values))(*values)
    # Keep the callback object referenced for as long as C may call it.
    callback = CMP_INT(compare_ints)
    print("  before: %s" % list(arr))
    libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), callback)
    result = list(arr)
    print("  after : %s" % result)
    print("  qsort called the Python comparator %d times" % COMPARE_CALLS)
    check(result == sorted(values), "qsort result equals sorted()")
    check(COMPARE_CALLS >= len(values) - 1, "the comparator was called from C")

    CMP_SCORE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Score), ctypes.POINTER(Score))

    def by_points_then_name(pa, pb):
        a, b = pa[0], pb[0]
        ka, kb = (-a.points, a.name), (-b.points, b.name)
        return (ka > kb) - (ka < kb)

    rows = [(b"ada", 31), (b"linus", 12), (b"grace", 31), (b"guido", 27), (b"ken", 12)]
    scores = (Score * len(rows))(*rows)
    score_cb = CMP_SCORE(by_points_then_name)
    libc.qsort(scores, len(scores), ctypes.sizeof(Score), score_cb)
    table = [(s.name.decode(), s.points) for s in scores]
    print("  structs sorted by points desc, then name: %s" % table)
    check(table == sorted(((n.decode(), p) for n, p in rows), key=lambda r: (-r[1], r[0])),
          "qsort sorted structs through a Python comparator")
    return result


def main():
    print("Lab 05: ctypes and libc from CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab05: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    libc, name = load_libc()
    if libc is None:
        print("FAIL lab05: cannot load the C library (tried libc.so.6 and find_library('c'))")
        return 1
    declare(libc)
    section_cdll(libc, name)
    section_structs(libc)
    section_union()
    section_cast()
    section_malloc(libc)
    result = section_qsort(libc)
    print()
    if FAILURES:
        print("FAIL lab05: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab05: libc qsort sorted %d ints and 5 structs through Python comparators "
          "(%d calls); structs, unions, casts and malloc/memset/free ... ok"
          % (len(result), COMPARE_CALLS))
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab05: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
