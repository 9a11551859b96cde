r"""Non-MKR recommenders to measure MKR against: popularity, ItemKNN and matrix factorisation.

  python -m mkr_tf.baselines --dataset=music --data_dir=../shared/datasets --seed=1 [--json]

Each is fitted on the training split of exactly the data a `mkr_tf.train` run of the same
dataset, seed, `--train_ratio` and `--cold_items` trains on, chooses its settings on the eval
split only, and is measured by `protocol.evaluate` as MKR is: CTR AUC/ACC of (user, item) pairs,
and top-K over the whole catalogue through the one `ranking.CatalogueRanker`.

Popularity and ItemKNN give a score, not a probability: their ACC thresholds a two-parameter
logistic fit of the label on log(1 + score) over the eval split (Platt scaling), which does not
change any ranking. MF is trained to give probabilities, as MKR is.
"""

import dataclasses
import itertools
import json
from typing import Any, Callable

from absl import flags
import keras
import numpy as np
import scipy.optimize
import scipy.sparse
import tensorflow as tf

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import metrics
from mkr_tf import model as mkr_model
from mkr_tf import protocol
from mkr_tf.config import BASELINES, MKRConfig

FLAGS = flags.FLAGS

NAMES = BASELINES


def _positive_matrix(train: np.ndarray, n_users: int, n_items: int) -> scipy.sparse.csr_matrix:
    """The binary user × item matrix of the training positives."""
    positives = train[train[:, 2] == 1]
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(positives), np.float32), (positives[:, 0], positives[:, 1])),
        shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


class _PlattScaled:
    """Probabilities from a ranking score: σ(a · log(1 + s) + b), a and b fitted on eval rows."""

    def _fit_calibration(self, eval_rows: np.ndarray) -> None:
        features = np.log1p(self.scores(eval_rows))
        labels = eval_rows[:, 2].astype(np.float64)

        def loss(params):
            logits = params[0] * features + params[1]
            return np.mean(np.logaddexp(0.0, logits) - labels * logits)

        self.calibration = scipy.optimize.minimize(loss, np.zeros(2), method="BFGS").x

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        logits = self.calibration[0] * np.log1p(self.scores(ratings)) + self.calibration[1]
        return 1.0 / (1.0 + np.exp(-logits))


class Popularity(_PlattScaled):
    """score(u, i) = the number of training positives of item i, the same for every user.

    Top-K ties go to the lower item index (`tf.math.top_k`), so the ranking is deterministic.
    """
    name = "popularity"

    def __init__(self, data: mkr_data.MKRData):
        self.counts = metrics.item_popularity(data.train, data.n_items).astype(np.float32)
        self.settings: dict[str, Any] = {}
        self._fit_calibration(data.eval)

    def scores(self, ratings: np.ndarray) -> np.ndarray:
        return self.counts[ratings[:, 1]]

    def catalogue_scores(self, users: tf.Tensor) -> tf.Tensor:
        return tf.broadcast_to(tf.constant(self.counts)[None, :],
                               [tf.shape(users)[0], len(self.counts)])


