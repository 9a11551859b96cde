"""Tests of the training loop on small data made here."""

import dataclasses
import json
import pathlib
import warnings
from unittest import mock

import numpy as np
import tensorflow as tf

from mkr_tf import callbacks as mkr_callbacks
from mkr_tf import config as mkr_config
from mkr_tf import data
from mkr_tf import engine
from mkr_tf import errors
from mkr_tf import model as mkr_model
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import MKRConfig


def two_taste_dataset(seed=0, n_users=300, n_items=100, n_ratings_per_user=20):
    """Users and items fall in two groups; users rate items of their own group positive and
    of the other group negative. The KG says which group each item is in."""
    rng = np.random.default_rng(seed)
    user_group = rng.integers(2, size=n_users)
    item_group = np.arange(n_items) % 2
    users = np.repeat(np.arange(n_users), n_ratings_per_user)
    items = rng.integers(n_items, size=users.size)
    labels = (item_group[items] == user_group[users]).astype(int)
    kg = np.stack([np.arange(n_items), np.zeros(n_items, int), n_items + item_group], axis=1)
    return np.stack([users, items, labels], axis=1), kg


class InterruptAfterEpoch(trainer.TrainingCallback):
    """Ctrl-C as epoch `epoch` ends."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, record, model):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class ScrambleItems(trainer.TrainingCallback):
    """Overwrites the item table with noise after epoch `epoch`, so that eval AUC falls."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, record, model):
        if epoch == self.epoch:
            table = model.item_embedding.embeddings
            table.assign(np.random.default_rng(0).normal(0, 1, table.shape))


