"""Test AUC / ACC over seeds at the paper's settings, beside the paper's figures.

  MKR_DATA_DIR=../shared/datasets python benchmarks/paper_table.py --datasets=book,music --seeds=1,2,3

Each run is `python -m mkr_tf.train --dataset=D --seed=S [--optimizer=O]` in-process; figures
are at the epoch with the best eval AUC. Prints one row per dataset and optimizer.
"""

import os

from absl import app
from absl import flags
import numpy as np

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import trainer
from mkr_tf.config import MKRConfig
from mkr_tf.reproduce import PAPER_RESULTS


flags.DEFINE_list("datasets", ["book", "music"], "Datasets.")
flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds.")
flags.DEFINE_list("optimizers", ["lazy_adam"], "Optimizers: lazy_adam, adam.")
flags.DEFINE_string("runs_dir", "runs/paper_table", "Where the runs are written.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    data_dir, cache_dir = cli.default_folders()
    rows = []
    for name in FLAGS.datasets:
        for optimizer in FLAGS.optimizers:
            results = []
            for seed in map(int, FLAGS.seeds):
                data = mkr_data.load_dataset(name, data_dir, cache_dir, seed, log=lambda _: None)
                config = MKRConfig.for_dataset(name, seed=seed, optimizer=optimizer)
                run_dir = os.path.join(FLAGS.runs_dir, name, optimizer, f"seed{seed}")
                run = trainer.train(config, data, run_dir, name, log=lambda _: None)
                results.append(run.results)
                print(f"{name} {optimizer} seed {seed}: test AUC {results[-1]['test_auc']:.4f} "
                      f"ACC {results[-1]['test_acc']:.4f} train {results[-1]['train_seconds']:.1f}s",
                      flush=True)
            auc = np.array([r["test_auc"] for r in results])
            acc = np.array([r["test_acc"] for r in results])
            seconds = np.mean([r["train_seconds"] for r in results])
            paper_auc, paper_acc = PAPER_RESULTS.get(name, (float("nan"), float("nan")))
            rows.append(f"| {name} | {optimizer} | {auc.mean():.4f} ± {auc.std(ddof=1):.4f} | "
                        f"{acc.mean():.4f} ± {acc.std(ddof=1):.4f} | {paper_auc} / {paper_acc} | "
                        f"{seconds:.1f} |")
    print(f"\nseeds {','.join(FLAGS.seeds)}; test figures at the best-eval epoch (mean ± sample std)")
    print("| dataset | optimizer | test AUC | test ACC | paper AUC / ACC | train s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
