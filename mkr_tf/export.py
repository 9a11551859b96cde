r"""Exports a trained MKR model as a SavedModel for TF Serving.

  python -m mkr_tf.export --run_dir=runs/music/20250101-120000 [--export_dir=saved_models/music]

Exports go to `<export_dir>/<version>/`, TF Serving's layout, each one taking the highest version
there plus one; exporting the model that the newest version already serves adds none. The SavedModel has three signatures (README's Serving section gives the details):

  serving_default  user_id [N] int64, item_id [N] int64    -> probability [N] float32
  recommend        user_id [N] int64, k [] int32             -> item_ids [N, k] int64,
                                                                scores [N, k] float32
  kg_score         head, relation, tail [N] int64           -> score [N] float32

It carries all it needs: the weights the signatures read, every item's vector after the
cross&compress units, each user's training interactions (which `recommend` leaves out), the
table sizes and, when the run's data came through data_prep, the raw item and entity id of
every item (assets/item_ids.tsv) and the raw id of every user (assets/user_ids.tsv).
"""

from __future__ import annotations  # tf, MKR and MKRData in annotations are not imported

import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING, Callable, Sequence

from absl import flags
import numpy as np

from data_prep import staging as staging_lib
from mkr_tf import cli
from mkr_tf import errors
from mkr_tf import lazy
from mkr_tf import runs

if TYPE_CHECKING:  # only annotations: mkr_tf.data loads pandas, mkr_tf.model TensorFlow
    from mkr_tf import data as mkr_data
    from mkr_tf.model import MKR

# TensorFlow's, imported when an export starts, so that --help answers at once.
tf = lazy.load("tensorflow")
ranking = lazy.load("mkr_tf.ranking")

RECOMMEND_SIGNATURE = "recommend"
KG_SCORE_SIGNATURE = "kg_score"
SIGNATURES = ("serving_default", RECOMMEND_SIGNATURE, KG_SCORE_SIGNATURE)
ITEM_IDS_ASSET = "item_ids.tsv"
ITEM_IDS_COLUMNS = ("item", "item_id", "entity_id")
ITEM_NAME_COLUMN = "name"  # a fourth column of item_ids.tsv, when the raw data names items
USER_IDS_ASSET = "user_ids.tsv"
USER_IDS_COLUMNS = ("user", "user_id")
# Beside saved_model.pb (TF Serving reads only the SavedModel): what the version was made from.
EXPORT_INFO_FILE = "mkr_export.json"
_STAGING_PREFIX = ".tmp-"
# How many out-of-range ids an error message lists.
_SHOWN_BAD_IDS = 10

FLAGS = flags.FLAGS


def versions(export_base: str | os.PathLike) -> list[int]:
    """The versions under `export_base`, ascending: its integer-named folders, as TF Serving
    sees them."""
    export_base = pathlib.Path(export_base)
    if not export_base.is_dir():
        return []
    return sorted(int(path.name) for path in export_base.iterdir()
                  if path.is_dir() and path.name.isdigit())


