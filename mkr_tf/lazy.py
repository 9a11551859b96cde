"""Modules imported on first use, so that a command's `--help` need not wait for TensorFlow.

Importing TensorFlow takes seconds and prints its C++ start-up lines. The command-line modules
hold library code as well as their flags, so they bind TensorFlow and the modules built on it
with `load` and import them only when a command actually runs:

    tf = lazy.load("tensorflow")      # nothing imported yet
    tf.constant(1)                    # imports tensorflow, then calls tf.constant
"""

import importlib
import types


class _LazyModule(types.ModuleType):
    """Stands for the module `name`; any attribute access imports it and reads from it."""

    def __getattr__(self, attribute: str):
        # Only called for attributes this stand-in lacks, i.e. all but __name__ and __doc__;
        # after the first import, import_module is a lookup in sys.modules.
        return getattr(importlib.import_module(self.__name__), attribute)

    def __dir__(self):
        return dir(importlib.import_module(self.__name__))


def load(name: str) -> types.ModuleType:
    """The module `name`, imported when one of its attributes is first read."""
    return _LazyModule(name)
