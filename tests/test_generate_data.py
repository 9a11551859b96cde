"""Tests of the chunked scale generator, on sizes small enough to check row by row."""

import numpy as np
import tensorflow as tf

from mkr_tf import data as mkr_data
from mkr_tf import generate_data

SPEC = generate_data.ScaleSpec(n_users=500, n_items=300, n_interactions=8000, n_triples=1200,
                            n_genres=10, n_attributes=200, seed=3)


class ScaleDataTest(tf.test.TestCase):

    def test_writes_the_processed_format_with_the_asked_sizes(self):
        folder = generate_data.write(SPEC, self.create_tempdir().full_path, chunk_rows=1000,
                                  log=lambda _: None)
        written = mkr_data.read_int_table(folder / mkr_data.RATINGS_FILE, ("user", "item", "label"))
        self.assertLen(written, SPEC.n_interactions)
        self.assertEqual(int(written[:, 2].sum()), SPEC.n_interactions // 2)
        # Pairs drawn with replacement repeat, as in real logs; the loader keeps each once, and
        # no pair carries both labels (a negative is never one of its user's positives).
        loaded = mkr_data.load_processed(folder, seed=0, log=lambda _: None)
        ratings = np.concatenate([loaded.train, loaded.eval, loaded.test])
        self.assertAllEqual(np.unique(ratings, axis=0), np.unique(written, axis=0))
        self.assertLen(np.unique(ratings[:, :2], axis=0), len(ratings))
        self.assertLen(loaded.kg, SPEC.n_triples)
        self.assertEqual(loaded.n_users, SPEC.n_users)
        self.assertTrue(np.all(np.bincount(ratings[ratings[:, 2] == 1, 0]) >= 1))
        self.assertLess(ratings[:, 1].max(), SPEC.n_items)
        self.assertLess(loaded.kg[:, 2].max(), SPEC.n_entities)
        # Every item states its genre (relation 0, entity n_items + item mod n_genres).
        genre_triples = loaded.kg[loaded.kg[:, 1] == 0]
        self.assertAllEqual(np.sort(genre_triples[:, 0]), np.arange(SPEC.n_items))
        self.assertAllEqual(genre_triples[:, 2], SPEC.n_items + genre_triples[:, 0] % SPEC.n_genres)

    def test_chunks_are_bounded_and_ordered_by_user(self):
        chunks = list(generate_data.rating_chunks(SPEC, chunk_rows=1000))
        self.assertGreater(len(chunks), 4)
        users = np.concatenate([chunk[:, 0] for chunk in chunks])
        self.assertTrue(np.all(np.diff(users) >= 0))
        # A chunk ends at a user boundary after about chunk_rows rows.
        self.assertLess(max(len(chunk) for chunk in chunks), 1000 + 2 * 200)
        self.assertTrue(all(len(chunk) <= 1000 for chunk in generate_data.kg_chunks(SPEC, 1000)))

    def test_positives_favour_the_liked_genre_and_negatives_are_uniform(self):
        ratings = np.concatenate(list(generate_data.rating_chunks(SPEC, chunk_rows=1000)))
        positives = ratings[ratings[:, 2] == 1]
        genres = positives[:, 1] % SPEC.n_genres
        top_genre = np.array([np.bincount(genres[positives[:, 0] == user], minlength=SPEC.n_genres)
                              .argmax() for user in range(SPEC.n_users)])
        self.assertGreater(np.mean(genres == top_genre[positives[:, 0]]), 0.7)
        negative_genres = ratings[ratings[:, 2] == 0, 1] % SPEC.n_genres
        shares = np.bincount(negative_genres, minlength=SPEC.n_genres) / len(negative_genres)
        self.assertAllInRange(shares, 0.07, 0.13)

    def test_same_arguments_same_data_and_bad_sizes_refused(self):
        first = np.concatenate(list(generate_data.rating_chunks(SPEC, chunk_rows=1000)))
        second = np.concatenate(list(generate_data.rating_chunks(SPEC, chunk_rows=1000)))
        self.assertAllEqual(first, second)
        for sizes, message in ((dict(n_interactions=999), "even"),
                               (dict(n_users=5000), "at least 2·users"),
                               (dict(n_triples=10), "at least items")):
            with self.assertRaisesRegex(ValueError, message):
                generate_data.ScaleSpec(**{**SPEC.__dict__, **sizes})


if __name__ == "__main__":
    tf.test.main()