class TrainTest(tf.test.TestCase):

    def test_loss_falls_and_test_auc_beats_point_seven(self):
        ratings, kg = two_taste_dataset()
        dataset = data.build_dataset(ratings, kg, seed=1)
        config = MKRConfig(n_epochs=8, dim=8, batch_size=64, lr_rs=0.01, lr_kge=0.01,
                           kge_interval=1, seed=1)
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        logged = []
        run = trainer.train(config, dataset, run_dir, "two_taste", log=logged.append)
        results = run.results
        losses = [epoch["rs_loss"] for epoch in results["history"]]
        self.assertLess(losses[-1], losses[0])
        self.assertGreater(results["test_auc"], 0.7)
        self.assertLen(logged, 9)  # one line per epoch and a summary
        on_disk = json.loads((run_dir / runs.RESULTS_FILE).read_text())
        for key in ("dataset", "seed", "best_epoch", "test_auc", "test_acc", "last_test_auc",
                    "last_test_acc", "train_seconds", "config"):
            self.assertIn(key, on_disk)
        self.assertEqual(on_disk["config"]["batch_size"], 64)
        best = results["history"][results["best_epoch"] - 1]
        self.assertEqual(best["eval_auc"], max(e["eval_auc"] for e in results["history"]))
        self.assertEqual(results["test_auc"], best["test_auc"])
        self.assertTrue((run_dir / runs.BEST_WEIGHTS_FILE).is_file())
        self.assertGreater(results["train_seconds"], 0)
        # train returns the model with the best epoch's weights and the split it was scored on.
        self.assertEqual(trainer.evaluate_ctr(run.model, run.data.test)["auc"], results["test_auc"])
        self.assertEqual((run.run_dir, run.config), (run_dir, config))

    def test_paper_ablations_train(self):
        ratings, kg = two_taste_dataset()
        dataset = data.build_dataset(ratings, kg, seed=1)
        # Two units of products of small Glorot rows start flatter, so L = 2 needs more epochs.
        for variant in (dict(cross_unit="dcn"), dict(cross_unit="stitch"), dict(use_kge=False),
                        dict(L=2, n_epochs=8), dict(use_inner_product=False, H=2)):
            config = MKRConfig(**{**dict(n_epochs=4, dim=8, batch_size=64, lr_rs=0.01,
                                         lr_kge=0.01, kge_interval=1, seed=1), **variant})
            results = trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                                    log=lambda _: None).results
            losses = [epoch["rs_loss"] for epoch in results["history"]]
            self.assertLess(losses[-1], losses[0], variant)
            self.assertGreater(results["test_auc"], 0.6, variant)

    def test_kge_pass_follows_kge_interval_and_use_kge(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0)
        run_dir = self.create_tempdir().full_path
        config = MKRConfig(n_epochs=5, batch_size=64, kge_interval=2)
        history = trainer.train(config, dataset, run_dir, "t", log=lambda _: None).results["history"]
        self.assertEqual(["kge_loss" in epoch for epoch in history], [True, False, True, False, True])
        config = MKRConfig(n_epochs=2, batch_size=64, use_kge=False)
        history = trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                                log=lambda _: None).results["history"]
        self.assertFalse(any("kge_loss" in epoch for epoch in history))

    def test_nan_loss_names_epoch_step_and_task(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0)
        config = MKRConfig(n_epochs=3, batch_size=16, lr_rs=1e30)
        parent = pathlib.Path(self.create_tempdir().full_path)
        given = parent / "given"
        given.mkdir()
        for run_dir in (parent / "new", given):
            with self.assertRaisesRegex(errors.TrainingError,
                                        r"RS loss became NaN or Inf at epoch 1, step \d+"):
                trainer.train(config, dataset, run_dir, "t", log=lambda _: None)
        # Nothing to resume from, so nothing that looks like a run is left.
        self.assertEqual(sorted(path.name for path in parent.iterdir()), ["given"])
        self.assertEqual([path.name for path in given.iterdir()], [runs.LOCK_FILE])

    def test_early_stopping_keeps_the_best_weights(self):
        ratings, kg = two_taste_dataset()
        dataset = data.build_dataset(ratings, kg, seed=1)
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        config = MKRConfig(n_epochs=8, dim=8, batch_size=64, lr_rs=1e-4, lr_kge=1e-4, seed=1)
        logged = []
        results = trainer.train(config, dataset, run_dir, "t", log=logged.append, patience=2,
                                callbacks=[ScrambleItems(epoch=1)]).results
        self.assertTrue(results["stopped_early"])
        self.assertLen(results["history"], 3)
        self.assertEqual(results["best_epoch"], 1)
        self.assertNotEqual(results["test_auc"], results["last_test_auc"])
        self.assertTrue(any("early stop" in line and "since epoch 1" in line for line in logged))
        restored = mkr_model.build_model(config, dataset)
        restored.load_weights(run_dir / runs.BEST_WEIGHTS_FILE)
        self.assertEqual(trainer.evaluate_ctr(restored, dataset.test)["auc"], results["test_auc"])

    def test_best_weights_outlive_an_interruption_and_are_written_once(self):
        ratings, kg = two_taste_dataset()
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        config = MKRConfig(n_epochs=4, dim=8, batch_size=64, lr_rs=1e-4, lr_kge=1e-4, seed=1)
        save_weights = mkr_model.MKR.save_weights
        with mock.patch.object(mkr_model.MKR, "save_weights", autospec=True,
                               side_effect=save_weights) as saves:
            whole = trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                                  log=lambda _: None, callbacks=[ScrambleItems(epoch=2)])
        self.assertEqual(saves.call_count, 1)
        self.assertLessEqual(whole.results["best_epoch"], 2)

        run_dir = pathlib.Path(self.create_tempdir().full_path)
        with self.assertRaisesRegex(errors.Interrupted, "the checkpoint of epoch 2 is kept"):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                          callbacks=[ScrambleItems(epoch=2), InterruptAfterEpoch(3)],
                          checkpoint_every_seconds=0)
        self.assertFalse((run_dir / runs.BEST_WEIGHTS_FILE).exists())
        resumed = trainer.train(config, dataset, run_dir, "t", log=lambda _: None)
        self.assertEqual(resumed.results["test_auc"], whole.results["test_auc"])
        restored = mkr_model.build_model(config, dataset)
        restored.load_weights(run_dir / runs.BEST_WEIGHTS_FILE)
        for weight, expected in zip(restored.weights, whole.model.weights):
            self.assertAllEqual(weight, expected, msg=weight.path)

    def test_a_checkpoint_without_the_best_weights_is_refused(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0, log=lambda _: None)
        config = MKRConfig(n_epochs=3, batch_size=64)
        run_dir = self.create_tempdir().full_path
        # What the package's versions before trainer.BestWeights saved.
        def without_best_weights(model, progress, best):
            return tf.train.Checkpoint(model=model, rs_optimizer=model.rs_optimizer,
                                       kge_optimizer=model.kge_optimizer, progress=progress)

        with mock.patch.object(trainer, "_checkpoint", without_best_weights), \
                self.assertRaises(errors.Interrupted):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                          callbacks=[InterruptAfterEpoch(2)], checkpoint_every_seconds=0)
        with self.assertRaisesRegex(errors.TrainingError, r"ckpt-1: written by an earlier "
                                    r"mkr_tf, without the best weights; start the run afresh"):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None)

    def test_checkpoints_are_spaced_in_time_and_the_last_epoch_is_always_saved(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0, log=lambda _: None)
        config = MKRConfig(n_epochs=3, batch_size=64)
        for every, saved in ((0, ["ckpt-2", "ckpt-3"]), (3600, ["ckpt-3"])):
            with self.subTest(every=every):
                run_dir = pathlib.Path(self.create_tempdir().full_path)
                trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                              checkpoint_every_seconds=every)
                checkpoints = run_dir / runs.CHECKPOINT_DIR
                self.assertEqual(sorted(path.stem for path in checkpoints.glob("*.index")), saved)
        # An early stop ends the run: its epoch is saved too.
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        results = trainer.train(dataclasses.replace(config, n_epochs=8), dataset, run_dir, "t",
                                log=lambda _: None, callbacks=[ScrambleItems(epoch=2)],
                                patience=1, checkpoint_every_seconds=3600).results
        self.assertTrue(results["stopped_early"])
        self.assertEqual(tf.train.latest_checkpoint(str(run_dir / runs.CHECKPOINT_DIR)),
                         str(run_dir / runs.CHECKPOINT_DIR / f"ckpt-{results['last_epoch']}"))
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        with self.assertRaisesRegex(errors.Interrupted, "^interrupted; nothing was saved yet$"):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                          callbacks=[InterruptAfterEpoch(2)], checkpoint_every_seconds=3600)
        self.assertIsNone(tf.train.latest_checkpoint(str(run_dir / runs.CHECKPOINT_DIR)))
        with self.assertRaisesRegex(errors.ConfigError, "checkpoint_every_seconds must be"):
            trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                          checkpoint_every_seconds=-1)

    def test_nan_keeps_the_last_good_checkpoint(self):
        class PoisonAfterEpochTwo(trainer.TrainingCallback):
            def on_epoch_end(self, epoch, record, model):
                if epoch == 2:
                    model.user_tower.dense_layers[0].kernel.assign(
                        np.full(model.user_tower.dense_layers[0].kernel.shape, np.nan))

        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0)
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        config = MKRConfig(n_epochs=4, batch_size=64)
        with self.assertRaisesRegex(errors.TrainingError, "RS loss became NaN or Inf at epoch 3, step 1"):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                          callbacks=[PoisonAfterEpochTwo()], checkpoint_every_seconds=0)
        latest = tf.train.latest_checkpoint(str(run_dir / runs.CHECKPOINT_DIR))
        self.assertTrue(latest.endswith("ckpt-2"), latest)
        self.assertFalse((run_dir / runs.RESULTS_FILE).exists())

    def test_same_seed_same_results(self):
        ratings, kg = two_taste_dataset(n_users=60)
        dataset = data.build_dataset(ratings, kg, seed=0)
        config = MKRConfig(n_epochs=2, batch_size=32, seed=5)
        first = trainer.train(config, dataset, self.create_tempdir().full_path, "t", log=lambda _: None).results
        second = trainer.train(config, dataset, self.create_tempdir().full_path, "t", log=lambda _: None).results
        self.assertEqual([e["test_auc"] for e in first["history"]],
                         [e["test_auc"] for e in second["history"]])

    def test_each_graph_is_traced_once_per_run(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=0)
        for jit_compile in (False, True):
            with self.subTest(jit_compile=jit_compile):
                run_dir = self.create_tempdir().full_path
                runners = []
                # TensorBoard's step scalars and top-K run too: the graphs capture their state.
                callbacks = mkr_callbacks.training_callbacks(run_dir, summary_every_steps=2)
                config = MKRConfig(n_epochs=3, batch_size=64, kge_interval=1,
                                   jit_compile=jit_compile)
                make_runner = engine.make_runner
                with mock.patch.object(engine, "make_runner", side_effect=lambda *arguments: (
                        runners.append(make_runner(*arguments)) or runners[-1])):
                    run = trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                                        callbacks=callbacks)
                results = run.results
                (runner,) = runners
                for function in (*runner.epoch_functions, run.model.predict_batch):
                    self.assertEqual(function.experimental_get_tracing_count(), 1, function)
                self.assertGreater(results["trace_seconds"], 0)

    def test_compiled_epochs_match_the_plain_ones_and_resume_exactly(self):
        for kge_model in mkr_config.KGE_MODELS:
            with self.subTest(kge_model=kge_model):
                self._check_compiled_and_resumed(kge_model)
        # softmax_samples: a resumed step must draw the same items; history_neighbours reads
        # the KG tails in every RS step. Its many more rows updated a step drift further apart in
        # XLA's float order (0.11% on a KGE loss); that XLA draws the same items is checked in
        # test_model.
        with self.subTest(rs_loss="softmax+pointwise"):
            self._check_compiled_and_resumed("transe", loss_rtol=3e-3, rs_loss="softmax+pointwise",
                                             softmax_samples=8, rs_negatives=0,
                                             item_neighbours=2, history_neighbours=True)

    def _check_compiled_and_resumed(self, kge_model, loss_rtol=1e-3, **options):
        ratings, kg = two_taste_dataset(n_users=60)
        dataset = data.build_dataset(ratings, kg, seed=0, log=lambda _: None)
        # rs_negatives, kge_negatives and history_dropout: a resumed epoch must draw its fresh
        # negatives, corrupted tails and thinned histories as before too.
        # lr_schedule: a resumed run must go on along the same learning-rate curve.
        config = MKRConfig(n_epochs=3, batch_size=24, kge_interval=1, seed=2, rs_negatives=2,
                           kge_negatives=2, history_length=4, history_dropout=0.5,
                           kge_model=kge_model, tie_item_entity=kge_model == "transe",
                           lr_schedule="cosine")
        config = dataclasses.replace(config, **options)

        plain = trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                              log=lambda _: None)
        config = dataclasses.replace(config, jit_compile=True)
        whole = trainer.train(config, dataset, self.create_tempdir().full_path, "t",
                              log=lambda _: None)
        run_dir = self.create_tempdir().full_path
        with self.assertRaisesRegex(errors.Interrupted, "the checkpoint of epoch 1 is kept"):
            trainer.train(config, dataset, run_dir, "t", log=lambda _: None,
                          callbacks=[InterruptAfterEpoch(2)], checkpoint_every_seconds=0)
        resumed = trainer.train(config, dataset, run_dir, "t", log=lambda _: None)

        keys = ("rs_loss", "kge_loss", "test_auc")
        figures = {name: [[epoch[key] for key in keys] for epoch in run.results["history"]]
                   for name, run in (("plain", plain), ("whole", whole), ("resumed", resumed))}
        self.assertEqual(figures["resumed"], figures["whole"])
        # XLA sums floats in another order; a draw that differed would move the losses by 0.1-6%.
        compiled, uncompiled = np.array(figures["whole"]), np.array(figures["plain"])
        self.assertAllClose(compiled[:, :2], uncompiled[:, :2], rtol=loss_rtol)
        # An AUC near 0.5 on this small test split flips with a near tie: a pair or two.
        self.assertAllClose(compiled[:, 2], uncompiled[:, 2], atol=2e-3)
        for weight, expected in zip(resumed.model.weights, whole.model.weights):
            self.assertAllEqual(weight, expected, msg=weight.path)


