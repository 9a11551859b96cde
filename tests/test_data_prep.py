"""Tests of data_prep: the paper's procedure, raw formats, validation, cache, RecBole and CLI.

Every fixture is written by the tests into temporary folders; only TestSharedMusic reads the
real Last.FM files, and skips when ../shared/datasets is absent. Downloads are tested in
test_data_prep_download.py.
"""

import fcntl
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import data_prep
from data_prep import convert
from data_prep import pipeline
from mkr_tf import data as mkr_data
from mkr_tf import runs

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

# Items 10, 20, 30, 40, 50 become items 0..4 (the map's line order), entities e10..e50.
ITEM_MAP = "10\te10\n20\te20\n30\te30\n40\te40\n50\te50\n"
MOVIE_RATINGS = (
    "7::20::5::1\n"    # user 7 (-> user 0) likes item 1
    "7::99::5::2\n"    # movie 99 is not in the map: dropped
    "3::10::4::3\n"    # user 3 (-> user 1) likes item 0
    "3::30::2::4\n"    # below 4: not a positive, and not a negative candidate for user 3
    "7::40::4::5\n"    # user 7 likes item 3
    "5::30::1::6\n"    # user 5 has no positive: skipped
    "3::20::5::7\n")   # user 3 likes item 1
KG = (
    "e10\tgenre\tg1\n"       # kept, g1 -> entity 5
    "e20\tgenre\tg1\n"       # kept
    "x\tdirector\te30\n"     # head x never reached yet: dropped, as in the authors' code
    "g1\tsubgenre\tg2\n"     # head g1 was reached on line 1: kept, g2 -> 6
    "e30\tdirector\tx\n"     # kept, x -> 7
    "x\tstar\te40\n"         # x reached on line 5: kept
    "e50\tstar\te10\n")      # kept, tail is an item
EXPECTED_TRIPLES = [[0, 0, 5], [1, 0, 5], [5, 1, 6], [2, 2, 7], [7, 3, 3], [4, 3, 0]]


def write(path: pathlib.Path, text: str | bytes, encoding: str = "utf-8") -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def write_movie(data_dir: pathlib.Path, ratings: str = MOVIE_RATINGS, item_map: str = ITEM_MAP,
                kg: str = KG) -> pathlib.Path:
    write(data_dir / "movie" / "ratings.dat", ratings)
    write(data_dir / "movie" / "item_index2entity_id.txt", item_map)
    write(data_dir / "movie" / "kg.txt", kg)
    return data_dir


def write_music(data_dir: pathlib.Path, rows: str = "2\t10\t13883\n2\t20\t1\n4\t30\t7\n",
                header: str = "userID\tartistID\tweight\n") -> pathlib.Path:
    write(data_dir / "music" / "user_artists.dat", header + rows)
    write(data_dir / "music" / "item_index2entity_id.txt", ITEM_MAP)
    write(data_dir / "music" / "kg.txt", KG)
    return data_dir


