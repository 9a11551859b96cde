"""What every command line of mkr_tf and data_prep shares.

One convention for every entry point: each command defines its flags on demand, in the
`define_flags` it hands to `run` (never when imported, so that modules import side by side);
the data and folder flags are spelled once here (`define_data_flags`, `define_folder_flags`,
one `default_folders`), and so are the flags of `MKRConfig`'s fields (`define_config_flags`).
`run` parses the command line, answers `--help` before anything heavy is imported, keeps
TensorFlow's start-up logs quiet, and turns the errors `errors` lists into one line and exit 2.
"""

import dataclasses
import logging as std_logging
import os
import sys
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
from absl import logging

from mkr_tf import config as mkr_config
from mkr_tf import errors

HELP_ARGUMENTS = ("-h", "-?", "--help", "--helpshort", "--helpfull")
# Read by TensorFlow's C++ runtime when it is imported: 3 keeps INFO, WARNING and ERROR lines
# (CPU features, cuInit failures) off stderr; `oneDNN` notices go with TF_ENABLE_ONEDNN_OPTS
# left as it is. What still prints is listed in README (Quick start).
_QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# Under --cache_dir: XLA's compiled executables (`keep_xla_compilations`).
XLA_CACHE_FOLDER = "xla"


def run(name: str, body: Callable[[], None],
        define_flags: Callable[[], None] | None = None) -> None:
    """Defines the command's flags, parses the command line and runs `body`.

    An `errors.MKRError`, an `OSError` or a TensorFlow resource error (a full disk, a failed
    allocation) ends the command with `<name>: error: <message>` on one line of stderr and exit
    code 2, no traceback (a `--verbose` flag, where the command defines one, shows it); any
    other exception is a bug and shows its traceback. Ctrl-C ends it with `<name>: <message>`
    (what was saved, for `errors.Interrupted`) and exit code 130. TensorFlow's start-up lines and routine INFO
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
        if "xla_cache" in flags.FLAGS and flags.FLAGS.xla_cache:
            keep_xla_compilations(os.path.join(folders_from_flags()[1], XLA_CACHE_FOLDER))
        try:
            body()
        except KeyboardInterrupt as interrupt:
            if verbose:
                raise
            print(f"{name}: {str(interrupt) or 'interrupted'}", file=sys.stderr)
            finish(130)
        except Exception as error:  # pylint: disable=broad-except
            if verbose or not isinstance(error, one_line_errors()):
                raise
            print(f"{name}: error: {one_line(error)}", file=sys.stderr)
            finish(2)
        finish()

    def parse_flags(argv):
        # absl's own parser prints two lines and exits 1; a bad flag value is bad input.
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(main, flags_parser=parse_flags)


def finish(code: int = 0) -> None:
    """Ends a command with exit code `code`: at once, when TensorFlow is loaded.

    Python's own shutdown then takes another 1–1.5 s (finalising TensorFlow's modules and
    thread pools) and does nothing an ended command needs: by the time a command succeeds, fails
    with a one-line error or is interrupted, the `with` blocks it left have closed what it wrote
    and removed what it left half-written. So the output is flushed and the process exits here.
    """
    if "tensorflow" in sys.modules:
        logging.flush()
        std_logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # pylint: disable=protected-access
    if code:
        sys.exit(code)


def one_line_errors() -> tuple[type[BaseException], ...]:
    """The errors a command reports in one line: ours, the operating system's, and TensorFlow's
    for exhausted resources, when TensorFlow is loaded (it is imported only on use)."""
    kinds: list[type[BaseException]] = [errors.MKRError, OSError]
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        kinds.append(tensorflow.errors.ResourceExhaustedError)
    return tuple(kinds)


def one_line(error: BaseException) -> str:
    """`error`'s message on one line: TensorFlow's first line, which says what went wrong, or
    our own messages' lines joined (one listing files to place where spans lines)."""
    message = getattr(error, "message", None) if not isinstance(error, errors.MKRError) else None
    if message:
        return message.strip().splitlines()[0]
    lines = (line.strip() for line in str(error).strip().splitlines())
    return " ".join(lines) or type(error).__name__


def default_folders() -> tuple[str, str]:
    """(data folder, cache folder) when no flag names them: $MKR_DATA_DIR, else ~/.mkr_tf/data,
    and ~/.mkr_tf/cache."""
    return (os.environ.get("MKR_DATA_DIR") or os.path.expanduser("~/.mkr_tf/data"),
            os.path.expanduser("~/.mkr_tf/cache"))


def define_folder_flags() -> None:
    """--data_dir and --cache_dir, as every command that reads datasets spells them."""
    flags.DEFINE_string("data_dir", None, "Where datasets live, one folder each; only read. "
                        "Default: $MKR_DATA_DIR, else ~/.mkr_tf/data.")
    flags.DEFINE_string("cache_dir", None, "Where prepared data and downloads are kept. "
                        "Default: ~/.mkr_tf/cache.")


def folders_from_flags() -> tuple[str, str]:
    """(data folder, cache folder) as absolute paths: the flags', else `default_folders`."""
    data_dir, cache_dir = default_folders()
    return (os.path.abspath(os.path.expanduser(flags.FLAGS.data_dir or data_dir)),
            os.path.abspath(os.path.expanduser(flags.FLAGS.cache_dir or cache_dir)))