def export_model(model: MKR, data: mkr_data.MKRData, export_base: str | os.PathLike, *,
                 item_ids: Sequence[tuple[object, object]] | None = None,
                 user_ids: Sequence[object] | None = None,
                 item_names: Sequence[str | None] | None = None,
                 log: Callable[[str], None] = print,
                 prepared: Serving | None = None) -> pathlib.Path:
    """Writes `model` as the next version under `export_base`, whole or not at all.

    When the newest version already serves the same model (same weights, architecture, training
    interactions and id maps, by the fingerprint in its mkr_export.json), no version is added:
    rerunning a deterministic training or exporting a run twice returns that version.

    Args:
        model: the MKR model to serve.
        data: the data it was trained on; `recommend` leaves out each user's train interactions.
        export_base: the model's folder in TF Serving's layout, e.g. saved_models/music.
        item_ids: the raw (item id, entity id) of each item index, in index order, or None
            when unknown; it becomes assets/item_ids.tsv.
        user_ids: the raw id of each user index, in index order, or None when unknown; it
            becomes assets/user_ids.tsv.
        item_names: the name of each item index (None where unknown), or None when the raw
            data names no item; with `item_ids`, a `name` column of item_ids.tsv.
        log: callable taking one message string.
        prepared: `prepare(model, data.train)`, made ahead (while the model trained) so that
            its graphs are traced already; None prepares it now.

    Returns:
        The new version's folder, `<export_base>/<version>`, or the newest existing one when
        it serves the same model.
    """
    if item_ids is not None and len(item_ids) != model.n_items:
        raise errors.DataError(f"item_ids lists {len(item_ids)} items, the model has {model.n_items}")
    if user_ids is not None and len(user_ids) != model.n_users:
        raise errors.DataError(f"user_ids lists {len(user_ids)} users, the model has {model.n_users}")
    if prepared is not None and (prepared.model is not model
                                 or not np.array_equal(prepared.train_ratings, data.train)):
        raise ValueError("`prepared` was made for another model or other training data")
    export_base = pathlib.Path(export_base)
    runs.check_output_folder(export_base, "--export_dir")
    # Sampled negatives are random never-rated items, not interactions: only positives are a
    # user's history.
    train_positives = data.train[data.train[:, 2] == 1]
    fingerprint = _fingerprint(model, train_positives, [item_ids, item_names], user_ids)
    newest = max(versions(export_base), default=None)
    if newest is not None and _export_info(export_base / str(newest)).get(
            "fingerprint") == fingerprint:
        log(f"{export_base / str(newest)} already serves this model (same weights and data); "
            f"no new version")
        return export_base / str(newest)
    # TF Serving only loads integer-named folders, so it never sees the staging folder; being
    # inside export_base keeps the final rename on one file system, hence atomic. A killed
    # export's staging folder is removed by the next export.
    with runs.writing(export_base, "the export"):
        export_base.mkdir(parents=True, exist_ok=True)
        with staging_lib.staging_folder(export_base, _STAGING_PREFIX) as staging, \
                tempfile.TemporaryDirectory() as asset_dir:
            # Attributes item_ids_tsv and user_ids_tsv: mkr_tf.recommend finds the maps by
            # these names.
            assets = {}
            if item_ids is not None:
                assets["item_ids_tsv"] = pathlib.Path(asset_dir) / ITEM_IDS_ASSET
                if item_names is None:
                    _write_table(assets["item_ids_tsv"], ITEM_IDS_COLUMNS, item_ids)
                else:
                    _write_table(assets["item_ids_tsv"], (*ITEM_IDS_COLUMNS, ITEM_NAME_COLUMN),
                                 [(*ids, "" if name is None else name)
                                  for ids, name in zip(item_ids, item_names)])
            if user_ids is not None:
                assets["user_ids_tsv"] = pathlib.Path(asset_dir) / USER_IDS_ASSET
                _write_table(assets["user_ids_tsv"], USER_IDS_COLUMNS,
                             [(user_id,) for user_id in user_ids])
            serving = prepared or prepare(model, data.train)
            serving.set_item_vectors()
            for name, path in assets.items():
                setattr(serving.module, name, tf.saved_model.Asset(str(path)))
            tf.saved_model.save(serving.module, str(staging), signatures=serving.signatures)
            (staging / EXPORT_INFO_FILE).write_text(
                json.dumps({"fingerprint": fingerprint}, indent=2) + "\n")
            version_dir = _publish(staging, export_base)
    log(f"exported {version_dir} (signatures {', '.join(SIGNATURES)})")
    return version_dir


def export_run(run_dir: str | os.PathLike, export_base: str | os.PathLike,
               log: Callable[[str], None] = print) -> pathlib.Path:
    """Exports the best-eval model of a finished `mkr_tf.train` run; see `export_model`."""
    return export_trained(runs.load_run(run_dir), export_base, log)


def export_trained(run: runs.Run, export_base: str | os.PathLike,
                   log: Callable[[str], None] = print,
                   prepared: Serving | None = None) -> pathlib.Path:
    """Exports `run`'s model, with its data's id maps; see `export_model`."""
    return export_model(run.model, run.data, export_base, item_ids=run.data.item_ids,
                        user_ids=run.data.user_ids, item_names=run.data.item_names, log=log,
                        prepared=prepared)


