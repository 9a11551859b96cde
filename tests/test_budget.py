"""The memory and disk a run needs are known before the model is built, and refused when short."""

import pathlib
from unittest import mock

import numpy as np
import tensorflow as tf

from mkr_tf import budget
from mkr_tf import data
from mkr_tf import errors
from mkr_tf import model as mkr_model
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import MKRConfig
from tests.test_trainer import two_taste_dataset


def small_dataset():
    ratings, kg = two_taste_dataset(n_users=30, n_ratings_per_user=10)
    return data.build_dataset(ratings, kg, seed=0, log=lambda _: None)


class BudgetTest(tf.test.TestCase):

    def test_the_plan_counts_the_models_parameters(self):
        dataset = small_dataset()
        for options in (dict(dim=4), dict(dim=16, L=2, H=2), dict(dim=8, use_inner_product=False),
                        dict(dim=8, cross_unit="dcn"), dict(dim=8, cross_unit="stitch"),
                        dict(dim=8, history_length=2, use_user_embedding=False),
                        dict(dim=16, L=2, H=2, kge_model="transe")):
            config = MKRConfig(**options)
            model = mkr_model.build_model(config, dataset)
            actual = sum(int(np.prod(weight.shape)) for weight in model.weights)
            planned = budget.plan(config, dataset)
            self.assertBetween(planned.table_parameters + planned.layer_parameters,
                               actual, actual * 1.05 + 64, options)
            self.assertEqual(planned.table_parameters, sum(
                int(np.prod(layer.embeddings.shape)) for layer in (
                    model.user_embedding, model.item_embedding, model.entity_embedding,
                    model.relation_embedding) if layer is not None)
                + 2 * int(np.prod(model.user_history.shape) if model.history_length else 0))

    def test_a_huge_dim_is_refused_with_the_figure_before_any_table_is_built(self):
        dataset = small_dataset()
        # The case: --dim=30000 ended in an out-of-memory traceback.
        with mock.patch.object(budget, "available_memory_bytes", return_value=16 * 1024**3), \
                mock.patch.object(mkr_model, "build_model") as build_model:
            with self.assertRaisesRegex(
                    errors.ResourceError, r"^the model needs 80\.6 GB of memory \(weights "
                                          r"13\.4 GB, the optimizers. slots and the best epoch.s copy\), "
                                          r"more than "
                                          r"the 16\.0 GB available; lower --dim"):
                trainer.train(MKRConfig(dim=30000), dataset, self.create_tempdir().full_path,
                              "t", log=lambda _: None)
            build_model.assert_not_called()

    def test_a_run_is_refused_when_memory_is_short(self):
        run_dir = self.create_tempdir().full_path
        with mock.patch.object(budget, "available_memory_bytes", return_value=10_000):
            with self.assertRaisesRegex(errors.ResourceError, r"more than the 9\.8 KB available"):
                trainer.train(MKRConfig(n_epochs=1), small_dataset(), run_dir, "t",
                              log=lambda _: None)
        self.assertFalse(pathlib.Path(run_dir, runs.RESULTS_FILE).exists())

    def test_a_run_folder_on_a_nearly_full_disk_is_refused_before_training(self):
        run_dir = self.create_tempdir().full_path
        with mock.patch.object(budget, "free_disk_bytes", return_value=10_240):
            with self.assertRaisesRegex(
                    errors.ResourceError, rf"^{run_dir}: 10\.0 KB free, but the run folder needs "
                                          rf"about \d+\.\d KB"):
                trainer.train(MKRConfig(n_epochs=1), small_dataset(), run_dir, "t",
                              log=lambda _: None)
        self.assertFalse(pathlib.Path(run_dir, runs.CHECKPOINT_DIR).exists())

    def test_sizes_read_as_a_person_would_write_them(self):
        self.assertEqual([budget.human(n) for n in (0, 1023, 1024, 5 * 1024**2, 3 * 1024**3)],
                         ["0 bytes", "1,023 bytes", "1.0 KB", "5.0 MB", "3.0 GB"])


if __name__ == "__main__":
    tf.test.main()
