"""The MKR model: a recommendation task and a KG-embedding task joined by cross&compress units."""

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import config as mkr_config
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


def _batch_mean(per_example, global_batch_size, row_weights=None):
    """The batch mean of `per_example`, or under `strategy.run` this replica's part of the mean
    over a global batch of `global_batch_size` examples. With `row_weights` (1: a real row, 0: a
    padding row), the mean over the real rows."""
    if row_weights is not None:
        return tf.reduce_sum(per_example * row_weights) / tf.reduce_sum(row_weights)
    if global_batch_size is None:
        return tf.reduce_mean(per_example)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def _masked(vectors, row_weights):
    """`vectors` with their padding rows zeroed, so that those add nothing to an L2 term."""
    return vectors if row_weights is None else vectors * row_weights[:, None]


def _padded_groups(pairs, n_rows, length, rng):
    """[n_rows, length] int64: row r holds up to `length` of the distinct b of the (r, b) rows of
    `pairs`, a choice drawn from `rng` where r has more, and -1 in its spare places."""
    pairs = np.unique(pairs, axis=0)
    pairs = pairs[rng.permutation(len(pairs))]
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    rows = pairs[:, 0]
    # Each pair's place among its row's pairs: its index less that of its row's first pair.
    places = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    kept = places < length
    groups = np.full([n_rows, length], -1, np.int64)
    groups[rows[kept], places[kept]] = pairs[kept, 1]
    return groups


def _kept_places(ids, excluded_ids=None):
    """Which places of `ids` [n, k] count: not the -1 padding, nor the id of `excluded_ids` [n]
    in its row."""
    kept = ids >= 0
    if excluded_ids is not None:
        kept = tf.logical_and(kept, tf.not_equal(ids, tf.cast(excluded_ids, ids.dtype)[:, None]))
    return kept


def _kept_rows(table, ids, kept):
    """The `table` rows of `ids`, zeros where not `kept`. A place not kept reads the row of a
    kept one, which the call reads anyway: its zero gradient then touches no other row, which
    LazyAdam's moments would move. Where the call keeps no place at all it reads row 0, which is
    touched (a gap left open: only a call of a few rows, none with a kept place, meets it)."""
    fill = tf.maximum(tf.reduce_max(tf.where(kept, ids, tf.constant(-1, ids.dtype))), 0)
    return table(tf.where(kept, ids, fill)) * tf.cast(kept, tf.float32)[..., None]


def _masked_mean(table, ids, excluded_ids=None):
    """The mean of the `table` rows of each row of `ids` [n, k], leaving out the -1 padding and
    the id of `excluded_ids` [n] in its row; 0 for a row with none left."""
    kept = _kept_places(ids, excluded_ids)
    rows = _kept_rows(table, ids, kept)
    count = tf.reduce_sum(tf.cast(kept, tf.float32), axis=1, keepdims=True)
    return tf.reduce_sum(rows, axis=1) / tf.maximum(count, 1.0)


def _packed_mean(rows_of, ids, kept, capacity):
    """The mean of the rows of each row of `ids` [n, k] over its `kept` places, reading only
    those: they are packed, in order, into `capacity` places (at most n * k), and `rows_of` reads
    them ([c] ids to [c, d] rows, -1 marking an empty place, to be read as zeros). Kept places
    beyond the first `capacity` are left out, as if dropped."""
    flat_kept = tf.reshape(kept, [-1])
    # A kept place's slot is the count of kept places before it; the others share slot
    # `capacity`, which is dropped, as are places past it.
    slots = tf.minimum(capacity, tf.where(
        flat_kept, tf.cumsum(tf.cast(flat_kept, tf.int32), exclusive=True), capacity))
    owners = tf.range(tf.size(ids, out_type=tf.int32)) // tf.shape(ids, out_type=tf.int32)[1]
    # Empty slots get the dtype's lowest value; as -1 they read zeros and count for nothing.
    packed_ids = tf.maximum(tf.math.unsorted_segment_max(
        tf.reshape(ids, [-1]), slots, capacity + 1)[:-1], -1)
    packed_owners = tf.maximum(tf.math.unsorted_segment_max(owners, slots, capacity + 1)[:-1], 0)
    n_rows = tf.shape(ids)[0]
    sums = tf.math.unsorted_segment_sum(rows_of(packed_ids), packed_owners, n_rows)
    count = tf.math.unsorted_segment_sum(tf.cast(packed_ids >= 0, tf.float32), packed_owners,
                                         n_rows)[:, None]
    return sums / tf.maximum(count, 1.0)


# How far above their mean the kept places of a step's rows may be and all still be packed, in
# standard deviations of their sum.
_PACKING_DEVIATIONS = 6.0


