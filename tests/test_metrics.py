"""Tests of exact AUC and accuracy."""

import itertools

import numpy as np
import tensorflow as tf

from mkr_tf import metrics


def _pairwise_auc(labels, scores):
    """AUC by its definition: P(score of a positive > score of a negative), ties counting 1/2."""
    positives = scores[labels == 1]
    negatives = scores[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


class AucTest(tf.test.TestCase):

    def test_matches_pairwise_definition_with_ties(self):
        rng = np.random.default_rng(3)
        for _ in range(20):
            labels = rng.integers(0, 2, size=40)
            labels[:2] = (0, 1)
            scores = rng.integers(0, 5, size=40) / 4.0  # many ties
            self.assertAlmostEqual(metrics.auc(labels, scores), _pairwise_auc(labels, scores), places=12)

    def test_perfect_reversed_and_constant(self):
        labels = np.array([0, 0, 1, 1])
        self.assertEqual(metrics.auc(labels, np.array([0.1, 0.2, 0.3, 0.4])), 1.0)
        self.assertEqual(metrics.auc(labels, np.array([0.4, 0.3, 0.2, 0.1])), 0.0)
        self.assertEqual(metrics.auc(labels, np.full(4, 0.5)), 0.5)

    def test_one_class_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "both classes"):
            metrics.auc(np.ones(3), np.array([0.1, 0.2, 0.3]))

    def test_nan_scores_are_an_error(self):
        with self.assertRaisesRegex(ValueError, "NaN"):
            metrics.auc(np.array([0, 1]), np.array([np.nan, 0.2]))


class AccuracyTest(tf.test.TestCase):

    def test_threshold_half_counts_as_positive(self):
        labels = np.array([1, 0, 1, 0])
        scores = np.array([0.5, 0.49, 0.2, 0.9])
        self.assertEqual(metrics.accuracy(labels, scores), 0.5)


if __name__ == "__main__":
    tf.test.main()


class BeyondAccuracyTest(tf.test.TestCase):

    def test_a_hand_made_top_k(self):
        top = np.array([[0, 1], [0, 2], [0, -1]])
        # Popularity 5, 3, 3, 0: percentile ranks 87.5, 50, 50, 12.5.
        figures = metrics.beyond_accuracy(top, np.array([5, 3, 3, 0]), n_candidates=4, ks=(1, 2))
        self.assertEqual(figures["distinct@1"], 1)
        self.assertEqual(figures["distinct@2"], 3)
        self.assertAllClose(figures["coverage@1"], 0.25)
        self.assertAllClose(figures["coverage@2"], 0.75)
        self.assertAllClose(figures["popularity_percentile@1"], 87.5)
        self.assertAllClose(figures["popularity_percentile@2"], (87.5 * 3 + 50 * 2) / 5)

    def test_item_popularity_counts_positives_only(self):
        train = np.array([[0, 1, 1], [1, 1, 1], [2, 1, 0], [0, 2, 0]])
        self.assertAllEqual(metrics.item_popularity(train, 4), [0, 2, 0, 0])
