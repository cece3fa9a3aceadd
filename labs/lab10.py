"""Lab 10 - static typing that mypy checks and the runtime mostly ignores.

What the lab shows, on code in this very file:

  1. typing.Protocol: structural types (no inheritance needed), and what
     @runtime_checkable really checks at run time - only that the members
     exist (a method set to None counts as absent), never their signatures;
     isinstance() on a plain Protocol and issubclass() on a Protocol with
     data members raise TypeError;
  2. callable Protocols (a __call__ method) for callbacks that take
     keyword-only arguments, which Callable[...] cannot spell;
  3. ParamSpec: a decorator that keeps the decorated function's exact
     signature, and Concatenate: a decorator that supplies the first
     argument itself, so callers no longer pass it;
  4. TypeVarTuple (new in 3.11): variadic generics - a Row[int, str, float]
     and a call_later(func, *args) whose arguments must match func;
  5. @overload, with typing.get_overloads() (new in 3.11) listing the
     overload signatures at run time;
  6. mypy --strict, run by the lab with the same interpreter: this file
     passes with no error, and a snippet of deliberate mistakes (written to
     a temporary directory) fails with exactly the expected error codes on
     exactly the expected lines - mistakes the runtime would not catch.

The whole file is written to pass `mypy --strict`.  Needs mypy
(labs/requirements.txt; `make deps` installs it into .venv/).  Run it from
anywhere:

    .venv/shared/bin/python labs/lab10.py

The last line is "VERIFY lab10: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import functools
import importlib.util
import inspect
import itertools
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import typing
from typing import (Any, Callable, Concatenate, Generic, Iterable, Literal,
                    ParamSpec, Protocol, Sequence, TypeVar, TypeVarTuple,
                    assert_type, get_overloads, overload, runtime_checkable)

FAILURES: list[str] = []


def heading(title: str) -> None:
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition: bool, what: str) -> bool:
    """Record a failed check; the VERIFY line at the end reports them."""
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)
    return condition


# --------------------------------------------------------------------------
# 1. Protocols: structural typing
# --------------------------------------------------------------------------

class SupportsClose(Protocol):
    """Anything with a close() method - for mypy only (not runtime-checkable)."""

    def close(self) -> None: ...


@runtime_checkable
class Resource(Protocol):
    """A named thing that can be closed; isinstance() works on it."""

    name: str

    def close(self) -> None: ...


@runtime_checkable
class Closer(Protocol):
    """Methods only: issubclass() works on it too."""

    def close(self) -> None: ...


class TempFile:
    """Satisfies Resource without inheriting from it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Socketish:
    """Has both members, but close() takes an argument: not a Resource for mypy."""

    name = "sock"

    def close(self, force: bool) -> None:
        pass


class Nameless:
    """Has close() but no name."""

    def close(self) -> None:
        pass


class Blocked:
    """Sets close to None: the documented way to opt out of a protocol."""

    name = "blocked"
    close = None


def close_all(items: Iterable[SupportsClose]) -> int:
    count = 0
    for item in items:
        item.close()
        count += 1
    return count


def section_protocols() -> None:
    heading("1. typing.Protocol and @runtime_checkable")
    files = [TempFile("a.txt"), TempFile("b.txt")]
    n = close_all(files)  # mypy: a list of TempFile is an Iterable[SupportsClose]
    print("  close_all() closed %d TempFile objects; TempFile's bases: %s"
          % (n, [b.__name__ for b in TempFile.__mro__[1:]]))
    check(all(f.closed for f in files), "close_all called close() structurally")

    print("  isinstance(x, Resource) checks only that the members exist:")
    cases: list[tuple[object, bool, str]] = [
        (TempFile("t"), True, "has name and close()"),
        (Socketish(), True, "close(force) has the wrong signature, still True"),
        (Nameless(), False, "no 'name' attribute"),
        (Blocked(), False, "close = None blocks the method"),
    ]
    for obj, expected, why in cases:
        got = isinstance(obj, Resource)
        print("      %-10s -> %-5s  (%s)" % (type(obj).__name__, got, why))
        check(got == expected, "isinstance(%s, Resource) is %s" % (type(obj).__name__, expected))

    # These two calls are errors for mypy too, so the protocol is passed
    # through Any to show what the runtime does with them.
    plain: Any = SupportsClose
    with_data: Any = Resource
    try:
        isinstance(TempFile("t"), plain)
        plain_error = ""
    except TypeError as exc:
        plain_error = str(exc)
    print("  isinstance(x, SupportsClose)  -> TypeError: %s" % plain_error)
    check(plain_error != "", "isinstance() on a non-runtime protocol raises TypeError")
    try:
        issubclass(TempFile, with_data)
        data_error = ""
    except TypeError as exc:
        data_error = str(exc)
    print("  issubclass(TempFile, Resource) -> TypeError: %s" % data_error)
    check(data_error != "", "issubclass() on a protocol with data members raises TypeError")
    sub = issubclass(TempFile, Closer)
    print("  issubclass(TempFile, Closer)   -> %s (methods-only protocol)" % sub)
    check(sub, "issubclass() works on a methods-only runtime protocol")


