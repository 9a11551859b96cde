r"""Evaluates a finished run's best weights: `python -m mkr_tf.evaluate --run_dir=RUN`.

Rebuilds the run's data split, loads best.weights.h5 and prints two tables: CTR (AUC and ACC
of every split) and top-K on the test split over the whole catalogue (Precision, Recall, NDCG
and HitRate at each K; `metrics.ranking_metrics` defines them). The figures also go to
RUN/evaluation.json, where `mkr_tf.plot` finds them. Examples:

  python -m mkr_tf.evaluate --run_dir=runs/music/20250101-120000
  python -m mkr_tf.evaluate --run_dir=RUN --json --ks=10,20 | jq .topk.metrics
"""

import json
import os
import pathlib
import time
from typing import Any, Sequence

from absl import flags

from mkr_tf import cli
from mkr_tf import errors
from mkr_tf import files
from mkr_tf import lazy
from mkr_tf import metrics
from mkr_tf import runs

# TensorFlow's, imported when an evaluation starts, so that --help answers at once.
baselines = lazy.load("mkr_tf.baselines")
protocol = lazy.load("mkr_tf.protocol")
trainer = lazy.load("mkr_tf.trainer")

EVALUATION_FILE = runs.EVALUATION_FILE

FLAGS = flags.FLAGS

_TOPK_HEADERS = {"precision": "Precision", "recall": "Recall", "ndcg": "NDCG",
                 "hit_rate": "HitRate"}


def evaluate_run(run: runs.Run, ks: Sequence[int] = metrics.TOPK_CUTOFFS,
                 with_baselines: bool = True) -> dict[str, Any]:
    """CTR figures of every split and top-K figures of the test split, for `run`'s model; with
    `with_baselines`, the baselines fitted on the same split beside it (`protocol.evaluate`)."""
    ctr = {split: trainer.evaluate_ctr(run.model, getattr(run.data, split))
           for split in trainer.SPLITS}
    start = time.perf_counter()
    evaluator = protocol.Evaluator(run.data, ks)
    mkr = evaluator(run.model)
    seconds = time.perf_counter() - start
    topk = {name: value for name, value in mkr["test"].items() if "@" in name}
    evaluation = {
        "run_dir": str(run.run_dir),
        "dataset": run.results["dataset"],
        "seed": run.config.seed,
        "best_epoch": run.results["best_epoch"],
        "ctr": ctr,
        "topk": {"split": "test", "users": evaluator.topk.n_users, "items": run.data.n_items,
                 "ks": list(evaluator.ks),
                 "metrics": {k: v for k, v in topk.items() if k.partition("@")[0] in
                             metrics.TOPK_METRICS},
                 "beyond_accuracy": {k: v for k, v in topk.items() if k.partition("@")[0] not in
                                     metrics.TOPK_METRICS},
                 "seconds": seconds},
        "mkr": mkr,
    }
    if with_baselines:
        evaluation["baselines"] = baselines.evaluate_all(run.data, run.config.seed, ks=ks)
    return evaluation


def format_tables(evaluation: dict[str, Any]) -> str:
    """The CTR and top-K tables of `evaluate_run`'s figures, as text."""
    topk = evaluation["topk"]
    lines = [f"{evaluation['run_dir']}: {evaluation['dataset']}, seed {evaluation['seed']}, "
             f"best epoch {evaluation['best_epoch']}", "",
             f"{'CTR':<6}{'AUC':>8}{'ACC':>8}"]
    lines += [f"{split:<6}{figures['auc']:>8.4f}{figures['acc']:>8.4f}"
              for split, figures in evaluation["ctr"].items()]
    lines += ["", f"Top-K on {topk['split']}: {topk['users']:,} users with positives there, "
                  f"ranking all {topk['items']:,} items but their training items "
                  f"({topk['seconds']:.2f} s)",
              f"{'K':>5}" + "".join(f"{header:>11}" for header in _TOPK_HEADERS.values())]
    lines += [f"{k:>5}" + "".join(f"{topk['metrics'][f'{name}@{k}']:>11.4f}"
                                  for name in _TOPK_HEADERS)
              for k in topk["ks"]]
    models = {"MKR": evaluation["mkr"], **evaluation.get("baselines", {})}
    summary = protocol.format_comparison(
        models, [], title="Summary on the test split" + (
            ", with the baselines fitted on the run's own training split:" if len(models) > 1
            else ":"))
    lines += ["", summary.rstrip()]
    return "\n".join(lines)


def _load_run(run_dir: str) -> runs.Run:
    try:
        return runs.load_run(run_dir)
    except KeyError as error:
        raise errors.DataError(f"{pathlib.Path(run_dir) / runs.RESULTS_FILE} has no {error}; is "
                         f"{run_dir} a run of this version of mkr_tf.train?") from None


def save(evaluation: dict[str, Any], run_dir: os.PathLike) -> None:
    """Writes `evaluation` to RUN_DIR/evaluation.json, whole or not at all."""
    path = pathlib.Path(run_dir) / EVALUATION_FILE
    files.write_text(path, json.dumps(evaluation, indent=2) + "\n")


def _define_flags() -> None:
    # Defined on demand rather than at import, so that evaluate_run can be imported next to
    # mkr_tf.train, which has --run_dir and --verbose flags of its own.
    flags.DEFINE_string("run_dir", None, "Folder of a finished mkr_tf.train run.")
    flags.DEFINE_boolean("json", False, "Print the figures as one JSON object instead of tables.")
    flags.DEFINE_list("ks", [str(k) for k in metrics.TOPK_CUTOFFS],
                      "Cut-offs K of the top-K metrics.")
    flags.DEFINE_boolean("save", True, f"Also write the figures to RUN_DIR/{EVALUATION_FILE}.")
    flags.DEFINE_boolean("baselines", True, "Fit the baselines (mkr_tf.baselines) on the run's split "
                         "and show them beside MKR (--nobaselines: MKR alone).")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors.")


def _main():
    if not FLAGS.run_dir:
        raise errors.ConfigError("--run_dir is required: the folder of a finished mkr_tf.train run")
    ks = [int(k) for k in FLAGS.ks]
    evaluation = evaluate_run(_load_run(FLAGS.run_dir), ks, with_baselines=FLAGS.baselines)
    if FLAGS.save:
        save(evaluation, FLAGS.run_dir)
    print(json.dumps(evaluation, indent=2) if FLAGS.json else format_tables(evaluation))


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.evaluate", _main, _define_flags)


if __name__ == "__main__":
    run()
