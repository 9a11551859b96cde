r"""Trains MKR: `python -m mkr_tf.train --dataset=NAME [flags]`.

Hyper-parameter flags left unset take the values of --preset: `recommended` (tuned by
`mkr_tf.tune` on the eval split) for the datasets that have one, else `paper` (the paper's settings
for movie, book and music, tuned ones for the embedded synthetic data), or a preset file. Flags
override the preset. Examples:

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
from mkr_tf import lazy
from mkr_tf import run_folder

# TensorFlow's, imported once a run starts, so that --help answers at once.
distribute = lazy.load("mkr_tf.distribute")
export = lazy.load("mkr_tf.export")
progress = lazy.load("mkr_tf.progress")
summaries = lazy.load("mkr_tf.summaries")
trainer = lazy.load("mkr_tf.trainer")

FLAGS = flags.FLAGS

cli.define_data_flags()
flags.DEFINE_string("run_dir", None, "Output folder. Default: runs/<dataset>/<timestamp>.")
flags.DEFINE_boolean("overwrite", False,
                     "Start the run in --run_dir afresh: remove what an earlier mkr_tf.train run "
                     "wrote there (and nothing else).")
flags.DEFINE_integer("seed", 0, "Seeds the split, the negatives' shuffles and the initialisation.")


def _with_presets(name: str, meaning: str) -> str:
    """`meaning`, then the value the paper preset gives the hyper-parameter `name`."""
    paper = dict(mkr_config.PAPER_SETTINGS, synthetic=mkr_config.SYNTHETIC_SETTINGS)
    values = ", ".join(f"{dataset} {settings[name]:g}" for dataset, settings in paper.items())
    return f"{meaning} Default: --preset's (paper: {values}; other datasets: synthetic's)."


flags.DEFINE_string("preset", None,
                    "Where unset hyper-parameters come from: paper, recommended (tuned by "
                    "mkr_tf.tune; book and music have one) or a preset file's path. Default: "
                    "recommended where the dataset has one, else paper.")


# The hyper-parameters that each dataset's preset sets, with their meaning.
_HYPERPARAMETERS = {
    "n_epochs": "Epochs.",
    "dim": "Embedding size d.",
    "L": "Low layers: cross&compress units and tower layers.",
    "H": "High layers: the KGE head's (and with --use_inner_product=false the RS head's) depth.",
    "batch_size": "Batch size of both tasks.",
    "l2_weight": "Weight λ of the L2 terms.",
    "lr_rs": "Adam learning rate of the RS task.",
    "lr_kge": "Adam learning rate of the KGE task (its loss, −mean σ(t · t̂) + λ·L2, is negative).",
    "kge_interval": "Run the KGE pass every this many epochs.",
}
for _name, _meaning in _HYPERPARAMETERS.items():
    _define = (flags.DEFINE_float if isinstance(mkr_config.SYNTHETIC_SETTINGS[_name], float)
               else flags.DEFINE_integer)
    _define(_name, None, _with_presets(_name, _meaning))
flags.DEFINE_boolean("use_kge", True, "Train the KGE task; false trains the RS task alone.")
# Options beyond the paper whose unset value leaves the preset's in force.
_OPTIONS = {
    "init_scale": (flags.DEFINE_float, "> 0 initialises every embedding row N(0, init_scale²) "
                   "instead of the authors' Glorot-uniform, whose rows are tiny in large tables."),
    "rs_negatives": (flags.DEFINE_integer, "> 0 draws this many fresh negatives per training "
                     "positive every epoch, instead of the one fixed negative of the prepared data."),
    "use_biases": (flags.DEFINE_boolean, "User and item bias terms in the RS logit."),
    "residual": (flags.DEFINE_boolean, "Residual cross&compress: each unit adds its input to "
                 "its output."),
    "tie_item_entity": (flags.DEFINE_boolean, "One table for items and their KG entities."),
    "rs_loss": (lambda name, default, help_text: flags.DEFINE_enum(
        name, default, list(mkr_config.RS_LOSSES), help_text),
                "pointwise: the paper's cross-entropy of every row; softmax: each positive "
                "against the whole catalogue."),
    "kge_negatives": (flags.DEFINE_integer, "> 0: a logistic KGE loss against this many "
                      "corrupted tails per triple, instead of the paper's −σ(t · t̂)."),
    "history_length": (flags.DEFINE_integer, "> 0: the user tower also reads the mean vector "
                       "of up to this many of the user's training items (SVD++)."),
    "select_on": (lambda name, default, help_text: flags.DEFINE_enum(
        name, default, list(mkr_config.SELECTIONS), help_text),
                  "The epoch whose weights are kept and reported: best eval AUC, or best eval "
                  "AUC + eval NDCG@10 (top-K over the catalogue on the eval split each epoch)."),
}
for _name, (_define, _meaning) in _OPTIONS.items():
    _define(_name, None, f"Beyond the paper: {_meaning} Default: --preset's (paper: off).")
flags.DEFINE_boolean("use_inner_product", True, "RS head: inner product (true) or an MLP on [u; v].")
flags.DEFINE_enum("cross_unit", "cross_compress", list(mkr_config.CROSS_UNITS),
                  "How items and entities share features: cross_compress (MKR), or the paper's "
                  "ablations dcn (MKR-DCN) and stitch (MKR-stitch).")
flags.DEFINE_float("train_ratio", 1.0,
                   "Train on this seeded share of the training split (the paper's sparsity "
                   "experiment); eval and test stay whole.")
flags.DEFINE_float("cold_items", 0.0,
                   "Cold-item protocol: move every training row of this seeded share of the items "
                   "to eval and test (the KG keeps their triples); results add test_cold_auc.")
flags.DEFINE_enum("optimizer", "lazy_adam", list(mkr_config.OPTIMIZERS),
                  "lazy_adam updates only the embedding rows a batch touches; adam is standard Adam.")
flags.DEFINE_boolean("jit_compile", None,
                     "Compile the training steps with XLA: faster steps on long epochs of small "
                     "batches, seconds of compilation per run. Default: on for "
                     f"{', '.join(mkr_config.XLA_DATASETS)}, where it wins (README, Speed).")
flags.DEFINE_integer("patience", None,
                     "Stop once eval AUC has not improved for this many epochs. Default: never.")
flags.DEFINE_boolean("resume", False,
                     "Continue the killed run in --run_dir from its last checkpoint (a run folder "
                     "with a checkpoint is resumed anyway; this flag insists on one).")
flags.DEFINE_boolean("export", True,
                     "Export the best-eval model as a SavedModel for TF Serving when training ends.")
flags.DEFINE_string("export_dir", None,
                    "Where the export's versions go. Default: saved_models/<dataset>.")
flags.DEFINE_string("logdir", None, "TensorBoard logs. Default: <run_dir>/logs.")
flags.DEFINE_boolean("quiet", False,
                     "No progress bar: one plain line per epoch, as when stdout is not a terminal.")
flags.DEFINE_integer("topk_every", 1, "Top-K on the test split every this many epochs; 0: never.")
flags.DEFINE_integer("summary_every_steps", 100,
                     "Step-level TensorBoard scalars every this many steps; 0: none.")
flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors.")
flags.DEFINE_enum("strategy", "default", list(mkr_config.STRATEGIES),
                  "default: one process. mirrored: this machine's GPUs in sync. multi_worker: "
                  "the machines in TF_CONFIG in sync. parameter_server: TF_CONFIG's chief "
                  "schedules asynchronous steps on its workers, tables sharded over its ps tasks.")
flags.DEFINE_integer("min_shard_bytes", mkr_config.DEFAULT_MIN_SHARD_BYTES,
                     "With --strategy=parameter_server: tables of at least twice this size are "
                     "split into shards of at least this size, one per ps task at most.")

# Flags whose unset value (None) leaves the dataset's preset in force.
HYPERPARAMETER_FLAGS = (*_HYPERPARAMETERS, *_OPTIONS, "jit_compile")


def config_from_flags() -> mkr_config.MKRConfig:
    overrides = {name: FLAGS[name].value for name in HYPERPARAMETER_FLAGS
                 if FLAGS[name].value is not None}
    if FLAGS.strategy != "default":
        # XLA-compiled steps are the default strategy's; asked for, the runner says so.
        overrides.setdefault("jit_compile", False)
    return mkr_config.MKRConfig.for_dataset(
        cli.dataset_name_from_flags(), preset=FLAGS.preset, seed=FLAGS.seed,
        use_kge=FLAGS.use_kge, use_inner_product=FLAGS.use_inner_product,
        optimizer=FLAGS.optimizer, cross_unit=FLAGS.cross_unit, train_ratio=FLAGS.train_ratio,
        cold_items=FLAGS.cold_items, **overrides)


# Flushed, so that a pipe (CI logs, `tee`) shows each epoch as it ends.
log_line = functools.partial(print, flush=True)


def _keep_for_export():
    """A callback that keeps the trained model (with the best weights, at the end) and its data,
    so that the export needs no reload of the run. Built on demand: `trainer` loads TensorFlow."""

    class KeepForExport(trainer.TrainingCallback):
        def __init__(self):
            self.model = self.data = None

        def on_train_begin(self, model, config, data, run_dir) -> None:
            self.data = data

        def on_train_end(self, results, model) -> None:
            self.model = model

    return KeepForExport()


def _main():
    if (FLAGS.strategy == "parameter_server"
            and distribute.task_type() in distribute.SERVER_TASK_TYPES):
        log_line(f"serving as a {distribute.task_type()} task of a parameter_server cluster "
                 f"until stopped")
        distribute.serve_forever()
    if FLAGS.patience is not None and FLAGS.patience < 1:
        raise ValueError(f"patience must be an integer >= 1, got {FLAGS.patience}")
    if FLAGS.resume and not FLAGS.run_dir:
        raise ValueError("--resume needs the --run_dir of the run to continue")
    name = mkr_data.check_dataset_name(cli.dataset_name_from_flags())
    config = config_from_flags()
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", name, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    export_dir = FLAGS.export_dir or os.path.join("saved_models", name)
    finished = None if FLAGS.overwrite else run_folder.finished_results(
        run_dir, run_folder.identity(name, config.to_dict()))
    if finished is not None:
        log_line(f"{run_dir}: already finished with these settings (best eval AUC "
                 f"{finished['eval_auc']:.4f} at epoch {finished['best_epoch']}); nothing to do "
                 f"(--overwrite starts it afresh)")
        return
    # Found now rather than after the whole training.
    run_folder.check_output_folder(run_dir, "--run_dir")
    if FLAGS.export:
        run_folder.check_output_folder(export_dir, "--export_dir")
    if FLAGS.logdir:
        run_folder.check_output_folder(FLAGS.logdir, "--logdir")
    # Before any other TensorFlow work: multi_worker and parameter_server set up the runtime.
    strategy = distribute.create_strategy(FLAGS.strategy, FLAGS.min_shard_bytes)
    chief = distribute.is_chief(strategy)
    data_source = cli.data_source_from_flags()
    data = cli.load_data_from_flags(FLAGS.seed, log=log_line)
    log_line("statistics: " + ", ".join(f"{k} {v:,}" for k, v in data.statistics().items()))
    log_line(budget.plan(config, data).describe())
    # Other multi_worker workers train in step with the chief but write nothing.
    callbacks = summaries.training_callbacks(
        run_dir, logdir=FLAGS.logdir, quiet=FLAGS.quiet, topk_every=FLAGS.topk_every,
        summary_every_steps=FLAGS.summary_every_steps) if chief else [
            progress.ProgressCallback(quiet=FLAGS.quiet)]
    kept = _keep_for_export()
    # The progress callback prints the epoch lines above its bar.
    trainer.train(config, data, run_dir, name, log=callbacks[-1].log,
                  callbacks=[kept, *callbacks],
                  data_source=data_source,
                  patience=FLAGS.patience, require_checkpoint=FLAGS.resume, strategy=strategy,
                  overwrite=FLAGS.overwrite)
    if FLAGS.export and chief:
        export.export_model(kept.model, kept.data, export_dir, item_ids=kept.data.item_ids,
                            log=log_line)


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.train", _main)


if __name__ == "__main__":
    run()
