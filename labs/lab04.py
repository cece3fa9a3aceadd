"""Lab 04 - where a CPython 3.11 program's memory goes.

What the lab shows, with the standard library only:

  1. pymalloc, CPython's small-object allocator: 1 MiB arenas cut into
     16 KiB pools, each pool serving one size class of blocks (<= 512 B).
     A child process fills its heap and prints sys._debugmallocstats();
     the lab summarises that report;
  2. sys.getsizeof (one object, shallow) against a deep size that follows
     references, cross-checked with tracemalloc's traced-memory counter;
  3. tracemalloc: five data sets are built on five lines of this file and
     kept alive; at the peak the lab raises the audit event
     "archtrace.snapshot" and immediately takes a snapshot; the top five
     lines are printed, unfiltered, one per line, as
         TOP5 <filename>:<lineno> size=<bytes> count=<blocks>
  4. snapshot diffs: what changed between two snapshots;
  5. the cyclic garbage collector: generations, thresholds, and cycles that
     reference counting alone cannot free;
  6. weak references: a WeakValueDictionary cache that forgets objects as
     soon as nobody else uses them.

Targets CPython 3.11.  Run it from anywhere:

    python3 labs/lab04.py

The last line is "VERIFY lab04: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).  Under archtrace
(`archtrace python3 labs/lab04.py`) the tool takes its own snapshot at the
"archtrace.snapshot" audit event, from the allocator hooks, and should show
the same five lines.  sys.audit() does nothing when no hook is installed.
"""

import gc
import linecache
import os
import subprocess
import sys
import tracemalloc
import weakref

FAILURES = []

# Names used by the dict data set; built before tracing starts.
FIELDS = tuple("field%02d" % k for k in range(80))
PAYLOAD = "payload-" * 380


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