# --------------------------------------------------------------------------
# 2. Callable protocols
# --------------------------------------------------------------------------

@runtime_checkable
class Formatter(Protocol):
    """A callback taking one positional float and a keyword-only precision."""

    def __call__(self, value: float, /, *, precision: int = 2) -> str: ...


def fixed(value: float, /, *, precision: int = 2) -> str:
    return "%.*f" % (precision, value)


def percent(value: float, /, *, precision: int = 2) -> str:
    return "%.*f%%" % (precision, value * 100)


def render(values: Sequence[float], fmt: Formatter) -> list[str]:
    return [fmt(v, precision=1) for v in values]


def section_callable_protocols() -> None:
    heading("2. callable Protocols: __call__ with keyword-only arguments")
    values = [0.125, 0.5, 0.875]
    a = render(values, fixed)
    b = render(values, percent)
    print("  render(%s, fixed)   -> %s" % (values, a))
    print("  render(%s, percent) -> %s" % (values, b))
    check(a == ["0.1", "0.5", "0.9"] and b == ["12.5%", "50.0%", "87.5%"],
          "both formatters fit the callable protocol")
    anything: object = len
    print("  isinstance(len, Formatter) -> %s: at run time any callable has"
          % isinstance(anything, Formatter))
    print("  a __call__; only mypy compares the signature")
    check(isinstance(anything, Formatter), "runtime check of a callable protocol sees only __call__")


# --------------------------------------------------------------------------
# 3. ParamSpec and Concatenate
# --------------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
CALL_LOG: list[str] = []


def logged(func: Callable[P, R]) -> Callable[P, R]:
    """Log every call; the wrapper has exactly func's parameters."""
    @functools.wraps(func)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        CALL_LOG.append("%s args=%r kwargs=%r" % (func.__name__, args, kwargs))
        return func(*args, **kwargs)
    return inner


@logged
def transfer(src: str, dst: str, amount: int, *, memo: str = "") -> bool:
    return amount > 0 and src != dst


class Request:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = "req-%d" % next(self._ids)


def with_request(func: Callable[Concatenate[Request, P], R]) -> Callable[P, R]:
    """Supply a fresh Request as the first argument: callers drop it."""
    @functools.wraps(func)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        return func(Request(), *args, **kwargs)
    return inner


@with_request
def handle(req: Request, path: str, verbose: bool = False) -> str:
    return "%s %s%s" % (req.id, path, " (verbose)" if verbose else "")


def section_paramspec() -> None:
    heading("3. ParamSpec keeps a signature, Concatenate adds an argument")
    ok = transfer("alice", "bob", 25, memo="rent")
    print("  transfer('alice', 'bob', 25, memo='rent') -> %s" % ok)
    print("  logged: %s" % CALL_LOG[-1])
    sig = inspect.signature(transfer)
    print("  inspect.signature(transfer) = %s  (via __wrapped__)" % sig)
    check(ok and str(sig) == "(src: str, dst: str, amount: int, *, memo: str = '') -> bool",
          "the logged wrapper keeps transfer's signature")
    hints = typing.get_type_hints(transfer)
    print("  get_type_hints(transfer) = %s" % {k: v.__name__ for k, v in hints.items()})

    first = handle("/orders")
    second = handle("/users", verbose=True)
    print("  handle('/orders') -> %r; handle('/users', verbose=True) -> %r" % (first, second))
    check(first.endswith(" /orders") and second.endswith(" /users (verbose)"),
          "with_request supplies the Request argument")
    assert_type(handle("/x"), str)  # a no-op at run time; mypy checks it


