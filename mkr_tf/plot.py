r"""Plots a finished run: `python -m mkr_tf.plot --run_dir=RUN [--output_dir=DIR]`.

Writes two PNGs to DIR (default RUN):
  learning_curves.png  per epoch, from results.json's history: RS loss, KGE loss, AUC per split
  topk.png             Precision, Recall, NDCG and HitRate against K on the test split, from
                       RUN/evaluation.json (`mkr_tf.evaluate`), else results.json's test_topk

Needs matplotlib, the `plot` extra: pip install 'mkr-tf[plot]'. It reads JSON only, so it does
not load TensorFlow.
"""

import json
import pathlib
import re
from typing import Any

from absl import flags

from mkr_tf import cli
from mkr_tf import errors
from mkr_tf import runs

RESULTS_FILE = runs.RESULTS_FILE
EVALUATION_FILE = runs.EVALUATION_FILE
LEARNING_CURVES_FILE = "learning_curves.png"
TOPK_FILE = "topk.png"
SPLITS = ("train", "eval", "test")

FLAGS = flags.FLAGS

_TOPK_TITLES = {"precision": "Precision@K", "recall": "Recall@K", "ndcg": "NDCG@K",
                "hit_rate": "HitRate@K"}
_SPLIT_COLOURS = {"train": "tab:blue", "eval": "tab:orange", "test": "tab:green"}


class PlotError(errors.MKRError):
    """The run cannot be plotted: no matplotlib, or no readable results."""


def load_pyplot():
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise PlotError("mkr_tf.plot needs matplotlib; install it with "
                        "pip install 'mkr-tf[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    return pyplot


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PlotError(f"{path}: not found; is {path.parent} a finished mkr_tf.train run?") from None
    except (OSError, ValueError) as error:
        raise PlotError(f"{path}: cannot read: {error}") from None


def _title(results: dict[str, Any]) -> str:
    return (f"{results['dataset']}, seed {results['seed']}: best eval AUC {results['eval_auc']:.4f} "
            f"at epoch {results['best_epoch']}, test AUC {results['test_auc']:.4f}")


def plot_learning_curves(results: dict[str, Any], path: pathlib.Path) -> None:
    """RS loss, KGE loss and AUC of every split against the epoch; the best epoch marked."""
    pyplot = load_pyplot()
    history = results["history"]
    epochs = [record["epoch"] for record in history]
    figure, (rs_axes, kge_axes, auc_axes) = pyplot.subplots(1, 3, figsize=(15, 4.2))
    rs_axes.plot(epochs, [r["rs_loss"] for r in history], "o-", label="total")
    rs_axes.plot(epochs, [r["rs_base_loss"] for r in history], "s--", label="cross-entropy")
    rs_axes.set(title="RS loss", xlabel="epoch")
    rs_axes.legend()
    kge_records = [r for r in history if "kge_loss" in r]
    if kge_records:
        kge_axes.plot([r["epoch"] for r in kge_records], [r["kge_loss"] for r in kge_records],
                      "o-", color="tab:purple")
    else:
        kge_axes.text(0.5, 0.5, "no KGE pass", ha="center", va="center",
                      transform=kge_axes.transAxes)
    kge_axes.set(title="KGE loss (epochs with a KGE pass)", xlabel="epoch")
    for split in SPLITS:
        auc_axes.plot(epochs, [r[f"{split}_auc"] for r in history], "o-", label=split,
                      color=_SPLIT_COLOURS[split])
    auc_axes.axvline(results["best_epoch"], color="grey", linestyle=":", label="best eval")
    auc_axes.set(title="AUC", xlabel="epoch")
    auc_axes.legend()
    for axes in (rs_axes, kge_axes, auc_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(_title(results))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def plot_topk(results: dict[str, Any], topk: dict[str, float], path: pathlib.Path,
              split: str = "test") -> None:
    """Each top-K metric against K, from figures keyed `<metric>@<K>`."""
    pyplot = load_pyplot()
    curves: dict[str, list[tuple[int, float]]] = {}
    for key, value in topk.items():
        name, k = re.fullmatch(r"(\w+)@(\d+)", key).groups()
        curves.setdefault(name, []).append((int(k), value))
    names = [name for name in _TOPK_TITLES if name in curves]
    figure, all_axes = pyplot.subplots(1, len(names), figsize=(4 * len(names), 3.8))
    for axes, name in zip(all_axes, names):
        ks, values = zip(*sorted(curves[name]))
        axes.plot(ks, values, "o-")
        axes.set_xscale("log")
        axes.set_xticks(ks, [str(k) for k in ks])
        axes.minorticks_off()
        axes.set(title=_TOPK_TITLES[name], xlabel="K", ylim=(0, None))
        axes.grid(alpha=0.3)
    figure.suptitle(f"Top-K on {split}, every item but the user's training items — "
                    + _title(results))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def plot_run(run_dir: str, output_dir: str | None = None) -> list[pathlib.Path]:
    """Writes the run's PNGs; returns their paths (no topk.png if no top-K figures exist)."""
    run_dir = pathlib.Path(run_dir)
    output_dir = pathlib.Path(output_dir) if output_dir else run_dir
    results = _read_json(run_dir / RESULTS_FILE)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / LEARNING_CURVES_FILE]
    plot_learning_curves(results, written[0])
    if (run_dir / EVALUATION_FILE).is_file():
        topk = _read_json(run_dir / EVALUATION_FILE)["topk"]["metrics"]
    else:
        topk = results.get("test_topk")
    if topk:
        written.append(output_dir / TOPK_FILE)
        plot_topk(results, topk, written[-1])
    return written


def _define_flags() -> None:
    # Defined on demand rather than at import, so that plot_run can be imported next to
    # mkr_tf.train, which has a --run_dir flag of its own.
    flags.DEFINE_string("run_dir", None, "Folder of a finished mkr_tf.train run.")
    flags.DEFINE_string("output_dir", None, "Where the PNGs go. Default: --run_dir.")


def _main():
    if not FLAGS.run_dir:
        raise PlotError("--run_dir is required: the folder of a finished mkr_tf.train run")
    written = plot_run(FLAGS.run_dir, FLAGS.output_dir)
    for path in written:
        print(path)
    if len(written) == 1:
        print(f"no top-K figures: run python -m mkr_tf.evaluate --run_dir={FLAGS.run_dir} "
              f"first for {TOPK_FILE}")


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.plot", _main, _define_flags)


if __name__ == "__main__":
    run()
