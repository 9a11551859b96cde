"""The one catalogue ranker against brute-force sorting, under both exclusion policies."""

import numpy as np
import tensorflow as tf

from mkr_tf import ranking

N_USERS, N_ITEMS = 6, 9


def _train():
    rng = np.random.default_rng(0)
    rows = np.stack([rng.integers(N_USERS, size=30), rng.integers(N_ITEMS, size=30),
                     rng.integers(2, size=30)], axis=1)
    # User 5 has trained on all items but one: its lists run short.
    return np.concatenate([rows[rows[:, 0] != 5],
                           [[5, item, item % 2] for item in range(N_ITEMS - 1)]])


def brute_force(scores, train, k, exclusions, candidates=None):
    """Each user's candidates sorted by (−score, item), cut at k and padded with -1."""
    lists = []
    for user in range(scores.shape[0]):
        rows = train[train[:, 0] == user]
        if exclusions == "train_positives":
            rows = rows[rows[:, 2] == 1]
        allowed = set(range(N_ITEMS) if candidates is None else candidates) - set(rows[:, 1])
        ranked = sorted(allowed, key=lambda item: (-scores[user, item], item))[:k]
        lists.append(ranked + [-1] * (k - len(ranked)))
    return np.array(lists)


class CatalogueRankerTest(tf.test.TestCase):

    def test_matches_brute_force_with_ties_and_exclusions(self):
        train = _train()
        # Rounded scores, so that ties occur and must go to the lower item index.
        scores = np.round(np.random.default_rng(1).random([N_USERS, N_ITEMS]), 1).astype(np.float32)
        for exclusions in ranking.EXCLUSIONS:
            for candidates in (None, np.array([1, 4, 5, 8])):
                with self.subTest(exclusions=exclusions, candidates=candidates):
                    ranker = ranking.CatalogueRanker(train, N_USERS, N_ITEMS, exclusions,
                                                     candidates=candidates)
                    users = np.arange(N_USERS)
                    ranked = ranker.rank(users, lambda batch: tf.gather(scores, batch), k=5,
                                         users_per_batch=4)
                    self.assertAllEqual(ranked, brute_force(scores, train, 5, exclusions,
                                                            candidates))

    def test_the_two_policies_differ_on_sampled_negatives(self):
        train = np.array([[0, 0, 1], [0, 1, 0]])
        scores = tf.constant([[3.0, 2.0, 1.0]])
        evaluation = ranking.CatalogueRanker(train, 1, 3, "train_items")
        serving = ranking.CatalogueRanker(train, 1, 3, "train_positives")
        self.assertAllEqual(evaluation.top_k(tf.constant([0]), scores, 2)[0], [[2, -1]])
        self.assertAllEqual(serving.top_k(tf.constant([0]), scores, 2)[0], [[1, 2]])

    def test_unknown_policy(self):
        with self.assertRaisesRegex(ValueError, "exclusions must be one of"):
            ranking.CatalogueRanker(np.zeros([1, 3], np.int64), 1, 1, "everything")


if __name__ == "__main__":
    tf.test.main()
