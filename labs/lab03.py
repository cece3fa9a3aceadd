"""Lab 03 - descriptors: the mechanism behind methods, properties and slots.

What the lab shows, with the standard library only:

  1. the descriptor protocol: __get__, __set__ and __delete__, with every
     call printed as it happens;
  2. data vs non-data descriptors and the attribute lookup order
     (data descriptor on the type > instance __dict__ > non-data descriptor
     > plain class attribute); functions are non-data descriptors, which is
     how methods get bound;
  3. property re-implemented in a few lines of pure Python, side by side
     with the built-in one;
  4. __set_name__: a descriptor learns the name it was assigned to;
  5. __slots__: each slot is a member descriptor on the class, and the
     instance has no __dict__;
  6. a typed descriptor with validation, which rejects bad values with a
     clear error and accepts good ones (the lab's verification).

Targets CPython 3.11.  Run it from anywhere:

    python3 labs/lab03.py

The last line is "VERIFY lab03: ... ok" (exit status 0) or a line with FAIL
and the reason (non-zero exit status).
"""

import sys

FAILURES = []


def heading(title):
    print()
    print("== " + title + " " + "=" * max(0, 66 - len(title)))


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("  !! check failed: " + what)


# --- 1. the protocol --------------------------------------------------------

class Traced:
    """A data descriptor that prints every protocol call it receives."""

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = "_" + name

    def __get__(self, instance, owner=None):
        if instance is None:
            print("    __get__(None, %s)  -> the descriptor itself (class access)"
                  % owner.__name__)
            return self
        value = instance.__dict__.get(self.slot, "<unset>")
        print("    __get__(<%s>, %s) -> %r" % (owner.__name__, owner.__name__, value))
        return value

    def __set__(self, instance, value):
        print("    __set__(<%s>, %r)" % (type(instance).__name__, value))
        instance.__dict__[self.slot] = value

    def __delete__(self, instance):
        print("    __delete__(<%s>)" % type(instance).__name__)
        instance.__dict__.pop(self.slot, None)


class Account:
    balance = Traced()


def section_protocol():
    heading("1. the descriptor protocol, call by call")
    acct = Account()
    print("  acct.balance = 100")
    acct.balance = 100
    print("  acct.balance")
    got = acct.balance
    print("  Account.balance")
    cls_got = Account.balance
    print("  del acct.balance")
    del acct.balance
    print("  acct.balance")
    after = acct.balance
    print("  acct.__dict__ = %r  (the descriptor chose where the value lives)"
          % (acct.__dict__,))
    check(got == 100 and isinstance(cls_got, Traced) and after == "<unset>",
          "get/set/delete routed through the descriptor")


# --- 2. data vs non-data ----------------------------------------------------

class NonData:
    """Only __get__: a non-data descriptor, like a function."""

    def __get__(self, instance, owner=None):
        return "from NonData.__get__"


class Data:
    """__get__ and __set__: a data descriptor, like property."""

    def __get__(self, instance, owner=None):
        return "from Data.__get__"

    def __set__(self, instance, value):
        raise AttributeError("Data descriptor refuses assignment")


class Precedence:
    data = Data()
    nondata = NonData()
    plain = "from the class __dict__"

    def method(self):
        return "method body"


def section_precedence():
    heading("2. data vs non-data descriptors: who wins the lookup")
    obj = Precedence()
    # Write straight into the instance dict, bypassing __setattr__, so each
    # name exists both on the class and on the instance.
    obj.__dict__.update(data="from the instance __dict__",
                        nondata="from the instance __dict__",
                        plain="from the instance __dict__",
                        method="from the instance __dict__")
    rows = [
        ("data", "data descriptor (has __set__)"),
        ("nondata", "non-data descriptor (only __get__)"),
        ("plain", "plain class attribute"),
        ("method", "function = non-data descriptor"),
    ]
    print("  every name below is in BOTH Precedence.__dict__ and obj.__dict__")
    results = {}
    for name, kind in rows:
        results[name] = getattr(obj, name)
        print("  obj.%-8s %-36s -> %r" % (name, "(" + kind + ")", results[name]))
    print("  lookup order: data descriptor on type(obj).__mro__ > obj.__dict__ >")
    print("                non-data descriptor > plain class attribute")

    fresh = Precedence()
    bound = fresh.method
    func = Precedence.__dict__["method"]
    manual = func.__get__(fresh, Precedence)
    print("  Precedence.__dict__['method'] is a %s with __get__: %s"
          % (type(func).__name__, hasattr(func, "__get__")))
    print("  fresh.method is %s; func.__get__(fresh) gives the same bound method: %s"
          % (type(bound).__name__, manual == bound))
    check(results["data"] == "from Data.__get__", "data descriptor beats instance dict")
    check(results["nondata"] == "from the instance __dict__",
          "instance dict beats non-data descriptor")
    check(results["plain"] == "from the instance __dict__", "instance dict beats class attr")
    check(results["method"] == "from the instance __dict__",
          "instance dict shadows a method (functions are non-data)")
    check(manual == bound and manual.__self__ is fresh, "functions bind via __get__")


