r"""Reproduces the paper: CTR and top-K over seeds, the ablations, the sparsity sweep, a report.

  MKR_DATA_DIR=../shared/datasets python -m mkr_tf.reproduce --datasets=book,music --seeds=1,2,3
  python -m mkr_tf.reproduce --quick          # synthetic data, 1 seed, 2 epochs: a smoke test

writes `<out>/results.md` with its plots beside it, and keeps every run under `<out>/runs/`.
A run whose results.json exists is reused (`--force` redoes it). Models are selected on the
eval split only; the test split is read once per run, at the best-eval epoch.
"""

import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import shutil
import sys
from typing import Any

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import metrics
from mkr_tf import plot
from mkr_tf import summaries
from mkr_tf import trainer
from mkr_tf.config import MKRConfig

# Test AUC / ACC of MKR in the paper's Table 3.
PAPER_RESULTS = {"movie": (0.917, 0.843), "book": (0.734, 0.704), "music": (0.797, 0.752)}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]
    description: str
    compares_with_paper: bool = False


# The paper's ablations (Section 4.4) and the RS task alone.
VARIANTS = (
    Variant("MKR", {}, "the paper's settings, with LazyAdam (this package's default)", True),
    Variant("MKR, dense Adam", {"optimizer": "adam"},
            "the paper's settings with standard Adam, the optimizer of the authors' TF1 code", True),
    Variant("MKR-1L", {"L": 1}, "one cross&compress unit (L = 1)"),
    Variant("MKR-DCN", {"cross_unit": "dcn"}, "DCN cross layers in place of cross&compress"),
    Variant("MKR-stitch", {"cross_unit": "stitch"}, "cross-stitch units: four scalars per unit"),
    Variant("MKR w/o KGE", {"use_kge": False}, "the RS task alone, same towers"),
)
SPARSITY_VARIANTS = ("MKR", "MKR w/o KGE")
SPARSITY_RATIOS = tuple(round(0.1 * i, 1) for i in range(1, 11))
PACKAGES = ("tensorflow", "keras", "numpy", "pandas", "tensorboard", "absl-py", "matplotlib")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to run: every (dataset, variant, seed) at full data, and the sparsity sweep."""
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...] = VARIANTS
    sparsity_dataset: str | None = "music"
    sparsity_ratios: tuple[float, ...] = SPARSITY_RATIOS
    n_epochs: int | None = None  # None: the dataset's setting


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _spread(values: np.ndarray) -> float:
    """Sample standard deviation over seeds; 0 for a single seed."""
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


class Reproduction:
    """Runs the plan (reusing finished runs) and writes the report."""

    def __init__(self, plan: Plan, out_dir: os.PathLike, data_dir: os.PathLike,
                 cache_dir: os.PathLike, force: bool = False, log=print):
        self.plan = plan
        self.out_dir = pathlib.Path(out_dir)
        self.data_dir, self.cache_dir = data_dir, cache_dir
        self.force = force
        self.log = log
        self._data: dict[tuple[str, int], mkr_data.MKRData] = {}
        self._by_config: dict[str, dict[str, Any]] = {}

    def config(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0) -> MKRConfig:
        overrides = dict(variant.overrides, seed=seed, train_ratio=ratio)
        if self.plan.n_epochs is not None:
            overrides["n_epochs"] = self.plan.n_epochs
        return MKRConfig.for_dataset(dataset, **overrides)

    def run_dir(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0) -> pathlib.Path:
        ratio_part = "" if ratio >= 1 else f"ratio{ratio:.1f}-"
        return self.out_dir / "runs" / dataset / _slug(variant.name) / f"{ratio_part}seed{seed}"

    def results(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0) -> dict[str, Any]:
        """The run's results, training it unless a finished run with the same settings exists."""
        run_dir = self.run_dir(dataset, variant, seed, ratio)
        config = self.config(dataset, variant, seed, ratio)
        key = json.dumps([dataset, config.to_dict()], sort_keys=True)
        if key not in self._by_config:
            self._by_config[key] = self._train_or_reuse(dataset, variant, config, run_dir)
        return self._by_config[key]

    def _train_or_reuse(self, dataset: str, variant: Variant, config: MKRConfig,
                        run_dir: pathlib.Path) -> dict[str, Any]:
        results_path = run_dir / trainer.RESULTS_FILE
        if results_path.is_file() and not self.force:
            results = json.loads(results_path.read_text())
            if results["config"] == config.to_dict() and "test_topk" in results:
                return results
        # A finished run of other settings, or --force, starts over; a killed run resumes.
        if run_dir.exists() and (self.force or results_path.is_file()):
            shutil.rmtree(run_dir)
        seed, ratio = config.seed, config.train_ratio
        if (dataset, seed) not in self._data:
            self._data[(dataset, seed)] = mkr_data.load_dataset(
                dataset, self.data_dir, self.cache_dir, seed, log=lambda _: None)
        self.log(f"training {dataset} / {variant.name} / seed {seed}"
                 + (f" / ratio {ratio:.1f}" if ratio < 1 else ""))
        # Top-K only for the best weights, at the end: the report needs no per-epoch curves of it.
        topk = summaries.TopKCallback(every=config.n_epochs + 1)
        data_source = {"data_dir": os.path.abspath(self.data_dir),
                       "cache_dir": os.path.abspath(self.cache_dir), "prepare_options": {}}
        return trainer.train(config, self._data[(dataset, seed)], run_dir, dataset,
                             log=lambda _: None, callbacks=[topk], data_source=data_source)

    def run_all(self) -> dict[str, Any]:
        main = {(dataset, variant.name): [self.results(dataset, variant, seed)
                                          for seed in self.plan.seeds]
                for dataset in self.plan.datasets for variant in self.plan.variants}
        sparsity = {}
        if self.plan.sparsity_dataset:
            variants = {variant.name: variant for variant in self.plan.variants}
            for name in SPARSITY_VARIANTS:
                for ratio in self.plan.sparsity_ratios:
                    sparsity[(name, ratio)] = [
                        self.results(self.plan.sparsity_dataset, variants[name], seed, ratio)
                        for seed in self.plan.seeds]
        return {"main": main, "sparsity": sparsity}

    def write_report(self, runs: dict[str, Any], command: str) -> pathlib.Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sections = [
            "# MKR reproduction report",
            f"Generated {datetime.date.today().isoformat()} by `{command}` on "
            f"{os.cpu_count()} CPU cores ({platform.machine()}, Python {platform.python_version()}). "
            f"Seeds {', '.join(map(str, self.plan.seeds))}. Each figure is the test split's at the "
            f"epoch with the best eval AUC (selection never looks at the test split); ± is the "
            f"sample standard deviation over seeds.",
            self._ctr_section(runs["main"]),
            self._topk_section(runs["main"]),
            self._plots_section(runs["main"]),
        ]
        if runs["sparsity"]:
            sections.append(self._sparsity_section(runs["sparsity"]))
        sections += [self._wall_time_section(runs), self._environment_section(command)]
        report = self.out_dir / "results.md"
        temporary = report.with_name(".results.md.tmp")
        temporary.write_text("\n\n".join(sections) + "\n")
        os.replace(temporary, report)
        return report

    def _ctr_section(self, main) -> str:
        lines = ["## CTR prediction (test AUC / ACC)", "",
                 "| dataset | model | AUC | ACC | paper AUC | paper ACC | AUC − paper | ACC − paper |",
                 "|---|---|---|---|---|---|---|---|"]
        compared = {variant.name for variant in self.plan.variants if variant.compares_with_paper}
        for (dataset, name), results in main.items():
            auc = np.array([r["test_auc"] for r in results])
            acc = np.array([r["test_acc"] for r in results])
            paper = PAPER_RESULTS.get(dataset) if name in compared else None
            paper_cells = (f"{paper[0]:.3f} | {paper[1]:.3f} | {auc.mean() - paper[0]:+.4f} | "
                           f"{acc.mean() - paper[1]:+.4f}") if paper else "— | — | — | —"
            lines.append(f"| {dataset} | {name} | {auc.mean():.4f} ± {_spread(auc):.4f} | "
                         f"{acc.mean():.4f} ± {_spread(acc):.4f} | {paper_cells} |")
        lines += ["", "Variants: " + "; ".join(f"**{v.name}**: {v.description}"
                                               for v in self.plan.variants) + ". "
                  "Paper figures are given for MKR itself only. Where a variant's settings equal MKR's "
                  "(MKR-1L when the dataset's L is already 1), its runs are the same computation."]
        return "\n".join(lines)

    def _topk_section(self, main) -> str:
        lines = ["## Top-K recommendation (test, MKR)", "",
                 "Every user with a positive test item; candidates are all items but the user's "
                 "training items (see docs/observability.md for the definitions). Mean over seeds.",
                 ""]
        for (dataset, name), results in main.items():
            if name != "MKR":
                continue
            lines += [f"**{dataset}**", "", "| K | Precision | Recall | NDCG | HitRate |",
                      "|---|---|---|---|---|"]
            for k in metrics.TOPK_CUTOFFS:
                cells = [np.mean([r["test_topk"][f"{metric}@{k}"] for r in results])
                         for metric in metrics.TOPK_METRICS]
                lines.append(f"| {k} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
            lines.append("")
        return "\n".join(lines).rstrip()

    def _plots_section(self, main) -> str:
        lines = ["## Learning curves and top-K curves (MKR, first seed)", ""]
        for (dataset, name), results in main.items():
            if name != "MKR":
                continue
            curves = self.out_dir / f"{dataset}_learning_curves.png"
            topk = self.out_dir / f"{dataset}_topk.png"
            plot.plot_learning_curves(results[0], curves)
            plot.plot_topk(results[0], results[0]["test_topk"], topk)
            lines += [f"![{dataset} learning curves]({curves.name})", "",
                      f"![{dataset} top-K]({topk.name})", ""]
        return "\n".join(lines).rstrip()

    def _sparsity_section(self, sparsity) -> str:
        dataset = self.plan.sparsity_dataset
        lines = [f"## Sparsity: test AUC on {dataset} with a share r of the training split", "",
                 "| r | " + " | ".join(SPARSITY_VARIANTS) + " | KG gain |",
                 "|---|" + "---|" * (len(SPARSITY_VARIANTS) + 1)]
        curves: dict[str, list[tuple[float, float, float]]] = {}
        for ratio in self.plan.sparsity_ratios:
            means = []
            for name in SPARSITY_VARIANTS:
                aucs = np.array([r["test_auc"] for r in sparsity[(name, ratio)]])
                means.append(aucs.mean())
                curves.setdefault(name, []).append((ratio, aucs.mean(), _spread(aucs)))
            lines.append(f"| {ratio:.1f} | " + " | ".join(
                f"{mean:.4f} ± {std:.4f}" for (_, mean, std) in
                (curves[name][-1] for name in SPARSITY_VARIANTS)) + f" | {means[0] - means[1]:+.4f} |")
        path = self.out_dir / f"{dataset}_sparsity.png"
        pyplot = plot.load_pyplot()
        figure, axes = pyplot.subplots(figsize=(6, 4))
        for name, points in curves.items():
            ratios, means, stds = map(np.array, zip(*points))
            axes.errorbar(ratios, means, yerr=stds, marker="o", capsize=3, label=name)
        axes.set(xlabel="share r of the training split", ylabel="test AUC",
                 title=f"{dataset}: MKR with and without the KGE task")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        pyplot.close(figure)
        lines += ["", f"![sparsity]({path.name})"]
        return "\n".join(lines)

    def _wall_time_section(self, runs) -> str:
        lines = ["## Wall time per run", "",
                 "Training steps only (`train_seconds`) and the whole run with per-epoch evaluation.",
                 "", "| dataset | model | r | seed | train s | run s |", "|---|---|---|---|---|---|"]
        rows = [(dataset, name, 1.0, r) for (dataset, name), results in runs["main"].items()
                for r in results]
        # Ratio 1.0 of the sweep is the main table's run.
        rows += [(self.plan.sparsity_dataset, name, ratio, r)
                 for (name, ratio), results in runs["sparsity"].items() if ratio < 1
                 for r in results]
        for dataset, name, ratio, r in rows:
            run_seconds = sum(record["seconds"] for record in r["history"])
            lines.append(f"| {dataset} | {name} | {ratio:.1f} | {r['seed']} | "
                         f"{r['train_seconds']:.1f} | {run_seconds:.1f} |")
        return "\n".join(lines)

    def _environment_section(self, command: str) -> str:
        versions = []
        for package in PACKAGES:
            try:
                versions.append(f"{package} {importlib.metadata.version(package)}")
            except importlib.metadata.PackageNotFoundError:
                versions.append(f"{package} (not installed)")
        single_runs = sorted({f"python -m mkr_tf.train --dataset={d} --seed=S "
                              + " ".join(f"--{k}={str(v).lower()}" for k, v in variant.overrides.items())
                              for d in self.plan.datasets for variant in self.plan.variants})
        return "\n".join(["## Commands and versions", "", "This report:", "", "```", command, "```",
                          "", "Any single run of it (S a seed; the sparsity sweep adds "
                          "`--train_ratio=r`):", "", "```", *(c.strip() for c in single_runs),
                          "```", "", "Packages: " + ", ".join(versions) + "."])


FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_list("datasets", ["book", "music"], "Datasets of the CTR and top-K tables.")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds of every configuration.")
    flags.DEFINE_string("out", "reports", "Report folder: results.md, plots, runs/.")
    flags.DEFINE_string("sparsity_dataset", "music", "Dataset of the sparsity sweep; empty: none.")
    flags.DEFINE_boolean("force", False, "Redo runs that already have results.")
    flags.DEFINE_boolean("quick", False,
                         "Smoke test: synthetic data, seed 1, 2 epochs, ratios 0.5 and 1.0.")
    flags.DEFINE_string("data_dir", None, "Default: $MKR_DATA_DIR, else ~/.mkr_tf/data.")
    flags.DEFINE_string("cache_dir", None, "Default: ~/.mkr_tf/cache.")


def _main():
    # Each run builds a new model, whose tf.functions TensorFlow then warns are "retracing".
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    if FLAGS.quick:
        plan = Plan(datasets=("synthetic",), seeds=(1,), sparsity_dataset="synthetic",
                    sparsity_ratios=(0.5, 1.0), n_epochs=2)
    else:
        plan = Plan(datasets=tuple(FLAGS.datasets), seeds=tuple(int(s) for s in FLAGS.seeds),
                    sparsity_dataset=FLAGS.sparsity_dataset or None)
    data_dir = FLAGS.data_dir or os.environ.get("MKR_DATA_DIR") or os.path.expanduser("~/.mkr_tf/data")
    cache_dir = FLAGS.cache_dir or os.path.expanduser("~/.mkr_tf/cache")
    reproduction = Reproduction(plan, FLAGS.out, data_dir, cache_dir, force=FLAGS.force,
                                log=lambda line: print(line, flush=True))
    command = "python -m mkr_tf.reproduce " + " ".join(sys.argv[1:])
    print(f"wrote {reproduction.write_report(reproduction.run_all(), command)}")


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.reproduce", _main, _define_flags)


if __name__ == "__main__":
    run()