def _packing_capacity(ids, kept_per_row, reserve):
    """How many places of `ids` [n, k] a training step packs, for rows keeping (mean, standard
    deviation) `kept_per_row` places each: their sum's mean, `_PACKING_DEVIATIONS` of its
    deviations and `reserve` more, at most all n * k places."""
    mean, deviation = kept_per_row
    n_rows, length = ids.shape
    if n_rows is not None:
        bound = n_rows * mean + _PACKING_DEVIATIONS * np.sqrt(n_rows) * deviation
        return min(n_rows * length, int(np.ceil(bound)) + reserve)
    n_rows = tf.cast(tf.shape(ids)[0], tf.float32)
    bound = n_rows * mean + _PACKING_DEVIATIONS * tf.sqrt(n_rows) * deviation
    return tf.minimum(tf.size(ids, out_type=tf.int32),
                      tf.cast(tf.math.ceil(bound), tf.int32) + reserve)


def _kept_statistics(counts, keep=1.0):
    """(mean, standard deviation) of the places a row keeps, for rows holding `counts` places
    of which each is kept with probability `keep`."""
    mean = counts.mean() * keep
    variance = counts.var() * keep**2 + counts.mean() * keep * (1.0 - keep)
    return float(mean), float(np.sqrt(variance))


def _zero_padded(table, ids):
    """The `table` rows of `ids`, zeros where an id is -1 (`_kept_rows`)."""
    return _kept_rows(table, ids, ids >= 0)


