r"""Prints each user's top-k items from an exported MKR model.

  python -m mkr_tf.recommend --model=saved_models/music --user=3,17,42 --k=10 [--version=2]

Loads `<model>/<version>/` (the newest version unless --version is given) with
tf.saved_model.load alone and calls its `recommend` signature, which ranks the whole catalogue
and leaves out the items each user interacted with in training.

Users are the model's internal indices: data_prep numbers users 0, 1, ... in the order they
first appear in the raw rating file, counting only users with a positive; raw user ids are not
mapped back. Items are shown with their raw item id and KG entity id when the export carries
that map (assets/item_ids.tsv, written for data prepared by data_prep), else as indices only.
"""

import dataclasses
import os
import pathlib
from typing import Any

from absl import flags
import numpy as np
import tensorflow as tf

from mkr_tf import cli
from mkr_tf import export

FLAGS = flags.FLAGS


class RecommendError(ValueError):
    """A request this model cannot answer: unknown user, bad k, missing version."""


@dataclasses.dataclass
class Recommender:
    """A loaded export, its table sizes and its raw item ids (or None)."""
    version_dir: pathlib.Path
    # Kept whole: the signatures read variables that the loaded object owns.
    saved_model: Any
    n_users: int
    n_items: int
    raw_item_ids: list[tuple[str, str]] | None

    def top_k(self, users: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices [len(users), k], scores); -1 pads users with fewer than k unseen items."""
        for user in users:
            if not 0 <= user < self.n_users:
                raise RecommendError(
                    f"unknown user {user}: user indices run from 0 to {self.n_users - 1}")
        if not 1 <= k <= self.n_items:
            raise RecommendError(f"k must be 1 to {self.n_items} (the number of items), got {k}")
        outputs = self.saved_model.signatures[export.RECOMMEND_SIGNATURE](
            user_id=tf.constant(users, tf.int64), k=tf.constant(k, tf.int32))
        return outputs["item_ids"].numpy(), outputs["scores"].numpy()


def load(model_dir: str | os.PathLike, version: int | None = None) -> Recommender:
    """Loads version `version` (default: the newest) of the export folder `model_dir`."""
    model_dir = pathlib.Path(model_dir)
    available = export.versions(model_dir)
    if not available:
        raise RecommendError(f"{model_dir}: no exported versions (integer-named folders) found")
    if version is None:
        version = available[-1]
    elif version not in available:
        raise RecommendError(f"{model_dir}: no version {version}; it has "
                             f"{', '.join(str(v) for v in available)}")
    version_dir = model_dir / str(version)
    loaded = tf.saved_model.load(str(version_dir))
    if export.RECOMMEND_SIGNATURE not in loaded.signatures:
        raise RecommendError(f"{version_dir}: not an mkr_tf export (no "
                             f"{export.RECOMMEND_SIGNATURE!r} signature)")
    raw_item_ids = None
    if hasattr(loaded, "item_ids_tsv"):
        rows = pathlib.Path(loaded.item_ids_tsv.asset_path.numpy().decode()).read_text()
        # Columns: item index, raw item id, raw entity id; the first line is the header.
        raw_item_ids = [tuple(line.split("\t")[1:]) for line in rows.splitlines()[1:]]
    return Recommender(version_dir, loaded, int(loaded.n_users.numpy()),
                       int(loaded.n_items.numpy()), raw_item_ids)


def format_recommendations(recommender: Recommender, users: list[int], k: int) -> str:
    """One table per user: rank, item index, raw item and entity id when known, score."""
    item_ids, scores = recommender.top_k(users, k)
    header = ["rank", "item"]
    if recommender.raw_item_ids is not None:
        header += list(export.ITEM_IDS_COLUMNS[1:])
    header.append("score")
    blocks = []
    for user, user_items, user_scores in zip(users, item_ids, scores):
        found = user_items >= 0
        rows = []
        for rank, (item, score) in enumerate(zip(user_items[found], user_scores[found]), start=1):
            row = [str(rank), str(item)]
            if recommender.raw_item_ids is not None:
                row += list(recommender.raw_item_ids[item])
            rows.append(row + [f"{score:.4f}"])
        title = (f"user {user}: top {len(rows)} of {recommender.n_items} items "
                 f"(training interactions left out)")
        blocks.append("\n".join([title, _table([header, *rows])]))
    return "\n\n".join(blocks)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths))
                     for row in rows)


def _parse_users(values: list[str]) -> list[int]:
    users = []
    for value in values:
        try:
            users.append(int(value))
        except ValueError:
            raise RecommendError(f"user {value!r} is not a user index (an integer)") from None
    return users


def _define_flags() -> None:
    # Defined on demand rather than at import, like the other CLIs, so that importing this
    # module next to them cannot define a flag twice.
    flags.DEFINE_string("model", None, "The model's export folder, e.g. saved_models/music.",
                        required=True)
    flags.DEFINE_list("user", None, "User indices, comma-separated, e.g. 3,17,42.",
                      required=True)
    flags.DEFINE_integer("k", 10, "Items per user.")
    flags.DEFINE_integer("version", None, "Version to load. Default: the newest.")


def _main():
    users = _parse_users(FLAGS.user)
    recommender = load(FLAGS.model, FLAGS.version)
    print(format_recommendations(recommender, users, FLAGS.k))


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.recommend", _main, _define_flags, user_errors=(RecommendError, OSError))


if __name__ == "__main__":
    run()
