"""Lab 09 - caching: functools.lru_cache from the inside, a TTL cache, a disk
cache, and caching numpy computations.

What the lab shows:

  1. functools.lru_cache: the C-implemented wrapper, cache_info() counting
     hits and misses exactly, eviction of the least recently used entry,
     cache_parameters(), __wrapped__ (the original, uncached function) and
     cache_clear();
  2. what a cache key is: keyword order matters, equal values of different
     types share an entry unless typed=True (so 2.0 * 3.0 can come back as
     the int 6), and CPython's fast path where a lone int or str argument is
     its own key;
  3. a cached method keeps `self` alive until the cache is cleared;
  4. a TTL (time-to-live) cache decorator written from scratch, with an
     injectable clock so expiry is tested without sleeping;
  5. a persistent disk cache in SQLite (in a temporary directory) that a
     second connection - and a second process - read back;
  6. caching numpy computations: arrays are unhashable, so the key is built
     from dtype, shape and a hash of the array's bytes; an in-place change
     is a miss, an equal copy is a hit, and cached results are read-only.

Needs numpy (labs/requirements.txt; `make deps` installs it into .venv/).
Run it from anywhere:

    .venv/shared/bin/python labs/lab09.py

The last line is "VERIFY lab09: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import collections
import functools
import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import weakref

try:
    import numpy as np
except ImportError:
    print("FAIL lab09: the numpy package is not installed for %s "
          "(run `make deps`, then use .venv/<shape>/bin/python)" % sys.executable)
    sys.exit(1)

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    """Record a failed check; the VERIFY line at the end reports them."""
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)
    return condition


# --------------------------------------------------------------------------
# 1. lru_cache: counters, eviction, the wrapper's attributes
# --------------------------------------------------------------------------

CALLS = []  # every real (uncached) call of slow_square


@functools.lru_cache(maxsize=3)
def slow_square(x):
    CALLS.append(x)
    return x * x


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def section_lru():
    heading("1. functools.lru_cache: hits, misses, eviction")
    print("  type(slow_square) is %s.%s, implemented in C (_functools)"
          % (type(slow_square).__module__, type(slow_square).__name__))
    print("  cache_parameters(): %r" % (slow_square.cache_parameters(),))

    sequence = [1, 2, 3, 1, 4, 2, 1]
    print("  calls with maxsize=3, in order: %s" % sequence)
    for x in sequence:
        before = slow_square.cache_info()
        slow_square(x)
        after = slow_square.cache_info()
        what = "hit " if after.hits > before.hits else "miss"
        print("      slow_square(%d) -> %-4s %s" % (x, what, after))
    info = slow_square.cache_info()
    # 1,2,3 miss; 1 hit; 4 miss and evicts 2 (the least recently used,
    # because 1 was just used); 2 miss and evicts 3; 1 hit.
    check(info.hits == 2 and info.misses == 5 and info.currsize == 3,
          "slow_square: exactly 2 hits and 5 misses, 3 entries")
    check(CALLS == [1, 2, 3, 4, 2], "the real function ran once per miss")
    print("  the real function ran for: %s (one call per miss)" % CALLS)

    print()
    print("  __wrapped__ is the undecorated function; calling it bypasses")
    print("  the cache and leaves the counters alone:")
    value = slow_square.__wrapped__(9)
    print("      slow_square.__wrapped__(9) = %d, cache_info() = %s"
          % (value, slow_square.cache_info()))
    check(slow_square.cache_info() == info, "__wrapped__ does not touch the cache")

    slow_square.cache_clear()
    print("  after cache_clear(): %s" % (slow_square.cache_info(),))
    check(slow_square.cache_info().currsize == 0
          and slow_square.cache_info().hits == 0, "cache_clear resets everything")

    print()
    n = 30
    fib.cache_clear()
    result = fib(n)
    info = fib.cache_info()
    print("  fib(%d) = %d with maxsize=None: %s" % (n, result, info))
    print("  each fib(k) misses once (k = 0..%d: %d misses); each fib(k) for"
          % (n, n + 1))
    print("  k >= 3 finds fib(k-2) already cached (%d hits)" % (n - 2))
    check(info.misses == n + 1 and info.hits == n - 2,
          "fib(30): exactly 31 misses and 28 hits")


# --------------------------------------------------------------------------
# 2. What the key is made of
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def area(w, h):
    return w * h


@functools.lru_cache(maxsize=None, typed=True)
def area_typed(w, h):
    return w * h


@functools.lru_cache(maxsize=None)
def join(a="", b=""):
    return a + b


@functools.lru_cache(maxsize=None)
def describe(x):
    return "%s:%r" % (type(x).__name__, x)


def section_keys():
    heading("2. cache keys: keyword order, typed=, the one-argument fast path")
    join(a="x", b="y")
    join(b="y", a="x")
    print("  join(a='x', b='y') then join(b='y', a='x'): %s" % (join.cache_info(),))
    print("  -> keyword arguments are keyed in the order given: two entries")
    check(join.cache_info().misses == 2, "keyword order makes two entries")

    r1, r2 = area(2, 3), area(2.0, 3.0)
    print("  area(2, 3) = %r, then area(2.0, 3.0) = %r   %s"
          % (r1, r2, area.cache_info()))
    print("  -> 2 == 2.0 and hash(2) == hash(2.0), so the float call is a hit")
    print("     and returns the int computed for the first call")
    check(area.cache_info().hits == 1 and type(r2) is int,
          "untyped cache: area(2.0, 3.0) hits and returns the int 6")

    t1, t2 = area_typed(2, 3), area_typed(2.0, 3.0)
    print("  typed=True: area_typed(2, 3) = %r, area_typed(2.0, 3.0) = %r   %s"
          % (t1, t2, area_typed.cache_info()))
    check(area_typed.cache_info().misses == 2 and type(t2) is float,
          "typed=True keeps int and float arguments apart")

    d = [describe(1), describe(1.0), describe(True)]
    print("  describe(1), describe(1.0), describe(True) -> %s   %s"
          % (d, describe.cache_info()))
    print("  -> CPython detail: a single argument of exact type int or str is")
    print("     its own key, any other is wrapped in a tuple; so 1 and 1.0 get")
    print("     two entries here, while 1.0 and True share one ('float:1.0')")
    check(describe.cache_info().misses == 2 and d[2] == "float:1.0",
          "one-argument fast path: 1 and 1.0 miss, True hits the 1.0 entry")


# --------------------------------------------------------------------------
# 3. Caching methods keeps instances alive
# --------------------------------------------------------------------------

class Model:
    def __init__(self, name):
        self.name = name

    @functools.lru_cache(maxsize=None)
    def score(self, x):
        return len(self.name) * x


def section_methods():
    heading("3. lru_cache on a method holds a reference to self")
    m = Model("resnet")
    ref = weakref.ref(m)
    m.score(2)
    del m
    gc.collect()
    alive = ref() is not None
    print("  after `del m` and gc.collect(): instance alive? %s" % alive)
    print("  (the cache key is (self, 2), so the cache owns self)")
    Model.score.cache_clear()
    gc.collect()
    print("  after Model.score.cache_clear(): instance alive? %s" % (ref() is not None))
    check(alive and ref() is None, "a cached method keeps self alive until cache_clear")


# --------------------------------------------------------------------------
# 4. A TTL cache with an injectable clock
# --------------------------------------------------------------------------

TTLInfo = collections.namedtuple("TTLInfo", "hits misses expired currsize")


class FakeClock:
    """A clock the lab moves by hand: clock() returns seconds, like monotonic."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def ttl_cache(ttl, clock=time.monotonic, maxsize=128):
    """Cache results for `ttl` seconds of `clock()`; at most maxsize entries.

    An entry stored at time t is served while clock() < t + ttl, and is
    recomputed (counted as 'expired' and as a miss) from then on.  Past
    maxsize the least recently used entry goes, as in lru_cache.
    """
    def decorator(func):
        store = collections.OrderedDict()  # key -> (expires_at, value)
        counts = collections.Counter()

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            key = (args, tuple(sorted(kwargs.items())))
            now = clock()
            entry = store.get(key)
            if entry is not None:
                expires_at, value = entry
                if now < expires_at:
                    counts["hits"] += 1
                    store.move_to_end(key)
                    return value
                counts["expired"] += 1
                del store[key]
            counts["misses"] += 1
            value = func(*args, **kwargs)
            store[key] = (now + ttl, value)
            if len(store) > maxsize:
                store.popitem(last=False)
            return value

        def cache_info():
            return TTLInfo(counts["hits"], counts["misses"], counts["expired"], len(store))

        def cache_clear():
            store.clear()
            counts.clear()

        wrapper.cache_info = cache_info
        wrapper.cache_clear = cache_clear
        return wrapper
    return decorator


