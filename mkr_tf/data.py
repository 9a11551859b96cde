"""MKR's processed data format: loading, validation, the 6:2:2 split and shuffling.

A processed dataset directory holds
    ratings_final.txt   user item label        (whitespace-separated integers, label 0 or 1)
    kg_final.txt        head relation tail     (whitespace-separated integers)
Entity i is item i, so every item id is also an entity id.
"""

import dataclasses
import logging
import os
import pathlib
import re

import numpy as np
import pandas as pd

import data_prep
from data_prep import DataError
from data_prep import processed

RATINGS_FILE, KG_FILE = processed.RATINGS_FILE, processed.KG_FILE
KNOWN_DATASETS = ("synthetic", "movie", "book", "music", "recbole")
# Tables are sized max id + 1; an id beyond this is a corrupt file, not a catalogue, and would
# otherwise surface as an out-of-memory crash deep inside TensorFlow.
MAX_TABLE_ROWS = 2**27
# A table this many times larger than the distinct ids it holds, and larger than SPARSE_MIN_ROWS,
# comes from one far id: a 600-rating dataset with one KG tail of 20,000,000 made a 9 GB run.
SPARSE_FACTOR = 100
SPARSE_MIN_ROWS = 1_000_000
# A dataset is a name: it names the run and export folders, so it must not be a path.
DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
EVAL_RATIO = 0.2
TEST_RATIO = 0.2


def _line_of(path: pathlib.Path, row: int) -> int:
    """The line of the `row`-th row that `read_int_table` read: blank lines are whitespace."""
    return data_prep.raw.line_of(path, row, blank=None)


def read_int_table(path: os.PathLike, column_names: tuple[str, ...]) -> np.ndarray:
    """Reads a whitespace-separated table of non-negative integers into an int64 [n, k] array."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {data_prep.raw.not_a_file(path)}")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: file is not readable (permission denied)")
    data_prep.raw.read_bytes(path, keep=False)  # fails fast on a file without line ends
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="c",
                            on_bad_lines="error", skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot parse: {error}") from None
    if frame.shape[1] != len(column_names):
        raise DataError(
            f"{path}: expected {len(column_names)} columns ({' '.join(column_names)}), "
            f"found {frame.shape[1]}")
    short_rows = frame.isna().any(axis=1).to_numpy()
    if short_rows.any():
        row = int(np.flatnonzero(short_rows)[0])
        raise DataError(
            f"{path}, line {_line_of(path, row)}: expected {len(column_names)} columns "
            f"({' '.join(column_names)}), found {int(frame.iloc[row].notna().sum())}")
    values = np.empty(frame.shape, dtype=np.int64)
    for column, name in enumerate(column_names):
        text = frame.iloc[:, column]
        numbers = pd.to_numeric(text, errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers != np.floor(numbers)) | (numbers >= 2**62)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{path}, line {_line_of(path, row)}: {name} {text.iloc[row]!r} is not a "
                f"non-negative integer id")
        values[:, column] = numbers.to_numpy(dtype=np.int64)
    return values


@dataclasses.dataclass
class MKRData:
    """Rating splits and KG triples with their table sizes (max id + 1, never a distinct count)."""
    train: np.ndarray  # [n, 3] user, item, label
    eval: np.ndarray
    test: np.ndarray
    kg: np.ndarray  # [m, 3] head, relation, tail; every head is an item
    n_users: int
    n_items: int
    n_entities: int
    n_relations: int
    # (raw item id, raw entity id) of each item index, when data_prep made the files.
    item_ids: list[tuple[str, str]] | None = None
    # Items whose ratings were all moved out of training (`with_cold_items`), sorted.
    cold_items: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    # The raw user id of each user index, when data_prep made the files.
    user_ids: list[str] | None = None
    # The name of each item index (None where unknown), when the raw data names items.
    item_names: list[str | None] | None = None

    @property
    def n_interactions(self) -> int:
        return len(self.train) + len(self.eval) + len(self.test)

    def with_train_ratio(self, ratio: float, seed: int) -> "MKRData":
        """The same data with a seeded share `ratio` of the training rows; eval and test unchanged.

        This is the paper's sparsity experiment: how the model fares as training data thins out.
        """
        if ratio >= 1:
            return self
        n_kept = max(1, int(round(len(self.train) * ratio)))
        kept = np.sort(np.random.default_rng((seed, 7)).permutation(len(self.train))[:n_kept])
        return dataclasses.replace(self, train=self.train[kept])

    def with_cold_items(self, ratio: float, seed: int) -> "MKRData":
        """The cold-item protocol: a seeded share `ratio` of the rated items loses its training rows.

        Every training row (positive or sampled negative) of a cold item moves to eval or test, a
        seeded half each, so the model never sees a rating of it; the KG keeps its triples, so the
        KGE task still does. Figures on the test rows of cold items show what a model knows of an
        item from the knowledge graph alone.
        """
        if ratio <= 0:
            return self
        rated = np.unique(np.concatenate([self.train[:, 1], self.eval[:, 1], self.test[:, 1]]))
        rng = np.random.default_rng((seed, 11))
        n_cold = max(1, int(round(len(rated) * ratio)))
        cold = np.sort(rng.permutation(rated)[:n_cold])
        moved = np.isin(self.train[:, 1], cold)
        to_test = rng.random(int(moved.sum())) < 0.5
        rows = self.train[moved]
        return dataclasses.replace(
            self, train=self.train[~moved], eval=np.concatenate([self.eval, rows[~to_test]]),
            test=np.concatenate([self.test, rows[to_test]]), cold_items=cold)

    def cold_rows(self, split: str) -> np.ndarray:
        """The rows of `split` whose item is cold."""
        rows = getattr(self, split)
        return rows[np.isin(rows[:, 1], self.cold_items)]

    def for_protocol(self, cold_items: float, train_ratio: float, seed: int) -> "MKRData":
        """The data a run of these settings trains and is measured on: cold items first, then
        the share of the remaining training rows."""
        return self.with_cold_items(cold_items, seed).with_train_ratio(train_ratio, seed)

    def statistics(self) -> dict[str, int]:
        return dict(users=self.n_users, items=self.n_items, interactions=self.n_interactions,
                    entities=self.n_entities, relations=self.n_relations, triples=len(self.kg))


def split_ratings(ratings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random 6:2:2 train/eval/test split of the rating rows."""
    order = np.random.default_rng(seed).permutation(len(ratings))
    n_eval = int(len(ratings) * EVAL_RATIO)
    n_test = int(len(ratings) * TEST_RATIO)
    return (ratings[order[n_eval + n_test:]], ratings[order[:n_eval]],
            ratings[order[n_eval:n_eval + n_test]])


