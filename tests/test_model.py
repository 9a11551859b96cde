"""Tests of the MKR model: outputs, task-variable isolation, configuration."""

from unittest import mock

import numpy as np
import tensorflow as tf

from mkr_tf import errors
from mkr_tf import model as model_lib
from mkr_tf import optimizers as mkr_optimizers
from mkr_tf.model import MKR


def _model(**kwargs):
    tf.keras.utils.set_random_seed(0)
    settings = dict(n_users=7, n_items=5, n_entities=9, n_relations=3, dim=4, L=2, H=2)
    settings.update(kwargs)
    return MKR(**settings)


RS_BATCH = {"user": tf.constant([0, 3, 6], tf.int64), "item": tf.constant([1, 4, 1], tf.int64),
            "label": tf.constant([1, 0, 1], tf.int64)}
KG_BATCH = {"head": tf.constant([0, 2, 4], tf.int64), "relation": tf.constant([0, 2, 1], tf.int64),
            "tail": tf.constant([5, 8, 1], tf.int64)}


def _snapshot(variables):
    return {v.path: v.numpy().copy() for v in variables}


class MKRTest(tf.test.TestCase):

    def test_tables_start_independent_at_every_init_scale(self):
        for init_scale in (0.0, 0.1):
            model = _model(init_scale=init_scale)
            first_rows = [table.embeddings[:3] for table in (
                model.user_embedding, model.item_embedding, model.entity_embedding)]
            self.assertNotAllClose(first_rows[0], first_rows[1], msg=f"{init_scale}")
            self.assertNotAllClose(first_rows[1], first_rows[2], msg=f"{init_scale}")

    def test_call_returns_probabilities(self):
        model = _model()
        probabilities = model({"user": RS_BATCH["user"], "item": RS_BATCH["item"]})
        self.assertEqual(probabilities.shape, (3,))
        self.assertAllInRange(probabilities, 0.0, 1.0)

    def test_repeated_users_and_items_score_as_each_pair_alone(self):
        # The call computes each distinct user's and item's vector once and shares it.
        model = _model(history_length=2, use_biases=True)
        model.set_user_history(np.array([[0, 1, 1], [0, 2, 1], [3, 4, 1]]), seed=0)
        users = tf.constant([3, 0, 3, 6, 0], tf.int64)
        items = tf.constant([4, 1, 2, 4, 1], tf.int64)
        alone = [float(model({"user": users[i:i + 1], "item": items[i:i + 1]})[0])
                 for i in range(5)]
        self.assertAllClose(model({"user": users, "item": items}), alone)

    def test_rec_step_leaves_kge_only_variables_alone(self):
        for use_inner_product in (True, False):
            model = _model(use_inner_product=use_inner_product)
            kge_only = [model.relation_embedding, model.tail_tower, model.kge_head]
            frozen = _snapshot(v for layer in kge_only for v in layer.trainable_variables)
            moving = _snapshot(model.user_embedding.trainable_variables
                               + model.item_embedding.trainable_variables)
            model.rec_step(RS_BATCH)
            for path, value in frozen.items():
                self.assertAllEqual(value, _value(model, path), msg=path)
            self.assertTrue(any(not np.array_equal(value, _value(model, path))
                                for path, value in moving.items()))

    def test_kg_step_leaves_user_side_alone(self):
        model = _model(use_inner_product=False)
        rs_only = [model.user_embedding, model.user_tower, model.rs_head]
        frozen = _snapshot(v for layer in rs_only for v in layer.trainable_variables)
        relations_before = model.relation_embedding.embeddings.numpy().copy()
        model.kg_step(KG_BATCH)
        for path, value in frozen.items():
            self.assertAllEqual(value, _value(model, path), msg=path)
        self.assertNotAllEqual(relations_before, model.relation_embedding.embeddings.numpy())

    def test_each_task_trains_the_layers_its_loss_depends_on(self):
        model = _model(use_inner_product=False)

        def owners(variables):
            ids = {id(v) for v in variables}
            return {layer.name for layer in model.layers
                    if any(id(v) in ids for v in layer.trainable_variables)}

        shared = {"item_embedding", "entity_embedding", "cross_compress_0", "cross_compress_1"}
        self.assertEqual(owners(model.rs_variables),
                         shared | {"user_embedding", "user_tower", "rs_head"})
        self.assertEqual(owners(model.kge_variables),
                         shared | {"relation_embedding", "tail_tower", "kge_head"})
        self.assertEqual(len(model.rs_variables) + len(model.kge_variables),
                         len(model.trainable_variables) + sum(
                             len(model.get_layer(name).trainable_variables) for name in shared))

    def test_l2_terms_are_the_papers(self):
        # λ·L2 with L2 = ½ Σ x² over the batch's low-layer outputs and the task's kernels (no biases).
        model = _model(use_inner_product=False)
        half_square = lambda tensors: 0.5 * sum(float(tf.reduce_sum(tf.square(t))) for t in tensors)
        cross_kernels = [w for unit in (model.get_layer("cross_compress_0"), model.get_layer("cross_compress_1"))
                         for w in (unit.w_vv, unit.w_ev, unit.w_ve, unit.w_ee)]
        dense_kernels = lambda tower: [layer.kernel for layer in tower.dense_layers]

        u = model.user_vectors(RS_BATCH["user"])
        v, _ = model.item_and_head_vectors(RS_BATCH["item"])
        expected_rs = half_square([u, v] + dense_kernels(model.user_tower) + cross_kernels
                                  + dense_kernels(model.rs_head))
        self.assertAllClose(model.rec_step(RS_BATCH)["rs_l2_loss"], expected_rs, rtol=1e-5)

        h, t, _ = model.kge_outputs(KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"])
        expected_kge = half_square([h, t] + dense_kernels(model.tail_tower) + cross_kernels
                                   + dense_kernels(model.kge_head))
        score = model.kge_score(KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"])
        losses = model.kg_step(KG_BATCH)
        self.assertAllClose(losses["kge_loss"],
                            -float(tf.reduce_mean(score)) + model.l2_weight * expected_kge, rtol=1e-5)

    def test_steps_return_finite_losses_and_reduce_them(self):
        model = _model(lr_rs=0.05, lr_kge=0.05)
        first_rs = model.rec_step(RS_BATCH)["rs_loss"]
        first_kge = model.kg_step(KG_BATCH)["kge_loss"]
        for _ in range(30):
            last_rs = model.rec_step(RS_BATCH)["rs_loss"]
            last_kge = model.kg_step(KG_BATCH)["kge_loss"]
        self.assertLess(float(last_rs), float(first_rs))
        self.assertLess(float(last_kge), float(first_kge))

    def test_out_of_range_ids_name_the_value(self):
        model = _model()
        for users, items, message in (([0, 7], [1, 1], r"user id out of range, valid ids are 0..6; got\] \[7\]"),
                                      ([0, 1], [-2, 1], r"item id out of range, valid ids are 0..4; got\] \[-2\]")):
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
                model.predict_batch(tf.constant(users, tf.int64), tf.constant(items, tf.int64))

    def test_config_round_trip(self):
        model = _model(use_inner_product=False, l2_weight=1e-3, optimizer="adam")
        restored = MKR.from_config(model.get_config())
        self.assertEqual(restored.get_config(), model.get_config())
        restored.set_weights(model.get_weights())
        inputs = {"user": RS_BATCH["user"], "item": RS_BATCH["item"]}
        self.assertAllClose(restored(inputs), model(inputs))

    def test_biases_add_to_the_inner_product(self):
        model = _model(use_biases=True)
        plain = tf.reduce_sum(model.user_tower(model.user_embedding(RS_BATCH["user"]))
                              * _cross_compressed(model, RS_BATCH["item"]), axis=-1)
        model.user_bias.embeddings.assign(tf.reshape(tf.range(7, dtype=tf.float32), [7, 1]))
        model.item_bias.embeddings.assign(tf.reshape(10.0 * tf.range(5, dtype=tf.float32), [5, 1]))
        logits = model.rs_logits(model.user_vectors(RS_BATCH["user"]),
                                 model.item_and_head_vectors(RS_BATCH["item"])[0])
        self.assertAllClose(logits, plain + [0 + 10, 3 + 40, 6 + 10], rtol=1e-4)
        self.assertIn(model.item_bias.embeddings.path, {v.path for v in model.rs_variables})
        self.assertNotIn(model.item_bias.embeddings.path, {v.path for v in model.kge_variables})

    def test_item_vector_width_is_the_item_vectors(self):
        for use_biases in (False, True):
            model = _model(use_biases=use_biases)
            vectors, _ = model.item_and_head_vectors(RS_BATCH["item"])
            self.assertEqual(model.item_vector_width, vectors.shape[-1])

    def test_tied_items_are_their_entities(self):
        model = _model(tie_item_entity=True)
        self.assertIsNone(model.item_embedding)
        entities = model.entity_embedding(RS_BATCH["item"])
        v, e = entities, entities
        for unit in model.cross_units:
            v, e = unit((v, e))
        got_v, got_e = model.item_and_head_vectors(RS_BATCH["item"])
        self.assertAllClose(got_v, v)
        self.assertAllClose(got_e, e)
        before = model.entity_embedding.embeddings.numpy().copy()
        model.rec_step(RS_BATCH)
        self.assertNotAllEqual(before, model.entity_embedding.embeddings.numpy())

    def test_softmax_loss_is_each_positives_catalogue_cross_entropy(self):
        model = _model(rs_loss="softmax", lr_rs=1e-12)
        u = model.user_vectors(RS_BATCH["user"])
        catalogue, _ = model.item_and_head_vectors(tf.range(5, dtype=tf.int64))
        log_probabilities = tf.nn.log_softmax(tf.matmul(u, catalogue, transpose_b=True)).numpy()
        positives = [0, 2]  # rows labelled 1; the negative row adds nothing
        expected = -np.mean([log_probabilities[row, RS_BATCH["item"][row]] for row in positives])
        self.assertAllClose(model.rec_step(RS_BATCH)["rs_base_loss"], expected, rtol=1e-4)

    def test_sampled_softmax_contrasts_each_positive_with_the_steps_draws_alone(self):
        model = _model(rs_loss="softmax", softmax_samples=4, lr_rs=1e-12, l2_weight=0.0, seed=3)
        sampled = model._sampled_items().numpy()
        self.assertEqual(sampled.shape, (4,))
        self.assertAllInRange(sampled, 0, 4)
        self.assertIn(1, sampled)  # the positives' item, drawn by accident, is left out
        self.assertAllEqual(sampled, _model(rs_loss="softmax", softmax_samples=4,
                                            seed=3)._sampled_items())
        self.assertNotAllEqual(sampled, _model(rs_loss="softmax", softmax_samples=4,
                                               seed=2)._sampled_items())
        u = model.user_vectors(RS_BATCH["user"]).numpy()
        vectors = model.item_and_head_vectors(tf.range(5, dtype=tf.int64))[0].numpy()
        expected = []
        for row in (0, 2):  # rows labelled 1; the negative row adds nothing
            item = int(RS_BATCH["item"][row])
            negatives = [j for j in sampled if j != item]
            logits = np.array([u[row] @ vectors[item]] + [u[row] @ vectors[j] for j in negatives])
            expected.append(np.log(np.sum(np.exp(logits - logits[0]))))
        self.assertAllClose(model.rec_step(RS_BATCH)["rs_base_loss"], np.mean(expected),
                            rtol=1e-4)
        # The next step draws other items, and an XLA-compiled step the same ones.
        self.assertNotAllEqual(sampled, model._sampled_items())
        self.assertAllEqual(tf.function(model._sampled_items, jit_compile=True)(),
                            model._sampled_items())

    def test_softmax_plus_pointwise_adds_each_positives_and_its_negatives_cross_entropy(self):
        softplus = lambda x: np.log1p(np.exp(x))
        for samples in (0, 4):
            model = _model(rs_loss="softmax+pointwise", softmax_samples=samples, lr_rs=1e-12,
                           l2_weight=0.0, seed=3)
            others = model._sampled_items().numpy() if samples else np.arange(5)
            u = model.user_vectors(RS_BATCH["user"]).numpy()
            vectors = model.item_and_head_vectors(tf.range(5, dtype=tf.int64))[0].numpy()
            expected = []
            for row in (0, 2):  # rows labelled 1; the negative row adds nothing
                item = int(RS_BATCH["item"][row])
                negative_logits = np.array([u[row] @ vectors[j] for j in others if j != item])
                positive_logit = u[row] @ vectors[item]
                softmax = np.log(np.exp(positive_logit) + np.exp(negative_logits).sum()
                                 ) - positive_logit
                expected.append(softmax + softplus(-positive_logit)
                                + softplus(negative_logits).mean())
            with self.subTest(samples=samples):
                self.assertAllClose(model.rec_step(RS_BATCH)["rs_base_loss"], np.mean(expected),
                                    rtol=1e-4)

    def test_kge_negatives_give_a_logistic_loss_drawn_per_seed_and_step(self):
        model = _model(kge_negatives=3, lr_kge=1e-12, l2_weight=0.0, seed=4)
        corrupted = model._corrupted_tails(3).numpy()
        self.assertEqual(corrupted.shape, (3, 3))
        self.assertAllInRange(corrupted, 0, 8)
        self.assertAllEqual(corrupted, _model(kge_negatives=3, seed=4)._corrupted_tails(3))
        self.assertNotAllEqual(corrupted, _model(kge_negatives=3, seed=5)._corrupted_tails(3))
        _, t, t_hat = model.kge_outputs(KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"])
        negative_logits = tf.einsum("bkd,bd->bk", model.tail_vectors(corrupted), t_hat)
        softplus = lambda x: np.log1p(np.exp(x))
        expected = np.mean(softplus(-tf.reduce_sum(t * t_hat, -1).numpy())
                           + softplus(negative_logits.numpy()).mean(-1))
        self.assertAllClose(model.kg_step(KG_BATCH)["kge_loss"], expected, rtol=1e-4)
        # The next step draws other tails.
        self.assertNotAllEqual(corrupted, model._corrupted_tails(3))

    def test_transe_scores_the_tables_own_rows_by_hand(self):
        model = _model(kge_model="transe", kge_margin=2.0, kge_negatives=2, lr_kge=1e-12,
                       l2_weight=0.0, tie_item_entity=True, seed=4)
        self.assertIsNone(model.kge_head)
        self.assertIsNone(model.tail_tower)
        entities = np.zeros([9, 4], np.float32)
        entities[0], entities[5] = [1, 0, 0, 0], [1, 1, 0, 0]
        relations = np.zeros([3, 4], np.float32)
        relations[0] = [0, 1, 0, 0]
        model.entity_embedding.embeddings.assign(entities)
        model.relation_embedding.embeddings.assign(relations)
        # (0, 0, 5): h + r = t exactly, so the logit is the margin; (2, 2, 8): all zero, too.
        # (4, 1, 1): h + r = 0 and t = E[1] = 0, likewise; move E[1] to (0, 0, 3, 0): 2 - 9.
        entities[1] = [0, 0, 3, 0]
        model.entity_embedding.embeddings.assign(entities)
        score = model.kge_score(KG_BATCH["head"], KG_BATCH["relation"], KG_BATCH["tail"])
        self.assertAllClose(score, tf.sigmoid([2.0, 2.0, -7.0]))
        corrupted = model._corrupted_tails(3).numpy()
        predicted = entities[[0, 2, 4]] + relations[[0, 2, 1]]
        negative_logits = 2.0 - np.square(entities[corrupted] - predicted[:, None]).sum(-1)
        softplus = lambda x: np.log1p(np.exp(x))
        expected = np.mean(softplus(-np.array([2.0, 2.0, -7.0]))
                           + softplus(negative_logits).mean(-1))
        self.assertAllClose(model.kg_step(KG_BATCH)["kge_loss"], expected, rtol=1e-4)

    def test_transe_trains_the_rows_the_rs_task_reads_and_nothing_else(self):
        model = _model(kge_model="transe", kge_negatives=2, tie_item_entity=True, lr_kge=0.05)
        self.assertEqual({v.path for v in model.kge_variables},
                         {model.entity_embedding.embeddings.path,
                          model.relation_embedding.embeddings.path})
        items = tf.constant([0, 2, 4], tf.int64)
        before_vectors = model.item_and_head_vectors(items)[0]
        others = _snapshot(model.cross_units[0].trainable_variables
                           + model.user_embedding.trainable_variables)
        model.kg_step(KG_BATCH)
        # The heads are items: their RS vectors moved with their rows, and the rest stayed put.
        self.assertNotAllClose(model.item_and_head_vectors(items)[0], before_vectors)
        for path, value in _snapshot(model.cross_units[0].trainable_variables
                                     + model.user_embedding.trainable_variables).items():
            self.assertAllEqual(value, others[path], msg=path)

    def test_history_is_the_mean_of_the_users_items_without_the_scored_one(self):
        model = _model(history_length=2, L=1)
        # User 0 liked items 1, 2 and 3 (two are kept), user 3 item 4; user 6 has no history.
        ratings = np.array([[0, 1, 1], [0, 2, 1], [0, 3, 1], [3, 4, 1], [3, 0, 0], [6, 2, 0]])
        model.set_user_history(ratings, seed=0)
        history = model.user_history.numpy()
        self.assertEqual(set(history[0]) <= {1, 2, 3} and len(set(history[0])), 2)
        self.assertAllEqual(history[3], [4, -1])
        self.assertAllEqual(history[6], [-1, -1])
        users = tf.constant([0, 3, 6], tf.int64)
        table = model.item_embedding.embeddings.numpy()
        means = np.stack([table[history[0]].mean(0), table[4], np.zeros(4)])
        expected = model.user_tower(model.user_embedding(users) + means)
        self.assertAllClose(model.user_vectors(users), expected)
        # Scoring user 0's first history item leaves it out of the mean.
        excluded = tf.constant([history[0][0], 0, 0], tf.int64)
        means[0] = table[history[0][1]]
        self.assertAllClose(model.user_vectors(users, excluded_items=excluded),
                            model.user_tower(model.user_embedding(users) + means))
        # The history is saved with the weights.
        path = self.get_temp_dir() + "/history.weights.h5"
        model.save_weights(path)
        restored = _model(history_length=2, L=1)
        restored.load_weights(path)
        self.assertAllEqual(restored.user_history.numpy(), history)

    def test_without_user_embedding_a_user_is_their_history_alone(self):
        model = _model(history_length=2, L=1, use_user_embedding=False, lr_rs=0.05)
        self.assertIsNone(model.user_embedding)
        self.assertNotIn("user_embedding", {v.path.split("/")[0] for v in model.weights})
        ratings = np.array([[0, 1, 1], [0, 2, 1], [3, 4, 1], [3, 0, 0]])
        model.set_user_history(ratings, seed=0)
        table = model.item_embedding.embeddings.numpy()
        users = tf.constant([0, 3, 6], tf.int64)
        means = np.stack([table[[1, 2]].mean(0), table[4], np.zeros(4)])
        self.assertAllClose(model.user_vectors(users), model.user_tower(means))
        # Users of one history score alike; the RS step still trains the tower and the items.
        model.set_user_history(np.array([[0, 1, 1], [3, 1, 1]]), seed=0)
        self.assertAllClose(model.user_vectors(users)[0], model.user_vectors(users)[1])
        before = _snapshot(model.user_tower.trainable_variables)
        model.rec_step(RS_BATCH)
        after = _snapshot(model.user_tower.trainable_variables)
        self.assertTrue(any(np.any(before[k] != after[k]) for k in before))
        restored = MKR.from_config(model.get_config())
        self.assertFalse(restored.use_user_embedding)

    def test_history_neighbours_read_each_history_item_with_its_tails(self):
        model = _model(history_length=2, item_neighbours=2, history_neighbours=True, L=1,
                       use_user_embedding=False)
        # User 0 liked items 1 and 2, user 3 item 4; item 1's tails are 6 and 7, item 2 has none.
        model.set_user_history(np.array([[0, 1, 1], [0, 2, 1], [3, 4, 1]]), seed=0)
        model.set_item_neighbours(np.array([[1, 0, 6], [1, 1, 7], [4, 2, 8]]), seed=0)
        items = model.item_embedding.embeddings.numpy()
        entities = model.entity_embedding.embeddings.numpy()
        read = {1: items[1] + entities[[6, 7]].mean(0), 2: items[2], 4: items[4] + entities[8]}
        users = tf.constant([0, 3, 6], tf.int64)
        means = np.stack([(read[1] + read[2]) / 2, read[4], np.zeros(4)])
        # Six history places read the 5 items' rows once each; two read their own places.
        self.assertAllClose(model.user_vectors(users), model.user_tower(means))
        self.assertAllClose(model.user_vectors(users[:1]), model.user_tower(means[:1]))
        self.assertAllClose(model.user_vectors(users, excluded_items=tf.constant([2, 4, 1])),
                            model.user_tower(np.stack([read[1], np.zeros(4), np.zeros(4)])))
        self.assertAllClose(model.user_vectors(users[:1], excluded_items=tf.constant([2])),
                            model.user_tower(read[1][None]))
        for options in ({"history_length": 2}, {"item_neighbours": 2}):
            with self.subTest(**options), self.assertRaisesRegex(
                    ValueError, "history_neighbours needs history_length > 0 and item_neigh"):
                _model(history_neighbours=True, **options)

    def test_history_dropout_thins_training_histories_only_by_seed_and_step(self):
        ratings = np.array([[0, i, 1] for i in range(5)] + [[3, 4, 1]])
        model = _model(history_length=5, L=1, history_dropout=0.5, use_user_embedding=False)
        model.set_user_history(ratings, seed=0)
        users = tf.constant([0, 3], tf.int64)
        whole = model.user_vectors(users)
        self.assertAllClose(model.user_vectors(users, training=False), whole)
        kept = model._history_kept(tf.constant([2, 5], tf.int64))
        self.assertAllEqual(kept, model._history_kept(tf.constant([2, 5], tf.int64)))
        table = model.item_embedding.embeddings.numpy()
        history = model.user_history.numpy()[[0, 3]]
        kept_ids = np.where(kept.numpy() & (history >= 0), history, -1)
        expected = np.stack([table[row[row >= 0]].mean(0) if (row >= 0).any() else np.zeros(4)
                             for row in kept_ids])
        self.assertAllClose(model.user_vectors(users, training=True), model.user_tower(expected))
        # Another model of the same seed at the same step draws the same; the next step, others.
        twin = _model(history_length=5, L=1, history_dropout=0.5, use_user_embedding=False)
        self.assertAllEqual(twin._history_kept(tf.constant([2, 5], tf.int64)), kept)
        model.rec_step(RS_BATCH)
        self.assertNotAllEqual(model._history_kept(tf.constant([8, 5], tf.int64)),
                               twin._history_kept(tf.constant([8, 5], tf.int64)))
        with self.assertRaisesRegex(errors.ConfigError, "history_dropout needs history_length"):
            _model(history_dropout=0.5)

    def test_packed_means_read_the_kept_places_in_order_up_to_their_capacity(self):
        table = tf.constant(np.arange(10)[:, None] * [1.0, 10.0], tf.float32)
        ids = tf.constant([[1, -1, 2], [3, 4, -1], [-1, -1, -1]], tf.int64)
        kept = ids >= 0
        read = []
        def rows_of(packed):
            read.append(packed)
            return model_lib._zero_padded(lambda i: tf.gather(table, i), packed)
        self.assertAllClose(model_lib._packed_mean(rows_of, ids, kept, 6),
                            model_lib._masked_mean(lambda i: tf.gather(table, i), ids))
        self.assertAllEqual(read[-1], [1, 2, 3, 4, -1, -1])
        # Kept places past the capacity are left out, as if dropped: item 4 here.
        self.assertAllClose(model_lib._packed_mean(rows_of, ids, kept, 3),
                            [[1.5, 15.0], [3.0, 30.0], [0.0, 0.0]])
        self.assertAllEqual(read[-1], [1, 2, 3])

    def test_a_training_step_reads_its_kept_places_packed_and_updates_as_reading_all(self):
        rng = np.random.default_rng(0)
        ratings = np.stack([rng.integers(0, 7, 40), rng.integers(0, 5, 40), np.ones(40, int)], 1)
        kg = np.stack([rng.integers(0, 5, 12), rng.integers(0, 3, 12), rng.integers(0, 9, 12)], 1)
        options = dict(history_length=12, item_neighbours=8, history_neighbours=True,
                       history_dropout=0.5, use_user_embedding=False, tie_item_entity=True,
                       rs_loss="softmax", softmax_samples=3, L=1)
        batch = {"user": tf.constant(np.arange(7).repeat(2), tf.int64),
                 "item": tf.constant(np.arange(14) % 5, tf.int64),
                 "label": tf.ones([14], tf.int64)}
        models = []
        for packed in (True, False):
            model = _model(**options)
            model.set_user_history(ratings)
            model.set_item_neighbours(kg, ratings=ratings)
            if not packed:
                model._history_kept_per_row = model._tails_kept_per_row = None
            with mock.patch.object(model_lib, "_packed_mean", wraps=model_lib._packed_mean) as spy:
                for _ in range(3):
                    model.rec_step(batch)
            # Histories, their items' tails, the rows' items' tails and the sampled items' tails.
            self.assertEqual(spy.call_count, 4 if packed else 0)
            models.append(model)
        for packed, whole in zip(models[0].trainable_variables, models[1].trainable_variables):
            self.assertAllClose(packed, whole, atol=1e-6, msg=packed.path)

        # Each side's gradient reaches only the packed places' rows: a tied table's row per
        # history place and per item, and a row per tail place.
        model = models[0]
        table = model.entity_embedding.embeddings
        history = tf.gather(model.user_history, batch["user"])
        history_places = model_lib._packing_capacity(history, model._history_kept_per_row, 12)
        def tail_places(n_items):
            return model_lib._packing_capacity(tf.zeros([n_items, 8]), model._tails_kept_per_row, 8)
        with tf.GradientTape(persistent=True) as tape:
            users = model.user_vectors(batch["user"], batch["item"], training=True)
            items, _ = model.item_and_head_vectors(batch["item"], training=True)
        self.assertLess(history_places + tail_places(history_places), 12 * 14 * 9 / 2)
        self.assertLen(tape.gradient(users, table).indices,
                       history_places + tail_places(history_places))
        self.assertLen(tape.gradient(items, table).indices, 14 + tail_places(14))

    def test_a_training_step_moves_no_row_it_does_not_read(self):
        # Item 0 (entity 0) is no user's history and no item's tail: only the first batch reads
        # it. The places left empty (histories shorter than 4, items with fewer than 3 tails)
        # must not read it either, or their zero gradient would let its moments move it.
        ratings = np.array([[1, 1, 1], [1, 2, 1], [2, 3, 1], [3, 4, 1], [3, 2, 1]])
        kg = np.array([[1, 0, 5], [2, 1, 6], [2, 0, 7], [4, 2, 8], [3, 1, 1]])
        first = {"user": tf.constant([0, 1], tf.int64), "item": tf.constant([0, 1], tf.int64),
                 "label": tf.constant([1, 0], tf.int64)}
        second = {"user": tf.constant([1, 2, 3], tf.int64), "item": tf.constant([2, 3, 4], tf.int64),
                  "label": tf.constant([1, 1, 0], tf.int64)}
        for packed in (True, False):
            with self.subTest(packed=packed):
                model = _model(history_length=4, item_neighbours=3, history_neighbours=True,
                               tie_item_entity=True, use_user_embedding=False, L=1)
                model.set_user_history(ratings)
                model.set_item_neighbours(kg, ratings=ratings)
                if not packed:
                    model._history_kept_per_row = model._tails_kept_per_row = None
                model.rec_update(first)
                row_0 = model.entity_embedding.embeddings[0].numpy()
                first_moment, _ = mkr_optimizers.moments(model.rs_optimizer,
                                                         model.entity_embedding.embeddings)
                self.assertGreater(np.abs(first_moment[0]).max(), 0.0)
                model.rec_update(second)
                self.assertAllEqual(model.entity_embedding.embeddings[0], row_0)

    def test_neighbours_add_the_mean_of_the_items_tails_to_the_item_input_only(self):
        # Item 0 has tails 5, 6 and 7 (two are kept), item 2 tail 8 by two relations, item 4
        # tail 1 (an item's entity); items 1 and 3 have none.
        kg = np.array([[0, 0, 5], [0, 1, 6], [0, 2, 7], [2, 0, 8], [2, 1, 8], [4, 1, 1]])
        for tie_item_entity in (False, True):
            with self.subTest(tie_item_entity=tie_item_entity):
                model = _model(item_neighbours=2, L=1, tie_item_entity=tie_item_entity)
                model.set_item_neighbours(kg, seed=0)
                neighbours = model.item_neighbours.numpy()
                self.assertTrue(set(neighbours[0]) <= {5, 6, 7} and len(set(neighbours[0])) == 2)
                self.assertAllEqual(neighbours[1:], [[-1, -1], [8, -1], [-1, -1], [1, -1]])
                unit = model.cross_units[0]
                rng = np.random.default_rng(0)
                for kernel in unit.kernels:  # distinct kernels, so that v' and e' differ
                    kernel.assign(rng.normal(size=(4, 1)).astype(np.float32))
                w_vv, w_ev, w_ve, w_ee = (kernel.numpy() for kernel in unit.kernels)
                entities = model.entity_embedding.embeddings.numpy()
                own = entities if tie_item_entity else model.item_embedding.embeddings.numpy()

                def by_hand(items, means):
                    # v_0 = V[i] + mean_t E[t] (E[i] when tied); e_0 = E[i] either way.
                    v_0, e_0 = own[items] + means, entities[items]
                    return (v_0 * (e_0 @ w_vv) + e_0 * (v_0 @ w_ev),
                            v_0 * (e_0 @ w_ve) + e_0 * (v_0 @ w_ee))

                v, e = model.item_and_head_vectors(tf.constant([0, 1, 2, 4], tf.int64))
                expected_v, expected_e = by_hand([0, 1, 2, 4], np.stack([
                    entities[neighbours[0]].mean(0), np.zeros(4), entities[8], entities[1]]))
                self.assertAllClose(v, expected_v)
                self.assertAllClose(e, expected_e)
                # A KGE triple's own tail is left out of its head's mean.
                h, _, _ = model.kge_outputs(tf.constant([0, 2], tf.int64),
                                            tf.constant([0, 0], tf.int64),
                                            tf.constant([neighbours[0][0], 8], tf.int64))
                self.assertAllClose(h, by_hand([0, 2], np.stack([entities[neighbours[0][1]],
                                                                 np.zeros(4)]))[1])
        # The neighbours are saved with the weights.
        path = self.get_temp_dir() + "/neighbours.weights.h5"
        model.save_weights(path)
        restored = _model(item_neighbours=2, L=1, tie_item_entity=True)
        restored.load_weights(path)
        self.assertAllEqual(restored.item_neighbours.numpy(), neighbours)

    def test_an_unrated_item_gets_its_tails_vectors_which_rated_items_train(self):
        # Item 3 is in no RS batch; it shares tail 6 with item 1, which RS_BATCH rates.
        kg = np.array([[3, 0, 6], [1, 0, 6], [4, 1, 7]])
        model = _model(item_neighbours=4, L=1, lr_rs=0.05)
        model.set_item_neighbours(kg, seed=0)
        cold = tf.constant([3], tf.int64)
        v = model.item_and_head_vectors(cold)[0].numpy()
        self.assertNotAllClose(v, _cross_compressed(model, cold))
        entities = model.entity_embedding.embeddings
        own_rows = [model.item_embedding.embeddings.numpy()[3], entities.numpy()[3]]
        tail_before = entities.numpy()[6]
        model.rec_step(RS_BATCH)
        # Its own rows are untouched, but the RS step moved its tail's row, and so its vector.
        self.assertAllEqual([model.item_embedding.embeddings.numpy()[3], entities.numpy()[3]],
                            own_rows)
        self.assertNotAllClose(entities.numpy()[6], tail_before)
        self.assertNotAllClose(model.item_and_head_vectors(cold)[0], v)
        # Without neighbours the RS task leaves the tail's row alone.
        plain = _model(L=1, lr_rs=0.05)
        tail_before = plain.entity_embedding.embeddings.numpy()[6]
        plain.rec_step(RS_BATCH)
        self.assertAllEqual(plain.entity_embedding.embeddings.numpy()[6], tail_before)

    def test_options_round_trip_and_are_checked(self):
        model = _model(use_biases=True, residual=True, tie_item_entity=True, rs_loss="softmax",
                       softmax_samples=3, kge_negatives=2, init_scale=0.1, history_length=3,
                       history_dropout=0.25,
                       item_neighbours=2, history_neighbours=True, kge_model="transe",
                       kge_margin=3.0, seed=3)
        restored = MKR.from_config(model.get_config())
        self.assertEqual(restored.get_config(), model.get_config())
        restored.set_weights(model.get_weights())
        inputs = {"user": RS_BATCH["user"], "item": RS_BATCH["item"]}
        self.assertAllClose(restored(inputs), model(inputs))
        for options, message in (({"rs_loss": "bpr"}, "rs_loss"),
                                 ({"softmax_samples": 4}, "softmax_samples needs a softmax rs_loss"),
                                 ({"rs_loss": "softmax", "softmax_samples": 5},
                                  r"softmax_samples \(5\) must be below the catalogue's 5 items"),
                                 ({"rs_loss": "bpr", "use_inner_product": False}, "rs_loss must be"),
                                 ({"rs_loss": "softmax", "softmax_samples": -1}, "integer >= 0"),
                                 ({"use_biases": True, "use_inner_product": False}, "inner_product"),
                                 ({"residual": True, "cross_unit": "dcn"}, "residual"),
                                 ({"use_user_embedding": False}, "needs history_length"),
                                 ({"kge_model": "rotate"}, "kge_model"),
                                 ({"kge_margin": 0.0}, "kge_margin must be")):
            with self.subTest(**options), self.assertRaisesRegex(ValueError, message):
                _model(**options)

    def test_parameter_server_refuses_the_options_it_cannot_shard_by_name(self):
        strategy = mock.Mock(spec=tf.distribute.experimental.ParameterServerStrategy)
        with mock.patch.object(tf.distribute, "get_strategy", return_value=strategy):
            with self.assertRaisesRegex(errors.ConfigError,
                                        r"^use_biases, item_neighbours: not supported with the "
                                        r"parameter_server strategy \(.*paper preset sets none"):
                _model(use_biases=True, item_neighbours=2)

    def test_rejects_entity_table_smaller_than_items(self):
        with self.assertRaisesRegex(ValueError, "n_entities"):
            _model(n_items=10, n_entities=5)


def _cross_compressed(model, items):
    v, e = model.item_embedding(items), model.entity_embedding(items)
    for unit in model.cross_units:
        v, e = unit((v, e))
    return v


def _value(model, path):
    return next(v for v in model.trainable_variables if v.path == path).numpy()


if __name__ == "__main__":
    tf.test.main()
