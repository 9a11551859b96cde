"""The evaluation protocol every recommender is measured by, MKR and the baselines alike.

For one split of the data (`MKRData`, after `for_protocol`), `Evaluator(data)(recommender)` gives

    eval       {"auc", "acc"}: CTR on the eval split (what model selection may look at)
    test       {"auc", "acc"}, the top-K metrics of `metrics.ranking_metrics` over the whole
               catalogue and `metrics.beyond_accuracy`, all on the test split
    cold_test  with cold items (`--cold_items`): the same on the test rows of cold items, ranking
               the cold items alone

A recommender is an MKR model, or any object with `predict(ratings) -> probabilities` of the
(user, item) columns and `catalogue_scores(users) -> [len(users), n_items]` scores.
"""

from typing import Any, Sequence

import numpy as np

from mkr_tf import data as mkr_data
from mkr_tf import engine
from mkr_tf import metrics
from mkr_tf import trainer

SUMMARY_K = 10


def _ctr(rows: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    labels = rows[:, 2]
    return {"auc": metrics.auc(labels, probabilities),
            "acc": metrics.accuracy(labels, probabilities)}


class Evaluator:
    """Measures recommenders on one data split; the top-K index is built once."""

    def __init__(self, data: mkr_data.MKRData, ks: Sequence[int] = metrics.TOPK_CUTOFFS):
        self.data = data
        self.topk = metrics.TopKEvaluator(data.train, data.test, data.n_items, ks)
        self.cold_topk = None
        if len(data.cold_items):
            self.cold_topk = metrics.TopKEvaluator(data.train, data.test, data.n_items, ks,
                                                   candidates=data.cold_items)

    @property
    def ks(self) -> tuple[int, ...]:
        return self.topk.ks

    def __call__(self, recommender) -> dict[str, Any]:
        if hasattr(recommender, "item_and_head_vectors"):
            predict, ranked = (lambda rows: engine.predict(recommender, rows)), recommender
        else:
            predict, ranked = recommender.predict, recommender.catalogue_scores
        test_scores = predict(self.data.test)
        figures = {"eval": _ctr(self.data.eval, predict(self.data.eval)),
                   "test": _ctr(self.data.test, test_scores)}
        accuracy, beyond = self.topk.evaluate(ranked)
        figures["test"].update(accuracy)
        figures["test"].update(beyond)
        if self.cold_topk is not None:
            cold = np.isin(self.data.test[:, 1], self.data.cold_items)
            figures["cold_test"] = _ctr(self.data.test[cold], test_scores[cold])
            accuracy, beyond = self.cold_topk.evaluate(ranked)
            figures["cold_test"].update(accuracy)
            figures["cold_test"].update(beyond)
        return figures


class ProtocolCallback(trainer.TrainingCallback):
    """Adds the best weights' `Evaluator` figures to the results, as `protocol`."""

    def __init__(self, ks: Sequence[int] = metrics.TOPK_CUTOFFS):
        self.ks = ks
        self._evaluator = None

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._evaluator = Evaluator(data, self.ks)

    def on_train_end(self, results: dict[str, Any], model) -> None:
        results["protocol"] = self._evaluator(model)


_SUMMARY_COLUMNS = (("eval AUC", "eval", "auc"), ("test AUC", "test", "auc"),
                    ("test ACC", "test", "acc"), (f"R@{SUMMARY_K}", "test", f"recall@{SUMMARY_K}"),
                    (f"NDCG@{SUMMARY_K}", "test", f"ndcg@{SUMMARY_K}"),
                    (f"HR@{SUMMARY_K}", "test", f"hit_rate@{SUMMARY_K}"),
                    (f"distinct@{SUMMARY_K}", "test", f"distinct@{SUMMARY_K}"),
                    (f"cov@{SUMMARY_K}", "test", f"coverage@{SUMMARY_K}"),
                    (f"pop%@{SUMMARY_K}", "test", f"popularity_percentile@{SUMMARY_K}"))
_COLD_COLUMNS = (("cold AUC", "cold_test", "auc"),
                 (f"cold NDCG@{SUMMARY_K}", "cold_test", f"ndcg@{SUMMARY_K}"),
                 (f"cold R@{SUMMARY_K}", "cold_test", f"recall@{SUMMARY_K}"))
_TOPK_HEADERS = {"precision": "Precision", "recall": "Recall", "ndcg": "NDCG",
                 "hit_rate": "HitRate", "coverage": "Coverage"}


def _cell(key: str, value: float) -> str:
    return f"{value:,.0f}" if key.startswith("distinct") else f"{value:.4f}"


def format_comparison(figures: dict[str, dict[str, Any]], ks: Sequence[int], title: str) -> str:
    """One summary row per model, then each model's top-K table on the test split."""
    columns = list(_SUMMARY_COLUMNS)
    if any("cold_test" in model for model in figures.values()):
        columns += _COLD_COLUMNS
    width = max(len(name) for name in figures) + 2
    lines = [title, "", "model".ljust(width) + "".join(f"{c[0]:>13}" for c in columns)]
    for name, model in figures.items():
        lines.append(name.ljust(width) + "".join(
            f"{_cell(key, model[part][key]):>13}" if key in model.get(part, {}) else f"{'—':>13}"
            for _, part, key in columns))
    if any("cold_test" in model for model in figures.values()):
        lines.append("(cold: test rows of the cold items only, ranking the cold items alone; "
                     "a model with no training row of an item scores it at chance)")
    for name, model in figures.items() if ks else ():
        lines += ["", f"{name}: top-K on test",
                  f"{'K':>5}" + "".join(f"{header:>11}" for header in _TOPK_HEADERS.values())]
        lines += [f"{k:>5}" + "".join(f"{model['test'][f'{metric}@{k}']:>11.4f}"
                                      for metric in _TOPK_HEADERS)
                  for k in ks]
    return "\n".join(lines)
