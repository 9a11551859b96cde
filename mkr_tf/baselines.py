r"""Non-MKR recommenders to measure MKR against: popularity, ItemKNN, matrix factorisation, and
two that read the KG: popularity with a KG prior (for cold items), and popularity plus the KG
links between an item and the user's own items (a personal, content-based use of the KG).

  python -m mkr_tf.baselines --dataset=music --data_dir=../shared/datasets --seed=1 [--json]

Each is fitted on the training split of exactly the data a `mkr_tf.train` run of the same
dataset, seed, `--train_ratio` and `--cold_items` trains on, chooses its settings on the eval
split only, and is measured by `protocol.evaluate` as MKR is: CTR AUC/ACC of (user, item) pairs,
and top-K over the whole catalogue through the one `ranking.CatalogueRanker`.

Popularity and ItemKNN give a score, not a probability: their ACC thresholds a two-parameter
logistic fit of the label on log(1 + score) over the eval split (Platt scaling), which does not
change any ranking. MF is trained to give probabilities, as MKR is.
"""

from __future__ import annotations  # tf.Tensor in annotations is not imported

import itertools
import json
from typing import Any, Callable

from absl import flags
import numpy as np
import scipy.optimize
import scipy.sparse

from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import errors
from mkr_tf import lazy
from mkr_tf import metrics
from mkr_tf import runs
from mkr_tf.config import BASELINES

# TensorFlow's, imported when a baseline is fitted, so that --help answers at once.
tf = lazy.load("tensorflow")
matrix_factorization = lazy.load("mkr_tf.matrix_factorization")
protocol = lazy.load("mkr_tf.protocol")

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
    """Probabilities from a ranking score: σ(a · log(1 + s) + b), a ≥ 0 and b fitted on eval rows."""

    def _fit_calibration(self, eval_rows: np.ndarray) -> None:
        features = np.log1p(self.scores(eval_rows))
        labels = eval_rows[:, 2].astype(np.float64)

        def loss(params):
            logits = params[0] * features + params[1]
            return np.mean(np.logaddexp(0.0, logits) - labels * logits)

        # a >= 0: the calibration may flatten the score's ranking but never reverse it.
        self.calibration = scipy.optimize.minimize(
            loss, np.zeros(2), method="L-BFGS-B", bounds=[(0.0, None), (None, None)]).x

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


class KGPopularity(Popularity):
    """Popularity with a knowledge-graph prior: what an unrated item's KG neighbours tell.

    With p_i the training positives of item i and A the 0/1 adjacency of the KG's entities
    (either direction, any relation; item i is entity i), item i reaches item j through each
    entity e with A_ie = A_ej = 1, j ≠ i. Its neighbours' popularity is the mean p_j over those
    paths (a neighbour met through two entities counts twice):

        n_i = Σ_j (AA)_ij p_j / Σ_j (AA)_ij,   j ≠ i,   and   score(u, i) = p_i + w · n_i,

    the same for every user, with the weight w chosen on the eval split. For w = 0 it is
    `Popularity`. An item with no training positive (a cold item) has p_i = 0, so it is ranked
    by its neighbours alone: the simplest use of the KG for cold items.
    """
    name = "kg_popularity"

    def __init__(self, data: mkr_data.MKRData, weight: float = 1.0):  # pylint: disable=super-init-not-called
        self.settings = {"weight": float(weight)}
        popularity = metrics.item_popularity(data.train, data.n_items).astype(np.float64)
        self.counts = (popularity + weight * kg_neighbour_popularity(data, popularity)
                       ).astype(np.float32)
        self._fit_calibration(data.eval)


