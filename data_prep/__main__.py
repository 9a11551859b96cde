"""Prepares one dataset in MKR's processed format and prints its statistics.

Examples:
  python -m data_prep --dataset=music --data_dir=/work/shared/datasets
  python -m data_prep --dataset=movie                  # downloads what is missing
  python -m data_prep --dataset=recbole --recbole_path=~/recbole/ml-1m --rating_threshold=4

Exit status: 0 on success, 2 on bad or missing input (one line on stderr), 1 on bad flags.
"""

import os
import sys

from absl import app
from absl import flags

import data_prep

_DATASET = flags.DEFINE_enum(
    "dataset", None, [*data_prep.RAW_DATASETS, "recbole"],
    "Dataset to prepare: the paper's movie (MovieLens-1M), book (Book-Crossing), music "
    "(Last.FM), or RecBole atomic files given by --recbole_path.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.environ.get("MKR_DATA_DIR", "~/.mkr_tf/data"),
    "Folder of the raw datasets, one subfolder per dataset; only read. Default: $MKR_DATA_DIR "
    "when set, else ~/.mkr_tf/data.")
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", "~/.mkr_tf/cache", "Where processed datasets and downloads are kept.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the negative sampling.", lower_bound=0)
_RECBOLE_PATH = flags.DEFINE_string(
    "recbole_path", None,
    "DIR/NAME of RecBole atomic files NAME.inter, NAME.kg and NAME.link (in DIR/NAME/ or DIR/).")
_RATING_THRESHOLD = flags.DEFINE_float(
    "rating_threshold", None,
    "Ratings at or above it are positives. Default: 4 for movie, every rating for book, music "
    "and RecBole.")
_NO_DOWNLOAD = flags.DEFINE_bool(
    "no_download", False,
    "Never download: when raw files are missing, fail and say which files to place where.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        output = data_prep.prepare(
            _DATASET.value, _DATA_DIR.value, _CACHE_DIR.value, _SEED.value,
            recbole_path=_RECBOLE_PATH.value, rating_threshold=_RATING_THRESHOLD.value,
            download=not _NO_DOWNLOAD.value)
    except data_prep.DataError as error:
        print(f"data_prep: error: {str(error).replace(chr(10), ' ')}", file=sys.stderr)
        return 2
    print(data_prep.format_statistics(data_prep.read_meta(output)))
    print(f"processed files: {output}")
    return 0


def run():
    """Console-script entry point."""
    flags.mark_flag_as_required("dataset")
    app.run(main)


if __name__ == "__main__":
    run()
