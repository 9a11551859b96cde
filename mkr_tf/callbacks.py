"""Observability of training (top-K evaluation, TensorBoard summaries and HParams), and the export.

`training_callbacks` assembles them for `trainer.train`; console progress is
`progress.ProgressCallback`. The graphs that top-K and the export run after training are traced
in a background thread from the end of the first epoch on: tracing is Python, and the training
epochs are C++ that releases the GIL, so on small data the two overlap. TensorBoard tags:

    step/<task>_<output>, step/<task>_examples_per_second   every N training steps (in graph;
                                                  x = global step of both tasks)
    epoch/rs_loss, epoch/rs_base_loss, epoch/rs_l2_loss, epoch/kge_loss, epoch/kge_score,
    epoch/kge_rmse, epoch/examples_per_second, epoch/seconds, epoch/topk_seconds   per epoch
    auc/<split>, acc/<split>                      per epoch, split in train, eval, test
    topk_test/<metric>@<K>                        per top-K evaluation
    learning_rate/rs, learning_rate/kge           per epoch
    final/<figure>                                the run's results, also HParams metrics
"""

import concurrent.futures
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from mkr_tf import engine
from mkr_tf import errors
from mkr_tf import export
from mkr_tf import metrics
from mkr_tf import runs
from mkr_tf import trainer

LOGS_SUBDIR = runs.LOGS_DIR
# One thread, so that two background traces never run at once.
_TRACING = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mkr_tf_tracing")
# Final figures the HParams dashboard compares runs by; the top-K ones are the best weights'.
_HPARAMS_RESULTS = ("eval_auc", "test_auc", "test_acc", "last_test_auc", "train_seconds")
_HPARAMS_TOPK = ("test_precision@10", "test_recall@10", "test_ndcg@10", "test_hit_rate@10",
                 "test_recall@20", "test_ndcg@20")


class TopKCallback(trainer.TrainingCallback):
    """The top-K metrics of a split for the best weights at the end, and every `every` epochs.

    Keys are `<split>_<metric>@<K>` (e.g. `test_recall@20`, see `metrics.ranking_metrics`)
    and `topk_seconds`; they reach results.json's history, TensorBoard and the console.
    At the end, the best weights' figures go to the results as `<split>_topk`. With `every`
    None, top-K runs only then: over a large catalogue it costs more than an epoch's training.
    """

    def __init__(self, every: int | None = 1, split: str = "test",
                 ks: Sequence[int] = metrics.TOPK_CUTOFFS):
        if every is not None and every < 1:
            raise errors.ConfigError(f"top-K evaluation needs every >= 1 epochs, got {every}")
        self.every, self.split, self.ks = every, split, ks
        self._evaluator = None
        self._traced = None

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._evaluator = metrics.TopKEvaluator(data.train, getattr(data, self.split),
                                                data.n_items, self.ks)
        self._traced = None

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model) -> None:
        if self._traced is None:
            # From the first epoch's end: the epoch graphs are traced by then.
            self._traced = _TRACING.submit(self._evaluator.trace, model)
        if self.every is None or epoch % self.every:
            return
        self._traced.result()
        start = time.perf_counter()
        figures = self._evaluator(model)
        record.update({f"{self.split}_{name}": value for name, value in figures.items()})
        record["topk_seconds"] = time.perf_counter() - start

    def on_train_end(self, results: dict[str, Any], model) -> None:
        # The trainer hands over the best weights. If top-K ran in the best epoch, its figures
        # are those weights' already; otherwise they are computed now.
        best = next(record for record in results["history"]
                    if record["epoch"] == results["best_epoch"])
        prefix = f"{self.split}_"
        figures = {key[len(prefix):]: value for key, value in best.items()
                   if key.startswith(prefix) and "@" in key}
        if not figures and self._traced is not None:
            self._traced.result()
        results[f"{self.split}_topk"] = figures or self._evaluator(model)

    def on_train_abort(self) -> None:
        _settle(self._traced)


class ExportCallback(trainer.TrainingCallback):
    """Exports the trained model when `export` is called after training (`export.export_trained`),
    with the serving graphs (`export.prepare`) traced while the model trained."""

    def __init__(self, export_base: os.PathLike, log: Callable[[str], None] = print):
        self.export_base, self.log = export_base, log
        self._prepared = None

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._train_ratings, self._prepared = data.train, None

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model) -> None:
        if self._prepared is None:
            self._prepared = _TRACING.submit(export.prepare, model, self._train_ratings)

    def on_train_abort(self) -> None:
        _settle(self._prepared)

    def export(self, run: runs.Run) -> pathlib.Path:
        """Exports `run`, the result of the `trainer.train` this callback was given to."""
        prepared = self._prepared.result() if self._prepared is not None else None
        return export.export_trained(run, self.export_base, self.log, prepared=prepared)


def _settle(traced: concurrent.futures.Future | None) -> None:
    """Drops the background trace of an aborted training if it has not started; a started one
    finishes on its own, unwaited for (Ctrl-C ends at once), its error unraised."""
    if traced is not None:
        traced.cancel()


