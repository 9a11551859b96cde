"""Fuzz-style robustness: damaged rating and KG files end in a clean DataError or a counted skip.

Each loader is fed truncated, garbled, binary, huge-id and wrong-column-count variants of a
valid file. Acceptable outcomes: `DataError` (a ValueError with one clear line), or success on
what is still a valid file, in which case nothing may have been silently half-read. Anything
else (another exception type, a crash, a hang) fails.
"""

import contextlib
import pathlib
import signal

import numpy as np
import tensorflow as tf

import data_prep
from mkr_tf import data

SECONDS_PER_CASE = 30


@contextlib.contextmanager
def time_limit(seconds):
    def on_alarm(signum, frame):
        raise TimeoutError(f"loader hung for {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def variants(text: str, separator: str, rng: np.random.Generator) -> dict[str, bytes]:
    """Damaged versions of a valid text file whose fields are split by `separator`."""
    raw = text.encode()
    lines = text.splitlines(keepends=True)
    mid_line = raw.rindex(b"\n", 0, len(raw) - 1) + 3  # a few bytes into the last line
    garbled = bytearray(raw)
    for position in rng.choice(len(raw), size=max(1, len(raw) // 20), replace=False):
        garbled[position] = int(rng.integers(33, 127))
    first_fields = lines[1].rstrip("\n").split(separator)
    return {
        "truncated_mid_line": raw[:mid_line],
        "truncated_to_nothing": b"",
        "truncated_to_half": raw[:len(raw) // 2],
        "garbled": bytes(garbled),
        "binary": rng.integers(0, 256, size=600, dtype=np.uint8).tobytes(),
        "nul_bytes": raw.replace(b"\n", b"\x00\n", 3),
        "huge_id": "".join(lines[:2] + [separator.join(["99999999999999999999"] + first_fields[1:]) + "\n"]
                           + lines[3:]).encode(),
        "missing_column": "".join(lines[:3] + [separator.join(first_fields[:-1]) + "\n"] + lines[4:]).encode(),
        "extra_column": "".join(lines[:3] + [separator.join(first_fields + ["7"]) + "\n"] + lines[4:]).encode(),
        "wrong_separator": raw.replace(separator.encode(), b","),
        "latin1_text": raw + "é\tü\tß\n".encode("latin-1"),
    }


class ProcessedLoaderFuzzTest(tf.test.TestCase):

    def _check(self, folder, damaged_name, case, content):
        (folder / damaged_name).write_bytes(content)
        with time_limit(SECONDS_PER_CASE):
            try:
                loaded = data.load_processed(folder, seed=0, log=lambda _: None)
            except data.DataError as error:
                self.assertNotIn("\n", str(error).strip(), case)
                self.assertIn(damaged_name, str(error), case)
                return
        # Accepted: every non-blank line must have become a row, nothing half-read.
        n_lines = sum(1 for line in content.splitlines() if line.strip())
        n_rows = loaded.n_interactions if damaged_name == data.RATINGS_FILE else None
        if n_rows is not None:
            self.assertEqual(n_rows, n_lines, case)

    def test_damaged_processed_files(self):
        rng = np.random.default_rng(0)
        ratings = "".join(f"{u}\t{i}\t{(u * i) % 2}\n" for u in range(12) for i in range(6))
        kg = "".join(f"{i}\t{i % 3}\t{6 + i % 4}\n" for i in range(6))
        for damaged_name, valid, other_name, other in (
                (data.RATINGS_FILE, ratings, data.KG_FILE, kg),
                (data.KG_FILE, kg, data.RATINGS_FILE, ratings)):
            for case, content in variants(valid, "\t", rng).items():
                folder = pathlib.Path(self.create_tempdir().full_path)
                (folder / other_name).write_text(other)
                with self.subTest(file=damaged_name, case=case):
                    self._check(folder, damaged_name, case, content)


class RawLoaderFuzzTest(tf.test.TestCase):

    ITEM_MAP = "".join(f"{10 + i}\te{i}\n" for i in range(8))
    KG = "".join(f"e{i}\tgenre\tg{i % 3}\n" for i in range(8))
    SEPARATORS = {"user_artists.dat": "\t", "ratings.dat": "::", "item_index2entity_id.txt": "\t",
                  "kg.txt": "\t"}
    RATINGS = {
        "music": ("user_artists.dat", "userID\tartistID\tweight\n"
                  + "".join(f"{u}\t{10 + (u * 3 + k) % 8}\t{k + 1}\n" for u in range(1, 9) for k in range(3))),
        "movie": ("ratings.dat", "".join(f"{u}::{10 + (u + k) % 8}::{1 + (u + k) % 5}::{k}\n"
                                         for u in range(1, 9) for k in range(4))),
    }

    def _prepare(self, dataset, files, case):
        root = pathlib.Path(self.create_tempdir().full_path)
        (root / "data" / dataset).mkdir(parents=True)
        for name, content in files.items():
            (root / "data" / dataset / name).write_bytes(content)
        with time_limit(SECONDS_PER_CASE):
            try:
                data_prep.prepare(dataset, root / "data", root / "cache", seed=0, download=False,
                                  log=lambda _: None)
            except data_prep.DataError as error:
                self.assertNotIn("\n", str(error).strip(), case)
                return False
        return True

    def test_damaged_raw_files(self):
        rng = np.random.default_rng(1)
        for dataset, (rating_name, rating_text) in self.RATINGS.items():
            valid = {rating_name: rating_text.encode(), "item_index2entity_id.txt": self.ITEM_MAP.encode(),
                     "kg.txt": self.KG.encode()}
            self.assertTrue(self._prepare(dataset, valid, "valid"), dataset)
            for damaged_name in valid:
                for case, content in variants(valid[damaged_name].decode(),
                                              self.SEPARATORS[damaged_name], rng).items():
                    with self.subTest(dataset=dataset, file=damaged_name, case=case):
                        self._prepare(dataset, {**valid, damaged_name: content}, case)


if __name__ == "__main__":
    tf.test.main()
