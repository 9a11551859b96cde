r"""Serving speed of the exported SavedModel's `recommend` signature, on CPU.

  MKR_DATA_DIR=../shared/datasets python benchmarks/serving_speed.py --datasets=music,book
  python benchmarks/serving_speed.py --datasets=music --run_dirs=music=runs/music/20250101-120000

Each dataset's model is trained at the paper's settings for --epochs epochs (ranking costs the
same whatever the weights), or taken from a finished run given in --run_dirs, then exported with
mkr_tf.export and loaded back with tf.saved_model.load. Rows give the median and 90th percentile
latency of `recommend` for one user (k = --k), the throughput of ranking every user (in one call,
or in calls of --batch_users users), and the export's size on disk.
"""

import os
import pathlib
import statistics
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import export
from mkr_tf import trainer
from mkr_tf.config import MKRConfig

flags.DEFINE_list("datasets", ["music", "book"], "Datasets to time.")
flags.DEFINE_list("run_dirs", [], "DATASET=RUN_DIR pairs: export these finished runs instead of "
                                  "training.")
flags.DEFINE_integer("epochs", 2, "Training epochs at the paper's settings, when not given a run.")
cli.define_folder_flags()
flags.DEFINE_integer("calls", 200, "Timed one-user calls.")
flags.DEFINE_integer("k", 10, "Items per user.")
flags.DEFINE_integer("batch_users", 0,
                     "Users per call when ranking every user; 0: all in one call.")
FLAGS = flags.FLAGS


def trained_run(name: str, work_dir: pathlib.Path) -> pathlib.Path:
    data_dir, cache_dir = cli.folders_from_flags()
    data = mkr_data.load_dataset(name, data_dir, cache_dir, seed=0, log=lambda _: None)
    run_dir = work_dir / "runs" / name
    trainer.train(MKRConfig.for_dataset(name, n_epochs=FLAGS.epochs), data, run_dir, name,
                  log=lambda _: None,
                  data_source={"data_dir": os.path.abspath(data_dir),
                               "cache_dir": cache_dir})
    return run_dir


def time_recommend(version_dir: pathlib.Path) -> dict:
    loaded = tf.saved_model.load(str(version_dir))
    recommend = loaded.signatures[export.RECOMMEND_SIGNATURE]
    n_users = int(loaded.n_users.numpy())
    k = tf.constant(FLAGS.k)
    users = np.random.default_rng(0).integers(n_users, size=FLAGS.calls + 10)
    seconds = []
    for call, user in enumerate(users):
        start = time.perf_counter()
        recommend(user_id=tf.constant([user], tf.int64), k=k)["item_ids"].numpy()
        if call >= 10:  # The first calls warm up the function's caches.
            seconds.append(time.perf_counter() - start)
    n_batches = -(-n_users // FLAGS.batch_users) if FLAGS.batch_users else 1
    batches = np.array_split(np.arange(n_users), n_batches)
    recommend(user_id=tf.constant(batches[0]), k=k)["item_ids"].numpy()
    start = time.perf_counter()
    for batch in batches:
        recommend(user_id=tf.constant(batch), k=k)["item_ids"].numpy()
    all_users_seconds = time.perf_counter() - start
    size = sum(path.stat().st_size for path in version_dir.rglob("*") if path.is_file())
    return dict(users=n_users, items=int(loaded.n_items.numpy()),
                median_ms=1e3 * statistics.median(seconds),
                p90_ms=1e3 * float(np.percentile(seconds, 90)),
                users_per_s=n_users / all_users_seconds, all_users_s=all_users_seconds,
                size_mb=size / 1e6)


def main(argv):
    del argv
    # The SavedModel writer logs each step at INFO; that would break up the table.
    logging.set_verbosity(logging.WARNING)
    given_runs = dict(pair.split("=", 1) for pair in FLAGS.run_dirs)
    header = ("dataset", "users", "items", "1 user median ms", "1 user p90 ms", "all users s",
              "users/s", "export MB")
    print(" | ".join(header), flush=True)
    with tempfile.TemporaryDirectory() as work_dir:
        work_dir = pathlib.Path(work_dir)
        for name in FLAGS.datasets:
            run_dir = given_runs.get(name) or trained_run(name, work_dir)
            version_dir = export.export_run(run_dir, work_dir / "saved_models" / name,
                                            log=lambda _: None)
            row = time_recommend(version_dir)
            print(" | ".join([
                name, f"{row['users']:,}", f"{row['items']:,}", f"{row['median_ms']:.2f}",
                f"{row['p90_ms']:.2f}", f"{row['all_users_s']:.2f}",
                f"{row['users_per_s']:,.0f}", f"{row['size_mb']:.2f}"]), flush=True)


if __name__ == "__main__":
    app.run(main)
