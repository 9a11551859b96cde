"""The MKR training loop: alternating RS and KGE passes, per-epoch CTR evaluation, results."""

import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import budget
from mkr_tf import data as mkr_data
from mkr_tf import distribute
from mkr_tf import engine
from mkr_tf import errors
from mkr_tf import files
from mkr_tf import metrics
from mkr_tf import model as mkr_model
from mkr_tf import negatives
from mkr_tf import runs
from mkr_tf.config import MKRConfig
from mkr_tf.model import MKR

SPLITS = ("train", "eval", "test")
# The cutoff of the eval NDCG that --select_on=auc+ndcg@10 adds to the eval AUC.
SELECTION_K = 10


class TrainingCallback:
    """Hooks into `train`; subclasses override what they need.

    `record` is the epoch's dict of figures (losses, `<split>_auc`, `<split>_acc`, `seconds`);
    a callback may add keys to it, and they are logged to results.json's history. A callback
    that sets `step_summaries` in `on_train_begin` gets the training steps' TensorBoard scalars
    written there (`engine.StepSummaries`); the first such callback's are used.
    """

    step_summaries: engine.StepSummaries | None = None

    def on_train_begin(self, model: MKR, config: MKRConfig, data: mkr_data.MKRData,
                       run_dir: pathlib.Path) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model: MKR) -> None:
        pass

    def on_train_end(self, results: dict[str, Any], model: MKR) -> None:
        pass

    def on_train_abort(self) -> None:
        """Training raised; release what on_train_begin set up."""


def evaluate_ctr(model: MKR, ratings: np.ndarray) -> dict[str, float]:
    return _ctr_metrics(ratings, engine.predict(model, ratings))