class ItemKNN(_PlattScaled):
    """Item-based nearest neighbours over the training positives (Sarwar et al., 2001).

    With X the binary user × item matrix of training positives and c_ij = (XᵀX)_ij the users
    who liked both items, the shrunk cosine similarity is

        s_ij = c_ij / (√c_ii · √c_jj + shrink),   s_ii = 0,

    and item i keeps only its `neighbours` most similar items N_k(i). Then

        score(u, i) = Σ_{j ∈ I_u ∩ N_k(i)} s_ij,

    I_u being u's training positives. An item with no training positive (a cold item) has no
    neighbours, so it scores 0 for everyone: ItemKNN ranks it at chance.
    """
    name = "itemknn"

    def __init__(self, data: mkr_data.MKRData, neighbours: int = 100, shrink: float = 10.0,
                 cooccurrence: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.settings = {"neighbours": int(neighbours), "shrink": float(shrink)}
        self.history = _positive_matrix(data.train, data.n_users, data.n_items)
        if cooccurrence is None:
            cooccurrence = _cooccurrence(self.history)
        self.similarity = self._neighbourhoods(self.history, cooccurrence, int(neighbours),
                                               float(shrink))
        self._fit_calibration(data.eval)

    @staticmethod
    def _neighbourhoods(history, cooccurrence, neighbours: int,
                        shrink: float) -> scipy.sparse.csr_matrix:
        """S [item i, neighbour j] = s_ij for j in N_k(i), as CSR."""
        n_items = history.shape[1]
        norms = np.sqrt(np.asarray(history.sum(axis=0)).ravel())
        rows, columns, counts = cooccurrence
        similarity = counts / (norms[rows] * norms[columns] + shrink)
        # Within each row, most similar first; a row's rank is its position past the row start.
        order = np.lexsort((columns, -similarity, rows))
        rows, columns, similarity = rows[order], columns[order], similarity[order]
        row_starts = np.searchsorted(rows, np.arange(n_items))
        kept = np.arange(len(rows)) - row_starts[rows] < neighbours
        return scipy.sparse.csr_matrix((similarity[kept], (rows[kept], columns[kept])),
                                       shape=(n_items, n_items), dtype=np.float32)

    def scores(self, ratings: np.ndarray) -> np.ndarray:
        pairs = self.history[ratings[:, 0]].multiply(self.similarity[ratings[:, 1]])
        return np.asarray(pairs.sum(axis=1)).ravel()

    def catalogue_scores(self, users: tf.Tensor) -> tf.Tensor:
        scores = self.history[users.numpy()] @ self.similarity.T
        return tf.constant(scores.toarray(), tf.float32)


def _cooccurrence(history: scipy.sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, c_ij) of every pair of distinct items liked by a common user."""
    cooccurrence = (history.T @ history).tocoo()
    off_diagonal = cooccurrence.row != cooccurrence.col
    return (cooccurrence.row[off_diagonal].astype(np.int64),
            cooccurrence.col[off_diagonal].astype(np.int64),
            cooccurrence.data[off_diagonal].astype(np.float64))


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
        return mkr_model.MKR.epoch_loop(step, rows, tf.constant(settings.batch_size, tf.int64),
                                        ("mf_loss",), step_summaries=False)

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


ITEMKNN_GRID = {"neighbours": (20, 100, 400), "shrink": (0.0, 10.0, 100.0)}


def best_itemknn(data: mkr_data.MKRData, grid: dict[str, tuple] | None = None,
                 log: Callable[[str], None] = lambda _: None) -> ItemKNN:
    """The ItemKNN of the grid with the best eval AUC."""
    grid = ITEMKNN_GRID if grid is None else grid
    cooccurrence = _cooccurrence(_positive_matrix(data.train, data.n_users, data.n_items))
    best = None
    for neighbours, shrink in itertools.product(grid["neighbours"], grid["shrink"]):
        knn = ItemKNN(data, neighbours, shrink, cooccurrence)
        eval_auc = metrics.auc(data.eval[:, 2], knn.scores(data.eval))
        log(f"itemknn {knn.settings}: eval AUC {eval_auc:.4f}")
        if best is None or eval_auc > best[1]:
            best = (knn, eval_auc)
    return best[0]


# Small grids for smoke tests (`reproduce --quick`), not for figures anyone reports.
QUICK_GRIDS = {"itemknn": {"neighbours": (50,), "shrink": (10.0,)},
               "mf": {"dim": (16,), "learning_rate": (1e-2,), "l2_weight": (0.1,),
                      "max_epochs": (3,)}}


def fit_all(data: mkr_data.MKRData, seed: int, names=NAMES,
            log: Callable[[str], None] = lambda _: None,
            grids: dict[str, dict[str, tuple]] | None = None) -> dict[str, Any]:
    """Each baseline of `names`, fitted on `data.train` with settings chosen on `data.eval`
    among `grids[name]` (default: ITEMKNN_GRID and MF_GRID)."""
    grids = grids or {}
    builders = {"popularity": lambda: Popularity(data),
                "itemknn": lambda: best_itemknn(data, grids.get("itemknn"), log=log),
                "mf": lambda: MF(data, seed, grids.get("mf"), log=log)}
    return {name: builders[name]() for name in names}


def evaluate_all(data: mkr_data.MKRData, seed: int, names=NAMES, ks=metrics.TOPK_CUTOFFS,
                 log: Callable[[str], None] = lambda _: None,
                 grids: dict[str, dict[str, tuple]] | None = None) -> dict[str, dict[str, Any]]:
    """`protocol.Evaluator` figures of every baseline, with the settings each chose."""
    evaluator = protocol.Evaluator(data, ks)
    return {name: {**evaluator(baseline), "settings": baseline.settings}
            for name, baseline in fit_all(data, seed, names, log, grids).items()}


def _define_flags() -> None:
    cli.define_data_flags()
    flags.DEFINE_integer("seed", 0, "The split's seed, as mkr_tf.train's --seed.")
    flags.DEFINE_float("train_ratio", 1.0, "As mkr_tf.train's --train_ratio.")
    flags.DEFINE_float("cold_items", 0.0, "As mkr_tf.train's --cold_items.")
    flags.DEFINE_list("baselines", list(NAMES), "Baselines to fit.")
    flags.DEFINE_list("ks", [str(k) for k in metrics.TOPK_CUTOFFS], "Cut-offs K of the top-K metrics.")
    flags.DEFINE_boolean("json", False, "Print the figures as one JSON object instead of tables.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors and each setting tried.")


def _main():
    unknown = sorted(set(FLAGS.baselines) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown baseline {unknown[0]!r}: choose from {', '.join(NAMES)}")
    # The config's own checks, so that the split is the one mkr_tf.train would make.
    MKRConfig(seed=FLAGS.seed, train_ratio=FLAGS.train_ratio, cold_items=FLAGS.cold_items)
    quiet = FLAGS.json
    data = cli.load_data_from_flags(FLAGS.seed, log=(lambda _: None) if quiet else print)
    data = data.for_protocol(FLAGS.cold_items, FLAGS.train_ratio, FLAGS.seed)
    ks = [int(k) for k in FLAGS.ks]
    figures = evaluate_all(data, FLAGS.seed, FLAGS.baselines, ks,
                           log=print if FLAGS.verbose and not quiet else (lambda _: None))
    report = {"dataset": FLAGS.dataset, "seed": FLAGS.seed, "train_ratio": FLAGS.train_ratio,
              "cold_items": FLAGS.cold_items, "statistics": data.statistics(),
              "baselines": figures}
    print(json.dumps(report, indent=2) if quiet else protocol.format_comparison(
        figures, ks, title=f"{FLAGS.dataset}, seed {FLAGS.seed}: baselines"))


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.baselines", _main, _define_flags)


if __name__ == "__main__":
    run()
