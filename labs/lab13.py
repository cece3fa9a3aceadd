"""Lab 13 - plugin systems: pluggy, entry points, registries, versions, a sandbox.

What the lab shows:

  1. pluggy, the plugin manager behind pytest: hook specifications and
     implementations, the documented call order (last registered first,
     tryfirst before, trylast after), wrappers around the whole call - the
     new style (wrapper=True, `result = yield`) and the old style
     (hookwrapper=True, an outcome object) - seeing and changing the result,
     firstresult hooks that stop at the first answer, implementations that
     take only the arguments they need, and the validation that refuses an
     implementation asking for an argument the spec does not have;
  2. entry points: how an installed package announces a plugin
     (entry_points.txt in its .dist-info), made real here with a tiny
     distribution in a temporary directory that importlib.metadata finds
     and pluggy's load_setuptools_entrypoints() loads;
  3. a class registry built by __init_subclass__, plugin API versioning
     (same major, minor not newer than the host's) and dependency injection
     by constructor parameter names;
  4. a sandbox for untrusted plugin code built on an audit hook
     (sys.addaudithook, PEP 578): while the sandbox is active in the current
     context, imports outside an allowlist, process creation, sockets and
     opening files for writing raise PermissionError.  Audit hooks cannot
     be removed, so the hook is always installed but does nothing unless a
     ContextVar says the sandbox is on.  Plugins that break the rules are
     refused - at load time or, when the breach happens inside a hook, at
     call time.  (Audit hooks are a monitoring tool, not a security
     boundary: ctypes, a thread or an already-imported module can get past
     them.  Use a separate process for real isolation.)

Needs pluggy (labs/requirements.txt; `make deps` installs it into .venv/).
Run it from anywhere:

    .venv/shared/bin/python labs/lab13.py

The last line is "VERIFY lab13: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import builtins
import contextlib
import contextvars
import importlib
import importlib.metadata
import inspect
import os
import sys
import tempfile
import textwrap
import traceback
import types

try:
    import pluggy
except ImportError:
    print("FAIL lab13: the pluggy package is not installed for %s "
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


PROJECT = "lab13"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Spec:
    """The host's hook specifications: the contract plugins implement."""

    @hookspec
    def transform(self, text, calls):
        """Return a transformed copy of text; every plugin's answer is collected."""

    @hookspec(firstresult=True)
    def choose_format(self, filename):
        """Return a format name for filename, or None to pass; the first answer wins."""

    @hookspec
    def render(self, rows):
        """Return rows rendered as a string."""


# --------------------------------------------------------------------------
# 1. pluggy: call order, wrappers, firstresult
# --------------------------------------------------------------------------

class Upper:
    @hookimpl
    def transform(self, text, calls):
        calls.append("Upper")
        return text.upper()


class Exclaim:
    @hookimpl(tryfirst=True)
    def transform(self, text, calls):
        calls.append("Exclaim (tryfirst)")
        return text + "!"


class Strip:
    @hookimpl(trylast=True)
    def transform(self, text, calls):
        calls.append("Strip (trylast)")
        return text.strip()


class Reverse:
    @hookimpl
    def transform(self, text, calls):  # registered after Upper: runs before it
        calls.append("Reverse")
        return text[::-1]


class Count:
    @hookimpl
    def transform(self, text):  # asks for one of the two spec arguments only
        return len(text)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def transform(self, text, calls):
        calls.append("OldStyleWrapper before")
        outcome = yield  # a pluggy.Result: get_result(), force_result()
        calls.append("OldStyleWrapper after, saw %d results" % len(outcome.get_result()))


class NewStyleWrapper:
    def __init__(self):
        self.seen = None

    @hookimpl(wrapper=True)
    def transform(self, text, calls):
        calls.append("NewStyleWrapper before")
        result = yield  # the list of every implementation's result
        self.seen = list(result)
        calls.append("NewStyleWrapper after")
        return result + ["<added by NewStyleWrapper>"]


class ByExtension:
    @hookimpl
    def choose_format(self, filename):
        return filename.rsplit(".", 1)[-1] if "." in filename else None


