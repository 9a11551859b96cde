"""Keras layers of MKR: cross&compress and its ablations, dense towers, shardable tables."""

import functools

import keras
import tensorflow as tf


def fresh_initializer(initializer):
    """A new instance of the Keras initializer `initializer`, for one weight.

    An unseeded Keras 3 initializer instance draws its seed once and returns the same values at
    every call, so weights that share one instance start equal. TF1's get_variable, which the
    authors used, drew every variable independently.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="mkr_tf")
class CrossCompress(keras.layers.Layer):
    """Cross&compress unit sharing features between an item and its KG entity.

    For an item vector v and entity vector e (both in R^d):

        cross:     C = v eᵀ                                   (d × d)
        compress:  v' = C w_vv + Cᵀ w_ev + b_v
                   e' = C w_ve + Cᵀ w_ee + b_e

    with w_vv, w_ev, w_ve, w_ee in R^{d×1} and b_v, b_e in R^d. C has rank one, so
    C w = v (eᵀ w) and Cᵀ w = e (vᵀ w); the layer computes exactly that in O(d) per
    example instead of materialising the d × d matrix.

    With `residual=True` (beyond the paper) the unit adds its input to its output,

        v' = v + C w_vv + Cᵀ w_ev + b_v,    e' = e + C w_ve + Cᵀ w_ee + b_e,

    so that an item keeps its own vector, and an item without ratings its entity's, while the
    cross terms share features between them.

    Call with `(v, e)`, each `[batch, d]`; returns `(v', e')`, each `[batch, d]`.
    """

    takes_first_inputs = False

    def __init__(self, kernel_initializer="glorot_uniform", residual=False, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.residual = bool(residual)

    def build(self, input_shape):
        item_shape, entity_shape = input_shape
        dim = item_shape[-1]
        if dim is None or entity_shape[-1] != dim:
            raise ValueError(
                f"CrossCompress needs item and entity vectors of one known size, got "
                f"{item_shape} and {entity_shape}")
        self.dim = int(dim)
        for name in ("w_vv", "w_ev", "w_ve", "w_ee"):
            setattr(self, name, self.add_weight(
                name=name, shape=(self.dim, 1),
                initializer=fresh_initializer(self.kernel_initializer)))
        self.b_v = self.add_weight(name="b_v", shape=(self.dim,), initializer="zeros")
        self.b_e = self.add_weight(name="b_e", shape=(self.dim,), initializer="zeros")

    def call(self, inputs):
        v, e = inputs
        # [batch, 1] projections: eᵀw and vᵀw for each compress weight.
        e_dot = tf.matmul(e, tf.concat([self.w_vv, self.w_ve], axis=1))
        v_dot = tf.matmul(v, tf.concat([self.w_ev, self.w_ee], axis=1))
        v_out = v * e_dot[:, :1] + e * v_dot[:, :1] + self.b_v
        e_out = v * e_dot[:, 1:] + e * v_dot[:, 1:] + self.b_e
        if self.residual:
            return v + v_out, e + e_out
        return v_out, e_out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    @property
    def kernels(self):
        """The weights the paper's L2 term penalises (not the biases)."""
        return [self.w_vv, self.w_ev, self.w_ve, self.w_ee]

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        config["residual"] = self.residual
        return config


@keras.saving.register_keras_serializable(package="mkr_tf")
class DCNCross(keras.layers.Layer):
    """A DCN cross layer (Wang et al., ADKDD 2017) over [v; e], the paper's MKR-DCN ablation.

    With x_0 = [v_0; e_0] the unit's first input and x = [v; e] its current input (both in R^{2d}):

        x' = x_0 (xᵀ w) + b + x,      (v', e') = split(x')

    with w in R^{2d×1} and b in R^{2d}. Call with `(v, e, v_0, e_0)`; for the first unit x = x_0.
    """

    takes_first_inputs = True

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.dim = int(input_shape[0][-1])
        self.w = self.add_weight(name="w", shape=(2 * self.dim, 1), initializer=self.kernel_initializer)
        self.b = self.add_weight(name="b", shape=(2 * self.dim,), initializer="zeros")

    def call(self, inputs):
        v, e, v_0, e_0 = inputs
        x = tf.concat([v, e], axis=-1)
        x_0 = tf.concat([v_0, e_0], axis=-1)
        x_out = x_0 * tf.matmul(x, self.w) + self.b + x
        return x_out[:, :self.dim], x_out[:, self.dim:]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    @property
    def kernels(self):
        return [self.w]

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config