def section_ttl():
    heading("4. a TTL cache with an injectable clock")
    clock = FakeClock()
    fetched = []

    @ttl_cache(ttl=30.0, clock=clock)
    def exchange_rate(currency):
        fetched.append((currency, clock()))
        return {"EUR": 1.08, "GBP": 1.27}[currency]

    start = clock()
    # Steps are binary fractions (x.5), so the sums are exact floats.
    steps = [(0.0, "EUR"), (10.0, "EUR"), (19.5, "EUR"), (0.0, "GBP"),
             (0.5, "EUR"), (5.0, "GBP"), (30.0, "GBP")]
    print("  ttl = 30 s; the clock starts at %.1f and only moves when told" % start)
    print("  %-8s %-10s %-8s %s" % ("t (s)", "call", "result", "cache_info"))
    outcomes = []
    for step, currency in steps:
        clock.advance(step)
        before = exchange_rate.cache_info()
        exchange_rate(currency)
        after = exchange_rate.cache_info()
        if after.expired > before.expired:
            kind = "expired"
        elif after.hits > before.hits:
            kind = "hit"
        else:
            kind = "miss"
        outcomes.append(kind)
        print("  %-8.1f %-10s %-8s %s" % (clock() - start, currency, kind, after))
    # EUR stored at 0 expires at 30: hits at 10 and 29.5, expired at 30.0.
    # GBP stored at 29.5 is a hit at 35.0 and expired at 65.0.
    check(outcomes == ["miss", "hit", "hit", "miss", "expired", "hit", "expired"],
          "TTL cache: entries served before ttl and expired once the clock passes it")
    info = exchange_rate.cache_info()
    check(info == TTLInfo(3, 4, 2, 2), "TTL counters: 3 hits, 4 misses, 2 expired")
    check(len(fetched) == 4, "the real function ran once per miss")
    print("  real fetches (currency, clock): %s" % fetched)


