"""Prepares one dataset in MKR's processed format and prints its statistics.

Examples:
  python -m data_prep --dataset=music --data_dir=../shared/datasets
  python -m data_prep --dataset=movie                  # downloads what is missing
  python -m data_prep --dataset=recbole --recbole_path=~/recbole/ml-1m --rating_threshold=4

A dataset folder `<data_dir>/<dataset>/` that already holds the processed files
(ratings_final.txt, kg_final.txt), as book does under ../shared/datasets, needs no preparing:
the command says so and prints the statistics that mkr_tf.train will see.

Exit status: 0 on success, 2 on bad or missing input (one line on stderr), 1 on bad flags.
--nodownload never downloads: when raw files are missing, it fails and says which files to
place where.
"""

import pathlib

from absl import flags

import data_prep
from mkr_tf import cli
from mkr_tf import data as mkr_data

FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_enum(
        "dataset", None, [*data_prep.RAW_DATASETS, "recbole"],
        "Dataset to prepare: the paper's movie (MovieLens-1M), book (Book-Crossing), music "
        "(Last.FM), or RecBole atomic files given by --recbole_path.", required=True)
    # The same folders, preparing options and download switch as mkr_tf.train's.
    cli.define_folder_flags()
    flags.DEFINE_integer("seed", 0, "Seed of the negative sampling.", lower_bound=0)
    cli.define_recbole_flags()
    cli.define_download_flag()


def _main():
    data_dir, cache_dir = cli.folders_from_flags()
    folder = pathlib.Path(data_dir) / FLAGS.dataset
    if (FLAGS.dataset != "recbole" and (folder / mkr_data.RATINGS_FILE).is_file()
            and (folder / mkr_data.KG_FILE).is_file()):
        # mkr_tf.data.load_dataset reads such a folder as it is, so there is nothing to convert.
        print(f"{folder} already holds processed files ({mkr_data.RATINGS_FILE}, "
              f"{mkr_data.KG_FILE}); nothing to prepare, mkr_tf.train reads them as they are")
        statistics = mkr_data.load_processed(folder, FLAGS.seed, log=print).statistics()
        print(data_prep.format_statistics({"dataset": FLAGS.dataset, "statistics": statistics}))
        return
    output = data_prep.prepare(
        FLAGS.dataset, data_dir, cache_dir, FLAGS.seed, recbole_path=FLAGS.recbole_path,
        rating_threshold=FLAGS.rating_threshold, download=FLAGS.download)
    print(data_prep.format_statistics(data_prep.read_meta(output)))
    print(f"processed files: {output}")


def run():
    """Console-script entry point."""
    cli.run("data_prep", _main, _define_flags)


if __name__ == "__main__":
    run()
