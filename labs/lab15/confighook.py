"""An import hook that serves the service's configuration as a module.

`import lab15_config` finds no file anywhere: ConfigFinder, placed on
sys.meta_path, answers for that one name with a spec whose loader,
ConfigLoader, fills the new module with the defaults below, each
overridable by an environment variable LAB15_<NAME> (converted to the
default's type when it can be; settings.py reports a value that cannot).  The module records where every value came from, in
SOURCES.  Everything else is left to the normal finders (find_spec
returns None).
"""

import importlib.abc
import importlib.util
import os
import sys

MODULE_NAME = "lab15_config"

DEFAULTS = {
    "SERVICE_NAME": "lab15",
    "MAX_TEXT": 200,
    "TOP_N": 5,
    "PLUGINS": "stamp,upper,redact",
    "REQUEST_TIMEOUT": 0.5,
    "FERNET_KEY": "",
}


class ConfigLoader(importlib.abc.Loader):
    """Executes the synthetic module: values from DEFAULTS and the environment."""

    def __init__(self, environ):
        self.environ = environ

    def create_module(self, spec):
        return None  # the default: a plain module object

    def exec_module(self, module):
        sources = {}
        for name, default in DEFAULTS.items():
            raw = self.environ.get("LAB15_" + name)
            if raw is None:
                value, sources[name] = default, "default"
            else:
                sources[name] = "env LAB15_" + name
                try:
                    value = type(default)(raw)
                except ValueError:
                    value = raw  # left for the settings to reject, with the name
            setattr(module, name, value)
        module.SOURCES = sources


class ConfigFinder(importlib.abc.MetaPathFinder):
    """Answers for MODULE_NAME only."""

    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ
        self.found = 0  # how many times it served the module

    def find_spec(self, fullname, path=None, target=None):
        if fullname != MODULE_NAME:
            return None
        self.found += 1
        return importlib.util.spec_from_loader(fullname, ConfigLoader(self.environ),
                                               origin="synthetic:" + MODULE_NAME)


def install():
    """Put one ConfigFinder at the front of sys.meta_path; return it."""
    for finder in sys.meta_path:
        if isinstance(finder, ConfigFinder):
            return finder
    finder = ConfigFinder()
    sys.meta_path.insert(0, finder)
    return finder


def load_config():
    """Import lab15_config afresh (the environment may have changed)."""
    install()
    sys.modules.pop(MODULE_NAME, None)
    return importlib.import_module(MODULE_NAME)
