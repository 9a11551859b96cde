"""Named sets of hyper-parameters: the paper's, the tuned `recommended` ones, or a preset file.

A preset file is JSON, as `mkr_tf.tune` writes it:

    {"dataset": "music", "settings": {"dim": 64, "lr_rs": 0.01, ...},
     "found_by": "python -m mkr_tf.tune --dataset=music ...", "eval": {...}}

Only "settings" is read: MKRConfig fields and their values, over the paper's settings of the
dataset (for datasets without any, the hand-chosen `SYNTHETIC_SETTINGS`). The recommended
preset of a dataset is the file `presets/<dataset>.json` beside this module; datasets without
one (no tuning was run on them) default to the paper's settings.
"""

import dataclasses
import json
import os
import pathlib
from typing import Any

from mkr_tf import config as mkr_config
from mkr_tf import errors
from mkr_tf import files

PAPER, RECOMMENDED = "paper", "recommended"
RECOMMENDED_DIR = pathlib.Path(__file__).parent / "presets"
# What a preset may not set: the run's identity and protocol, which the command line owns.
_NOT_SETTINGS = ("seed", "train_ratio", "cold_items")


def recommended_path(dataset: str) -> pathlib.Path:
    return RECOMMENDED_DIR / f"{dataset}.json"


def default_preset(dataset: str) -> str:
    """`recommended` where the dataset has a tuned preset, else `paper`."""
    return RECOMMENDED if recommended_path(dataset).is_file() else PAPER


def settings(dataset: str, preset: str | None = None) -> dict[str, Any]:
    """The hyper-parameters `preset` gives `dataset`: "paper" (the paper's, or for other datasets
    the hand-chosen `SYNTHETIC_SETTINGS`), "recommended", a preset file's path, or None (the
    default)."""
    preset = preset or default_preset(dataset)
    paper = dict(mkr_config.PAPER_SETTINGS.get(dataset, mkr_config.SYNTHETIC_SETTINGS))
    if preset == PAPER:
        return paper
    if preset == RECOMMENDED:
        path = recommended_path(dataset)
        if not path.is_file():
            raise errors.MKRError(f"--preset=recommended: dataset {dataset!r} has no recommended "
                                  f"preset (none was tuned); use --preset=paper or a preset file")
        preset = path
    # What a file leaves unset keeps the paper's value.
    return {**paper, **read(preset)}


def read(path: os.PathLike) -> dict[str, Any]:
    """The "settings" of the preset file at `path`, checked against MKRConfig's fields."""
    path = pathlib.Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise errors.MKRError(f"--preset={path}: no such preset file (or say paper or "
                              f"recommended)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise errors.MKRError(f"{path}: not a preset file: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("settings"), dict):
        raise errors.MKRError(f"{path}: not a preset file: it needs a \"settings\" object")
    fields = {field.name for field in dataclasses.fields(mkr_config.MKRConfig)}
    unknown = sorted(set(document["settings"]) - (fields - set(_NOT_SETTINGS)))
    if unknown:
        raise errors.MKRError(f"{path}: unknown setting {unknown[0]!r} in \"settings\"")
    defaults = mkr_config.MKRConfig()
    settings = dict(document["settings"])
    for name, value in settings.items():
        kind = type(getattr(defaults, name))
        # JSON's true is not a number here, nor 1 a bool: "residual": 1 is a typo, not a choice.
        if (not isinstance(value, _ACCEPTED[kind])
                or isinstance(value, bool) != (kind is bool)):
            raise errors.MKRError(f"{path}: setting {name!r} must be {_KIND_NAMES[kind]}, got "
                                  f"{json.dumps(value)}")
        if kind is float:
            # As a flag would give it: tune's choices compare 0 and 0.0 as different values.
            settings[name] = float(value)
    return settings


_ACCEPTED = {bool: bool, int: int, float: (int, float), str: str}
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def write(path: os.PathLike, dataset: str, values: dict[str, Any], **about) -> None:
    """Writes a preset file of `values` for `dataset`, with `about` (found_by, eval, ...) beside
    them, atomically: a reader never sees half a file."""
    files.write_json(path, {"dataset": dataset, "settings": values, **about})
