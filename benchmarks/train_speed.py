"""Training speed: examples/s of the RS and KGE passes and seconds per epoch, at paper settings.

  MKR_DATA_DIR=../shared/datasets python benchmarks/train_speed.py --datasets=book,music

Prints one row per dataset and optimizer. Steady-state figures exclude the first epoch,
which includes tracing the graph.
"""

import time

from absl import app
from absl import flags

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import engine
from mkr_tf import model as mkr_model
from mkr_tf import trainer
from mkr_tf.config import MKRConfig

flags.DEFINE_list("datasets", ["book", "music"], "Datasets to time.")
flags.DEFINE_list("optimizers", ["lazy_adam", "adam"], "Optimizers to time.")
flags.DEFINE_integer("epochs", 3, "Timed epochs after the warm-up epoch.")
FLAGS = flags.FLAGS


def time_dataset(name: str, optimizer: str) -> dict:
    data = mkr_data.load_dataset(name, *cli.default_folders(), seed=0, log=lambda _: None)
    config = MKRConfig.for_dataset(name, optimizer=optimizer)
    model = mkr_model.build_model(config, data)
    model.schedule_learning_rates(*trainer.steps_per_run(config, data))
    runner = engine.LocalRunner(model)
    rs_seconds, kge_seconds = [], []
    for epoch in range(FLAGS.epochs + 1):
        start = time.perf_counter()
        runner.rec_epoch(mkr_data.shuffled(data.train, (0, epoch, 0)), config.batch_size)
        rs_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        runner.kg_epoch(mkr_data.shuffled(data.kg, (0, epoch, 1)), config.batch_size)
        kge_seconds.append(time.perf_counter() - start)
    rs = sum(rs_seconds[1:]) / FLAGS.epochs
    kge = sum(kge_seconds[1:]) / FLAGS.epochs
    # The paper's schedule runs the KGE pass on every kge_interval-th epoch only.
    epoch_seconds = rs + kge / config.kge_interval
    return dict(dataset=name, optimizer=optimizer, batch=config.batch_size,
                rs_examples_per_s=len(data.train) / rs, kge_examples_per_s=len(data.kg) / kge,
                rs_pass_s=rs, kge_pass_s=kge, epoch_s=epoch_seconds,
                first_epoch_s=rs_seconds[0] + kge_seconds[0],
                paper_run_s=epoch_seconds * config.n_epochs + (kge_seconds[0] + rs_seconds[0] - rs - kge))


def main(argv):
    del argv
    header = ("dataset", "optimizer", "batch", "RS ex/s", "KGE ex/s", "RS pass s", "KGE pass s",
              "s/epoch", "est. run s")
    print(" | ".join(header))
    for name in FLAGS.datasets:
        for optimizer in FLAGS.optimizers:
            row = time_dataset(name, optimizer)
            print(" | ".join([
                row["dataset"], row["optimizer"], str(row["batch"]),
                f"{row['rs_examples_per_s']:,.0f}", f"{row['kge_examples_per_s']:,.0f}",
                f"{row['rs_pass_s']:.2f}", f"{row['kge_pass_s']:.2f}", f"{row['epoch_s']:.2f}",
                f"{row['paper_run_s']:.1f}"]), flush=True)


if __name__ == "__main__":
    app.run(main)
