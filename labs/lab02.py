"""Lab 02 - how `import` finds and loads a module in CPython 3.11.

What the lab shows, with the standard library only:

  1. sys.modules is the cache every import statement checks first;
  2. sys.meta_path is the ordered list of finders consulted on a cache miss,
     and which finder/loader answers for a few real modules (built-in,
     frozen, source, extension - these differ between a static and a
     shared-libpython build);
  3. a custom MetaPathFinder plus a custom Loader (create_module /
     exec_module, spec built with importlib.util.spec_from_loader) that
     serve a synthetic module which has no file at all; the lab records and
     prints every step the import went through, and one machine-readable
     line:
         CHAIN finder=<finder class> loader=<loader class> module=<name>
  4. a PathEntryFinder installed through sys.path_hooks for a made-up
     sys.path entry, and pkgutil.iter_modules listing what it offers;
  5. caching: a second import never reaches the finder; removing the entry
     from sys.modules makes the next import go through the chain again.

Targets CPython 3.11.  Run it from anywhere:

    python3 labs/lab02.py

The last line is "VERIFY lab02: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).  Under archtrace, the import tree
names the same finder and loader for the synthetic module.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import pkgutil
import sys

FAILURES = []

# Every finder/loader call is appended here, so the lab can print the chain.
EVENTS = []

SYNTHETIC_NAME = "synthetic_greetings"

# Source code of the synthetic module.  It is generated, never written to
# disk: the loader hands it straight to exec().
SYNTHETIC_SOURCE = '''
"""A module that exists only in memory (served by lab02's SyntheticLoader)."""
GREETINGS = {"en": "hello", "fr": "bonjour", "de": "hallo", "es": "hola"}

def greet(lang, who):
    return "%s, %s" % (GREETINGS[lang], who)
'''

# Modules offered by the PathEntryFinder of section 4, keyed by name.
VIRTUAL_ENTRY = "archtrace-lab02://virtual"
VIRTUAL_MODULES = {
    "virtual_colors": "PRIMARY = ('red', 'green', 'blue')\n",
    "virtual_shapes": "SIDES = {'triangle': 3, 'square': 4}\n",
}


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


def describe(obj):
    """Short, stable description of a finder or loader (no addresses)."""
    cls = obj if isinstance(obj, type) else type(obj)
    kind = "class" if isinstance(obj, type) else "instance"
    return "%s.%s (%s)" % (cls.__module__, cls.__qualname__, kind)


# --- section 3: a meta path finder and its loader ---------------------------

class SyntheticLoader(importlib.abc.Loader):
    """Creates and executes modules from source held in memory."""

    def __init__(self, sources):
        self.sources = sources

    def create_module(self, spec):
        # Returning None asks the import system for a default module object;
        # a loader could return any object here instead.
        EVENTS.append("%s.create_module(spec name=%r) -> None (default module)"
                      % (type(self).__qualname__, spec.name))
        return None

    def exec_module(self, module):
        # Runs once per (re)load, in the module's own namespace, with
        # __name__, __spec__ and __loader__ already set.
        code = compile(self.sources[module.__name__],
                       "<synthetic %s>" % module.__name__, "exec")
        EVENTS.append("%s.exec_module(<module %r>) executed %d bytes of generated source"
                      % (type(self).__qualname__, module.__name__,
                         len(self.sources[module.__name__])))
        exec(code, module.__dict__)


class SyntheticFinder(importlib.abc.MetaPathFinder):
    """Answers only for the names it knows; returns None for everything else,
    which makes the import system ask the next finder on sys.meta_path."""

    def __init__(self, sources):
        self.loader = SyntheticLoader(sources)
        self.sources = sources
        self.asked = []

    def find_spec(self, fullname, path, target=None):
        self.asked.append(fullname)
        if fullname not in self.sources:
            return None
        spec = importlib.util.spec_from_loader(fullname, self.loader, origin="synthetic")
        EVENTS.append("%s.find_spec(%r, path=%r) -> ModuleSpec(origin=%r, loader=%s)"
                      % (type(self).__qualname__, fullname, path, spec.origin,
                         type(spec.loader).__qualname__))
        return spec


# --- section 4: a path entry finder behind a path hook ----------------------

class VirtualPathEntryFinder(importlib.abc.PathEntryFinder):
    """Finder for one sys.path entry; created by virtual_path_hook."""

    def __init__(self, entry, modules):
        self.entry = entry
        self.modules = modules
        self.loader = SyntheticLoader(modules)

    def find_spec(self, fullname, target=None):
        if fullname not in self.modules:
            return None
        EVENTS.append("%s.find_spec(%r) on sys.path entry %r"
                      % (type(self).__qualname__, fullname, self.entry))
        return importlib.util.spec_from_loader(fullname, self.loader,
                                               origin=self.entry + "/" + fullname)

    def iter_modules(self, prefix=""):
        # pkgutil.iter_modules() calls this to list the entry's modules.
        for name in sorted(self.modules):
            yield prefix + name, False


def virtual_path_hook(entry):
    """A sys.path_hooks callable: claim our entry, refuse all others."""
    if entry != VIRTUAL_ENTRY:
        raise ImportError("not a lab02 virtual entry")
    EVENTS.append("virtual_path_hook(%r) -> VirtualPathEntryFinder" % entry)
    return VirtualPathEntryFinder(entry, VIRTUAL_MODULES)


# --- sections ---------------------------------------------------------------

def section_cache():
    heading("1. sys.modules: the cache every import checks first")
    print("  %d modules are already loaded before the lab does anything" % len(sys.modules))
    for name in ("sys", "builtins", "importlib", "pkgutil"):
        print("  %-10s in sys.modules: %s" % (name, name in sys.modules))
    check(sys.modules["sys"] is sys, "sys.modules['sys'] is the sys module")
    check(SYNTHETIC_NAME not in sys.modules, "the synthetic module is not loaded yet")


def section_meta_path():
    heading("2. sys.meta_path: the finders, in order")
    for i, finder in enumerate(sys.meta_path):
        print("  [%d] %s" % (i, describe(finder)))
    print()
    print("  who answers for some real modules (importlib.util.find_spec):")
    print("  %-10s %-14s %-34s %s" % ("module", "origin", "loader", "has file"))
    for name in ("sys", "itertools", "os", "math", "json", "colorsys"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec.origin in ("built-in", "frozen") else (
            "extension .so" if spec.origin.endswith(".so") else "source .py")
        print("  %-10s %-14s %-34s %s" % (name, origin, type(spec.loader).__qualname__
                                          if not isinstance(spec.loader, type)
                                          else spec.loader.__qualname__,
                                          spec.has_location))
    print("  (math is built into a static python3.11 but is a lib-dynload .so in a")
    print("   shared-libpython build: the same import, a different loader)")
    names = [type(f).__qualname__ if not isinstance(f, type) else f.__qualname__
             for f in sys.meta_path]
    check(names.index("BuiltinImporter") < names.index("FrozenImporter")
          < names.index("PathFinder"),
          "meta_path order is BuiltinImporter, FrozenImporter, PathFinder")


def section_synthetic(finder):
    heading("3. a custom MetaPathFinder + Loader serving a module with no file")
    sys.meta_path.insert(0, finder)
    print("  installed at sys.meta_path[0]: %s" % describe(finder))
    del EVENTS[:]
    EVENTS.append("import %s: not in sys.modules, consulting sys.meta_path" % SYNTHETIC_NAME)

    import synthetic_greetings  # a plain import statement, on purpose

    module = synthetic_greetings
    EVENTS.append("bound sys.modules[%r] and the local name" % SYNTHETIC_NAME)
    print("  the chain the import went through:")
    for i, event in enumerate(EVENTS, 1):
        print("    %d. %s" % (i, event))
    spec = module.__spec__
    print("  module.__spec__.origin   = %r" % spec.origin)
    print("  module.__spec__.has_location = %r" % spec.has_location)
    print("  hasattr(module, '__file__') = %r" % hasattr(module, "__file__"))
    print("  module.greet('fr', 'lab') = %r" % module.greet("fr", "lab"))
    print("CHAIN finder=%s loader=%s module=%s"
          % (type(finder).__qualname__, type(spec.loader).__qualname__, module.__name__))

    check(sys.modules.get(SYNTHETIC_NAME) is module, "module cached in sys.modules")
    check(spec.origin == "synthetic" and not hasattr(module, "__file__"),
          "synthetic module has origin 'synthetic' and no __file__")
    check(isinstance(spec.loader, SyntheticLoader), "loaded by SyntheticLoader")
    check(any(e.startswith("SyntheticFinder.find_spec") for e in EVENTS)
          and any(e.startswith("SyntheticLoader.create_module") for e in EVENTS)
          and any(e.startswith("SyntheticLoader.exec_module") for e in EVENTS),
          "chain went finder.find_spec -> loader.create_module -> loader.exec_module")
    check(module.greet("en", "world") == "hello, world", "synthetic code runs")
    return module


def section_path_hook():
    heading("4. a PathEntryFinder behind sys.path_hooks")
    sys.path_hooks.insert(0, virtual_path_hook)
    sys.path.append(VIRTUAL_ENTRY)
    # PathFinder remembers one finder per sys.path entry; make sure ours is
    # created fresh (this matters only if the entry was seen before).
    sys.path_importer_cache.pop(VIRTUAL_ENTRY, None)
    del EVENTS[:]
    try:
        colors = importlib.import_module("virtual_colors")
        print("  the chain for virtual_colors (found by PathFinder, after the")
        print("  real sys.path entries had no such module):")
        for i, event in enumerate(EVENTS, 1):
            print("    %d. %s" % (i, event))
        print("  virtual_colors.PRIMARY = %r" % (colors.PRIMARY,))
        finder = sys.path_importer_cache.get(VIRTUAL_ENTRY)
        print("  sys.path_importer_cache[%r] -> %s" % (VIRTUAL_ENTRY, describe(finder)))

        listed = [m.name for m in pkgutil.iter_modules([VIRTUAL_ENTRY])]
        print("  pkgutil.iter_modules([%r]) -> %s" % (VIRTUAL_ENTRY, listed))
        json_dir = importlib.util.find_spec("json").submodule_search_locations
        real = sorted(m.name for m in pkgutil.iter_modules(json_dir))
        print("  pkgutil.iter_modules(json.__path__) -> %s" % real)

        check(colors.__spec__.loader.__class__ is SyntheticLoader
              and colors.__spec__.origin == VIRTUAL_ENTRY + "/virtual_colors",
              "virtual_colors came from the path entry finder")
        check(isinstance(finder, VirtualPathEntryFinder), "path hook finder cached")
        check(listed == sorted(VIRTUAL_MODULES), "pkgutil lists the virtual modules")
        check({"decoder", "encoder", "scanner"} <= set(real), "pkgutil lists json submodules")
    finally:
        sys.path.remove(VIRTUAL_ENTRY)
        sys.path_hooks.remove(virtual_path_hook)
        sys.path_importer_cache.pop(VIRTUAL_ENTRY, None)
        for name in VIRTUAL_MODULES:
            sys.modules.pop(name, None)


def section_caching(finder, first):
    heading("5. caching: a second import never reaches the finder")
    asked_before = finder.asked.count(SYNTHETIC_NAME)
    import synthetic_greetings as again
    asked_after = finder.asked.count(SYNTHETIC_NAME)
    print("  second 'import %s': finder asked %d time(s) in total, same object: %s"
          % (SYNTHETIC_NAME, asked_after, again is first))
    check(again is first and asked_after == asked_before,
          "second import served from sys.modules without asking the finder")

    del sys.modules[SYNTHETIC_NAME]
    del EVENTS[:]
    fresh = importlib.import_module(SYNTHETIC_NAME)
    print("  after del sys.modules[%r], importlib.import_module() went through:"
          % SYNTHETIC_NAME)
    for i, event in enumerate(EVENTS, 1):
        print("    %d. %s" % (i, event))
    print("  new module object: %s (the old one is untouched: %s)"
          % (fresh is not first, first.greet("de", "x") == "hallo, x"))
    check(fresh is not first and finder.asked.count(SYNTHETIC_NAME) == asked_before + 1,
          "after removal from sys.modules the finder is asked again")

    # Everything the finder saw: it is asked about every name that misses
    # sys.modules while it sits first on meta_path, and passes on the rest.
    others = sorted(set(n for n in finder.asked if n != SYNTHETIC_NAME))
    print("  other names the finder was asked about and declined: %s"
          % (", ".join(others) if others else "(none)"))
    print("  (the lab's own lazy imports - e.g. pkgutil's first use pulls in inspect -")
    print("   passed through it too, and went on to the next finder)")


def main():
    print("Lab 02: the import system of CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab02: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    finder = SyntheticFinder({SYNTHETIC_NAME: SYNTHETIC_SOURCE})
    section_cache()
    section_meta_path()
    try:
        module = section_synthetic(finder)
        section_path_hook()
        section_caching(finder, module)
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
    print()
    if FAILURES:
        print("FAIL lab02: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab02: custom finder and loader imported %s (no file) via "
          "find_spec -> create_module -> exec_module ... ok" % SYNTHETIC_NAME)
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab02: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