class Sniffer:
    def __init__(self):
        self.called = False

    @hookimpl(trylast=True)
    def choose_format(self, filename):
        self.called = True
        return "binary"


class AsksTooMuch:
    @hookimpl
    def transform(self, text, calls, colour):  # 'colour' is not in the spec
        return text


def section_pluggy():
    heading("1. pluggy: hook order, wrappers, firstresult")
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Spec)
    new_wrapper = NewStyleWrapper()
    order = [Upper(), Exclaim(), Strip(), Reverse(), Count(), OldStyleWrapper(), new_wrapper]
    for plugin in order:
        pm.register(plugin, name=type(plugin).__name__)
    print("  registered, in this order: %s" % [type(p).__name__ for p in order])

    monitor = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: monitor.append([i.plugin_name for i in reversed(impls)]),
        lambda outcome, name, impls, kwargs: None)
    calls = []
    results = pm.hook.transform(text="  plug in ", calls=calls)
    undo()
    print("  pm.hook.transform(text='  plug in ') called, in order:")
    for c in calls:
        print("      " + c)
    print("  results: %r" % (results,))
    expected_calls = ["NewStyleWrapper before", "OldStyleWrapper before", "Exclaim (tryfirst)",
                      "Reverse", "Upper", "Strip (trylast)",
                      "OldStyleWrapper after, saw 5 results", "NewStyleWrapper after"]
    check(calls == expected_calls,
          "wrappers outermost (last registered outside), tryfirst, then last-registered-first, "
          "trylast last")
    print("  (Count takes no `calls` argument, so it is in the results but not in the log)")
    check(results == ["  plug in !", 10, " ni gulp  ", "  PLUG IN ", "plug in",
                      "<added by NewStyleWrapper>"],
          "results in call order, Count got only text, the wrapper appended one")
    check(new_wrapper.seen is not None and len(new_wrapper.seen) == 5,
          "the new-style wrapper saw all 5 results")
    print("  add_hookcall_monitoring saw the call order: %s" % monitor[0])

    ext = ByExtension()
    sniff = Sniffer()
    pm.register(ext)
    pm.register(sniff)
    fmt = pm.hook.choose_format(filename="report.csv")
    print("  firstresult: choose_format('report.csv') -> %r; the trylast Sniffer ran? %s"
          % (fmt, sniff.called))
    fallback = pm.hook.choose_format(filename="README")
    print("  firstresult: choose_format('README')     -> %r (ByExtension passed with None)"
          % fallback)
    check(fmt == "csv" and fallback == "binary", "firstresult stops at the first non-None answer")

    try:
        pm.register(AsksTooMuch(), name="AsksTooMuch")
        refused = ""
    except pluggy.PluginValidationError as exc:
        refused = str(exc)
    print("  registering AsksTooMuch: PluginValidationError:")
    print("      " + textwrap.shorten(refused, 120))
    check("colour" in refused, "pluggy refuses an impl asking for an argument the spec lacks")


# --------------------------------------------------------------------------
# 2. Entry points
# --------------------------------------------------------------------------

ENTRY_POINT_PLUGIN = '''\
"""lab13_greeter: a plugin distributed as its own package."""
import pluggy

hookimpl = pluggy.HookimplMarker("lab13")


@hookimpl
def transform(text):
    return "hello, " + text.strip()
'''


