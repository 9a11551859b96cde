"""The embedded default dataset: synthetic users, items and a KG with a planted signal.

Every item has a genre, a director (who works in one genre), two actors and a country.
Each user likes two genres and a few directors in them, and picks items with probability
proportional to popularity × exp(genre_affinity · [genre liked] + director_affinity ·
[director liked]). Actors and country carry no signal. Popularity is long-tailed, so many items have
few ratings: their genre and director are visible only through the KG, which is what MKR's
KGE task lets the recommender use. Negatives follow the paper: one never-rated item per
positive, per user.
"""

import dataclasses

import numpy as np

RELATIONS = ("genre", "director", "actor", "country")


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    n_users: int = 3000
    n_items: int = 3000
    n_genres: int = 24
    n_directors: int = 400
    n_actors: int = 1200
    n_countries: int = 12
    mean_positives: float = 12.0
    genre_affinity: float = 2.5
    director_affinity: float = 2.0
    popularity_exponent: float = 0.6


def generate(seed: int = 0, spec: SyntheticSpec = SyntheticSpec()) -> tuple[np.ndarray, np.ndarray]:
    """Returns (ratings [n, 3] user item label, kg [m, 3] head relation tail), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    items = np.arange(spec.n_items)

    director_genre = rng.integers(spec.n_genres, size=spec.n_directors)
    item_director = rng.integers(spec.n_directors, size=spec.n_items)
    item_genre = director_genre[item_director]
    item_actors = rng.integers(spec.n_actors, size=(spec.n_items, 2))
    item_country = rng.integers(spec.n_countries, size=spec.n_items)

    first_genre = spec.n_items
    first_director = first_genre + spec.n_genres
    first_actor = first_director + spec.n_directors
    first_country = first_actor + spec.n_actors
    genre_rel, director_rel, actor_rel, country_rel = range(len(RELATIONS))
    kg = np.concatenate([
        np.stack([items, np.full_like(items, genre_rel), first_genre + item_genre], axis=1),
        np.stack([items, np.full_like(items, director_rel), first_director + item_director], axis=1),
        np.stack([items, np.full_like(items, actor_rel), first_actor + item_actors[:, 0]], axis=1),
        np.stack([items, np.full_like(items, actor_rel), first_actor + item_actors[:, 1]], axis=1),
        np.stack([items, np.full_like(items, country_rel), first_country + item_country], axis=1),
    ])
    kg = np.unique(kg, axis=0)

    liked_genres = np.stack([rng.choice(spec.n_genres, size=2, replace=False)
                             for _ in range(spec.n_users)])
    likes_genre = np.zeros((spec.n_users, spec.n_genres), dtype=bool)
    np.put_along_axis(likes_genre, liked_genres, True, axis=1)
    # A user likes each director of a liked genre with probability 1/4.
    likes_director = likes_genre[:, director_genre] & (rng.random((spec.n_users, spec.n_directors)) < 0.25)

    popularity = 1.0 / (1.0 + rng.permutation(spec.n_items)) ** spec.popularity_exponent
    log_weight = (np.log(popularity)[None, :]
                  + spec.genre_affinity * likes_genre[:, item_genre]
                  + spec.director_affinity * likes_director[:, item_director])
    n_positives = np.minimum(3 + rng.poisson(spec.mean_positives - 3, size=spec.n_users),
                             spec.n_items // 2)
    # Gumbel top-k: the first n_positives items by log_weight + Gumbel noise are a weighted
    # sample without replacement.
    positive = _first_k_per_row(np.argsort(-(log_weight + rng.gumbel(size=log_weight.shape)), axis=1),
                                n_positives)
    # Random keys in [0, 1) for never-rated items and [1, 2) for rated ones: a uniform sample of
    # never-rated items comes first.
    negative = _first_k_per_row(np.argsort(rng.random(log_weight.shape) + positive, axis=1),
                                n_positives)
    rows = []
    for label, chosen in ((1, positive), (0, negative)):
        users, chosen_items = np.nonzero(chosen)
        rows.append(np.stack([users, chosen_items, np.full_like(users, label)], axis=1))
    ratings = np.concatenate(rows)
    return ratings[np.lexsort((ratings[:, 1], ratings[:, 0]))].astype(np.int64), kg.astype(np.int64)


def _first_k_per_row(order: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Boolean mask of the first k[r] columns of order[r] in each row r."""
    mask = np.zeros(order.shape, dtype=bool)
    np.put_along_axis(mask, order, np.arange(order.shape[1])[None, :] < k[:, None], axis=1)
    return mask
