"""Tests of LazyAdam."""

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import optimizers


class LazyAdamTest(tf.test.TestCase):

    def test_sparse_update_touches_only_looked_up_rows(self):
        table = keras.Variable(np.ones((6, 3), np.float32))
        optimizer = optimizers.LazyAdam(learning_rate=0.1)
        optimizer.build([table])
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, [1, 4, 1]) ** 2)
            gradient = tape.gradient(loss, table)
            self.assertIsInstance(gradient, tf.IndexedSlices)
            optimizer.apply([gradient], [table])
        values = table.numpy()
        self.assertAllEqual(values[[0, 2, 3, 5]], np.ones((4, 3)))
        self.assertAllLess(values[[1, 4]], 1.0)

    def test_matches_dense_adam_on_every_touched_step(self):
        # When every row is touched every step, lazy and dense Adam are the same algorithm;
        # repeated indices must be summed, as the dense gradient does.
        initial = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
        lazy_table, dense_table = keras.Variable(initial), keras.Variable(initial)
        lazy = optimizers.LazyAdam(learning_rate=0.05, epsilon=1e-8)
        dense = keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8)
        indices = tf.constant([0, 1, 2, 3, 2, 0])
        for _ in range(5):
            for table, optimizer in ((lazy_table, lazy), (dense_table, dense)):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.sin(tf.gather(table, indices)))
                gradient = tape.gradient(loss, table)
                if optimizer is dense:
                    gradient = tf.convert_to_tensor(gradient)
                optimizer.apply([gradient], [table])
        self.assertAllClose(lazy_table.numpy(), dense_table.numpy(), rtol=1e-5, atol=1e-6)

    def test_the_masked_update_of_small_tables_is_the_sparse_update(self):
        # What XLA-compiled steps run on tables of at most masked_rows_limit rows.
        initial = np.random.default_rng(2).normal(size=(7, 3)).astype(np.float32)
        sparse_table, masked_table = keras.Variable(initial), keras.Variable(initial)
        sparse = optimizers.LazyAdam(learning_rate=0.05, epsilon=1e-8)
        masked = optimizers.LazyAdam(learning_rate=0.05, epsilon=1e-8)
        masked.masked_rows_limit = 7

        def compiled_step(optimizer, table):
            @tf.function(jit_compile=True, autograph=False)
            def step(indices):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.sin(tf.gather(table, indices)))
                optimizer.apply([tape.gradient(loss, table)], [table])
            return step

        for optimizer, table in ((sparse, sparse_table), (masked, masked_table)):
            optimizer.build([table])
            step = compiled_step(optimizer, table)
            for indices in ([1, 4, 1], [0, 4, 6, 6], [2]):
                step(tf.constant(indices))
        self.assertAllClose(masked_table.numpy(), sparse_table.numpy(), rtol=1e-6, atol=1e-7)
        self.assertAllEqual(masked_table.numpy()[[3, 5]], initial[[3, 5]])
        for moment in range(2):
            self.assertAllClose(optimizers.moments(masked, masked_table)[moment].numpy(),
                                optimizers.moments(sparse, sparse_table)[moment].numpy(),
                                rtol=1e-6, atol=1e-7)
            self.assertAllEqual(optimizers.moments(masked, masked_table)[moment].numpy()[[3, 5]],
                                np.zeros((2, 3)))

    def test_dense_gradients_get_keras_adams_update_in_one_fused_op(self):
        initial = np.random.default_rng(1).normal(size=(3, 2)).astype(np.float32)
        fused_kernel, keras_kernel = keras.Variable(initial), keras.Variable(initial)
        fused = optimizers.LazyAdam(learning_rate=0.05, epsilon=1e-8)
        reference = keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8)
        for _ in range(5):
            for kernel, optimizer in ((fused_kernel, fused), (keras_kernel, reference)):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.sin(kernel * 3.0))
                optimizer.apply([tape.gradient(loss, kernel)], [kernel])
        self.assertAllClose(fused_kernel.numpy(), keras_kernel.numpy(), rtol=1e-5, atol=1e-6)
        self.assertNotAllClose(fused_kernel.numpy(), initial)

        graph = tf.function(lambda gradient: fused.apply([gradient], [fused_kernel])
                            ).get_concrete_function(tf.TensorSpec([3, 2])).graph
        self.assertIn("ResourceApplyAdam", {op.type for op in graph.get_operations()})

    def test_make_optimizer_rejects_unknown_name(self):
        with self.assertRaisesRegex(ValueError, "unknown optimizer"):
            optimizers.make_optimizer("sgd", 0.1)

    def test_config_round_trip(self):
        optimizer = optimizers.make_optimizer("lazy_adam", 0.003)
        restored = optimizers.LazyAdam.from_config(optimizer.get_config())
        self.assertAlmostEqual(float(restored.learning_rate), 0.003, places=7)
        self.assertEqual(restored.epsilon, 1e-8)


if __name__ == "__main__":
    tf.test.main()
