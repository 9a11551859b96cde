"""Fresh negatives: k per positive, never a training positive of the user, a function of the seed."""

import numpy as np
import tensorflow as tf

from mkr_tf import negatives


class FreshNegativesTest(tf.test.TestCase):

    def test_k_negatives_per_positive_none_of_them_liked(self):
        rng = np.random.default_rng(0)
        train = np.stack([rng.integers(20, size=300), rng.integers(15, size=300),
                          rng.integers(2, size=300)], axis=1)
        rows = negatives.with_fresh_negatives(train, 15, per_positive=3, seed=(1, 2))
        positives = train[train[:, 2] == 1]
        self.assertAllEqual(rows[:len(positives)], positives)
        drawn = rows[len(positives):]
        self.assertLen(drawn, 3 * len(positives))
        self.assertAllEqual(drawn[:, 2], np.zeros(len(drawn)))
        liked = {(u, i) for u, i, _ in positives}
        self.assertFalse(any((u, i) in liked for u, i, _ in drawn))
        # Each positive's user gets its k negatives.
        self.assertAllEqual(np.bincount(drawn[:, 0], minlength=20),
                            3 * np.bincount(positives[:, 0], minlength=20))

    def test_a_function_of_the_seed(self):
        train = np.array([[0, 0, 1], [1, 1, 1], [1, 2, 0], [2, 3, 1]])
        first = negatives.with_fresh_negatives(train, 50, 4, seed=(0, 1))
        self.assertAllEqual(negatives.with_fresh_negatives(train, 50, 4, seed=(0, 1)), first)
        self.assertNotAllEqual(negatives.with_fresh_negatives(train, 50, 4, seed=(0, 2)), first)

    def test_a_user_who_likes_every_item_gets_no_false_negative(self):
        train = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1]])
        rows = negatives.with_fresh_negatives(train, 2, 5, seed=0)
        self.assertFalse(((rows[:, 0] == 0) & (rows[:, 2] == 0)).any())
        self.assertEqual(((rows[:, 0] == 1) & (rows[:, 2] == 0)).sum(), 5)
        self.assertTrue(((rows[:, 0] == 1) & (rows[:, 2] == 0) <= (rows[:, 1] == 1)).all())


if __name__ == "__main__":
    tf.test.main()
