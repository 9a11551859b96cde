"""mkr_tf's own errors: user mistakes and faults of the machine, each printed as one line.

`cli.run` prints an `MKRError`, an `OSError` and TensorFlow's resource errors (a full disk, a
failed allocation) as `<command>: error: <message>` and exits with 2, and an `Interrupted` as
`<command>: <message>` and exits with 130 (the shell's code for Ctrl-C). Anything else is a bug
and keeps its traceback.
"""


class MKRError(Exception):
    """A mistake of the user or a fault of the machine that one line explains."""


# The subclasses that name a wrong value are also ValueErrors, as Python's own would be.
class ConfigError(MKRError, ValueError):
    """A setting, flag or argument with a value it cannot have."""


class DataError(MKRError, ValueError):
    """A data file that is missing, unreadable or malformed; the message names file, line, value."""


class TrainingError(MKRError, RuntimeError):
    """Training cannot go on, e.g. a loss became NaN or Inf."""


class RunDirError(MKRError):
    """A run or output folder that this run must not or cannot write."""


class ResourceError(MKRError):
    """The run would not fit in memory or on disk."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was saved and how to go on."""
