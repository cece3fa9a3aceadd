"""Lab 01 - what a running CPython 3.11 program looks like from the inside.

This lab walks through the structures archtrace reads from outside a
process, but looks at them from inside, with the standard library only:

  1. the PyObject header: every object starts with a reference count and a
     pointer to its type (read here with ctypes, checked against
     sys.getrefcount and id(type(obj)));
  2. bytecode: dis.dis() of a small real function;
  3. code objects: co_consts, co_varnames, co_lines() (the bytecode-offset to
     line-number table that a sampler uses to turn f_lasti into a line);
  4. frame objects: sys._getframe(), f_back, f_lasti, f_lineno;
  5. the 3.11 adaptive, specializing interpreter: after a warm-up the same
     function shows specialised instructions in dis(adaptive=True);
  6. constant folding: 24 * 60 * 60 is stored as 86400 in co_consts.

Targets CPython 3.11 (the bytecode and the object layout differ in other
versions).  Run it from anywhere:

    python3 labs/lab01.py
    python3 labs/lab01.py --hold 30   # pause inside a nested call, so that
                                      # `archtrace -p PID dump` can see the
                                      # same frames from outside

The last line is "VERIFY lab01: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import ctypes
import dis
import io
import sys

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    """Record a failed check; the VERIFY line at the end reports them."""
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


# The function the whole lab looks at.  It has arguments, locals, a loop, an
# attribute access and a constant expression the compiler folds.
def seconds_in(days):
    day = 24 * 60 * 60
    total = 0
    for _ in range(days):
        total = total + day
    return total


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


def norm1(p):
    return abs(p.x) + abs(p.y)


def section_header():
    heading("1. the PyObject header: refcount and type pointer")
    # In a non-debug 3.11 build, PyObject is { Py_ssize_t ob_refcnt;
    # PyTypeObject *ob_type; }, and id(obj) is the object's address.
    obj = ["a", "list", "object"]
    addr = id(obj)
    refcnt = ctypes.c_ssize_t.from_address(addr).value
    type_ptr = ctypes.c_void_p.from_address(addr + ctypes.sizeof(ctypes.c_ssize_t)).value
    # sys.getrefcount counts its own argument as one extra reference.
    print("  object          : %r" % (obj,))
    print("  ob_refcnt (raw) : %d" % refcnt)
    print("  sys.getrefcount : %d  (one more: the call's own argument)" % sys.getrefcount(obj))
    print("  ob_type  (raw)  : 0x%x" % type_ptr)
    print("  id(type(obj))   : 0x%x  (%s)" % (id(type(obj)), type(obj).__name__))
    check(type_ptr == id(list), "ob_type of a list is the address of list")
    check(sys.getrefcount(obj) == refcnt + 1, "getrefcount == ob_refcnt + 1")

    alias = obj  # one more reference, so one more in the header
    after = ctypes.c_ssize_t.from_address(addr).value
    print("  after 'alias = obj', ob_refcnt is %d (+%d)" % (after, after - refcnt))
    check(after == refcnt + 1, "a new name adds exactly one reference")
    del alias


def section_dis():
    heading("2. bytecode: dis.dis(seconds_in)")
    out = io.StringIO()
    dis.dis(seconds_in, file=out)
    text = out.getvalue()
    for line in text.splitlines():
        print("  " + line)
    ops = [ins.opname for ins in dis.get_instructions(seconds_in)]
    expected = ["RESUME", "LOAD_CONST", "STORE_FAST", "GET_ITER", "FOR_ITER",
                "BINARY_OP", "JUMP_BACKWARD", "RETURN_VALUE"]
    missing = [op for op in expected if op not in ops]
    print()
    print("  expected opcodes: " + " ".join(expected))
    print("  missing         : " + (" ".join(missing) if missing else "(none)"))
    check(not missing, "dis output has the 3.11 opcodes " + ",".join(expected))
    check("86400" in text, "dis output loads the folded constant 86400")
    check("BINARY_OP" in text and "(+)" in text, "dis output shows BINARY_OP (+)")
    return ops


def section_code():
    heading("3. the code object: consts, names, line table")
    co = seconds_in.__code__
    print("  co_name        : %s" % co.co_name)
    print("  co_argcount    : %d" % co.co_argcount)
    print("  co_varnames    : %r" % (co.co_varnames,))
    print("  co_consts      : %r" % (co.co_consts,))
    print("  co_names       : %r" % (co.co_names,))
    print("  co_firstlineno : %d" % co.co_firstlineno)
    print("  len(co_code)   : %d bytes (2 bytes per code unit)" % len(co.co_code))
    print("  co_lines()     : (start, end) bytecode offsets -> line")
    first = co.co_firstlineno
    for start, end, line in co.co_lines():
        rel = "def" if line == first else ("+%d" % (line - first) if line else "-")
        print("      [%3d, %3d) -> line %-4s (%s)" % (start, end, line, rel))
    check(86400 in co.co_consts, "86400 folded into co_consts")
    check(60 not in co.co_consts and 24 not in co.co_consts,
          "the factors 24 and 60 are not in co_consts")
    check(co.co_varnames == ("days", "day", "total", "_"), "co_varnames order")


def where_am_i():
    """Return a description of the current frame and its callers."""
    frame = sys._getframe()
    chain = []
    while frame is not None:
        co = frame.f_code
        chain.append((co.co_name, frame.f_lineno, frame.f_lasti))
        frame = frame.f_back
    return chain


def section_frames():
    heading("4. frame objects: sys._getframe(), f_back, f_lasti")
    chain = where_am_i()
    print("  innermost first (function, f_lineno, f_lasti):")
    for name, line, lasti in chain:
        print("      %-16s line %-4d lasti %d" % (name, line, lasti))
    names = [c[0] for c in chain]
    check(names[:3] == ["where_am_i", "section_frames", "main"],
          "f_back walks where_am_i -> section_frames -> main")
    check(names[-1] == "<module>", "the outermost frame is <module>")

    # f_lasti is an offset into co_code; co_lines maps it back to a line,
    # which is exactly what an out-of-process sampler does.
    # Read both in one expression, so they describe the same instruction.
    frame = sys._getframe()
    lasti, lineno = frame.f_lasti, frame.f_lineno
    mapped = None
    for start, end, line in frame.f_code.co_lines():
        if start <= lasti < end:
            mapped = line
    print("  this frame: f_lasti=%d maps via co_lines() to line %s; f_lineno=%d"
          % (lasti, mapped, lineno))
    check(mapped == lineno, "f_lasti mapped through co_lines equals f_lineno")


def section_adaptive():
    heading("5. the 3.11 adaptive interpreter: specialisation after warm-up")
    points = [Point(i, -i) for i in range(50)]
    before = [i.opname for i in dis.get_instructions(norm1, adaptive=True)]
    for _ in range(200):  # warm up: the quickening threshold is small
        for p in points:
            norm1(p)
    after = [i.opname for i in dis.get_instructions(norm1, adaptive=True)]
    plain = [i.opname for i in dis.get_instructions(norm1)]
    print("  %-22s %-26s %s" % ("generic", "adaptive, before", "adaptive, after warm-up"))
    for g, b, a in zip(plain, before, after):
        if a == g:
            mark = ""
        elif a.endswith(("_ADAPTIVE", "_QUICK")):
            mark = "  <- quickened (adaptive form)"
        else:
            mark = "  <- specialised"
        print("  %-22s %-26s %s%s" % (g, b, a, mark))
    changed = [a for g, a in zip(plain, after) if a != g]
    print("  %d of %d instructions were rewritten in place while the code ran"
          % (len(changed), len(plain)))
    check(len(before) == len(after) == len(plain), "same instruction count")
    check(any(op.startswith("LOAD_ATTR_") for op in changed),
          "p.x specialised to a LOAD_ATTR_* instruction")
    check(any(op.startswith("BINARY_OP_") for op in changed),
          "the + specialised to a BINARY_OP_* instruction")


def section_folding():
    heading("6. constant folding")
    src = "x = 24 * 60 * 60\ny = ('a', 'b') + ('c',)\nz = 2 ** 10\n"
    co = compile(src, "<folding>", "exec")
    print("  source:")
    for line in src.splitlines():
        print("      " + line)
    print("  co_consts after compile: %r" % (co.co_consts,))
    arith = [i for i in dis.get_instructions(co) if i.opname == "BINARY_OP"]
    print("  BINARY_OP instructions left at run time: %d" % len(arith))
    check(86400 in co.co_consts and ("a", "b", "c") in co.co_consts
          and 1024 in co.co_consts, "the optimizer folded all three expressions")
    check(not arith, "no arithmetic left in the folded code")


def hold_here(seconds):
    """Sleep inside a known call chain so an outside tool can inspect it."""
    import os
    import time
    frame = sys._getframe()
    print("  pid %d is sleeping %gs in hold_here(), called from %s()"
          % (os.getpid(), seconds, frame.f_back.f_code.co_name))
    print("  try: archtrace -p %d dump" % os.getpid(), flush=True)
    time.sleep(seconds)


def parse_hold(argv):
    """Return the --hold SECONDS value (0 when absent)."""
    if "--hold" not in argv:
        return 0.0
    i = argv.index("--hold")
    try:
        return float(argv[i + 1])
    except (IndexError, ValueError):
        print("FAIL lab01: --hold needs a number of seconds")
        raise SystemExit(2)


def main():
    hold = parse_hold(sys.argv[1:])
    print("Lab 01: objects, bytecode, code objects and frames in CPython %s"
          % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab01: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    section_header()
    section_dis()
    section_code()
    section_frames()
    if hold > 0:
        heading("4b. holding for an outside look")
        hold_here(hold)
    section_adaptive()
    section_folding()
    print()
    if FAILURES:
        print("FAIL lab01: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab01: object header, dis opcodes, folded 86400 in co_consts, "
          "frames and specialisation ... ok")
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab01: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