def define_xla_cache_flag() -> None:
    """--xla_cache, for the commands that train."""
    flags.DEFINE_boolean("xla_cache", True,
                         f"Keep the XLA-compiled epochs of --jit_compile in "
                         f"<cache_dir>/{XLA_CACHE_FOLDER}, so that a later run of the same shapes "
                         f"loads them instead of compiling again (seconds a run). Safe to delete.")


def keep_xla_compilations(folder: str) -> None:
    """Has TensorFlow save the executables XLA compiles to `folder`, and load them from there
    when the same computation is compiled again (its --tf_xla_persistent_cache_directory).

    TensorFlow reads TF_XLA_FLAGS once, before its first XLA work, so this runs before any. A
    cache folder the user already set there is kept, and a path with whitespace, which
    TF_XLA_FLAGS cannot carry, leaves the cache off.
    """
    current = os.environ.get("TF_XLA_FLAGS", "")
    if "--tf_xla_persistent_cache_directory" in current or any(c.isspace() for c in folder):
        return
    os.environ["TF_XLA_FLAGS"] = f"{current} --tf_xla_persistent_cache_directory={folder}".strip()


def define_download_flag() -> None:
    flags.DEFINE_boolean("download", True, "Download missing raw files of movie, book and music; "
                         "--nodownload fails instead and says which files to place where.")


def define_recbole_flags() -> None:
    """The options of preparing raw data, as train, baselines and data_prep spell them."""
    flags.DEFINE_string("recbole_path", None, "With --dataset=recbole: DIR/NAME of RecBole atomic "
                        "files NAME.inter, NAME.kg, NAME.link (in DIR/NAME/ or DIR/).")
    flags.DEFINE_float("rating_threshold", None,
                       "Ratings at or above it are positives when preparing raw data. Default: 4 "
                       "for movie, every rating for book, music and RecBole.")


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
    define_folder_flags()
    define_recbole_flags()
    define_download_flag()


def dataset_name_from_flags() -> str:
    """--dataset, or with --processed_dir and no --dataset, that folder's name."""
    values = flags.FLAGS
    if values.processed_dir and not values["dataset"].present:
        return os.path.basename(os.path.normpath(os.path.abspath(values.processed_dir)))
    return values.dataset


def data_source_from_flags() -> dict[str, Any]:
    """Where the data flags point: what `runs.load_run` needs to rebuild the same data."""
    values = flags.FLAGS
    data_dir, cache_dir = folders_from_flags()
    return {"data_dir": data_dir, "cache_dir": cache_dir,
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
    script's wrapper (no flags).
    """
    # module_help's first line names the module (a file path for `python -m`); the flags follow.
    listings = [flags.FLAGS.module_help(name).strip().partition("\n")[2]
                for name in sorted(flags.FLAGS.flags_by_module_dict())
                if not name.startswith("absl.")]
    return "\n".join([(module.__doc__ or "").strip(), "", "Flags:", *listings])


def _with_presets(field: dataclasses.Field) -> str:
    """The field's help text, then for a setting a preset gives, the paper preset's value."""
    name, meaning = field.name, field.metadata["help"]
    if not field.metadata["preset"] or "Default:" in meaning:
        return meaning
    if name not in mkr_config.SYNTHETIC_SETTINGS:
        return f"{meaning} Default: --preset's (paper: {str(field.default).lower()})."
    paper = dict(mkr_config.PAPER_SETTINGS, synthetic=mkr_config.SYNTHETIC_SETTINGS)
    values = ", ".join(f"{dataset} {settings[name]:g}" for dataset, settings in paper.items())
    return f"{meaning} Default: --preset's (paper: {values}; other datasets: synthetic's)."


_FLAG_DEFINERS = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
                  bool: flags.DEFINE_boolean, str: flags.DEFINE_string}


def define_config_flags(names: Sequence[str] | None = None) -> None:
    """One flag per `MKRConfig` field (or per field in `names`), with the field's help text and
    choices.

    A field that each dataset's preset sets defaults to None, which leaves the preset in force;
    the others default to the field's default. Values are checked by `MKRConfig` itself.
    """
    for field in dataclasses.fields(mkr_config.MKRConfig):
        if names is not None and field.name not in names:
            continue
        if "help" not in field.metadata:
            # A programming error, for the developer adding the field: a traceback, not exit 2.
            raise TypeError(f"MKRConfig.{field.name} has no help text: declare it with "
                            f"config._field, which gives its flag")
        preset = field.metadata["preset"]
        default = None if preset else field.default
        help_text = _with_presets(field)
        if field.metadata["choices"] is not None:
            flags.DEFINE_enum(field.name, default, list(field.metadata["choices"]), help_text)
        else:
            _FLAG_DEFINERS[field.type](field.name, default, help_text)


def define_preset_flag() -> None:
    flags.DEFINE_string("preset", None,
                        "Where the settings of unset flags come from: paper, recommended (tuned "
                        "by mkr_tf.tune on the eval split; book, music and synthetic have one) "
                        "or the path of a preset file (mkr_tf.tune writes one). Default: "
                        "recommended where the dataset has one, else paper.")


def config_from_flags(dataset: str, **overrides) -> mkr_config.MKRConfig:
    """The `MKRConfig` of `dataset`'s preset (--preset, where the command has it) with the
    config flags that are set, then `overrides` for settings that have no value of their own on
    the command line."""
    values = flags.FLAGS
    settings = {field.name: values[field.name].value
                for field in dataclasses.fields(mkr_config.MKRConfig)
                if field.name in values and values[field.name].value is not None}
    preset = values.preset if "preset" in values else None
    return mkr_config.MKRConfig.for_dataset(dataset, preset=preset, **{**overrides, **settings})
