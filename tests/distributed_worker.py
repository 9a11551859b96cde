"""A training process of test_distribute: trains on the synthetic data, saves its weights.

  python -m tests.distributed_worker RUN_DIR WEIGHTS_FILE N_EPOCHS STRATEGY

STRATEGY is multi_worker (one worker of the cluster in TF_CONFIG), mirrored (two replicas on
two logical CPUs of this process) or default (test_distribute's one-process reference, called
in-process). The weights after the last epoch go to WEIGHTS_FILE (.npz), which only the test
needs: the trainer lets only the chief write.
"""

import sys

import numpy as np
import tensorflow as tf

from mkr_tf import callbacks as mkr_callbacks
from mkr_tf import data as mkr_data
from mkr_tf import distribute
from mkr_tf import progress
from mkr_tf import trainer
from mkr_tf.config import MKRConfig

# Pinned here rather than taken from SYNTHETIC_SETTINGS, which are chosen for 30 epochs. The
# global batch is odd, so two replicas' shares of it differ by a row.
HYPERPARAMETERS = dict(dim=8, L=1, H=1, batch_size=255, l2_weight=1e-6, lr_rs=2e-3,
                       lr_kge=1e-3, kge_interval=1)


class SaveLastWeights(trainer.TrainingCallback):
    """Saves the model's weights after the last epoch (the chief's `train` ends with its best)."""

    def __init__(self, path, n_epochs):
        self.path, self.n_epochs = path, n_epochs

    def on_epoch_end(self, epoch, record, model):
        if epoch == self.n_epochs:
            np.savez(self.path, *[weight.numpy() for weight in model.weights])


def create_strategy(name):
    if name != "mirrored":
        return distribute.create_strategy(name)
    # Two replicas on a machine without GPUs: its CPU as two logical devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def main(run_dir, weights_file, n_epochs, strategy_name):
    """Trains for `n_epochs` as `strategy_name` says; returns the results."""
    # Before any TensorFlow work: multi_worker sets up the collective runtime.
    strategy = create_strategy(strategy_name)
    n_epochs = int(n_epochs)
    data = mkr_data.load_dataset("synthetic", "", "", seed=0, log=lambda _: None)
    config = MKRConfig(n_epochs=n_epochs, **HYPERPARAMETERS)
    callbacks = [SaveLastWeights(weights_file, n_epochs)]
    if distribute.is_chief(strategy):
        # As mkr_tf.train does: top-K, TensorBoard and progress on the chief.
        callbacks += [*mkr_callbacks.training_callbacks(run_dir),
                      progress.ProgressCallback(quiet=True)]
    return trainer.train(config, data, run_dir, "synthetic", strategy=strategy,
                         callbacks=callbacks, log=lambda line: print(line, flush=True)).results


if __name__ == "__main__":
    main(*sys.argv[1:])
