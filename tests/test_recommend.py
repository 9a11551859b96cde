"""Tests of mkr_tf.recommend on a small export made here."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from mkr_tf import export
from mkr_tf import recommend
from tests.test_export import REPO, Sizes, error_lines, small_data, small_model, train_history

SIZES = Sizes(n_users=8, n_items=15, n_entities=25, n_relations=2)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(data, export folder): version 1 has no id maps; version 2 maps item i to artist<i>,
    named Band<i>, and user i to the raw id u<100 + i>."""
    data = small_data(SIZES)
    model = small_model(data)
    base = tmp_path_factory.mktemp("models") / "small"
    export.export_model(model, data, base, log=lambda _: None)
    export.export_model(model, data, base, log=lambda _: None,
                        item_ids=[(f"artist{item}", f"m.{item}") for item in range(data.n_items)],
                        user_ids=[f"u{100 + user}" for user in range(data.n_users)],
                        item_names=[f"Band{item}" for item in range(data.n_items)])
    return data, base


def table_rows(block: str) -> list[list[str]]:
    """The data rows of one user's table: the lines after the title and the header."""
    return [line.split() for line in block.splitlines()[2:]]


class TestLibrary:

    def test_loads_the_newest_version_unless_told(self, exports):
        _, base = exports
        newest = recommend.load(base)
        assert newest.version_dir == base / "2"
        assert newest.raw_item_ids[3] == ("artist3", "m.3", "Band3")
        assert (newest.n_users, newest.n_items) == (SIZES.n_users, SIZES.n_items)
        first = recommend.load(base, version=1)
        assert first.version_dir == base / "1" and first.raw_item_ids is None

    def test_tables_show_the_signature_answer_with_raw_ids(self, exports):
        _, base = exports
        recommender = recommend.load(base)
        item_ids, scores = recommender.top_k([0, 3], 4)
        blocks = recommend.format_recommendations(recommender, [0, 3], 4).split("\n\n")
        assert len(blocks) == 2
        for user, block, user_items, user_scores in zip([0, 3], blocks, item_ids, scores):
            assert block.startswith(f"user u{100 + user} (index {user}): top 4 of "
                                    f"{SIZES.n_items} items")
            assert block.splitlines()[1].split() == ["rank", "item", "item_id", "entity_id",
                                                     "name", "score"]
            assert table_rows(block) == [
                [str(rank), str(item), f"artist{item}", f"m.{item}", f"Band{item}",
                 f"{score:.4f}"]
                for rank, (item, score) in enumerate(zip(user_items, user_scores), start=1)]

    def test_without_a_map_items_are_indices_and_seen_items_are_left_out(self, exports):
        data, base = exports
        recommender = recommend.load(base, version=1)
        history = train_history(data)
        for user, block in enumerate(recommend.format_recommendations(
                recommender, list(range(SIZES.n_users)), SIZES.n_items).split("\n\n")):
            unseen = SIZES.n_items - len(history[user])
            assert block.startswith(f"user {user}: top {unseen} of {SIZES.n_items} items")
            assert block.splitlines()[1].split() == ["rank", "item", "score"]
            items = {int(row[1]) for row in table_rows(block)}
            assert items == set(range(SIZES.n_items)) - history[user]

    @pytest.mark.parametrize("users, k, message", [
        ([0, SIZES.n_users], 3, f"unknown user {SIZES.n_users}: user indices run from 0 to "
                                f"{SIZES.n_users - 1}"),
        ([-1], 3, "unknown user -1"),
        ([0], 0, f"k must be 1 to {SIZES.n_items} \\(the number of items\\), got 0"),
        ([0], SIZES.n_items + 1, f"got {SIZES.n_items + 1}"),
    ])
    def test_bad_requests(self, exports, users, k, message):
        recommender = recommend.load(exports[1])
        with pytest.raises(recommend.RecommendError, match=message):
            recommender.top_k(users, k)

    def test_raw_user_ids_map_to_indices(self, exports):
        _, base = exports
        assert recommend.load(base).user_indices(["u103", "u100"]) == [3, 0]
        with pytest.raises(recommend.RecommendError,
                           match=f"unknown user 'u3': not among the {SIZES.n_users} users"):
            recommend.load(base).user_indices(["u100", "u3"])
        # Without a user map the ids of the processed files are the users' own ids.
        assert recommend.load(base, version=1).user_indices(["3", "0"]) == [3, 0]

    def test_missing_versions(self, exports, tmp_path):
        with pytest.raises(recommend.RecommendError, match="no version 7; it has 1, 2"):
            recommend.load(exports[1], version=7)
        with pytest.raises(recommend.RecommendError, match="no exported versions"):
            recommend.load(tmp_path)


class TestCommandLine:

    def test_several_users_and_an_unknown_one(self, exports):
        _, base = exports
        environment = {**os.environ, "PYTHONPATH": str(REPO)}

        def start(*flags):
            return subprocess.Popen(
                [sys.executable, "-m", "mkr_tf.recommend", f"--model={base}", *flags],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)

        # Both at once: most of each run is importing TensorFlow.
        good, unknown = (start("--user=u100,u103", "--k=3"),
                         start(f"--user_index=1,{SIZES.n_users + 2}"))
        stdout, stderr = good.communicate(timeout=120)
        assert good.returncode == 0, stderr
        expected = recommend.format_recommendations(recommend.load(base), [0, 3], 3)
        assert stdout == expected + "\n"
        assert "artist" in stdout

        stdout, stderr = unknown.communicate(timeout=120)
        assert unknown.returncode == 2 and stdout == ""
        assert error_lines(stderr) == [
            f"mkr_tf.recommend: error: unknown user {SIZES.n_users + 2}: user indices run "
            f"from 0 to {SIZES.n_users - 1}"]
        assert "Traceback" not in stderr
