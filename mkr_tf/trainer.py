"""The MKR training loop: alternating RS and KGE passes, per-epoch CTR evaluation, results."""

import json
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import data as mkr_data
from mkr_tf import metrics
from mkr_tf.config import MKRConfig
from mkr_tf.model import MKR

SPLITS = ("train", "eval", "test")
EVAL_BATCH_SIZE = 65536
BEST_WEIGHTS_FILE = "best.weights.h5"
RESULTS_FILE = "results.json"


class TrainingError(RuntimeError):
    """Training cannot go on, e.g. a loss became NaN or Inf."""


class TrainingCallback:
    """Hooks into `train`; subclasses override what they need.

    `record` is the epoch's dict of figures (losses, `<split>_auc`, `<split>_acc`, `seconds`);
    a callback may add keys to it, and they are logged to results.json's history.
    """

    def on_train_begin(self, model: MKR, config: MKRConfig, data: mkr_data.MKRData,
                       run_dir: pathlib.Path) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model: MKR) -> None:
        pass

    def on_train_end(self, results: dict[str, Any], model: MKR) -> None:
        pass


def build_model(config: MKRConfig, data: mkr_data.MKRData) -> MKR:
    keras.utils.set_random_seed(config.seed)
    return MKR(data.n_users, data.n_items, data.n_entities, data.n_relations, dim=config.dim,
               L=config.L, H=config.H, l2_weight=config.l2_weight,
               use_inner_product=config.use_inner_product, lr_rs=config.lr_rs,
               lr_kge=config.lr_kge, optimizer=config.optimizer)


def predict(model: MKR, ratings: np.ndarray) -> np.ndarray:
    """Click probabilities for the (user, item) columns of `ratings`, in large graph batches."""
    scores = [model.predict_batch(tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])).numpy()
              for chunk in np.array_split(ratings, max(1, -(-len(ratings) // EVAL_BATCH_SIZE)))]
    return np.concatenate(scores)


def evaluate_ctr(model: MKR, ratings: np.ndarray) -> dict[str, float]:
    scores = predict(model, ratings)
    labels = ratings[:, 2]
    return {"auc": metrics.auc(labels, scores), "acc": metrics.accuracy(labels, scores)}


def _check_finite(losses: dict[str, Any], task: str, epoch: int) -> None:
    bad_step = int(losses["first_nonfinite_step"])
    if bad_step >= 0:
        raise TrainingError(
            f"{task} loss became NaN or Inf at epoch {epoch}, step {bad_step + 1}; lower the "
            f"learning rate (--lr_{'rs' if task == 'RS' else 'kge'}) or check the input data")


def _write_json_atomically(path: pathlib.Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _format_epoch(epoch: int, n_epochs: int, record: dict[str, Any]) -> str:
    parts = [f"epoch {epoch:>3}/{n_epochs}", f"rs_loss {record['rs_loss']:.4f}"]
    if "kge_loss" in record:
        parts.append(f"kge_loss {record['kge_loss']:.4f}")
    for split in SPLITS:
        parts.append(f"{split} auc {record[f'{split}_auc']:.4f} acc {record[f'{split}_acc']:.4f}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


def train(config: MKRConfig, data: mkr_data.MKRData, run_dir: os.PathLike, dataset_name: str,
          log: Callable[[str], None] = print, data_source: dict[str, Any] | None = None,
          callbacks: Sequence[TrainingCallback] = ()) -> dict[str, Any]:
    """Trains MKR on `data` as `config` says and writes best weights and results.json to `run_dir`.

    Returns the results: the test figures at the epoch with the best eval AUC, the last epoch's,
    the per-epoch history and `train_seconds`, the time spent in training steps only.
    `data_source` (data_dir, cache_dir, prepare_options) is recorded so that `runs.load_run`
    can rebuild the same split later.
    """
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config, data)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    train_seconds = 0.0
    batch_size = tf.constant(config.batch_size, tf.int64)
    for callback in callbacks:
        callback.on_train_begin(model, config, data, run_dir)

    for epoch in range(1, config.n_epochs + 1):
        epoch_start = time.perf_counter()
        record: dict[str, Any] = {"epoch": epoch}
        ratings = tf.constant(mkr_data.shuffled(data.train, (config.seed, epoch, 0)))
        step_start = time.perf_counter()
        rs_losses = model.rec_epoch(ratings, batch_size)
        train_seconds += time.perf_counter() - step_start
        _check_finite(rs_losses, "RS", epoch)
        record.update({k: float(v) for k, v in rs_losses.items() if k.startswith("rs_")})

        # The authors run the KGE pass on epochs 1, 1 + kge_interval, 1 + 2·kge_interval, …
        if config.use_kge and (epoch - 1) % config.kge_interval == 0:
            triples = tf.constant(mkr_data.shuffled(data.kg, (config.seed, epoch, 1)))
            step_start = time.perf_counter()
            kge_losses = model.kg_epoch(triples, batch_size)
            train_seconds += time.perf_counter() - step_start
            _check_finite(kge_losses, "KGE", epoch)
            record.update({k: float(v) for k, v in kge_losses.items() if k.startswith("kge_")})

        for split in SPLITS:
            for name, value in evaluate_ctr(model, getattr(data, split)).items():
                record[f"{split}_{name}"] = value
        record["seconds"] = time.perf_counter() - epoch_start
        for callback in callbacks:
            callback.on_epoch_end(epoch, record, model)
        history.append(record)
        log(_format_epoch(epoch, config.n_epochs, record))

        if best is None or record["eval_auc"] > best["eval_auc"]:
            best = record
            model.save_weights(run_dir / f"tmp-{BEST_WEIGHTS_FILE}")
            os.replace(run_dir / f"tmp-{BEST_WEIGHTS_FILE}", run_dir / BEST_WEIGHTS_FILE)

    last = history[-1]
    results = {
        "dataset": dataset_name,
        "seed": config.seed,
        "best_epoch": best["epoch"],
        "eval_auc": best["eval_auc"],
        "test_auc": best["test_auc"],
        "test_acc": best["test_acc"],
        "last_test_auc": last["test_auc"],
        "last_test_acc": last["test_acc"],
        "train_seconds": train_seconds,
        "config": config.to_dict(),
        "statistics": data.statistics(),
        "history": history,
        "data_source": data_source or {},
    }
    for callback in callbacks:
        callback.on_train_end(results, model)
    _write_json_atomically(run_dir / RESULTS_FILE, results)
    log(f"best eval AUC {best['eval_auc']:.4f} at epoch {best['epoch']}: "
        f"test AUC {best['test_auc']:.4f} ACC {best['test_acc']:.4f} | "
        f"last epoch: test AUC {last['test_auc']:.4f} ACC {last['test_acc']:.4f} | "
        f"train {train_seconds:.1f}s | {run_dir}")
    return results
