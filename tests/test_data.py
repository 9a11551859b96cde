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
            "1\t2\t1\n\n3\tx\t0\n": r"ratings_final.txt, line 3: item 'x' is not a non-negative integer",
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
        with self.assertRaisesRegex(data.DataError, r"rating row 6: user id 1000000000000 would need a table"):
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
        # 50 users x 40 items, each pair once (a repeated pair would be kept once).
        ratings = np.stack([np.arange(2000) // 40, np.arange(2000) % 40, np.arange(2000) % 2], axis=1)
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


class HardeningTest(tf.test.TestCase):
    """Bad data that used to pass silently, or to fail late."""

    def _folder(self, ratings: str, kg: str) -> pathlib.Path:
        folder = pathlib.Path(self.create_tempdir().full_path)
        _write(folder / data.RATINGS_FILE, ratings)
        _write(folder / data.KG_FILE, kg)
        return folder

    def test_duplicate_pairs_are_kept_once_so_no_pair_is_in_two_splits(self):
        ratings = np.array([[u, i, (u + i) % 2] for u in range(40) for i in range(10)])
        kg = np.array([[i, 0, 10 + i % 2] for i in range(10)])
        messages = []
        doubled = data.build_dataset(np.concatenate([ratings, ratings]), kg, seed=0,
                                     log=messages.append)
        self.assertIn("data: 400 duplicate (user, item) rows dropped", messages[0])
        pairs = [{(u, i) for u, i, _ in split} for split in (doubled.train, doubled.eval,
                                                              doubled.test)]
        self.assertEqual(sum(map(len, pairs)), 400)
        self.assertEmpty(pairs[0] & pairs[1] | pairs[0] & pairs[2] | pairs[1] & pairs[2])
        # Without duplicates nothing changes: the split is the one it always was.
        single = data.build_dataset(ratings, kg, seed=0, log=messages.append)
        self.assertAllEqual(single.test, data.split_ratings(ratings, 0)[2])

    def test_a_pair_with_two_labels_names_both_lines(self):
        folder = self._folder(RATINGS + "\n3\t2\t0\n", "0\t0\t9\n")
        with self.assertRaisesRegex(
                data.DataError, rf"^{folder}/ratings_final.txt, line 26: user 3 item 2 has label "
                                rf"0, but label 1 at {folder}/ratings_final.txt, line 15$"):
            data.load_processed(folder, seed=0)

    def test_one_far_id_is_refused_naming_file_line_and_id(self):
        kg = "".join(f"{i}\t0\t{4 + i}\n" for i in range(4)) + "2\t1\t20000000\n"
        folder = self._folder(RATINGS, kg)
        with self.assertRaisesRegex(
                data.DataError, rf"^{folder}/kg_final.txt, line 5: entity id 20,000,000 makes a "
                                rf"table of 20,000,001 rows for 9 distinct entity ids; renumber "
                                rf"the ids densely, or pass --allow_sparse_ids$"):
            data.load_processed(folder, seed=0)
        allowed = data.load_processed(folder, seed=0, allow_sparse_ids=True)
        self.assertEqual(allowed.n_entities, 20_000_001)

    def test_single_label_ratings_are_refused_before_training(self):
        for label, missing in ((1, "negatives"), (0, "positives")):
            ratings = "".join(f"{u}\t{i}\t{label}\n" for u in range(6) for i in range(4))
            folder = self._folder(ratings, "0\t0\t9\n")
            with self.assertRaisesRegex(data.DataError,
                                        f"every rating has label {label}; AUC needs both, so "
                                        f"add {missing}"):
                data.load_processed(folder, seed=0)

    def test_kg_entities_numbered_among_the_items_are_counted(self):
        # Items 0-3 are rated; 5 and 6 are genres, numbered below item 7, which is rated too.
        ratings = RATINGS + "0\t7\t1\n1\t7\t0\n"
        kg = "0\t0\t5\n1\t0\t6\n2\t0\t5\n7\t1\t3\n"
        messages = []
        data.load_processed(self._folder(ratings, kg), seed=0, log=messages.append)
        self.assertLen(messages, 1)
        self.assertRegex(messages[0], r"warning: 2 ids below the item count 8 \(e\.g\. 5\) are "
                                      r"never rated and only KG tails; they are taken as items")

    def test_a_dataset_is_a_name_and_a_folder_elsewhere_has_its_own_argument(self):
        folder = self._folder(RATINGS, "0\t0\t9\n")
        for name in (str(folder), "../x", ".", "..", ".hidden", "a/b", ""):
            with self.assertRaisesRegex(data.DataError, rf"dataset {name!r} is not a name"):
                data.load_dataset(name, folder.parent, folder.parent, seed=0)
        loaded = data.load_dataset("mine", "/nonexistent", "/nonexistent", seed=0,
                                   processed_dir=folder)
        self.assertEqual(loaded.n_users, 6)
        self.assertEqual(data.check_dataset_name("ml-1m_v2.1"), "ml-1m_v2.1")

    def test_a_folder_in_a_files_place_is_named(self):
        folder = self._folder(RATINGS, "0\t0\t9\n")
        os.remove(folder / data.KG_FILE)
        (folder / data.KG_FILE).mkdir()
        with self.assertRaisesRegex(data.DataError, f"^{folder}/kg_final.txt: is a folder, not "
                                                    f"a file$"):
            data.load_processed(folder, seed=0)

    def test_a_processed_file_without_line_ends_fails_fast(self):
        folder = self._folder(RATINGS, "0\t0\t9\n")
        with open(folder / data.KG_FILE, "wb") as file:
            file.truncate(1 << 30)
        with self.assertRaisesRegex(data.DataError, "line 1: longer than 1,048,576 bytes"):
            data.load_processed(folder, seed=0)


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