def write_random_movie(data_dir: pathlib.Path, seed: int, n_users: int = 60,
                       n_items: int = 200) -> pathlib.Path:
    """A MovieLens-shaped fixture with enough candidates for the sampling to vary by seed."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, n_users * n_items // 5, replace=False)
    lines = [f"{pair // n_items + 1}::{pair % n_items + 1}::{rng.integers(1, 6)}::0"
             for pair in pairs]
    item_map = "".join(f"{item}\tm{item}\n" for item in range(1, n_items + 1))
    kg = "".join(f"m{item}\tgenre\tg{item % 7}\n" for item in range(1, n_items + 1))
    return write_movie(data_dir, "\n".join(lines) + "\n", item_map, kg)


def prepare(dataset, data_dir, cache_dir, seed=0, **kwargs):
    messages = []
    kwargs.setdefault("download", False)
    output = data_prep.prepare(dataset, data_dir, cache_dir, seed, log=messages.append,
                               **kwargs)
    return output, messages


def read_rows(path: pathlib.Path) -> list[list[int]]:
    return [[int(field) for field in line.split("\t")] for line in path.read_text().splitlines()]


def by_user(rows: list[list[int]]) -> dict[int, dict[int, set[int]]]:
    """user -> label -> items."""
    result = {}
    for user, item, label in rows:
        result.setdefault(user, {0: set(), 1: set()})[label].add(item)
    return result


class TestPaperProcedure:

    def test_movie_ratings(self, tmp_path):
        output, messages = prepare("movie", write_movie(tmp_path / "data"), tmp_path / "cache")
        rows = read_rows(output / "ratings_final.txt")
        users = by_user(rows)
        assert users[0][1] == {1, 3} and users[1][1] == {0, 1}
        assert len(users[0][0]) == 2 and users[0][0] <= {0, 2, 4}
        # Item 2 was rated below 4 by user 1: neither positive nor negative candidate.
        assert users[1][0] == {3, 4}
        assert [user for user, _, _ in rows] == [0, 0, 0, 0, 1, 1, 1, 1]
        assert [label for user, _, label in rows if user == 0] == [1, 1, 0, 0]
        meta = data_prep.read_meta(output)
        assert meta["statistics"] == dict(users=2, items=5, interactions=8, entities=8,
                                          relations=4, triples=6, positives=4, negatives=4)
        assert meta["warnings"]["users_without_positives"] == 1
        assert meta["warnings"]["interactions_on_unlisted_items"] == 1
        assert any("1 users have no positive" in message for message in messages)

    def test_kg_follows_the_authors_numbering_and_drops_unreached_heads(self, tmp_path):
        output, messages = prepare("movie", write_movie(tmp_path / "data"), tmp_path / "cache")
        assert read_rows(output / "kg_final.txt") == EXPECTED_TRIPLES
        meta = data_prep.read_meta(output)
        assert meta["warnings"]["triples_with_unreached_head"] == 1
        assert meta["warnings"]["triples_with_non_item_head"] == 2
        assert any("1 triples of kg.txt have a head" in message for message in messages)

    def test_rating_threshold_overrides_the_default(self, tmp_path):
        output, _ = prepare("movie", write_movie(tmp_path / "data"), tmp_path / "cache",
                            rating_threshold=5)
        users = by_user(read_rows(output / "ratings_final.txt"))
        # Only the 5s are positives; user 1's 4 on item 0 now only blocks item 0 as negative.
        assert users[0][1] == {1} and users[1][1] == {1}
        assert 0 not in users[1][0]
        assert data_prep.read_meta(output)["rating_threshold"] == 5

    def test_music_every_row_is_positive(self, tmp_path):
        output, _ = prepare("music", write_music(tmp_path / "data"), tmp_path / "cache")
        users = by_user(read_rows(output / "ratings_final.txt"))
        assert users[0][1] == {0, 1} and users[1][1] == {2}
        assert len(users[0][0]) == 2 and len(users[1][0]) == 1

    def test_book_quoted_latin1_and_every_rating_positive(self, tmp_path):
        data_dir = tmp_path / "data"
        write(data_dir / "book" / "BX-Book-Ratings.csv",
              '"User-ID";"ISBN";"Book-Rating"\n'
              '"276725";"034545104X";"0"\n'
              '"276726";"0155061224";"5"\n'
              '"276727";"3442;é";"0"\n'       # ';' inside quotes, a latin-1 byte
              '"276727";"0000000000";"9"\n', encoding="latin-1")
        write(data_dir / "book" / "item_index2entity_id.txt",
              "034545104X\t0\n0155061224\t1\n3442;é\t2\n")
        write(data_dir / "book" / "kg.txt", "0\tbook.author\t7\n2\tbook.author\t7\n")
        output, _ = prepare("book", data_dir, tmp_path / "cache")
        rows = read_rows(output / "ratings_final.txt")
        assert [row for row in rows if row[2] == 1] == [[0, 0, 1], [1, 1, 1], [2, 2, 1]]
        meta = data_prep.read_meta(output)
        assert meta["statistics"]["entities"] == 4
        assert meta["warnings"]["interactions_on_unlisted_items"] == 1

    def test_user_with_more_positives_than_candidates(self, tmp_path):
        ratings = "1::10::5::0\n1::20::5::0\n1::30::5::0\n1::40::5::0\n2::10::5::0\n"
        output, messages = prepare("movie", write_movie(tmp_path / "data", ratings),
                                   tmp_path / "cache")
        users = by_user(read_rows(output / "ratings_final.txt"))
        assert users[0][0] == {4}  # the only unrated item
        warnings = data_prep.read_meta(output)["warnings"]
        assert warnings["users_short_of_negatives"] == 1
        assert warnings["missing_negatives"] == 3
        assert any("negatives short" in message for message in messages)

    def test_seeded_and_reproducible(self, tmp_path):
        data_dir = write_random_movie(tmp_path / "data", seed=1)
        first, _ = prepare("movie", data_dir, tmp_path / "cache_a", seed=3)
        again, _ = prepare("movie", data_dir, tmp_path / "cache_b", seed=3)
        other, _ = prepare("movie", data_dir, tmp_path / "cache_a", seed=4)
        text = (first / "ratings_final.txt").read_text()
        assert text == (again / "ratings_final.txt").read_text()
        assert text != (other / "ratings_final.txt").read_text()

    def test_negatives_are_distinct_unrated_items(self, tmp_path):
        data_dir = write_random_movie(tmp_path / "data", seed=2)
        output, _ = prepare("movie", data_dir, tmp_path / "cache")
        rated, first_seen = {}, []  # raw user -> items; raw users by first positive
        for line in (data_dir / "movie" / "ratings.dat").read_text().splitlines():
            user, item, rating, _ = map(int, line.split("::"))
            rated.setdefault(user, set()).add(item - 1)
            if rating >= 4 and user not in first_seen:
                first_seen.append(user)
        rows = read_rows(output / "ratings_final.txt")
        negatives = [(user, item) for user, item, label in rows if label == 0]
        assert len(set(negatives)) == len(negatives)
        users = by_user(rows)
        assert len(users) == len(first_seen)
        for user, labels in users.items():
            assert labels[1] <= rated[first_seen[user]]
            assert not labels[0] & rated[first_seen[user]]
            assert len(labels[0]) == len(labels[1])


class TestSampling:

    def test_draws_are_distinct_and_in_range(self):
        rng = np.random.default_rng(0)
        population = np.array([5, 100, 7, 1, 0, 50])
        counts = np.array([5, 3, 6, 1, 0, 49])
        groups, values = convert.sample_without_replacement(rng, population, counts)
        assert np.bincount(groups, minlength=6).tolist() == counts.tolist()
        assert (values < population[groups]).all() and (values >= 0).all()
        assert len(set(zip(groups.tolist(), values.tolist()))) == len(groups)

    @pytest.mark.parametrize("count", [2, 8])  # the sparse and the dense path
    def test_uniform(self, count):
        hits = np.zeros(10)
        for seed in range(2000):
            groups, values = convert.sample_without_replacement(
                np.random.default_rng(seed), np.array([10]), np.array([count]))
            hits += np.bincount(values, minlength=10)
        np.testing.assert_allclose(hits / 2000, count / 10, atol=0.05)


class TestValidation:
    """Bad input raises DataError naming the file and the line."""

    @pytest.mark.parametrize("ratings, expected", [
        ("1::10::5::0\n1::20::5\n", r"ratings\.dat, line 2: expected 4 '::'-separated"),
        ("1::10::5::0\n1::20::5::0::9\n", r"ratings\.dat, line 2: expected 4 '::'-separated "
                                         r"fields, found 5"),
        ("1::10::5::0\n\nabc::20::5::0\n", r"ratings\.dat, line 3: user id 'abc' is not an "
                                          r"integer"),
        ("1::10::5::0\n2::1e::5::0\n", r"ratings\.dat, line 2: item id '1e' is not an integer"),
        ("1::10::five::0\n", r"ratings\.dat, line 1: rating 'five' is not a number"),
        ("1,10,5,0\n2,20,5,0\n", r"ratings\.dat, line 1: expected 4 '::'-separated fields, "
                                 r"found 1"),
        ("", r"ratings\.dat: file is empty"),
        ("1::11::5::0\n", r"ratings\.dat: no rating at or above 4 is on an item listed"),
    ])
    def test_movie_ratings(self, tmp_path, ratings, expected):
        with pytest.raises(data_prep.DataError, match=expected):
            prepare("movie", write_movie(tmp_path / "data", ratings), tmp_path / "cache")

    @pytest.mark.parametrize("header, rows, expected", [
        ("userID\tartistID\tweight\n", "2\t10\t1\n2\t20\t1\t5\n",
         r"user_artists\.dat, line 3: expected 3 tab-separated fields, found 4"),
        ("userID\tartistID\tweight\n", "2\tx\t1\n", r"line 2: item id 'x' is not an integer"),
        ("userID\tartistID\tweight\n", "2,10,1\n", r"line 2: expected 3 tab-separated"),
        ("userID,artistID,weight\n", "2,10,1\n", r"line 1: expected 3 tab-separated fields, "
                                                 r"found 1"),
        ("userID\tartistID\tweight\n", "", r"user_artists\.dat: file has a header but no data"),
        ("", "2\t10\t1\n2\t20\t1\n",
         r"line 1: expected the header 'userID\\tartistID\\tweight'"),
    ])
    def test_music_ratings(self, tmp_path, header, rows, expected):
        with pytest.raises(data_prep.DataError, match=expected):
            prepare("music", write_music(tmp_path / "data", rows, header), tmp_path / "cache")

    @pytest.mark.parametrize("item_map, kg, expected", [
        (ITEM_MAP, "", r"kg\.txt: file is empty"),
        (ITEM_MAP, "e10\tgenre\n", r"kg\.txt, line 1: expected 3 tab-separated"),
        (ITEM_MAP, "a\tgenre\tb\nb\tgenre\te10\n",
         r"kg\.txt: none of its 2 triples has a head listed in item_index2entity_id\.txt"),
        ("10\te10\n10\te11\n", KG, r"item_index2entity_id\.txt, line 2: item 10 is already "
                                   r"listed on line 1"),
        ("10\te10\n11\te10\n", KG, r"item_index2entity_id\.txt, line 2: entity 'e10' is "
                                   r"already listed on line 1"),
        ("10 e10\n", KG, r"item_index2entity_id\.txt, line 1: expected 2 tab-separated"),
    ])
    def test_kg_files(self, tmp_path, item_map, kg, expected):
        with pytest.raises(data_prep.DataError, match=expected):
            prepare("movie", write_movie(tmp_path / "data", item_map=item_map, kg=kg),
                    tmp_path / "cache")

    def test_book_user_id_must_be_an_integer(self, tmp_path):
        data_dir = tmp_path / "data"
        write(data_dir / "book" / "BX-Book-Ratings.csv",
              '"User-ID";"ISBN";"Book-Rating"\n"u1";"034545104X";"0"\n')
        write(data_dir / "book" / "item_index2entity_id.txt", "034545104X\t0\n")
        write(data_dir / "book" / "kg.txt", "0\tbook.author\t7\n")
        with pytest.raises(data_prep.DataError,
                           match=r"BX-Book-Ratings\.csv, line 2: user id 'u1' is not an integer"):
            prepare("book", data_dir, tmp_path / "cache")

    def test_missing_files_without_download_say_what_to_place_where(self, tmp_path):
        data_dir = tmp_path / "data"
        write(data_dir / "music" / "kg.txt", KG)
        with pytest.raises(data_prep.DataError) as raised:
            prepare("music", data_dir, tmp_path / "cache")
        message = str(raised.value)
        assert "\n" not in message
        assert f"Place these files in {data_dir / 'music'}" in message
        assert "user_artists.dat from https://files.grouplens.org/" in message
        assert "item_index2entity_id.txt from https://raw.githubusercontent.com/" in message
        assert "kg.txt from" not in message

    @pytest.mark.parametrize("kwargs, expected", [
        (dict(dataset="news"), "unknown dataset 'news'"),
        (dict(dataset="movie", seed=-1), "seed must be a non-negative integer"),
        (dict(dataset="movie", rating_threshold=float("nan")), "rating threshold must be"),
    ])
    def test_bad_arguments(self, tmp_path, kwargs, expected):
        with pytest.raises(data_prep.DataError, match=expected):
            data_prep.prepare(data_dir=write_movie(tmp_path / "data"),
                              cache_dir=tmp_path / "cache", download=False,
                              log=lambda message: None, **kwargs)


class TestCache:

    def test_second_run_is_up_to_date(self, tmp_path):
        data_dir = write_movie(tmp_path / "data")
        first, _ = prepare("movie", data_dir, tmp_path / "cache")
        written = {path.name: path.stat().st_mtime_ns for path in first.iterdir()}
        second, messages = prepare("movie", data_dir, tmp_path / "cache")
        assert second == first
        assert messages == [f"movie: up to date: {first}"]
        assert {path.name: path.stat().st_mtime_ns for path in first.iterdir()} == written

    def test_layout_and_meta(self, tmp_path):
        data_dir = write_movie(tmp_path / "data")
        output, _ = prepare("movie", data_dir, tmp_path / "cache", seed=7)
        assert output.parent == tmp_path / "cache" / "movie"
        assert output.name.startswith("seed7-")
        assert sorted(path.name for path in output.iterdir()) == [
            "kg_final.txt", "meta.json", "ratings_final.txt"]
        assert [path.name for path in output.parent.iterdir()] == [output.name]  # no staging
        meta = data_prep.read_meta(output)
        ratings = data_dir / "movie" / "ratings.dat"
        assert meta["seed"] == 7 and meta["rating_threshold"] == 4
        assert meta["inputs"]["ratings.dat"] == dict(
            path=str(ratings), sha256=hashlib.sha256(ratings.read_bytes()).hexdigest())
        assert set(meta["inputs"]) == {"ratings.dat", "item_index2entity_id.txt", "kg.txt"}

    def test_key_follows_inputs_seed_and_threshold(self, tmp_path):
        data_dir = write_movie(tmp_path / "data")
        cache = tmp_path / "cache"
        base, _ = prepare("movie", data_dir, cache)
        assert prepare("movie", data_dir, cache, seed=1)[0] != base
        assert prepare("movie", data_dir, cache, rating_threshold=5)[0] != base
        write(data_dir / "movie" / "kg.txt", KG + "e20\tstar\tz\n")
        changed, messages = prepare("movie", data_dir, cache)
        assert changed != base and not any("up to date" in message for message in messages)

    def test_failed_write_leaves_nothing_behind(self, tmp_path, monkeypatch):
        def fail(directory, ratings, kg):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(pipeline.processed, "write", fail)
        with pytest.raises(data_prep.DataError, match="cannot write the cache"):
            prepare("movie", write_movie(tmp_path / "data"), tmp_path / "cache")
        assert list((tmp_path / "cache" / "movie").iterdir()) == []

    def test_data_dir_is_only_read(self, tmp_path):
        data_dir = write_movie(tmp_path / "data")
        before = {path: path.read_bytes() for path in data_dir.rglob("*")
                  if path.is_file()}
        prepare("movie", data_dir, tmp_path / "cache")
        assert {path: path.read_bytes() for path in data_dir.rglob("*")
                if path.is_file()} == before


class TestRecBole:

    INTER = ("timestamp:float\titem_id:token\trating:float\tuser_id:token\n"
             "1\ti1\t5\tu_a\n"
             "2\ti2\t2\tu_a\n"
             "3\ti9\t5\tu_a\n"          # i9 has no link: dropped
             "4\ti2\t4\tu_b\n"
             "5\ti3\t5\tu_b\n")
    LINK = "item_id:token\tentity_id:token\ni1\tm.1\ni2\tm.2\ni3\tm.3\ni4\tm.4\n"
    KG = ("head_id:token\trelation_id:token\ttail_id:token\n"
          "m.1\tfilm.genre\tm.g\n"
          "m.g\tgenre.parent\tm.h\n"    # multi-hop: head is not an item
          "m.z\tperson.acted\tm.2\n"    # head never reached: RecBole KGs keep it anyway
          "m.3\tfilm.genre\tm.g\n")

    def write(self, folder: pathlib.Path, inter: str = INTER, link: str = LINK,
              kg: str = KG) -> pathlib.Path:
        write(folder / "ml" / "ml.inter", inter)
        write(folder / "ml" / "ml.link", link)
        write(folder / "ml" / "ml.kg", kg)
        return folder / "ml"

    def test_conversion(self, tmp_path):
        path = self.write(tmp_path / "recbole")
        output, messages = prepare("recbole", tmp_path / "data", tmp_path / "cache",
                                   recbole_path=str(path))
        assert output.parent == tmp_path / "cache" / "recbole"
        assert output.name.startswith("ml-seed0-")
        rows = read_rows(output / "ratings_final.txt")
        users = by_user(rows)
        assert users[0][1] == {0, 1} and users[1][1] == {1, 2}  # no threshold: all positive
        assert users[0][0] == {2, 3} and users[1][0] == {0, 3}
        # Items first (entity i = item i), then the others by first appearance, head then tail.
        assert read_rows(output / "kg_final.txt") == [
            [0, 0, 4], [4, 1, 5], [6, 2, 1], [2, 0, 4]]
        meta = data_prep.read_meta(output)
        assert meta["statistics"]["entities"] == 7 and meta["statistics"]["relations"] == 3
        assert meta["warnings"]["triples_with_non_item_head"] == 2
        assert meta["warnings"]["unlinked_items"] == 1
        assert meta["rating_threshold"] is None
        assert any("2 of 4 triples have a head that is not an item" in message
                   for message in messages)
        assert any("1 items have no entity in ml.link" in message for message in messages)

    def test_rating_threshold(self, tmp_path):
        path = self.write(tmp_path / "recbole")
        output, _ = prepare("recbole", tmp_path, tmp_path / "cache", recbole_path=str(path),
                            rating_threshold=4)
        users = by_user(read_rows(output / "ratings_final.txt"))
        # u_a rated i2 with 2: not a positive, and kept out of u_a's negatives.
        assert users[0][1] == {0} and users[0][0] in ({2}, {3})
        assert users[1][1] == {1, 2}
        assert data_prep.read_meta(output)["rating_threshold"] == 4

    def test_prefix_path_and_relative_to_data_dir(self, tmp_path):
        folder = tmp_path / "data" / "flat"
        write(folder / "ml.inter", self.INTER)
        write(folder / "ml.link", self.LINK)
        write(folder / "ml.kg", self.KG)
        output, _ = prepare("recbole", tmp_path / "data", tmp_path / "cache",
                            recbole_path="flat/ml")
        assert data_prep.read_meta(output)["statistics"]["users"] == 2

    def test_duplicate_links_keep_the_first(self, tmp_path):
        link = self.LINK + "i1\tm.9\ni5\tm.1\n"
        output, _ = prepare("recbole", tmp_path, tmp_path / "cache",
                            recbole_path=str(self.write(tmp_path / "recbole", link=link)))
        meta = data_prep.read_meta(output)
        assert meta["statistics"]["items"] == 4 and meta["warnings"]["duplicate_links"] == 2

    @pytest.mark.parametrize("files, kwargs, expected", [
        (dict(inter="item_id:token\trating:float\n1\t2\n"), {},
         r"ml\.inter, line 1: no 'user_id' column"),
        (dict(inter="user_id:token\titem_id:token\nu\ti1\n"), dict(rating_threshold=3),
         r"rating threshold was given but the file has no rating column"),
        (dict(inter="user_id:token\titem_id:token\trating:float\nu\ti1\tgood\n"),
         dict(rating_threshold=3), r"ml\.inter, line 2: rating 'good' is not a number"),
        (dict(inter="user_id:token\titem_id:token\nu\t\n"), {},
         r"ml\.inter, line 2: empty or missing user_id, item_id field"),
        (dict(kg="head_id:token\trelation_id:token\ttail_id:token\nm.a\tr\tm.b\n"), {},
         r"ml\.kg: none of its 1 triples mentions an entity listed in ml\.link"),
        (dict(link="item_id:token\tentity_id:token\n"), {}, r"ml\.link: file has a header"),
    ])
    def test_bad_input(self, tmp_path, files, kwargs, expected):
        path = self.write(tmp_path / "recbole", **files)
        with pytest.raises(data_prep.DataError, match=expected):
            prepare("recbole", tmp_path, tmp_path / "cache", recbole_path=str(path), **kwargs)

    def test_missing_files(self, tmp_path):
        write(tmp_path / "ml" / "ml.inter", self.INTER)
        with pytest.raises(data_prep.DataError, match=r"recbole: missing .*ml\.kg, .*ml\.link"):
            prepare("recbole", tmp_path, tmp_path / "cache", recbole_path=str(tmp_path / "ml"))
        with pytest.raises(data_prep.DataError, match="needs --recbole_path"):
            prepare("recbole", tmp_path, tmp_path / "cache")


class TestCommandLine:

    def run(self, *args, env=None):
        environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        return subprocess.run([sys.executable, "-m", "data_prep", *args], capture_output=True,
                              text=True, env=environment, cwd=REPO, timeout=120)

    def test_prints_statistics(self, tmp_path):
        write_movie(tmp_path / "data")
        result = self.run("--dataset=movie", f"--cache_dir={tmp_path / 'cache'}",
                          "--nodownload", env={"MKR_DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        table = lines.index("dataset  users  items  interactions  entities  relations  triples")
        assert lines[table + 1].split() == ["movie", "2", "5", "8", "8", "4", "6"]

    def test_a_processed_folder_needs_no_preparing(self, tmp_path):
        write(tmp_path / "data" / "book" / "ratings_final.txt", "0\t0\t1\n0\t1\t0\n1\t2\t1\n"
              "1\t0\t0\n2\t1\t1\n2\t2\t0\n3\t0\t1\n3\t1\t0\n4\t2\t1\n4\t1\t0\n")
        write(tmp_path / "data" / "book" / "kg_final.txt", "0\t0\t3\n1\t1\t4\n")
        result = self.run("--dataset=book", f"--data_dir={tmp_path / 'data'}",
                          f"--cache_dir={tmp_path / 'cache'}", "--nodownload")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == (f"{tmp_path / 'data' / 'book'} already holds processed files "
                            f"(ratings_final.txt, kg_final.txt); nothing to prepare, "
                            f"mkr_tf.train reads them as they are")
        assert lines[2].split() == ["book", "5", "3", "10", "5", "2", "2"]
        assert not (tmp_path / "cache").exists()

    def test_help_exits_0(self):
        result = self.run("--help")
        assert result.returncode == 0 and "--dataset:" in result.stdout

    def test_data_error_is_one_line_and_exit_2(self, tmp_path):
        write_movie(tmp_path / "data", ratings="1::10::5::0\nx::20::5::0\n")
        result = self.run("--dataset=movie", f"--data_dir={tmp_path / 'data'}",
                          f"--cache_dir={tmp_path / 'cache'}", "--seed=3")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("data_prep: error: ")
        assert "ratings.dat, line 2: user id 'x' is not an integer" in result.stderr


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets is absent")
class TestSharedMusic:
    """The acceptance check on the real Last.FM files: the paper's statistics, exactly."""

    def test_statistics(self, tmp_path):
        output, _ = prepare("music", SHARED_DATASETS, tmp_path / "cache")
        statistics = data_prep.read_meta(output)["statistics"]
        assert {field: statistics[field] for field in pipeline.STATISTICS} == dict(
            users=1_872, items=3_846, interactions=42_346, entities=9_366, relations=60,
            triples=15_518)
        rows = np.loadtxt(output / "ratings_final.txt", dtype=np.int64)
        assert len(np.unique(rows[:, :2], axis=0)) == len(rows)  # negatives avoid positives
        assert rows[:, 2].sum() * 2 == len(rows)
        kg = np.loadtxt(output / "kg_final.txt", dtype=np.int64)
        assert kg[:, 0].max() < 3_846 and kg.max() < 9_366
        assert json.loads((output / "meta.json").read_text())["warnings"][
            "users_short_of_negatives"] == 0


