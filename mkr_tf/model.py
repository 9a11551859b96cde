"""The MKR model: a recommendation task and a KG-embedding task joined by cross&compress units."""

import keras
import tensorflow as tf

from mkr_tf import errors
from mkr_tf import layers as mkr_layers
from mkr_tf import optimizers as mkr_optimizers


def check_ids(ids, table_size, name):
    """`ids` as int64, or an InvalidArgumentError naming the first id outside [0, table_size)."""
    ids = tf.cast(ids, tf.int64)
    out_of_range = tf.logical_or(ids < 0, ids >= table_size)
    in_range = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(out_of_range)),
        [f"{name} id out of range, valid ids are 0..{table_size - 1}; got",
         tf.boolean_mask(ids, out_of_range)[:1]], summarize=1)
    # Ordered before the lookup, which would otherwise fail first with a less helpful message.
    with tf.control_dependencies([in_range]):
        return tf.identity(ids)


def _l2(tensor):
    """tf.nn.l2_loss, the authors' regulariser: sum(x²) / 2."""
    return tf.nn.l2_loss(tensor)


def _batch_mean(per_example, global_batch_size):
    """The batch mean of `per_example`, or under `strategy.run` this replica's part of the mean
    over a global batch of `global_batch_size` examples."""
    if global_batch_size is None:
        return tf.reduce_mean(per_example)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def _replica_part(batch_independent, global_batch_size):
    """A term that does not grow with the batch (a kernel's L2), split evenly between replicas."""
    if global_batch_size is None:
        return batch_independent
    return tf.nn.scale_regularization_loss(batch_independent)


