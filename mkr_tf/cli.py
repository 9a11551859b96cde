"""What every mkr_tf command line shares: flag parsing, quiet logs, and user errors as one line."""

import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging

# Errors that bad input, bad flags or missing files raise; anything else is a bug and keeps its
# traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError)


def run(name: str, body: Callable[[], None], define_flags: Callable[[], None] | None = None,
        user_errors: tuple[type[BaseException], ...] = USER_ERRORS) -> None:
    """Defines the command's flags, parses the command line and runs `body`.

    A user error ends the command with `<name>: error: <message>` on stderr and exit code 2, no
    traceback (a `--verbose` flag, where the command defines one, shows it). TensorFlow's routine
    INFO logs are silenced unless `--verbose`.
    """
    if define_flags is not None:
        define_flags()

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        verbose = "verbose" in flags.FLAGS and flags.FLAGS.verbose
        if not verbose:
            logging.set_verbosity(logging.WARNING)
        try:
            body()
        except user_errors as error:
            if verbose:
                raise
            print(f"{name}: error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(main)