def section_entry_points():
    heading("2. entry points: plugins found through installed package metadata")
    with tempfile.TemporaryDirectory(prefix="lab13-") as site:
        # What pip would install for a package whose pyproject.toml says
        #   [project.entry-points."lab13.plugins"]
        #   greeter = "lab13_greeter"
        info = os.path.join(site, "lab13_greeter-1.0.dist-info")
        os.mkdir(info)
        files = {
            os.path.join(site, "lab13_greeter.py"): ENTRY_POINT_PLUGIN,
            os.path.join(info, "METADATA"): "Metadata-Version: 2.1\nName: lab13-greeter\n"
                                            "Version: 1.0\n",
            os.path.join(info, "entry_points.txt"): "[lab13.plugins]\ngreeter = lab13_greeter\n",
        }
        for path, text in files.items():
            with open(path, "w") as f:
                f.write(text)
        print("  %s/" % os.path.basename(info))
        print("      entry_points.txt: %s" % files[os.path.join(info, "entry_points.txt")]
              .strip().replace("\n", " | "))
        sys.path.insert(0, site)
        importlib.invalidate_caches()
        try:
            eps = importlib.metadata.entry_points(group="lab13.plugins")
            print("  importlib.metadata.entry_points(group='lab13.plugins') -> %s"
                  % [(ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in eps])
            pm = pluggy.PluginManager(PROJECT)
            pm.add_hookspecs(Spec)
            loaded = pm.load_setuptools_entrypoints("lab13.plugins")
            dists = [(name, dist.metadata["name"], dist.version)
                     for _, dist in pm.list_plugin_distinfo()
                     for name in [pm.get_name(_)]]
            print("  pm.load_setuptools_entrypoints('lab13.plugins') loaded %d: %s"
                  % (loaded, dists))
            out = pm.hook.transform(text=" world", calls=[])
            print("  pm.hook.transform(text=' world') -> %r" % out)
            check(loaded == 1 and out == ["hello, world"]
                  and dists == [("greeter", "lab13-greeter", "1.0")],
                  "the entry point plugin is discovered, loaded and called")
        finally:
            sys.path.remove(site)
            sys.modules.pop("lab13_greeter", None)
            importlib.invalidate_caches()


# --------------------------------------------------------------------------
# 3. __init_subclass__ registry, API versions, dependency injection
# --------------------------------------------------------------------------

HOST_API = (2, 1)  # the plugin API this host implements: major 2, minor 1


class Exporter:
    """Base class of exporter plugins; subclassing is registering."""

    registry = {}

    def __init_subclass__(cls, *, name, requires_api, **kwargs):
        super().__init_subclass__(**kwargs)
        if name in Exporter.registry:
            raise TypeError("exporter %r is already registered by %s"
                            % (name, Exporter.registry[name].__qualname__))
        cls.plugin_name = name
        cls.requires_api = requires_api
        Exporter.registry[name] = cls


def api_compatible(requires, host=HOST_API):
    """Same major version; the plugin may not need a newer minor than the host."""
    return requires[0] == host[0] and requires[1] <= host[1]


class CsvExporter(Exporter, name="csv", requires_api=(2, 0)):
    def __init__(self, config):
        self.sep = config["csv_separator"]

    @hookimpl
    def render(self, rows):
        return "\n".join(self.sep.join(map(str, r)) for r in rows)


class TableExporter(Exporter, name="table", requires_api=(2, 1)):
    def __init__(self, config, log):
        self.width = config["column_width"]
        self.log = log

    @hookimpl
    def render(self, rows):
        self.log.append("table rendered %d rows" % len(rows))
        return "\n".join("".join(str(c).ljust(self.width) for c in r).rstrip() for r in rows)


class ParquetExporter(Exporter, name="parquet", requires_api=(2, 3)):
    pass  # needs API 2.3, the host has 2.1


class XmlExporter(Exporter, name="xml", requires_api=(1, 4)):
    pass  # written for the old major version 1


class MetricsExporter(Exporter, name="metrics", requires_api=(2, 0)):
    def __init__(self, statsd_client):  # a service the host does not provide
        self.client = statsd_client


def inject(cls, services):
    """Build cls, passing each constructor parameter from services by name."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    missing = [p.name for p in params if p.name not in services]
    if missing:
        raise LookupError("%s needs %s, which the host does not provide"
                          % (cls.__name__, ", ".join(missing)))
    return cls(**{p.name: services[p.name] for p in params})


def section_registry():
    heading("3. __init_subclass__ registry, API versions, dependency injection")
    print("  Exporter.registry after the class statements: %s"
          % {k: v.__name__ for k, v in Exporter.registry.items()})
    try:
        class Csv2(Exporter, name="csv", requires_api=(2, 0)):
            pass
        duplicate = ""
    except TypeError as exc:
        duplicate = str(exc)
    print("  a second 'csv' exporter: TypeError: %s" % duplicate)
    check(set(Exporter.registry) == {"csv", "table", "parquet", "xml", "metrics"}
          and "already registered" in duplicate,
          "subclasses register themselves; a duplicate name is refused")

    log = []
    services = {"config": {"csv_separator": ";", "column_width": 10}, "log": log}
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Spec)
    print("  host API %d.%d; loading every registered exporter:" % HOST_API)
    loaded, refused = [], {}
    for name, cls in Exporter.registry.items():
        if not api_compatible(cls.requires_api):
            refused[name] = "needs API %d.%d" % cls.requires_api
        else:
            try:
                pm.register(inject(cls, services), name=name)
                loaded.append(name)
                continue
            except LookupError as exc:
                refused[name] = str(exc)
        print("      %-8s refused: %s" % (name, refused[name]))
    for name in loaded:
        print("      %-8s loaded (needs API %d.%d)" % ((name,) + Exporter.registry[name].requires_api))
    check(loaded == ["csv", "table"] and set(refused) == {"parquet", "xml", "metrics"},
          "API 2.0 and 2.1 plugins load; 2.3, 1.4 and a missing dependency are refused")

    rows = [("id", "item", "qty"), (1, "keyboard", 2), (2, "mouse", 1)]
    csv_out, table_out = pm.hook.render(rows=rows)[::-1]  # csv registered first
    print("  render via csv:   " + csv_out.replace("\n", " | "))
    print("  render via table: " + table_out.replace("\n", " | "))
    check(csv_out.startswith("id;item;qty") and table_out.startswith("id        item")
          and log == ["table rendered 3 rows"],
          "injected config and log reached the plugins")


# --------------------------------------------------------------------------
# 4. A sandbox on an audit hook
# --------------------------------------------------------------------------

class Policy:
    """What sandboxed code may do; every event it rules on is recorded."""

    DENIED_EVENTS = {
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
        "os.kill", "os.killpg", "os.remove", "os.rename", "os.rmdir", "shutil.rmtree",
        "subprocess.Popen", "socket.connect", "socket.bind", "ctypes.dlopen",
        "ctypes.dlsym", "ctypes.addressof", "sys._getframe",
    }
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def __init__(self, allowed_imports):
        self.allowed_imports = set(allowed_imports)
        self.log = []

    def rule(self, event, args):
        if event in ("import", "lab13.import"):
            top = str(args[0]).split(".")[0]
            if top not in self.allowed_imports:
                return "import of %r is not allowed" % args[0]
        elif event in self.DENIED_EVENTS:
            return "%s is not allowed" % event
        elif event == "open":
            path, mode, flags = args
            if (mode and any(c in mode for c in "wax+")) or (mode is None and flags & self.WRITE_FLAGS):
                return "opening %s for writing is not allowed" % path
        return None


_SANDBOX = contextvars.ContextVar("lab13_sandbox", default=None)
_HOOK_INSTALLED = False


def _audit_hook(event, args):
    policy = _SANDBOX.get()
    if policy is None:  # the usual case: the sandbox is off, do nothing
        return
    reason = policy.rule(event, args)
    if reason is not None:
        policy.log.append((event, reason))
        raise PermissionError("sandbox: " + reason)


@contextlib.contextmanager
def sandbox(policy):
    """Turn the policy on for the code run inside this block (this context only)."""
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit_hook)  # once: it can never be removed
        _HOOK_INSTALLED = True
    for name in policy.allowed_imports:
        importlib.import_module(name)  # import them (and what they need) outside first
    token = _SANDBOX.set(policy)
    try:
        yield policy
    finally:
        _SANDBOX.reset(token)


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    # The built-in "import" audit event fires only for modules not yet in
    # sys.modules; a custom event from __import__ covers every import statement.
    sys.audit("lab13.import", name)
    return builtins.__import__(name, globals, locals, fromlist, level)


class SandboxWrapper:
    """A host plugin: every `render` call runs with the sandbox on."""

    def __init__(self, policy):
        self.policy = policy

    @hookimpl(wrapper=True)
    def render(self, rows):
        with sandbox(self.policy):
            return (yield)


def load_sandboxed(pm, name, source, policy):
    """Run a plugin's module code inside the sandbox and register it."""
    module = types.ModuleType("plugin_" + name)
    module.__dict__["__builtins__"] = dict(vars(builtins), __import__=_guarded_import)
    module.__dict__["hookimpl"] = hookimpl  # the host hands plugins its marker
    code = compile(source, "<plugin %s>" % name, "exec")
    with sandbox(policy):
        exec(code, module.__dict__)
    pm.register(module, name=name)
    return module


def render_refusing_offenders(pm):
    """Call render; a plugin that breaks the sandbox is unregistered, then retry."""
    refused = []
    while True:
        try:
            return pm.hook.render(rows=[(1, 2)]), refused
        except PermissionError as exc:
            frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
            culprit = next((f[len("<plugin "):-1] for f in frames if f.startswith("<plugin ")), None)
            if culprit is None or pm.get_plugin(culprit) is None:
                raise
            print("  call-time breach by %r: %s -> unregistered" % (culprit, exc))
            pm.unregister(name=culprit)
            refused.append(culprit)


def section_sandbox(tmpdir):
    heading("4. a sandbox for plugin code on an audit hook")
    marker = os.path.join(tmpdir, "pwned")
    plugins = {
        "good": '''
import math, json
@hookimpl
def render(rows):
    return json.dumps([[math.sqrt(c) for c in r] for r in rows])
''',
        "shell": '''
import os
os.system("touch %s")   # runs at import time
''' % marker,
        "sneaky": '''
import json             # allowed, but json imports codecs, which imports sys...
json.codecs.sys.modules["os"].system("touch %s")
''' % marker,
        "netcopy": '''
import ftplib           # not on the allowlist
''',
        "dropper": '''
import json
@hookimpl
def render(rows):       # harmless at import, misbehaves when called
    with open(%r, "w") as f:
        f.write(json.dumps(rows))
    return "done"
''' % marker,
    }
    policy = Policy(allowed_imports={"math", "json"})
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Spec)
    pm.register(SandboxWrapper(policy), name="sandbox-wrapper")
    ftplib_before = "ftplib" in sys.modules
    print("  allowed imports: %s; 'ftplib' already imported? %s"
          % (sorted(policy.allowed_imports), ftplib_before))
    refused_at_load = {}
    for name, source in plugins.items():
        try:
            load_sandboxed(pm, name, source, policy)
            print("  load %-8s -> registered" % name)
        except PermissionError as exc:
            refused_at_load[name] = str(exc)
            print("  load %-8s -> refused: %s" % (name, exc))
    check(set(refused_at_load) == {"shell", "sneaky", "netcopy"}
          and "os.system" in refused_at_load["sneaky"],
          "plugins that import os or ftplib, or reach os.system another way, are refused")

    result, refused_at_call = render_refusing_offenders(pm)
    print("  render(rows=[(1, 2)]) with the remaining plugins -> %r" % (result,))
    check(refused_at_call == ["dropper"] and result == ["[[1.0, 1.4142135623730951]]"],
          "a plugin that writes a file when called is refused; the good one works")
    check(not os.path.exists(marker), "nothing the refused plugins tried actually ran")
    print("  events the policy denied: %s" % [e for e, _ in policy.log])

    # Outside the sandbox the (irremovable) hook lets everything through.
    probe = os.path.join(tmpdir, "after.txt")
    with open(probe, "w") as f:
        f.write("writing is fine again\n")
    sys.audit("lab13.import", "ftplib")
    still = ("ftplib" in sys.modules) == ftplib_before
    print("  after the sandbox: wrote %s and raised a lab13.import audit event freely"
          % os.path.basename(probe))
    check(os.path.exists(probe) and still, "outside the sandbox the audit hook is inert")


def main():
    print("Lab 13: plugin systems with pluggy %s in CPython %s"
          % (pluggy.__version__, sys.version.split()[0]))
    section_pluggy()
    section_entry_points()
    section_registry()
    with tempfile.TemporaryDirectory(prefix="lab13-") as tmpdir:
        section_sandbox(tmpdir)
    print()
    if FAILURES:
        print("FAIL lab13: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab13: pluggy call order with wrappers seeing the result, firstresult, "
          "entry point loaded, API versions and DI, sandbox refused 4 rogue plugins ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
