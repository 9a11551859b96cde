"""Tests of `python -m mkr_tf.plot` on results made up here (no training, no TensorFlow)."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from mkr_tf import plot

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _results(use_kge=True):
    history = []
    for epoch in range(1, 5):
        record = {"epoch": epoch, "rs_loss": 0.7 - 0.05 * epoch, "rs_base_loss": 0.69 - 0.05 * epoch,
                  "seconds": 0.1}
        if use_kge and epoch % 2:
            record["kge_loss"] = -0.5 - 0.01 * epoch
        for split, offset in (("train", 0.1), ("eval", 0.0), ("test", -0.01)):
            record[f"{split}_auc"] = 0.6 + offset + 0.03 * epoch
        history.append(record)
    return {"dataset": "toy", "seed": 1, "best_epoch": 4, "eval_auc": 0.72, "test_auc": 0.71,
            "history": history}


def _topk(scale):
    return {f"{metric}@{k}": scale * k / 100 for metric in ("precision", "recall", "ndcg", "hit_rate")
            for k in (1, 2, 5, 10, 20, 50, 100)}


class PlotTest(unittest.TestCase):

    def setUp(self):
        self.run_dir = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))

    def _write(self, name, payload):
        (self.run_dir / name).write_text(json.dumps(payload))

    def _assert_png(self, path):
        self.assertEqual(path.read_bytes()[:8], PNG_SIGNATURE, path)
        self.assertGreater(path.stat().st_size, 10_000, path)

    def test_learning_curves_and_topk_from_the_evaluation(self):
        self._write(plot.RESULTS_FILE, dict(_results(), test_topk=_topk(0.5)))
        self._write(plot.EVALUATION_FILE, {"topk": {"metrics": _topk(1.0)}})
        written = plot.plot_run(self.run_dir, self.run_dir / "pngs")
        self.assertEqual([path.name for path in written], [plot.LEARNING_CURVES_FILE, plot.TOPK_FILE])
        for path in written:
            self._assert_png(path)

    def test_results_alone_and_a_run_without_kge(self):
        self._write(plot.RESULTS_FILE, _results(use_kge=False))
        written = plot.plot_run(self.run_dir)
        self.assertEqual(written, [self.run_dir / plot.LEARNING_CURVES_FILE])
        self._assert_png(written[0])

    def test_missing_matplotlib_names_the_extra(self):
        self._write(plot.RESULTS_FILE, _results())
        with mock.patch.dict(sys.modules, {"matplotlib": None}):
            with self.assertRaisesRegex(plot.PlotError, r"pip install 'mkr-tf\[plot\]'"):
                plot.plot_run(self.run_dir)

    def test_command_line_errors_are_one_line_and_exit_2(self):
        environment = dict(os.environ, PYTHONPATH=str(REPO))
        result = subprocess.run([sys.executable, "-m", "mkr_tf.plot", f"--run_dir={self.run_dir}"],
                                capture_output=True, text=True, env=environment, timeout=120,
                                check=False)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, f"mkr_tf.plot: error: {self.run_dir / plot.RESULTS_FILE}: "
                                        f"not found; is {self.run_dir} a finished mkr_tf.train run?\n")


if __name__ == "__main__":
    unittest.main()
