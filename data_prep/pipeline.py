"""prepare(): a raw dataset in, a cached directory in MKR's processed format out.

The output of a run is determined by its inputs, so it lives under a key derived from them:
`<cache_dir>/<dataset>/seed<seed>-<key>/` (for RecBole `<cache_dir>/recbole/<NAME>-seed<seed>-<key>/`)
with key = sha256 of the input files' sha256s, the seed, the rating threshold and
FORMAT_VERSION. A directory is complete once it exists: it is written in a staging directory
beside it and renamed into place.

meta.json also maps indices back to the raw data: `items` holds `item_id` and `entity_id`,
lists whose i-th entries are the raw item id and the raw KG entity id of item i (the kept lines
of item_index2entity_id.txt, or the kept links of a RecBole .link file, in order), with `name`
when the original release's file of item names lies beside the raw files
(raw.ITEM_NAME_FORMATS; None for items it does not name), and `users`
holds `user_id`, whose i-th entry is the raw id of user i (users are numbered in the order of
their first positive). They live in meta.json, not in files of their own, so the processed
format stays those three files.
"""

import contextlib
import datetime
import hashlib
import json
import math
import os
import pathlib
import shutil

import numpy as np
import pandas as pd

from data_prep import DataError
from data_prep import convert
from data_prep import download as download_lib
from data_prep import raw
from data_prep import recbole
from data_prep import processed
from data_prep import staging

RAW_DATASETS = ("movie", "book", "music")
# Part of the cache key: bump it whenever the same inputs would now give different output.
FORMAT_VERSION = 3
RATINGS_FILE, KG_FILE = processed.RATINGS_FILE, processed.KG_FILE
META_FILE = "meta.json"
_STAGING_PREFIX = ".staging-"
STATISTICS = ("users", "items", "interactions", "entities", "relations", "triples")


