"""Logistic matrix factorisation, the MF baseline: a small Keras model and its eval-selected fit."""

import dataclasses
import itertools
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import data as mkr_data
from mkr_tf import engine
from mkr_tf import metrics


@keras.saving.register_keras_serializable(package="mkr_tf")
class MatrixFactorization(keras.Model):
    """Logistic matrix factorisation with biases, trained as MKR's RS task is.

        ŷ(u, i) = σ(p_u · q_i + b_u + b_i + b)
        loss    = mean cross-entropy(y, ŷ) + λ · mean over the batch of (‖p_u‖² + ‖q_i‖²) / 2

    on the same training rows and the same sampled negatives, with Adam.
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, l2_weight: float = 0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), int(dim)
        self.l2_weight = float(l2_weight)
        normal = keras.initializers.RandomNormal(stddev=0.1)
        self.user_factors = keras.layers.Embedding(self.n_users, self.dim,
                                                   embeddings_initializer=normal)
        self.item_factors = keras.layers.Embedding(self.n_items, self.dim,
                                                   embeddings_initializer=normal)
        self.user_bias = keras.layers.Embedding(self.n_users, 1, embeddings_initializer="zeros")
        self.item_bias = keras.layers.Embedding(self.n_items, 1, embeddings_initializer="zeros")
        self.global_bias = self.add_weight(shape=(), initializer="zeros", name="global_bias")

    def logits_and_l2(self, users, items):
        user_factors, item_factors = self.user_factors(users), self.item_factors(items)
        logits = (tf.reduce_sum(user_factors * item_factors, axis=-1)
                  + tf.squeeze(self.user_bias(users), -1) + tf.squeeze(self.item_bias(items), -1)
                  + self.global_bias)
        l2 = tf.reduce_mean(tf.reduce_sum(tf.square(user_factors) + tf.square(item_factors), -1)) / 2
        return logits, l2

    def call(self, inputs):
        return tf.sigmoid(self.logits_and_l2(inputs["user"], inputs["item"])[0])

    def catalogue_logits(self, users):
        """Logits [N, n_items] of each user against every item."""
        return (tf.matmul(self.user_factors(users), self.item_factors.embeddings, transpose_b=True)
                + self.user_bias(users) + tf.transpose(self.item_bias.embeddings) + self.global_bias)

    def get_config(self):
        return dict(name=self.name, n_users=self.n_users, n_items=self.n_items, dim=self.dim,
                    l2_weight=self.l2_weight)


@dataclasses.dataclass(frozen=True)
class MFSettings:
    dim: int = 64
    learning_rate: float = 1e-2
    l2_weight: float = 0.1
    batch_size: int = 1024
    max_epochs: int = 40
    patience: int = 3


# Chosen among by eval AUC, per dataset and seed. A wider search (dim 16-64, learning rate
# 2e-3-1e-2, λ 1e-5-0.3) on music and book seed 1 found its best points inside this grid.
MF_GRID = {"dim": (32, 64), "learning_rate": (1e-2,), "l2_weight": (0.03, 0.1)}


class MF:
    """`MatrixFactorization` with its settings chosen on the eval split, early-stopped on eval AUC."""
    name = "mf"

    def __init__(self, data: mkr_data.MKRData, seed: int,
                 grid: dict[str, tuple] | None = None, log: Callable[[str], None] = lambda _: None):
        grid = MF_GRID if grid is None else grid
        best = None
        for values in itertools.product(*grid.values()):
            settings = MFSettings(**dict(zip(grid.keys(), values)))
            model, eval_auc, epoch = _train_mf(data, settings, seed)
            log(f"mf {dataclasses.asdict(settings)}: eval AUC {eval_auc:.4f} at epoch {epoch}")
            if best is None or eval_auc > best[1]:
                best = (model, eval_auc, settings, epoch)
        self.model, _, settings, epoch = best
        self.settings = {**dataclasses.asdict(settings), "best_epoch": epoch}

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        return _predict(self.model, ratings)

    def catalogue_scores(self, users: tf.Tensor) -> tf.Tensor:
        return self.model.catalogue_logits(users)


def _predict(model: MatrixFactorization, ratings: np.ndarray) -> np.ndarray:
    return model({"user": tf.constant(ratings[:, 0]), "item": tf.constant(ratings[:, 1])}).numpy()


def _train_mf(data: mkr_data.MKRData, settings: MFSettings,
              seed: int) -> tuple[MatrixFactorization, float, int]:
    """The MF of `settings` at its best eval-AUC epoch: (model, eval AUC, epoch)."""
    keras.utils.set_random_seed(seed)
    model = MatrixFactorization(data.n_users, data.n_items, settings.dim, settings.l2_weight)
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    model({"user": tf.zeros([1], tf.int64), "item": tf.zeros([1], tf.int64)})
    optimizer.build(model.trainable_variables)

    def step(rows):
        labels = tf.cast(rows[:, 2], tf.float32)
        with tf.GradientTape() as tape:
            logits, l2 = model.logits_and_l2(rows[:, 0], rows[:, 1])
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
            loss += settings.l2_weight * l2
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return {"mf_loss": loss}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.int64)])
    def epoch(rows):
        return engine.epoch_loop(step, rows, tf.constant(settings.batch_size, tf.int64),
                                 ("mf_loss",))

    best_auc, best_epoch, best_weights = -1.0, 0, None
    for epoch_number in range(1, settings.max_epochs + 1):
        epoch(tf.constant(mkr_data.shuffled(data.train, (seed, epoch_number, 2))))
        eval_auc = metrics.auc(data.eval[:, 2], _predict(model, data.eval))
        if eval_auc > best_auc:
            best_auc, best_epoch, best_weights = eval_auc, epoch_number, model.get_weights()
        elif epoch_number - best_epoch >= settings.patience:
            break
    model.set_weights(best_weights)
    return model, best_auc, best_epoch