# --------------------------------------------------------------------------
# 5. A disk cache in SQLite
# --------------------------------------------------------------------------

class DiskCache:
    """A tiny persistent key -> JSON value store in one SQLite file."""

    def __init__(self, path):
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS cache ("
                        " key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                        " created REAL NOT NULL)")
        self.hits = self.misses = 0

    def get(self, key):
        row = self.db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return False, None
        self.hits += 1
        return True, json.loads(row[0])

    def set(self, key, value):
        with self.db:  # one transaction, committed on exit
            self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                            (key, json.dumps(value), time.time()))

    def close(self):
        self.db.close()


def disk_cached(cache):
    """Decorator: results of JSON-able arguments stored in `cache`."""
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            key = func.__name__ + json.dumps([args, kwargs], sort_keys=True)
            found, value = cache.get(key)
            if found:
                return value
            value = func(*args, **kwargs)
            cache.set(key, value)
            return value
        return wrapper
    return decorator


def word_stats_impl(text):
    words = text.lower().split()
    return {"words": len(words), "unique": len(set(words)),
            "longest": max(words, key=len)}


def section_disk(tmpdir):
    heading("5. a persistent disk cache (SQLite in a temporary directory)")
    path = os.path.join(tmpdir, "lab09-cache.sqlite3")
    text = "the quick brown fox jumps over the lazy dog the end"
    runs = []  # the texts the real function was run on

    def word_stats(t):
        runs.append(t)
        return word_stats_impl(t)

    cache = DiskCache(path)
    cached_stats = disk_cached(cache)(word_stats)
    first = cached_stats(text)
    again = cached_stats(text)
    print("  first connection : %s  (hits=%d misses=%d)" % (first, cache.hits, cache.misses))
    check(cache.hits == 1 and cache.misses == 1 and len(runs) == 1,
          "disk cache: one miss then one hit in the same connection")
    check(first == again, "disk cache returns the stored value")
    cache.close()

    cache2 = DiskCache(path)  # a later run of the program, say
    later = disk_cached(cache2)(word_stats)(text)
    print("  new connection   : %s  (hits=%d misses=%d)" % (later, cache2.hits, cache2.misses))
    check(cache2.hits == 1 and cache2.misses == 0 and len(runs) == 1,
          "a new connection finds the entry on disk, no recomputation")
    for key, value in cache2.db.execute("SELECT key, value FROM cache"):
        print("  row: key=%s" % key)
        print("       value=%s" % value)
    cache2.close()

    # And another process entirely: the same interpreter, reading the file.
    code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "print(db.execute('SELECT count(*) FROM cache').fetchone()[0])")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True,
                         text=True, timeout=30)
    rows = out.stdout.strip()
    print("  a child process (its own interpreter) counts %s row(s) in %s"
          % (rows or "?", os.path.basename(path)))
    check(out.returncode == 0 and rows == "1", "another process reads the cached row")


