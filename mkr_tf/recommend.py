r"""Prints each user's top-k items from an exported MKR model.

  python -m mkr_tf.recommend --model=saved_models/music --user=2,7 --k=10 [--version=2]
  python -m mkr_tf.recommend --model=saved_models/music --user_index=0,5 --k=10

Loads `<model>/<version>/` (the newest version unless --version is given) with
tf.saved_model.load alone and calls its `recommend` signature, which ranks the whole catalogue
and leaves out the items each user interacted with in training.

--user takes the users' own ids, as the raw rating file spells them (for music, Last.FM's
userID), through the export's user map (assets/user_ids.tsv, written for data prepared by
data_prep); for data given in processed form only, which has no map, the ids of
ratings_final.txt are the ids. --user_index takes the model's internal indices. Items are shown
with their raw item id and KG entity id when the export carries that map (assets/item_ids.tsv),
and their names when the raw data had them, else as indices only.
"""

import dataclasses
import os
import pathlib
from typing import Any

from absl import flags
import numpy as np

from mkr_tf import cli
from mkr_tf import errors
from mkr_tf import export
from mkr_tf import lazy

# Imported when a model is loaded, so that --help answers at once.
tf = lazy.load("tensorflow")

FLAGS = flags.FLAGS


class RecommendError(errors.MKRError, ValueError):
    """A request this model cannot answer: unknown user, bad k, missing version."""


@dataclasses.dataclass
class Recommender:
    """A loaded export, its table sizes and its raw item and user ids (or None)."""
    version_dir: pathlib.Path
    # Kept whole: the signatures read variables that the loaded object owns.
    saved_model: Any
    n_users: int
    n_items: int
    # (item id, entity id[, name]) of each item index.
    raw_item_ids: list[tuple[str, ...]] | None
    raw_user_ids: list[str] | None = None

    def user_indices(self, raw_ids: list[str]) -> list[int]:
        """The index of each raw user id; without a user map, ids are indices."""
        if self.raw_user_ids is None:
            return _parse_indices(raw_ids)
        index_of = {raw_id: index for index, raw_id in enumerate(self.raw_user_ids)}
        for raw_id in raw_ids:
            if raw_id not in index_of:
                raise RecommendError(
                    f"unknown user {raw_id!r}: not among the {self.n_users:,} users of "
                    f"{self.version_dir}'s training data (--user_index takes internal indices)")
        return [index_of[raw_id] for raw_id in raw_ids]

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
    # Columns: item index, raw item id, raw entity id / user index, raw user id.
    raw_item_ids = _read_asset(loaded, "item_ids_tsv")
    raw_user_ids = _read_asset(loaded, "user_ids_tsv")
    return Recommender(version_dir, loaded, int(loaded.n_users.numpy()),
                       int(loaded.n_items.numpy()), raw_item_ids,
                       None if raw_user_ids is None else [row[0] for row in raw_user_ids])


def _read_asset(loaded, name: str) -> list[tuple[str, ...]] | None:
    """The rows of an id-map asset without their index column and header, or None if absent."""
    if not hasattr(loaded, name):
        return None
    text = pathlib.Path(getattr(loaded, name).asset_path.numpy().decode()).read_text()
    return [tuple(line.split("\t")[1:]) for line in text.splitlines()[1:]]


def format_recommendations(recommender: Recommender, users: list[int], k: int) -> str:
    """One table per user index: rank, item index, raw item and entity id when known, score."""
    item_ids, scores = recommender.top_k(users, k)
    header = ["rank", "item"]
    if recommender.raw_item_ids is not None:
        header += list(export.ITEM_IDS_COLUMNS[1:])
        if len(recommender.raw_item_ids[0]) > len(export.ITEM_IDS_COLUMNS) - 1:
            header.append(export.ITEM_NAME_COLUMN)
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
        name = (f"user {user}" if recommender.raw_user_ids is None
                else f"user {recommender.raw_user_ids[user]} (index {user})")
        title = f"{name}: top {len(rows)} of {recommender.n_items} items (training interactions left out)"
        blocks.append("\n".join([title, _table([header, *rows])]))
    return "\n\n".join(blocks)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths))
                     for row in rows)


def _parse_indices(values: list[str]) -> list[int]:
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
    flags.DEFINE_list("user", None,
                      "Users by their own ids, comma-separated, as the raw rating file spells "
                      "them (music: Last.FM userID), e.g. 2,7.")
    flags.DEFINE_list("user_index", None,
                      "Users by the model's internal indices, comma-separated, e.g. 0,5.")
    flags.DEFINE_integer("k", 10, "Items per user.")
    flags.DEFINE_integer("version", None, "Version to load. Default: the newest.")


def _main():
    if (FLAGS.user is None) == (FLAGS.user_index is None):
        raise RecommendError("give the users with exactly one of --user (their own ids) or "
                             "--user_index (the model's indices)")
    recommender = load(FLAGS.model, FLAGS.version)
    users = (_parse_indices(FLAGS.user_index) if FLAGS.user_index is not None
             else recommender.user_indices(FLAGS.user))
    print(format_recommendations(recommender, users, FLAGS.k))


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.recommend", _main, _define_flags)


if __name__ == "__main__":
    run()
