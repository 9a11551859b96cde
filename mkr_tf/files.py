"""Files that appear whole or not at all: every writer of mkr_tf and data_prep goes through here.

A file is written under a temporary name beside its target, `.tmp-<name>` (the name's
suffixes kept, which Keras's `save_weights` insists on), then renamed over the target in one
step. A reader, or a run killed half-way, sees the old file or the new one, never half of one;
a failed write leaves no temporary file behind.
"""

import contextlib
import json
import os
import pathlib
from typing import Any, Iterator

TEMPORARY_PREFIX = ".tmp-"


def temporary_path(path: os.PathLike) -> pathlib.Path:
    """Where `replacing(path)` writes before the rename."""
    path = pathlib.Path(path)
    return path.with_name(f"{TEMPORARY_PREFIX}{path.name}")


@contextlib.contextmanager
def replacing(path: os.PathLike) -> Iterator[pathlib.Path]:
    """Yields the temporary path to write; when the body succeeds, it becomes `path`.

    When the body raises, the temporary file is removed and `path` is left as it was.
    """
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_text(path: os.PathLike, text: str) -> None:
    with replacing(path) as temporary:
        temporary.write_text(text)


def write_json(path: os.PathLike, payload: Any) -> None:
    """`payload` as indented JSON with sorted keys, which diffs well between runs."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