@keras.saving.register_keras_serializable(package="mkr_tf")
class MKR(keras.Model):
    """MKR (Wang et al., WWW 2019).

    Low layers (L of each):
        u = towerᵁ(U[user])                         user tower, ReLU dense
        (v, h) = C&C_L ∘ … ∘ C&C_1 (V[item], E[item])  cross&compress on the item and its entity
        t = towerᵀ(E[tail])                          tail tower, ReLU dense
    High layers (H of each):
        RS:  ŷ = σ(u · v), or σ(MLP_H([u; v])) with `use_inner_product=False`
        KGE: t̂ = σ(MLP_H([h; R[relation]])),  score = σ(t · t̂)
    Losses (λ = `l2_weight`, L2(x) = ‖x‖² / 2 over the batch's vectors and the task's kernels):
        RS:  mean cross-entropy(y, ŷ) + λ (L2(u) + L2(v) + L2(W_RS))
        KGE: −mean score + λ (L2(h) + L2(t) + L2(W_KGE))

    `rec_step` and `kg_step` each apply their own Adam to the variables their own loss
    depends on; the item/entity tables and the cross&compress units belong to both. Their
    bodies, `rec_update` and `kg_update`, are the replica functions of `mkr_tf.engine`'s
    distributed runners; `mkr_tf.engine` runs whole epochs of them.
    """

    def __init__(self, n_users, n_items, n_entities, n_relations, dim=8, L=1, H=1,
                 l2_weight=1e-6, use_inner_product=True, lr_rs=0.02, lr_kge=0.01,
                 optimizer="lazy_adam", cross_unit="cross_compress", init_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        if n_entities < n_items:
            raise ValueError(
                f"n_entities ({n_entities}) must cover every item (n_items={n_items}): entity i is item i")
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.n_entities, self.n_relations = int(n_entities), int(n_relations)
        self.dim, self.L, self.H = int(dim), int(L), int(H)
        self.l2_weight = float(l2_weight)
        self.use_inner_product = bool(use_inner_product)
        self.lr_rs, self.lr_kge = float(lr_rs), float(lr_kge)
        self.optimizer_name = optimizer
        if cross_unit not in mkr_layers.CROSS_UNITS:
            raise ValueError(f"cross_unit must be one of {sorted(mkr_layers.CROSS_UNITS)}, got {cross_unit!r}")
        self.cross_unit = cross_unit
        self.init_scale = float(init_scale)

        # Under ParameterServerStrategy the tables may be sharded over the parameter servers,
        # which keras.layers.Embedding cannot hold.
        shardable = isinstance(tf.distribute.get_strategy(),
                               tf.distribute.experimental.ParameterServerStrategy)

        if shardable and self.init_scale:
            raise errors.ConfigError("init_scale is not supported with the parameter_server strategy")
        # The authors' tf.get_variable default, Glorot-uniform, makes a large table's rows tiny
        # (±0.009 for book's 77,896 entities); `init_scale` gives every table rows of one scale.
        initializer = (keras.initializers.RandomNormal(stddev=self.init_scale) if self.init_scale
                       else "glorot_uniform")

        def embedding(count, name):
            if shardable:
                return mkr_layers.Embedding(count, self.dim, name=name)
            return keras.layers.Embedding(count, self.dim, embeddings_initializer=initializer,
                                          name=name)

        self.user_embedding = embedding(self.n_users, "user_embedding")
        self.item_embedding = embedding(self.n_items, "item_embedding")
        self.entity_embedding = embedding(self.n_entities, "entity_embedding")
        self.relation_embedding = embedding(self.n_relations, "relation_embedding")

        self.user_tower = mkr_layers.DenseTower(self.dim, n_layers=self.L, name="user_tower")
        self.tail_tower = mkr_layers.DenseTower(self.dim, n_layers=self.L, name="tail_tower")
        # The paper's ablations swap cross&compress for a DCN cross layer or a cross-stitch unit.
        self.cross_units = [mkr_layers.CROSS_UNITS[cross_unit](name=f"{cross_unit}_{i}")
                            for i in range(self.L)]
        # The authors' RS MLP ends in a ReLU, which pins every logit >= 0; a linear logit fixes that.
        self.rs_head = (None if self.use_inner_product else mkr_layers.DenseTower(
            2 * self.dim, n_layers=self.H, final_units=1, final_activation=None, name="rs_head"))
        # Kept as the authors wrote it: ReLU on the last layer too, then the sigmoid.
        self.kge_head = mkr_layers.DenseTower(
            2 * self.dim, n_layers=self.H, final_units=self.dim, name="kge_head")

        self.rs_optimizer = mkr_optimizers.make_optimizer(optimizer, self.lr_rs)
        self.kge_optimizer = mkr_optimizers.make_optimizer(optimizer, self.lr_kge)
        self._build_all()

    def _build_all(self):
        ids = tf.zeros([1], tf.int64)
        self.kge_outputs(ids, ids, ids)
        self({"user": ids, "item": ids})
        self.rs_optimizer.build(self.rs_variables)
        self.kge_optimizer.build(self.kge_variables)

    # --- forward ---------------------------------------------------------------------------------

    def user_vectors(self, users):
        return self.user_tower(self.user_embedding(users))

    def item_and_head_vectors(self, items):
        """Item vectors v and their entity vectors h after the L cross&compress units."""
        v_0 = v = self.item_embedding(items)
        e_0 = e = self.entity_embedding(items)
        for unit in self.cross_units:
            v, e = unit((v, e, v_0, e_0) if unit.takes_first_inputs else (v, e))
        return v, e

    def tail_vectors(self, tails):
        return self.tail_tower(self.entity_embedding(tails))

    def rs_logits(self, user_vectors, item_vectors):
        if self.use_inner_product:
            return tf.reduce_sum(user_vectors * item_vectors, axis=-1)
        return tf.squeeze(self.rs_head(tf.concat([user_vectors, item_vectors], axis=-1)), axis=-1)

    def catalogue_logits(self, user_vectors, item_vectors):
        """RS logits [N, M] of each of N user vectors against each of M item vectors."""
        if self.use_inner_product:
            # Logits rank as the probabilities do; u · v of every pair in one matmul.
            return tf.matmul(user_vectors, item_vectors, transpose_b=True)
        # The MLP head scores pairs: one user's row at a time bounds the activations to M pairs.
        return tf.map_fn(
            lambda user: self.rs_logits(tf.broadcast_to(user, tf.shape(item_vectors)), item_vectors),
            user_vectors)

    def call(self, inputs):
        """Click probability of each (inputs["user"], inputs["item"]) pair."""
        users = check_ids(inputs["user"], self.n_users, "user")
        items = check_ids(inputs["item"], self.n_items, "item")
        item_vectors, _ = self.item_and_head_vectors(items)
        return tf.sigmoid(self.rs_logits(self.user_vectors(users), item_vectors))

    def kge_outputs(self, heads, relations, tails):
        """(h, t, t̂) of each triple: head and tail vectors and the predicted tail."""
        _, head_vectors = self.item_and_head_vectors(heads)
        relation_vectors = self.relation_embedding(relations)
        predicted_tails = tf.sigmoid(self.kge_head(tf.concat([head_vectors, relation_vectors], -1)))
        return head_vectors, self.tail_vectors(tails), predicted_tails

    def kge_score(self, heads, relations, tails):
        """σ(t · t̂) of each triple."""
        _, tail_vectors, predicted_tails = self.kge_outputs(heads, relations, tails)
        return tf.sigmoid(tf.reduce_sum(tail_vectors * predicted_tails, axis=-1))

    # --- task variables --------------------------------------------------------------------------

    @property
    def _shared_layers(self):
        return [self.item_embedding, self.entity_embedding, *self.cross_units]

    @property
    def rs_variables(self):
        rs_layers = [self.user_embedding, self.user_tower, *self._shared_layers]
        if self.rs_head is not None:
            rs_layers.append(self.rs_head)
        return [v for layer in rs_layers for v in layer.trainable_variables]

    @property
    def kge_variables(self):
        kge_layers = [self.relation_embedding, self.tail_tower, self.kge_head, *self._shared_layers]
        return [v for layer in kge_layers for v in layer.trainable_variables]

    def _cross_unit_kernels(self):
        return [w for unit in self.cross_units for w in unit.kernels]

    def _rs_penalised_kernels(self):
        kernels = self.user_tower.kernels + self._cross_unit_kernels()
        if self.rs_head is not None:
            kernels += self.rs_head.kernels
        return kernels

    def _kge_penalised_kernels(self):
        return self.tail_tower.kernels + self.kge_head.kernels + self._cross_unit_kernels()

    # --- training steps --------------------------------------------------------------------------

    @staticmethod
    def _apply(optimizer, loss, tape, variables):
        gradients = tape.gradient(loss, variables)
        # The last cross&compress unit's other-task half has no gradient; like TF1's minimize,
        # such variables are left alone rather than fed zeros that would still move Adam.
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    def rec_update(self, batch, global_batch_size=None):
        """One RS update on batch {"user", "item", "label"}; returns its losses.

        The body of `rec_step`, a plain method so that `strategy.run` can run it as its replica
        function (the optimizer's cross-replica gradient sum is a merge_call, which cannot run
        inside a nested tf.function). With `global_batch_size`, `batch` is this replica's share
        of a global batch of that many rows, and each output is this share's part of the global
        batch's figure: summed over the replicas, as the optimizer sums their gradients, they
        give the global batch's.
        """
        labels = tf.cast(batch["label"], tf.float32)
        with tf.GradientTape() as tape:
            user_vectors = self.user_vectors(batch["user"])
            item_vectors, _ = self.item_and_head_vectors(batch["item"])
            logits = self.rs_logits(user_vectors, item_vectors)
            base_loss = _batch_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits),
                global_batch_size)
            l2_loss = _l2(user_vectors) + _l2(item_vectors) + _replica_part(tf.add_n(
                [_l2(w) for w in self._rs_penalised_kernels()]), global_batch_size)
            loss = base_loss + self.l2_weight * l2_loss
        self._apply(self.rs_optimizer, loss, tape, self.rs_variables)
        return {"rs_loss": loss, "rs_base_loss": base_loss, "rs_l2_loss": l2_loss}

    def kg_update(self, batch, global_batch_size=None):
        """One KGE update on batch {"head", "relation", "tail"}; returns its loss, score and RMSE.

        The body of `kg_step`; under `strategy.run` as `rec_update` describes.
        """
        with tf.GradientTape() as tape:
            head_vectors, tail_vectors, predicted_tails = self.kge_outputs(
                batch["head"], batch["relation"], batch["tail"])
            scores = tf.sigmoid(tf.reduce_sum(tail_vectors * predicted_tails, axis=-1))
            base_loss = -_batch_mean(scores, global_batch_size)
            l2_loss = _l2(head_vectors) + _l2(tail_vectors) + _replica_part(tf.add_n(
                [_l2(w) for w in self._kge_penalised_kernels()]), global_batch_size)
            loss = base_loss + self.l2_weight * l2_loss
        self._apply(self.kge_optimizer, loss, tape, self.kge_variables)
        rmse = _batch_mean(tf.sqrt(
            tf.reduce_sum(tf.square(tail_vectors - predicted_tails), axis=-1) / self.dim),
            global_batch_size)
        return {"kge_loss": loss, "kge_score": _batch_mean(scores, global_batch_size),
                "kge_rmse": rmse}

    # autograph=False throughout: these bodies have no Python control flow on tensors, and
    # autograph's source conversion was two thirds of their tracing time.
    @tf.function(autograph=False)
    def rec_step(self, batch):
        """One RS update on batch {"user", "item", "label"}; returns its losses."""
        return self.rec_update(batch)

    @tf.function(autograph=False)
    def kg_step(self, batch):
        """One KGE update on batch {"head", "relation", "tail"}; returns its loss, score and RMSE."""
        return self.kg_update(batch)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)],
                 autograph=False)
    def predict_batch(self, users, items):
        """Click probabilities of (users[i], items[i]); one trace serves every batch size."""
        return self({"user": users, "item": items})

    def get_config(self):
        return dict(
            name=self.name, n_users=self.n_users, n_items=self.n_items, n_entities=self.n_entities,
            n_relations=self.n_relations, dim=self.dim, L=self.L, H=self.H,
            l2_weight=self.l2_weight, use_inner_product=self.use_inner_product,
            lr_rs=self.lr_rs, lr_kge=self.lr_kge, optimizer=self.optimizer_name,
            cross_unit=self.cross_unit, init_scale=self.init_scale)


def build_model(config, data) -> MKR:
    """The MKR of `config` (an `MKRConfig`) for `data`'s table sizes, initialised from its seed."""
    keras.utils.set_random_seed(config.seed)
    return MKR(data.n_users, data.n_items, data.n_entities, data.n_relations,
               **config.model_arguments())
