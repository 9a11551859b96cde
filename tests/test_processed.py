"""Tests of data_prep.processed, the one writer of the processed format that mkr_tf.data reads."""

import numpy as np

from data_prep import processed
from mkr_tf import data as mkr_data


def test_written_tables_read_back_as_written(tmp_path):
    ratings = np.array([[0, 1, 1], [0, 2, 0], [1, 0, 1], [1, 2, 0]], np.int64)
    kg = np.array([[0, 0, 3], [1, 0, 3], [2, 1, 4]], np.int64)
    processed.write(tmp_path / "tiny", ratings, kg)
    assert (tmp_path / "tiny" / processed.RATINGS_FILE).read_text().splitlines()[0] == "0\t1\t1"
    np.testing.assert_array_equal(
        mkr_data.read_int_table(tmp_path / "tiny" / processed.RATINGS_FILE,
                                ("user", "item", "label")), ratings)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == sorted(
        [processed.RATINGS_FILE, processed.KG_FILE])


def test_chunks_write_the_same_file_as_one_table(tmp_path):
    rows = np.arange(30, dtype=np.int64).reshape(10, 3)
    assert processed.write_table(tmp_path / "whole.txt", [rows]) == 10
    assert processed.write_table(tmp_path / "chunked.txt", [rows[:4], rows[4:9], rows[9:]]) == 10
    assert (tmp_path / "whole.txt").read_bytes() == (tmp_path / "chunked.txt").read_bytes()