# --- 3. property in pure Python ---------------------------------------------

class PyProperty:
    """A pure-Python equivalent of the built-in property."""

    def __init__(self, fget=None, fset=None, fdel=None, doc=None):
        self.fget, self.fset, self.fdel = fget, fset, fdel
        self.__doc__ = doc if doc is not None else getattr(fget, "__doc__", None)

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        if self.fget is None:
            raise AttributeError("property %r has no getter" % self.name)
        return self.fget(instance)

    def __set__(self, instance, value):
        if self.fset is None:
            raise AttributeError("property %r of %r object has no setter"
                                 % (self.name, type(instance).__name__))
        self.fset(instance, value)

    def __delete__(self, instance):
        if self.fdel is None:
            raise AttributeError("property %r has no deleter" % self.name)
        self.fdel(instance)

    def setter(self, fset):
        # Like property.setter: return a new descriptor with the setter added.
        prop = type(self)(self.fget, fset, self.fdel, self.__doc__)
        prop.name = getattr(self, "name", None)
        return prop


def make_temperature(prop):
    """Build the same class with either the built-in or our property."""

    class Temperature:
        def __init__(self, celsius):
            self._c = celsius

        @prop
        def fahrenheit(self):
            """Temperature in degrees Fahrenheit."""
            return self._c * 9 / 5 + 32

        @fahrenheit.setter
        def fahrenheit(self, value):
            self._c = (value - 32) * 5 / 9

        @prop
        def kelvin(self):
            return self._c + 273.15

    Temperature.__qualname__ = "Temperature[%s]" % prop.__name__
    return Temperature


def section_property():
    heading("3. property, re-implemented")
    outcomes = {}
    for prop in (property, PyProperty):
        cls = make_temperature(prop)
        t = cls(100)
        f = t.fahrenheit
        t.fahrenheit = 32
        c = t._c
        try:
            t.kelvin = 0
            err = "no error"
        except AttributeError:
            err = "AttributeError"
        doc = type(t).__dict__["fahrenheit"].__doc__
        outcomes[prop.__name__] = (f, c, err, doc)
        print("  %-10s 100C -> %.1fF; set 32F -> %.1fC; set read-only kelvin -> %s; doc=%r"
              % (prop.__name__, f, c, err, doc))
    check(outcomes["property"] == outcomes["PyProperty"],
          "PyProperty behaves like the built-in property")


# --- 4. __set_name__ --------------------------------------------------------

class Named:
    def __set_name__(self, owner, name):
        print("    __set_name__(owner=%s, name=%r) called while the class is created"
              % (owner.__name__, name))
        self.owner, self.name = owner.__name__, name


def section_set_name():
    heading("4. __set_name__: a descriptor learns its own name")
    print("  class Config: host = Named(); port = Named()")

    class Config:
        host = Named()
        port = Named()

    print("  Config.__dict__['port'].name = %r, owner = %r"
          % (Config.__dict__["port"].name, Config.__dict__["port"].owner))
    print("  attaching later does not call it: Config.extra = Named()")
    Config.extra = Named()
    print("  Config.__dict__['extra'] has a name: %s" % hasattr(Config.__dict__["extra"], "name"))
    check(Config.__dict__["host"].name == "host" and Config.__dict__["port"].name == "port",
          "__set_name__ received the attribute names")
    check(not hasattr(Config.__dict__["extra"], "name"),
          "__set_name__ runs only at class creation")


# --- 5. __slots__ -----------------------------------------------------------

class SlottedPoint:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y


class DictPoint:
    def __init__(self, x, y):
        self.x, self.y = x, y


def section_slots():
    heading("5. __slots__: slots are member descriptors")
    member = SlottedPoint.__dict__["x"]
    p = SlottedPoint(3, 4)
    print("  SlottedPoint.__dict__['x'] -> %r" % member)
    print("  type: %s; data descriptor: %s"
          % (type(member).__name__, hasattr(member, "__set__")))
    print("  member.__get__(p) = %r (same as p.x = %r)" % (member.__get__(p, SlottedPoint), p.x))
    member.__set__(p, 30)
    print("  member.__set__(p, 30) -> p.x = %r" % p.x)
    print("  hasattr(p, '__dict__') = %s; sizeof slotted = %d B, with __dict__ = %d B + dict %d B"
          % (hasattr(p, "__dict__"), sys.getsizeof(p), sys.getsizeof(DictPoint(3, 4)),
             sys.getsizeof(DictPoint(3, 4).__dict__)))
    try:
        p.z = 1
        refused = None
    except AttributeError as exc:
        refused = str(exc)
    print("  p.z = 1 -> AttributeError: %s" % refused)
    check(type(member).__name__ == "member_descriptor" and p.x == 30,
          "slots are member_descriptor objects that get/set the value")
    check(not hasattr(p, "__dict__") and refused is not None,
          "slotted instances have no __dict__ and refuse new attributes")


# --- 6. a typed, validating descriptor --------------------------------------