def _epoch_tag(key: str) -> str:
    split, _, name = key.partition("_")
    if split in trainer.SPLITS and name in ("auc", "acc"):
        return f"{name}/{split}"
    if split in trainer.SPLITS and "@" in name:
        return f"topk_{split}/{name}"
    return f"epoch/{key}"


class TensorBoardCallback(trainer.TrainingCallback):
    """Writes TensorBoard scalars of every epoch and every `summary_every_steps` steps, and HParams.

    Its `step_summaries` (`engine.StepSummaries`: this callback's writer, a step variable that
    counts both tasks' training steps, every `summary_every_steps` steps; 0: none) go to the
    epoch loop, which writes the step scalars; at the end they are closed for good, so the
    traced epoch graphs still run once the writer is closed. Epoch scalars use the epoch as
    step, written with the writer passed explicitly: no summary state is installed globally.
    At the end the run's configuration and final figures go to the HParams plugin, so that
    `tensorboard --logdir runs/` compares runs side by side.
    """

    def __init__(self, logdir: os.PathLike, summary_every_steps: int = 100):
        self.logdir = pathlib.Path(logdir)
        self.summary_every_steps = summary_every_steps
        self._writer = None
        self._config = None
        self._n_train_rows = self._n_kg_rows = 0
        self._start_time = 0.0

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._config = config
        self._n_train_rows, self._n_kg_rows = len(data.train), len(data.kg)
        self._start_time = time.time()
        self._writer = tf.summary.create_file_writer(str(self.logdir))
        if self.summary_every_steps > 0:
            # Both tasks' optimizers count their steps, also across a resumed run's checkpoint.
            step = tf.Variable(model.rs_optimizer.iterations + model.kge_optimizer.iterations,
                               dtype=tf.int64, trainable=False)
            self.step_summaries = engine.StepSummaries(self._writer, step,
                                                       self.summary_every_steps)

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model) -> None:
        rows = self._n_train_rows + (self._n_kg_rows if "kge_loss" in record else 0)
        scalars = {_epoch_tag(key): value for key, value in record.items()
                   if key != "epoch" and isinstance(value, (int, float))}
        scalars["epoch/examples_per_second"] = rows / record["seconds"]
        # Through numpy: float() of a keras.Variable fails on the MirroredVariable it holds
        # under tf.distribute's synchronous strategies.
        scalars["learning_rate/rs"] = float(model.rs_optimizer.learning_rate.numpy())
        scalars["learning_rate/kge"] = float(model.kge_optimizer.learning_rate.numpy())
        with self._writer.as_default(), tf.summary.record_if(True):
            for tag, value in scalars.items():
                tf.summary.scalar(tag, value, step=epoch)
        self._writer.flush()

    def on_train_end(self, results: dict[str, Any], model) -> None:
        final = {name: results[name] for name in _HPARAMS_RESULTS}
        final.update({f"test_{name}": value for name, value in results.get("test_topk", {}).items()
                      if f"test_{name}" in _HPARAMS_TOPK})
        hparams = {"dataset": results["dataset"], **self._config.to_dict()}
        with self._writer.as_default(), tf.summary.record_if(True):
            hparams_api.hparams_config(
                hparams=[hparams_api.HParam(name) for name in hparams],
                metrics=[hparams_api.Metric(f"final/{name}", display_name=name)
                         for name in _HPARAMS_RESULTS + _HPARAMS_TOPK])
            hparams_api.hparams(hparams, trial_id=str(self.logdir),
                                start_time_secs=int(self._start_time))
            for name, value in final.items():
                tf.summary.scalar(f"final/{name}", value, step=results["best_epoch"])
        self.on_train_abort()

    def on_train_abort(self) -> None:
        if self.step_summaries is not None:
            self.step_summaries.close()
        self._writer.close()


def training_callbacks(run_dir: os.PathLike, logdir: os.PathLike | None = None,
                       topk_every: int | None = None,
                       summary_every_steps: int = 100) -> list[trainer.TrainingCallback]:
    """The observability callbacks of a training run, in the order `trainer.train` needs them.

    Top-K on the test split for the best weights at the end, and every `topk_every` epochs
    (None: only at the end; 0: never), then TensorBoard logs in
    `logdir` (default `<run_dir>/logs`) with step scalars every `summary_every_steps` steps
    (0: none), which record the top-K figures too.
    """
    for name, value in (("topk_every", topk_every), ("summary_every_steps", summary_every_steps)):
        if value is not None and value < 0:
            raise errors.ConfigError(f"{name} must be an integer >= 0 (0: off), got {value}")
    callbacks: list[trainer.TrainingCallback] = []
    if topk_every != 0:
        callbacks.append(TopKCallback(every=topk_every or None))
    callbacks.append(TensorBoardCallback(
        logdir if logdir is not None else pathlib.Path(run_dir) / LOGS_SUBDIR, summary_every_steps))
    return callbacks
