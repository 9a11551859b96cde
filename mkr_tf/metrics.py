"""CTR metrics: exact rank-based AUC and accuracy at 0.5."""

import numpy as np


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
