"""CTR metrics (exact rank-based AUC, accuracy at 0.5) and top-K metrics over the whole catalogue."""

from typing import Sequence

import numpy as np

from mkr_tf import errors
from mkr_tf import lazy

# Imported when top-K first runs: the CLIs read TOPK_CUTOFFS for their flags' defaults.
tf = lazy.load("tensorflow")
ranking = lazy.load("mkr_tf.ranking")


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


def beyond_accuracy(top_items: np.ndarray, item_popularity: np.ndarray, n_candidates: int,
                   ks: Sequence[int] = TOPK_CUTOFFS) -> dict[str, float]:
    """Whether a model personalises, from the users' ranked lists `top_items` [users, >= max(ks)].

    `top_items` holds item indices (-1: an empty place), `item_popularity[i]` the number of
    training positives of item i, `n_candidates` the number of items that could be ranked.

        distinct@K               |∪_u top_K(u)|, the items that appear in any user's top K
        coverage@K               distinct@K / n_candidates
        popularity_percentile@K  mean over all recommended places of the item's percentile rank
                                 of popularity among all items, 100 · (#less + #equal / 2) / n
                                 (50 for a random pick, near 100 for a most-popular list)
    """
    top_items = np.asarray(top_items)
    popularity = np.asarray(item_popularity)
    order = np.sort(popularity)
    percentile = 100.0 * (np.searchsorted(order, popularity, side="left")
                          + np.searchsorted(order, popularity, side="right")) / (2.0 * len(order))
    results = {}
    for k in ks:
        top = top_items[:, :k]
        recommended = top[top >= 0]
        distinct = len(np.unique(recommended))
        results[f"distinct@{k}"] = float(distinct)
        results[f"coverage@{k}"] = distinct / max(int(n_candidates), 1)
        results[f"popularity_percentile@{k}"] = (float(percentile[recommended].mean())
                                                 if len(recommended) else float("nan"))
    return results


def item_popularity(train: np.ndarray, n_items: int) -> np.ndarray:
    """The number of training positives of each item."""
    return np.bincount(train[train[:, 2] == 1, 1], minlength=n_items)


class TopKEvaluator:
    """Top-K metrics of a recommender over the whole catalogue, for every user with relevant items.

    A user's candidates are the `candidates` items (default: all) except the items of the
    user's `train` rows (any label); the relevant items are the user's positive rows of `split`
    that are candidates (an item the user trained on is never recommended, so it could never be
    a hit). Users without relevant items are left out. See `ranking_metrics` for the metrics and
    `beyond_accuracy` for the `details` ones.

    The ranking goes through `ranking.CatalogueRanker`, the ranker the export serves with (under
    the "train_items" exclusions), so one evaluator serves every epoch of a run and every
    baseline. Call it with an MKR model or with a `score_fn(users) -> [users, n_items]` scores.
    """

    def __init__(self, train: np.ndarray, split: np.ndarray, n_items: int,
                 ks: Sequence[int] = TOPK_CUTOFFS, user_batch_size: int = 1024,
                 candidates: np.ndarray | None = None):
        if not ks or min(ks) < 1:
            raise errors.ConfigError(f"cut-offs K must be integers >= 1, got {ks}")
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.n_items = int(n_items)
        self.user_batch_size = int(user_batch_size)
        positives = np.unique(split[split[:, 2] == 1, :2], axis=0)
        if candidates is not None:
            positives = positives[np.isin(positives[:, 1], candidates)]
        trained = np.unique(self._pair_keys(train))
        positives = positives[~np.isin(self._pair_keys(positives), trained)]
        if len(positives) == 0:
            raise errors.DataError("no user has a positive item outside their training items; "
                             "top-K metrics are undefined")
        self.users, self.n_relevant = np.unique(positives[:, 0], return_counts=True)
        self._relevant_keys = self._pair_keys(positives)
        n_users = int(max(train[:, 0].max(initial=0), self.users.max())) + 1
        self.ranker = ranking.CatalogueRanker(train, n_users, self.n_items, "train_items",
                                              candidates=candidates)
        self.item_popularity = item_popularity(train, self.n_items)
        self._model = None
        self._mkr_scores = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    def _pair_keys(self, pairs: np.ndarray) -> np.ndarray:
        return pairs[:, 0].astype(np.int64) * self.n_items + pairs[:, 1]

    def top_items(self, recommender) -> np.ndarray:
        """Each evaluated user's ranked top max(ks) items [n_users, max(ks)], -1 padded."""
        score_fn, users_per_batch = self._score_fn(recommender)
        top = self.ranker.rank(self.users, score_fn, max(self.ks), users_per_batch)
        # A catalogue smaller than max(ks) ranks fewer items; the missing places are misses.
        return np.pad(top, [(0, 0), (0, max(self.ks) - top.shape[1])], constant_values=-1)

    def __call__(self, recommender) -> dict[str, float]:
        """`ranking_metrics` of `recommender` for the users with relevant items."""
        return self.evaluate(recommender)[0]

    def evaluate(self, recommender) -> tuple[dict[str, float], dict[str, float]]:
        """(`ranking_metrics`, `beyond_accuracy`) of `recommender`, from one ranking."""
        top = self.top_items(recommender)
        keys = np.repeat(self.users, top.shape[1]).reshape(top.shape) * self.n_items + top
        hits = (top >= 0) & np.isin(keys, self._relevant_keys)
        return (ranking_metrics(hits, self.n_relevant, self.ks),
                beyond_accuracy(top, self.item_popularity, self.ranker.n_candidates, self.ks))

    def trace(self, model) -> None:
        """Builds the graphs that ranking MKR `model` runs, its scores and the ranker's top-k,
        for batches of any size; in a thread while training runs, they are ready when needed."""
        self._scores_function(model).get_concrete_function()
        self.ranker.trace(min(max(self.ks), self.n_items))

    def _scores_function(self, model):
        if model is not self._model:
            self._model = model
            self._mkr_scores = tf.function(
                lambda users, item_vectors: model.catalogue_logits(model.user_vectors(users),
                                                                   item_vectors),
                input_signature=[tf.TensorSpec([None], tf.int64),
                                 tf.TensorSpec([None, None], tf.float32)], autograph=False)
        return self._mkr_scores

    def _score_fn(self, recommender):
        """(score_fn, users per batch): an MKR's is its catalogue logits, item vectors once."""
        if not hasattr(recommender, "item_and_head_vectors"):
            return recommender, self.user_batch_size
        model = recommender
        scores = self._scores_function(model)
        item_vectors, _ = model.item_and_head_vectors(tf.range(self.n_items, dtype=tf.int64))
        return (lambda users: scores(users, item_vectors)), self.user_batch_size
