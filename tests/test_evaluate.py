"""Tests of `python -m mkr_tf.evaluate` on a small run trained here."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mkr_tf import callbacks as mkr_callbacks
from mkr_tf import data as mkr_data
from mkr_tf import evaluate
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import BASELINES, MKRConfig
from tests.test_trainer import two_taste_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "mkr_tf.evaluate", *args], capture_output=True,
                          text=True, env=environment, cwd=REPO, timeout=300, check=False)


class EvaluateTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = pathlib.Path(tf.compat.v1.test.get_temp_dir()) / "evaluate"
        ratings, kg = two_taste_dataset(n_users=80)
        mkr_data.write_processed(root / "data" / "tiny", ratings, kg)
        cache_dir = root / "cache"
        dataset = mkr_data.load_dataset("tiny", root / "data", cache_dir, seed=3)
        cls.run_dir = root / "run"
        config = MKRConfig(n_epochs=3, batch_size=32, lr_rs=0.01, kge_interval=1, seed=3)
        cls.results = trainer.train(
            config, dataset, cls.run_dir, "tiny", log=lambda _: None,
            callbacks=[mkr_callbacks.TopKCallback(every=2)],
            data_source={"data_dir": str(root / "data"), "cache_dir": str(cache_dir),
                         "prepare_options": {}}).results

    def test_best_weights_give_the_training_figures(self):
        evaluation = evaluate.evaluate_run(runs.load_run(self.run_dir))
        best = self.results["history"][self.results["best_epoch"] - 1]
        for split in trainer.SPLITS:
            self.assertAllClose(evaluation["ctr"][split]["auc"], best[f"{split}_auc"])
        self.assertAllClose(evaluation["topk"]["metrics"], self.results["test_topk"])
        tables = evaluate.format_tables(evaluation)
        self.assertIn(f"test  {best['test_auc']:>8.4f}{best['test_acc']:>8.4f}", tables)
        self.assertRegex(tables, r"\n  100( +[01]\.\d{4}){4}\n")
        self.assertRegex(tables, r"\nitemknn +[01]\.\d{4}")

    def test_json_output_and_evaluation_file(self):
        result = run_cli(f"--run_dir={self.run_dir}", "--json", "--ks=5,10")
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = json.loads(result.stdout)
        self.assertEqual(printed["topk"]["ks"], [5, 10])
        self.assertSetEqual(set(printed["topk"]["metrics"]),
                            {f"{m}@{k}" for m in ("precision", "recall", "ndcg", "hit_rate")
                             for k in (5, 10)})
        self.assertEqual(printed["best_epoch"], self.results["best_epoch"])
        self.assertTrue(np.isfinite(printed["ctr"]["test"]["auc"]))
        saved = json.loads((self.run_dir / evaluate.EVALUATION_FILE).read_text())
        self.assertEqual(saved, printed)
        # The baselines beside MKR, on the run's own split.
        self.assertEqual(set(printed["baselines"]), set(BASELINES))
        for figures in (printed["mkr"], *printed["baselines"].values()):
            self.assertIn("ndcg@10", figures["test"])
            self.assertIn("distinct@10", figures["test"])
        self.assertAllClose(printed["mkr"]["test"]["auc"], printed["ctr"]["test"]["auc"])

    def test_nobaselines_shows_mkr_alone(self):
        result = run_cli(f"--run_dir={self.run_dir}", "--nobaselines", "--nosave")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Summary on the test split", result.stdout)
        self.assertRegex(result.stdout, r"\nMKR +[01]\.\d{4}")
        self.assertNotIn("itemknn", result.stdout)

    def test_bad_run_dir_is_one_line_and_exit_2(self):
        result = run_cli(f"--run_dir={self.run_dir / 'missing'}")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        errors = [line for line in result.stderr.splitlines() if "mkr_tf.evaluate" in line]
        self.assertLen(errors, 1)
        self.assertRegex(errors[0], r"^mkr_tf\.evaluate: error: .*missing/results\.json: not found")
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    tf.test.main()
