"""Tests of the embedded synthetic dataset: format, determinism and the planted KG signal."""

import numpy as np
import tensorflow as tf

from mkr_tf import data, metrics, synthetic


def _tail_of_item(kg, n_items):
    """The genre entity of each item, read from the KG (one genre triple per item)."""
    tails = np.full(n_items, -1, dtype=np.int64)
    tails[kg[:, 0]] = kg[:, 2]
    return tails


class SyntheticTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.spec = synthetic.SyntheticSpec()
        cls.ratings, cls.kg = synthetic.generate(0)

    def test_deterministic_in_seed(self):
        ratings, kg = synthetic.generate(0)
        self.assertAllEqual(ratings, self.ratings)
        self.assertAllEqual(kg, self.kg)
        other_ratings, _ = synthetic.generate(1)
        self.assertFalse(np.array_equal(other_ratings, self.ratings))

    def test_shapes_and_id_ranges(self):
        spec, ratings, kg = self.spec, self.ratings, self.kg
        self.assertEqual(ratings.dtype, np.int64)
        self.assertEqual(kg.dtype, np.int64)
        self.assertEqual(ratings.shape[1], 3)
        self.assertEqual(kg.shape, (spec.n_items, 3))
        self.assertAllEqual(np.unique(ratings[:, 0]), np.arange(spec.n_users))
        self.assertBetween(int(ratings[:, 1].min()), 0, spec.n_items - 1)
        self.assertBetween(int(ratings[:, 1].max()), 0, spec.n_items - 1)
        self.assertAllInSet(ratings[:, 2], (0, 1))
        # Entity i is item i: every item is the head of exactly one triple, its genre.
        self.assertAllEqual(np.sort(kg[:, 0]), np.arange(spec.n_items))
        self.assertAllInSet(kg[:, 1], range(len(synthetic.RELATIONS)))
        self.assertAllInRange(kg[:, 2], spec.n_items, spec.n_items + spec.n_genres - 1)
        self.assertLen(np.unique(kg[:, 2]), spec.n_genres)

    def test_sizes_fit_the_quick_start(self):
        self.assertBetween(len(self.ratings), 50_000, 300_000)
        n_positives = np.bincount(self.ratings[self.ratings[:, 2] == 1, 0])
        self.assertAllInRange(n_positives, 3, self.spec.n_items // 2)
        self.assertNear(n_positives.mean(), self.spec.mean_positives, 1.0)

    def test_one_never_rated_negative_per_positive(self):
        ratings = self.ratings
        users, labels = ratings[:, 0], ratings[:, 2]
        self.assertAllEqual(np.bincount(users[labels == 1], minlength=self.spec.n_users),
                            np.bincount(users[labels == 0], minlength=self.spec.n_users))
        # No (user, item) pair twice, so no negative is an item the user rated positively.
        pairs = users * self.spec.n_items + ratings[:, 1]
        self.assertLen(np.unique(pairs), len(ratings))

    def test_every_rating_row_loads(self):
        split = data.build_dataset(self.ratings, self.kg, seed=0, log=lambda *_: None)
        self.assertEqual(split.n_users, self.spec.n_users)
        self.assertEqual(split.n_items, self.spec.n_items)
        self.assertEqual(split.n_entities, self.spec.n_items + self.spec.n_genres)
        self.assertLen(split.kg, len(self.kg))

    def test_test_positives_share_tails_with_training_positives(self):
        """The planted signal, read through the KG: on a 6:2:2 split, an item that shares its
        genre tail with many of a user's training positives is likely one of the user's test
        positives, and popularity alone explains little of that."""
        spec = self.spec
        split = data.build_dataset(self.ratings, self.kg, seed=0, log=lambda *_: None)
        tail = _tail_of_item(self.kg, spec.n_items) - spec.n_items
        train_positives = split.train[split.train[:, 2] == 1]
        user_tail_counts = np.zeros((spec.n_users, spec.n_genres))
        np.add.at(user_tail_counts, (train_positives[:, 0], tail[train_positives[:, 1]]), 1)
        user_tail_share = user_tail_counts / np.maximum(user_tail_counts.sum(1, keepdims=True), 1)
        test = split.test
        shares_tail = user_tail_share[test[:, 0], tail[test[:, 1]]]
        kg_auc = metrics.auc(test[:, 2], shares_tail)
        self.assertGreater(kg_auc, 0.75)

        favourite = user_tail_share.argmax(axis=1)
        in_favourite = favourite[test[:, 0]] == tail[test[:, 1]]
        self.assertGreater(in_favourite[test[:, 2] == 1].mean(), 0.7)
        self.assertLess(in_favourite[test[:, 2] == 0].mean(), 0.3)

        popularity = np.bincount(train_positives[:, 1], minlength=spec.n_items)
        popularity_auc = metrics.auc(test[:, 2], popularity[test[:, 1]])
        self.assertLess(popularity_auc, kg_auc - 0.1)

    def test_small_spec(self):
        spec = synthetic.SyntheticSpec(n_users=40, n_items=30, n_genres=3, mean_positives=6)
        ratings, kg = synthetic.generate(3, spec)
        self.assertEqual(int(ratings[:, 0].max()), 39)
        self.assertLess(int(ratings[:, 1].max()), 30)
        self.assertEqual(kg.shape, (30, 3))
        self.assertEqual(int(ratings[:, 2].sum()) * 2, len(ratings))


if __name__ == "__main__":
    tf.test.main()