def _ctr_metrics(ratings: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    labels = ratings[:, 2]
    return {"auc": metrics.auc(labels, scores), "acc": metrics.accuracy(labels, scores)}


def _check_finite(losses: dict[str, Any], task: str, epoch: int) -> None:
    bad_step = int(losses["first_nonfinite_step"])
    if bad_step >= 0:
        raise errors.TrainingError(
            f"{task} loss became NaN or Inf at epoch {epoch}, step {bad_step + 1}; lower the "
            f"learning rate (--lr_{'rs' if task == 'RS' else 'kge'}) or check the input data")


def _format_epoch(epoch: int, n_epochs: int, record: dict[str, Any]) -> str:
    """One line per epoch, in fixed-width columns: "-" stands for kge_loss on epochs without a
    KGE pass. kge_loss is negative: it is −mean σ(t · t̂) + λ·L2 (MKR.kg_update)."""
    kge_loss = f"{record['kge_loss']:7.4f}" if "kge_loss" in record else f"{'-':>7}"
    parts = [f"epoch {epoch:>3}/{n_epochs}", f"rs_loss {record['rs_loss']:.4f}",
             f"kge_loss {kge_loss}"]
    for split in SPLITS:
        parts.append(f"{split} auc {record[f'{split}_auc']:.4f} acc {record[f'{split}_acc']:.4f}")
    # The time the progress bar's s/epoch averages: training and evaluation, then top-K.
    seconds = f"{record['seconds']:5.1f}s"
    if "topk_seconds" in record:
        seconds += f" + top-K {record['topk_seconds']:.1f}s"
    parts.append(seconds)
    return "  ".join(parts)


class BestWeights(tf.Module):
    """A copy of the model's weights at its best epoch so far, kept in variables.

    The copy is part of every checkpoint, so a resumed run still has it, and best.weights.h5 is
    written once, when training ends, instead of after every improving epoch (a Keras weights
    file costs far more than the assigns).
    """

    def __init__(self, model: MKR):
        super().__init__(name="best_weights")
        self._model_weights = list(model.weights)
        self.copies = []
        for weight in self._model_weights:
            # Beside the weight: a parameter-server table's row shards stay on their servers.
            variable = weight.value if isinstance(weight, keras.Variable) else weight
            with tf.device(variable.device):
                self.copies.append(tf.Variable(tf.convert_to_tensor(weight), trainable=False))

    def keep(self) -> None:
        """Copies the model's current weights."""
        for copy, weight in zip(self.copies, self._model_weights):
            copy.assign(weight)

    def put_back(self) -> None:
        """Gives the model the kept weights."""
        for copy, weight in zip(self.copies, self._model_weights):
            weight.assign(copy)


def _checkpoint(model: MKR, progress: tf.Variable, best: BestWeights) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(model=model, rs_optimizer=model.rs_optimizer,
                               kge_optimizer=model.kge_optimizer, progress=progress,
                               best_weights=best)


def _restore_progress(checkpoint: tf.train.Checkpoint,
                      manager: tf.train.CheckpointManager) -> dict[str, Any]:
    """The progress saved with the latest checkpoint, after restoring model, optimizers and the
    best weights.

    `runs.claimed` has checked that the folder holds a run of the same settings.
    """
    latest = manager.latest_checkpoint
    reader = tf.train.load_checkpoint(latest)
    if not any(key.startswith("best_weights/") for key in reader.get_variable_to_shape_map()):
        raise errors.TrainingError(f"{latest}: written by an earlier mkr_tf, without the best "
                                   f"weights; start the run afresh with --overwrite")
    progress = json.loads(reader.get_tensor("progress/.ATTRIBUTES/VARIABLE_VALUE").decode())
    checkpoint.restore(latest).assert_existing_objects_matched()
    return progress


def train(config: MKRConfig, data: mkr_data.MKRData, run_dir: os.PathLike, dataset_name: str,
          log: Callable[[str], None] = print, data_source: dict[str, Any] | None = None,
          callbacks: Sequence[TrainingCallback] = (), patience: int | None = None,
          require_checkpoint: bool = False,
          strategy: tf.distribute.Strategy | None = None,
          overwrite: bool = False,
          checkpoint_every_seconds: float = runs.CHECKPOINT_EVERY_SECONDS) -> runs.Run:
    """Trains MKR on `data` as `config` says, checkpointing under `run_dir`.

    A run folder that holds a checkpoint is resumed from it (and `require_checkpoint` insists on
    one); `runs.claimed` guards the folder (one writer, none of the user's own files, the
    same settings unless `overwrite`, which starts afresh). Tables that would not fit in memory
    or the run folder on its disk are refused before the model is built (`budget`). Ctrl-C
    raises `errors.Interrupted` and a failed save `errors.RunDirError`, each saying which epoch
    the kept checkpoint holds. A checkpoint is saved after the first epoch that ends
    `checkpoint_every_seconds` after the previous one (0: after every epoch), and after the
    last epoch. Each epoch's shuffles are a function of (seed, epoch), so a resumed run goes on
    exactly as an uninterrupted one would. With `patience`, training stops once the eval selection figure
    (`config.select_on`) has not improved for that many epochs. The weights of the best-eval epoch are kept with each checkpoint
    (`BestWeights`) and written to best.weights.h5 when training ends.

    Returns the `runs.Run`: the trained model with the best weights, the data it was trained
    and evaluated on (after `config`'s protocol), and the results, also written to
    results.json: the test figures at the epoch with the best eval AUC, the last epoch's, the
    per-epoch history, `train_seconds`, the time spent in training steps only, and
    `trace_seconds`, the time spent building the graphs before the first epoch (XLA's
    compilation included, with `config.jit_compile`). `data_source`
    (data_dir, cache_dir, prepare_options) is recorded so that `runs.load_run` can rebuild the
    same split later.

    With a `strategy` from `distribute.create_strategy`, the model is built in its scope and
    epochs and evaluation run through its `engine.make_runner`. Every multi_worker worker
    runs this function with the same arguments (and, to resume, sees the chief's `run_dir`);
    only the chief writes to `run_dir`, and only the chief's model ends with the best weights.
    The results then also hold `distribution` (`distribute.describe`).
    """
    run_dir = pathlib.Path(run_dir)
    # Before the folder is claimed, so that a mistyped --run_dir is not created.
    checkpoints = run_dir / runs.CHECKPOINT_DIR
    if require_checkpoint and tf.train.latest_checkpoint(str(checkpoints)) is None:
        raise errors.TrainingError(f"{checkpoints}: no checkpoint to resume from")
    runs.check_checkpoint_every_seconds(checkpoint_every_seconds)
    # A setting the data refuses, refused before the run folder is written.
    mkr_model.check_softmax_samples(config.softmax_samples, data.n_items)
    arguments = (config, data, run_dir, dataset_name, log, data_source, callbacks, patience,
                 strategy, checkpoint_every_seconds)
    if not distribute.is_chief(strategy):
        return _train(*arguments)
    with runs.claimed(run_dir, runs.identity(dataset_name, config.to_dict()), overwrite):
        return _train(*arguments)


def _train(config, data, run_dir, dataset_name, log, data_source, callbacks, patience, strategy,
           checkpoint_every_seconds):
    chief = distribute.is_chief(strategy)
    data = runs.protocol_data(config, data)
    planned = budget.plan(config, data)
    # Parameter servers hold the sharded tables, not this process.
    budget.check(planned, run_dir if chief else None, memory=strategy is None)
    with distribute.scope(strategy):
        model = mkr_model.build_model(config, data)
        model.schedule_learning_rates(*steps_per_run(config, data))
    best_weights = BestWeights(model)
    checkpoint = _checkpoint(model, tf.Variable("", dtype=tf.string, trainable=False),
                             best_weights)
    manager = tf.train.CheckpointManager(checkpoint, run_dir / runs.CHECKPOINT_DIR, max_to_keep=2)
    if manager.latest_checkpoint:
        progress = _restore_progress(checkpoint, manager)
        progress["config"] = config.to_dict()
        log(f"resuming {run_dir} after epoch {len(progress['history'])}")
    else:
        progress = {"config": config.to_dict(), "history": [], "train_seconds": 0.0,
                    "trace_seconds": 0.0, "stopped_early": False}
    history: list[dict[str, Any]] = progress["history"]
    for record in history:
        # A run saved before selection was recorded selected on eval AUC.
        record.setdefault("eval_selection", record["eval_auc"])
    eval_topk = (metrics.TopKEvaluator(data.train, data.eval, data.n_items, (SELECTION_K,))
                 if config.select_on != "auc" else None)
    distribute.assert_agreed(strategy, len(history),
                             f"the epochs done in {run_dir} (resuming needs it on shared storage)")
    for callback in callbacks:
        callback.on_train_begin(model, config, data, run_dir)
    step_summaries = next((callback.step_summaries for callback in callbacks
                           if callback.step_summaries is not None), None)

    saved_epoch = len(history)

    def kept() -> str:
        """What a failed save leaves, for its message."""
        return (f"; the checkpoint of epoch {saved_epoch} is kept: free space or fix the "
                f"folder, then resume with --resume"
                if saved_epoch else "; nothing was saved yet")

    try:
        runner = engine.make_runner(strategy, model, config.jit_compile, step_summaries)
        trace_start = time.perf_counter()
        # Every epoch trains on as many rows as the first, so its shapes are known now.
        runner.trace(len(_epoch_ratings(config, data, len(history) + 1)),
                     len(data.kg) if config.use_kge else 0, config.batch_size)
        progress["trace_seconds"] = (progress.get("trace_seconds", 0.0)
                                     + time.perf_counter() - trace_start)
        last_save = time.perf_counter()
        for epoch in range(len(history) + 1, config.n_epochs + 1):
            if progress["stopped_early"]:
                break
            epoch_start = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch}
            ratings = _epoch_ratings(config, data, epoch)
            step_start = time.perf_counter()
            rs_losses = runner.rec_epoch(ratings, config.batch_size)
            progress["train_seconds"] += time.perf_counter() - step_start
            _check_finite(rs_losses, "RS", epoch)
            record.update({k: float(v) for k, v in rs_losses.items() if k.startswith("rs_")})

            if config.runs_kge(epoch):
                triples = mkr_data.shuffled(data.kg, (config.seed, epoch, 1))
                step_start = time.perf_counter()
                kge_losses = runner.kg_epoch(triples, config.batch_size)
                progress["train_seconds"] += time.perf_counter() - step_start
                _check_finite(kge_losses, "KGE", epoch)
                record.update({k: float(v) for k, v in kge_losses.items() if k.startswith("kge_")})

            for split in SPLITS:
                split_rows = getattr(data, split)
                scores = runner.predict(split_rows)
                for name, value in _ctr_metrics(split_rows, scores).items():
                    record[f"{split}_{name}"] = value
                if len(data.cold_items) and split != "train":
                    cold = np.isin(split_rows[:, 1], data.cold_items)
                    for name, value in _ctr_metrics(split_rows[cold], scores[cold]).items():
                        record[f"{split}_cold_{name}"] = value
            if eval_topk is not None:
                record[f"eval_ndcg@{SELECTION_K}"] = eval_topk(model)[f"ndcg@{SELECTION_K}"]
            record["eval_selection"] = selection_figure(record, config.select_on)
            record["seconds"] = time.perf_counter() - epoch_start
            # Kept before the callbacks run, so the best weights are the ones just evaluated.
            best_before = max((r["eval_selection"] for r in history), default=-float("inf"))
            if record["eval_selection"] > best_before:
                best_weights.keep()
            for callback in callbacks:
                callback.on_epoch_end(epoch, record, model)
            history.append(record)
            best_epoch = _best_record(history)["epoch"]
            progress["stopped_early"] = patience is not None and epoch - best_epoch >= patience
            last_epoch = epoch == config.n_epochs or progress["stopped_early"]
            if last_epoch or time.perf_counter() - last_save >= checkpoint_every_seconds:
                checkpoint.progress.assign(json.dumps(progress))
                if chief:
                    budget.check_room(run_dir, max(planned.checkpoint_bytes,
                                                   _size(manager.latest_checkpoint)),
                                      f"the checkpoint of epoch {epoch}", then=kept())
                    with runs.writing(
                            run_dir / runs.CHECKPOINT_DIR, f"the checkpoint of epoch {epoch}",
                            then=kept(),
                            partial=(run_dir / runs.CHECKPOINT_DIR / f"ckpt-{epoch}_temp",)):
                        manager.save(checkpoint_number=epoch)
                saved_epoch, last_save = epoch, time.perf_counter()
            log(_format_epoch(epoch, config.n_epochs, record))
            if progress["stopped_early"]:
                log(f"early stop: the eval selection figure has not improved for {patience} epochs since epoch {best_epoch}")
    except BaseException as error:
        for callback in callbacks:
            callback.on_train_abort()
        if isinstance(error, KeyboardInterrupt):
            kept_now = (f"the checkpoint of epoch {saved_epoch} is kept: resume with --resume "
                        f"--run_dir={run_dir}" if saved_epoch else "nothing was saved yet")
            raise errors.Interrupted(f"interrupted; {kept_now}") from None
        raise

    best, last = _best_record(history), history[-1]
    results = {
        "dataset": dataset_name,
        "seed": config.seed,
        "best_epoch": best["epoch"],
        "eval_auc": best["eval_auc"],
        **{key: best[key] for key in (f"eval_ndcg@{SELECTION_K}",) if key in best},
        "test_auc": best["test_auc"],
        "test_acc": best["test_acc"],
        **{key: best[key] for key in ("test_cold_auc", "test_cold_acc") if key in best},
        "last_epoch": last["epoch"],
        "last_test_auc": last["test_auc"],
        "last_test_acc": last["test_acc"],
        "stopped_early": progress["stopped_early"],
        "train_seconds": progress["train_seconds"],
        "trace_seconds": progress["trace_seconds"],
        "config": config.to_dict(),
        "statistics": data.statistics(),
        "history": history,
        "data_source": data_source or {},
    }
    if strategy is not None:
        results["distribution"] = distribute.describe(strategy, model)
    if chief:
        # The best weights, not the last, are what evaluation and export see from here on.
        best_weights.put_back()
        budget.check_room(run_dir, max(planned.weights_file_bytes,
                                       _size(run_dir / runs.BEST_WEIGHTS_FILE)),
                          runs.BEST_WEIGHTS_FILE, then=kept())
        with runs.writing(run_dir, runs.BEST_WEIGHTS_FILE, then=kept()), files.replacing(
                run_dir / runs.BEST_WEIGHTS_FILE) as temporary:
            model.save_weights(temporary)
    for callback in callbacks:
        callback.on_train_end(results, model)
    if chief:
        with runs.writing(run_dir, runs.RESULTS_FILE, then=kept()):
            files.write_json(run_dir / runs.RESULTS_FILE, results)
    selected = (f"best eval AUC {best['eval_auc']:.4f}" if config.select_on == "auc" else
                f"best eval AUC + NDCG@{SELECTION_K} {best['eval_selection']:.4f}")
    log(f"{selected} at epoch {best['epoch']}: "
        f"test AUC {best['test_auc']:.4f} ACC {best['test_acc']:.4f} | "
        f"last epoch ({last['epoch']}): test AUC {last['test_auc']:.4f} ACC {last['test_acc']:.4f} | "
        f"train {progress['train_seconds']:.1f}s | {run_dir}")
    return runs.Run(run_dir, results, config, data, model)