class Typed:
    """A data descriptor that checks type and range before storing a value.

    Values live in the instance __dict__ under the attribute's own name; as a
    data descriptor, Typed still wins every lookup.
    """

    def __init__(self, kind, minimum=None, maximum=None, non_empty=False):
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.non_empty = non_empty

    def __set_name__(self, owner, name):
        self.owner = owner.__name__
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        try:
            return instance.__dict__[self.name]
        except KeyError:
            raise AttributeError("%s.%s has not been set" % (self.owner, self.name)) from None

    def __set__(self, instance, value):
        where = "%s.%s" % (self.owner, self.name)
        # bool is a subclass of int; a quantity of True is almost always a bug.
        if not isinstance(value, self.kind) or (isinstance(value, bool) and self.kind is not bool):
            raise TypeError("%s must be %s, got %s %r"
                            % (where, self.kind.__name__, type(value).__name__, value))
        if self.minimum is not None and value < self.minimum:
            raise ValueError("%s must be >= %r, got %r" % (where, self.minimum, value))
        if self.maximum is not None and value > self.maximum:
            raise ValueError("%s must be <= %r, got %r" % (where, self.maximum, value))
        if self.non_empty and not value:
            raise ValueError("%s must not be empty" % where)
        instance.__dict__[self.name] = value

    def __delete__(self, instance):
        raise AttributeError("%s.%s cannot be deleted" % (self.owner, self.name))


class OrderLine:
    sku = Typed(str, non_empty=True)
    quantity = Typed(int, minimum=1, maximum=1000)
    unit_price = Typed(float, minimum=0.0)

    def __init__(self, sku, quantity, unit_price):
        self.sku = sku
        self.quantity = quantity
        self.unit_price = unit_price

    def total(self):
        return round(self.quantity * self.unit_price, 2)


def section_typed():
    heading("6. a typed descriptor with validation")
    line = OrderLine("ABC-1", 3, 2.5)
    print("  OrderLine('ABC-1', 3, 2.5) accepted; total() = %r" % line.total())
    good = [("quantity", 1000), ("unit_price", 0.0), ("sku", "Z")]
    accepted = 0
    for attr, value in good:
        setattr(line, attr, value)
        ok = getattr(line, attr) == value
        accepted += ok
        print("  accept line.%-10s = %-8r -> stored %r" % (attr, value, getattr(line, attr)))

    bad = [
        ("quantity", "three", TypeError),
        ("quantity", 0, ValueError),
        ("quantity", 1001, ValueError),
        ("quantity", True, TypeError),
        ("quantity", 2.0, TypeError),
        ("unit_price", -1.0, ValueError),
        ("unit_price", 5, TypeError),
        ("sku", "", ValueError),
        ("sku", None, TypeError),
    ]
    rejected = 0
    snapshot = dict(line.__dict__)
    for attr, value, expected in bad:
        try:
            setattr(line, attr, value)
            print("  !! line.%s = %r was accepted" % (attr, value))
        except expected as exc:
            rejected += 1
            print("  reject line.%-10s = %-8r -> %s: %s"
                  % (attr, value, type(exc).__name__, exc))
        except Exception as exc:  # the wrong kind of error is a failure too
            print("  !! line.%s = %r raised %s, expected %s"
                  % (attr, value, type(exc).__name__, expected.__name__))
    try:
        del line.quantity
        deleted = True
    except AttributeError as exc:
        deleted = False
        print("  reject del line.quantity    -> AttributeError: %s" % exc)
    print("  state unchanged by the rejected writes: %s" % (line.__dict__ == snapshot))
    try:
        OrderLine("X", "many", 1.0)
        built = True
    except TypeError as exc:
        built = False
        print("  constructor validates too: OrderLine('X', 'many', 1.0) -> TypeError: %s" % exc)

    check(accepted == len(good), "all %d good values accepted" % len(good))
    check(rejected == len(bad), "all %d bad values rejected with the right error"
          % len(bad))
    check(line.__dict__ == snapshot and not deleted and not built,
          "rejected writes left no trace; delete and bad construction refused")
    return accepted, rejected


def main():
    print("Lab 03: descriptors in CPython %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 11):
        print("FAIL lab03: this lab targets CPython 3.11, not %s" % sys.version.split()[0])
        return 1
    section_protocol()
    section_precedence()
    section_property()
    section_set_name()
    section_slots()
    accepted, rejected = section_typed()
    print()
    if FAILURES:
        print("FAIL lab03: %d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        return 1
    print("VERIFY lab03: typed descriptor accepted %d good values and rejected %d bad ones "
          "with clear errors; lookup precedence as documented ... ok" % (accepted, rejected))
    return 0


def run():
    """Run main(); an unexpected exception still ends in a FAIL line."""
    try:
        return main()
    except Exception as exc:  # report, do not hide: traceback, then FAIL
        import traceback
        traceback.print_exc(file=sys.stdout)
        print("FAIL lab03: unexpected %s: %s" % (type(exc).__name__, exc))
        return 1


if __name__ == "__main__":
    sys.exit(run())
