r"""Trains MKR: `python -m mkr_tf.train --dataset=NAME [flags]`.

Hyper-parameter flags left unset take the values of --preset: `recommended` (tuned by
`mkr_tf.tune` on the eval split) for the datasets that have one (book, music and the embedded
synthetic data), else `paper` (the paper's settings for movie, book and music, hand-chosen ones
for the synthetic data and other datasets), or a preset file. Flags override the preset.
Examples:

  python -m mkr_tf.train                                   # synthetic data, no download
  MKR_DATA_DIR=../shared/datasets python -m mkr_tf.train --dataset=book --seed=1
  python -m mkr_tf.train --dataset=music --n_epochs=20 --lr_rs=5e-4 --use_kge=false
  python -m mkr_tf.train --dataset=music --preset=paper        # the paper's settings

With --strategy=multi_worker or parameter_server, every task of the cluster in TF_CONFIG runs
this same command (README, Distributed training); parameter_server's worker and ps tasks only serve.

Each epoch prints one line: rs_loss (cross-entropy plus λ·L2), kge_loss on the epochs with a KGE
pass, AUC and ACC of every split, seconds. kge_loss is negative by design: MKR's KGE task
maximises the score σ(t · t̂) of the KG's true triples, so its loss is −mean σ(t · t̂) + λ·L2,
between −1 and 0 for small λ, and falls toward −1 as the KG is learnt (with --kge_negatives it is
a logistic loss, positive, falling toward 0).
"""

import datetime
import functools
import os

from absl import flags

from mkr_tf import budget
from mkr_tf import cli
from mkr_tf import config as mkr_config
from mkr_tf import data as mkr_data
from mkr_tf import errors
from mkr_tf import lazy
from mkr_tf import runs

# TensorFlow's, imported once a run starts, so that --help answers at once.
distribute = lazy.load("mkr_tf.distribute")
progress = lazy.load("mkr_tf.progress")
mkr_callbacks = lazy.load("mkr_tf.callbacks")
trainer = lazy.load("mkr_tf.trainer")

FLAGS = flags.FLAGS


def _define_flags() -> None:
    cli.define_data_flags()
    cli.define_xla_cache_flag()
    # Every MKRConfig field is a flag, spelled and explained where the field is declared.
    cli.define_config_flags()
    cli.define_preset_flag()
    flags.DEFINE_string("run_dir", None, "Output folder. Default: runs/<dataset>/<timestamp>.")
    flags.DEFINE_boolean("overwrite", False,
                         "Start the run in --run_dir afresh: remove what an earlier mkr_tf.train "
                         "run wrote there (and nothing else).")
    flags.DEFINE_integer("patience", None,
                         "Stop once the eval selection figure (see --select_on) has not improved for "
                         "this many epochs. Default: never.")
    flags.DEFINE_boolean("resume", False,
                         "Continue the killed run in --run_dir from its last checkpoint (a run "
                         "folder with a checkpoint is resumed anyway; this flag insists on one).")
    flags.DEFINE_float("checkpoint_every_seconds", runs.CHECKPOINT_EVERY_SECONDS,
                       "Save a checkpoint after the first epoch that ends this long after the "
                       "previous one, and after the last epoch; 0: after every epoch.")
    flags.DEFINE_boolean("export", True, "Export the best-eval model as a SavedModel for TF "
                         "Serving when training ends.")
    flags.DEFINE_string("export_dir", None,
                        "Where the export's versions go. Default: saved_models/<dataset>.")
    flags.DEFINE_string("logdir", None, "TensorBoard logs. Default: <run_dir>/logs.")
    flags.DEFINE_boolean("quiet", False, "No progress bar: one plain line per epoch, as when "
                         "stdout is not a terminal.")
    flags.DEFINE_integer("topk_every", None,
                         "Top-K on the test split every this many epochs too; 0: never. "
                         "Default: once, for the best epoch's weights, at the end.")
    flags.DEFINE_integer("summary_every_steps", 100,
                         "Step-level TensorBoard scalars every this many steps; 0: none.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors.")
    flags.DEFINE_enum("strategy", "default", list(mkr_config.STRATEGIES),
                      "default: one process. mirrored: this machine's GPUs in sync. "
                      "multi_worker: the machines in TF_CONFIG in sync. parameter_server: "
                      "TF_CONFIG's chief schedules asynchronous steps on its workers, tables "
                      "sharded over its ps tasks.")
    flags.DEFINE_integer("min_shard_bytes", mkr_config.DEFAULT_MIN_SHARD_BYTES,
                         "With --strategy=parameter_server: tables of at least twice this size "
                         "are split into shards of at least this size, one per ps task at most.")


