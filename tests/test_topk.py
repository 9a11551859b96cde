"""Tests of the top-K metrics against brute-force computations, one user at a time."""

import math

import numpy as np
import tensorflow as tf

from mkr_tf import metrics
from mkr_tf.model import MKR

N_USERS, N_ITEMS = 40, 30
KS = (1, 2, 5, 10, 20, 50)  # 50 > N_ITEMS: lists run short of K


def _ratings(seed):
    """Random (user, item, label) rows, with the awkward cases top-K must handle."""
    rng = np.random.default_rng(seed)
    # The last user is kept out of the random rows.
    rows = np.stack([rng.integers(N_USERS - 1, size=600), rng.integers(N_ITEMS, size=600),
                     rng.integers(2, size=600)], axis=1)
    train, test = rows[:400], rows[400:]
    extra_test = [
        (train[0, 0], train[0, 1], 1),   # a positive the user trained on: never relevant
        (test[0, 0], test[0, 1], test[0, 2]),  # a duplicate row
        (N_USERS - 1, 0, 0),             # the last user, with a negative only: left out
    ]
    return train, np.concatenate([test, extra_test])


def brute_force_metrics(scores, train, test, ks):
    """The definitions in metrics.ranking_metrics, user by user, from a [users, items] score table."""
    per_user = []
    for user in range(scores.shape[0]):
        trained = set(train[train[:, 0] == user, 1])
        relevant = set(test[(test[:, 0] == user) & (test[:, 2] == 1), 1]) - trained
        if not relevant:
            continue
        candidates = [item for item in range(scores.shape[1]) if item not in trained]
        # Ties go to the lower item id, as tf.math.top_k breaks them.
        ranked = sorted(candidates, key=lambda item: (-scores[user, item], item))
        figures = {}
        for k in ks:
            hits = [item in relevant for item in ranked[:k]]
            dcg = sum(hit / math.log2(position + 2) for position, hit in enumerate(hits))
            ideal = sum(1 / math.log2(position + 2) for position in range(min(k, len(relevant))))
            figures.update({f"precision@{k}": sum(hits) / k, f"recall@{k}": sum(hits) / len(relevant),
                            f"ndcg@{k}": dcg / ideal, f"hit_rate@{k}": float(any(hits))})
        per_user.append(figures)
    return {name: float(np.mean([figures[name] for figures in per_user])) for name in per_user[0]}


def _model(use_inner_product):
    tf.keras.utils.set_random_seed(3)
    return MKR(N_USERS, N_ITEMS, N_ITEMS + 5, 2, dim=4, L=2, H=2,
               use_inner_product=use_inner_product)


def _all_scores(model):
    """Logits of every (user, item) pair, pair by pair through the model's RS head."""
    users = np.repeat(np.arange(N_USERS), N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), N_USERS)
    item_vectors, _ = model.item_and_head_vectors(tf.constant(items, tf.int64))
    logits = model.rs_logits(model.user_vectors(tf.constant(users, tf.int64)), item_vectors)
    return logits.numpy().reshape(N_USERS, N_ITEMS)


class RankingMetricsTest(tf.test.TestCase):

    def test_a_worked_example(self):
        # One user, 3 relevant items, ranked list hit at positions 1 and 3.
        hits = np.array([[True, False, True, False]])
        figures = metrics.ranking_metrics(hits, np.array([3]), ks=(1, 2, 4))
        self.assertAllClose(
            [figures["precision@2"], figures["recall@2"], figures["hit_rate@1"],
             figures["ndcg@2"], figures["ndcg@4"]],
            [1 / 2, 1 / 3, 1.0, 1 / (1 + 1 / math.log2(3)),
             (1 + 1 / 2) / (1 + 1 / math.log2(3) + 1 / 2)])

    def test_rejects_short_hit_lists_and_users_without_relevant_items(self):
        with self.assertRaisesRegex(ValueError, "shape"):
            metrics.ranking_metrics(np.zeros([2, 5], bool), np.array([1, 1]), ks=(10,))
        with self.assertRaisesRegex(ValueError, "relevant"):
            metrics.ranking_metrics(np.zeros([2, 10], bool), np.array([1, 0]), ks=(10,))


class TopKEvaluatorTest(tf.test.TestCase):

    def test_matches_brute_force_for_both_rs_heads(self):
        train, test = _ratings(seed=0)
        for use_inner_product in (True, False):
            with self.subTest(use_inner_product=use_inner_product):
                model = _model(use_inner_product)
                # Batches of 7 users: several batches and a short last one.
                evaluator = metrics.TopKEvaluator(train, test, N_ITEMS, ks=KS, user_batch_size=7)
                expected = brute_force_metrics(_all_scores(model), train, test, KS)
                self.assertAllClose(evaluator(model), expected, atol=1e-12)

    def test_graphs_traced_ahead_serve_every_batch_without_retracing(self):
        train, test = _ratings(seed=0)
        model = _model(use_inner_product=True)
        evaluator = metrics.TopKEvaluator(train, test, N_ITEMS, ks=KS, user_batch_size=7)
        evaluator.trace(model)
        expected = brute_force_metrics(_all_scores(model), train, test, KS)
        self.assertAllClose(evaluator(model), expected, atol=1e-12)
        # pylint: disable=protected-access
        self.assertEqual(evaluator.ranker._top_items.experimental_get_tracing_count(), 1)

    def test_evaluates_each_user_with_relevant_items_once(self):
        train, test = _ratings(seed=1)
        evaluator = metrics.TopKEvaluator(train, test, N_ITEMS, ks=KS)
        relevant = {(u, i) for u, i, label in test if label} - {(u, i) for u, i, _ in train}
        self.assertAllEqual(evaluator.users, sorted({u for u, _ in relevant}))
        self.assertEqual(evaluator.n_relevant.sum(), len(relevant))
        self.assertNotIn(N_USERS - 1, evaluator.users)

    def test_no_relevant_items_is_an_error(self):
        train, test = _ratings(seed=0)
        with self.assertRaisesRegex(ValueError, "no user has a positive"):
            metrics.TopKEvaluator(train, test[test[:, 2] == 0], N_ITEMS)


if __name__ == "__main__":
    tf.test.main()
