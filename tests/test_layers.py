"""Tests of the cross&compress unit and the dense towers."""

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import layers


class CrossCompressTest(tf.test.TestCase):

    def _explicit_compress(self, unit, v, e):
        """The paper's formulation, materialising the d × d cross matrix C = v eᵀ."""
        cross = np.einsum("bi,bj->bij", v, e)
        weights = {name: getattr(unit, name).numpy() for name in ("w_vv", "w_ev", "w_ve", "w_ee")}
        v_out = (cross @ weights["w_vv"] + cross.transpose(0, 2, 1) @ weights["w_ev"])[..., 0]
        e_out = (cross @ weights["w_ve"] + cross.transpose(0, 2, 1) @ weights["w_ee"])[..., 0]
        return v_out + unit.b_v.numpy(), e_out + unit.b_e.numpy()

    def test_matches_explicit_cross_matrix_in_float64(self):
        rng = np.random.default_rng(0)
        dim = 7
        unit = layers.CrossCompress(dtype="float64")
        v, e = rng.normal(size=(5, dim)), rng.normal(size=(5, dim))
        unit((v, e))
        # Non-zero biases so that they are checked too.
        unit.b_v.assign(rng.normal(size=dim))
        unit.b_e.assign(rng.normal(size=dim))
        v_out, e_out = unit((tf.constant(v), tf.constant(e)))
        expected_v, expected_e = self._explicit_compress(unit, v, e)
        self.assertAllClose(v_out, expected_v, rtol=1e-12, atol=1e-12)
        self.assertAllClose(e_out, expected_e, rtol=1e-12, atol=1e-12)

    def test_residual_adds_the_inputs(self):
        rng = np.random.default_rng(2)
        v, e = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
        unit = layers.CrossCompress(residual=True, dtype="float64")
        v_out, e_out = unit((tf.constant(v), tf.constant(e)))
        expected_v, expected_e = self._explicit_compress(unit, v, e)
        self.assertAllClose(v_out, v + expected_v, rtol=1e-12, atol=1e-12)
        self.assertAllClose(e_out, e + expected_e, rtol=1e-12, atol=1e-12)
        restored = layers.CrossCompress.from_config(unit.get_config())
        self.assertTrue(restored.residual)

    def test_weight_shapes_follow_the_paper(self):
        unit = layers.CrossCompress()
        unit((tf.zeros([2, 4]), tf.zeros([2, 4])))
        shapes = {w.name: tuple(w.shape) for w in unit.weights}
        self.assertEqual(shapes, {"w_vv": (4, 1), "w_ev": (4, 1), "w_ve": (4, 1), "w_ee": (4, 1),
                                  "b_v": (4,), "b_e": (4,)})

    def test_compress_weights_start_independent(self):
        # One initializer instance for all four would start them equal, and so v' = e'.
        tf.keras.utils.set_random_seed(0)
        unit = layers.CrossCompress()
        unit((tf.zeros([2, 4]), tf.zeros([2, 4])))
        kernels = [unit.w_vv, unit.w_ev, unit.w_ve, unit.w_ee]
        for i, first in enumerate(kernels):
            for second in kernels[i + 1:]:
                self.assertNotAllClose(first, second, msg=f"{first.name} == {second.name}")

    def test_rejects_mismatched_sizes(self):
        with self.assertRaisesRegex(ValueError, "one known size"):
            layers.CrossCompress()((tf.zeros([2, 4]), tf.zeros([2, 3])))

    def test_config_round_trip(self):
        unit = layers.CrossCompress(name="cc", kernel_initializer="he_normal")
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(unit))
        self.assertIsInstance(restored, layers.CrossCompress)
        self.assertEqual(restored.get_config(), unit.get_config())


class AblationUnitTest(tf.test.TestCase):

    def test_dcn_cross_equation(self):
        rng = np.random.default_rng(1)
        v, e, v_0, e_0 = (rng.normal(size=(3, 4)) for _ in range(4))
        unit = layers.DCNCross(dtype="float64")
        unit((v, e, v_0, e_0))
        unit.b.assign(rng.normal(size=8))
        v_out, e_out = unit((v, e, v_0, e_0))
        x, x_0 = np.concatenate([v, e], 1), np.concatenate([v_0, e_0], 1)
        expected = x_0 * (x @ unit.w.numpy()) + unit.b.numpy() + x
        self.assertAllClose(np.concatenate([v_out, e_out], 1), expected)
        self.assertEqual([w.shape for w in unit.kernels], [(8, 1)])

    def test_cross_stitch_starts_as_identity_and_mixes_by_four_scalars(self):
        unit = layers.CrossStitch()
        v, e = tf.random.normal([2, 3]), tf.random.normal([2, 3])
        v_out, e_out = unit((v, e))
        self.assertAllClose(v_out, v)
        self.assertAllClose(e_out, e)
        unit.alpha.assign([[0.5, 2.0], [-1.0, 3.0]])
        v_out, e_out = unit((v, e))
        self.assertAllClose(v_out, 0.5 * v + 2.0 * e)
        self.assertAllClose(e_out, -1.0 * v + 3.0 * e)
        self.assertLen(unit.weights, 1)
        self.assertEqual(unit.alpha.shape, (2, 2))

    def test_registry_matches_the_config_names(self):
        from mkr_tf import config  # pylint: disable=import-outside-toplevel
        self.assertCountEqual(layers.CROSS_UNITS, config.CROSS_UNITS)

    def test_config_round_trips(self):
        for unit in (layers.DCNCross(name="d"), layers.CrossStitch(name="s")):
            restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(unit))
            self.assertEqual(type(restored), type(unit))
            self.assertEqual(restored.get_config(), unit.get_config())


class DenseTowerTest(tf.test.TestCase):

    def test_relu_layers_then_final_activation(self):
        tower = layers.DenseTower(6, n_layers=3, final_units=2, final_activation=None)
        outputs = tower(tf.random.normal([4, 5]))
        self.assertEqual(outputs.shape, (4, 2))
        self.assertEqual([l.activation.__name__ for l in tower.dense_layers], ["relu", "relu", "linear"])
        self.assertLen(tower.kernels, 3)

    def test_default_is_relu_everywhere(self):
        tower = layers.DenseTower(3, n_layers=2)
        outputs = tower(tf.random.normal([8, 3]))
        self.assertAllGreaterEqual(outputs, 0.0)

    def test_layers_of_one_shape_start_independent(self):
        tf.keras.utils.set_random_seed(0)
        tower = layers.DenseTower(3, n_layers=2)
        tower(tf.zeros([1, 3]))
        self.assertNotAllClose(tower.kernels[0], tower.kernels[1])

    def test_rejects_zero_layers(self):
        with self.assertRaisesRegex(ValueError, "n_layers"):
            layers.DenseTower(3, n_layers=0)

    def test_config_round_trip(self):
        tower = layers.DenseTower(6, n_layers=2, final_units=3, final_activation="sigmoid", name="t")
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tower))
        self.assertEqual(restored.get_config(), tower.get_config())
        x = tf.random.normal([2, 4])
        tower(x)
        restored(x)
        restored.set_weights(tower.get_weights())
        self.assertAllClose(restored(x), tower(x))


if __name__ == "__main__":
    tf.test.main()