def build_dataset(ratings: np.ndarray, kg: np.ndarray, seed: int, source: str = "data",
                  log=logging.info, allow_sparse_ids: bool = False,
                  files: tuple[pathlib.Path, pathlib.Path] | None = None) -> MKRData:
    """Validates ratings and KG, drops triples whose head is not an item, and splits the ratings.

    A (user, item) pair rated twice is kept once, so that no pair can be in two splits; twice
    with different labels is an error. `files`, the ratings and KG files the rows come from,
    let errors name the line rather than the row. Tables far larger than the distinct ids they
    hold (SPARSE_FACTOR) are refused unless `allow_sparse_ids`.
    """
    where = _Locator(source, files)
    if len(ratings) == 0:
        raise DataError(f"{source}: no ratings")
    bad_labels = ~np.isin(ratings[:, 2], (0, 1))
    if bad_labels.any():
        row = int(np.flatnonzero(bad_labels)[0])
        raise DataError(f"{where(0, row)}: label {ratings[row, 2]} is not 0 or 1")
    for table, column, name in ((0, 0, "user"), (0, 1, "item"), (1, 0, "head"),
                                (1, 1, "relation"), (1, 2, "tail")):
        _check_table_size((ratings, kg)[table], column, name, lambda row, t=table: where(t, row))
    rating_rows = _distinct_pairs(ratings, where, log)
    ratings = ratings[rating_rows]
    for label, missing in ((1, "negatives (label 0)"), (0, "positives (label 1)")):
        if (ratings[:, 2] == label).all():
            raise DataError(f"{source}: every rating has label {label}; AUC needs both, so add "
                            f"{missing}, e.g. sampled from items the user did not rate")
    n_users = int(ratings[:, 0].max()) + 1
    n_items = int(ratings[:, 1].max()) + 1
    head_is_item = kg[:, 0] < n_items
    n_dropped = int((~head_is_item).sum())
    if n_dropped:
        log(f"{source}: dropped {n_dropped} of {len(kg)} KG triples whose head is not an item "
            f"(id >= {n_items}); the KGE task needs an item for every head")
    kg_rows = np.flatnonzero(head_is_item)
    kg = kg[kg_rows]
    if len(kg) == 0:
        raise DataError(f"{source}: no KG triple has an item as its head; MKR needs item-headed triples")
    n_entities = max(n_items, int(max(kg[:, 0].max(), kg[:, 2].max())) + 1)
    n_relations = int(kg[:, 1].max()) + 1
    if not allow_sparse_ids:
        _check_density(ratings[:, 0], n_users, "user", lambda row: where(0, rating_rows[row]))
        _check_density(ratings[:, 1], n_items, "item", lambda row: where(0, rating_rows[row]))
        _check_density(kg[:, 1], n_relations, "relation", lambda row: where(1, kg_rows[row]))
        # Every item is an entity, in the KG or not.
        _check_density(kg[:, [0, 2]].ravel(), n_entities, "entity",
                       lambda row: where(1, kg_rows[row // 2]), also_held=ratings[:, 1])
    _warn_unrated_entities(ratings, kg, n_items, source, log)
    train, eval_split, test = split_ratings(ratings, seed)
    for name, split in (("train", train), ("eval", eval_split), ("test", test)):
        if len(split) == 0:
            raise DataError(f"{source}: the {name} split is empty ({len(ratings)} ratings are too few "
                            f"for a 6:2:2 split)")
    return MKRData(train, eval_split, test, kg, n_users, n_items, n_entities, n_relations)


class _Locator:
    """`where(table, row)`: `<file>, line N` of row `row` of the ratings (0) or KG (1) rows, or
    `<source>: <table> row N` when the rows come from no file."""

    def __init__(self, source: str, files: tuple[pathlib.Path, pathlib.Path] | None):
        self.source, self.files = source, files

    def __call__(self, table: int, row: int) -> str:
        if self.files is None:
            return f"{self.source}: {('rating', 'KG')[table]} row {int(row) + 1}"
        return f"{self.files[table]}, line {_line_of(self.files[table], int(row))}"


def _distinct_pairs(ratings: np.ndarray, where: _Locator, log) -> np.ndarray:
    """Rows of `ratings`, ascending, that keep each (user, item) pair once: its first row.

    Refuses a pair rated with both labels, naming both lines.
    """
    keys = ratings[:, 0] * (int(ratings[:, 1].max()) + 1) + ratings[:, 1]
    order = np.argsort(keys, kind="stable")
    repeated = keys[order][1:] == keys[order][:-1]
    conflicting = repeated & (ratings[order[1:], 2] != ratings[order[:-1], 2])
    if conflicting.any():
        at = int(np.flatnonzero(conflicting)[0])
        first, second = order[at], order[at + 1]
        raise DataError(
            f"{where(0, second)}: user {ratings[second, 0]} item {ratings[second, 1]} has label "
            f"{ratings[second, 2]}, but label {ratings[first, 2]} at {where(0, first)}")
    n_repeated = int(repeated.sum())
    if n_repeated:
        log(f"{where.source}: {n_repeated:,} duplicate (user, item) rows dropped; each pair is "
            f"kept once, so that none is in two of train, eval and test")
    kept = np.ones(len(ratings), bool)
    kept[order[1:][repeated]] = False
    return np.flatnonzero(kept)


def _check_table_size(table: np.ndarray, column: int, name: str, where) -> None:
    if len(table) == 0:
        return
    row = int(np.argmax(table[:, column]))
    if table[row, column] >= MAX_TABLE_ROWS:
        raise DataError(
            f"{where(row)}: {name} id {table[row, column]} would need a table of that many rows; "
            f"ids must be below {MAX_TABLE_ROWS:,} (renumber them densely)")


def _check_density(ids: np.ndarray, table_rows: int, name: str, where,
                   also_held: np.ndarray | None = None) -> None:
    """Refuses a table sized by one far id of `ids`: many times more rows than the distinct ids
    it holds (those of `ids` and `also_held`)."""
    held = ids if also_held is None else np.concatenate([ids, also_held])
    distinct = len(np.unique(held))
    if table_rows > SPARSE_MIN_ROWS and table_rows > SPARSE_FACTOR * distinct:
        row = int(np.argmax(ids))
        raise DataError(
            f"{where(row)}: {name} id {ids[row]:,} makes a table of {table_rows:,} rows for "
            f"{distinct:,} distinct {name} ids; renumber the ids densely, or pass "
            f"--allow_sparse_ids")


def _warn_unrated_entities(ratings: np.ndarray, kg: np.ndarray, n_items: int, source: str,
                           log) -> None:
    """Warns of ids below n_items that look like KG entities, not items: never rated, never a
    head, only a tail. The table sizes make every id below n_items an item, so a genre id
    below the largest item id would silently join the catalogue."""
    looks_like_item = np.zeros(n_items, bool)
    looks_like_item[ratings[:, 1]] = True
    looks_like_item[kg[:, 0]] = True
    tails = kg[:, 2][kg[:, 2] < n_items]
    entities = np.setdiff1d(tails, np.flatnonzero(looks_like_item))
    if len(entities):
        log(f"{source}: warning: {len(entities):,} ids below the item count {n_items:,} (e.g. "
            f"{entities[0]}) are never rated and only KG tails; they are taken as items and "
            f"recommended, so if they are KG entities, number the items 0 to N-1 and the other "
            f"entities from N")


def load_processed(directory: os.PathLike, seed: int, log=logging.info,
                   allow_sparse_ids: bool = False) -> MKRData:
    """Loads `ratings_final.txt` and `kg_final.txt` from `directory` and splits the ratings."""
    directory = pathlib.Path(directory)
    files = (directory / RATINGS_FILE, directory / KG_FILE)
    ratings = read_int_table(files[0], ("user", "item", "label"))
    kg = read_int_table(files[1], ("head", "relation", "tail"))
    loaded = build_dataset(ratings, kg, seed, source=str(directory), log=log,
                           allow_sparse_ids=allow_sparse_ids, files=files)
    if (directory / data_prep.pipeline.META_FILE).is_file():
        meta = data_prep.read_meta(directory)
        items, users = meta.get("items"), meta.get("users")
        if items:
            # Items listed after the last rated one are not in the model's item table.
            loaded.item_ids = list(zip(items["item_id"], items["entity_id"]))[:loaded.n_items]
            if "name" in items:
                loaded.item_names = items["name"][:loaded.n_items]
        if users:
            loaded.user_ids = users["user_id"][:loaded.n_users]
    return loaded


def write_processed(directory: os.PathLike, ratings: np.ndarray, kg: np.ndarray) -> None:
    """Writes the processed format (`data_prep.processed`), each file whole or not at all."""
    processed.write(directory, ratings, kg)


def shuffled(rows: np.ndarray, seed) -> np.ndarray:
    """`rows` in a random order that is a pure function of `seed`.

    Seeding each epoch's shuffle with (run seed, epoch, task), rather than drawing from one
    running generator, lets a resumed run see exactly the batches an uninterrupted one would.
    """
    return rows[np.random.default_rng(seed).permutation(len(rows))]


def check_dataset_name(name: str) -> str:
    """`name`, once it is a name (letters, digits, '-', '_', '.' not leading) and not a path."""
    if not DATASET_NAME.fullmatch(name):
        raise DataError(
            f"dataset {name!r} is not a name: use letters, digits, '-', '_' and '.' (not "
            f"first); to read processed files in another folder, pass --processed_dir={name}")
    return name


def load_dataset(name: str, data_dir: os.PathLike, cache_dir: os.PathLike, seed: int,
                 log=logging.info, processed_dir: os.PathLike | None = None,
                 allow_sparse_ids: bool = False, **prepare_options) -> MKRData:
    """The dataset `name`, split by `seed`.

    With `processed_dir`, the processed files there are read as they are and `name` only
    names the run. Otherwise "synthetic" is generated in memory, a folder `<data_dir>/<name>/`
    that holds the processed files is read as it is, and movie, book, music and recbole are
    prepared from raw files (downloaded when missing and possible) into `cache_dir` by
    `data_prep`. `name` must be a name, never a path. `allow_sparse_ids`: see `build_dataset`.
    """
    check_dataset_name(name)
    if processed_dir is not None:
        return load_processed(processed_dir, seed, log=log, allow_sparse_ids=allow_sparse_ids)
    if name == "synthetic":
        from mkr_tf import synthetic  # pylint: disable=import-outside-toplevel
        ratings, kg = synthetic.generate(seed=0)
        return build_dataset(ratings, kg, seed, source="synthetic", log=log)
    folder = pathlib.Path(data_dir) / name
    if (folder / RATINGS_FILE).is_file() and (folder / KG_FILE).is_file():
        return load_processed(folder, seed, log=log, allow_sparse_ids=allow_sparse_ids)
    if name not in KNOWN_DATASETS:
        raise DataError(
            f"unknown dataset {name!r}: choose one of {', '.join(KNOWN_DATASETS)}, or put "
            f"{RATINGS_FILE} and {KG_FILE} in {folder}/")
    prepared = data_prep.prepare(name, data_dir, cache_dir, seed=seed, log=log, **prepare_options)
    return load_processed(prepared, seed, log=log, allow_sparse_ids=allow_sparse_ids)
