"""A finished training run read back from its folder: results, configuration, data and best weights."""

import dataclasses
import json
import os
import pathlib
from typing import Any

from mkr_tf import data as mkr_data
from mkr_tf import trainer
from mkr_tf.config import MKRConfig
from mkr_tf.model import MKR


@dataclasses.dataclass
class Run:
    run_dir: pathlib.Path
    results: dict[str, Any]
    config: MKRConfig
    data: mkr_data.MKRData
    model: MKR


def load_run(run_dir: os.PathLike, log=lambda _: None) -> Run:
    """Rebuilds the run's data split (same dataset, options, seed and train ratio) and its
    best-eval model."""
    run_dir = pathlib.Path(run_dir)
    results_path = run_dir / trainer.RESULTS_FILE
    weights_path = run_dir / trainer.BEST_WEIGHTS_FILE
    for path in (results_path, weights_path):
        if not path.is_file():
            raise mkr_data.DataError(f"{path}: not found; is {run_dir} a finished mkr_tf.train run?")
    results = json.loads(results_path.read_text())
    config = MKRConfig(**results["config"])
    source = results["data_source"]
    data = mkr_data.load_dataset(
        results["dataset"], source.get("data_dir", ""), source.get("cache_dir", ""), config.seed,
        log=log, processed_dir=source.get("processed_dir"),
        allow_sparse_ids=source.get("allow_sparse_ids", False),
        **source.get("prepare_options", {})).for_protocol(
            config.cold_items, config.train_ratio, config.seed)
    model = trainer.build_model(config, data)
    model.load_weights(weights_path)
    return Run(run_dir, results, config, data, model)
