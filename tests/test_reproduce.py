"""`python -m mkr_tf.reproduce --quick` end to end, so the reproduction command cannot rot."""

import os
import pathlib
import subprocess
import sys

import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_reproduce(*args):
    return subprocess.run(
        [sys.executable, "-m", "mkr_tf.reproduce", "--quick", *args], capture_output=True,
        text=True, cwd=REPO, timeout=600, check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"))


class ReproduceTest(tf.test.TestCase):

    def test_quick_report_then_reuse(self):
        out = pathlib.Path(self.create_tempdir().full_path)
        first = run_reproduce(f"--out={out}")
        self.assertEqual(first.returncode, 0, first.stderr)
        # MKR-1L equals MKR on synthetic data (L = 1 already): trained once; 5 distinct variants.
        self.assertEqual(first.stdout.count("training synthetic"), 5 + 2, first.stdout)
        report = (out / "results.md").read_text()
        for heading in ("## CTR prediction", "## Top-K recommendation", "## Sparsity",
                        "## Wall time per run", "## Commands and versions"):
            self.assertIn(heading, report)
        for variant in ("| MKR |", "| MKR, dense Adam |", "| MKR-1L |", "| MKR-DCN |", "| MKR-stitch |", "| MKR w/o KGE |"):
            self.assertIn(variant, report)
        for png in ("synthetic_learning_curves.png", "synthetic_topk.png", "synthetic_sparsity.png"):
            self.assertGreater((out / png).stat().st_size, 1000, png)
            self.assertIn(png, report)
        self.assertIn("python -m mkr_tf.train --dataset=synthetic --seed=S --cross_unit=dcn", report)

        again = run_reproduce(f"--out={out}")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertNotIn("training", again.stdout)
        self.assertEqual((out / "results.md").read_text().split("\n", 3)[3], report.split("\n", 3)[3])


if __name__ == "__main__":
    tf.test.main()
