"""A killed training run, resumed, ends exactly where an uninterrupted one does."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.test_train import REPO, run_cli
from tests.test_trainer import two_taste_dataset

ARGS = ("--dataset=tiny", "--n_epochs=6", "--batch_size=8", "--lr_rs=0.005", "--seed=4",
        "--checkpoint_every_seconds=0")


def _checkpoint_variables(run_dir):
    path = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name.startswith(("model/", "rs_optimizer/", "kge_optimizer/", "best_weights/"))}


class ResumeTest(tf.test.TestCase):

    def test_killed_run_resumes_to_the_uninterrupted_result(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        ratings, kg = two_taste_dataset(n_users=300)
        (root / "tiny").mkdir()
        np.savetxt(root / "tiny" / "ratings_final.txt", ratings, fmt="%d", delimiter="\t")
        np.savetxt(root / "tiny" / "kg_final.txt", kg, fmt="%d", delimiter="\t")
        env = {"MKR_DATA_DIR": str(root)}

        whole = root / "whole"
        result = run_cli(*ARGS, f"--run_dir={whole}", env=env)
        self.assertEqual(result.returncode, 0, result.stderr)

        killed = root / "killed"
        process = subprocess.Popen(
            [sys.executable, "-m", "mkr_tf.train", *ARGS, f"--run_dir={killed}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **env))
        for line in process.stdout:
            if line.startswith("epoch   2/"):
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
        process.stdout.close()
        self.assertEqual(process.returncode, -signal.SIGKILL)
        self.assertFalse((killed / "results.json").exists(), "the run finished before the kill")

        resumed = run_cli(*ARGS, f"--run_dir={killed}", "--resume", env=env)
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertRegex(resumed.stdout, r"resuming .* after epoch [2-5]")

        expected = json.loads((whole / "results.json").read_text())
        actual = json.loads((killed / "results.json").read_text())
        for key in ("best_epoch", "test_auc", "test_acc", "last_test_auc", "last_test_acc"):
            self.assertEqual(actual[key], expected[key], key)
        self.assertEqual([e["eval_auc"] for e in actual["history"]],
                         [e["eval_auc"] for e in expected["history"]])
        expected_variables = _checkpoint_variables(whole)
        actual_variables = _checkpoint_variables(killed)
        self.assertEqual(sorted(actual_variables), sorted(expected_variables))
        self.assertNotEmpty(expected_variables)
        for name, value in expected_variables.items():
            self.assertAllEqual(actual_variables[name], value, msg=name)

    def test_resume_without_a_checkpoint_and_with_other_settings(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        missing = run_cli("--resume", f"--run_dir={root / 'nothing'}", "--n_epochs=1")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("no checkpoint to resume from", missing.stderr)
        self.assertFalse((root / 'nothing').exists())
        first = run_cli("--n_epochs=1", "--dim=4", f"--run_dir={root / 'run'}")
        self.assertEqual(first.returncode, 0, first.stderr)
        other = run_cli("--n_epochs=2", "--dim=8", f"--run_dir={root / 'run'}")
        self.assertEqual(other.returncode, 2)
        self.assertIn("holds a run with other settings (dim 4 there, 8 now)", other.stderr)


if __name__ == "__main__":
    tf.test.main()