def _write_table(path: pathlib.Path, columns: Sequence[str],
                 rows: Sequence[tuple[object, ...]]) -> None:
    """A TSV asset: a header, then the index of each row followed by its raw ids."""
    lines = ["\t".join(columns)]
    lines += ["\t".join(map(str, (index, *row))) for index, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def _fingerprint(model: MKR, train_positives: np.ndarray, item_ids, user_ids) -> str:
    """sha256 of everything an export serves: weights, architecture, history, neighbours, id
    maps."""
    # Not the name: each model built in a process gets a new one (mkr, mkr_1, ...).
    architecture = {key: value for key, value in model.get_config().items() if key != "name"}
    digest = hashlib.sha256(json.dumps([architecture, item_ids, user_ids], default=str).encode())
    for weight in model.trainable_weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    # The history follows from the training positives, the neighbours from the KG, which is not
    # among them.
    if model.item_neighbours is not None:
        digest.update(np.ascontiguousarray(model.item_neighbours.numpy()).tobytes())
    digest.update(np.ascontiguousarray(train_positives).tobytes())
    return digest.hexdigest()


def _export_info(version_dir: pathlib.Path) -> dict:
    try:
        return json.loads((version_dir / EXPORT_INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}  # made by an older version of this module, or by hand


def _publish(staging: pathlib.Path, export_base: pathlib.Path) -> pathlib.Path:
    """Renames `staging` to the next version, taking the one after if a concurrent export won."""
    while True:
        version_dir = export_base / str(max(versions(export_base), default=0) + 1)
        try:
            os.rename(staging, version_dir)
            return version_dir
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


def _checked_ids(ids: tf.Tensor, size: int, name: str) -> tf.Tensor:
    """`ids`, once an assert that each lies in [0, size) has passed.

    An out-of-range id must fail the request with a message naming it (TF Serving answers
    InvalidArgument with HTTP 400): tf.gather's own error on CPU names no input, and on GPU
    it silently gathers zeros.
    """
    in_range = tf.logical_and(ids >= 0, ids < size)
    check = tf.debugging.Assert(
        tf.reduce_all(in_range),
        [f"{name} out of range: valid ids are 0 to {size - 1}; got",
         tf.boolean_mask(ids, tf.logical_not(in_range))],
        summarize=_SHOWN_BAD_IDS)
    with tf.control_dependencies([check]):
        return tf.identity(ids)


def _checked_same_length(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
    """`inputs`, once an assert that they all have the same length has passed.

    TensorFlow would broadcast a length-1 input against the others (a client's bug answered
    instead of refused) and fail on other mismatches with an internal shape error.
    """
    names = list(inputs)
    lengths = [tf.size(inputs[name]) for name in names]
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(tf.stack(lengths), lengths[0])),
        [f"{', '.join(names)} must have the same length; got lengths", *lengths],
        summarize=len(names))
    with tf.control_dependencies([check]):
        return {name: tf.identity(value) for name, value in inputs.items()}


def _checked_k(k: tf.Tensor, n_items: int) -> tf.Tensor:
    check = tf.debugging.Assert(
        tf.logical_and(k >= 1, k <= n_items),
        [f"k out of range: it must be 1 to {n_items}, the number of items; got", k])
    with tf.control_dependencies([check]):
        return tf.identity(k)


@dataclasses.dataclass
class Serving:
    """What an export saves of `model`: `module`, and its `signatures`, traced."""
    model: MKR
    train_ratings: np.ndarray
    module: tf.Module
    signatures: dict[str, Callable]

    def set_item_vectors(self) -> None:
        """Gives the module the item vectors of the model's weights as they are now."""
        self.module.item_vectors.assign(self.model.item_and_head_vectors(
            tf.range(self.model.n_items, dtype=tf.int64))[0])


def prepare(model: MKR, train_ratings: np.ndarray) -> Serving:
    """The object an export of `model` saves, and its signatures, which call `model`'s own
    forward pass, traced (the export's larger part on small data). Their graphs read the
    model's variables, not their values: prepared in a thread while the model trains, they
    serve the trained weights (`Serving.set_item_vectors` refreshes the one table computed
    from them).

    The module tracks the model's layers, not the model: that saves their weights but not the
    optimizers' slots, which would triple the export. The functions capture the model itself.
    Assets are attached by `export_model`.
    """
    n_users, n_items = model.n_users, model.n_items
    module = tf.Module(name="mkr_serving")
    module.layers = list(model.layers)
    # The users' histories and the items' neighbours are the model's own weights, not a layer's.
    module.user_history = model.user_history
    module.item_neighbours = model.item_neighbours
    # Table sizes, for clients that check ids before sending them (mkr_tf.recommend does).
    for name in ("n_users", "n_items", "n_entities", "n_relations"):
        setattr(module, name, tf.Variable(getattr(model, name), dtype=tf.int64, trainable=False,
                                          name=name))
    # An item's vector v does not depend on the user, so the catalogue's tower is run once, here.
    # Filled by `Serving.set_item_vectors`: read now, from a thread, the tables could be
    # mid-epoch.
    module.item_vectors = tf.Variable(tf.zeros([n_items, model.item_vector_width]),
                                      trainable=False, name="item_vectors")
    # Sampled negatives are random never-rated items, not interactions: only positives are a
    # user's history, so only they are left out.
    module.ranker = ranking.CatalogueRanker(train_ratings, n_users, n_items, "train_positives")
    def ids(name):
        return tf.TensorSpec([None], tf.int64, name=name)

    # autograph=False: these bodies have no Python control flow on tensors, and autograph's
    # source conversion was most of the export's time.
    @tf.function(input_signature=[ids("user_id"), ids("item_id")], autograph=False)
    def predict(user_id, item_id):
        user_id, item_id = _checked_same_length(user_id=user_id, item_id=item_id).values()
        user_id = _checked_ids(user_id, n_users, "user_id")
        item_id = _checked_ids(item_id, n_items, "item_id")
        return {"probability": model({"user": user_id, "item": item_id})}

    @tf.function(input_signature=[ids("user_id"), tf.TensorSpec([], tf.int32, name="k")],
                 autograph=False)
    def recommend(user_id, k):
        user_id = _checked_ids(user_id, n_users, "user_id")
        k = _checked_k(k, n_items)
        logits = model.catalogue_logits(model.user_vectors(user_id), module.item_vectors)
        top_items, top_logits = module.ranker.top_k(user_id, logits, k)
        # A user who has seen all but fewer than k items gets -1 (score 0) in the spare places.
        return {"item_ids": top_items,
                "scores": tf.where(top_items >= 0, tf.sigmoid(top_logits), 0.0)}

    @tf.function(input_signature=[ids("head"), ids("relation"), ids("tail")], autograph=False)
    def kg_score(head, relation, tail):
        head, relation, tail = _checked_same_length(
            head=head, relation=relation, tail=tail).values()
        # Heads are items: the KG keeps only triples whose head is one (mkr_tf.data), and the
        # paper's KGE task passes them through the item's cross&compress units.
        head = _checked_ids(head, n_items, "head")
        relation = _checked_ids(relation, model.n_relations, "relation")
        tail = _checked_ids(tail, model.n_entities, "tail")
        return {"score": model.kge_score(head, relation, tail)}

    # Concrete functions: saving a tf.function would trace it again, in the save's context.
    return Serving(model, train_ratings, module, {
        name: function.get_concrete_function() for name, function in (
            ("serving_default", predict), (RECOMMEND_SIGNATURE, recommend),
            (KG_SCORE_SIGNATURE, kg_score))})


def _define_flags() -> None:
    # Defined on demand rather than at import: mkr_tf.train imports this module for export_model
    # and has --run_dir and --verbose flags of its own.
    flags.DEFINE_string("run_dir", None, "A finished mkr_tf.train run folder.", required=True)
    flags.DEFINE_string("export_dir", None,
                        "The model's folder; the export becomes its next version. Default: "
                        "saved_models/<the run's dataset>.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of errors.")


def _main():
    run = runs.load_run(FLAGS.run_dir)
    export_base = FLAGS.export_dir or os.path.join("saved_models", run.results["dataset"])
    export_trained(run, export_base, print)


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.export", _main, _define_flags)


if __name__ == "__main__":
    run()