def prepare(dataset: str, data_dir: str | os.PathLike, cache_dir: str | os.PathLike,
            seed: int = 0, *, recbole_path: str | None = None,
            rating_threshold: float | None = None, download: bool = True,
            log=print) -> pathlib.Path:
    """Converts a raw dataset to MKR's processed format, or finds the cached conversion.

    Args:
        dataset: "movie", "book", "music" (raw files in `<data_dir>/<dataset>/`) or "recbole".
        data_dir: folder of the raw datasets; only read, never written.
        cache_dir: processed datasets go to `<cache_dir>/<dataset>/...`, downloads to
            `<cache_dir>/downloads/<dataset>/`.
        seed: seed of the negative sampling.
        recbole_path: DIR/NAME of RecBole atomic files NAME.inter, NAME.kg and NAME.link.
        rating_threshold: ratings at or above it are positives. Default: the authors' (4 for
            movie, 0 = every rating for book and music); for RecBole every interaction.
        download: whether missing raw files of movie, book and music may be downloaded.
        log: callable taking one message string.

    Returns:
        The directory holding ratings_final.txt, kg_final.txt and meta.json.

    Raises:
        DataError: bad input (the message names file, line and value), or missing files that
            cannot be downloaded (the message lists which files to place where).
    """
    data_dir = pathlib.Path(data_dir).expanduser()
    cache_dir = pathlib.Path(cache_dir).expanduser()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, not {seed!r}")
    if rating_threshold is not None and not math.isfinite(rating_threshold):
        raise DataError(f"rating threshold must be a finite number, not {rating_threshold!r}")

    if dataset == "recbole":
        name, inputs = recbole.locate(recbole_path, data_dir)
        label, threshold = f"recbole/{name}", rating_threshold
    elif dataset in RAW_DATASETS:
        inputs = download_lib.locate_inputs(dataset, data_dir, cache_dir, download=download,
                                            log=log)
        names_file = data_dir / dataset / raw.ITEM_NAME_FORMATS[dataset].file_name
        if names_file.is_file():
            inputs[names_file.name] = names_file  # optional; in the key, so adding it counts
        name, label = dataset, dataset
        default = raw.RATING_FORMATS[dataset].threshold
        threshold = default if rating_threshold is None else float(rating_threshold)
    else:
        raise DataError(f"unknown dataset {dataset!r}; expected one of "
                        f"{', '.join(RAW_DATASETS)} or recbole")

    digests = {path.name: _sha256(path) for path in inputs.values()}
    key = hashlib.sha256(json.dumps(
        dict(format_version=FORMAT_VERSION, dataset=dataset, name=name, seed=int(seed),
             rating_threshold=threshold, inputs=digests), sort_keys=True).encode()).hexdigest()
    leaf = f"seed{seed}-{key[:16]}"
    output = (cache_dir / dataset / f"{name}-{leaf}" if dataset == "recbole"
              else cache_dir / dataset / leaf)
    with contextlib.suppress(OSError):  # A read-only cache has nothing of ours to clean.
        staging.remove_stale(output.parent, _STAGING_PREFIX)
    if (output / META_FILE).is_file():
        log(f"{label}: up to date: {output}")
        return output

    for path in inputs.values():
        log(f"{label}: reading {path}")
    if dataset == "recbole":
        parts = recbole.read(inputs, threshold, log)
        rating_source, items_source, kg_source = inputs["inter"], inputs["link"], inputs["kg"]
        keep_unreached_heads = True
    else:
        parts = _read_paper_dataset(dataset, inputs, threshold)
        rating_source = inputs[raw.RATING_FORMATS[dataset].file_name]
        items_source, kg_source = inputs[raw.ITEM_MAP_FILE], inputs[raw.KG_FILE]
        keep_unreached_heads = False

    n_items = len(parts["item_entities"])
    ratings = convert.build_ratings(parts["users"], parts["items"], parts["ratings"],
                                    parts["threshold"], n_items, np.random.default_rng(seed))
    if ratings.n_users == 0:
        positives = "interaction" if threshold is None else f"rating at or above {threshold:g}"
        raise DataError(f"{rating_source}: no {positives} is on an item listed in "
                        f"{items_source.name}")
    kg = convert.build_kg(parts["heads"], parts["relations"], parts["tails"],
                          parts["item_entities"], keep_unreached_heads,
                          kg_name=str(kg_source), items_name=items_source.name)

    statistics = dict(users=ratings.n_users, items=n_items, interactions=len(ratings.table),
                      entities=kg.n_entities, relations=kg.n_relations, triples=len(kg.triples),
                      positives=ratings.n_positives,
                      negatives=len(ratings.table) - ratings.n_positives)
    warnings = dict(
        interactions_on_unlisted_items=int((parts["items"] < 0).sum()),
        users_without_positives=ratings.skipped_users,
        users_short_of_negatives=ratings.short_users,
        missing_negatives=ratings.missing_negatives,
        triples_with_unreached_head=kg.dropped_triples,
        triples_with_non_item_head=kg.non_item_heads)
    for field in ("unlinked_items", "duplicate_links"):
        if field in parts:
            warnings[field] = parts[field]
    _log_warnings(label, warnings, ratings, kg, rating_source, items_source, kg_source, log)

    meta = dict(
        dataset=dataset, name=name, seed=int(seed), rating_threshold=threshold,
        format_version=FORMAT_VERSION,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        inputs={path.name: dict(path=str(path), sha256=digests[path.name])
                for path in inputs.values()},
        statistics=statistics, warnings=warnings,
        items=dict(item_id=parts["item_ids"].tolist(), entity_id=parts["item_entities"].tolist(),
                   **({} if parts.get("item_names") is None else {"name": parts["item_names"]})),
        users=dict(user_id=ratings.user_ids.tolist()))
    _publish(output, ratings.table, kg.triples, meta)
    log(f"{label}: wrote {output}")
    return output


