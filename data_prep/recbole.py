"""RecBole atomic files (NAME.inter, NAME.kg, NAME.link) -> the inputs of the MKR procedure.

Mapping onto the authors' procedure:
  * .link plays item_index2entity_id.txt: its items, in file order, are the items, and only
    items with a link are kept (interactions with unlinked items are dropped and counted). An
    item linked twice keeps its first link; an entity linked from two items stays with the first.
  * .inter gives the ratings. With a rating column and a rating threshold, ratings at or above
    it are positives and the others are only kept out of the negative candidates; without a
    threshold every interaction is a positive (RecBole's KG datasets are implicit feedback).
  * .kg is used whole. RecBole KGs are often multi-hop (heads that are not items); those
    triples are kept, with item entities numbered first and the other entities after them.
    The MKR trainer only uses triples whose head is an item and drops the rest.
"""

import os
import pathlib

import numpy as np
import pandas as pd

from data_prep import DataError
from data_prep import raw

SUFFIXES = ("inter", "kg", "link")


def locate(recbole_path: str | os.PathLike | None,
           data_dir: pathlib.Path) -> tuple[str, dict[str, pathlib.Path]]:
    """Finds NAME.inter, NAME.kg and NAME.link for `recbole_path` = DIR/NAME.

    DIR/NAME may be RecBole's dataset folder (files DIR/NAME/NAME.*) or a path prefix (files
    DIR/NAME.*). A relative path is looked up in the current directory, then in data_dir.

    Returns:
        (NAME, {suffix: path}).
    """
    if not recbole_path:
        raise DataError("the recbole dataset needs --recbole_path=DIR/NAME (files NAME.inter, "
                        "NAME.kg and NAME.link)")
    given = pathlib.Path(recbole_path).expanduser()
    tried = []
    for base in [given] if given.is_absolute() else [given, data_dir / given]:
        folder = base if base.is_dir() else base.parent
        files = {suffix: folder / f"{base.name}.{suffix}" for suffix in SUFFIXES}
        if all(path.is_file() for path in files.values()):
            return base.name, files
        tried.append(", ".join(str(path) for path in files.values() if not path.is_file()))
    raise DataError(f"recbole: missing {' or '.join(tried)}")


def read(files: dict[str, pathlib.Path], rating_threshold: float | None, log) -> dict:
    """Reads the three files and aligns them on the link's items.

    Returns:
        A dict with users (raw tokens), items (item index per interaction, -1 when unlinked),
        ratings (float64), threshold, item_ids and item_entities (the raw item and entity token
        of each item), heads, relations, tails and the warning counts unlinked_items,
        unlinked_interactions and duplicate_links.
    """
    link = raw.read_atomic(files["link"], {"item_id": True, "entity_id": True})
    link_items, link_entities = link["item_id"], link["entity_id"]
    first_of_item = ~pd.Index(link_items).duplicated()
    item_tokens, item_entities = link_items[first_of_item], link_entities[first_of_item]
    first_of_entity = ~pd.Index(item_entities).duplicated()
    item_tokens, item_entities = item_tokens[first_of_entity], item_entities[first_of_entity]
    duplicate_links = len(link_items) - len(item_tokens)
    if duplicate_links:
        log(f"{files['link'].name}: {duplicate_links:,} links repeat an item or an entity "
            f"already linked; the first link of each is kept")

    inter = raw.read_atomic(files["inter"], {"user_id": True, "item_id": True, "rating": False})
    items = pd.Index(item_tokens).get_indexer(inter["item_id"])
    unlinked = items < 0
    unlinked_items = len(pd.unique(inter["item_id"][unlinked]))
    if unlinked_items:
        log(f"{files['inter'].name}: {unlinked_items:,} items have no entity in "
            f"{files['link'].name}; their {int(unlinked.sum()):,} interactions are dropped, as the "
            f"authors drop items missing from item_index2entity_id.txt")
    if rating_threshold is None:
        ratings, threshold = np.ones(len(items)), 1.0
    elif "rating" not in inter:
        raise DataError(f"{files['inter']}: a rating threshold was given but the file has no "
                        f"rating column")
    else:
        ratings = raw.atomic_numbers(files["inter"], inter["rating"], "rating")
        threshold = rating_threshold

    kg = raw.read_atomic(files["kg"], {"head_id": True, "relation_id": True, "tail_id": True})
    return dict(users=inter["user_id"], items=items, ratings=ratings, threshold=threshold,
                item_ids=item_tokens, item_entities=item_entities, heads=kg["head_id"],
                relations=kg["relation_id"], tails=kg["tail_id"], unlinked_items=unlinked_items,
                unlinked_interactions=int(unlinked.sum()), duplicate_links=duplicate_links)
