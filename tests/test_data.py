"""Tests of the processed-format loader, the split and the tf.data pipelines."""

import os
import pathlib

import numpy as np
import tensorflow as tf

from mkr_tf import data


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


RATINGS = "".join(f"{u}\t{i}\t{(u + i) % 2}\n" for u in range(6) for i in range(4))


class LoadProcessedTest(tf.test.TestCase):

    def test_sizes_are_max_id_plus_one_and_non_item_heads_are_dropped(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        # User 9 and item 7 exist without users 6-8 / items 4-6: sizes are max id + 1.
        _write(folder / data.RATINGS_FILE, RATINGS + "9\t7\t1\n9 0 0\n")
        _write(folder / data.KG_FILE, "0\t0\t20\n7\t2\t11\n30\t1\t0\n")
        messages = []
        loaded = data.load_processed(folder, seed=0, log=messages.append)
        self.assertEqual((loaded.n_users, loaded.n_items), (10, 8))
        self.assertEqual(loaded.n_entities, 21)
        self.assertEqual(loaded.n_relations, 3)
        self.assertAllEqual(loaded.kg, [[0, 0, 20], [7, 2, 11]])
        self.assertLen(messages, 1)
        self.assertIn("dropped 1 of 3 KG triples", messages[0])
        self.assertEqual(loaded.n_interactions, 26)

    def test_split_is_six_two_two_disjoint_and_seeded(self):
        ratings = np.stack([np.arange(1000), np.arange(1000) % 7, np.arange(1000) % 2], axis=1)
        train, eval_split, test = data.split_ratings(ratings, seed=3)
        self.assertEqual((len(train), len(eval_split), len(test)), (600, 200, 200))
        everything = np.concatenate([train[:, 0], eval_split[:, 0], test[:, 0]])
        self.assertAllEqual(np.sort(everything), np.arange(1000))
        again = data.split_ratings(ratings, seed=3)
        self.assertAllEqual(again[2], test)
        self.assertNotAllEqual(data.split_ratings(ratings, seed=4)[2], test)

    def test_loader_accepts_read_only_folders(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        _write(folder / data.RATINGS_FILE, RATINGS)
        _write(folder / data.KG_FILE, "0\t0\t5\n")
        os.chmod(folder, 0o555)
        try:
            self.assertEqual(data.load_processed(folder, seed=0).n_items, 4)
        finally:
            os.chmod(folder, 0o755)

    def test_bad_files_name_file_and_line(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        _write(folder / data.KG_FILE, "0\t0\t5\n")
        cases = {
            "1\t2\t1\n\n3\tx\t0\n": r"ratings_final.txt: line 3: item 'x' is not a non-negative integer",
            "1\t2\t1\n3\t-4\t0\n": r"line 2: item '-4'",
            "1,2,1\n": r"expected 3 columns",
            "": r"file is empty",
            "1\t2\t1\n1\t2\n": r"line 2: expected 3 columns \(user item label\), found 2",
            "1\t2\t1\n1\t2\t1\t4\n": r"cannot parse",
            "1\t2\t7\n": r"label 7 is not 0 or 1",
        }
        for text, message in cases.items():
            _write(folder / data.RATINGS_FILE, text)
            with self.assertRaisesRegex(data.DataError, message, msg=repr(text)):
                data.load_processed(folder, seed=0)

    def test_missing_file_and_kg_without_item_heads(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        with self.assertRaisesRegex(data.DataError, "ratings_final.txt: file not found"):
            data.load_processed(folder, seed=0)
        _write(folder / data.RATINGS_FILE, RATINGS)
        _write(folder / data.KG_FILE, "50\t0\t5\n")
        with self.assertRaisesRegex(data.DataError, "no KG triple has an item as its head"):
            data.load_processed(folder, seed=0, log=lambda _: None)

    def test_huge_ids_are_refused_before_any_table_is_built(self):
        ratings = np.array([[0, 0, 1], [1, 1, 0], [2, 1, 1], [3, 0, 0], [4, 1, 1], [10**12, 1, 0]])
        with self.assertRaisesRegex(data.DataError, r"user id 1000000000000 \(row 6\)"):
            data.build_dataset(ratings, np.array([[0, 0, 2]]), seed=0)
        with self.assertRaisesRegex(data.DataError, r"tail id 999999999999"):
            data.build_dataset(ratings[:5], np.array([[0, 0, 999999999999]]), seed=0)

    def test_train_ratio_thins_only_the_training_split(self):
        ratings = np.stack([np.arange(1000), np.arange(1000) % 7, np.arange(1000) % 2], axis=1)
        full = data.build_dataset(ratings, np.array([[0, 0, 9]]), seed=0)
        thin = full.with_train_ratio(0.3, seed=0)
        self.assertLen(thin.train, 180)
        self.assertTrue(set(thin.train[:, 0]) <= set(full.train[:, 0]))
        self.assertAllEqual(thin.test, full.test)
        self.assertAllEqual(full.with_train_ratio(0.3, seed=0).train, thin.train)
        self.assertIs(full.with_train_ratio(1.0, seed=0), full)

    def test_cold_items_have_no_training_row_and_keep_every_rating(self):
        ratings = np.stack([np.arange(2000) % 50, np.arange(2000) % 40, np.arange(2000) % 2], axis=1)
        full = data.build_dataset(ratings, np.array([[0, 0, 45]]), seed=3)
        cold = full.with_cold_items(0.2, seed=3)
        self.assertLen(cold.cold_items, 8)  # 20% of the 40 rated items
        self.assertFalse(np.isin(cold.train[:, 1], cold.cold_items).any())
        # Every rating of a cold item is now in eval or test, and no row was lost or made.
        cold_rows = ratings[np.isin(ratings[:, 1], cold.cold_items)]
        moved = np.concatenate([cold.cold_rows("eval"), cold.cold_rows("test")])
        self.assertAllEqual(np.unique(moved, axis=0), np.unique(cold_rows, axis=0))
        self.assertEqual(len(moved), len(cold_rows))
        self.assertEqual(cold.n_interactions, full.n_interactions)
        self.assertGreater(len(cold.cold_rows("eval")), 0)
        self.assertGreater(len(cold.cold_rows("test")), 0)
        # Warm items keep their split; the same seed gives the same split, another seed another.
        self.assertAllEqual(cold.train, full.train[~np.isin(full.train[:, 1], cold.cold_items)])
        again = full.with_cold_items(0.2, seed=3)
        self.assertAllEqual(again.cold_items, cold.cold_items)
        self.assertAllEqual(again.test, cold.test)
        self.assertNotAllEqual(full.with_cold_items(0.2, seed=4).cold_items, cold.cold_items)
        self.assertIs(full.with_cold_items(0.0, seed=3), full)

    def test_too_few_ratings_for_a_split(self):
        with self.assertRaisesRegex(data.DataError, "split is empty"):
            data.build_dataset(np.array([[0, 0, 1], [1, 1, 0]]), np.array([[0, 0, 2]]), seed=0)


class LoadDatasetTest(tf.test.TestCase):

    def test_synthetic_needs_no_files(self):
        empty = self.create_tempdir().full_path
        loaded = data.load_dataset("synthetic", empty, empty, seed=0)
        self.assertGreater(loaded.n_users, 1000)
        self.assertGreater(len(loaded.kg), 1000)

    def test_processed_folder_under_data_dir(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        _write(root / "mine" / data.RATINGS_FILE, RATINGS)
        _write(root / "mine" / data.KG_FILE, "0\t0\t5\n")
        self.assertEqual(data.load_dataset("mine", root, root, seed=0).n_users, 6)

    def test_unknown_dataset(self):
        root = self.create_tempdir().full_path
        with self.assertRaisesRegex(data.DataError, "unknown dataset 'nope'"):
            data.load_dataset("nope", root, root, seed=0)


class ShuffleTest(tf.test.TestCase):

    def test_order_is_a_function_of_the_seed(self):
        rows = np.stack([np.arange(10), np.arange(10) + 100, np.arange(10) % 2], axis=1)
        order = data.shuffled(rows, (0, 1, 0))
        self.assertAllEqual(np.sort(order[:, 0]), np.arange(10))
        self.assertAllEqual(order[:, 1], order[:, 0] + 100)  # rows stay whole
        self.assertAllEqual(data.shuffled(rows, (0, 1, 0)), order)
        self.assertNotAllEqual(data.shuffled(rows, (0, 2, 0)), order)


if __name__ == "__main__":
    tf.test.main()
