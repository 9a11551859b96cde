r"""Reproduces the paper beside baselines: CTR and top-K over seeds, paired differences with
confidence intervals, the ablations, cold items, the sparsity sweep, a report.

  MKR_DATA_DIR=../shared/datasets python -m mkr_tf.reproduce --datasets=book,music
  python -m mkr_tf.reproduce --quick          # synthetic data, 2 seeds, 2 epochs: a smoke test

writes `<output_dir>/results.md` with its plots beside it and `<output_dir>/results.json` with
every figure (`--json` prints it), and keeps every run under `<output_dir>/runs/`. The default
output_dir is runs/reproduce (runs/reproduce-quick with --quick), so that the committed report
changes only when asked: --output_dir=reports. A finished run is reused (`--force` redoes it).
Every model is measured by `protocol.Evaluator` on the same splits: MKR's variants, and the
baselines of `mkr_tf.baselines` fitted on each seed's training split. Models and settings are
selected on the eval split only; the test split is read once per run.
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

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import errors
from mkr_tf import files
from mkr_tf import lazy
from mkr_tf import metrics
from mkr_tf import plot
from mkr_tf import runs
from mkr_tf import significance
from mkr_tf.config import BASELINES, MKRConfig

# TensorFlow's, imported when the runs start, so that --help answers at once.
tf = lazy.load("tensorflow")
baselines = lazy.load("mkr_tf.baselines")
protocol = lazy.load("mkr_tf.protocol")
trainer = lazy.load("mkr_tf.trainer")

# Test AUC / ACC of MKR in the paper's Table 3.
PAPER_RESULTS = {"movie": (0.917, 0.843), "book": (0.734, 0.704), "music": (0.797, 0.752)}


@dataclasses.dataclass(frozen=True)
class Variant:
    """A configuration of MKR: `preset`'s settings (`mkr_tf.presets`) with `overrides`, and the
    options of `reset` put back to the paper's (an ablation of the preset)."""
    name: str
    overrides: dict[str, Any]
    description: str
    compares_with_paper: bool = False
    preset: str = "paper"
    reset: tuple[str, ...] = ()


PAPER_MKR, RECOMMENDED_MKR = "MKR", "MKR (recommended)"
# Without the KGE task, an MKR with item_neighbours still reads the KG; without both, it does not.
RECOMMENDED_WITHOUT_KG = "MKR (recommended) w/o KG"
# The training options beyond the paper, each of which the recommended preset may turn on.
OPTIONS = ("init_scale", "rs_negatives", "use_biases", "residual", "tie_item_entity", "rs_loss",
           "softmax_samples", "kge_negatives", "kge_model", "history_length", "use_user_embedding",
           "history_dropout", "item_neighbours", "history_neighbours", "lr_schedule")
# Options that only mean something beside another: without a history a user is U[user] again,
# the margin is TransE's alone, the samples the softmax loss's, and a history read with its KG
# tails needs both.
_RESET_WITH = {"history_length": ("use_user_embedding", "history_dropout", "history_neighbours"),
               "kge_model": ("kge_margin",), "rs_loss": ("softmax_samples",),
               "item_neighbours": ("history_neighbours",)}