# Keeps the history dropout's random stream apart from the KGE negatives' (seeded (seed, step)),
# within 32 bits: XLA-compiled epochs draw otherwise from a larger seed than plain ones.
_HISTORY_DROPOUT_STREAM = 1 << 20
_SOFTMAX_SAMPLES_STREAM = 2 << 20
# History dropout draws integers below this and compares them with p times it.
_DROPOUT_RESOLUTION = 1 << 24


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

    Options beyond the paper, each off by default (the paper's model):
        init_scale > 0       embedding rows N(0, init_scale²) instead of Glorot-uniform
        use_biases           u ← [u; b_u; 1], v ← [v; 1; b_i], so that u · v gains b_u + b_i
        residual             cross&compress adds its input: v' = v + C w_vv + Cᵀ w_ev + b_v, …
        tie_item_entity      one table for items and entities: V[item] = E[item]
        rs_loss="softmax"    RS: −mean over positives (u, i) of log softmax_j(u · v_j)[i], j over
                             the whole catalogue
        rs_loss="softmax+pointwise"  the softmax loss plus, per positive, the pointwise
                             cross-entropy of its logit (label 1) and the mean of its contrasted
                             items' (label 0): the softmax alone is blind to a shift of one
                             user's logits, which AUC over all users' rows is not
        softmax_samples = s  with a softmax loss: j over the row's item i and s items drawn
                             uniformly each RS step, shared by the batch (an accidental i among
                             them left out), which costs s item vectors a step instead of the
                             catalogue's; uniform draws shift every sampled logit alike, so the
                             loss needs no correction (Jean et al., 2015)
        kge_negatives = k    KGE: mean −log σ(t · t̂) − Σ_k log σ(−t_k · t̂) / k, with t_k the
                             tower vectors of k uniform corrupted tails (the score is still σ(t · t̂))
        kge_model="transe"   KGE (TransE, Bordes et al. 2013): h = E[head], t = E[tail] (no
                             cross&compress, no tower), t̂ = h + R[relation] and the logit
                             γ − ‖t − t̂‖² (γ = `kge_margin`) in place of t · t̂: the KGE task
                             then moves the very rows the RS task reads (with `tie_item_entity`),
                             drawing items that share a tail to one point, so that an item
                             without ratings lands beside its rated siblings
        history_length = n   the user tower's input is U[user] + mean_{j ∈ N(u)} V[j], N(u) up to
                             n of the user's training positives (`set_user_history`), as in
                             SVD++; a training row's own item is left out of its mean (as in FISM)
        use_user_embedding=False  with history_length: no U; the user tower's input is the
                             history mean alone, as in FISM
        history_dropout = p  with history_length: in training, each item of N(u) is left out
                             of the mean with probability p, drawn afresh each RS step
        item_neighbours = n  the item's input to the cross&compress units is
                             v_0 = V[item] + mean_{t ∈ T(i)} E[t], T(i) up to n of the item's KG
                             tails (`set_item_neighbours`), so that items sharing tails share
                             features and an item without ratings gets its tails' vectors, which
                             the RS task trains through the rated items; e_0 = E[item] stays the
                             entity's own vector (with `tie_item_entity` too), and a KGE triple's
                             own tail is left out of its head's mean, so that the KGE task predicts
                             a tail from the item's other tails rather than from itself
        history_neighbours   with history_length and item_neighbours: a history item j is read as
                             an item's input to the units is, V[j] + mean_{t ∈ T(j)} E[t], so
                             that a user's side carries the KG tails of what they liked and
                             u · v meets an item sharing those tails
        lr_schedule="cosine"  each task's Adam rate falls from lr_rs or lr_kge to 0 along a half
                             cosine over that task's steps of the whole run
                             (`schedule_learning_rates`)

    `rec_step` and `kg_step` each apply their own Adam to the variables their own loss
    depends on; the item/entity tables and the cross&compress units belong to both. Their
    bodies, `rec_update` and `kg_update`, are the replica functions of `mkr_tf.engine`'s
    distributed runners; `mkr_tf.engine` runs whole epochs of them.
    """

    def __init__(self, n_users, n_items, n_entities, n_relations, dim=8, L=1, H=1,
                 l2_weight=1e-6, use_inner_product=True, lr_rs=0.02, lr_kge=0.01,
                 optimizer="lazy_adam", cross_unit="cross_compress", init_scale=0.0,
                 use_biases=False, residual=False, tie_item_entity=False, rs_loss="pointwise",
                 softmax_samples=0, kge_negatives=0, kge_model="mlp", kge_margin=1.0,
                 history_length=0,
                 history_dropout=0.0, use_user_embedding=True, item_neighbours=0,
                 history_neighbours=False, lr_schedule="constant", seed=0, **kwargs):
        super().__init__(**kwargs)
        # The settings are checked by MKRConfig's rules, the one place they are written.
        mkr_config.MKRConfig(
            dim=dim, L=L, H=H, l2_weight=l2_weight, use_inner_product=use_inner_product,
            lr_rs=lr_rs, lr_kge=lr_kge, optimizer=optimizer, cross_unit=cross_unit,
            init_scale=init_scale, use_biases=use_biases, residual=residual,
            tie_item_entity=tie_item_entity, rs_loss=rs_loss, softmax_samples=softmax_samples,
            kge_negatives=kge_negatives, kge_model=kge_model, kge_margin=kge_margin,
            history_length=history_length, history_dropout=history_dropout,
            use_user_embedding=use_user_embedding,
            item_neighbours=item_neighbours, history_neighbours=history_neighbours,
            lr_schedule=lr_schedule, seed=seed)
        check_softmax_samples(softmax_samples, n_items)
        if n_entities < n_items:
            raise ValueError(
                f"n_entities ({n_entities}) must cover every item (n_items={n_items}): entity i is item i")
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.n_entities, self.n_relations = int(n_entities), int(n_relations)
        self.dim, self.L, self.H = int(dim), int(L), int(H)
        self.l2_weight = float(l2_weight)
        self.use_inner_product = bool(use_inner_product)
        self.lr_rs, self.lr_kge = float(lr_rs), float(lr_kge)
        self.lr_schedule = lr_schedule
        # The whole run's steps of each task, which `schedule_learning_rates` sets.
        self.decay_steps: dict[str, int] | None = None
        self.optimizer_name = optimizer
        self.cross_unit = cross_unit
        self.init_scale = float(init_scale)
        self.use_biases, self.residual = bool(use_biases), bool(residual)
        self.tie_item_entity, self.rs_loss = bool(tie_item_entity), rs_loss
        self.softmax_samples = int(softmax_samples)
        self.kge_negatives, self.seed = int(kge_negatives), int(seed)
        self.kge_model, self.kge_margin = kge_model, float(kge_margin)
        self.history_length = int(history_length)
        self.use_user_embedding = bool(use_user_embedding)
        self.history_dropout = float(history_dropout)
        # The most KG tails an item's input averages; the tails themselves are `item_neighbours`.
        self.n_neighbours = int(item_neighbours)
        self.history_neighbours = bool(history_neighbours)

        # Under ParameterServerStrategy the tables may be sharded over the parameter servers,
        # which keras.layers.Embedding cannot hold.
        shardable = isinstance(tf.distribute.get_strategy(),
                               tf.distribute.experimental.ParameterServerStrategy)

        if shardable:
            refused = [name for name, value in (
                ("init_scale", self.init_scale), ("use_biases", self.use_biases),
                ("tie_item_entity", self.tie_item_entity),
                ("history_length", self.history_length),
                ("item_neighbours", self.n_neighbours)) if value]
            if refused:
                raise errors.ConfigError(
                    f"{', '.join(refused)}: not supported with the parameter_server strategy "
                    f"(the recommended presets set some of them; the paper preset sets none)")
        # The authors' tf.get_variable default, Glorot-uniform, makes a large table's rows tiny
        # (±0.009 for book's 77,896 entities); `init_scale` gives every table rows of one scale.
        initializer = (keras.initializers.RandomNormal(stddev=self.init_scale) if self.init_scale
                       else "glorot_uniform")

        def embedding(count, name):
            if shardable:
                return mkr_layers.Embedding(count, self.dim, name=name)
            return keras.layers.Embedding(
                count, self.dim, embeddings_initializer=mkr_layers.fresh_initializer(initializer),
                name=name)

        self.user_embedding = (embedding(self.n_users, "user_embedding") if self.use_user_embedding
                               else None)
        self.item_embedding = None if self.tie_item_entity else embedding(
            self.n_items, "item_embedding")
        self.user_bias = self.item_bias = None
        if self.use_biases:
            self.user_bias = keras.layers.Embedding(self.n_users, 1, embeddings_initializer="zeros",
                                                    name="user_bias")
            self.item_bias = keras.layers.Embedding(self.n_items, 1, embeddings_initializer="zeros",
                                                    name="item_bias")
        self.entity_embedding = embedding(self.n_entities, "entity_embedding")
        self.relation_embedding = embedding(self.n_relations, "relation_embedding")

        self.user_tower = mkr_layers.DenseTower(self.dim, n_layers=self.L, name="user_tower")
        # TransE scores the tables' own rows: no tail tower and no head MLP.
        mlp_kge = self.kge_model == "mlp"
        self.tail_tower = (mkr_layers.DenseTower(self.dim, n_layers=self.L, name="tail_tower")
                           if mlp_kge else None)
        # The paper's ablations swap cross&compress for a DCN cross layer or a cross-stitch unit.
        unit_options = {"residual": True} if self.residual else {}
        self.cross_units = [mkr_layers.CROSS_UNITS[cross_unit](name=f"{cross_unit}_{i}",
                                                               **unit_options)
                            for i in range(self.L)]
        # The authors' RS MLP ends in a ReLU, which pins every logit >= 0; a linear logit fixes that.
        self.rs_head = (None if self.use_inner_product else mkr_layers.DenseTower(
            2 * self.dim, n_layers=self.H, final_units=1, final_activation=None, name="rs_head"))
        # Kept as the authors wrote it: ReLU on the last layer too, then the sigmoid.
        self.kge_head = mkr_layers.DenseTower(
            2 * self.dim, n_layers=self.H, final_units=self.dim, name="kge_head") if mlp_kge else None

        # Each user's training positives, -1 padded: data, not parameters, but saved with them
        # so that a restored or exported model scores users as the trained one did.
        self.user_history = None
        # (mean, standard deviation) of the history and tail places a training row keeps, for
        # packing them; set with the histories and tails, not saved. None reads every place.
        self._history_kept_per_row = self._tails_kept_per_row = None
        if self.history_length:
            self.user_history = self.add_weight(
                shape=(self.n_users, self.history_length), dtype="int64", trainable=False,
                initializer=keras.initializers.Constant(-1), name="user_history")
        # Each item's KG tails, -1 padded, saved with the weights for the same reason.
        self.item_neighbours = None
        if self.n_neighbours:
            self.item_neighbours = self.add_weight(
                shape=(self.n_items, self.n_neighbours), dtype="int64", trainable=False,
                initializer=keras.initializers.Constant(-1), name="item_neighbours")
        self.rs_optimizer = mkr_optimizers.make_optimizer(optimizer, self.lr_rs)
        self.kge_optimizer = mkr_optimizers.make_optimizer(optimizer, self.lr_kge)
        self._build_all()

    def schedule_learning_rates(self, rs_steps: int, kge_steps: int) -> None:
        """Sets the whole run's RS and KGE steps, over which lr_schedule="cosine" lowers each
        task's rate from lr_rs or lr_kge to 0. Call it before the training steps are traced.

        The rate is a function of the optimizer's step count, which checkpoints keep: a resumed
        run goes on along the same curve, unless it is given more epochs, which redraws the
        curve over the longer run."""
        self.decay_steps = {"rs": max(int(rs_steps), 1), "kge": max(int(kge_steps), 1)}

    def _build_all(self):
        ids = tf.zeros([1], tf.int64)
        self.kge_outputs(ids, ids, ids)
        self({"user": ids, "item": ids})
        self.rs_optimizer.build(self.rs_variables)
        self.kge_optimizer.build(self.kge_variables)

    # --- forward ---------------------------------------------------------------------------------

    def set_user_history(self, ratings, seed=0):
        """Fills each user's history with up to `history_length` of their positive `ratings`
        rows (user, item, label), a seeded random choice where they have more."""
        ratings = np.asarray(ratings)
        histories = _padded_groups(ratings[ratings[:, 2] == 1, :2], self.n_users,
                                   self.history_length, np.random.default_rng((seed, 13)))
        self.user_history.assign(histories)
        if len(ratings):
            filled = (histories >= 0).sum(axis=1)
            self._history_kept_per_row = _kept_statistics(filled[ratings[:, 0]],
                                                          1.0 - self.history_dropout)

    def set_item_neighbours(self, kg, seed=0, ratings=None):
        """Fills each item's neighbours with up to `item_neighbours` of the distinct tails of its
        `kg` triples (head, relation, tail), a seeded random choice where it has more. Training
        `ratings` (user, item, label), where given, weigh the items as steps draw them."""
        neighbours = _padded_groups(np.asarray(kg)[:, [0, 2]], self.n_items, self.n_neighbours,
                                    np.random.default_rng((seed, 17)))
        self.item_neighbours.assign(neighbours)
        # Steps read both sampled items, drawn alike, and the rows' items, popular ones more.
        tails = (neighbours >= 0).sum(axis=1)
        statistics = [_kept_statistics(tails)]
        if ratings is not None:
            ratings = np.asarray(ratings)
            positives = ratings[ratings[:, 2] == 1, 1]
            if len(positives):
                statistics.append(_kept_statistics(tails[positives]))
        self._tails_kept_per_row = tuple(map(max, zip(*statistics)))

    def _history_mean(self, users, excluded_items=None, training=False, row_weights=None):
        """mean_{j ∈ N(u)} V[j] of each user (with `history_neighbours`, V[j] + mean_{t ∈ T(j)}
        E[t]), without `excluded_items` (one per user), and in `training` without the items
        `history_dropout` drops. Rows of `row_weights` 0 (padding) read no history."""
        history = tf.gather(self.user_history, users)
        if row_weights is not None:
            # A padding row would otherwise draw its own dropout, touch history items its real
            # twin dropped with zero gradient, and LazyAdam's moments would move them.
            history = tf.where(row_weights[:, None] > 0, history, tf.constant(-1, history.dtype))
        if training and self.history_dropout:
            history = tf.where(self._history_kept(tf.shape(history, out_type=tf.int64)), history,
                               tf.constant(-1, history.dtype))
        def each_place():
            return _masked_mean(self._history_rows, history, excluded_items)

        if training:
            return self._packed_history_mean(history, excluded_items, each_place)
        if not self.history_neighbours:
            return each_place()

        def catalogue_once():
            # Each item's row with its tails once, however many histories hold it. Not in
            # training: its gradient would touch every item, and LazyAdam move them all.
            catalogue = self._history_rows(tf.range(self.n_items, dtype=tf.int64))
            return _masked_mean(lambda items: tf.gather(catalogue, items), history,
                                excluded_items)

        # Scoring reads whole splits (book: 140,000 rows an epoch, 64 history places each);
        # a request of a few users reads fewer places than the catalogue has items.
        return tf.cond(tf.size(history, out_type=tf.int64) >= self.n_items, catalogue_once,
                       each_place)

    def _packed_history_mean(self, history, excluded_items, each_place):
        """A training step's history means, reading only the places it keeps (`_packed_mean`),
        once the histories are set (`set_user_history`); otherwise every place (`each_place`).

        Book's histories (64 places, 8 tails each) are two-thirds padding, and dropout leaves a
        quarter of the rest: reading every place cost three quarters of a training step. Places
        past `_packing_capacity` are left out: a step keeping that many is 6 standard deviations
        above the mean, plus one history's places."""
        if self._history_kept_per_row is None:
            return each_place()
        capacity = _packing_capacity(history, self._history_kept_per_row, self.history_length)
        return _packed_mean(lambda items: self._history_rows(items, training=True), history,
                            _kept_places(history, excluded_items), capacity)

    def _history_rows(self, items, training=False):
        """V[j] of history items j (ids of any shape; -1 reads zeros), with
        `history_neighbours` V[j] + mean_{t ∈ T(j)} E[t]."""
        table = self.entity_embedding if self.tie_item_entity else self.item_embedding
        rows = _zero_padded(table, items)
        if self.history_neighbours:
            rows += tf.reshape(self._neighbour_mean(tf.reshape(items, [-1]), training=training),
                               tf.shape(rows))
        return rows

    def _history_kept(self, shape):
        """Which history places a training step keeps: a function of (seed, RS step) alone, so
        that a resumed run draws what an uninterrupted one would."""
        step = tf.cast(tf.convert_to_tensor(self.rs_optimizer.iterations), tf.int64)
        seed = tf.stack([tf.constant(self.seed + _HISTORY_DROPOUT_STREAM, tf.int64), step])
        # Integer draws: XLA-compiled epochs draw the same integers as plain ones, not the same
        # floats.
        draws = tf.random.stateless_uniform(shape, seed=seed, minval=0,
                                            maxval=_DROPOUT_RESOLUTION, dtype=tf.int64)
        return draws >= round(self.history_dropout * _DROPOUT_RESOLUTION)

    def _neighbour_mean(self, items, excluded_tails=None, training=False):
        """mean_{t ∈ T(i)} E[t] of each item ([n] ids; -1 has none), without `excluded_tails`
        (one per item). An RS training step reads only the tails it keeps (`_packed_mean`; book's
        items fill 17% of their 8 places); the KGE step, a few heads a row, reads every place."""
        neighbours = tf.where(items[:, None] >= 0,
                              tf.gather(self.item_neighbours, tf.maximum(items, 0)),
                              tf.constant(-1, tf.int64))
        if not training or self._tails_kept_per_row is None:
            return _masked_mean(self.entity_embedding, neighbours, excluded_tails)
        capacity = _packing_capacity(neighbours, self._tails_kept_per_row, self.n_neighbours)
        return _packed_mean(lambda tails: _zero_padded(self.entity_embedding, tails), neighbours,
                            _kept_places(neighbours, excluded_tails), capacity)

    def user_vectors(self, users, excluded_items=None, training=False, row_weights=None):
        """u of each user: its tower's output, and with `use_biases` [u; b_u; 1]. With
        `history_length`, `excluded_items` leaves each user's item out of their history,
        `training` applies `history_dropout`, and rows of `row_weights` 0 read none; without
        `use_user_embedding`, the history is the tower's whole input."""
        inputs = []
        if self.user_embedding is not None:
            inputs.append(self.user_embedding(users))
        if self.history_length:
            inputs.append(self._history_mean(users, excluded_items, training, row_weights))
        vectors = self.user_tower(tf.add_n(inputs))
        if not self.use_biases:
            return vectors
        return tf.concat([vectors, self.user_bias(users), tf.ones_like(vectors[:, :1])], -1)

    @property
    def item_vector_width(self):
        """The width of `item_and_head_vectors`' item vectors: d, or d + 2 with `use_biases`."""
        return self.dim + 2 * self.use_biases

    def item_and_head_vectors(self, items, excluded_tails=None, training=False):
        """Item vectors v (with `use_biases` [v; 1; b_i]) and their entity vectors h after the L
        cross&compress units. With `item_neighbours`, `excluded_tails` leaves each item's tail
        out of its neighbours' mean, which `training` reads packed."""
        e_0 = e = self.entity_embedding(items)
        v_0 = e if self.tie_item_entity else self.item_embedding(items)
        if self.n_neighbours:
            v_0 += self._neighbour_mean(items, excluded_tails, training)
        v = v_0
        for unit in self.cross_units:
            v, e = unit((v, e, v_0, e_0) if unit.takes_first_inputs else (v, e))
        if self.use_biases:
            v = tf.concat([v, tf.ones_like(v[:, :1]), self.item_bias(items)], -1)
        return v, e

    def tail_vectors(self, tails):
        """t of each tail (any shape of ids): its tower's output, or with TransE its row."""
        if self.kge_model == "transe":
            return self.entity_embedding(tails)
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
        # A split holds many rows of each user and item (book's training split: 83,848 rows,
        # 17,000 users): each vector is computed once and read by its rows.
        unique_users, user_rows = tf.unique(tf.reshape(users, [-1]))
        unique_items, item_rows = tf.unique(tf.reshape(items, [-1]))
        item_vectors, _ = self.item_and_head_vectors(unique_items)
        probabilities = tf.sigmoid(self.rs_logits(
            tf.gather(self.user_vectors(unique_users), user_rows),
            tf.gather(item_vectors, item_rows)))
        return tf.reshape(probabilities, tf.shape(users))

    def kge_outputs(self, heads, relations, tails):
        """(h, t, t̂) of each triple: head and tail vectors and the predicted tail."""
        relation_vectors = self.relation_embedding(relations)
        if self.kge_model == "transe":
            head_vectors = self.entity_embedding(heads)
            return head_vectors, self.tail_vectors(tails), head_vectors + relation_vectors
        _, head_vectors = self.item_and_head_vectors(heads, excluded_tails=tails)
        predicted_tails = tf.sigmoid(self.kge_head(tf.concat([head_vectors, relation_vectors], -1)))
        return head_vectors, self.tail_vectors(tails), predicted_tails

    def kge_logits(self, tail_vectors, predicted_tails):
        """The logit of each tail vector [b, d] (or [b, k, d]: k per triple) against its triple's
        predicted tail [b, d]: t · t̂, or with TransE γ − ‖t − t̂‖²."""
        per_triple = tail_vectors.shape.rank == 3
        if self.kge_model == "transe":
            if per_triple:
                predicted_tails = predicted_tails[:, None, :]
            return self.kge_margin - tf.reduce_sum(tf.square(tail_vectors - predicted_tails), -1)
        if per_triple:
            # einsum, as before TransE existed: its order of float sums keeps runs bit-identical.
            return tf.einsum("bkd,bd->bk", tail_vectors, predicted_tails)
        return tf.reduce_sum(tail_vectors * predicted_tails, axis=-1)

    def kge_score(self, heads, relations, tails):
        """σ(logit) of each triple: σ(t · t̂), or with TransE σ(γ − ‖t − t̂‖²)."""
        _, tail_vectors, predicted_tails = self.kge_outputs(heads, relations, tails)
        return tf.sigmoid(self.kge_logits(tail_vectors, predicted_tails))

    # --- task variables --------------------------------------------------------------------------

    @property
    def _shared_layers(self):
        tables = [self.entity_embedding] if self.tie_item_entity else [self.item_embedding,
                                                                       self.entity_embedding]
        return [*tables, *self.cross_units]

    @property
    def rs_variables(self):
        user_table = [self.user_embedding] if self.user_embedding is not None else []
        rs_layers = [*user_table, self.user_tower, *self._shared_layers]
        if self.rs_head is not None:
            rs_layers.append(self.rs_head)
        if self.use_biases:
            rs_layers += [self.user_bias, self.item_bias]
        return [v for layer in rs_layers for v in layer.trainable_variables]

    @property
    def kge_variables(self):
        if self.kge_model == "transe":
            # Its own rows alone: TransE reads neither cross&compress nor the item table.
            kge_layers = [self.relation_embedding, self.entity_embedding]
        else:
            kge_layers = [self.relation_embedding, self.tail_tower, self.kge_head,
                          *self._shared_layers]
        return [v for layer in kge_layers for v in layer.trainable_variables]

    def _cross_unit_kernels(self):
        return [w for unit in self.cross_units for w in unit.kernels]

    def _rs_penalised_kernels(self):
        kernels = self.user_tower.kernels + self._cross_unit_kernels()
        if self.rs_head is not None:
            kernels += self.rs_head.kernels
        return kernels

    def _kge_penalised_kernels(self):
        if self.kge_model == "transe":
            return []
        return self.tail_tower.kernels + self.kge_head.kernels + self._cross_unit_kernels()

    # --- training steps --------------------------------------------------------------------------

    def _apply(self, task, loss, tape, variables):
        optimizer, rate = ((self.rs_optimizer, self.lr_rs) if task == "rs"
                           else (self.kge_optimizer, self.lr_kge))
        if self.lr_schedule == "cosine":
            if self.decay_steps is None:
                raise RuntimeError("lr_schedule=cosine: call schedule_learning_rates with the "
                                   "run's steps before training")
            # Assigned to Adam's own rate variable rather than given to it as a schedule, so
            # that the optimizers hold the same variables whatever the schedule, and a run's
            # weights load into a model built from its settings alone.
            optimizer.learning_rate.assign(keras.optimizers.schedules.CosineDecay(
                rate, self.decay_steps[task])(optimizer.iterations))
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

        An optional `batch["weight"]` (float, 1 for a real row, 0 for padding) gives a batch of
        fixed shape its real rows' gradient: a padding row repeats a real row's ids and adds
        zero gradient; it reads no history, so LazyAdam moves no other row (but see
        `_kept_rows`).
        """
        labels = tf.cast(batch["label"], tf.float32)
        row_weights = batch.get("weight")
        with tf.GradientTape() as tape:
            user_vectors = self.user_vectors(batch["user"], excluded_items=batch["item"],
                                             training=True, row_weights=row_weights)
            item_vectors, _ = self.item_and_head_vectors(batch["item"], training=True)
            if self.rs_loss != "pointwise":
                per_row = labels * self._softmax_loss(user_vectors, item_vectors, batch["item"])
                # The mean over the positive rows; the negative rows add nothing.
                base_loss = _batch_mean(per_row, global_batch_size, row_weights) / tf.maximum(
                    _batch_mean(labels, None, row_weights), 1e-6)
            else:
                base_loss = _batch_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=labels, logits=self.rs_logits(user_vectors, item_vectors)),
                    global_batch_size, row_weights)
            l2_loss = _l2(_masked(user_vectors, row_weights)) + _l2(
                _masked(item_vectors, row_weights)) + _replica_part(tf.add_n(
                [_l2(w) for w in self._rs_penalised_kernels()]), global_batch_size)
            loss = base_loss + self.l2_weight * l2_loss
        self._apply("rs", loss, tape, self.rs_variables)
        return {"rs_loss": loss, "rs_base_loss": base_loss, "rs_l2_loss": l2_loss}

    def _softmax_loss(self, user_vectors, item_vectors, items):
        """−log softmax of each row's item against the catalogue, or with `softmax_samples`
        against the step's sampled items."""
        positive_logits = self.rs_logits(user_vectors, item_vectors)
        if self.softmax_samples:
            others = self._sampled_items()
        else:
            others = tf.range(self.n_items, dtype=tf.int64)
        other_vectors, _ = self.item_and_head_vectors(others, training=True)
        # The row's own item among the others (always in the catalogue, by chance in a sample)
        # would contrast the positive with itself.
        is_negative = tf.not_equal(others[None, :], tf.cast(items, tf.int64)[:, None])
        negative_logits = self.catalogue_logits(user_vectors, other_vectors)
        logits = tf.concat([positive_logits[:, None], tf.where(
            is_negative, negative_logits, tf.constant(-1e9, negative_logits.dtype))], axis=1)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.zeros_like(items, tf.int64), logits=logits)
        if self.rs_loss == "softmax+pointwise":
            negatives = tf.cast(is_negative, tf.float32)
            loss += tf.nn.softplus(-positive_logits) + tf.reduce_sum(
                negatives * tf.nn.softplus(negative_logits), axis=1) / tf.maximum(
                tf.reduce_sum(negatives, axis=1), 1.0)
        return loss

    def _sampled_items(self):
        """[softmax_samples] uniform items, a function of (seed, RS step) alone, so that a
        resumed run draws what an uninterrupted one would."""
        step = tf.cast(tf.convert_to_tensor(self.rs_optimizer.iterations), tf.int64)
        return tf.random.stateless_uniform(
            [self.softmax_samples],
            seed=tf.stack([tf.constant(self.seed + _SOFTMAX_SAMPLES_STREAM, tf.int64), step]),
            minval=0, maxval=self.n_items, dtype=tf.int64)

    def kg_update(self, batch, global_batch_size=None):
        """One KGE update on batch {"head", "relation", "tail"}; returns its loss, score and RMSE.

        The body of `kg_step`; under `strategy.run`, and with `batch["weight"]`, as `rec_update`
        describes.
        """
        row_weights = batch.get("weight")
        with tf.GradientTape() as tape:
            head_vectors, tail_vectors, predicted_tails = self.kge_outputs(
                batch["head"], batch["relation"], batch["tail"])
            logits = self.kge_logits(tail_vectors, predicted_tails)
            scores = tf.sigmoid(logits)
            if self.kge_negatives:
                corrupted_tails = self._corrupted_tails(tf.shape(logits)[0])
                if row_weights is not None:
                    # A padding row copies the batch's first row (engine.padded_batches), and its
                    # corrupted tails do too: other entities would be moved by LazyAdam's
                    # momentum though their gradient is zero.
                    corrupted_tails = tf.where(row_weights[:, None] > 0, corrupted_tails,
                                               corrupted_tails[:1])
                corrupted_logits = self.kge_logits(self.tail_vectors(corrupted_tails),
                                                   predicted_tails)
                base_loss = _batch_mean(tf.nn.softplus(-logits) + tf.reduce_mean(
                    tf.nn.softplus(corrupted_logits), axis=-1), global_batch_size, row_weights)
            else:
                base_loss = -_batch_mean(scores, global_batch_size, row_weights)
            l2_loss = _l2(_masked(head_vectors, row_weights)) + _l2(
                _masked(tail_vectors, row_weights))
            kernels = self._kge_penalised_kernels()
            if kernels:
                l2_loss += _replica_part(tf.add_n([_l2(w) for w in kernels]), global_batch_size)
            loss = base_loss + self.l2_weight * l2_loss
        self._apply("kge", loss, tape, self.kge_variables)
        rmse = _batch_mean(tf.sqrt(
            tf.reduce_sum(tf.square(tail_vectors - predicted_tails), axis=-1) / self.dim),
            global_batch_size, row_weights)
        return {"kge_loss": loss, "kge_score": _batch_mean(scores, global_batch_size, row_weights),
                "kge_rmse": rmse}

    def _corrupted_tails(self, n_triples):
        """[n_triples, kge_negatives] uniform entities, a function of (seed, KGE step) alone, so
        that a resumed run draws what an uninterrupted one would."""
        step = tf.cast(tf.convert_to_tensor(self.kge_optimizer.iterations), tf.int64)
        return tf.random.stateless_uniform(
            tf.stack([tf.cast(n_triples, tf.int64), self.kge_negatives]),
            seed=tf.stack([tf.constant(self.seed, tf.int64), step]), minval=0,
            maxval=self.n_entities, dtype=tf.int64)

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
            cross_unit=self.cross_unit, init_scale=self.init_scale, use_biases=self.use_biases,
            residual=self.residual, tie_item_entity=self.tie_item_entity, rs_loss=self.rs_loss,
            softmax_samples=self.softmax_samples, kge_negatives=self.kge_negatives,
            kge_model=self.kge_model,
            kge_margin=self.kge_margin, history_length=self.history_length,
            history_dropout=self.history_dropout, use_user_embedding=self.use_user_embedding,
            item_neighbours=self.n_neighbours, history_neighbours=self.history_neighbours,
            lr_schedule=self.lr_schedule, seed=self.seed)


def check_softmax_samples(softmax_samples: int, n_items: int) -> None:
    """Refuses more sampled items than the catalogue holds, which would cost more than the exact
    softmax and still be noisy."""
    if softmax_samples >= n_items:
        raise errors.ConfigError(
            f"softmax_samples ({softmax_samples}) must be below the catalogue's {n_items} "
            f"items; 0 contrasts each positive with the whole catalogue, exactly")


def build_model(config, data) -> MKR:
    """The MKR of `config` (an `MKRConfig`) for `data`'s table sizes, initialised from its seed,
    with its users' histories from `data.train` and its items' neighbours from `data.kg` where
    it has them."""
    keras.utils.set_random_seed(config.seed)
    model = MKR(data.n_users, data.n_items, data.n_entities, data.n_relations,
                **config.model_arguments())
    if config.history_length:
        model.set_user_history(data.train, config.seed)
    if config.item_neighbours:
        model.set_item_neighbours(data.kg, config.seed, data.train)
    return model
