"""Times data_prep.prepare on a MovieLens-1M-sized input, end to end.

Writes synthetic raw files shaped like MovieLens-1M (1,000,209 ratings of 3,706 movies by 6,040
users, skewed popularity and activity, ratings 1-5) with a 20k-triple KG in a temporary
folder, then times preparation from reading to the written cache, and a second, cached run.
The bar for this machine is 10 s.

  python benchmarks/prep_speed.py [--seed=N]
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import data_prep  # noqa: E402  (importable without installing the project)

N_USERS, N_ITEMS, N_RATINGS, N_TRIPLES = 6_040, 3_706, 1_000_209, 20_000


def write_movielens_like(folder: pathlib.Path, rng: np.random.Generator) -> None:
    """Writes ratings.dat, item_index2entity_id.txt and kg.txt into folder/movie/."""
    movie = folder / "movie"
    movie.mkdir(parents=True)
    movie_ids = np.sort(rng.choice(np.arange(1, 3_953), N_ITEMS, replace=False))
    # Zipf-like item popularity and user activity, as in MovieLens; one rating per pair.
    item_weights = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    user_weights = 1.0 / np.arange(1, N_USERS + 1) ** 0.5
    pairs = np.unique(
        rng.choice(N_USERS, 2 * N_RATINGS, p=user_weights / user_weights.sum()) * N_ITEMS
        + rng.choice(N_ITEMS, 2 * N_RATINGS, p=item_weights / item_weights.sum()))
    pairs = rng.permutation(pairs)[:N_RATINGS]
    ratings = pd.DataFrame({
        "user": pairs // N_ITEMS + 1, "item": movie_ids[pairs % N_ITEMS],
        "rating": rng.choice(5, len(pairs), p=[0.06, 0.11, 0.26, 0.35, 0.22]) + 1,
        "time": rng.integers(956_703_932, 1_046_454_590, len(pairs))})
    text = ratings.to_csv(sep="\t", header=False, index=False, lineterminator="\n")
    (movie / "ratings.dat").write_text(text.replace("\t", "::"))

    (movie / "item_index2entity_id.txt").write_text(
        "".join(f"{movie_id}\t{index}\n" for index, movie_id in enumerate(movie_ids)))
    heads = rng.integers(0, N_ITEMS, N_TRIPLES)
    tails = N_ITEMS + rng.integers(0, 4_000, N_TRIPLES)
    relations = rng.integers(0, 7, N_TRIPLES)
    (movie / "kg.txt").write_text("".join(
        f"{head}\tfilm.film.relation{relation}\t{tail}\n"
        for head, relation, tail in zip(heads, relations, tails)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        started = time.perf_counter()
        write_movielens_like(folder / "data", np.random.default_rng(args.seed))
        print(f"generated {N_RATINGS:,} ratings in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        output = data_prep.prepare("movie", folder / "data", folder / "cache", args.seed,
                                   download=False, log=lambda message: None)
        first = time.perf_counter() - started
        started = time.perf_counter()
        data_prep.prepare("movie", folder / "data", folder / "cache", args.seed,
                          download=False, log=lambda message: None)
        cached = time.perf_counter() - started

        print(data_prep.format_statistics(data_prep.read_meta(output)))
        print(f"prepare, end to end: {first:.2f} s (bar: 10 s)")
        print(f"prepare, cached:     {cached:.2f} s")


if __name__ == "__main__":
    main()