class KGHistory(_PlattScaled):
    """Popularity plus the KG links between an item and the user's training positives.

    With p_i the training positives of item i, A the 0/1 adjacency of the KG's entities (either
    direction, any relation; item i is entity i) and d_e the degree of entity e, items i and j
    are linked through each entity they share, a shared entity of many items counting less
    (the resource-allocation index):

        s_ij = Σ_e A_ie A_ej / d_e,   s_ii = 0,
        score(u, i) = p_i / max_j p_j + w · Σ_{j ∈ I_u} s_ij,

    I_u being u's training positives and the weight w chosen on the eval split. On Book-Crossing
    it recommends the books sharing an author or publisher with the user's. A cold item has
    p_i = 0 and keeps its KG links to the user's items.
    """
    name = "kg_history"

    def __init__(self, data: mkr_data.MKRData, weight: float = 1.0,
                 similarity: scipy.sparse.csr_matrix | None = None):
        self.settings = {"weight": float(weight)}
        counts = metrics.item_popularity(data.train, data.n_items).astype(np.float32)
        self.popularity = counts / max(float(counts.max()), 1.0)
        self.history = _positive_matrix(data.train, data.n_users, data.n_items)
        self.similarity = (kg_item_similarity(data) if similarity is None else similarity) * weight
        self._fit_calibration(data.eval)

    def scores(self, ratings: np.ndarray) -> np.ndarray:
        links = self.history[ratings[:, 0]].multiply(self.similarity[ratings[:, 1]])
        return self.popularity[ratings[:, 1]] + np.asarray(links.sum(axis=1)).ravel()

    def catalogue_scores(self, users: tf.Tensor) -> tf.Tensor:
        links = (self.history[users.numpy()] @ self.similarity).toarray()
        return tf.constant(self.popularity[None, :] + links, tf.float32)


def _kg_adjacency(data: mkr_data.MKRData) -> scipy.sparse.csr_matrix:
    """The 0/1 entity × entity adjacency of the KG, either direction, any relation."""
    heads, tails = data.kg[:, 0], data.kg[:, 2]
    adjacency = scipy.sparse.csr_matrix(
        (np.ones(2 * len(heads)), (np.concatenate([heads, tails]), np.concatenate([tails, heads]))),
        shape=(data.n_entities, data.n_entities))
    adjacency.sum_duplicates()
    adjacency.data[:] = 1.0
    return adjacency


def kg_item_similarity(data: mkr_data.MKRData) -> scipy.sparse.csr_matrix:
    """s_ij of `KGHistory`, items × items."""
    adjacency = _kg_adjacency(data)
    degree = np.asarray(adjacency.sum(axis=0)).ravel()
    items = adjacency[:data.n_items]
    similarity = (items @ scipy.sparse.diags(1.0 / np.maximum(degree, 1.0)) @ items.T).tocsr()
    similarity.setdiag(0.0)
    similarity.eliminate_zeros()
    return similarity.astype(np.float32)


def kg_neighbour_popularity(data: mkr_data.MKRData, popularity: np.ndarray) -> np.ndarray:
    """n_i of `KGPopularity` for every item (0 for an item with no KG neighbour)."""
    adjacency = _kg_adjacency(data)
    # Items' rows: paths item → entity → item without forming the items × items matrix.
    reached = adjacency[:data.n_items] @ (adjacency[:, :data.n_items] @ np.stack(
        [popularity, np.ones_like(popularity)], axis=1))
    # Minus the paths back to the item itself, one per entity it touches.
    degree = np.asarray(adjacency[:data.n_items].sum(axis=1)).ravel()
    paths = reached[:, 1] - degree
    return np.divide(reached[:, 0] - degree * popularity, paths, out=np.zeros_like(popularity),
                     where=paths > 0)


KG_POPULARITY_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)


def best_kg_popularity(data: mkr_data.MKRData, weights: tuple[float, ...] | None = None,
                       log: Callable[[str], None] = lambda _: None) -> KGPopularity:
    """The KGPopularity of `weights` with the best eval AUC."""
    return _best_on_eval(data, (KGPopularity(data, weight) for weight in
                                (KG_POPULARITY_WEIGHTS if weights is None else weights)), log)


KG_HISTORY_WEIGHTS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def best_kg_history(data: mkr_data.MKRData, weights: tuple[float, ...] | None = None,
                    log: Callable[[str], None] = lambda _: None) -> KGHistory:
    """The KGHistory of `weights` with the best eval AUC."""
    similarity = kg_item_similarity(data)
    return _best_on_eval(data, (KGHistory(data, weight, similarity) for weight in
                                (KG_HISTORY_WEIGHTS if weights is None else weights)), log)