@keras.saving.register_keras_serializable(package="mkr_tf")
class CrossStitch(keras.layers.Layer):
    """A cross-stitch unit (Misra et al., CVPR 2016), the paper's MKR-stitch ablation.

        v' = α_vv v + α_ve e
        e' = α_ev v + α_ee e

    with four learned scalars, initialised to the identity (α_vv = α_ee = 1, α_ve = α_ev = 0)
    in place of cross&compress's four weight vectors. Call with `(v, e)`.
    """

    takes_first_inputs = False

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=(2, 2),
                                     initializer=keras.initializers.Identity())

    def call(self, inputs):
        v, e = inputs
        return (self.alpha[0, 0] * v + self.alpha[0, 1] * e,
                self.alpha[1, 0] * v + self.alpha[1, 1] * e)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    @property
    def kernels(self):
        return [self.alpha]


CROSS_UNITS = {"cross_compress": CrossCompress, "dcn": DCNCross, "stitch": CrossStitch}


@keras.saving.register_keras_serializable(package="mkr_tf")
class DenseTower(keras.layers.Layer):
    """A stack of fully connected layers, as MKR uses for its user and tail towers and heads.

        h_0 = x,   h_{l+1} = act(W_l h_l + b_l),   l = 0 … n_layers − 1

    `act` is ReLU for every layer (as in the authors' code) unless `final_activation`
    names another activation for the last one, e.g. `None` for a logit.
    """

    def __init__(self, units, n_layers=1, final_units=None, final_activation="relu",
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if n_layers < 1:
            raise ValueError(f"DenseTower needs n_layers >= 1, got {n_layers}")
        self.units = int(units)
        self.n_layers = int(n_layers)
        self.final_units = int(final_units) if final_units is not None else self.units
        self.final_activation = final_activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense_layers = [
            keras.layers.Dense(
                self.final_units if i == self.n_layers - 1 else self.units,
                activation=self.final_activation if i == self.n_layers - 1 else "relu",
                kernel_initializer=fresh_initializer(self.kernel_initializer),
                name=f"dense_{i}")
            for i in range(self.n_layers)
        ]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs):
        x = inputs
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.final_units,)

    @property
    def kernels(self):
        return [layer.kernel for layer in self.dense_layers]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, n_layers=self.n_layers, final_units=self.final_units,
            final_activation=self.final_activation,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


def _glorot_uniform_rows(shape, dtype=tf.float32, partition_shape=None, partition_offset=None):
    """Glorot-uniform values of rows `partition_offset[0]…` of a `shape` table, or of all of it.

    ParameterServerStrategy calls an initial-value function that takes `partition_shape` once
    per shard, on the shard's parameter server, so no process ever holds the whole table.
    """
    del partition_offset  # Independent draws: any rows' values are as good as any others'.
    limit = (6.0 / (shape[0] + shape[1])) ** 0.5
    return tf.random.uniform(partition_shape or shape, -limit, limit, dtype)


@keras.saving.register_keras_serializable(package="mkr_tf")
class Embedding(keras.layers.Layer):
    """An embedding table that ParameterServerStrategy's variable partitioner can shard in rows.

    Under that strategy's scope, a `tf.Variable` for which the partitioner asks several shards
    becomes a `ShardedVariable`: contiguous row ranges, each on one parameter server. Keras 3
    layers cannot train one (a `keras.Variable` wraps it, but differentiating it needs the
    single resource handle a ShardedVariable lacks), so this layer keeps its table as a plain
    `tf.Variable` and lists the shards as its weights: gradients and optimizer slots are per
    shard, and Keras's optimizers create each slot beside its shard. Lookups go through
    `tf.nn.embedding_lookup`, which TensorFlow dispatches to one gather per shard on that
    shard's server, so only the looked-up rows travel.

    It is named like `keras.layers.Embedding`, initialises like MKR's (Glorot-uniform) and saves
    its whole table the same way, because Keras weight files name a model's layers by class:
    weights saved from either load into the other.
    """

    def __init__(self, input_dim, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings = None

    def build(self, input_shape=None):
        shape = (self.input_dim, self.output_dim)
        self.embeddings = tf.Variable(
            functools.partial(_glorot_uniform_rows, shape), shape=shape, dtype=tf.float32,
            name="embeddings")

    @property
    def shards(self):
        """The table's row shards, first rows first (just the table when it is not sharded)."""
        return list(getattr(self.embeddings, "variables", [self.embeddings]))

    # Keras lists only keras.Variables by itself; the (trainable_)weights and variables of this
    # layer and of the model holding it derive from these two.
    @property
    def variables(self):
        return self.shards if self.built else []

    @property
    def weights(self):
        return self.variables

    def call(self, ids):
        return tf.nn.embedding_lookup(self.embeddings, ids)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def save_own_variables(self, store):
        store["0"] = tf.convert_to_tensor(self.embeddings)

    def load_own_variables(self, store):
        self.embeddings.assign(store["0"])

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim)
        return config
