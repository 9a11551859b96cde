r"""Synthetic datasets of any size in MKR's processed format, generated and written in chunks.

  python -m mkr_tf.generate_data --output_dir=data/scale20m --users=1000000 --items=100000 \
      --interactions=20000000 --triples=2000000
  MKR_DATA_DIR=data python -m mkr_tf.train --dataset=scale20m --batch_size=4096

writes `<output_dir>/ratings_final.txt` and `kg_final.txt`. Memory stays bounded whatever the
totals: O(users) for the per-user counts and tastes, plus one chunk of rows (`--chunk_rows`,
1M rows by default, about 100 MB with its text) at a time; each file is written chunk by chunk
and appears whole or not at all.

The data carries a planted signal, like `mkr_tf.synthetic`'s: item i has genre i mod n_genres,
stated by the KG, and each user likes one genre. A positive is an item of the liked genre with
probability `genre_affinity`, else any item; both draws favour low item ids (popular items),
and user activity is long-tailed. Each positive comes with one uniformly drawn negative (label
0) that is none of the user's positives, as the paper samples negatives. Pairs are drawn with replacement, so at these sizes a few
pairs repeat, as in real logs. The KG gives every item its genre and spreads the remaining
triples over the items round-robin: attribute relations (actor, director, ...) to attribute
entities, half of them shared within a genre. The output is a function of the arguments.
"""

import dataclasses
import os
import pathlib
import time
from typing import Callable, Iterator

from absl import flags
import numpy as np

from data_prep import processed
from mkr_tf import cli
from mkr_tf import data as mkr_data
from mkr_tf import errors
from mkr_tf import negatives as negatives_lib

FLAGS = flags.FLAGS
DEFAULT_CHUNK_ROWS = 1_000_000


@dataclasses.dataclass(frozen=True)
class ScaleSpec:
    """Sizes and signal of a generated dataset; entity ids are items, genres, then attributes."""
    n_users: int = 1_000_000
    n_items: int = 100_000
    n_interactions: int = 20_000_000
    n_triples: int = 2_000_000
    n_genres: int = 100
    n_attributes: int = 50_000
    n_relations: int = 4  # the genre relation and attribute relations
    genre_affinity: float = 0.8
    # Item ids are drawn as floor(n · u^popularity_skew), u uniform: 1 is uniform, more favours
    # low ids.
    popularity_skew: float = 2.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n_users", "n_items", "n_interactions", "n_triples", "n_genres",
                     "n_attributes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise errors.ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.n_interactions % 2 or self.n_interactions < 2 * self.n_users:
            raise errors.ConfigError(
                f"interactions must be even and at least 2·users ({2 * self.n_users:,}): each "
                f"user has a positive or more, each positive a negative; "
                f"got {self.n_interactions:,}")
        if self.n_triples < self.n_items:
            raise errors.ConfigError(f"triples must be at least items ({self.n_items:,}): every item "
                             f"states its genre; got {self.n_triples:,}")
        if not self.n_genres <= self.n_items:
            raise errors.ConfigError(f"n_genres ({self.n_genres}) must not exceed n_items ({self.n_items})")
        if self.n_relations < 2:
            raise errors.ConfigError(f"n_relations must be >= 2 (genre and an attribute), "
                             f"got {self.n_relations}")
        if not 0 <= self.genre_affinity <= 1 or self.popularity_skew < 1:
            raise errors.ConfigError("genre_affinity must be in [0, 1] and popularity_skew >= 1")

    @property
    def n_entities(self) -> int:
        return self.n_items + self.n_genres + self.n_attributes


def _skewed(rng: np.random.Generator, size: int, n, skew: float) -> np.ndarray:
    """Indices in [0, n) (n a number or one per index), low ones more likely: floor(n · u^skew)."""
    return np.minimum((n * rng.random(size) ** skew).astype(np.int64), n - 1)


