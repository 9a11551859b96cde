"""Staging folders: an output is written whole in one, then renamed into place.

The writer holds an exclusive lock (flock) on its staging folder while it writes, so a staging
folder that nobody holds is what a killed writer left behind, and the next writer removes it.
"""

import contextlib
import fcntl
import os
import pathlib
import shutil
import tempfile
from typing import Iterator


@contextlib.contextmanager
def staging_folder(parent: pathlib.Path, prefix: str) -> Iterator[pathlib.Path]:
    """A new folder `<parent>/<prefix><random>`, locked while the body runs, then removed
    unless the body renamed it into place. Stale ones of the same prefix are removed first."""
    remove_stale(parent, prefix)
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o755)  # mkdtemp makes it private; outputs are meant to be shared.
    lock = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


def remove_stale(parent: pathlib.Path, prefix: str) -> list[pathlib.Path]:
    """Removes the folders `<parent>/<prefix>*` that no live writer holds; returns them."""
    removed = []
    for path in sorted(parent.glob(f"{prefix}*")) if parent.is_dir() else []:
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            lock = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # A writer is at work in it.
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(lock)
    return removed
