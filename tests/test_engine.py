"""Tests of mkr_tf.engine: the in-graph epoch loop, its step summaries and the local runner."""

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

    def test_nonfinite_step_is_reported(self):
        model = _model(lr_rs=1e30)
        ratings = tf.tile(tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1),
                          [20, 1])
        losses = engine.LocalRunner(model).rec_epoch(ratings, 3)
        self.assertGreaterEqual(int(losses["first_nonfinite_step"]), 1)

    def test_jit_compiled_steps_give_the_plain_steps_figures(self):
        ratings = tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]], axis=1)
        plain = engine.LocalRunner(_model()).rec_epoch(ratings, 2)
        compiled = engine.LocalRunner(_model(), jit_compile=True).rec_epoch(ratings, 2)
        self.assertAllClose(compiled["rs_loss"], plain["rs_loss"], rtol=1e-5)
        self.assertEqual(int(compiled["steps"]), 2)

    def test_step_summaries_write_every_nth_step_to_the_writer_given(self):
        logdir = self.create_tempdir().full_path
        writer = tf.summary.create_file_writer(logdir)
        step = tf.Variable(0, dtype=tf.int64)
        summaries = engine.StepSummaries(writer, step, every=2)
        ratings = tf.tile(tf.stack([RS_BATCH["user"], RS_BATCH["item"], RS_BATCH["label"]],
                                   axis=1), [3, 1])
        runner = engine.LocalRunner(_model(), summaries=summaries)
        runner.rec_epoch(ratings, 2)  # 9 rows: 5 steps, of which steps 2 and 4 write
        self.assertEqual(int(step.numpy()), 5)
        self.assertIsNone(tf.summary.experimental.get_step())  # nothing installed globally
        summaries.close()
        runner.rec_epoch(ratings, 2)  # closed: still runs, writes nothing more
        writer.close()
        written = [event for path in tf.io.gfile.glob(f"{logdir}/*")
                   for event in tf.compat.v1.train.summary_iterator(path)
                   for value in event.summary.value if value.tag == "step/rs_loss"]
        self.assertEqual([event.step for event in written], [2, 4])

    def test_step_summaries_need_a_positive_interval(self):
        with self.assertRaisesRegex(ValueError, "every >= 1"):
            engine.StepSummaries(None, tf.Variable(0, dtype=tf.int64), every=0)


if __name__ == "__main__":
    tf.test.main()
