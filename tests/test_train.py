"""End-to-end tests of the `python -m mkr_tf.train` command line."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tests.test_trainer import two_taste_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, env=None):
    """Runs the training CLI in a fresh working folder, so default outputs stay out of the repo."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "mkr_tf.train", *args], capture_output=True,
                          text=True, env=environment, cwd=tempfile.mkdtemp(), timeout=300,
                          check=False)


class TrainCommandTest(tf.test.TestCase):

    def test_trains_a_processed_fixture_end_to_end(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        ratings, kg = two_taste_dataset(n_users=80)
        (root / "data" / "tiny").mkdir(parents=True)
        np.savetxt(root / "data" / "tiny" / "ratings_final.txt", ratings, fmt="%d", delimiter="\t")
        np.savetxt(root / "data" / "tiny" / "kg_final.txt", kg, fmt="%d", delimiter=" ")
        run_dir = root / "run"
        result = run_cli("--dataset=tiny", f"--run_dir={run_dir}", "--n_epochs=3", "--batch_size=32",
                         "--lr_rs=0.01", "--seed=2", f"--export_dir={root / 'exported'}",
                         env={"MKR_DATA_DIR": str(root / "data")})
        self.assertEqual(result.returncode, 0, result.stderr)
        epoch_lines = [l for l in result.stdout.splitlines() if l.startswith("epoch")]
        self.assertLen(epoch_lines, 3)
        self.assertIn("test auc", epoch_lines[0])
        self.assertIn("best eval AUC", result.stdout)
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["dataset"], "tiny")
        self.assertEqual(results["seed"], 2)
        self.assertEqual(results["config"]["n_epochs"], 3)
        self.assertEqual(results["config"]["lr_rs"], 0.01)
        self.assertEqual(results["config"]["dim"], 8)  # untouched flags keep their defaults
        self.assertTrue((root / "exported" / "1" / "saved_model.pb").is_file())
        self.assertTrue((run_dir / "logs").is_dir())

    def test_paper_settings_are_the_defaults_and_flags_override_them(self):
        # Imported here: defining the flags in this process is harmless but not needed elsewhere.
        from mkr_tf import train  # pylint: disable=import-outside-toplevel
        from absl import flags  # pylint: disable=import-outside-toplevel
        saved = {name: flags.FLAGS[name].value for name in ("dataset", "lr_rs")}
        try:
            flags.FLAGS.dataset, flags.FLAGS.lr_rs = "music", None
            config = train.config_from_flags()
            self.assertEqual((config.dim, config.L, config.batch_size, config.lr_rs, config.lr_kge),
                             (4, 2, 256, 1e-3, 2e-4))
            flags.FLAGS.lr_rs = 0.5
            self.assertEqual(train.config_from_flags().lr_rs, 0.5)
        finally:
            for name, value in saved.items():
                flags.FLAGS[name].value = value

    def test_bad_input_gives_one_clear_line_and_exit_code_two(self):
        empty = self.create_tempdir().full_path
        cases = {
            ("--dim=0",): "dim must be an integer >= 1, got 0",
            ("--L=0",): "L must be an integer >= 1, got 0",
            ("--lr_rs=0",): "lr_rs must be a finite number > 0, got 0.0",
            ("--batch_size=-3",): "batch_size must be an integer >= 1, got -3",
            ("--dataset=nope",): "unknown dataset 'nope'",
        }
        for args, message in cases.items():
            result = run_cli(*args, f"--data_dir={empty}", f"--cache_dir={empty}",
                             f"--run_dir={empty}/run")
            self.assertEqual(result.returncode, 2, msg=(args, result.stderr))
            self.assertIn(message, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertLen([l for l in result.stderr.splitlines() if l.startswith("mkr_tf.train")], 1,
                           result.stderr)


if __name__ == "__main__":
    tf.test.main()