# --------------------------------------------------------------------------
# 6. Caching numpy computations
# --------------------------------------------------------------------------

def array_key(a):
    """dtype + shape + a hash of the bytes: equal content, equal key."""
    data = np.ascontiguousarray(a).tobytes()
    return (a.dtype.str, a.shape, hashlib.blake2b(data, digest_size=16).hexdigest())


def array_cache(func):
    """Cache func(array) by array_key(array); results come back read-only."""
    store = {}
    counts = collections.Counter()

    @functools.wraps(func)
    def wrapper(a):
        key = array_key(a)
        if key in store:
            counts["hits"] += 1
            return store[key]
        counts["misses"] += 1
        result = func(a)
        result.setflags(write=False)  # a caller must not edit the cached value
        store[key] = result
        return result

    wrapper.counts = counts
    return wrapper


@array_cache
def spectrum(a):
    """The eigenvalues of the symmetric matrix a + a.T (the costly part)."""
    return np.linalg.eigvalsh(a + a.T)


def section_numpy():
    heading("6. caching numpy computations keyed by the array's bytes")
    rng = np.random.default_rng(9)
    a = rng.standard_normal((400, 400))

    try:
        functools.lru_cache()(np.linalg.eigvalsh)(a)
        unhashable = False
    except TypeError as exc:
        unhashable = True
        print("  lru_cache on an ndarray argument: TypeError: %s" % exc)
    check(unhashable, "ndarrays are unhashable, so lru_cache cannot key them")

    k = array_key(a)
    print("  array_key(a) = (%r, %r, %s...)" % (k[0], k[1], k[2][:16]))
    flat = a.reshape(-1)
    f32 = a.astype(np.float32)
    print("  same bytes, other shape  : key differs? %s" % (array_key(flat) != k))
    print("  same values, float32     : key differs? %s" % (array_key(f32) != k))
    print("  a transposed view        : key differs? %s  (bytes taken in C order)"
          % (array_key(a.T) != k))
    check(array_key(flat) != k and array_key(f32) != k and array_key(a.T) != k,
          "shape, dtype and layout are part of the key")
    check(array_key(a.copy()) == k, "an equal copy has the same key")

    t0 = time.perf_counter()
    first = spectrum(a)
    t1 = time.perf_counter()
    second = spectrum(a.copy())
    t2 = time.perf_counter()
    print("  spectrum(a)          : %7.2f ms  (miss: eigvalsh of %dx%d)"
          % ((t1 - t0) * 1e3, a.shape[0], a.shape[1]))
    print("  spectrum(a.copy())   : %7.2f ms  (hit: the cost is hashing %d KiB)"
          % ((t2 - t1) * 1e3, a.nbytes // 1024))
    check(second is first, "an equal copy is a hit and returns the cached array")

    a[0, 0] += 1.0  # in place: same object, new content, new key
    third = spectrum(a)
    print("  after a[0, 0] += 1   : miss again; largest eigenvalue %.6f -> %.6f"
          % (first[-1], third[-1]))
    check(third is not first and not np.allclose(first, third),
          "an in-place change is a miss with a new result")
    counts = spectrum.counts
    print("  counts: hits=%d misses=%d" % (counts["hits"], counts["misses"]))
    check(counts["hits"] == 1 and counts["misses"] == 2, "numpy cache: 1 hit, 2 misses")

    try:
        first[0] = 0.0
        readonly = False
    except ValueError as exc:
        readonly = True
        print("  writing into a cached result: ValueError: %s" % exc)
    check(readonly, "cached arrays are read-only")


def main():
    print("Lab 09: caching in CPython %s, numpy %s"
          % (sys.version.split()[0], np.__version__))
    section_lru()
    section_keys()
    section_methods()
    section_ttl()
    with tempfile.TemporaryDirectory(prefix="lab09-") as tmpdir:
        section_disk(tmpdir)
    section_numpy()
    print()
    if FAILURES:
        print("FAIL lab09: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab09: lru_cache hits/misses exact, typed keys, TTL expiry on a fake "
          "clock, SQLite disk cache across processes, numpy keyed by bytes ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
