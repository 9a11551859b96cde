"""A training run's folder: its layout, its one writer, and the finished run read back from it.

    run.json          the run's dataset and settings (`identity`): marks the folder as a run's
    results.json      the figures (`trainer.train`)
    best.weights.h5   the weights of the best-eval epoch
    checkpoints/      the last epochs' checkpoints, to resume from
    logs/             TensorBoard logs (`callbacks`), unless --logdir puts them elsewhere
    evaluation.json   what `mkr_tf.evaluate` measured, when it ran

Each file appears whole or not at all (`mkr_tf.files`). Training refuses a non-empty folder
without run.json (the user's own files could be named results.json), takes an exclusive lock
on the folder for as long as it writes there, and removes checkpoint files that a killed save
left. `--overwrite` removes what a run wrote, and only that, to start afresh.
"""

from __future__ import annotations  # MKR, MKRData in annotations: imported on use

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import pathlib
import shutil
from typing import TYPE_CHECKING, Any, Iterator

from mkr_tf import errors
from mkr_tf import files
from mkr_tf import lazy
from mkr_tf.config import MKRConfig

if TYPE_CHECKING:
    from mkr_tf.model import MKR

# Imported when a run is read back (TensorFlow, pandas), so that --help answers at once.
mkr_data = lazy.load("mkr_tf.data")
mkr_model = lazy.load("mkr_tf.model")

MARKER_FILE = "run.json"
RESULTS_FILE = "results.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
CHECKPOINT_DIR = "checkpoints"
# A checkpoint costs tens of milliseconds of Python whatever the model's size: on small data,
# one after every epoch was a tenth of a whole run. A killed run loses at most this much and an
# epoch.
CHECKPOINT_EVERY_SECONDS = 30.0
LOGS_DIR = "logs"
EVALUATION_FILE = "evaluation.json"
LOCK_FILE = ".lock"
# Everything a training run writes in its folder: what --overwrite may remove.
_RUN_ENTRIES = (MARKER_FILE, RESULTS_FILE, BEST_WEIGHTS_FILE, CHECKPOINT_DIR, LOGS_DIR,
                *(files.temporary_path(name).name
                  for name in (BEST_WEIGHTS_FILE, RESULTS_FILE, MARKER_FILE)))
# Listed in a refusal before "...".
_SHOWN_ENTRIES = 3


def check_checkpoint_every_seconds(seconds: float) -> None:
    if not 0 <= seconds < float("inf"):
        raise errors.ConfigError(
            f"checkpoint_every_seconds must be a finite number >= 0, got {seconds!r}")


def identity(dataset: str, config: dict[str, Any]) -> dict[str, Any]:
    """What run.json records: the settings that make two runs the same run."""
    return {"dataset": dataset, "config": config}


