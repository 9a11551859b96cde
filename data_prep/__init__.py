"""Turns raw recommendation datasets into MKR's processed format.

The processed format is what the trainer reads: a directory holding
    ratings_final.txt   user<TAB>item<TAB>label     (label 1 = positive, 0 = sampled negative)
    kg_final.txt        head<TAB>relation<TAB>tail
    meta.json           counts, seed, input checksums, warning counts and the raw item and
                        entity id of every item
where entity i is item i for every item i.

Sources: the MKR paper's three datasets (MovieLens-1M, Book-Crossing, Last.FM, each with the
authors' knowledge graph) and RecBole atomic files. Entry point: `prepare`; command line:
`python -m data_prep --dataset=...`.
"""


# Bad or missing input data: one line naming the file, line and value at fault, or listing which
# files to place where when they are missing and cannot be downloaded. The submodules import it
# from here.
from mkr_tf.errors import DataError
from data_prep.pipeline import RAW_DATASETS, format_statistics, prepare, read_meta  # noqa: E402

__all__ = ["DataError", "RAW_DATASETS", "format_statistics", "prepare", "read_meta"]
