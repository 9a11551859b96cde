"""Tests of mkr_tf.files: a file appears whole or not at all."""

import json

import pytest

from mkr_tf import files


def test_write_json_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    files.write_json(path, {"b": 1, "a": [2]})
    assert json.loads(path.read_text()) == {"a": [2], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path):
    path = tmp_path / "best.weights.h5"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with files.replacing(path) as temporary:
            assert temporary.name == ".tmp-best.weights.h5"  # keeps the suffix Keras needs
            temporary.write_text("half")
            raise OSError("disk full")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5"]
