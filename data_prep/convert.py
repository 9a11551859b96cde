"""The authors' preprocessing (src/preprocess.py of github.com/hwwang55/MKR), vectorised.

Ratings: only items of the item map are kept, item i being the map's i-th line. Ratings at or
above the threshold are positives; the others are not used as negatives either: they are only
removed from that user's negative candidates. Users are numbered by first appearance among
those with a positive. Each user gets one negative per positive, drawn without replacement
from the items they never rated.

KG: entity i is item i; other entities and the relations are numbered by first appearance.
For the paper's datasets a triple is kept, as in the authors' code, only when its head is an
item or an entity already reached as the tail of an earlier kept triple.
"""

import dataclasses

import numpy as np
import pandas as pd

from data_prep import DataError


@dataclasses.dataclass(frozen=True)
class Ratings:
    """Labelled interactions and what happened to the users on the way.

    Attributes:
        table: int64 [n, 3] of user, item, label; grouped by user, positives first.
        n_users: users kept (those with at least one positive on a kept item).
        user_ids: the raw id of each kept user, in index order (order of first positive).
        n_positives: positives; the rest of `table` are sampled negatives.
        skipped_users: raw users without any positive on a kept item.
        short_users: users with fewer negative candidates than positives; all their candidates
            were used.
        missing_negatives: negatives those users lack.
    """
    table: np.ndarray
    n_users: int
    user_ids: np.ndarray
    n_positives: int
    skipped_users: int
    short_users: int
    missing_negatives: int


@dataclasses.dataclass(frozen=True)
class KnowledgeGraph:
    """Indexed triples.

    Attributes:
        triples: int64 [n, 3] of head, relation, tail, in input order.
        n_entities: entities, items included (also items that appear in no triple).
        n_relations: relations.
        dropped_triples: triples left out because their head was never reached.
        non_item_heads: kept triples whose head is not an item.
    """
    triples: np.ndarray
    n_entities: int
    n_relations: int
    dropped_triples: int
    non_item_heads: int