# --------------------------------------------------------------------------
# 4. TypeVarTuple: variadic generics
# --------------------------------------------------------------------------

Ts = TypeVarTuple("Ts")


class Row(Generic[*Ts]):
    """A typed row: Row(1, 'a', 2.0) is a Row[int, str, float]."""

    def __init__(self, *values: *Ts) -> None:
        self.values: tuple[*Ts] = values

    def as_tuple(self) -> tuple[*Ts]:
        return self.values

    def append(self, value: T) -> "Row[*Ts, T]":
        return Row(*self.values, value)


def call_later(func: Callable[[*Ts], R], *args: *Ts) -> Callable[[], R]:
    """Bind arguments now, call later; mypy matches args against func."""
    def thunk() -> R:
        return func(*args)
    return thunk


def head(t: tuple[T, *Ts]) -> T:
    return t[0]


def area(width: int, height: float, unit: str) -> str:
    return "%g %s^2" % (width * height, unit)


def section_variadics() -> None:
    heading("4. TypeVarTuple: Row[*Ts], call_later(func, *args)")
    row = Row(7, "seven", 7.0)
    assert_type(row, Row[int, str, float])
    longer = row.append(True)
    assert_type(longer.as_tuple(), tuple[int, str, float, bool])
    print("  Row(7, 'seven', 7.0).append(True).as_tuple() -> %r" % (longer.as_tuple(),))
    print("  mypy sees Row[int, str, float, bool]; at run time it is just %s"
          % type(longer).__name__)
    thunk = call_later(area, 3, 2.5, "m")
    print("  call_later(area, 3, 2.5, 'm')() -> %r" % thunk())
    print("  head((1, 'x', None)) -> %r" % head((1, "x", None)))
    params = typing.cast(Any, Row).__parameters__  # set at run time by Generic
    print("  Ts = %r; Row.__parameters__ = %r" % (Ts, params))
    check(longer.as_tuple() == (7, "seven", 7.0, True) and thunk() == "7.5 m^2",
          "variadic generics run as ordinary code")
    check(params == (Ts,), "Row has one (variadic) type parameter")


# --------------------------------------------------------------------------
# 5. Overloads
# --------------------------------------------------------------------------

@overload
def parse(raw: str) -> int: ...
@overload
def parse(raw: bytes) -> bytes: ...
@overload
def parse(raw: str, *, as_list: Literal[True]) -> list[int]: ...


def parse(raw: str | bytes, *, as_list: bool = False) -> int | bytes | list[int]:
    """'1,2,3' -> 6 (or [1, 2, 3] with as_list=True); bytes come back stripped."""
    if isinstance(raw, bytes):
        return raw.strip()
    numbers = [int(x) for x in raw.split(",")]
    return numbers if as_list else sum(numbers)


def section_overloads() -> None:
    heading("5. @overload and typing.get_overloads()")
    total = parse("1,2,3")
    items = parse("1,2,3", as_list=True)
    data = parse(b"  raw  ")
    assert_type(total, int)
    assert_type(items, list[int])
    assert_type(data, bytes)
    print("  parse('1,2,3') -> %r ; parse('1,2,3', as_list=True) -> %r ; "
          "parse(b'  raw  ') -> %r" % (total, items, data))
    sigs = [str(inspect.signature(f)) for f in get_overloads(parse)]
    for s in sigs:
        print("  overload: parse%s" % s)
    print("  the implementation:  parse%s" % inspect.signature(parse))
    check(len(sigs) == 3 and sigs[1] == "(raw: bytes) -> bytes",
          "get_overloads() returns the three overload signatures")
    check((total, items, data) == (6, [1, 2, 3], b"raw"), "parse behaves as its overloads say")


# --------------------------------------------------------------------------
# 6. mypy --strict on this file, and on deliberate mistakes
# --------------------------------------------------------------------------

