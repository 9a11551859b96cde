"""Tests of the TensorBoard, top-K and progress callbacks, reading the event files back."""

import io
import json
import os
import pathlib
import time
import types
from unittest import mock

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from mkr_tf import callbacks as mkr_callbacks
from mkr_tf import data
from mkr_tf import engine
from mkr_tf import errors
from mkr_tf import metrics
from mkr_tf import model as mkr_model
from mkr_tf import progress
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import MKRConfig
from tests.test_trainer import InterruptAfterEpoch, ScrambleItems, two_taste_dataset

SUMMARY_EVERY_STEPS = 4
_MAKE_RUNNER = engine.make_runner


def read_scalars(logdir):
    """{tag: [(step, value)]} of every scalar in `logdir`, and the accumulator."""
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()["tensors"]:
        if not tag.startswith("_hparams_/"):
            scalars[tag] = [(event.step, float(tf.make_ndarray(event.tensor_proto)))
                            for event in accumulator.Tensors(tag)]
    return scalars, accumulator


class TTYStringIO(io.StringIO):
    def isatty(self):
        return True


class TrainingSummariesTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ratings, kg = two_taste_dataset(n_users=80)
        cls.dataset = data.build_dataset(ratings, kg, seed=0)
        cls.run_dir = pathlib.Path(tf.compat.v1.test.get_temp_dir()) / "summaries_run"
        # Two epochs, then a resume to three: the step axis must go on, not restart.
        for n_epochs in (2, 3):
            config = MKRConfig(n_epochs=n_epochs, dim=8, batch_size=32, lr_rs=0.01,
                               lr_kge=0.01, kge_interval=1, seed=1)
            callbacks = mkr_callbacks.training_callbacks(
                cls.run_dir, topk_every=1, summary_every_steps=SUMMARY_EVERY_STEPS)
            # The runner records which step summaries the epoch graphs were built with.
            with mock.patch.object(engine, "make_runner", side_effect=cls._record_runner):
                run = trainer.train(config, cls.dataset, cls.run_dir, "two_taste",
                                    log=lambda _: None, callbacks=callbacks)
            cls.results = run.results
        cls.scalars, cls.accumulator = read_scalars(cls.run_dir / mkr_callbacks.LOGS_SUBDIR)

    def test_writes_every_tag_with_finite_values(self):
        expected = {f"step/{name}" for name in (
            "rs_loss", "rs_base_loss", "rs_l2_loss", "rs_examples_per_second",
            "kge_loss", "kge_score", "kge_rmse", "kge_examples_per_second")}
        expected |= {f"epoch/{name}" for name in (
            "rs_loss", "rs_base_loss", "rs_l2_loss", "kge_loss", "kge_score", "kge_rmse",
            "examples_per_second", "seconds", "topk_seconds")}
        expected |= {f"{metric}/{split}" for metric in ("auc", "acc") for split in trainer.SPLITS}
        expected |= {f"topk_test/{metric}@{k}" for metric in ("precision", "recall", "ndcg",
                                                             "hit_rate") for k in (1, 20, 100)}
        expected |= {"learning_rate/rs", "learning_rate/kge", "final/test_auc",
                     "final/test_recall@20"}
        self.assertEmpty(expected - set(self.scalars))
        for tag, points in self.scalars.items():
            self.assertTrue(np.isfinite([value for _, value in points]).all(), tag)

    def test_values_move_and_steps_advance(self):
        for tag in ("step/rs_loss", "step/kge_loss", "epoch/rs_loss", "auc/train",
                    "topk_test/ndcg@10"):
            values = [value for _, value in self.scalars[tag]]
            self.assertGreater(np.ptp(values), 0, tag)
        self.assertLess(self.scalars["epoch/rs_loss"][-1][1], self.scalars["epoch/rs_loss"][0][1])
        self.assertEqual([step for step, _ in self.scalars["auc/eval"]], [1, 2, 3])
        # Step scalars land every N steps of either task, and go on across the resume.
        steps = sorted(step for tag in ("step/rs_loss", "step/kge_loss")
                       for step, _ in self.scalars[tag])
        self.assertAllEqual(np.diff(steps), np.full(len(steps) - 1, SUMMARY_EVERY_STEPS))
        n_steps = 3 * (-(-len(self.dataset.train) // 32) + -(-len(self.dataset.kg) // 32))
        self.assertEqual(steps[-1], n_steps - n_steps % SUMMARY_EVERY_STEPS)

    def test_hparams_record_configuration_and_final_metrics(self):
        content = self.accumulator.SummaryMetadata(
            hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
        session = hparams_metadata.parse_session_start_info_plugin_data(content)
        self.assertEqual(session.hparams["dataset"].string_value, "two_taste")
        self.assertEqual(session.hparams["lr_rs"].number_value, 0.01)
        self.assertEqual(session.hparams["batch_size"].number_value, 32)
        self.assertAllClose(self.scalars["final/test_auc"][-1][1], self.results["test_auc"])

    def test_top_k_reaches_history_and_results(self):
        on_disk = json.loads((self.run_dir / runs.RESULTS_FILE).read_text())
        self.assertIn("test_recall@20", on_disk["history"][-1])
        self.assertSetEqual(set(on_disk["test_topk"]),
                            {f"{m}@{k}" for m in ("precision", "recall", "ndcg", "hit_rate")
                             for k in (1, 2, 5, 10, 20, 50, 100)})

    def test_final_top_k_is_the_best_weights(self):
        on_disk = json.loads((self.run_dir / runs.RESULTS_FILE).read_text())
        best = mkr_model.build_model(MKRConfig(**on_disk["config"]), self.dataset)
        best.load_weights(self.run_dir / runs.BEST_WEIGHTS_FILE)
        evaluator = metrics.TopKEvaluator(self.dataset.train, self.dataset.test,
                                          self.dataset.n_items)
        self.assertEqual(on_disk["test_topk"], evaluator(best))

    def test_by_default_top_k_runs_once_for_the_best_weights(self):
        (topk, _), record = mkr_callbacks.training_callbacks(self.run_dir), {}
        topk.on_train_begin(None, None, self.dataset, self.run_dir)
        best = mkr_model.build_model(MKRConfig(dim=8, seed=1), self.dataset)
        with mock.patch.object(topk, "_evaluator", wraps=topk._evaluator) as evaluator:
            topk.on_epoch_end(1, record, best)
            self.assertEqual(record, {})
            results = {"history": [{"epoch": 1}], "best_epoch": 1}
            topk.on_train_end(results, best)
        evaluator.assert_called_once_with(best)
        self.assertIn("ndcg@10", results["test_topk"])

    @classmethod
    def _record_runner(cls, *arguments):
        cls.runner = _MAKE_RUNNER(*arguments)
        cls.step_summaries = arguments[-1]
        return cls.runner

    def test_no_summary_state_is_installed_globally(self):
        # The writer, step and condition reach the epoch loop as arguments, not through
        # tf.summary's default state, which stays as it was before training.
        self.assertIsInstance(self.step_summaries, engine.StepSummaries)
        self.assertIsNone(tf.summary.experimental.get_step())
        self.assertFalse(bool(tf.summary.should_record_summaries()))
        # The epoch graph holds the closed writer; it must no longer write to it.
        step = int(self.step_summaries.step.numpy())
        losses = self.runner.rec_epoch(self.dataset.train, 32)
        self.assertTrue(np.isfinite(losses["rs_loss"]))
        self.assertEqual(int(self.step_summaries.step.numpy()), step + int(losses["steps"]))
        self.assertFalse(bool(self.step_summaries.should_write()))


class FakeOptimizer:
    def __init__(self):
        self.iterations = tf.Variable(0, dtype=tf.int64)


class ProgressTest(tf.test.TestCase):
    """100 train rows and 50 triples in batches of 25: 4 RS steps, plus 2 KGE steps on epoch 1."""

    def setUp(self):
        super().setUp()
        self.model = types.SimpleNamespace(rs_optimizer=FakeOptimizer(),
                                           kge_optimizer=FakeOptimizer())
        self.config = MKRConfig(n_epochs=2, batch_size=25, kge_interval=2)
        self.dataset = types.SimpleNamespace(train=np.zeros([100, 3], np.int64),
                                             kg=np.zeros([50, 3], np.int64))

    def _step(self, rs=0, kge=0):
        self.model.rs_optimizer.iterations.assign_add(rs)
        self.model.kge_optimizer.iterations.assign_add(kge)

    def _drive(self, stream, quiet=False, refresh_seconds=60.0):
        callback = progress.ProgressCallback(quiet=quiet, stream=stream,
                                             refresh_seconds=refresh_seconds)
        callback.on_train_begin(self.model, self.config, self.dataset, None)
        for epoch in (1, 2):
            self._step(rs=2)
            callback.refresh()  # what the poller thread does while the epoch's graph runs
            self._step(rs=2, kge=2 if epoch == 1 else 0)
            record = {"epoch": epoch, "rs_loss": 0.5, "eval_auc": 0.75, "seconds": 0.5 * epoch,
                      "topk_seconds": 0.25}
            callback.on_epoch_end(epoch, record, self.model)
            callback.log(f"epoch line {epoch}")
        callback.on_train_end({}, self.model)
        callback.log("summary line")
        return stream.getvalue()

    def test_terminal_gets_a_step_bar_below_the_log_lines(self):
        with mock.patch.dict(os.environ, {"COLUMNS": "200"}):
            output = self._drive(TTYStringIO())
        self.assertIn("\r", output)
        self.assertIn("epoch 1/2  [>...................]  step 0/6 (building the graph)", output)
        # Epoch 1 has the KGE pass: 2 of its 6 steps done; epoch 2 has 2 of 4.
        self.assertIn("epoch 1/2  [======>.............]  step 2/6", output)
        self.assertIn("epoch 2/2  [==========>.........]  step 2/4", output)
        # s/epoch is the epoch lines' time, top-K included: 0.5 + 0.25 after epoch 1, and then
        # epoch 2's 1.0 + 0.25, epoch 1 being the one that builds the graphs.
        self.assertRegex(output, r"step 2/4  0\.8s/epoch  ETA 0:0\d  rs_loss 0\.5000")
        self.assertIn("eval_auc 0.7500", output)
        final_lines = output.split("\n")[-3:]
        self.assertStartsWith(final_lines[0],
                              "\r\x1b[Kepoch 2/2  [====================]  1.2s/epoch  done in 0:02")
        self.assertEqual(final_lines[1:], ["summary line", ""])

    def test_a_thread_redraws_the_bar_while_an_epoch_runs(self):
        stream = TTYStringIO()
        callback = progress.ProgressCallback(stream=stream, refresh_seconds=0.01)
        callback.on_train_begin(self.model, self.config, self.dataset, None)
        try:
            self._step(rs=3)
            deadline = time.monotonic() + 30
            while "step 3/6" not in stream.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            callback.on_train_abort()
        self.assertIn("step 3/6", stream.getvalue())

    def test_the_bar_fits_the_terminal(self):
        with mock.patch.dict(os.environ, {"COLUMNS": "60"}):
            output = self._drive(TTYStringIO())
        bars = [chunk.split("\n")[0] for chunk in output.split("\r\x1b[K")]
        self.assertLess(max(len(bar) for bar in bars), 60)
        self.assertNotIn("rs_loss", output)

    def test_pipes_and_quiet_get_plain_lines(self):
        expected = "epoch line 1\nepoch line 2\nsummary line\n"
        self.assertEqual(self._drive(io.StringIO()), expected)
        self.assertEqual(self._drive(TTYStringIO(), quiet=True), expected)



class ExportCallbackTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        ratings, kg = two_taste_dataset(n_users=40)
        self.dataset = data.build_dataset(ratings, kg, seed=0, log=lambda _: None)
        self.config = MKRConfig(n_epochs=3, batch_size=64, seed=1)
        self.root = pathlib.Path(self.create_tempdir().full_path)
        self.exporter = mkr_callbacks.ExportCallback(self.root / "exported", log=lambda _: None)

    def test_the_export_prepared_while_training_serves_the_best_weights(self):
        # Prepared after epoch 1; epoch 3 is worse than the best, whose weights must be served.
        run = trainer.train(self.config, self.dataset, self.root / "run", "two_taste",
                            log=lambda _: None, callbacks=[ScrambleItems(epoch=2), self.exporter])
        self.assertLess(run.results["best_epoch"], 3)
        saved = tf.saved_model.load(str(self.exporter.export(run)))
        test = self.dataset.test
        served = saved.signatures["serving_default"](
            user_id=tf.constant(test[:, 0]), item_id=tf.constant(test[:, 1]))["probability"]
        self.assertAllClose(served, engine.predict(run.model, test), rtol=0, atol=1e-6)
        item_vectors, _ = run.model.item_and_head_vectors(
            tf.range(self.dataset.n_items, dtype=tf.int64))
        self.assertAllClose(saved.item_vectors, item_vectors, rtol=0, atol=1e-6)

    def test_an_interrupted_training_leaves_nothing_to_export(self):
        with self.assertRaises(errors.Interrupted):
            trainer.train(self.config, self.dataset, self.root / "run", "two_taste",
                          log=lambda _: None, callbacks=[self.exporter, InterruptAfterEpoch(2)])
        self.assertFalse((self.root / "exported").exists())


if __name__ == "__main__":
    tf.test.main()
