"""A run folder is written by one training at a time, never holds the user's own files, and a
failed save leaves no partial file behind."""

import errno
import fcntl
import json
import os
import pathlib
from unittest import mock

import tensorflow as tf

from mkr_tf import data
from mkr_tf import errors
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import MKRConfig
from tests.test_trainer import two_taste_dataset

CONFIG = MKRConfig(n_epochs=2, dim=4, batch_size=64)


def small_dataset():
    ratings, kg = two_taste_dataset(n_users=30, n_ratings_per_user=10)
    return data.build_dataset(ratings, kg, seed=0, log=lambda _: None)


def train(run_dir, config=CONFIG, **options):
    return trainer.train(config, small_dataset(), run_dir, "two_taste", log=lambda _: None,
                         **options).results


class RunFolderTest(tf.test.TestCase):

    def test_a_folder_of_the_users_own_files_is_refused_and_left_alone(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        (folder / "results.json").write_text('{"mine": true}')
        (folder / "best.weights.h5").write_bytes(b"my weights")
        for overwrite in (False, True):
            with self.assertRaisesRegex(
                    errors.RunDirError, r"not empty \(best.weights.h5, results.json\) and not an "
                                        r"mkr_tf.train run folder"):
                train(folder, overwrite=overwrite)
        self.assertEqual((folder / "results.json").read_text(), '{"mine": true}')
        self.assertEqual((folder / "best.weights.h5").read_bytes(), b"my weights")
        self.assertCountEqual(os.listdir(folder), ["results.json", "best.weights.h5"])

    def test_a_finished_run_is_recognised_and_overwrite_starts_it_afresh(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        results = train(folder)
        wanted = runs.identity("two_taste", CONFIG.to_dict())
        self.assertEqual(runs.finished_results(folder, wanted)["test_auc"],
                         results["test_auc"])
        # More epochs continue the run; other epochs are not "this very run".
        longer = runs.identity("two_taste", {**CONFIG.to_dict(), "n_epochs": 3})
        self.assertIsNone(runs.finished_results(folder, longer))
        # XLA's compilation changes only the order of float sums: the same run.
        compiled = runs.identity("two_taste", {**CONFIG.to_dict(), "jit_compile": True})
        self.assertEqual(runs.finished_results(folder, compiled)["test_auc"],
                         results["test_auc"])
        with self.assertRaisesRegex(errors.RunDirError,
                                    r"holds a run with other settings \(dim 4 there, 8 now\)"):
            train(folder, MKRConfig(n_epochs=2, dim=8, batch_size=64))
        (folder / "notes.txt").write_text("kept")
        fresh = train(folder, MKRConfig(n_epochs=1, dim=8, batch_size=64), overwrite=True)
        self.assertLen(fresh["history"], 1)
        self.assertEqual(json.loads((folder / "run.json").read_text())["config"]["dim"], 8)
        self.assertEqual((folder / "notes.txt").read_text(), "kept")

    def test_a_second_training_on_the_same_folder_is_refused(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        held = os.open(folder / runs.LOCK_FILE, os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)  # as a running training does
            with self.assertRaisesRegex(
                    errors.RunDirError, f"^{folder}: another mkr_tf.train is writing this run "
                                        f"folder; wait for it to end or choose another --run_dir$"):
                train(folder)
        finally:
            os.close(held)
        self.assertFalse((folder / "results.json").exists())
        with runs.claimed(folder, runs.identity("two_taste", CONFIG.to_dict())):
            pass  # once released, the folder can be claimed

    def test_a_lock_on_a_removed_lock_file_is_told_apart(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        lock = os.open(folder / runs.LOCK_FILE, os.O_CREAT | os.O_RDWR)
        try:
            self.assertTrue(runs._is_the_lock_file(lock, folder))
            # What a failed run's clean-up and a new run's start do meanwhile.
            os.unlink(folder / runs.LOCK_FILE)
            self.assertFalse(runs._is_the_lock_file(lock, folder))
            (folder / runs.LOCK_FILE).touch()
            self.assertFalse(runs._is_the_lock_file(lock, folder))
        finally:
            os.close(lock)

    def test_a_full_disk_ends_in_one_line_and_keeps_the_last_good_checkpoint(self):
        folder = pathlib.Path(self.create_tempdir().full_path)
        saves = []
        real_save = tf.train.CheckpointManager.save

        def save_then_fill_the_disk(manager, checkpoint_number):
            if saves:
                # What TensorFlow's writer does when the disk fills half-way.
                (folder / "checkpoints" / f"ckpt-{checkpoint_number}_temp").mkdir()
                raise tf.errors.ResourceExhaustedError(
                    None, None, f"{folder}/checkpoints/ckpt-2_temp; No space left on device")
            saves.append(checkpoint_number)
            return real_save(manager, checkpoint_number=checkpoint_number)

        with mock.patch.object(tf.train.CheckpointManager, "save", save_then_fill_the_disk):
            with self.assertRaisesRegex(
                    errors.RunDirError,
                    f"^{folder}/checkpoints: cannot write the checkpoint of epoch 2: no space "
                    f"left on device; the checkpoint of epoch 1 is kept"):
                train(folder, checkpoint_every_seconds=0)
        self.assertEqual(sorted(os.listdir(folder / "checkpoints")),
                         ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"])
        self.assertFalse(any(name.startswith(("tmp-", ".")) and name != ".lock"
                             for name in os.listdir(folder)))
        # As a save killed half-way leaves it; the next start removes it.
        (folder / "checkpoints" / "ckpt-2_temp").mkdir()
        resumed = train(folder, checkpoint_every_seconds=0)
        self.assertLen(resumed["history"], 2)
        self.assertNotIn("ckpt-2_temp", os.listdir(folder / "checkpoints"))

    def test_a_failed_weights_write_leaves_no_partial_file_and_resumes(self):
        folder = pathlib.Path(self.create_tempdir().full_path)

        def write_half_then_fail(model, path):
            pathlib.Path(path).write_bytes(b"half")
            raise OSError(errno.EFBIG, "File too large")

        with mock.patch("mkr_tf.model.MKR.save_weights", write_half_then_fail):
            with self.assertRaisesRegex(
                    errors.RunDirError, f"^{folder}: cannot write best.weights.h5: file too large; "
                                        f"the checkpoint of epoch {CONFIG.n_epochs} is kept: free "
                                        f"space or fix the folder, then resume with --resume$"):
                train(folder)
        # No temporary file and no best.weights.h5; the checkpoints hold the best weights.
        self.assertCountEqual(os.listdir(folder),
                              [runs.MARKER_FILE, runs.LOCK_FILE, runs.CHECKPOINT_DIR])
        results = train(folder)
        self.assertTrue((folder / runs.BEST_WEIGHTS_FILE).is_file())
        self.assertLen(results["history"], CONFIG.n_epochs)

    def test_output_folders_that_cannot_be_written_are_named(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        (root / "file").write_text("")
        with self.assertRaisesRegex(errors.RunDirError, f"^--logdir {root}/file: is a file, "
                                                        f"not a folder$"):
            runs.check_output_folder(root / "file", "--logdir")
        with self.assertRaisesRegex(errors.RunDirError, f"^--export_dir {root}/file/music: "
                                                        f"{root}/file is a file, not a folder$"):
            runs.check_output_folder(root / "file" / "music", "--export_dir")
        runs.check_output_folder(root / "new" / "deeper", "--export_dir")
        self.assertFalse((root / "new").exists())  # checked, not created


if __name__ == "__main__":
    tf.test.main()
