"""MKR's processed format, written here and nowhere else; `mkr_tf.data` reads it.

    ratings_final.txt   user<TAB>item<TAB>label     (label 1 = positive, 0 = sampled negative)
    kg_final.txt        head<TAB>relation<TAB>tail

Integers, one row a line. Each file is written whole or not at all (`mkr_tf.files`).
"""

import os
import pathlib
from typing import Iterable

import numpy as np
import pandas as pd

from mkr_tf import files

RATINGS_FILE = "ratings_final.txt"
KG_FILE = "kg_final.txt"


def write_table(path: os.PathLike, chunks: Iterable[np.ndarray]) -> int:
    """Writes the integer rows of `chunks`, one after another, to `path`; returns the row count.

    Chunks let a table larger than memory be written piece by piece (`mkr_tf.generate_data`).
    """
    n_rows = 0
    with files.replacing(path) as temporary, open(temporary, "w") as file:
        for chunk in chunks:
            pd.DataFrame(chunk).to_csv(file, sep="\t", header=False, index=False,
                                       lineterminator="\n")
            n_rows += len(chunk)
    return n_rows


def write(directory: os.PathLike, ratings: np.ndarray, kg: np.ndarray) -> None:
    """Writes both processed files of a dataset into `directory`, created if need be."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_table(directory / RATINGS_FILE, [ratings])
    write_table(directory / KG_FILE, [kg])