class TrainingOptionsTest(tf.test.TestCase):
    """Options beyond the paper: each changes training when on, and is a function of the seed."""

    def _train(self, **options):
        ratings, kg = two_taste_dataset(n_users=80)
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        config = MKRConfig(**{**dict(n_epochs=2, batch_size=64, lr_rs=0.01, kge_interval=1,
                                     seed=1), **options})
        return trainer.train(config, dataset, self.create_tempdir().full_path, "two_taste",
                             log=lambda _: None).results

    def test_each_option_changes_training_and_draws_are_seeded(self):
        paper = self._train()
        for options in ({"rs_negatives": 2}, {"init_scale": 0.1}, {"use_biases": True},
                        {"residual": True}, {"tie_item_entity": True}, {"rs_loss": "softmax"},
                        {"kge_negatives": 2}, {"history_length": 8}, {"item_neighbours": 2},
                        {"kge_model": "transe", "kge_negatives": 2},
                        {"lr_schedule": "cosine"}):
            with self.subTest(**options):
                self.assertNotEqual(self._train(**options)["history"][-1]["rs_loss"],
                                    paper["history"][-1]["rs_loss"])
        with_history = self._train(history_length=8)
        for options in ({"history_dropout": 0.5}, {"use_user_embedding": False}):
            with self.subTest(**options):
                self.assertNotEqual(
                    self._train(history_length=8, **options)["history"][-1]["rs_loss"],
                    with_history["history"][-1]["rs_loss"])
        # The options that draw at random (negatives, histories, neighbours) draw the same for
        # one seed.
        drawing = {"rs_negatives": 2, "kge_negatives": 2, "history_length": 3,
                   "history_dropout": 0.5, "item_neighbours": 1, "kge_model": "transe"}
        first, again = self._train(**drawing), self._train(**drawing)
        self.assertEqual(first["history"], [{**r, "seconds": a["seconds"]} for r, a in
                                            zip(again["history"], first["history"])])

    def test_softmax_losses_ignore_the_negative_rows(self):
        ratings, kg = two_taste_dataset(n_users=80)
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        fewer_negatives = dataset.train[(dataset.train[:, 2] == 1) | (dataset.train[:, 0] % 2 == 0)]
        for rs_loss in ("softmax", "softmax+pointwise"):
            config = MKRConfig(n_epochs=2, batch_size=64, lr_rs=0.01, kge_interval=1, seed=1,
                               rs_loss=rs_loss)
            runs = [trainer.train(config, dataclasses.replace(dataset, train=train),
                                  self.create_tempdir().full_path, "two_taste",
                                  log=lambda _: None).results
                    for train in (dataset.train, fewer_negatives)]
            for key in ("rs_loss", "eval_auc"):
                self.assertEqual(runs[0]["history"][-1][key], runs[1]["history"][-1][key],
                                 msg=rs_loss)
            with self.assertRaisesRegex(ValueError, "rs_negatives has no effect"):
                MKRConfig(rs_loss=rs_loss, rs_negatives=2)

    def test_more_softmax_samples_than_items_are_refused_before_the_run_folder_is_written(self):
        ratings, kg = two_taste_dataset(n_users=40)
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        run_dir = pathlib.Path(self.create_tempdir().full_path) / "run"
        config = MKRConfig(rs_loss="softmax", softmax_samples=dataset.n_items)
        with self.assertRaisesRegex(errors.ConfigError, rf"^softmax_samples \({dataset.n_items}\) "
                                    rf"must be below the catalogue's {dataset.n_items} items"):
            trainer.train(config, dataset, run_dir, "two_taste", log=lambda _: None)
        self.assertFalse(run_dir.exists())

    def test_select_on_auc_plus_ndcg_keeps_the_epoch_of_the_best_sum(self):
        results = self._train(select_on="auc+ndcg@10", n_epochs=3)
        sums = [r["eval_auc"] + r["eval_ndcg@10"] for r in results["history"]]
        self.assertEqual(results["best_epoch"], int(np.argmax(sums)) + 1)
        best = results["history"][results["best_epoch"] - 1]
        self.assertEqual(results["eval_ndcg@10"], best["eval_ndcg@10"])
        self.assertEqual(results["test_auc"], best["test_auc"])
        self.assertNotIn("eval_ndcg@10", self._train()["history"][0])

    def test_cosine_schedule_spans_each_tasks_steps_of_the_run(self):
        ratings, kg = two_taste_dataset(n_users=80)
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        positives = int((dataset.train[:, 2] == 1).sum())
        # The RS rows of an epoch: every row, the positives alone (softmax), or each positive
        # with 2 fresh negatives.
        for options, rs_rows in (({}, len(dataset.train)),
                                 ({"rs_loss": "softmax"}, positives),
                                 ({"rs_negatives": 2}, 3 * positives)):
            with self.subTest(**options):
                config = MKRConfig(n_epochs=3, batch_size=64, lr_rs=0.01, lr_kge=0.004,
                                   kge_interval=2, lr_schedule="cosine", **options)
                rates = []

                class RecordRates(trainer.TrainingCallback):
                    def on_epoch_end(self, epoch, record, model):
                        rates.append((float(model.rs_optimizer.learning_rate),
                                      float(model.kge_optimizer.learning_rate)))

                model = trainer.train(config, dataset, self.create_tempdir().full_path,
                                      "two_taste", log=lambda _: None,
                                      callbacks=[RecordRates()]).model
                rs_steps, kge_steps = -(-rs_rows // 64), -(-len(dataset.kg) // 64)
                # KGE passes run on epochs 1 and 3 of 3.
                self.assertEqual(int(model.rs_optimizer.iterations), 3 * rs_steps)
                self.assertEqual(int(model.kge_optimizer.iterations), 2 * kge_steps)

                def half_cosine(done):
                    return 0.5 * (1 + np.cos(np.pi * done))

                # The rate a step uses is set from the steps before it: after epoch 1, the
                # last step used the rate of step rs_steps − 1.
                rs_run, kge_run = 3 * rs_steps, 2 * kge_steps
                self.assertAllClose(rates[0], (0.01 * half_cosine((rs_steps - 1) / rs_run),
                                               0.004 * half_cosine((kge_steps - 1) / kge_run)))
                self.assertAllClose(rates[-1], (0.01 * half_cosine(1 - 1 / rs_run),
                                                0.004 * half_cosine(1 - 1 / kge_run)))
        constant = trainer.train(MKRConfig(n_epochs=2, batch_size=64, lr_rs=0.01), dataset,
                                 self.create_tempdir().full_path, "two_taste",
                                 log=lambda _: None).model
        self.assertAllClose(float(constant.rs_optimizer.learning_rate), 0.01)

    def test_a_cosine_runs_weights_load_into_a_model_of_its_settings(self):
        ratings, kg = two_taste_dataset(n_users=60)
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        config = MKRConfig(n_epochs=1, batch_size=64, lr_schedule="cosine")
        run_dir = pathlib.Path(self.create_tempdir().full_path)
        trained = trainer.train(config, dataset, run_dir, "two_taste", log=lambda _: None)
        rebuilt = mkr_model.build_model(config, trained.data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rebuilt.load_weights(run_dir / runs.BEST_WEIGHTS_FILE)
        self.assertEqual([str(w.message) for w in caught if "Skipping" in str(w.message)], [])
        self.assertEqual(int(rebuilt.rs_optimizer.iterations),
                         int(trained.model.rs_optimizer.iterations))

    def test_init_scale_sets_the_rows_scale(self):
        ratings, kg = two_taste_dataset()
        dataset = data.build_dataset(ratings, kg, seed=1, log=lambda _: None)
        model = mkr_model.build_model(MKRConfig(init_scale=0.5, dim=16), dataset)
        self.assertAllClose(np.std(model.entity_embedding.embeddings.numpy()), 0.5, rtol=0.1)
        glorot = mkr_model.build_model(MKRConfig(dim=16), dataset)
        self.assertLess(np.std(glorot.entity_embedding.embeddings.numpy()), 0.2)


if __name__ == "__main__":
    tf.test.main()
