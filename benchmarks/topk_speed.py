"""Top-K evaluation speed: one full evaluation (every test user, the whole catalogue) per dataset.

  MKR_DATA_DIR=../shared/datasets python benchmarks/topk_speed.py --datasets=book,music

The model is untrained (paper settings): ranking costs the same whatever the weights. Rows give
the evaluator's set-up (index arrays), the first call (tracing included) and the median of the
warm calls, for the inner-product RS head and for the MLP head (--use_inner_product=false).
"""

import statistics
import time

from absl import app
from absl import flags

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import metrics
from mkr_tf import model as mkr_model
from mkr_tf.config import MKRConfig

flags.DEFINE_list("datasets", ["book", "music"], "Datasets to time.")
cli.define_folder_flags()
flags.DEFINE_integer("repeats", 3, "Warm evaluations timed after the first.")
flags.DEFINE_integer("seed", 1, "Seed of the split and the initialisation.")
FLAGS = flags.FLAGS


def time_evaluation(data: mkr_data.MKRData, name: str, use_inner_product: bool) -> dict:
    model = mkr_model.build_model(
        MKRConfig.for_dataset(name, seed=FLAGS.seed, use_inner_product=use_inner_product), data)
    start = time.perf_counter()
    evaluator = metrics.TopKEvaluator(data.train, data.test, data.n_items)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    evaluator(model)
    first = time.perf_counter() - start
    warm = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        evaluator(model)
        warm.append(time.perf_counter() - start)
    return dict(users=evaluator.n_users, setup=setup, first=first, warm=statistics.median(warm))


def main(argv):
    del argv
    data_dir, cache_dir = cli.folders_from_flags()
    print(" | ".join(("dataset", "RS head", "users", "items", "set-up s", "first call s",
                      "warm s", "users/s")))
    for name in FLAGS.datasets:
        data = mkr_data.load_dataset(name, data_dir, cache_dir, FLAGS.seed,
                                     log=lambda _: None)
        for use_inner_product in (True, False):
            row = time_evaluation(data, name, use_inner_product)
            print(" | ".join([
                name, "inner product" if use_inner_product else "MLP", f"{row['users']:,}",
                f"{data.n_items:,}", f"{row['setup']:.2f}", f"{row['first']:.2f}",
                f"{row['warm']:.2f}", f"{row['users'] / row['warm']:,.0f}"]), flush=True)


if __name__ == "__main__":
    app.run(main)