def _best_on_eval(data: mkr_data.MKRData, candidates, log: Callable[[str], None]):
    """The candidate model with the best eval AUC (the first of equals)."""
    best = None
    for model in candidates:
        eval_auc = metrics.auc(data.eval[:, 2], model.scores(data.eval))
        log(f"{model.name} {model.settings}: eval AUC {eval_auc:.4f}")
        if best is None or eval_auc > best[1]:
            best = (model, eval_auc)
    return best[0]


def _cooccurrence(history: scipy.sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, c_ij) of every pair of distinct items liked by a common user."""
    cooccurrence = (history.T @ history).tocoo()
    off_diagonal = cooccurrence.row != cooccurrence.col
    return (cooccurrence.row[off_diagonal].astype(np.int64),
            cooccurrence.col[off_diagonal].astype(np.int64),
            cooccurrence.data[off_diagonal].astype(np.float64))


ITEMKNN_GRID = {"neighbours": (20, 100, 400), "shrink": (0.0, 10.0, 100.0)}


def best_itemknn(data: mkr_data.MKRData, grid: dict[str, tuple] | None = None,
                 log: Callable[[str], None] = lambda _: None) -> ItemKNN:
    """The ItemKNN of the grid with the best eval AUC."""
    grid = ITEMKNN_GRID if grid is None else grid
    cooccurrence = _cooccurrence(_positive_matrix(data.train, data.n_users, data.n_items))
    return _best_on_eval(data, (ItemKNN(data, neighbours, shrink, cooccurrence) for
                                neighbours, shrink in itertools.product(grid["neighbours"],
                                                                        grid["shrink"])), log)


# Small grids for smoke tests (`reproduce --quick`), not for figures anyone reports.
QUICK_GRIDS = {"itemknn": {"neighbours": (50,), "shrink": (10.0,)},
               "mf": {"dim": (16,), "learning_rate": (1e-2,), "l2_weight": (0.1,),
                      "max_epochs": (3,)}}


def fit_all(data: mkr_data.MKRData, seed: int, names=NAMES,
            log: Callable[[str], None] = lambda _: None,
            grids: dict[str, dict[str, tuple]] | None = None) -> dict[str, Any]:
    """Each baseline of `names`, fitted on `data.train` with settings chosen on `data.eval`
    among `grids[name]` (default: ITEMKNN_GRID and matrix_factorization.MF_GRID)."""
    grids = grids or {}
    builders = {"popularity": lambda: Popularity(data),
                "itemknn": lambda: best_itemknn(data, grids.get("itemknn"), log=log),
                "kg_popularity": lambda: best_kg_popularity(
                    data, grids.get("kg_popularity", {}).get("weight"), log=log),
                "kg_history": lambda: best_kg_history(
                    data, grids.get("kg_history", {}).get("weight"), log=log),
                "mf": lambda: matrix_factorization.MF(data, seed, grids.get("mf"), log=log)}
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
    # The split's settings, spelled, explained and checked as mkr_tf.train's.
    cli.define_config_flags(runs.PROTOCOL_SETTINGS)
    flags.DEFINE_list("baselines", list(NAMES), "Baselines to fit.")
    flags.DEFINE_list("ks", [str(k) for k in metrics.TOPK_CUTOFFS], "Cut-offs K of the top-K metrics.")
    flags.DEFINE_boolean("json", False, "Print the figures as one JSON object instead of tables.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors and each setting tried.")


def _main():
    unknown = sorted(set(FLAGS.baselines) - set(NAMES))
    if unknown:
        raise errors.ConfigError(f"unknown baseline {unknown[0]!r}: choose from {', '.join(NAMES)}")
    # Checked by the config, and split as mkr_tf.train splits with the same flags.
    config = cli.config_from_flags(cli.dataset_name_from_flags())
    quiet = FLAGS.json
    data = runs.protocol_data(
        config, cli.load_data_from_flags(config.seed, log=(lambda _: None) if quiet else print))
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