def build_ratings(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, threshold: float,
                  n_items: int, rng: np.random.Generator) -> Ratings:
    """Labels positives and samples one negative per positive for every user.

    Args:
        users: raw user id of each rating (any hashable values), in file order.
        items: item index of each rating, -1 for items outside the item map.
        ratings: rating values; those >= threshold are positives.
        threshold: the positive threshold.
        n_items: number of items.
        rng: source of the negative samples.
    """
    kept = items >= 0
    positive = kept & (ratings >= threshold)
    user_index, kept_users = pd.factorize(users[positive])
    n_users = len(kept_users)
    skipped_users = len(pd.unique(users)) - n_users

    other = kept & ~positive
    other_index = pd.Index(kept_users).get_indexer(users[other])
    rated_elsewhere = other_index >= 0
    positive_keys = _sorted_unique(user_index.astype(np.int64) * n_items + items[positive])
    excluded_keys = _sorted_unique(np.concatenate([
        positive_keys,
        other_index[rated_elsewhere].astype(np.int64) * n_items + items[other][rated_elsewhere]]))

    n_positive = np.bincount(positive_keys // n_items, minlength=n_users)
    n_candidates = n_items - np.bincount(excluded_keys // n_items, minlength=n_users)
    n_negative = np.minimum(n_positive, n_candidates)
    negative_users, ranks = sample_without_replacement(rng, n_candidates, n_negative)
    negative_items = _nth_free_item(excluded_keys, n_items, n_users, negative_users, ranks)

    table_users = np.concatenate([positive_keys // n_items, negative_users])
    table_items = np.concatenate([positive_keys % n_items, negative_items])
    labels = np.concatenate([np.ones(len(positive_keys), np.int64),
                             np.zeros(len(negative_users), np.int64)])
    order = np.lexsort((table_items, -labels, table_users))
    table = np.stack([table_users, table_items, labels], axis=1)[order]
    short = n_positive > n_candidates
    return Ratings(table=table, n_users=n_users, user_ids=np.asarray(kept_users),
                   n_positives=len(positive_keys),
                   skipped_users=int(skipped_users), short_users=int(short.sum()),
                   missing_negatives=int((n_positive - n_candidates)[short].sum()))


def sample_without_replacement(rng: np.random.Generator, population: np.ndarray,
                               counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draws counts[g] distinct integers from range(population[g]) for every group g.

    Each group's draw is a uniformly random subset. Groups drawing more than half of their
    range sort random keys over the whole range; the others draw with replacement and redraw
    collisions. Either way the work is proportional to the number of draws, not to
    groups x range, which is what keeps Book-Crossing (18k users x 15k items) cheap.

    Returns:
        (groups, values), sorted by group then value.
    """
    population = np.asarray(population, np.int64)
    counts = np.asarray(counts, np.int64)
    dense = 2 * counts > population

    stride = max(int(population.max(initial=0)), 1)
    groups = np.flatnonzero(dense)
    sizes = population[groups]
    group_of = np.repeat(groups, sizes)
    position = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    # Sorting by (group, random key) keeps each group's block in place and shuffles inside it.
    shuffled = position[np.lexsort((rng.random(len(group_of)), group_of))]
    taken = position < np.repeat(counts[groups], sizes)
    dense_keys = group_of[taken] * stride + shuffled[taken]

    groups = np.flatnonzero(~dense & (counts > 0))
    sparse_keys = np.empty(0, np.int64)
    need = counts[groups]
    while need.any():
        draw_groups = np.repeat(groups, need)
        draws = draw_groups * stride + rng.integers(0, population[draw_groups])
        sparse_keys = _sorted_unique(np.concatenate([sparse_keys, draws]))
        need = counts[groups] - np.bincount(sparse_keys // stride, minlength=len(counts))[groups]

    keys = np.sort(np.concatenate([dense_keys, sparse_keys]))
    return keys // stride, keys % stride


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int64 keys; sorting beats numpy 2's hash-based unique several times here."""
    values = np.sort(values)
    first = np.ones(len(values), bool)
    first[1:] = values[1:] != values[:-1]
    return values[first]


def _nth_free_item(excluded_keys: np.ndarray, n_items: int, n_users: int,
                   users: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The ranks[j]-th item (0-based) that user users[j] has not rated.

    With a user's excluded items x_0 < x_1 < ..., the r-th free item is r plus the number of
    i with x_i - i <= r; one searchsorted over all users (keys offset per user) finds them all.
    """
    excluded_users = excluded_keys // n_items
    excluded_items = excluded_keys % n_items
    first = np.searchsorted(excluded_users, np.arange(n_users))
    shifted = excluded_items - (np.arange(len(excluded_keys)) - first[excluded_users])
    stride = n_items + 1
    below = np.searchsorted(excluded_users * stride + shifted, users * stride + ranks,
                            side="right") - first[users]
    return ranks + below


def build_kg(heads: np.ndarray, relations: np.ndarray, tails: np.ndarray,
             item_entities: np.ndarray, keep_unreached_heads: bool, *,
             kg_name: str, items_name: str) -> KnowledgeGraph:
    """Indexes entities and relations of the triples.

    Args:
        heads, relations, tails: raw triples, as strings, in file order.
        item_entities: raw entity id of item i at position i.
        keep_unreached_heads: keep every triple (RecBole's multi-hop KGs) instead of only
            those whose head is an item or was reached earlier (the authors' rule).
        kg_name, items_name: how to name the KG and the item list in error messages.

    Raises:
        DataError: when no kept triple touches an item.
    """
    n_items, n_triples = len(item_entities), len(heads)
    codes, names = pd.factorize(np.concatenate([item_entities, heads, tails]))
    head_codes = codes[n_items:n_items + n_triples]
    tail_codes = codes[n_items + n_triples:]
    if keep_unreached_heads:
        kept = np.ones(n_triples, bool)
        if not ((head_codes < n_items) | (tail_codes < n_items)).any():
            raise DataError(f"{kg_name}: none of its {n_triples:,} triples mentions an entity "
                            f"listed in {items_name}")
    else:
        kept = _reached_heads(head_codes, tail_codes, n_items, len(names))
        if not kept.any():
            raise DataError(f"{kg_name}: none of its {n_triples:,} triples has a head listed in "
                            f"{items_name}")

    heads_then_tails = np.stack([head_codes[kept], tail_codes[kept]], axis=1).ravel()
    others = pd.unique(heads_then_tails[heads_then_tails >= n_items])
    entity_index = np.full(len(names), -1, np.int64)
    entity_index[:n_items] = np.arange(n_items)
    entity_index[others] = n_items + np.arange(len(others))
    relation_index, relation_names = pd.factorize(relations[kept])
    triples = np.stack([entity_index[head_codes[kept]], relation_index.astype(np.int64),
                        entity_index[tail_codes[kept]]], axis=1)
    return KnowledgeGraph(triples=triples, n_entities=n_items + len(others),
                          n_relations=len(relation_names),
                          dropped_triples=int(n_triples - kept.sum()),
                          non_item_heads=int((triples[:, 0] >= n_items).sum()))


def _reached_heads(heads: np.ndarray, tails: np.ndarray, n_items: int,
                   n_entities: int) -> np.ndarray:
    """Which triples the authors' line-by-line pass keeps.

    Their pass keeps a triple when its head is an item or the tail of an earlier kept triple.
    Iterating "an entity is known from the first kept line naming it as tail" to a fixed point
    gives the same set; the number of rounds is the longest chain of such heads, in practice 1-2.
    """
    lines = np.arange(len(heads))
    known_from = np.full(n_entities, len(heads))
    known_from[:n_items] = -1
    while True:
        kept = known_from[heads] < lines
        reached = np.full(n_entities, len(heads))
        np.minimum.at(reached, tails[kept], lines[kept])
        reached[:n_items] = -1
        if np.array_equal(reached, known_from):
            return kept
        known_from = reached
