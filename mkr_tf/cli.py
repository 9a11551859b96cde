"""What every mkr_tf command line shares: flag parsing, `--help`, quiet logs, user errors as one line."""

import os
import sys
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging

from mkr_tf import errors

# Errors that bad input, bad flags or missing files raise; anything else is a bug and keeps its
# traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError)
HELP_ARGUMENTS = ("-h", "-?", "--help", "--helpshort", "--helpfull")
# Read by TensorFlow's C++ runtime when it is imported: 3 keeps INFO, WARNING and ERROR lines
# (CPU features, cuInit failures) off stderr; `oneDNN` notices go with TF_ENABLE_ONEDNN_OPTS
# left as it is. What still prints is listed in README (Quick start).
_QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def run(name: str, body: Callable[[], None], define_flags: Callable[[], None] | None = None,
        user_errors: tuple[type[BaseException], ...] = USER_ERRORS) -> None:
    """Defines the command's flags, parses the command line and runs `body`.

    A user error (one of `user_errors` or an `errors.MKRError`) ends the command with
    `<name>: error: <message>` on stderr and exit code 2, no traceback (a `--verbose` flag, where
    the command defines one, shows it). Ctrl-C ends it with `<name>: <message>` (what was saved,
    for `errors.Interrupted`) and exit code 130. TensorFlow's start-up lines and routine INFO
    logs are silenced unless `--verbose`; for that the command must not import TensorFlow before
    `body` runs (see `mkr_tf.lazy`). `--help` prints the command's docstring and flags and exits
    0, before anything heavy is imported.
    """
    if define_flags is not None:
        define_flags()
    if _asks_for_help(sys.argv[1:]):
        print(command_help(sys.modules[body.__module__]))
        sys.exit(0)

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        verbose = "verbose" in flags.FLAGS and flags.FLAGS.verbose
        if not verbose:
            for variable, value in _QUIET_TENSORFLOW.items():
                os.environ.setdefault(variable, value)
            logging.set_verbosity(logging.WARNING)
        try:
            body()
        except (*user_errors, errors.MKRError) as error:
            if verbose:
                raise
            print(f"{name}: error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:
            if verbose:
                raise
            print(f"{name}: {str(interrupt) or 'interrupted'}", file=sys.stderr)
            sys.exit(130)

    app.run(main)


def default_data_dir() -> str:
    return os.environ.get("MKR_DATA_DIR") or os.path.expanduser("~/.mkr_tf/data")


def default_cache_dir() -> str:
    return os.path.expanduser("~/.mkr_tf/cache")


def define_data_flags() -> None:
    """The flags that say which data a command reads: train and baselines share them, so that
    the same flags give both the same split."""
    from mkr_tf import data as mkr_data  # pylint: disable=import-outside-toplevel
    flags.DEFINE_string("dataset", "synthetic",
                        f"One of {', '.join(mkr_data.KNOWN_DATASETS)}, or the name of a folder of "
                        f"processed files under --data_dir.")
    flags.DEFINE_string("processed_dir", None,
                        "A folder of processed files (ratings_final.txt, kg_final.txt) anywhere, "
                        "read as it is; the run takes the folder's name unless --dataset names it.")
    flags.DEFINE_boolean("allow_sparse_ids", False,
                         "Accept ids so far apart that a table would be more than 100 times (and "
                         "1M rows) larger than the ids it holds.")
    flags.DEFINE_string("data_dir", None, "Where datasets live, one folder each. Default: "
                        "$MKR_DATA_DIR, else ~/.mkr_tf/data.")
    flags.DEFINE_string("cache_dir", None, "Where prepared data is cached. Default: ~/.mkr_tf/cache.")
    flags.DEFINE_string("recbole_path", None, "With --dataset=recbole: DIR/NAME of RecBole atomic "
                        "files NAME.inter, NAME.kg, NAME.link.")
    flags.DEFINE_float("rating_threshold", None,
                       "Ratings at or above it are positives when preparing raw data. Default: 4 "
                       "for movie, every rating for book, music and RecBole.")
    flags.DEFINE_boolean("download", True, "Download missing raw files of movie, book and music.")


def dataset_name_from_flags() -> str:
    """--dataset, or with --processed_dir and no --dataset, that folder's name."""
    values = flags.FLAGS
    if values.processed_dir and not values["dataset"].present:
        return os.path.basename(os.path.normpath(os.path.abspath(values.processed_dir)))
    return values.dataset


def data_source_from_flags() -> dict[str, Any]:
    """Where the data flags point: what `runs.load_run` needs to rebuild the same data."""
    values = flags.FLAGS
    return {"data_dir": os.path.abspath(values.data_dir or default_data_dir()),
            "cache_dir": os.path.abspath(values.cache_dir or default_cache_dir()),
            "processed_dir": values.processed_dir and os.path.abspath(values.processed_dir),
            "allow_sparse_ids": values.allow_sparse_ids,
            "prepare_options": dict(recbole_path=values.recbole_path,
                                    rating_threshold=values.rating_threshold,
                                    download=values.download)}


def load_data_from_flags(seed: int, log: Callable[[str], None] = print):
    """The dataset the data flags name, split by `seed`."""
    from mkr_tf import data as mkr_data  # pylint: disable=import-outside-toplevel
    source = data_source_from_flags()
    return mkr_data.load_dataset(dataset_name_from_flags(), source["data_dir"],
                                 source["cache_dir"], seed, log=log,
                                 processed_dir=source["processed_dir"],
                                 allow_sparse_ids=source["allow_sparse_ids"],
                                 **source["prepare_options"])


def _asks_for_help(arguments: list[str]) -> bool:
    # Arguments after "--" are not flags.
    flag_arguments = arguments[:arguments.index("--")] if "--" in arguments else arguments
    return any(argument in HELP_ARGUMENTS for argument in flag_arguments)


def command_help(module) -> str:
    """`module`'s docstring, then the flags of every module but absl's own, with their defaults.

    absl's own `--help` lists only the flags of `__main__`, which is an installed console
    script's wrapper (no flags) or, for `python -m mkr_tf.synthetic`, a module that defines none.
    """
    # module_help's first line names the module (a file path for `python -m`); the flags follow.
    listings = [flags.FLAGS.module_help(name).strip().partition("\n")[2]
                for name in sorted(flags.FLAGS.flags_by_module_dict())
                if not name.startswith("absl.")]
    return "\n".join([(module.__doc__ or "").strip(), "", "Flags:", *listings])
