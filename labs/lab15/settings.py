"""Validated settings: every field is a descriptor that checks what it is given.

A Setting is a data descriptor (it defines __get__ and __set__), so
`settings.top_n = 0` goes through Setting.__set__, which converts and
checks the value and raises SettingError naming the field.  __set_name__
tells each descriptor the attribute it was assigned to, and registers it
in the owning class's FIELDS.
"""

import re

from . import confighook


class SettingError(ValueError):
    pass


class Setting:
    """Base descriptor: convert with `kind`, then run `validate`."""

    kind = str

    def __init__(self, doc=""):
        self.doc = doc

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = "_setting_" + name
        owner.FIELDS = getattr(owner, "FIELDS", ()) + (name,)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self  # accessed on the class: the descriptor itself
        try:
            return obj.__dict__[self.slot]
        except KeyError:
            raise AttributeError("setting %r was never set" % self.name) from None

    def __set__(self, obj, value):
        try:
            value = self.kind(value)
        except (TypeError, ValueError):
            raise SettingError("%s: expected %s, got %r" % (self.name, self.kind.__name__, value)) from None
        problem = self.validate(value)
        if problem:
            raise SettingError("%s: %s, got %r" % (self.name, problem, value))
        obj.__dict__[self.slot] = value

    def validate(self, value):
        return None

    def show(self, value):
        return value


class IntSetting(Setting):
    kind = int

    def __init__(self, lo, hi, doc=""):
        super().__init__(doc)
        self.lo, self.hi = lo, hi

    def validate(self, value):
        if not self.lo <= value <= self.hi:
            return "must be between %s and %s" % (self.lo, self.hi)
        return None


class FloatSetting(IntSetting):
    kind = float


class PatternSetting(Setting):
    def __init__(self, pattern, doc=""):
        super().__init__(doc)
        self.pattern = re.compile(pattern)

    def validate(self, value):
        return None if self.pattern.fullmatch(value) else "must match %s" % self.pattern.pattern


class ChoicesSetting(Setting):
    """A comma-separated list of names, each from `choices`; stored as a tuple."""

    def __init__(self, choices, doc=""):
        super().__init__(doc)
        self.choices = tuple(choices)
        self.kind = self.parse

    @staticmethod
    def parse(value):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)

    def validate(self, value):
        unknown = [v for v in value if v not in self.choices]
        return "unknown %s (known: %s)" % (unknown, ", ".join(self.choices)) if unknown else None


class SecretSetting(Setting):
    def show(self, value):
        return "<set, %d chars>" % len(value) if value else "<empty>"


PLUGIN_NAMES = ("stamp", "upper", "redact")


class Settings:
    service_name = PatternSetting(r"[a-z][a-z0-9-]{0,30}", "name shown in responses")
    max_text = IntSetting(1, 10_000, "longest text /echo accepts")
    top_n = IntSetting(1, 50, "allocation sites /memory returns by default")
    plugins = ChoicesSetting(PLUGIN_NAMES, "plugins to load, in order")
    request_timeout = FloatSetting(0.01, 30.0, "seconds before /slow gives up")
    fernet_key = SecretSetting("Fernet key; empty means a new one per start")

    def __init__(self, **values):
        for name in self.FIELDS:
            setattr(self, name, values[name])

    @classmethod
    def load(cls, **overrides):
        """Settings from the synthetic lab15_config module, then overrides."""
        module = confighook.load_config()
        values = {name: getattr(module, name.upper()) for name in cls.FIELDS}
        values.update(overrides)
        settings = cls(**values)
        settings.sources = dict(module.SOURCES)
        settings.module = module
        return settings

    def public(self):
        """The settings as a dict, secrets masked."""
        return {name: type(self).__dict__[name].show(getattr(self, name)) for name in self.FIELDS}

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % kv for kv in self.public().items())