def read_identity(run_dir: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / MARKER_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise errors.RunDirError(f"{run_dir / MARKER_FILE}: unreadable ({error}); is "
                                 f"{run_dir} an mkr_tf.train run folder?") from None


# Settings a run may change between its starts: a run may be continued for more epochs, and how
# its steps are compiled changes only the order of float sums (as mkr_tf.reproduce holds too).
_RESUMABLE_SETTINGS = ("n_epochs", "jit_compile")


def differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """`key <there> there, <now> now, ...` over dataset and settings, _RESUMABLE_SETTINGS
    aside."""
    # A setting added after the run was written has its default there.
    there = {**MKRConfig().to_dict(), **recorded["config"]}
    pairs = {"dataset": (recorded.get("dataset"), wanted["dataset"])}
    pairs.update({key: (there.get(key), value)
                  for key, value in wanted["config"].items() if key not in _RESUMABLE_SETTINGS})
    return ", ".join(f"{key} {there!r} there, {now!r} now"
                     for key, (there, now) in pairs.items() if there != now)


def finished_results(run_dir: os.PathLike, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The results of `run_dir` when it holds this very run (same epochs too), finished."""
    run_dir = pathlib.Path(run_dir)
    recorded = read_identity(run_dir) if run_dir.is_dir() else None
    if (recorded is None or differences(recorded, wanted)
            or recorded["config"].get("n_epochs") != wanted["config"]["n_epochs"]
            or not (run_dir / RESULTS_FILE).is_file()):
        return None
    return json.loads((run_dir / RESULTS_FILE).read_text())


def check_output_folder(path: os.PathLike, what: str) -> None:
    """Refuses, before any work, a folder that cannot be created or written."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise errors.RunDirError(f"{what} {path}: is a file, not a folder")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise errors.RunDirError(f"{what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise errors.RunDirError(f"{what} {path}: {ancestor} is not writable")


@contextlib.contextmanager
def claimed(run_dir: pathlib.Path, wanted: dict[str, Any],
            overwrite: bool = False) -> Iterator[None]:
    """Holds `run_dir` for this process while the body writes the run `wanted` into it.

    Refuses a non-empty folder that is not a run folder, a folder that another process holds,
    and, unless `overwrite`, a run of other settings. With `overwrite`, what the earlier run
    wrote is removed first. The lock is released when the body ends, however it ends. A run
    that fails before its first checkpoint leaves nothing of itself: what it wrote is removed,
    and the folder too if this call created it (its parents stay).
    """
    check_output_folder(run_dir, "--run_dir")
    created = not run_dir.exists()
    if run_dir.is_dir():
        _refuse_foreign(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(run_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as error:
        raise errors.RunDirError(f"--run_dir {run_dir}: cannot create: "
                                 f"{error.strerror.lower()}") from None
    held_by_other = errors.RunDirError(
        f"{run_dir}: another mkr_tf.train is writing this run folder; wait for it to end or "
        f"choose another --run_dir")
    owned = False
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise held_by_other from None
        if not _is_the_lock_file(lock, run_dir):
            # Locked after another run removed its folder: a new process may hold a new one.
            raise held_by_other
        recorded = read_identity(run_dir)
        if recorded is not None and overwrite:
            for name in _RUN_ENTRIES:
                _remove(run_dir / name)
        elif recorded is not None and differences(recorded, wanted):
            raise errors.RunDirError(
                f"{run_dir} holds a run with other settings ({differences(recorded, wanted)}); "
                f"resume it with its settings, start it afresh with --overwrite, or choose "
                f"another --run_dir")
        owned = True
        # A save killed half-way leaves its temporary folder; no one else writes here now.
        for stale in (run_dir / CHECKPOINT_DIR).glob("*_temp"):
            _remove(stale)
        with writing(run_dir, MARKER_FILE):
            files.write_json(run_dir / MARKER_FILE, wanted)
        yield
    except BaseException:
        if owned:
            # The run's own error is the one to report, whatever the clean-up meets.
            with contextlib.suppress(OSError):
                _remove_if_nothing_to_resume(run_dir, created)
        raise
    finally:
        os.close(lock)


def _is_the_lock_file(lock: int, run_dir: pathlib.Path) -> bool:
    """Whether the open file `lock` is still `run_dir`'s lock file, not one removed since."""
    try:
        now = os.stat(run_dir / LOCK_FILE)
    except FileNotFoundError:
        return False
    held = os.fstat(lock)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _remove_if_nothing_to_resume(run_dir: pathlib.Path, created: bool) -> None:
    """After a failed run: what it wrote goes, unless a checkpoint lets it be resumed.

    A run folder holding only run.json would otherwise be taken for a run started and kept.
    run.json goes last, so that a clean-up cut short leaves a run folder, not foreign files.
    """
    checkpoints = run_dir / CHECKPOINT_DIR
    if (run_dir / RESULTS_FILE).exists() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        return
    for name in sorted(_RUN_ENTRIES, key=lambda name: name == MARKER_FILE):
        _remove(run_dir / name)
    if created and [path.name for path in run_dir.iterdir()] == [LOCK_FILE]:
        shutil.rmtree(run_dir)


# Write failures that are the machine's, not a bug: a full disk or quota, a file-size limit, a
# read-only or vanished folder, permissions.
_WRITE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.ENOENT, errno.EIO)


@contextlib.contextmanager
def writing(folder: os.PathLike, what: str, partial: tuple[os.PathLike, ...] = (),
            then: str = "") -> Iterator[None]:
    """Turns a failed write of `what` into `folder` into one RunDirError line.

    TensorFlow reports a full disk as ResourceExhaustedError, HDF5 and Python as OSError; both
    become `<folder>: cannot write <what>: <reason>` plus `then` (what is kept, what to do).
    The `partial` files or folders that the write may have left are removed first.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
        yield
    except (OSError, tf.errors.ResourceExhaustedError, tf.errors.FailedPreconditionError,
            tf.errors.PermissionDeniedError, tf.errors.UnknownError, tf.errors.NotFoundError,
            tf.errors.DataLossError) as error:
        if isinstance(error, OSError) and error.errno not in _WRITE_FAULTS and not _says_full(error):
            raise
        for path in partial:
            with contextlib.suppress(OSError):
                _remove(pathlib.Path(path))
        reason = "no space left on device" if _says_full(error) else _reason(error)
        raise errors.RunDirError(f"{folder}: cannot write {what}: {reason}{then}") from None


def _says_full(error: BaseException) -> bool:
    text = str(error)
    return (getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or "No space left" in text or "Disk quota" in text)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    # TensorFlow's messages can span lines; the first says what went wrong.
    message = getattr(error, "message", None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def _refuse_foreign(run_dir: pathlib.Path) -> None:
    entries = sorted(set(os.listdir(run_dir)) - {LOCK_FILE})
    if entries and MARKER_FILE not in entries:
        shown = ", ".join(entries[:_SHOWN_ENTRIES]) + (", ..." if len(entries) > _SHOWN_ENTRIES else "")
        raise errors.RunDirError(
            f"--run_dir {run_dir}: not empty ({shown}) and not an mkr_tf.train run folder (no "
            f"{MARKER_FILE}); training would overwrite those files, so choose a new or empty folder")


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclasses.dataclass
class Run:
    """A trained run: what `trainer.train` returns, and what `load_run` reads back."""
    run_dir: pathlib.Path
    results: dict[str, Any]
    config: MKRConfig
    data: mkr_data.MKRData
    model: MKR


# The settings that decide the split a run trains and is evaluated on.
PROTOCOL_SETTINGS = ("seed", "train_ratio", "cold_items")


def protocol_data(config: MKRConfig, data: mkr_data.MKRData) -> mkr_data.MKRData:
    """The split a run of `config` trains and evaluates on: its cold items and train ratio."""
    return data.for_protocol(config.cold_items, config.train_ratio, config.seed)


def load_run(run_dir: os.PathLike, log=lambda _: None) -> Run:
    """Rebuilds the run's data split (same dataset, options, seed and protocol) and its
    best-eval model."""
    run_dir = pathlib.Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    weights_path = run_dir / BEST_WEIGHTS_FILE
    for path in (results_path, weights_path):
        if not path.is_file():
            raise errors.DataError(f"{path}: not found; is {run_dir} a finished mkr_tf.train run?")
    results = json.loads(results_path.read_text())
    config = MKRConfig(**results["config"])
    source = results["data_source"]
    data = protocol_data(config, mkr_data.load_dataset(
        results["dataset"], source.get("data_dir", ""), source.get("cache_dir", ""), config.seed,
        log=log, processed_dir=source.get("processed_dir"),
        allow_sparse_ids=source.get("allow_sparse_ids", False),
        **source.get("prepare_options", {})))
    model = mkr_model.build_model(config, data)
    model.load_weights(weights_path)
    return Run(run_dir, results, config, data, model)