# The paper's ablations (Section 4.4) and the RS task alone; the recommended preset, without the
# KGE task, without the KG at all and without each option in turn.
VARIANTS = (
    Variant("MKR", {}, "the paper's settings, with LazyAdam (this package's default)", True),
    Variant("MKR, dense Adam", {"optimizer": "adam"},
            "the paper's settings with standard Adam, the optimizer of the authors' TF1 code", True),
    Variant("MKR-1L", {"L": 1}, "one cross&compress unit (L = 1)"),
    Variant("MKR-DCN", {"cross_unit": "dcn"}, "DCN cross layers in place of cross&compress"),
    Variant("MKR-stitch", {"cross_unit": "stitch"}, "cross-stitch units: four scalars per unit"),
    Variant("MKR w/o KGE", {"use_kge": False}, "the RS task alone, same towers"),
    Variant(RECOMMENDED_MKR, {}, "the recommended preset, tuned by `mkr_tf.tune` on eval "
            "splits only (mkr_tf/presets/; each file names its splits)", preset="recommended"),
    Variant("MKR (recommended) w/o KGE", {"use_kge": False},
            "the recommended preset's RS task alone", preset="recommended"),
    Variant(RECOMMENDED_WITHOUT_KG, {"use_kge": False}, "the recommended preset's RS task alone, "
            "without the items' KG neighbours: nothing of the KG is read", preset="recommended",
            reset=("item_neighbours", "history_neighbours")),
    *(Variant(f"MKR (recommended) w/o {option}", {}, f"the recommended preset with {option} "
              f"as the paper has it", preset="recommended",
              reset=(option, *_RESET_WITH.get(option, ())))
      for option in OPTIONS),
)
SPARSITY_VARIANTS = ("MKR", "MKR w/o KGE")
COLD_VARIANTS = ("MKR", "MKR w/o KGE", RECOMMENDED_MKR, "MKR (recommended) w/o KGE",
                 RECOMMENDED_WITHOUT_KG)
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
# The figures the paired comparisons and the headline tables are about.
HEADLINE = (("test", "auc", "test AUC"), ("test", "ndcg@10", "NDCG@10"))
SPARSITY_RATIOS = tuple(round(0.1 * i, 1) for i in range(1, 11))
DEFAULT_OUTPUT_DIR = os.path.join("runs", "reproduce")
QUICK_OUTPUT_DIR = os.path.join("runs", "reproduce-quick")
PACKAGES = ("tensorflow", "keras", "numpy", "pandas", "tensorboard", "absl-py", "matplotlib")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to run: every (dataset, variant, seed) at full data, baselines on the same splits,
    the cold-item protocol, and the sparsity sweep."""
    datasets: tuple[str, ...]
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    variants: tuple[Variant, ...] = VARIANTS
    baselines: tuple[str, ...] = BASELINES
    cold_items: float = 0.2  # 0: no cold-item table
    sparsity_dataset: str | None = "music"
    sparsity_ratios: tuple[float, ...] = SPARSITY_RATIOS
    n_epochs: int | None = None  # None: the dataset's setting
    baseline_grids: dict[str, dict[str, tuple]] | None = None  # None: each baseline's own


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

    def config(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0,
               cold: float = 0.0) -> MKRConfig:
        defaults = MKRConfig()
        overrides = {name: getattr(defaults, name) for name in variant.reset}
        overrides.update(variant.overrides, seed=seed, train_ratio=ratio, cold_items=cold)
        if self.plan.n_epochs is not None:
            overrides["n_epochs"] = self.plan.n_epochs
        return MKRConfig.for_dataset(dataset, preset=variant.preset, **overrides)

    def _protocol_part(self, ratio: float, cold: float) -> str:
        return (f"ratio{ratio:.1f}-" if ratio < 1 else "") + (f"cold{cold:.2f}-" if cold else "")

    def run_dir(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0,
                cold: float = 0.0) -> pathlib.Path:
        return (self.out_dir / "runs" / dataset / _slug(variant.name)
                / f"{self._protocol_part(ratio, cold)}seed{seed}")

    def results(self, dataset: str, variant: Variant, seed: int, ratio: float = 1.0,
                cold: float = 0.0) -> dict[str, Any]:
        """The run's results, training it unless a finished run with the same settings exists."""
        run_dir = self.run_dir(dataset, variant, seed, ratio, cold)
        config = self.config(dataset, variant, seed, ratio, cold)
        key = json.dumps([dataset, config.to_dict()], sort_keys=True)
        if key not in self._by_config:
            self._by_config[key] = self._train_or_reuse(dataset, variant, config, run_dir)
        return self._by_config[key]

    def _dataset(self, dataset: str, seed: int) -> mkr_data.MKRData:
        if (dataset, seed) not in self._data:
            self._data[(dataset, seed)] = mkr_data.load_dataset(
                dataset, self.data_dir, self.cache_dir, seed, log=lambda _: None)
        return self._data[(dataset, seed)]

    def _train_or_reuse(self, dataset: str, variant: Variant, config: MKRConfig,
                        run_dir: pathlib.Path) -> dict[str, Any]:
        results_path = run_dir / runs.RESULTS_FILE
        if results_path.is_file() and not self.force:
            results = json.loads(results_path.read_text())
            # A setting added since the run was written has its default there. How the steps
            # were compiled is no setting of the model: XLA changes only the order of float sums.
            saved = {**MKRConfig().to_dict(), **results["config"],
                     "jit_compile": config.jit_compile}
            if saved == config.to_dict() and "protocol" in results:
                return results
        # A finished run of other settings, or --force, starts over; a killed run resumes.
        if run_dir.exists() and (self.force or results_path.is_file()):
            shutil.rmtree(run_dir)
        seed, ratio = config.seed, config.train_ratio
        self.log(f"training {dataset} / {variant.name} / seed {seed}"
                 + (f" / ratio {ratio:.1f}" if ratio < 1 else "")
                 + (f" / cold items {config.cold_items:.2f}" if config.cold_items else ""))
        data_source = {"data_dir": os.path.abspath(self.data_dir),
                       "cache_dir": os.path.abspath(self.cache_dir), "prepare_options": {}}
        # The protocol's figures of the best weights, at the end: no per-epoch top-K curves.
        return trainer.train(config, self._dataset(dataset, seed), run_dir, dataset,
                             log=lambda _: None, callbacks=[protocol.ProtocolCallback()],
                             data_source=data_source).results

    def baseline_figures(self, dataset: str, seed: int, cold: float = 0.0) -> dict[str, Any]:
        """Every baseline's `protocol` figures on the split MKR's run of this seed uses."""
        path = (self.out_dir / "runs" / dataset / "baselines"
                / f"{self._protocol_part(1.0, cold)}seed{seed}.json")
        saved = json.loads(path.read_text()) if path.is_file() and not self.force else {}
        # Only the baselines not fitted yet on this split are fitted now.
        missing = [name for name in self.plan.baselines if name not in saved]
        if missing:
            self.log(f"fitting {', '.join(missing)} {dataset} / seed {seed}"
                     + (f" / cold items {cold:.2f}" if cold else ""))
            data = self._dataset(dataset, seed).for_protocol(cold, 1.0, seed)
            saved.update(baselines.evaluate_all(data, seed, missing,
                                                grids=self.plan.baseline_grids))
            path.parent.mkdir(parents=True, exist_ok=True)
            files.write_text(path, json.dumps(saved, indent=2) + "\n")
        return {name: saved[name] for name in self.plan.baselines}

    def run_all(self) -> dict[str, Any]:
        seeds = self.plan.seeds
        main = {(dataset, variant.name): [self.results(dataset, variant, seed) for seed in seeds]
                for dataset in self.plan.datasets for variant in self.plan.variants}
        baseline_runs = {dataset: [self.baseline_figures(dataset, seed) for seed in seeds]
                         for dataset in self.plan.datasets}
        variants = {variant.name: variant for variant in self.plan.variants}
        cold = {}
        if self.plan.cold_items:
            for dataset in self.plan.datasets:
                for name in COLD_VARIANTS:
                    if name in variants:
                        cold[(dataset, name)] = [
                            self.results(dataset, variants[name], seed, cold=self.plan.cold_items)
                            ["protocol"] for seed in seeds]
                figures = [self.baseline_figures(dataset, seed, self.plan.cold_items)
                           for seed in seeds]
                for name in self.plan.baselines:
                    cold[(dataset, name)] = [f[name] for f in figures]
        sparsity = {}
        if self.plan.sparsity_dataset:
            for name in SPARSITY_VARIANTS:
                if name not in variants:
                    continue
                for ratio in self.plan.sparsity_ratios:
                    sparsity[(name, ratio)] = [
                        self.results(self.plan.sparsity_dataset, variants[name], seed, ratio)
                        for seed in seeds]
        models = {key: [r["protocol"] for r in results] for key, results in main.items()}
        for dataset, figures in baseline_runs.items():
            models.update({(dataset, name): [f[name] for f in figures] for name in self.plan.baselines})
        return {"main": main, "models": models, "cold": cold, "sparsity": sparsity}

    def compared_pairs(self, names) -> list[tuple[str, str]]:
        """(a, b) of the paired comparisons among the models `names` of one dataset: each
        preset's MKR against the baselines and itself without KGE; the recommended preset also
        against itself without the KG, the paper's and each of its ablations."""
        pairs = []
        for mkr in (PAPER_MKR, RECOMMENDED_MKR):
            if mkr not in names:
                continue
            others = [*self.plan.baselines, f"{mkr} w/o KGE"]
            if mkr == RECOMMENDED_MKR:
                others += [RECOMMENDED_WITHOUT_KG, PAPER_MKR,
                           *(f"{mkr} w/o {option}" for option in OPTIONS)]
            pairs += [(mkr, other) for other in others if other in names]
        return pairs

    def comparisons(self, models: dict[tuple[str, str], list[dict[str, Any]]],
                    part: str = "test") -> list[dict[str, Any]]:
        """Paired differences over seeds of `compared_pairs`, per dataset."""
        rows = []
        for dataset in self.plan.datasets:
            names = [name for model_dataset, name in models if model_dataset == dataset]
            for a, b in self.compared_pairs(names):
                first, second = models[(dataset, a)], models[(dataset, b)]
                row = {"dataset": dataset, "a": a, "b": b}
                for _, key, _ in HEADLINE:
                    if len(self.plan.seeds) > 1 and key in first[0].get(part, {}):
                        row[key] = significance.paired_difference(
                            [f[part][key] for f in first], [f[part][key] for f in second])
                rows.append(row)
        return rows

    def figures(self, runs: dict[str, Any]) -> dict[str, Any]:
        """Every figure of the report, for results.json and --json."""
        def by_model(models):
            return {f"{dataset} / {name}": figures for (dataset, name), figures in models.items()}
        return {"seeds": list(self.plan.seeds), "confidence_interval": "Student t, 95%, paired "
                "over seeds", "models": by_model(runs["models"]),
                "paired_differences": self.comparisons(runs["models"]),
                "cold_items": self.plan.cold_items, "cold": by_model(runs["cold"]),
                "cold_paired_differences": self.comparisons(runs["cold"], "cold_test"),
                "sparsity": {f"{name} / {ratio:.1f}": [r["test_auc"] for r in results]
                             for (name, ratio), results in runs["sparsity"].items()}}

    def write_report(self, runs: dict[str, Any], command: str) -> pathlib.Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        figures = self.figures(runs)
        sections = [
            "# MKR reproduction report",
            f"Generated {datetime.date.today().isoformat()} by `{command}` on "
            f"{os.cpu_count()} CPU cores ({platform.machine()}, Python {platform.python_version()}). "
            f"Seeds {', '.join(map(str, self.plan.seeds))}. Each MKR figure is the test split's at "
            f"the epoch with the best eval figure (its `select_on`: eval AUC, or eval AUC + eval "
            f"NDCG@10), and each baseline chose its settings by eval AUC "
            f"(selection never looks at the test split); ± is the sample standard deviation over "
            f"seeds. Every model of a seed is measured on the same split by `protocol.Evaluator`.",
            self._ctr_section(runs["models"]),
            self._topk_section(runs["models"]),
            self._paired_section(figures["paired_differences"], "test"),
        ]
        if runs["cold"]:
            sections.append(self._cold_section(runs["cold"], figures["cold_paired_differences"]))
        sections.append(self._plots_section(runs["main"]))
        if runs["sparsity"]:
            sections.append(self._sparsity_section(runs["sparsity"]))
        sections += [self._wall_time_section(runs), self._environment_section(command)]
        report = self.out_dir / "results.md"
        for path, text in ((report, "\n\n".join(sections) + "\n"),
                           (self.out_dir / "results.json", json.dumps(figures, indent=2) + "\n")):
            files.write_text(path, text)
        return report

    def _ctr_section(self, models) -> str:
        lines = ["## CTR prediction (test AUC / ACC)", "",
                 "| dataset | model | AUC | ACC | paper AUC | paper ACC | AUC − paper | ACC − paper |",
                 "|---|---|---|---|---|---|---|---|"]
        compared = {variant.name for variant in self.plan.variants if variant.compares_with_paper}
        for (dataset, name), figures in models.items():
            auc = np.array([f["test"]["auc"] for f in figures])
            acc = np.array([f["test"]["acc"] for f in figures])
            paper = PAPER_RESULTS.get(dataset) if name in compared else None
            paper_cells = (f"{paper[0]:.3f} | {paper[1]:.3f} | {auc.mean() - paper[0]:+.4f} | "
                           f"{acc.mean() - paper[1]:+.4f}") if paper else "— | — | — | —"
            lines.append(f"| {dataset} | {name} | {auc.mean():.4f} ± {_spread(auc):.4f} | "
                         f"{acc.mean():.4f} ± {_spread(acc):.4f} | {paper_cells} |")
        lines += ["", "Variants: " + "; ".join(f"**{v.name}**: {v.description}"
                                               for v in self.plan.variants) + ". "
                  "Baselines (`python -m mkr_tf.baselines`): **popularity**, the item's training "
                  "positives; **itemknn**, item-based cosine neighbours with shrinkage; **mf**, "
                  "logistic matrix factorisation with biases on MKR's training rows; "
                  "**kg_popularity**, popularity plus a weight (chosen on eval) times the mean "
                  "popularity of the items the KG links to the item through one entity; "
                  "**kg_history**, popularity plus a weight (chosen on eval) times the KG links "
                  "between the item and the user's training items (entities they share, each "
                  "weighted by 1 / its degree), the personal use of the KG. The baselines but MF "
                  "give scores; their ACC thresholds a logistic fit of their score on the eval "
                  "split. "
                  "Paper figures are given for MKR itself only. Where a variant's settings equal "
                  "MKR's (MKR-1L when the dataset's L is already 1), its runs are the same "
                  "computation."]
        return "\n".join(lines)

    def _topk_section(self, models) -> str:
        columns = (("precision@10", "P@10"), ("recall@10", "R@10"), ("ndcg@10", "NDCG@10"),
                   ("hit_rate@10", "HR@10"), ("recall@50", "R@50"), ("ndcg@50", "NDCG@50"),
                   ("distinct@10", "distinct@10"), ("coverage@10", "coverage@10"),
                   ("coverage@50", "coverage@50"), ("popularity_percentile@10", "pop. pct@10"))
        lines = ["## Top-K recommendation (test)", "",
                 "Every user with a positive test item; candidates are all items but the user's "
                 "training items (see docs/observability.md). Mean over seeds. distinct@10: items "
                 "in any user's top 10; coverage@K: their share of the catalogue; pop. pct@10: the "
                 "mean popularity percentile of recommended items (50 is a random pick, near 100 "
                 "a most-popular list).", ""]
        for dataset in self.plan.datasets:
            lines += [f"**{dataset}**", "", "| model | " + " | ".join(c[1] for c in columns) + " |",
                      "|---|" + "---|" * len(columns)]
            for (model_dataset, name), figures in models.items():
                if model_dataset != dataset:
                    continue
                cells = [np.mean([f["test"][key] for f in figures]) for key, _ in columns]
                lines.append(f"| {name} | " + " | ".join(
                    f"{c:.0f}" if key.startswith("distinct") else
                    f"{c:.1f}" if key.startswith("popularity") else f"{c:.4f}"
                    for c, (key, _) in zip(cells, columns)) + " |")
            lines.append("")
        return "\n".join(lines).rstrip()

    def _paired_section(self, comparisons, part: str) -> str:
        title = ("## Paired differences over seeds" if part == "test"
                 else "Paired differences on cold items:")
        lines = [title, "",
                 f"A minus B, seed by seed on the same split: mean [95% Student-t "
                 f"interval] over {len(self.plan.seeds)} seeds; * marks an interval that excludes 0 "
                 f"(a significant difference).", "",
                 "| dataset | comparison | " + " | ".join(f"Δ {label}" for *_, label in HEADLINE)
                 + " |", "|---|---|" + "---|" * len(HEADLINE)]
        for row in comparisons:
            lines.append(f"| {row['dataset']} | {row['a']} − {row['b']} | " + " | ".join(
                significance.format_difference(row[key]) if key in row else "—"
                for _, key, _ in HEADLINE) + " |")
        return "\n".join(lines)

    def _cold_section(self, cold, comparisons) -> str:
        lines = [f"## Cold items (a seeded {self.plan.cold_items:.0%} of the items, no training "
                 f"row)", "",
                 "Each cold item's ratings all moved to eval and test; the KG keeps its triples. "
                 "Figures on the test rows of cold items only; top-K ranks the cold items alone "
                 "(users with a positive cold test item). Popularity and ItemKNN have no training "
                 "row of a cold item, so they score every cold item alike: chance (AUC 0.5); "
                 "kg_popularity ranks cold items by their KG neighbours' popularity, and "
                 "kg_history by their KG links to the user's items.", "",
                 "| dataset | model | cold AUC | cold ACC | cold NDCG@10 | cold R@10 |",
                 "|---|---|---|---|---|---|"]
        for (dataset, name), figures in cold.items():
            cells = []
            for key in ("auc", "acc", "ndcg@10", "recall@10"):
                values = np.array([f["cold_test"][key] for f in figures])
                cells.append(f"{values.mean():.4f} ± {_spread(values):.4f}")
            lines.append(f"| {dataset} | {name} | " + " | ".join(cells) + " |")
        lines += ["", self._paired_section(comparisons, "cold_test")]
        return "\n".join(lines)

    def _plots_section(self, main) -> str:
        lines = ["## Learning curves and top-K curves (MKR, first seed)", ""]
        for (dataset, name), results in main.items():
            if name != "MKR":
                continue
            curves = self.out_dir / f"{dataset}_learning_curves.png"
            topk = self.out_dir / f"{dataset}_topk.png"
            plot.plot_learning_curves(results[0], curves)
            plot.plot_topk(results[0], {key: value for key, value in
                                        results[0]["protocol"]["test"].items()
                                        if key.partition("@")[0] in metrics.TOPK_METRICS}, topk)
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
        defaults = MKRConfig()

        def flag(name, value):
            return f"--{name}={str(value).lower()}"

        single_runs = sorted({
            f"python -m mkr_tf.train --dataset={d} --preset={variant.preset} --seed=S " + " ".join(
                [flag(k, v) for k, v in variant.overrides.items()]
                + [flag(k, getattr(defaults, k)) for k in variant.reset])
            for d in self.plan.datasets for variant in self.plan.variants})
        return "\n".join(["## Commands and versions", "", "This report:", "", "```", command, "```",
                          "", "Any single run of it (S a seed; the sparsity sweep adds "
                          "`--train_ratio=r`):", "", "```", *(c.strip() for c in single_runs),
                          "```", "", "Packages: " + ", ".join(versions) + "."])


FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_list("datasets", ["book", "music"], "Datasets of the CTR and top-K tables.")
    flags.DEFINE_list("seeds", [str(s) for s in DEFAULT_SEEDS], "Seeds of every configuration.")
    flags.DEFINE_list("variants", [_slug(v.name) for v in VARIANTS],
                      "MKR variants to run: " + ", ".join(
                          f"{_slug(v.name)} ({v.name})" for v in VARIANTS) + ".")
    flags.DEFINE_list("baselines", list(BASELINES), "Baselines beside MKR.")
    flags.DEFINE_float("cold_items", 0.2, "Share of cold items of the cold-item table; 0: none.")
    flags.DEFINE_string("output_dir", None,
                        f"Report folder: results.md, results.json, plots, runs/. Default: "
                        f"{DEFAULT_OUTPUT_DIR} ({QUICK_OUTPUT_DIR} with --quick); the committed "
                        f"report is --output_dir=reports.")
    flags.DEFINE_string("sparsity_dataset", "music", "Dataset of the sparsity sweep; empty: none.")
    flags.DEFINE_boolean("force", False, "Redo runs that already have results.")
    flags.DEFINE_boolean("json", False, "Also print every figure of the report as one JSON object.")
    flags.DEFINE_boolean("quick", False,
                         "Smoke test: synthetic data, seeds 1 and 2, 2 epochs, MKR with and "
                         "without KGE, ratio 0.5.")
    cli.define_folder_flags()
    cli.define_xla_cache_flag()