def _epoch_ratings(config: MKRConfig, data: mkr_data.MKRData, epoch: int) -> np.ndarray:
    """The RS rows epoch `epoch` trains on, in its seeded order."""
    ratings = data.train
    if config.rs_loss != "pointwise":
        # The softmax losses contrast each positive with the catalogue or the step's sampled
        # items: negative rows would only cost steps.
        ratings = data.train[data.train[:, 2] == 1]
    elif config.rs_negatives:
        ratings = negatives.with_fresh_negatives(
            data.train, data.n_items, config.rs_negatives, (config.seed, epoch, 3))
    return mkr_data.shuffled(ratings, (config.seed, epoch, 0))


def steps_per_pass(config: MKRConfig, data: mkr_data.MKRData) -> tuple[int, int]:
    """The steps of an RS pass and of a KGE pass (every epoch trains on as many rows as the
    first)."""
    return (math.ceil(len(_epoch_ratings(config, data, 1)) / config.batch_size),
            math.ceil(len(data.kg) / config.batch_size))


def steps_per_run(config: MKRConfig, data: mkr_data.MKRData) -> tuple[int, int]:
    """The RS and the KGE steps of all `config.n_epochs` epochs."""
    rs_steps, kge_steps = steps_per_pass(config, data)
    kge_epochs = sum(config.runs_kge(epoch) for epoch in range(1, config.n_epochs + 1))
    return config.n_epochs * rs_steps, kge_epochs * kge_steps


def _size(path: os.PathLike | None) -> int:
    """Bytes of a file, or of a checkpoint's files when given its prefix; 0 when absent."""
    if path is None:
        return 0
    path = pathlib.Path(path)
    return sum(part.stat().st_size for part in path.parent.glob(f"{path.name}*"))


def selection_figure(record: dict[str, Any], select_on: str) -> float:
    """What an epoch is selected by: its eval AUC, plus its eval NDCG@10 for "auc+ndcg@10"."""
    if select_on == "auc":
        return record["eval_auc"]
    return record["eval_auc"] + record[f"eval_ndcg@{SELECTION_K}"]


def _best_record(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The first epoch with the highest selection figure."""
    return max(history, key=lambda record: (record["eval_selection"], -record["epoch"]))
