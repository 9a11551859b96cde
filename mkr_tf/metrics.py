"""CTR metrics (exact rank-based AUC, accuracy at 0.5) and top-K metrics over the whole catalogue."""

from typing import Sequence

import numpy as np
import tensorflow as tf


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC by the Mann–Whitney statistic; tied scores count one half.

    AUC = (Σ rank(positives) − P(P + 1)/2) / (P · N), with tied scores given their mean rank.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.shape} vs {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; AUC is undefined")
    n_positive = int(labels.sum())
    n_negative = labels.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(f"AUC needs both classes, got {n_positive} positives and {n_negative} negatives")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Mean 1-based rank of each run of equal scores.
    run_starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    run_ends = np.r_[run_starts[1:], scores.size]
    run_ranks = (run_starts + run_ends + 1) / 2.0
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat(run_ranks, run_ends - run_starts)
    rank_sum = ranks[labels].sum()
    return float((rank_sum - n_positive * (n_positive + 1) / 2.0) / (n_positive * n_negative))


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of examples whose score is on the label's side of `threshold` (≥ counts as positive)."""
    labels = np.asarray(labels).astype(bool).ravel()
    predictions = np.asarray(scores).ravel() >= threshold
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((predictions == labels).mean())


# --- top-K recommendation over the whole catalogue ------------------------------------------------

TOPK_CUTOFFS = (1, 2, 5, 10, 20, 50, 100)
TOPK_METRICS = ("precision", "recall", "ndcg", "hit_rate")
# Pairs scored at once by an MLP head, [batch users × all items]; bounds its activations' memory.
_MLP_PAIRS_PER_BATCH = 2**20


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray,
                    ks: Sequence[int] = TOPK_CUTOFFS) -> dict[str, float]:
    """Mean top-K metrics over users, from the relevance of each user's ranked list.

    `hits[u, j]` says whether the item user u ranks at position j + 1 is relevant to u; it has
    at least max(ks) columns, False past the end of a short candidate list. `n_relevant[u]`
    (>= 1) is the size of u's relevant set R_u. With hits_u(K) the relevant items among u's
    top K, each metric is averaged over the users:

        Precision@K = hits_u(K) / K
        Recall@K    = hits_u(K) / |R_u|
        HitRate@K   = 1 if hits_u(K) >= 1 else 0
        NDCG@K      = DCG_u(K) / IDCG_u(K),  DCG_u(K) = Σ_{j=1..K} rel_u(j) / log2(j + 1),
                      with binary gains rel_u(j) ∈ {0, 1} and the ideal
                      IDCG_u(K) = Σ_{j=1..min(K, |R_u|)} 1 / log2(j + 1)

    Returns {"precision@K", "recall@K", "ndcg@K", "hit_rate@K"} for each K in `ks`.
    """
    hits = np.asarray(hits, dtype=np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    if hits.ndim != 2 or hits.shape[1] < max(ks) or len(n_relevant) != len(hits):
        raise ValueError(f"need hits of shape [users, >= {max(ks)}] and one n_relevant per user, "
                         f"got {hits.shape} and {n_relevant.shape}")
    if len(hits) == 0 or (n_relevant < 1).any():
        raise ValueError("top-K metrics need at least one user, each with a relevant item")
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    hits_at = np.cumsum(hits, axis=1)
    dcg_at = np.cumsum(hits * discounts, axis=1)
    ideal_dcg_at = np.cumsum(discounts)
    results = {}
    for k in ks:
        user_hits = hits_at[:, k - 1]
        ideal_dcg = ideal_dcg_at[np.minimum(k, n_relevant) - 1]
        results[f"precision@{k}"] = float(np.mean(user_hits / k))
        results[f"recall@{k}"] = float(np.mean(user_hits / n_relevant))
        results[f"ndcg@{k}"] = float(np.mean(dcg_at[:, k - 1] / ideal_dcg))
        results[f"hit_rate@{k}"] = float(np.mean(user_hits > 0))
    return results


class TopKEvaluator:
    """Top-K metrics of a model over the whole catalogue, for every user with relevant items.

    A user's candidates are all items except the items of the user's `train` rows (any label);
    the relevant items are the user's positive rows of `split` that are candidates (an item the
    user trained on is never recommended, so it could never be a hit). Users without relevant
    items are left out. See `ranking_metrics` for the metrics.

    The index arrays are built once here, so one evaluator serves every epoch of a run. Each
    call computes all item vectors once, then per batch of users scores every item at once
    (U Vᵀ, or the RS head on every pair), masks training items with -inf by a scatter, takes
    tf.math.top_k and gathers the relevance of the top items.
    """

    def __init__(self, train: np.ndarray, split: np.ndarray, n_items: int,
                 ks: Sequence[int] = TOPK_CUTOFFS, user_batch_size: int = 1024):
        if not ks or min(ks) < 1:
            raise ValueError(f"cut-offs K must be integers >= 1, got {ks}")
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.n_items = int(n_items)
        self.user_batch_size = int(user_batch_size)
        train_pairs = np.unique(train[:, :2], axis=0)  # sorted by user, then item
        positives = np.unique(split[split[:, 2] == 1, :2], axis=0)
        positives = positives[~np.isin(self._pair_keys(positives), self._pair_keys(train_pairs))]
        if len(positives) == 0:
            raise ValueError("no user has a positive item outside their training items; "
                             "top-K metrics are undefined")
        self.users, self.n_relevant = np.unique(positives[:, 0], return_counts=True)
        # Rows index self.users; both pair lists stay sorted by row, so a batch is one slice.
        trained = train_pairs[np.isin(train_pairs[:, 0], self.users)]
        self._train_rows = np.searchsorted(self.users, trained[:, 0])
        self._train_items = trained[:, 1]
        self._relevant_rows = np.searchsorted(self.users, positives[:, 0])
        self._relevant_items = positives[:, 1]
        self._model = None
        self._rank_batch = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    def _pair_keys(self, pairs: np.ndarray) -> np.ndarray:
        return pairs[:, 0] * self.n_items + pairs[:, 1]

    def __call__(self, model) -> dict[str, float]:
        """`ranking_metrics` of `model` (an MKR) for the users with relevant items."""
        if model is not self._model:
            self._model, self._rank_batch = model, self._ranker(model)
        item_vectors, _ = model.item_and_head_vectors(tf.range(self.n_items, dtype=tf.int64))
        batch_size = self.user_batch_size
        if not model.use_inner_product:
            batch_size = max(1, min(batch_size, _MLP_PAIRS_PER_BATCH // self.n_items))
        hits = []
        for first in range(0, self.n_users, batch_size):
            last = min(first + batch_size, self.n_users)
            train_slice = slice(*np.searchsorted(self._train_rows, [first, last]))
            relevant_slice = slice(*np.searchsorted(self._relevant_rows, [first, last]))
            hits.append(self._rank_batch(
                tf.constant(self.users[first:last]), item_vectors,
                tf.constant(np.stack([self._train_rows[train_slice] - first,
                                      self._train_items[train_slice]], axis=1)),
                tf.constant(np.stack([self._relevant_rows[relevant_slice] - first,
                                      self._relevant_items[relevant_slice]], axis=1))).numpy())
        hits = np.concatenate(hits)
        # A catalogue smaller than max(ks) ranks fewer items; the missing positions are misses.
        hits = np.pad(hits, [(0, 0), (0, max(self.ks) - hits.shape[1])])
        return ranking_metrics(hits, self.n_relevant, self.ks)

    def _ranker(self, model):
        """A graph function: relevance [users, k] of each user's top k candidates, best first."""
        k = min(max(self.ks), self.n_items)
        index_spec = tf.TensorSpec([None, 2], tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64),
                                      tf.TensorSpec([None, model.dim], tf.float32),
                                      index_spec, index_spec])
        def rank_batch(users, item_vectors, train_indices, relevant_indices):
            user_vectors = model.user_vectors(users)
            if model.use_inner_product:
                # Logits rank as the probabilities do; u · v of every pair in one matmul.
                scores = tf.matmul(user_vectors, item_vectors, transpose_b=True)
            else:
                shape = [tf.shape(users)[0], self.n_items, model.dim]
                scores = model.rs_logits(tf.broadcast_to(user_vectors[:, None, :], shape),
                                         tf.broadcast_to(item_vectors[None, :, :], shape))
            scores = tf.tensor_scatter_nd_update(
                scores, train_indices,
                tf.fill(tf.shape(train_indices)[:1], tf.constant(-np.inf, scores.dtype)))
            _, top_items = tf.math.top_k(scores, k=k)
            relevance = tf.scatter_nd(relevant_indices,
                                      tf.ones(tf.shape(relevant_indices)[:1], tf.bool),
                                      tf.shape(scores, out_type=tf.int64))
            return tf.gather(relevance, top_items, batch_dims=1)

        return rank_batch
