"""Tests of mkr_tf.engine: the in-graph epoch loop, its step summaries and the local runner."""

from unittest import mock

import numpy as np
import tensorflow as tf

from mkr_tf import engine
from tests.test_model import KG_BATCH, RS_BATCH, _model


class EngineTest(tf.test.TestCase):

    def test_epoch_functions_run_every_batch_in_graph(self):
        model = _model()
        ratings = tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1)
        losses = engine.LocalRunner(model).rec_epoch(ratings, 2)
        self.assertEqual(int(losses["steps"]), 2)
        self.assertEqual(int(losses["first_nonfinite_step"]), -1)
        triples = tf.stack([KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"]], axis=1)
        kg_losses = engine.LocalRunner(model).kg_epoch(triples, 2)
        self.assertEqual(int(kg_losses["steps"]), 2)
        self.assertAllInRange(kg_losses["kge_score"], 0.0, 1.0)

    def test_epoch_means_weight_steps_by_batch_size(self):
        model = _model(lr_rs=1e-12)  # the loss stays put, so the mean is checkable
        ratings = tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1)
        per_example = [float(model.rec_step({k: v[i:i + 1] for k, v in RS_BATCH.items()})["rs_base_loss"])
                       for i in range(3)]
        losses = engine.LocalRunner(model).rec_epoch(ratings, 2)
        self.assertAllClose(losses["rs_base_loss"], np.mean(per_example), rtol=1e-4)

    def test_histories_read_with_kg_tails_are_scored_in_smaller_chunks_alike(self):
        self.assertEqual(engine.eval_batch_size(_model(history_length=2)), engine.EVAL_BATCH_SIZE)
        model = _model(history_length=2, item_neighbours=2, history_neighbours=True)
        model.set_user_history(np.array([[0, 1, 1], [0, 2, 1], [3, 4, 1]]), seed=0)
        model.set_item_neighbours(np.array([[1, 0, 6], [2, 1, 7], [4, 2, 8]]), seed=0)
        ratings = np.array([[user, item, 1] for user in range(7) for item in range(5)])
        whole = engine.LocalRunner(model).predict(ratings)
        catalogue = 5 * 2 * 4  # items × tails × dim
        # Room for the catalogue and 3 rows' histories; then for 2 rows' places with their tails.
        for chunk_floats, rows in ((catalogue + 2 * 4 * 3, 3), (2 * 2 * 4 * 2, 2)):
            with self.subTest(chunk_floats=chunk_floats), mock.patch.object(
                    engine, "EVAL_CHUNK_FLOATS", chunk_floats):
                self.assertEqual(engine.eval_batch_size(model), rows)
                self.assertAllClose(engine.LocalRunner(model).predict(ratings), whole)

    def test_nonfinite_step_is_reported(self):
        model = _model(lr_rs=1e30)
        ratings = tf.tile(tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1),
                          [20, 1])
        losses = engine.LocalRunner(model).rec_epoch(ratings, 3)
        self.assertGreaterEqual(int(losses["first_nonfinite_step"]), 1)

    def test_compiled_epochs_give_the_plain_epochs_figures_and_weights(self):
        # 3 rows in batches of 2: the compiled epoch pads its last batch with a weight-0 row.
        ratings = tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1)
        triples = tf.stack([KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"]], axis=1)
        models = {}
        for name, jit_compile in (("plain", False), ("compiled", True)):
            model = _model()
            runner = engine.LocalRunner(model, jit_compile=jit_compile)
            runner.trace(3, 3, 2)
            losses = {**runner.rec_epoch(ratings, 2), **runner.kg_epoch(triples, 2)}
            models[name] = (model, losses)
        (plain, plain_losses), (compiled, compiled_losses) = models.values()
        for name in (*engine.RS_OUTPUTS, *engine.KG_OUTPUTS):
            self.assertAllClose(compiled_losses[name], plain_losses[name], rtol=1e-5, msg=name)
        self.assertEqual(int(compiled_losses["steps"]), 2)
        for weight, expected in zip(compiled.weights, plain.weights):
            self.assertAllClose(weight, expected, rtol=1e-5, atol=1e-7, msg=weight.path)

    def test_a_compiled_epoch_is_compiled_once_ahead_and_trains_nothing_then(self):
        model = _model()
        before = [weight.numpy() for weight in model.weights]
        runner = engine.LocalRunner(model, jit_compile=True)
        runner.trace(3, 3, 2)
        for weight, value in zip(model.weights, before):
            self.assertAllEqual(weight, value, msg=weight.path)
        ratings = tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1)
        runner.rec_epoch(ratings, 2)
        runner.rec_epoch(ratings, 2)
        self.assertEqual(runner.epoch_functions[0].experimental_get_tracing_count(), 1)

    def test_compiled_epochs_update_small_tables_masked_and_large_ones_sparse(self):
        def op_types(concrete_function):
            graph = concrete_function.graph.as_graph_def()
            return {node.op for node in graph.node} | {
                node.op for function in graph.library.function for node in function.node_def}

        for limit, sparse in ((engine.MASKED_ROWS_PER_BATCH_ROW, False), (0, True)):
            with self.subTest(rows_per_batch_row=limit):
                model = _model()
                runner = engine.LocalRunner(model, jit_compile=True)
                with mock.patch.object(engine, "MASKED_ROWS_PER_BATCH_ROW", limit):
                    runner.trace(3, 3, 2)
                # 9 rows at most, against 2 * 256: all masked, or with 0 rows per row all sparse.
                rs_epoch = runner.epoch_functions[0].run.get_concrete_function(
                    tf.TensorSpec([2, 2, 3], tf.int64), tf.TensorSpec([2, 2], tf.float32),
                    tf.TensorSpec([], tf.int32))
                self.assertEqual("Unique" in op_types(rs_epoch), sparse)
                self.assertEqual(runner.epoch_functions[0].experimental_get_tracing_count(), 1)
                # Only the compiled epochs' graphs: the model's optimizers are left as they were.
                self.assertEqual(model.rs_optimizer.masked_rows_limit, 0)

    def test_padded_batches_repeat_a_real_row_of_the_last_batch_with_weight_zero(self):
        rows = np.arange(15).reshape(5, 3)
        batches, weights = engine.padded_batches(rows, 2)
        self.assertEqual(batches.shape, (3, 2, 3))
        self.assertAllEqual(batches[2], [rows[4], rows[4]])
        self.assertAllEqual(weights, [[1, 1], [1, 1], [1, 0]])
        batches, weights = engine.padded_batches(rows[:4], 2)
        self.assertAllEqual(batches.reshape(-1, 3), rows[:4])
        self.assertAllEqual(weights, np.ones([2, 2]))

    def test_padding_rows_change_no_update(self):
        two_rows = {name: values[:2] for name, values in RS_BATCH.items()}
        padded = {name: tf.concat([values[:2], values[:1]], 0) for name, values in RS_BATCH.items()}
        padded["weight"] = tf.constant([1.0, 1.0, 0.0])
        # A padding row with a history and dropout draws its own dropout: were it to read the
        # history, it would touch items its twin dropped (at this seed, from the third step
        # on), and LazyAdam's moments would move them.
        positives = np.array([[0, item, 1] for item in range(5)] + [[3, 2, 1], [3, 0, 1]])
        for settings in ({}, {"history_length": 5, "history_dropout": 0.5, "seed": 3}):
            models = [_model(**settings), _model(**settings)]
            for model in models:
                if settings:
                    model.set_user_history(positives, seed=0)
            for step in range(4):
                losses = [models[0].rec_update(two_rows), models[1].rec_update(padded)]
                for name in engine.RS_OUTPUTS:
                    self.assertAllClose(losses[1][name], losses[0][name], rtol=1e-6,
                                        msg=f"{settings} step {step} {name}")
                for weight, expected in zip(models[1].weights, models[0].weights):
                    self.assertAllClose(weight, expected, rtol=1e-6, atol=1e-8,
                                        msg=f"{settings} step {step} {weight.path}")

    def test_step_summaries_write_every_nth_step_to_the_writer_given(self):
        ratings = tf.tile(tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]],
                                   axis=1), [3, 1])
        written = {}
        for jit_compile in (False, True):
            logdir = self.create_tempdir().full_path
            writer = tf.summary.create_file_writer(logdir)
            step = tf.Variable(0, dtype=tf.int64)
            summaries = engine.StepSummaries(writer, step, every=2)
            runner = engine.LocalRunner(_model(lr_rs=1e-12), jit_compile, summaries=summaries)
            runner.rec_epoch(ratings, 2)  # 9 rows: 5 steps, of which steps 2 and 4 write
            self.assertEqual(int(step.numpy()), 5)
            self.assertIsNone(tf.summary.experimental.get_step())  # nothing installed globally
            summaries.close()
            runner.rec_epoch(ratings, 2)  # closed: still runs, writes nothing more
            writer.close()
            written[jit_compile] = [
                (event.step, float(tf.make_ndarray(value.tensor)))
                for path in tf.io.gfile.glob(f"{logdir}/*")
                for event in tf.compat.v1.train.summary_iterator(path)
                for value in event.summary.value if value.tag == "step/rs_loss"]
            self.assertEqual([step for step, _ in written[jit_compile]], [2, 4])
        # The compiled loop's scalars, written after it, are the in-graph loop's.
        self.assertAllClose(written[True], written[False], rtol=1e-5)

    def test_step_summaries_need_a_positive_interval(self):
        with self.assertRaisesRegex(ValueError, "every >= 1"):
            engine.StepSummaries(None, tf.Variable(0, dtype=tf.int64), every=0)


if __name__ == "__main__":
    tf.test.main()