# Every line marked "# E: code" must get exactly that mypy error; no other
# line may get one.  At run time some of these fail only when the line runs,
# and some never fail at all: the Socketish "Resource", the str that holds an
# int, and handle(Request(), "/x"), whose arguments silently shift by one.
MISTAKES = '''\
from lab10 import (Resource, Row, Socketish, call_later, area, handle,
                   parse, render, transfer, Request)


def bad_format(value: float) -> str:
    return str(value)


r: Resource = Socketish()  # E: assignment
render([1.0], bad_format)  # E: arg-type
transfer("alice", "bob", "100")  # E: arg-type
transfer("alice", "bob", 100, note="x")  # E: call-arg
handle(Request(), "/x")  # E: arg-type
call_later(area, 3, "2.5", "m")  # E: arg-type
parse(3.5)  # E: call-overload
n: str = Row(1, "a").as_tuple()[0]  # E: assignment
'''


def run_mypy(args: list[str], cwd: str, env: dict[str, str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mypy"] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def section_mypy() -> None:
    heading("6. mypy --strict, run with this interpreter")
    here = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory(prefix="lab10-") as tmp:
        env = dict(os.environ)
        env["MYPYPATH"] = os.path.dirname(here)  # so the snippet can import lab10
        env.pop("MYPY_CACHE_DIR", None)
        common = ["--strict", "--config-file", "", "--cache-dir", os.path.join(tmp, "cache"),
                  "--no-color-output", "--no-pretty", "--show-error-codes"]

        rc, out, secs = run_mypy(common + [here], tmp, env)
        print("  $ python -m mypy --strict labs/lab10.py   (%.1f s, cold cache)" % secs)
        for line in out.strip().splitlines():
            print("    " + line)
        check(rc == 0 and "Success: no issues found in 1 source file" in out,
              "mypy --strict passes on lab10.py")

        snippet = os.path.join(tmp, "mistakes.py")
        with open(snippet, "w") as f:
            f.write(MISTAKES)
        expected: set[tuple[int, str]] = set()
        for number, line in enumerate(MISTAKES.splitlines(), 1):
            m = re.search(r"# E: ([a-z-]+)$", line)
            if m:
                expected.add((number, m.group(1)))
        rc, out, secs = run_mypy(common + [snippet], tmp, env)
        print()
        print("  $ python -m mypy --strict mistakes.py   (%.1f s, warm cache)" % secs)
        numbered = MISTAKES.splitlines()
        found: set[tuple[int, str]] = set()
        reported = 0
        for line in out.strip().splitlines():
            m = re.match(r".*mistakes\.py:(\d+): error: (.*)  \[([a-z-]+)\]$", line)
            if m:
                number = int(m.group(1))
                found.add((number, m.group(3)))
                reported += 1
                print("    line %2d: %s" % (number, numbered[number - 1].split("  #")[0]))
                print("             error [%s]: %s" % (m.group(3), textwrap.shorten(m.group(2), 90)))
            elif "error:" in line or "Found" in line:
                print("    " + line)
        check(rc == 1, "mypy exits 1 on the mistakes")
        missed = sorted(expected - found)
        extra = sorted(found - expected)
        print("  %d marked mistakes; mypy reported %d errors, on exactly those lines"
              " with those codes%s" % (len(expected), reported,
                                       "" if found == expected else " - NOT"))
        check(found == expected, "mypy reports exactly the marked errors "
              "(missed %s, unexpected %s)" % (missed, extra))


def main() -> int:
    print("Lab 10: typing.Protocol, ParamSpec, TypeVarTuple and overloads in "
          "CPython %s" % sys.version.split()[0])
    if importlib.util.find_spec("mypy") is None:
        print("FAIL lab10: the mypy package is not installed for %s "
              "(run `make deps`, then use .venv/<shape>/bin/python)" % sys.executable)
        return 1
    section_protocols()
    section_callable_protocols()
    section_paramspec()
    section_variadics()
    section_overloads()
    section_mypy()
    print()
    if FAILURES:
        print("FAIL lab10: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab10: mypy --strict passes on lab10.py and flags all 8 marked mistakes; "
          "runtime_checkable isinstance is structural, members only ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
