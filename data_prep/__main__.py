"""Prepares one dataset in MKR's processed format and prints its statistics.

Examples:
  python -m data_prep --dataset=music --data_dir=../shared/datasets
  python -m data_prep --dataset=movie                  # downloads what is missing
  python -m data_prep --dataset=recbole --recbole_path=~/recbole/ml-1m --rating_threshold=4

A dataset folder `<data_dir>/<dataset>/` that already holds the processed files
(ratings_final.txt, kg_final.txt), as book does under ../shared/datasets, needs no preparing:
the command says so and prints the statistics that mkr_tf.train will see.

Exit status: 0 on success, 2 on bad or missing input (one line on stderr), 1 on bad flags.
"""

import os
import pathlib

from absl import flags

import data_prep
from mkr_tf import cli
from mkr_tf import data as mkr_data

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


def _main():
    folder = pathlib.Path(_DATA_DIR.value).expanduser() / _DATASET.value
    if (_DATASET.value != "recbole" and (folder / mkr_data.RATINGS_FILE).is_file()
            and (folder / mkr_data.KG_FILE).is_file()):
        # mkr_tf.data.load_dataset reads such a folder as it is, so there is nothing to convert.
        print(f"{folder} already holds processed files ({mkr_data.RATINGS_FILE}, "
              f"{mkr_data.KG_FILE}); nothing to prepare, mkr_tf.train reads them as they are")
        statistics = mkr_data.load_processed(folder, _SEED.value, log=print).statistics()
        print(data_prep.format_statistics({"dataset": _DATASET.value, "statistics": statistics}))
        return
    try:
        output = data_prep.prepare(
            _DATASET.value, _DATA_DIR.value, _CACHE_DIR.value, _SEED.value,
            recbole_path=_RECBOLE_PATH.value, rating_threshold=_RATING_THRESHOLD.value,
            download=not _NO_DOWNLOAD.value)
    except data_prep.DataError as error:
        # Messages listing files to place where span lines; the contract is one line.
        raise data_prep.DataError(str(error).replace("\n", " ")) from None
    print(data_prep.format_statistics(data_prep.read_meta(output)))
    print(f"processed files: {output}")


def run():
    """Console-script entry point."""
    flags.mark_flag_as_required("dataset")
    cli.run("data_prep", _main, user_errors=(data_prep.DataError,))


if __name__ == "__main__":
    run()
