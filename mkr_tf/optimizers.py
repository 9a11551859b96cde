"""LazyAdam: Adam whose cost on an embedding table is proportional to the rows a batch touches."""

import keras
import tensorflow as tf

from mkr_tf import errors


@keras.saving.register_keras_serializable(package="mkr_tf")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows present in a sparse (`tf.IndexedSlices`) gradient.

    For the rows i a batch touches, with g_i the summed gradient of row i:

        m_i ← β1 m_i + (1 − β1) g_i
        v_i ← β2 v_i + (1 − β2) g_i²
        θ_i ← θ_i − lr · √(1 − β2^t) / (1 − β1^t) · m_i / (√v_i + ε)

    Rows the batch does not touch keep their parameters and moments. Dense gradients
    get the same update for every element, through TF's fused Adam kernel. Keras 3 removed the
    LazyAdam that TF Addons had; without it, every step of an embedding model rewrites every
    row of every table. Under XLA, a table of at most `masked_rows_limit` rows is updated whole,
    masked to the touched rows: the same update, in code XLA runs faster.
    """

    # Set by a runner whose steps XLA compiles (engine.LocalRunner): XLA compiles the row set's
    # dynamic size (tf.unique) into slow code, and the same update of every row, masked to the
    # rows the batch touches, into fast code, while a table has at most this many rows.
    masked_rows_limit = 0

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        if not isinstance(gradient, tf.IndexedSlices):
            # TF1's fused Adam kernel, as the authors' tf.train.AdamOptimizer ran it: one op,
            # where Keras builds some twenty per variable (graphs trace and step faster).
            return tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle, beta1_power=tf.pow(beta_1, step),
                beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
                beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
                grad=tf.cast(gradient, dtype))
        alpha = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step))
                 / (1 - tf.pow(beta_1, step)))
        if variable.shape[0] <= self.masked_rows_limit:
            return self._masked_update(gradient, variable, (m, v), (beta_1, beta_2), alpha)
        # A batch may look up one row many times; scatter ops on repeated indices keep
        # an arbitrary one, so the row gradients are summed first.
        rows, positions = tf.unique(gradient.indices)
        row_gradients = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), positions, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * row_gradients
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(row_gradients)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(
            alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
        return None

    def _masked_update(self, gradient, variable, slots, betas, alpha):
        """The same update, computed for every row and kept for the rows the batch touches."""
        (m, v), (beta_1, beta_2) = slots, betas
        n_rows = tf.shape(variable, out_type=tf.int64)[0]
        row_gradients = tf.math.unsorted_segment_sum(tf.cast(gradient.values, variable.dtype),
                                                     gradient.indices, n_rows)
        touched = tf.reshape(tf.math.unsorted_segment_max(
            tf.ones_like(gradient.indices, tf.int32), gradient.indices, n_rows) > 0,
            [-1] + [1] * (variable.shape.rank - 1))
        new_m = tf.where(touched, beta_1 * m + (1 - beta_1) * row_gradients, m)
        new_v = tf.where(touched, beta_2 * v + (1 - beta_2) * tf.square(row_gradients), v)
        self.assign(m, new_m)
        self.assign(v, new_v)
        self.assign_sub(variable, tf.where(
            touched, alpha * new_m / (tf.sqrt(new_v) + self.epsilon), tf.zeros_like(new_m)))
        return None


def moments(optimizer: keras.optimizers.Adam, variable) -> list[keras.Variable]:
    """The first and second moment slots `optimizer` keeps for `variable`; [] if it has none."""
    try:
        index = optimizer._get_variable_index(variable)  # pylint: disable=protected-access
    except KeyError:
        return []
    return [optimizer._momentums[index], optimizer._velocities[index]]  # pylint: disable=protected-access


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The optimizer `name` ("lazy_adam" or "adam") with TF1 Adam's epsilon (1e-8).

    The authors' code used TF1's dense Adam ("adam" here); "lazy_adam" is this package's faster default.
    """
    optimizer_classes = {"lazy_adam": LazyAdam, "adam": keras.optimizers.Adam}
    if name not in optimizer_classes:
        raise errors.ConfigError(f"unknown optimizer {name!r}; choose one of {sorted(optimizer_classes)}")
    return optimizer_classes[name](learning_rate=learning_rate, epsilon=1e-8)