def rating_chunks(spec: ScaleSpec, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The ratings [n, 3] (user, item, label) in chunks of about `chunk_rows` rows, by user."""
    rng = np.random.default_rng((spec.seed, 0))
    liked_genre = rng.integers(spec.n_genres, size=spec.n_users)
    # Long-tailed activity: one positive each, the rest shared in proportion to log-normal weights.
    activity = rng.lognormal(sigma=1.0, size=spec.n_users)
    positives = 1 + rng.multinomial(spec.n_interactions // 2 - spec.n_users,
                                    activity / activity.sum())
    # Users [bounds[k], bounds[k + 1]) make chunk k: about chunk_rows / 2 positives (more only
    # when one user alone has more), and as many negatives.
    ends = np.cumsum(positives)
    targets = np.arange(chunk_rows // 2, ends[-1], chunk_rows // 2)
    bounds = np.unique(np.concatenate([[0], np.searchsorted(ends, targets, side="right"),
                                       [spec.n_users]]))
    for chunk_index, (first, last) in enumerate(zip(bounds[:-1], bounds[1:])):
        yield _user_ratings(spec, np.random.default_rng((spec.seed, 1, chunk_index)),
                            np.arange(first, last), positives[first:last], liked_genre[first:last])


def _user_ratings(spec, rng, users, positives, liked_genre) -> np.ndarray:
    """Each of `users`' positives, then as many negatives, ordered by user."""
    users = np.repeat(users, positives)
    genres = np.repeat(liked_genre, positives)
    # Item g + n_genres·k has genre g; genre g has ceil((n_items − g) / n_genres) items.
    genre_sizes = (spec.n_items - genres + spec.n_genres - 1) // spec.n_genres
    in_genre = genres + spec.n_genres * _skewed(rng, len(users), genre_sizes, spec.popularity_skew)
    anywhere = _skewed(rng, len(users), spec.n_items, spec.popularity_skew)
    liked = np.where(rng.random(len(users)) < spec.genre_affinity, in_genre, anywhere)
    # A negative is no positive of its user, or the pair would carry two labels.
    negatives, _ = negatives_lib.draw_unliked(
        users, np.stack([users, liked], axis=1), spec.n_items, rng)
    rows = np.concatenate([
        np.stack([users, liked, np.ones_like(users)], axis=1),
        np.stack([users, negatives, np.zeros_like(users)], axis=1)])
    return rows[np.argsort(rows[:, 0], kind="stable")]


def kg_chunks(spec: ScaleSpec, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The KG [m, 3] (head, relation, tail) in chunks of `chunk_rows` triples.

    Triple t has head t mod n_items; the first n_items are the genre triples (relation 0), the
    rest cycle through the attribute relations.
    """
    first_genre = spec.n_items
    first_attribute = first_genre + spec.n_genres
    per_genre = max(1, spec.n_attributes // spec.n_genres)
    for chunk_index, start in enumerate(range(0, spec.n_triples, chunk_rows)):
        rng = np.random.default_rng((spec.seed, 3, chunk_index))
        triple = np.arange(start, min(start + chunk_rows, spec.n_triples), dtype=np.int64)
        heads = triple % spec.n_items
        genres = heads % spec.n_genres
        round_ = triple // spec.n_items
        relations = np.where(round_ == 0, 0, 1 + (round_ - 1) % (spec.n_relations - 1))
        shared = first_attribute + np.minimum(
            genres * per_genre + rng.integers(per_genre, size=len(triple)), spec.n_attributes - 1)
        anywhere = first_attribute + rng.integers(spec.n_attributes, size=len(triple))
        attributes = np.where(rng.random(len(triple)) < 0.5, shared, anywhere)
        tails = np.where(round_ == 0, first_genre + genres, attributes)
        yield np.stack([heads, relations, tails], axis=1)


def write(spec: ScaleSpec, output_dir: os.PathLike, chunk_rows: int = DEFAULT_CHUNK_ROWS,
          log: Callable[[str], None] = print) -> pathlib.Path:
    """Writes `spec`'s ratings_final.txt and kg_final.txt into `output_dir`; returns it."""
    if chunk_rows < 2:
        raise errors.ConfigError(f"chunk_rows must be an integer >= 2, got {chunk_rows}")
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, chunks in ((mkr_data.RATINGS_FILE, rating_chunks(spec, chunk_rows)),
                         (mkr_data.KG_FILE, kg_chunks(spec, chunk_rows))):
        start = time.perf_counter()
        n_rows = processed.write_table(output_dir / name, chunks)
        log(f"wrote {output_dir / name}: {n_rows:,} rows in {time.perf_counter() - start:.1f}s")
    return output_dir


def _define_flags() -> None:
    # Defined on demand, not at import: benchmarks import this module and define their own.
    defaults = ScaleSpec()
    flags.DEFINE_string("output_dir", None, "Folder for ratings_final.txt and kg_final.txt.",
                        required=True)
    flags.DEFINE_integer("users", defaults.n_users, "Users.")
    flags.DEFINE_integer("items", defaults.n_items, "Items (also the first entities).")
    flags.DEFINE_integer("interactions", defaults.n_interactions,
                         "Rating rows, half positive and half negative: even, >= 2·users.")
    flags.DEFINE_integer("triples", defaults.n_triples, "KG triples, >= items.")
    flags.DEFINE_integer("seed", defaults.seed, "Seeds everything drawn.")
    flags.DEFINE_integer("chunk_rows", DEFAULT_CHUNK_ROWS,
                         "Rows generated and written at a time; bounds the memory used.")


def _main():
    spec = ScaleSpec(n_users=FLAGS.users, n_items=FLAGS.items, n_interactions=FLAGS.interactions,
                     n_triples=FLAGS.triples, seed=FLAGS.seed)
    write(spec, FLAGS.output_dir, FLAGS.chunk_rows)


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.generate_data", _main, _define_flags)


if __name__ == "__main__":
    run()