def format_statistics(meta: dict) -> str:
    """The dataset's row of the paper's statistics table, with a header line."""
    row = [meta["name"] if meta["dataset"] == "recbole" else meta["dataset"]]
    row += [f"{meta['statistics'][field]:,}" for field in STATISTICS]
    header = ["dataset", *STATISTICS]
    widths = [max(len(a), len(b)) for a, b in zip(header, row)]
    return "\n".join("  ".join(cell.rjust(width) if column else cell.ljust(width)
                               for column, (cell, width) in enumerate(zip(cells, widths)))
                     for cells in (header, row))


def read_meta(directory: str | os.PathLike) -> dict:
    """The meta.json of a processed directory."""
    return json.loads((pathlib.Path(directory) / META_FILE).read_text())


def _read_paper_dataset(dataset: str, inputs: dict[str, pathlib.Path], threshold: float) -> dict:
    """Reads a paper dataset's three files and aligns the ratings on the item map."""
    layout = raw.RATING_FORMATS[dataset]
    map_items, item_entities = raw.read_item_map(inputs[raw.ITEM_MAP_FILE], layout.integer_items)
    users, rated_items, ratings = raw.read_ratings(dataset, inputs[layout.file_name])
    heads, relations, tails = raw.read_kg(inputs[raw.KG_FILE])
    names_file = raw.ITEM_NAME_FORMATS[dataset].file_name
    item_names = None
    if names_file in inputs:
        names = raw.read_item_names(dataset, inputs[names_file])
        item_names = [names.get(str(item)) for item in map_items]
    return dict(users=users, items=pd.Index(map_items).get_indexer(rated_items),
                ratings=ratings, threshold=threshold, item_ids=map_items,
                item_entities=item_entities, heads=heads, relations=relations, tails=tails,
                item_names=item_names)


def _log_warnings(label, warnings, ratings, kg, rating_source, items_source, kg_source, log):
    if warnings["interactions_on_unlisted_items"]:
        log(f"{label}: {warnings['interactions_on_unlisted_items']:,} lines of "
            f"{rating_source.name} rate items not listed in {items_source.name}; dropped")
    if ratings.skipped_users:
        log(f"{label}: warning: {ratings.skipped_users:,} users have no positive on a listed "
            f"item; skipped")
    if ratings.short_users:
        log(f"{label}: warning: {ratings.short_users:,} users have more positives than unrated "
            f"items; they got every unrated item, {ratings.missing_negatives:,} negatives short")
    if kg.dropped_triples:
        log(f"{label}: {kg.dropped_triples:,} triples of {kg_source.name} have a head that is "
            f"neither an item nor reached from one; dropped, as in the authors' preprocessing")
    if kg.non_item_heads:
        log(f"{label}: {kg.non_item_heads:,} of {len(kg.triples):,} triples have a head that is "
            f"not an item (a multi-hop KG); kept in {KG_FILE}, but the MKR trainer drops them "
            f"since its KGE task only scores triples whose head is an item")


def _publish(output: pathlib.Path, ratings: np.ndarray, triples: np.ndarray,
             meta: dict) -> None:
    """Writes the processed files into a staging directory, then renames it to `output`."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists():
            shutil.rmtree(output)  # Left without meta.json by hand: not a finished output.
    except OSError as error:
        raise DataError(f"{output.parent}: cannot write the cache: {error.strerror}") from None
    try:
        with staging.staging_folder(output.parent, _STAGING_PREFIX) as staged:
            processed.write(staged, ratings, triples)
            (staged / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            os.rename(staged, output)
    except OSError as error:
        # A concurrent run with the same inputs may have published the same output first.
        if not (output / META_FILE).is_file():
            raise DataError(f"{output}: cannot write the cache: {error}") from None


def _sha256(path: pathlib.Path) -> str:
    """The file's sha256; a runaway line fails here, before the whole file is read."""
    digest = hashlib.sha256()
    for chunk in raw.checked_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()