class TestItemMap:
    """meta.json's `items`: the raw item and entity id of each item index, for serving."""

    def test_paper_dataset_lists_the_item_map_in_line_order(self, tmp_path):
        output, _ = prepare("movie", write_movie(tmp_path / "data"), tmp_path / "cache")
        assert data_prep.read_meta(output)["items"] == dict(
            item_id=[10, 20, 30, 40, 50], entity_id=["e10", "e20", "e30", "e40", "e50"])

    def test_users_are_listed_by_index_with_their_raw_ids(self, tmp_path):
        # MOVIE_RATINGS: user 7 has the first positive (index 0), then user 3; user 5 has none.
        data_dir = write_movie(tmp_path / "data")
        output, _ = prepare("movie", data_dir, tmp_path / "cache")
        assert data_prep.read_meta(output)["users"] == dict(user_id=[7, 3])
        assert mkr_data.load_processed(output, seed=0).user_ids == [7, 3]

    def test_names_come_from_the_original_release_when_placed_beside(self, tmp_path):
        data_dir = write_music(tmp_path / "data")
        without, _ = prepare("music", data_dir, tmp_path / "cache")
        assert "name" not in data_prep.read_meta(without)["items"]
        # Last.FM's artists.dat; artists 20 and 40 have no line, artist 99 is not an item.
        write(data_dir / "music" / "artists.dat", "id\tname\turl\tpictureURL\n"
              "10\tMALICE MIZER\thttp://a\thttp://b\n99\tDiary of Dreams\thttp://c\thttp://d\n"
              "30\tMoi dix Mois\thttp://e\thttp://f\n50\t  Bella   Morte \thttp://g\thttp://h\n")
        named, _ = prepare("music", data_dir, tmp_path / "cache")
        assert named != without  # the names file is an input: in the cache key
        assert data_prep.read_meta(named)["items"]["name"] == [
            "MALICE MIZER", None, "Moi dix Mois", None, "Bella Morte"]
        assert mkr_data.load_processed(named, seed=0).item_names[:3] == [
            "MALICE MIZER", None, "Moi dix Mois"]

    def test_string_item_ids_stay_strings(self, tmp_path):
        data_dir = tmp_path / "data"
        write(data_dir / "book" / "BX-Book-Ratings.csv",
              '"User-ID";"ISBN";"Book-Rating"\n"1";"034545104X";"0"\n"2";"0155061224";"5"\n')
        write(data_dir / "book" / "item_index2entity_id.txt", "034545104X\t0\n0155061224\t1\n")
        write(data_dir / "book" / "kg.txt", "0\tbook.author\t7\n")
        output, _ = prepare("book", data_dir, tmp_path / "cache")
        assert data_prep.read_meta(output)["items"] == dict(
            item_id=["034545104X", "0155061224"], entity_id=["0", "1"])

    def test_recbole_lists_the_kept_links(self, tmp_path):
        link = TestRecBole.LINK + "i1\tm.9\ni5\tm.1\n"  # both repeat a link: not items
        path = TestRecBole().write(tmp_path / "recbole", link=link)
        output, _ = prepare("recbole", tmp_path, tmp_path / "cache", recbole_path=str(path))
        assert data_prep.read_meta(output)["items"] == dict(
            item_id=["i1", "i2", "i3", "i4"], entity_id=["m.1", "m.2", "m.3", "m.4"])


