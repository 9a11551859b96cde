"""Each baseline against a brute-force computation, and its command line."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mkr_tf import baselines
from mkr_tf import data as mkr_data
from mkr_tf import matrix_factorization
from mkr_tf import metrics
from tests.test_trainer import two_taste_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL_MF_GRID = {"dim": (4, 8), "learning_rate": (1e-2,), "l2_weight": (0.01,),
                 "batch_size": (64,), "max_epochs": (10,)}


def _data(seed=0):
    ratings, kg = two_taste_dataset(seed=seed, n_users=60, n_items=30, n_ratings_per_user=10)
    return mkr_data.build_dataset(ratings, kg, seed=seed, log=lambda _: None)


def brute_force_itemknn(train, n_users, n_items, neighbours, shrink):
    """score[u, i] = Σ_{j ∈ I_u ∩ N_k(i)} c_ij / (√c_ii √c_jj + shrink), item by item."""
    liked = np.zeros([n_users, n_items])
    for user, item, label in train:
        if label:
            liked[user, item] = 1
    counts = liked.T @ liked
    similarity = np.zeros([n_items, n_items])
    for i in range(n_items):
        for j in range(n_items):
            if i != j and counts[i, j]:
                similarity[i, j] = counts[i, j] / (np.sqrt(counts[i, i] * counts[j, j]) + shrink)
    kept = np.zeros_like(similarity)
    for i in range(n_items):
        nearest = sorted((j for j in range(n_items) if similarity[i, j]),
                         key=lambda j: (-similarity[i, j], j))[:neighbours]
        kept[i, nearest] = similarity[i, nearest]
    return liked @ kept.T


class PopularityTest(tf.test.TestCase):

    def test_scores_are_training_positive_counts(self):
        # Low items are liked more often, so popularity carries signal and calibration a slope.
        rng = np.random.default_rng(0)
        pairs = np.unique(np.stack([rng.integers(60, size=900), rng.integers(30, size=900)], 1),
                          axis=0)
        labels = (rng.random(len(pairs)) < 1 - pairs[:, 1] / 30).astype(int)
        data = mkr_data.build_dataset(np.column_stack([pairs, labels]),
                                      np.array([[0, 0, 31]]), seed=0, log=lambda _: None)
        counts = np.zeros(data.n_items)
        for _, item, label in data.train:
            counts[item] += label
        popularity = baselines.Popularity(data)
        self.assertAllEqual(popularity.scores(data.test), counts[data.test[:, 1]])
        catalogue = popularity.catalogue_scores(tf.constant([0, 1, 2])).numpy()
        self.assertAllEqual(catalogue, np.tile(counts, [3, 1]))
        probabilities = popularity.predict(data.test)
        self.assertTrue(((probabilities > 0) & (probabilities < 1)).all())
        self.assertGreater(popularity.calibration[0], 0)
        # Calibration is monotone: it leaves the ranking, hence the AUC, as the counts give it.
        self.assertAllClose(metrics.auc(data.test[:, 2], probabilities),
                            metrics.auc(data.test[:, 2], counts[data.test[:, 1]]))


    def test_calibration_never_reverses_the_ranking(self):
        # Popular items are disliked here: the fit may flatten the scores, never invert them.
        data = _data()
        eval_rows = data.eval.copy()
        counts = metrics.item_popularity(data.train, data.n_items)
        eval_rows[:, 2] = (counts[eval_rows[:, 1]] < np.median(counts)).astype(int)
        popularity = baselines.Popularity(mkr_data.MKRData(**{**data.__dict__, "eval": eval_rows}))
        self.assertGreaterEqual(popularity.calibration[0], 0)
        order = np.argsort(popularity.scores(data.test), kind="stable")
        self.assertTrue((np.diff(popularity.predict(data.test)[order]) >= -1e-12).all())


class ItemKNNTest(tf.test.TestCase):

    def test_matches_brute_force(self):
        data = _data()
        for neighbours, shrink in ((3, 0.0), (10, 5.0)):
            with self.subTest(neighbours=neighbours, shrink=shrink):
                knn = baselines.ItemKNN(data, neighbours, shrink)
                expected = brute_force_itemknn(data.train, data.n_users, data.n_items, neighbours,
                                               shrink)
                self.assertAllClose(knn.scores(data.test),
                                    expected[data.test[:, 0], data.test[:, 1]], atol=1e-5)
                users = np.arange(data.n_users)
                self.assertAllClose(knn.catalogue_scores(tf.constant(users)).numpy(), expected,
                                    atol=1e-5)

    def test_an_item_without_training_positives_scores_zero(self):
        data = _data().with_cold_items(0.2, seed=0)
        knn = baselines.ItemKNN(data)
        self.assertAllEqual(knn.scores(data.cold_rows("test")), np.zeros(len(data.cold_rows("test"))))

    def test_grid_picks_the_best_eval_auc(self):
        data = _data()
        tried = []
        best = baselines.best_itemknn(data, {"neighbours": (1, 20), "shrink": (0.0,)},
                                      log=tried.append)
        aucs = {n: metrics.auc(data.eval[:, 2], baselines.ItemKNN(data, n, 0.0).scores(data.eval))
                for n in (1, 20)}
        self.assertEqual(best.settings["neighbours"], max(aucs, key=aucs.get))
        self.assertLen(tried, 2)


class MFTest(tf.test.TestCase):

    def test_catalogue_logits_equal_pair_logits(self):
        model = matrix_factorization.MatrixFactorization(5, 7, dim=3)
        users = np.repeat(np.arange(5), 7)
        items = np.tile(np.arange(7), 5)
        pairs = model.logits_and_l2(tf.constant(users), tf.constant(items))[0].numpy()
        self.assertAllClose(model.catalogue_logits(tf.constant(np.arange(5))).numpy(),
                            pairs.reshape(5, 7))

    def test_learns_and_never_reads_the_test_split(self):
        ratings, kg = two_taste_dataset()
        data = mkr_data.build_dataset(ratings, kg, seed=0, log=lambda _: None)
        mf = matrix_factorization.MF(data, seed=0, grid=SMALL_MF_GRID)
        self.assertGreater(metrics.auc(data.test[:, 2], mf.predict(data.test)), 0.7)
        # Scrambled test labels change nothing that was chosen or learnt.
        scrambled = mkr_data.MKRData(**{**data.__dict__, "test": data.test[:, [0, 1, 2]] * [1, 1, 0]})
        again = matrix_factorization.MF(scrambled, seed=0, grid=SMALL_MF_GRID)
        self.assertEqual(again.settings, mf.settings)
        self.assertAllClose(again.predict(data.test), mf.predict(data.test))
        self.assertIn(mf.settings["dim"], SMALL_MF_GRID["dim"])


def brute_force_neighbour_popularity(data, popularity):
    """n_i = mean p_j over the paths i → entity → item j ≠ i of the KG, walked one by one."""
    linked = [set() for _ in range(data.n_entities)]
    for head, _, tail in data.kg:
        linked[head].add(tail)
        linked[tail].add(head)
    means = np.zeros(data.n_items)
    for item in range(data.n_items):
        reached = [other for entity in linked[item] for other in linked[entity]
                   if other < data.n_items and other != item]
        if reached:
            means[item] = np.mean(popularity[reached])
    return means


class KGPopularityTest(tf.test.TestCase):

    def test_neighbour_popularity_matches_walking_the_paths(self):
        data = _data()
        popularity = metrics.item_popularity(data.train, data.n_items).astype(float)
        # An item–item triple and a repeated one, beside the fixture's item → genre triples.
        data = mkr_data.MKRData(**{**data.__dict__, "kg": np.concatenate(
            [data.kg, [[0, 0, 1], [0, 0, 1], [2, 1, data.n_entities - 1]]])})
        expected = brute_force_neighbour_popularity(data, popularity)
        self.assertGreater(np.ptp(expected), 0)
        self.assertAllClose(baselines.kg_neighbour_popularity(data, popularity), expected)
        model = baselines.KGPopularity(data, weight=0.5)
        self.assertAllClose(model.scores(data.test),
                            (popularity + 0.5 * expected)[data.test[:, 1]], rtol=1e-6)
        self.assertAllClose(baselines.KGPopularity(data, weight=0.0).scores(data.test),
                            baselines.Popularity(data).scores(data.test))

    def test_ranks_cold_items_by_their_kg_neighbours_and_picks_the_weight_on_eval(self):
        # two_taste_dataset's items of one genre are liked alike; a cold item inherits its genre's.
        data = _data().with_cold_items(0.2, seed=0)
        tried = []
        best = baselines.best_kg_popularity(data, (0.0, 1.0), log=tried.append)
        self.assertLen(tried, 2)
        aucs = {w: metrics.auc(data.eval[:, 2], baselines.KGPopularity(data, w).scores(data.eval))
                for w in (0.0, 1.0)}
        self.assertEqual(best.settings["weight"], max(aucs, key=aucs.get))
        cold = data.cold_rows("test")
        self.assertGreater(metrics.auc(cold[:, 2], baselines.KGPopularity(data, 1.0).scores(cold)),
                           0.5)


def brute_force_kg_history(data, weight):
    """score[u, i] of KGHistory, the links of every item pair walked one entity at a time."""
    linked = [set() for _ in range(data.n_entities)]
    for head, _, tail in data.kg:
        linked[head].add(tail)
        linked[tail].add(head)
    similarity = np.zeros([data.n_items, data.n_items])
    for i in range(data.n_items):
        for j in range(data.n_items):
            if i != j:
                similarity[i, j] = sum(1.0 / len(linked[entity])
                                       for entity in linked[i] & linked[j])
    liked = np.zeros([data.n_users, data.n_items])
    for user, item, label in data.train:
        liked[user, item] = max(liked[user, item], label)
    popularity = metrics.item_popularity(data.train, data.n_items).astype(float)
    return popularity / popularity.max() + weight * liked @ similarity


class KGHistoryTest(tf.test.TestCase):

    def test_scores_match_walking_the_shared_entities(self):
        data = _data()
        # An item–item triple and a repeated one, beside the fixture's item → genre triples.
        data = mkr_data.MKRData(**{**data.__dict__, "kg": np.concatenate(
            [data.kg, [[0, 0, 1], [0, 0, 1], [2, 1, data.n_entities - 1]]])})
        expected = brute_force_kg_history(data, 0.5)
        model = baselines.KGHistory(data, weight=0.5)
        rows = data.test
        self.assertAllClose(model.scores(rows), expected[rows[:, 0], rows[:, 1]], rtol=1e-5)
        users = np.unique(rows[:, 0])
        self.assertAllClose(model.catalogue_scores(tf.constant(users)), expected[users],
                            rtol=1e-5)

    def test_links_a_user_to_the_items_sharing_entities_with_theirs(self):
        # two_taste_dataset's users like one genre; the genre entity links its items.
        data = _data()
        tried = []
        best = baselines.best_kg_history(data, (0.1, 1.0), log=tried.append)
        self.assertLen(tried, 2)
        self.assertIn(best.settings["weight"], (0.1, 1.0))
        self.assertGreater(metrics.auc(data.test[:, 2], best.scores(data.test)),
                           metrics.auc(data.test[:, 2], baselines.Popularity(data).scores(
                               data.test)))


class BaselinesCommandTest(tf.test.TestCase):

    def test_json_has_every_baseline_with_test_auc_and_ndcg(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        ratings, kg = two_taste_dataset(n_users=80, n_items=40)
        mkr_data.write_processed(root / "tiny", ratings, kg)
        result = subprocess.run(
            [sys.executable, "-m", "mkr_tf.baselines", "--dataset=tiny", f"--data_dir={root}",
             f"--cache_dir={root / 'cache'}", "--seed=2", "--json", "--cold_items=0.2"],
            capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"))
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = json.loads(result.stdout)
        self.assertEqual(set(printed["baselines"]), set(baselines.NAMES))
        for name, figures in printed["baselines"].items():
            with self.subTest(name):
                self.assertBetween(figures["test"]["auc"], 0, 1)
                self.assertBetween(figures["test"]["ndcg@10"], 0, 1)
                self.assertIn("coverage@10", figures["test"])
                self.assertIn("auc", figures["cold_test"])
        # Popularity and ItemKNN know nothing of a cold item: chance.
        self.assertEqual(printed["baselines"]["popularity"]["cold_test"]["auc"], 0.5)
        self.assertEqual(printed["baselines"]["itemknn"]["cold_test"]["auc"], 0.5)
        # The split is the one train makes for that seed.
        expected = mkr_data.load_dataset("tiny", root, root / "cache", 2).with_cold_items(0.2, 2)
        self.assertEqual(printed["statistics"], expected.statistics())


if __name__ == "__main__":
    tf.test.main()
