"""`python -m mkr_tf.reproduce --quick` end to end, so the reproduction command cannot rot."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import tensorflow as tf

from mkr_tf import presets
from mkr_tf import reproduce
from mkr_tf.config import MKRConfig

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_reproduce(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "mkr_tf.reproduce", "--quick", *args], capture_output=True,
        text=True, cwd=cwd, timeout=600, check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"))


class ReproduceTest(tf.test.TestCase):

    def test_quick_report_then_reuse(self):
        # Run from an empty folder: the default output goes under runs/, never to reports/.
        cwd = pathlib.Path(self.create_tempdir().full_path)
        first = run_reproduce(cwd=cwd)
        self.assertEqual(first.returncode, 0, first.stderr)
        out = cwd / "runs" / "reproduce-quick"
        self.assertEqual(sorted(path.name for path in cwd.iterdir()), ["runs"])
        # 2 seeds × MKR with and without KGE × (full data, cold items, ratio 0.5).
        self.assertEqual(first.stdout.count("training synthetic"), 12, first.stdout)
        self.assertEqual(first.stdout.count(
            "fitting popularity, itemknn, mf, kg_popularity, kg_history synthetic"), 4, first.stdout)
        report = (out / "results.md").read_text()
        for heading in ("## CTR prediction", "## Top-K recommendation",
                        "## Paired differences over seeds", "## Cold items", "## Sparsity",
                        "## Wall time per run", "## Commands and versions"):
            self.assertIn(heading, report)
        for model in ("MKR", "MKR w/o KGE", "popularity", "itemknn", "mf", "kg_popularity",
                      "kg_history"):
            self.assertIn(f"| synthetic | {model} |", report)
            self.assertIn(f"| {model} |", report)  # its top-K row
        for png in ("synthetic_learning_curves.png", "synthetic_topk.png", "synthetic_sparsity.png"):
            self.assertGreater((out / png).stat().st_size, 1000, png)
            self.assertIn(png, report)
        self.assertIn("python -m mkr_tf.train --dataset=synthetic --preset=paper --seed=S "
                      "--use_kge=false", report)

        figures = json.loads((out / "results.json").read_text())
        compared = {row["b"] for row in figures["paired_differences"]}
        self.assertEqual(compared, {"MKR w/o KGE", "popularity", "itemknn", "mf", "kg_popularity",
                                    "kg_history"})
        for row in figures["paired_differences"] + figures["cold_paired_differences"]:
            for key in ("auc", "ndcg@10"):
                self.assertLessEqual(row[key]["low"], row[key]["mean"])
                self.assertLessEqual(row[key]["mean"], row[key]["high"])
                self.assertEqual(row[key]["n"], 2)
        mkr = figures["models"]["synthetic / MKR"]
        self.assertLen(mkr, 2)
        self.assertIn("distinct@10", mkr[0]["test"])
        self.assertEqual(figures["cold"]["synthetic / popularity"][0]["cold_test"]["auc"], 0.5)

        # A split whose saved figures lack a baseline (one added since) has only that one fitted.
        saved_path = sorted((out / "runs" / "synthetic" / "baselines").glob("*.json"))[0]
        saved = json.loads(saved_path.read_text())
        del saved["kg_history"]
        saved_path.write_text(json.dumps(saved))
        again = run_reproduce(f"--output_dir={out}")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertNotIn("training", again.stdout)
        fitted = [line for line in again.stdout.splitlines() if "fitting" in line]
        self.assertLen(fitted, 1, again.stdout)
        self.assertIn("fitting kg_history synthetic", fitted[0])
        # The same figures; the first line (date, command) and the command section name the flag.
        def same_part(text):
            return text.split("\n", 3)[3].partition("## Commands and versions")[0]
        self.assertEqual(same_part((out / "results.md").read_text()), same_part(report))


class PlanTest(tf.test.TestCase):

    def test_ablations_reset_one_option_of_the_preset(self):
        path = pathlib.Path(self.create_tempdir().full_path) / "preset.json"
        presets.write(path, "music", {"rs_loss": "softmax", "use_biases": True, "dim": 32})
        recommended = reproduce.Variant(reproduce.RECOMMENDED_MKR, {}, "", preset=str(path))
        ablation = reproduce.Variant("MKR (recommended) w/o rs_loss", {}, "", preset=str(path),
                                     reset=("rs_loss",))
        plan = reproduce.Plan(datasets=("music",), variants=(recommended, ablation))
        reproduction = reproduce.Reproduction(plan, self.create_tempdir().full_path, ".", ".")
        full, without = (reproduction.config("music", v, seed=1) for v in (recommended, ablation))
        self.assertEqual((full.rs_loss, full.use_biases, full.dim), ("softmax", True, 32))
        self.assertEqual(without, MKRConfig(**{**full.to_dict(), "rs_loss": "pointwise"}))
        paper = reproduction.config("music", reproduce.VARIANTS[0], seed=1)
        self.assertEqual(paper, MKRConfig.for_dataset("music", preset="paper", seed=1))

    def test_without_the_history_a_user_is_their_own_row_again(self):
        path = pathlib.Path(self.create_tempdir().full_path) / "preset.json"
        presets.write(path, "music", {"history_length": 8, "use_user_embedding": False,
                                      "history_dropout": 0.5})
        by_name = {variant.name: variant for variant in reproduce.VARIANTS}
        reproduction = reproduce.Reproduction(reproduce.Plan(datasets=("music",)),
                                              self.create_tempdir().full_path, ".", ".")
        def config(name):
            return reproduction.config("music", dataclasses.replace(by_name[name], preset=str(path)),
                                       seed=1)
        full = config(reproduce.RECOMMENDED_MKR)
        self.assertEqual(config("MKR (recommended) w/o history_length"),
                         dataclasses.replace(full, history_length=0, use_user_embedding=True,
                                             history_dropout=0.0))
        self.assertEqual(config("MKR (recommended) w/o use_user_embedding"),
                         dataclasses.replace(full, use_user_embedding=True))

    def test_without_the_kg_turns_off_both_of_its_uses(self):
        path = pathlib.Path(self.create_tempdir().full_path) / "preset.json"
        presets.write(path, "music", {"item_neighbours": 8, "dim": 32})
        by_name = {variant.name: variant for variant in reproduce.VARIANTS}
        plan = reproduce.Plan(datasets=("music",))
        reproduction = reproduce.Reproduction(plan, self.create_tempdir().full_path, ".", ".")
        configs = {name: reproduction.config("music", dataclasses.replace(
            by_name[name], preset=str(path)), seed=1) for name in (
                reproduce.RECOMMENDED_MKR, "MKR (recommended) w/o KGE",
                reproduce.RECOMMENDED_WITHOUT_KG)}
        full, without_kge, without_kg = configs.values()
        # Without the KGE task the neighbours still read the KG; without the KG neither does.
        self.assertEqual(without_kge, dataclasses.replace(full, use_kge=False))
        self.assertEqual(without_kg, dataclasses.replace(full, use_kge=False, item_neighbours=0))

    def test_each_preset_is_compared_with_what_it_must_beat(self):
        plan = reproduce.Plan(datasets=("music",), baselines=("popularity", "itemknn"))
        reproduction = reproduce.Reproduction(plan, self.create_tempdir().full_path, ".", ".")
        names = ["MKR", "MKR w/o KGE", "MKR (recommended)", "MKR (recommended) w/o KGE",
                 "MKR (recommended) w/o KG", "MKR (recommended) w/o residual", "popularity",
                 "itemknn", "MKR-DCN"]
        self.assertEqual(reproduction.compared_pairs(names), [
            ("MKR", "popularity"), ("MKR", "itemknn"), ("MKR", "MKR w/o KGE"),
            ("MKR (recommended)", "popularity"), ("MKR (recommended)", "itemknn"),
            ("MKR (recommended)", "MKR (recommended) w/o KGE"),
            ("MKR (recommended)", "MKR (recommended) w/o KG"), ("MKR (recommended)", "MKR"),
            ("MKR (recommended)", "MKR (recommended) w/o residual")])


if __name__ == "__main__":
    tf.test.main()