class TestHardening:
    """Stray spaces, byte order marks, runaway lines, folders in a file's place, killed runs."""

    def test_trailing_spaces_in_kg_files_make_no_new_entities(self, tmp_path):
        clean, _ = prepare("movie", write_movie(tmp_path / "clean"), tmp_path / "cache")
        spaced_kg = "".join(line + " \n" for line in KG.splitlines())
        spaced_map = ITEM_MAP.replace("10\te10\n", "10\te10 \n")
        spaced, _ = prepare("movie", write_movie(tmp_path / "spaced", item_map=spaced_map,
                                                 kg=spaced_kg), tmp_path / "cache")
        assert read_rows(spaced / "kg_final.txt") == read_rows(clean / "kg_final.txt")
        assert (data_prep.read_meta(spaced)["statistics"]
                == data_prep.read_meta(clean)["statistics"])

    @pytest.mark.parametrize("item_map, kg, expected", [
        (ITEM_MAP, "e10\tgen re\tg1\n", r"kg\.txt, line 1: relation 'gen re' has whitespace "
                                        r"inside"),
        (ITEM_MAP.replace("e20", "e 20"), KG,
         r"item_index2entity_id\.txt, line 2: entity id 'e 20' has whitespace inside"),
    ])
    def test_ids_with_whitespace_inside_are_refused(self, tmp_path, item_map, kg, expected):
        with pytest.raises(data_prep.DataError, match=expected):
            prepare("movie", write_movie(tmp_path / "data", item_map=item_map, kg=kg),
                    tmp_path / "cache")

    @pytest.mark.parametrize("dataset", ["music", "movie"])
    def test_a_utf8_byte_order_mark_is_accepted_on_every_file(self, tmp_path, dataset):
        plain_dir = (write_music if dataset == "music" else write_movie)(tmp_path / "plain")
        marked_dir = (write_music if dataset == "music" else write_movie)(tmp_path / "marked")
        for path in (marked_dir / dataset).iterdir():
            path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        plain, _ = prepare(dataset, plain_dir, tmp_path / "cache")
        marked, _ = prepare(dataset, marked_dir, tmp_path / "cache")
        for name in ("ratings_final.txt", "kg_final.txt"):
            assert read_rows(marked / name) == read_rows(plain / name)

    def test_a_file_without_line_ends_fails_fast_naming_the_file(self, tmp_path):
        data_dir = write_music(tmp_path / "data")
        runaway = data_dir / "music" / "user_artists.dat"
        with open(runaway, "wb") as file:
            file.truncate(1 << 30)  # sparse: a 1 GB file of zero bytes, no line end
        with pytest.raises(data_prep.DataError,
                           match=rf"^{runaway}, line 1: longer than 1,048,576 bytes without a "
                                 rf"line end; not a text table$"):
            prepare("music", data_dir, tmp_path / "cache")

    def test_a_long_table_with_short_lines_reads_whole(self, tmp_path):
        rows = "".join(f"{user}\t{10 * (1 + user % 5)}\t1\n" for user in range(200_000))
        output, _ = prepare("music", write_music(tmp_path / "data", rows), tmp_path / "cache")
        assert data_prep.read_meta(output)["statistics"]["users"] == 200_000

    @pytest.mark.parametrize("make, expected", [
        (lambda path: path.mkdir(), "is a folder, not a file"),
        (lambda path: path.symlink_to(path), "is a symbolic link loop, not a file"),
        (lambda path: path.symlink_to(path.parent / "gone"),
         "is a broken symbolic link to .*gone"),
    ])
    def test_something_else_in_a_files_place_is_named(self, tmp_path, make, expected):
        data_dir = write_music(tmp_path / "data")
        place = data_dir / "music" / "item_index2entity_id.txt"
        place.unlink()
        make(place)
        with pytest.raises(data_prep.DataError, match=f"^{place}: {expected}$"):
            prepare("music", data_dir, tmp_path / "cache")

    def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(self, tmp_path):
        data_dir = write_music(tmp_path / "data")
        output, _ = prepare("music", data_dir, tmp_path / "cache")
        left = output.parent / ".staging-left-by-a-kill"
        (left / "ratings_final.txt").parent.mkdir()
        (left / "ratings_final.txt").write_text("half")
        in_use = output.parent / ".staging-of-a-running-prepare"
        in_use.mkdir()
        held = os.open(in_use, os.O_RDONLY)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)  # as a running prepare does
            _, messages = prepare("music", data_dir, tmp_path / "cache")  # up to date
        finally:
            os.close(held)
        assert any("up to date" in message for message in messages)
        assert not left.exists()
        assert in_use.is_dir()
