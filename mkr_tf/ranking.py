"""One catalogue ranker: each user's top-K items from a [users, items] score table, with exclusions.

MKR's top-K evaluation, the baselines' and the export's `recommend` signature all rank through
`CatalogueRanker`, so the figures a report gives are the lists a server returns. Which items a
user may not be recommended is the ranker's one parameter of policy (`exclusions`):

    "train_items"      every item of the user's training rows, whatever the label. The
                       evaluation protocol: a sampled training negative is an item the
                       user was shown as irrelevant, so it is no candidate either.
    "train_positives"  the user's training positives only. Serving: a sampled negative is
                       a random never-rated item, not something the user has seen.

Optionally only a set of `candidates` may be ranked at all (the cold-item protocol ranks the
cold items alone).
"""

from typing import Callable

import numpy as np
import tensorflow as tf

from mkr_tf import errors

EXCLUSIONS = ("train_items", "train_positives")


def excluded_items(ratings: np.ndarray, n_users: int, n_items: int,
                   exclusions: str) -> tuple[np.ndarray, np.ndarray]:
    """Each user's excluded items under the `exclusions` policy, as CSR (row_splits, items)."""
    if exclusions not in EXCLUSIONS:
        raise errors.ConfigError(f"exclusions must be one of {EXCLUSIONS}, got {exclusions!r}")
    if exclusions == "train_positives":
        ratings = ratings[ratings[:, 2] == 1]
    keys = np.unique(ratings[:, 0].astype(np.int64) * n_items + ratings[:, 1])
    row_splits = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=row_splits[1:])
    return row_splits, keys % n_items


class CatalogueRanker(tf.Module):
    """top_k(users, scores, k): the k best candidates of each user, best first.

    A user's candidates are the `candidates` items (default: all) minus the user's excluded
    items. Excluded and non-candidate items get score -inf before `tf.math.top_k`, which breaks
    ties by the lower item index, so rankings are deterministic. A place a user has no candidate
    left for gets item -1 and score -inf.

    The exclusion table lives in variables, so a SavedModel that tracks the ranker carries it.
    """

    def __init__(self, ratings: np.ndarray, n_users: int, n_items: int,
                 exclusions: str = "train_items", candidates: np.ndarray | None = None,
                 name: str = "catalogue_ranker"):
        super().__init__(name=name)
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.exclusions = exclusions
        row_splits, items = excluded_items(ratings, self.n_users, self.n_items, exclusions)
        self.excluded_row_splits = tf.Variable(row_splits, trainable=False,
                                               name="excluded_row_splits")
        self.excluded_items = tf.Variable(items, trainable=False, name="excluded_items")
        mask = np.ones(self.n_items, bool)
        if candidates is not None:
            mask[:] = False
            mask[np.asarray(candidates, np.int64)] = True
        self.n_candidates = int(mask.sum())
        self.candidate_mask = tf.Variable(mask, trainable=False, name="candidate_mask")

    def top_k(self, users: tf.Tensor, scores: tf.Tensor, k) -> tuple[tf.Tensor, tf.Tensor]:
        """(items [N, k] int64, scores [N, k]) of `users` [N] from `scores` [N, n_items]."""
        users = tf.cast(users, tf.int64)
        excluded = tf.gather(tf.RaggedTensor.from_row_splits(
            self.excluded_items, self.excluded_row_splits, validate=False), users)
        positions = tf.stack([excluded.value_rowids(), excluded.flat_values], axis=1)
        minus_inf = tf.constant(-np.inf, scores.dtype)
        scores = tf.where(self.candidate_mask[None, :], scores, minus_inf)
        scores = tf.tensor_scatter_nd_update(scores, positions,
                                             tf.fill(tf.shape(positions)[:1], minus_inf))
        top_scores, top_items = tf.math.top_k(scores, k=k)
        found = top_scores > minus_inf
        return tf.where(found, tf.cast(top_items, tf.int64), tf.constant(-1, tf.int64)), top_scores

    def rank(self, users: np.ndarray, score_fn: Callable[[tf.Tensor], tf.Tensor], k: int,
             users_per_batch: int = 1024) -> np.ndarray:
        """Top-k items [len(users), k] (-1 past a user's last candidate), batch by batch of users.

        `score_fn(users)` gives the [len(users), n_items] score table of a batch of users.
        """
        k = min(int(k), self.n_items)
        ranked = [np.zeros([0, k], np.int64)]
        for first in range(0, len(users), users_per_batch):
            batch = tf.constant(users[first:first + users_per_batch], tf.int64)
            ranked.append(self._top_items(batch, score_fn(batch), k).numpy())
        return np.concatenate(ranked)

    def trace(self, k: int) -> None:
        """Builds `rank`'s graph for top-`k` lists of batches of any size, ahead of its use."""
        self._top_items.get_concrete_function(
            tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, self.n_items], tf.float32), k)

    @tf.function(reduce_retracing=True, autograph=False)
    def _top_items(self, users, scores, k):
        return self.top_k(users, scores, k)[0]
