"""Fresh RS negatives every epoch, in place of the ones sampled once at preparation.

The prepared data pairs each positive with one never-rated item, fixed for every epoch, so the
model sees the same few negatives again and again. `with_fresh_negatives` keeps an epoch's
positives and draws k new negatives for each: uniform items that are not a training positive of
that user. Only training positives are excluded, so no eval or test rating shapes the sample.
The draw is a pure function of its seed, e.g. (run seed, epoch), so a resumed run draws what an
uninterrupted one would.
"""

import numpy as np

# Redraws of the negatives that hit a training positive; each round redraws all hits at once.
_MAX_REDRAWS = 64


def with_fresh_negatives(train: np.ndarray, n_items: int, per_positive: int, seed) -> np.ndarray:
    """The positive rows of `train` followed by `per_positive` fresh negative rows per positive."""
    positives = train[train[:, 2] == 1]
    users = np.repeat(positives[:, 0], per_positive)
    items, hits = draw_unliked(users, positives, n_items, np.random.default_rng(seed))
    # A user who likes nearly every item may keep a hit after all redraws: drop it, not mislabel it.
    negatives = np.stack([users, items, np.zeros_like(users)], axis=1)[~hits]
    return np.concatenate([positives, negatives])


def draw_unliked(users: np.ndarray, positives: np.ndarray, n_items: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(items, hits): a uniform item for each of `users` that is none of that user's
    `positives` rows (user, item, ...), and where `hits` is True, one that still is after every
    redraw (possible only for a user who likes nearly every item)."""
    items = rng.integers(n_items, size=len(users))
    positive_keys = np.unique(positives[:, 0].astype(np.int64) * n_items + positives[:, 1])
    hits = np.isin(users.astype(np.int64) * n_items + items, positive_keys)
    for _ in range(_MAX_REDRAWS):
        if not hits.any():
            break
        redrawn = np.flatnonzero(hits)
        items[redrawn] = rng.integers(n_items, size=len(redrawn))
        hits[redrawn] = np.isin(users[redrawn].astype(np.int64) * n_items + items[redrawn],
                                positive_keys)
    return items, hits