def config_from_flags() -> mkr_config.MKRConfig:
    # XLA-compiled epochs are the default strategy's; asked for, the runner says so.
    overrides = {"jit_compile": False} if FLAGS.strategy != "default" else {}
    return cli.config_from_flags(cli.dataset_name_from_flags(), **overrides)


# Flushed, so that a pipe (CI logs, `tee`) shows each epoch as it ends.
log_line = functools.partial(print, flush=True)


def _main():
    if (FLAGS.strategy == "parameter_server"
            and distribute.task_type() in distribute.SERVER_TASK_TYPES):
        log_line(f"serving as a {distribute.task_type()} task of a parameter_server cluster "
                 f"until stopped")
        distribute.serve_forever()
    if FLAGS.patience is not None and FLAGS.patience < 1:
        raise errors.ConfigError(f"patience must be an integer >= 1, got {FLAGS.patience}")
    runs.check_checkpoint_every_seconds(FLAGS.checkpoint_every_seconds)
    if FLAGS.resume and not FLAGS.run_dir:
        raise errors.ConfigError("--resume needs the --run_dir of the run to continue")
    name = mkr_data.check_dataset_name(cli.dataset_name_from_flags())
    config = config_from_flags()
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", name, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    export_dir = FLAGS.export_dir or os.path.join("saved_models", name)
    finished = None if FLAGS.overwrite else runs.finished_results(
        run_dir, runs.identity(name, config.to_dict()))
    if finished is not None:
        log_line(f"{run_dir}: already finished with these settings (best eval AUC "
                 f"{finished['eval_auc']:.4f} at epoch {finished['best_epoch']}); nothing to do "
                 f"(--overwrite starts it afresh)")
        return
    # Found now rather than after the whole training.
    runs.check_output_folder(run_dir, "--run_dir")
    if FLAGS.export:
        runs.check_output_folder(export_dir, "--export_dir")
    if FLAGS.logdir:
        runs.check_output_folder(FLAGS.logdir, "--logdir")
    # Before any other TensorFlow work: multi_worker and parameter_server set up the runtime.
    strategy = distribute.create_strategy(FLAGS.strategy, FLAGS.min_shard_bytes)
    chief = distribute.is_chief(strategy)
    data_source = cli.data_source_from_flags()
    data = cli.load_data_from_flags(FLAGS.seed, log=log_line)
    log_line("statistics: " + ", ".join(f"{k} {v:,}" for k, v in data.statistics().items()))
    log_line(budget.plan(config, data).describe())
    # Other multi_worker workers train in step with the chief but write nothing.
    console = progress.ProgressCallback(quiet=FLAGS.quiet)
    callbacks = mkr_callbacks.training_callbacks(
        run_dir, logdir=FLAGS.logdir, topk_every=FLAGS.topk_every,
        summary_every_steps=FLAGS.summary_every_steps) if chief else []
    exporter = mkr_callbacks.ExportCallback(export_dir, log_line) if FLAGS.export and chief else None
    if exporter is not None:
        callbacks.append(exporter)
    # The progress callback prints the epoch lines above its bar.
    run = trainer.train(config, data, run_dir, name, log=console.log,
                        callbacks=[*callbacks, console], data_source=data_source,
                        patience=FLAGS.patience, require_checkpoint=FLAGS.resume,
                        strategy=strategy, overwrite=FLAGS.overwrite,
                        checkpoint_every_seconds=FLAGS.checkpoint_every_seconds)
    if exporter is not None:
        # From memory: the trained model with its best weights, and the data it was split from.
        exporter.export(run)


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.train", _main, _define_flags)


if __name__ == "__main__":
    run()