def human(nbytes):
    """1234567 -> '1.18 MiB' (signed when asked for a difference)."""
    sign = "-" if nbytes < 0 else ""
    n = abs(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%s%.0f %s" % (sign, n, unit) if unit == "B" else "%s%.2f %s" % (sign, n, unit)
        n /= 1024.0
    return "%s%d B" % (sign, nbytes)


# --- 1. pymalloc -------------------------------------------------------------

CHILD_CODE = (
    "import sys\n"
    "small = [str(i) * 3 for i in range(60000)]\n"   # ~64-80 B strings
    "pairs = [(i, -i) for i in range(60000)]\n"       # 2-tuples and ints
    "sys._debugmallocstats()\n"
)


def parse_mallocstats(text):
    """Pull the size-class table and the arena totals out of the report."""
    classes = []
    totals = {}
    in_table = False
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("class ") and "size" in line:
            in_table = True
            continue
        if in_table:
            if len(parts) == 5 and all(p.isdigit() for p in parts):
                _, size, pools, used, avail = map(int, parts)
                classes.append({"size": size, "pools": pools, "used": used, "avail": avail})
                continue
            if parts and parts[0].startswith("-"):
                continue
            in_table = False
        if "=" in line and line.startswith("#"):
            key, _, value = line.partition("=")
            key = key.strip("# ").strip()
            value = value.strip().replace(",", "")
            if value.isdigit() and key not in totals:
                totals[key] = int(value)
        if line.startswith("Small block threshold"):
            totals["size classes"] = int(line.split(" in ")[1].split()[0])
        if "bytes/arena" in line:
            totals["arena size"] = int(line.split("*")[1].split()[0])
    return classes, totals


def section_pymalloc():
    heading("1. pymalloc: arenas, pools and blocks (a child's report)")
    # The report has a pymalloc table only while pymalloc is the object
    # allocator; tracemalloc or PYTHONMALLOC in the child would replace it.
    env = dict(os.environ)
    env.pop("PYTHONTRACEMALLOC", None)
    env.pop("PYTHONMALLOC", None)
    proc = subprocess.run([sys.executable, "-c", CHILD_CODE], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    classes, totals = parse_mallocstats(proc.stderr)
    if proc.returncode != 0:
        check(False, "child exited with status %d" % proc.returncode)
        return
    if not classes:
        # When something hooks the object allocator in the child (an
        # outside tool's preload library, say), the report has no table.
        print("  the child's report has no pymalloc table: its object allocator is")
        print("  hooked or replaced, so there are no arenas to summarise (skipped)")
        return
    arena = totals.get("arena size", 0)
    print("  child: built 60,000 short strings and 60,000 (int, int) tuples, then")
    print("  called sys._debugmallocstats(); its report, summarised:")
    print("  arena size             : %s" % human(arena))
    print("  arenas allocated now   : %d (highwater %d, reclaimed %d)"
          % (totals.get("arenas allocated current", 0),
             totals.get("arenas highwater mark", 0), totals.get("arenas reclaimed", 0)))
    print("  bytes in used blocks   : %s" % human(totals.get("bytes in allocated blocks", 0)))
    print("  bytes in free blocks   : %s" % human(totals.get("bytes in available blocks", 0)))
    print("  size classes in use    : %d of %d (blocks of 16..512 B, 16 B apart)"
          % (sum(1 for c in classes if c["used"]), totals.get("size classes", 0)))
    print("  busiest size classes (a pool is 16 KiB and holds one class):")
    print("     block size   pools   blocks used   blocks free")
    for c in sorted(classes, key=lambda c: -c["used"])[:4]:
        print("     %6d B   %7d   %11d   %11d" % (c["size"], c["pools"], c["used"], c["avail"]))
    busiest = max(classes, key=lambda c: c["used"])
    check(totals.get("arenas allocated current", 0) >= 1, "child reports at least one arena")
    check(busiest["used"] >= 50000, "the child's objects fill one size class")


# --- 2. shallow vs deep size -----------------------------------------------

def deep_sizeof(root):
    """Sum sys.getsizeof over everything reachable through containers and
    instance attributes, counting each object once."""
    seen = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.append(vars(obj))
    return total


def build_catalog():
    return {
        "name": "catalog-" + "x" * 20,
        "items": [{"sku": "sku-%05d" % i, "price": i * 1.25, "tags": ["t%d" % i, "new"]}
                  for i in range(300)],
        "index": {"sku-%05d" % i: i for i in range(300)},
    }


def section_sizes():
    heading("2. sys.getsizeof vs deep size")
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    catalog = build_catalog()
    traced = tracemalloc.get_traced_memory()[0] - before
    shallow = sys.getsizeof(catalog)
    deep = deep_sizeof(catalog)
    print("  catalog = {'name': str, 'items': [300 dicts with lists], 'index': {300}}")
    print("  sys.getsizeof(catalog)   : %8d B  (the outer dict only)" % shallow)
    print("  deep_sizeof(catalog)     : %8d B  (%s, every reachable object once)"
          % (deep, human(deep)))
    print("  tracemalloc traced delta : %8d B  (what building it allocated)" % traced)
    print("  differences: getsizeof includes the GC header and spare capacity; keys")
    print("  like 'sku' are interned and shared; the float/list free lists reuse memory")
    check(deep > 20 * shallow, "deep size is far larger than the shallow size")
    check(0.5 < deep / float(max(traced, 1)) < 1.5,
          "deep size within 50%% of tracemalloc's count (%d vs %d)" % (deep, traced))


# --- 3. tracemalloc top five -------------------------------------------------

# Item counts chosen so each line holds ~1.6x the next: roughly 30, 19, 12,
# 7.5 and 4.8 MiB, far above what the import system keeps (1-3 MiB on one
# line when traced from process start).  Each line is one comprehension, so
# every block it allocates is attributed to that line.  Items are 1.6-3 KiB:
# a few thousand blocks per line keep snapshots fast, and blocks above
# 512 B bypass pymalloc, so even a plain malloc hook sees most of the bytes.
N_STR, N_BYTES, N_TUPLE, N_DICT, N_LIST = 10100, 9500, 7500, 4850, 2400


def build_dataset():
    """Build five data sets, one line each, and return them (kept alive)."""
    data = {}
    data["str"] = [f"{i:08d}:" + PAYLOAD for i in range(N_STR)]
    data["bytes"] = [i.to_bytes(4, "little") * 512 for i in range(N_BYTES)]
    data["tuple"] = [(i,) * 200 for i in range(N_TUPLE)]
    data["dict"] = [dict.fromkeys(FIELDS, i) for i in range(N_DICT)]
    data["list"] = [[i] * 250 for i in range(N_LIST)]
    return data


def section_top5():
    heading("3. tracemalloc: the five biggest allocation sites")
    print("  building five data sets (strings, bytes, tuples, dicts, lists) ...")
    data = build_dataset()
    current, peak = tracemalloc.get_traced_memory()
    print("  traced memory now %s (peak so far %s)" % (human(current), human(peak)))
    print("  raising audit event archtrace.snapshot, then taking the snapshot")
    # Nothing may allocate or free between these two calls: an outside tool
    # snapshots at the audit event, and both views must be the same heap.
    sys.audit("archtrace.snapshot", "lab04")
    snapshot = tracemalloc.take_snapshot()

    stats = snapshot.statistics("lineno")[:5]
    for stat in stats:
        frame = stat.traceback[0]
        print("TOP5 %s:%d size=%d count=%d"
              % (frame.filename, frame.lineno, stat.size, stat.count))
    print("  the same, readable:")
    here = os.path.abspath(__file__)
    for rank, stat in enumerate(stats, 1):
        frame = stat.traceback[0]
        print("   %d. line %-4d %10s in %7d blocks, avg %3d B  %s"
              % (rank, frame.lineno, human(stat.size), stat.count, stat.size // stat.count,
                 linecache.getline(frame.filename, frame.lineno).strip()[:40]))

    files = [os.path.abspath(s.traceback[0].filename) for s in stats]
    lines = [s.traceback[0].lineno for s in stats]
    sizes = [s.size for s in stats]
    check(len(stats) == 5, "five statistics")
    check(all(f == here for f in files), "all five sites are in lab04.py")
    check(len(set(lines)) == 5, "five distinct lines")
    check(all(a > b for a, b in zip(sizes, sizes[1:])), "sizes strictly decrease")
    check(all(a >= 1.5 * b for a, b in zip(sizes, sizes[1:])),
          "neighbouring sizes differ by at least 1.5x")
    return data, snapshot


# --- 4. snapshot diffs -------------------------------------------------------

def section_diff(data, peak_snapshot):
    heading("4. snapshot diffs: freeing two data sets")
    del data["str"]
    del data["tuple"]
    after = tracemalloc.take_snapshot()
    diff = after.compare_to(peak_snapshot, "lineno")
    print("  after del data['str'] and data['tuple'], compare_to(peak):")
    shown = [d for d in diff if d.size_diff][:3]
    for d in shown:
        frame = d.traceback[0]
        where = "%s:%d" % (os.path.basename(frame.filename), frame.lineno)
        print("     %-20s %12s  now %10s  (%+d blocks)"
              % (where, human(d.size_diff), human(d.size), d.count_diff))
    freed = -sum(d.size_diff for d in diff if d.size_diff < 0)
    print("  total freed: %s" % human(freed))
    check(len(shown) >= 2 and shown[0].size_diff < 0 and shown[1].size_diff < 0,
          "the two freed data sets top the diff")
    check(freed > 35 * 1024 * 1024, "more than 35 MiB freed")
    print("  (small leftovers elsewhere come from free lists of floats, dicts, tuples")
    print("   that the interpreter recycles instead of freeing)")
    data.clear()


# --- 5. the cyclic garbage collector ----------------------------------------

class Node:
    def __init__(self, name):
        self.name = name
        self.partner = None


def section_gc():
    heading("5. gc: generations, thresholds and cycles")
    print("  gc.get_threshold() = %r" % (gc.get_threshold(),))
    print("  (gen0 is collected after 700 more allocations than deallocations of")
    print("   tracked objects, gen1 every 10 gen0 runs, gen2 every 10 gen1 runs)")
    print("  gc.is_tracked: 42 -> %s, 'text' -> %s, [] -> %s, {} -> %s, {'a': []} -> %s"
          % (gc.is_tracked(42), gc.is_tracked("text"), gc.is_tracked([]),
             gc.is_tracked({}), gc.is_tracked({"a": []})))
    runs = []

    def on_gc(phase, info):
        if phase == "stop":
            runs.append((info["generation"], info["collected"]))

    gc.collect()
    gc.disable()          # no automatic collections while we set the scene
    gc.callbacks.append(on_gc)
    try:
        probes = []
        for i in range(1000):
            a, b = Node("a%d" % i), Node("b%d" % i)
            a.partner, b.partner = b, a          # a reference cycle
            if i % 100 == 0:
                probes.append(weakref.ref(a))
        del a, b
        alive_before = sum(1 for p in probes if p() is not None)
        print("  made 1000 two-node cycles and dropped every name for them")
        print("  still alive before gc.collect(): %d of %d probes (refcounts never hit 0)"
              % (alive_before, len(probes)))
        found = gc.collect()
        alive_after = sum(1 for p in probes if p() is not None)
        print("  gc.collect() found %d unreachable objects; probes alive after: %d"
              % (found, alive_after))
        print("  gc callback saw: generation %d, collected %d" % runs[-1])
    finally:
        gc.callbacks.remove(on_gc)
        gc.enable()
    print("  gc.get_count() = %r (allocations minus deallocations since the last run)"
          % (gc.get_count(),))
    check(alive_before == len(probes) and alive_after == 0, "cycles need the collector")
    check(found >= 2000, "the collector found both nodes of every cycle")


# --- 6. weak references ------------------------------------------------------

class Glyph:
    """Stands for something expensive to build (say, a rendered glyph)."""
    built = 0

    def __init__(self, char):
        Glyph.built += 1
        self.char = char
        self.bitmap = bytes([ord(char) % 256]) * 64


class GlyphCache:
    def __init__(self):
        self._cache = weakref.WeakValueDictionary()
        self.hits = self.misses = 0

    def get(self, char):
        glyph = self._cache.get(char)
        if glyph is None:
            self.misses += 1
            glyph = Glyph(char)
            self._cache[char] = glyph
        else:
            self.hits += 1
        return glyph

    def __len__(self):
        return len(self._cache)


def section_weakref():
    heading("6. weakref: a cache that never keeps objects alive")
    cache = GlyphCache()
    evicted = []
    in_use = [cache.get(c) for c in "hello"]           # h e l l o
    for g in in_use:
        weakref.finalize(g, evicted.append, g.char)
    print("  get('h','e','l','l','o'): %d built, %d hits, %d cached"
          % (Glyph.built, cache.hits, len(cache)))
    again = cache.get("h")
    print("  get('h') again: same object: %s (hits %d)" % (again is in_use[0], cache.hits))
    del again
    del in_use[:2]                                      # drop h and e
    size_after_drop = len(cache)
    print("  after dropping the strong references to 'h' and 'e':")
    print("    cache size %d (l, o), finalizers ran for %s" % (size_after_drop, sorted(evicted)))
    fresh = cache.get("h")
    print("  get('h') now rebuilds it: built %d, misses %d" % (Glyph.built, cache.misses))
    check(size_after_drop == 2 and sorted(evicted) == ["e", "h"],
          "dead entries vanish from the WeakValueDictionary at once")
    check(fresh.char == "h" and Glyph.built == 5 and len(cache) == 3,
          "a dropped entry is rebuilt on demand")


def main():
    print("Lab 04: memory in CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab04: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    if tracemalloc.is_tracing():
        print("  (tracemalloc was already on - PYTHONTRACEMALLOC or -X tracemalloc)")
    else:
        tracemalloc.start()
    section_pymalloc()
    section_sizes()
    data, peak_snapshot = section_top5()
    section_diff(data, peak_snapshot)
    del data, peak_snapshot
    tracemalloc.stop()
    section_gc()
    section_weakref()
    print()
    if FAILURES:
        print("FAIL lab04: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab04: tracemalloc top-5 are five lab04.py lines with decreasing sizes; "
          "diff, gc cycles and weakref cache behave ... ok")
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab04: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
