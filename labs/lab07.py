"""Lab 07 - metaclasses: the code that runs when a class statement runs.

What the lab shows, with the standard library only:

  1. the class statement step by step: metaclass __prepare__ (the namespace
     the body runs in), __new__ and __init__, and that `class` is a call to
     the metaclass;
  2. metaclass __call__: what happens on `Cls(...)`, and a singleton
     metaclass built on it;
  3. metaclass conflicts: why `class C(A, B)` can fail when A and B have
     unrelated metaclasses, and how a derived metaclass resolves it;
  4. __init_subclass__: a subclass registry with class keywords, no
     metaclass needed;
  5. an ORM-like metaclass that tracks declared fields in order (through a
     __prepare__ namespace that also rejects duplicates), inherits them,
     registers models and builds a CREATE TABLE statement (the lab's
     verification).

Targets CPython 3.11.  Run it from anywhere:

    python3 labs/lab07.py

The last line is "VERIFY lab07: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import sys
import textwrap

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


# --- 1. the class statement --------------------------------------------------

TRACE = []


class TracingNamespace(dict):
    """The mapping the class body executes in; it sees every assignment."""

    def __setitem__(self, key, value):
        if not key.startswith("__"):
            TRACE.append("  body assigns %s" % key)
        super().__setitem__(key, value)


class Tracing(type):
    @classmethod
    def __prepare__(mcls, name, bases, **kwargs):
        TRACE.append("Tracing.__prepare__(%r, bases=%s, kwargs=%r)"
                     % (name, [b.__name__ for b in bases], kwargs))
        return TracingNamespace()

    def __new__(mcls, name, bases, namespace, **kwargs):
        TRACE.append("Tracing.__new__(%r) namespace type %s, keys %s"
                     % (name, type(namespace).__name__,
                        [k for k in namespace if not k.startswith("__")]))
        return super().__new__(mcls, name, bases, dict(namespace))

    def __init__(cls, name, bases, namespace, **kwargs):
        TRACE.append("Tracing.__init__(%r) kwargs=%r" % (name, kwargs))
        super().__init__(name, bases, namespace)
        cls.options = kwargs

    def __call__(cls, *args, **kwargs):
        TRACE.append("Tracing.__call__(%s, args=%r)" % (cls.__name__, args))
        instance = super().__call__(*args, **kwargs)   # runs __new__ + __init__
        TRACE.append("Tracing.__call__ returns the instance")
        return instance


def section_class_statement():
    heading("1. a class statement, step by step")
    del TRACE[:]

    class Widget(metaclass=Tracing, color="blue"):
        size = 3

        def __init__(self, label):
            TRACE.append("Widget.__init__(%r)" % label)
            self.label = label

    for line in TRACE:
        print("    " + line)
    print("  type(Widget) is %s; Widget.options = %r" % (type(Widget).__name__, Widget.options))
    check([t.split("(")[0].strip() for t in TRACE if t.startswith("Tracing")] ==
          ["Tracing.__prepare__", "Tracing.__new__", "Tracing.__init__"],
          "__prepare__, then the body, then __new__ and __init__")
    check(TRACE.index("  body assigns size") > 0, "the body ran inside the prepared namespace")

    del TRACE[:]
    w = Widget("ok")
    print("  Widget('ok'):")
    for line in TRACE:
        print("    " + line)
    check(TRACE[0].startswith("Tracing.__call__") and w.label == "ok",
          "instantiation goes through the metaclass __call__")

    Same = type("Same", (), {"size": 3})
    print("  class statements are calls: type('Same', (), {'size': 3}) -> %r, size %d"
          % (Same, Same.size))


# --- 2. a singleton metaclass ------------------------------------------------

class Singleton(type):
    """Makes Cls(...) return the same instance every time."""

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        cls._instance = None

    def __call__(cls, *args, **kwargs):
        if cls._instance is None:
            cls._instance = super().__call__(*args, **kwargs)
        return cls._instance


class Settings(metaclass=Singleton):
    created = 0

    def __init__(self, env="dev"):
        Settings.created += 1
        self.env = env


class TestSettings(Settings):
    """A subclass gets its own single instance (__init__ above ran for it)."""


def section_singleton():
    heading("2. metaclass __call__: a singleton")
    a = Settings("prod")
    b = Settings("ignored")
    inits = Settings.created
    t = TestSettings("test")
    print("  Settings('prod') is Settings('ignored'): %s; env %r; __init__ ran %d time(s)"
          % (a is b, b.env, inits))
    print("  TestSettings('test') is a separate singleton: %s (env %r)" % (t is not a, t.env))
    check(a is b and b.env == "prod" and inits == 1, "one Settings instance")
    check(t is not a and TestSettings() is t, "each class has its own instance")


# --- 3. metaclass conflicts --------------------------------------------------

class MetaA(type):
    tag_a = "A"


class MetaB(type):
    tag_b = "B"


class Left(metaclass=MetaA):
    pass


class Right(metaclass=MetaB):
    pass


class MetaAB(MetaA, MetaB):
    """Derived from both, so it can build a class with both bases."""


def section_conflict():
    heading("3. metaclass conflict and its resolution")
    try:
        type("Both", (Left, Right), {})
        error = None
    except TypeError as exc:
        error = str(exc)
    print("  class Both(Left, Right) with MetaA and MetaB ->")
    for i, part in enumerate(textwrap.wrap("TypeError: %s" % error, 70)):
        print("    " + ("" if i == 0 else "  ") + part)
    Both = MetaAB("Both", (Left, Right), {})
    print("  with metaclass=MetaAB(MetaA, MetaB): type(Both) = %s, tags %s%s"
          % (type(Both).__name__, Both.tag_a, Both.tag_b))

    class Sub(MetaA):
        pass

    class Child(Left, metaclass=Sub):
        pass

    Mixed = type("Mixed", (Child, Left), {})
    print("  when one metaclass derives from the other, the most derived wins:")
    print("    type(Mixed(Child, Left)) = %s (Sub is a subclass of MetaA)" % type(Mixed).__name__)
    check(error is not None and "metaclass conflict" in error, "unrelated metaclasses conflict")
    check(type(Both) is MetaAB and type(Mixed) is Sub, "derived metaclass resolves the conflict")


# --- 4. __init_subclass__ ----------------------------------------------------

class Exporter:
    formats = {}

    def __init_subclass__(cls, fmt, **kwargs):
        super().__init_subclass__(**kwargs)
        if fmt in Exporter.formats:
            raise TypeError("format %r already registered by %s"
                            % (fmt, Exporter.formats[fmt].__name__))
        cls.fmt = fmt
        Exporter.formats[fmt] = cls


class CsvExporter(Exporter, fmt="csv"):
    def export(self, rows):
        return "\n".join(",".join(map(str, r)) for r in rows)


class JsonLinesExporter(Exporter, fmt="jsonl"):
    def export(self, rows):
        return "\n".join(repr(list(r)) for r in rows)


def section_init_subclass():
    heading("4. __init_subclass__: a registry without a metaclass")
    print("  registered formats: %s" % {k: v.__name__ for k, v in Exporter.formats.items()})
    print("  Exporter.formats['csv']().export([(1, 'a'), (2, 'b')]) -> %r"
          % Exporter.formats["csv"]().export([(1, "a"), (2, "b")]))
    try:
        class Again(Exporter, fmt="csv"):
            pass
        dup = None
    except TypeError as exc:
        dup = str(exc)
    print("  a second fmt='csv' subclass -> TypeError: %s" % dup)
    check(list(Exporter.formats) == ["csv", "jsonl"] and dup is not None,
          "subclasses registered by keyword; duplicates refused")


# --- 5. an ORM-like metaclass ------------------------------------------------

class Field:
    """A typed column; a data descriptor storing values in the instance dict."""
    sql_type = "TEXT"
    py_type = object

    def __init__(self, primary_key=False, null=False):
        self.primary_key = primary_key
        self.null = null
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return instance.__dict__.get(self.name)

    def __set__(self, instance, value):
        if value is None and not self.null:
            raise ValueError("%s.%s may not be NULL" % (type(instance).__name__, self.name))
        if value is not None and not isinstance(value, self.py_type):
            raise TypeError("%s.%s expects %s, got %r"
                            % (type(instance).__name__, self.name, self.py_type.__name__, value))
        instance.__dict__[self.name] = value

    def ddl(self):
        parts = [self.name, self.sql_type]
        if self.primary_key:
            parts.append("PRIMARY KEY")
        elif not self.null:
            parts.append("NOT NULL")
        return " ".join(parts)


class IntegerField(Field):
    sql_type, py_type = "INTEGER", int


class TextField(Field):
    sql_type, py_type = "TEXT", str


class FloatField(Field):
    sql_type, py_type = "REAL", float


class FieldNamespace(dict):
    """Class-body namespace that records Field declarations in order and
    refuses a field name declared twice in the same body."""

    def __init__(self):
        super().__init__()
        self.field_order = []

    def __setitem__(self, key, value):
        if isinstance(value, Field):
            if key in self.field_order:
                raise TypeError("field %r declared twice" % key)
            self.field_order.append(key)
        super().__setitem__(key, value)


class ModelMeta(type):
    registry = {}

    @classmethod
    def __prepare__(mcls, name, bases, **kwargs):
        return FieldNamespace()

    def __new__(mcls, name, bases, namespace, abstract=False, table=None):
        cls = super().__new__(mcls, name, bases, dict(namespace))
        inherited = []
        for base in reversed(cls.__mro__[1:]):
            for f in getattr(base, "_own_fields", ()):
                if f not in inherited:
                    inherited.append(f)
        cls._own_fields = tuple(namespace.field_order)
        cls._fields = tuple(inherited + [f for f in namespace.field_order if f not in inherited])
        cls._abstract = abstract
        if not abstract:
            cls._table = table or name.lower() + "s"
            if cls._table in mcls.registry:
                raise TypeError("table %r is already mapped by %s"
                                % (cls._table, mcls.registry[cls._table].__name__))
            mcls.registry[cls._table] = cls
        return cls

    def create_table_sql(cls):
        cols = ", ".join(getattr(cls, f).ddl() for f in cls._fields)
        return "CREATE TABLE %s (%s)" % (cls._table, cols)


class Model(metaclass=ModelMeta, abstract=True):
    id = IntegerField(primary_key=True)

    def __init__(self, **values):
        unknown = set(values) - set(self._fields)
        if unknown:
            raise TypeError("%s has no field(s) %s" % (type(self).__name__, sorted(unknown)))
        for name in self._fields:
            setattr(self, name, values.get(name))

    def to_row(self):
        return tuple(getattr(self, f) for f in self._fields)


class Timestamped(Model, abstract=True):
    created = FloatField()


class User(Timestamped):
    name = TextField()
    email = TextField()
    age = IntegerField(null=True)


class Order(Timestamped, table="purchase_orders"):
    user_id = IntegerField()
    total = FloatField()
    note = TextField(null=True)


def section_orm():
    heading("5. an ORM-like metaclass: ordered fields and a model registry")
    print("  registry: %s" % {t: c.__name__ for t, c in ModelMeta.registry.items()})
    for cls in (User, Order):
        print("  %s._fields = %s" % (cls.__name__, cls._fields))
        print("    " + cls.create_table_sql())
    u = User(id=1, created=1700000000.0, name="ada", email="ada@example.org")
    o = Order(id=7, created=1700000001.5, user_id=1, total=12.5)
    print("  User(...).to_row()  = %r" % (u.to_row(),))
    print("  Order(...).to_row() = %r" % (o.to_row(),))

    errors = []
    for label, make in [
        ("User(age='old', ...)", lambda: User(id=2, created=0.0, name="x", email="y", age="old")),
        ("User(name=None, ...)", lambda: User(id=3, created=0.0, email="y")),
        ("User(nickname='z', ...)", lambda: User(id=4, nickname="z")),
    ]:
        try:
            make()
            errors.append(None)
            print("  %-24s -> accepted (unexpected)" % label)
        except (TypeError, ValueError) as exc:
            errors.append(exc)
            print("  %-24s -> %s: %s" % (label, type(exc).__name__, exc))

    try:
        class Broken(Model):
            title = TextField()
            title = TextField()
        dup = None
    except TypeError as exc:
        dup = str(exc)
    print("  a model declaring 'title' twice -> TypeError: %s" % dup)

    check(User._fields == ("id", "created", "name", "email", "age"),
          "User fields in declaration order, inherited first")
    check(Order._fields == ("id", "created", "user_id", "total", "note"),
          "Order fields in declaration order, inherited first")
    check(list(ModelMeta.registry) == ["users", "purchase_orders"],
          "concrete models registered, abstract ones not")
    check(User.create_table_sql() == "CREATE TABLE users (id INTEGER PRIMARY KEY, created REAL "
          "NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL, age INTEGER)", "generated DDL")
    check(all(errors) and dup == "field 'title' declared twice",
          "bad values and duplicate declarations rejected")
    check(u.to_row() == (1, 1700000000.0, "ada", "ada@example.org", None), "instance values")
    return len(ModelMeta.registry)


def main():
    print("Lab 07: metaclasses in CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab07: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    section_class_statement()
    section_singleton()
    section_conflict()
    section_init_subclass()
    n = section_orm()
    print()
    if FAILURES:
        print("FAIL lab07: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab07: ORM metaclass tracked declared fields in order and registered %d "
          "models; __prepare__/__call__/conflicts/__init_subclass__ ... ok" % n)
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab07: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