def _main():
    # Each run builds a new model, whose tf.functions TensorFlow then warns are "retracing".
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    by_name = {variant.name: variant for variant in VARIANTS}
    by_slug = {_slug(variant.name): variant for variant in VARIANTS}
    unknown = [name for name in FLAGS.variants if name not in by_slug]
    unknown += [name for name in FLAGS.baselines if name not in baselines.NAMES]
    if unknown:
        raise errors.ConfigError(f"unknown variant or baseline {unknown[0]!r}: variants are "
                         f"{', '.join(by_slug)}, baselines {', '.join(baselines.NAMES)}")
    if FLAGS.quick:
        plan = Plan(datasets=("synthetic",), seeds=(1, 2),
                    variants=(by_name["MKR"], by_name["MKR w/o KGE"]),
                    cold_items=FLAGS.cold_items, sparsity_dataset="synthetic",
                    sparsity_ratios=(0.5, 1.0), n_epochs=2,
                    baseline_grids=baselines.QUICK_GRIDS)
    else:
        plan = Plan(datasets=tuple(FLAGS.datasets), seeds=tuple(int(s) for s in FLAGS.seeds),
                    variants=tuple(by_slug[name] for name in FLAGS.variants),
                    baselines=tuple(FLAGS.baselines), cold_items=FLAGS.cold_items,
                    sparsity_dataset=FLAGS.sparsity_dataset or None)
    output_dir = FLAGS.output_dir or (QUICK_OUTPUT_DIR if FLAGS.quick else DEFAULT_OUTPUT_DIR)
    reproduction = Reproduction(plan, output_dir, *cli.folders_from_flags(), force=FLAGS.force,
                                log=lambda line: print(line, flush=True))
    command = "python -m mkr_tf.reproduce " + " ".join(sys.argv[1:])
    runs = reproduction.run_all()
    report = reproduction.write_report(runs, command)
    if FLAGS.json:
        print(json.dumps(reproduction.figures(runs), indent=2))
    print(f"wrote {report}")


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.reproduce", _main, _define_flags)


if __name__ == "__main__":
    run()
