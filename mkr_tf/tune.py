r"""Searches MKR's hyper-parameters with Optuna: `python -m mkr_tf.tune --dataset=NAME --trials=N
--study_dir=DIR`.

  MKR_DATA_DIR=../shared/datasets python -m mkr_tf.tune --dataset=music --trials=30 \
      --study_dir=studies/music
  python -m mkr_tf.train --dataset=music --preset=studies/music/preset.json

Each trial trains MKR (`SEARCH_SPACE`: the paper's knobs and the training options beyond it) on
the split of each of --seeds, with TPE sampling. The objective is the eval AUC plus, with the
default --objective=auc+ndcg@10, the eval NDCG@10 over the whole catalogue, of the epoch that
maximises it (`--select_on` of train), averaged over the seeds: one split's figure moves by about
±0.005 from seed to seed, more than many of the differences a search weighs. A trial is pruned
(median rule) on that figure after each epoch of its first seed. Only the eval split is read: the
test split of the data never enters the process. The study lives in DIR/study.db (SQLite), so a killed search
resumes where it stopped when the same command is run again; --trials counts the finished
trials of the study, resumed ones included. Each trial prints one line; at the end the best
settings and their eval figures are printed and written as the preset file DIR/preset.json,
which train reads with --preset=DIR/preset.json. TensorBoard's HParams view shows every trial:
`tensorboard --logdir=DIR/hparams`.
"""

import dataclasses
import os
import pathlib
import shlex
import sys
import tempfile
import time
from typing import Any, Callable

from absl import flags

from mkr_tf import cli
from mkr_tf import config as mkr_config
from mkr_tf import errors
from mkr_tf import files
from mkr_tf import lazy
from mkr_tf import presets

optuna = lazy.load("optuna")
tf = lazy.load("tensorflow")
metrics = lazy.load("mkr_tf.metrics")
trainer = lazy.load("mkr_tf.trainer")

STUDY_FILE = "study.db"
PRESET_FILE = "preset.json"
HPARAMS_DIR = "hparams"
OBJECTIVES = ("auc", "auc+ndcg@10")
# Trials that must finish before the median rule prunes any, and epochs before it judges a trial.
_STARTUP_TRIALS, _WARMUP_EPOCHS = 5, 3

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class _LogUniform:
    """A float drawn log-uniformly from [low, high]."""
    low: float
    high: float

    def __call__(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def holds(self, value) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class _Choice:
    """One of `values`."""
    values: tuple

    def __call__(self, trial, name: str):
        return trial.suggest_categorical(name, self.values)

    def holds(self, value) -> bool:
        # `True == 1` in Python, so a bool and an int are told apart by type too.
        return any(value == option and type(value) is type(option) for option in self.values)

    def __str__(self) -> str:
        return "{" + ", ".join(map(str, self.values)) + "}"


def _log_uniform(low: float, high: float) -> _LogUniform:
    return _LogUniform(low, high)


def _choice(*values) -> _Choice:
    return _Choice(values)


# What a trial chooses, by MKRConfig field, in this order.
SEARCH_SPACE: dict[str, Callable[[Any, str], Any]] = {
    "dim": _choice(8, 16, 32, 64, 128, 256),
    "L": _choice(1, 2),
    "batch_size": _choice(128, 512, 2048),
    "l2_weight": _log_uniform(1e-7, 1e-3),
    "lr_rs": _log_uniform(1e-4, 3e-2),
    "lr_kge": _log_uniform(1e-4, 3e-2),
    "kge_interval": _choice(1, 2, 3),
    # The median rule judges a cosine trial mid-run, before its small late steps, against
    # constant-rate ones: fix it per study (--fix=lr_schedule=...) to compare like with like.
    "lr_schedule": _choice(*mkr_config.LR_SCHEDULES),
    "init_scale": _log_uniform(0.01, 0.5),
    "rs_loss": _choice(*mkr_config.RS_LOSSES),
    "rs_negatives": _choice(0, 4),
    # Below every catalogue here (synthetic has 2,000 items); 0 is the exact softmax.
    "softmax_samples": _choice(0, 1024),
    "use_biases": _choice(False, True),
    "residual": _choice(False, True),
    "tie_item_entity": _choice(False, True),
    "kge_negatives": _choice(0, 4),
    "kge_model": _choice(*mkr_config.KGE_MODELS),
    "kge_margin": _log_uniform(0.25, 4.0),
    "history_length": _choice(0, 32, 128),
    "use_user_embedding": _choice(True, False),
    "history_dropout": _choice(0.0, 0.25, 0.5, 0.75),
    "item_neighbours": _choice(0, 8, 32),
    "history_neighbours": _choice(False, True),
}


def _positive(value) -> bool:
    return value > 0


# Settings drawn only where others, drawn before them, give them an effect: (each other
# setting, the test of its value), all of which must pass.
CONDITIONS: dict[str, tuple[tuple[str, Callable[[Any], bool]], ...]] = {
    "rs_negatives": (("rs_loss", lambda rs_loss: rs_loss == "pointwise"),),
    "softmax_samples": (("rs_loss", lambda rs_loss: rs_loss != "pointwise"),),
    "kge_margin": (("kge_model", lambda kge_model: kge_model == "transe"),),
    "use_user_embedding": (("history_length", _positive),),
    "history_dropout": (("history_length", _positive),),
    "history_neighbours": (("history_length", _positive), ("item_neighbours", _positive)),
}


def _has_effect(name: str, params: dict[str, Any]) -> bool:
    """Whether `name` has an effect beside `params` (a setting `params` lacks has its default)."""
    return all(test(params.get(other, getattr(mkr_config.MKRConfig(), other)))
               for other, test in CONDITIONS.get(name, ()))


def suggest(trial, space: dict[str, Callable[[Any, str], Any]] = SEARCH_SPACE,
            fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trial's settings: `fixed` ones as they are, and the rest of `space` drawn."""
    params: dict[str, Any] = dict(fixed or {})
    for name, draw in space.items():
        if name not in params and _has_effect(name, params):
            params[name] = draw(trial, name)
    return params


def preset_epochs(settings: dict[str, Any], max_epochs: int, best_epoch: int) -> int:
    """The epochs of a preset whose trial trained `max_epochs` and kept `best_epoch`.

    A cosine schedule spans the whole run, so the preset keeps the trial's length to train as
    the trial did. Otherwise it leaves room past the search's best epoch, since another split's
    best comes earlier or later.
    """
    if settings.get("lr_schedule") == "cosine":
        return max_epochs
    return min(max_epochs, best_epoch + 2)


def parse_fixed(pairs: list[str]) -> dict[str, Any]:
    """{name: value} of "name=value" pairs, each a setting of the search space, its value read as
    that setting's type."""
    fields = {field.name: field for field in dataclasses.fields(mkr_config.MKRConfig)}
    fixed: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or name not in SEARCH_SPACE:
            raise errors.ConfigError(f"--fix={pair}: expected name=value with a searched setting "
                                     f"as name: {', '.join(SEARCH_SPACE)}")
        kind = type(fields[name].default)
        try:
            if kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                fixed[name] = text.lower() == "true"
            else:
                fixed[name] = kind(text)
        except ValueError:
            raise errors.ConfigError(f"--fix={pair}: {text!r} is not a {kind.__name__}") from None
    return fixed


def parse_seeds(texts: list[str]) -> tuple[int, ...]:
    """The seeds of --seeds: distinct integers in [0, 2**32), at least one."""
    try:
        seeds = tuple(int(text) for text in texts)
    except ValueError:
        seeds = ()
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= s < 2**32 for s in seeds):
        raise errors.ConfigError(f"--seeds={','.join(texts)}: expected distinct integers from 0 "
                                 f"to 2**32 - 1, such as 1,2,3")
    return seeds


def without_test(data):
    """`data` with its test split replaced by the eval split, so that a search cannot read it."""
    return dataclasses.replace(data, test=data.eval)


@dataclasses.dataclass(frozen=True)
class Search:
    """One study: where it lives, what it searches and how trials are trained."""
    dataset: str
    study_dir: pathlib.Path
    max_epochs: int = 20
    patience: int = 3
    # Each trial trains on the split of every one of these seeds; its objective is their mean.
    seeds: tuple[int, ...] = (0,)
    objective: str = "auc+ndcg@10"
    space: dict[str, Callable[[Any, str], Any]] = dataclasses.field(
        default_factory=lambda: dict(SEARCH_SPACE))
    # A preset (`mkr_tf.presets`: paper, recommended or a file) tried as the study's first trial.
    start_from: str | None = None
    # Settings every trial holds, left out of the search (`--fix`).
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Plain ints, whatever the caller passed: they are stored in the study as JSON.
        object.__setattr__(self, "seeds", parse_seeds([str(seed) for seed in self.seeds]))
        object.__setattr__(self, "max_epochs", int(self.max_epochs))
        if self.objective not in OBJECTIVES:
            raise errors.ConfigError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        for name in self.fixed:
            # A setting that has an effect only beside others must be fixed with them, or a
            # trial that draws them otherwise would fail hours into the search.
            if self.fixed[name] == getattr(mkr_config.MKRConfig(), name):
                continue  # the default, which is right beside any other setting
            for other, test in CONDITIONS.get(name, ()):
                if other not in self.fixed or not test(self.fixed[other]):
                    raise errors.ConfigError(
                        f"--fix={name}={self.fixed[name]}: {name} has an effect only with some "
                        f"values of {other}; fix {other} to one of them too")
        if self.fixed:
            # Every fixed value, checked by the config's own rules before any data is read.
            try:
                mkr_config.MKRConfig.for_dataset(self.dataset, preset=presets.PAPER, **self.fixed)
            except errors.ConfigError as error:
                raise errors.ConfigError(f"--fix: {error}") from None

    def start_params(self) -> dict[str, Any]:
        """`start_from`'s values of the searched settings, checked against the space: a value it
        cannot hold fails in one line rather than after hours of search."""
        config = mkr_config.MKRConfig.for_dataset(self.dataset, preset=self.start_from)
        params: dict[str, Any] = dict(self.fixed)
        for name, draw in self.space.items():
            if name in self.fixed or not _has_effect(name, params):
                continue
            value = getattr(config, name)
            if hasattr(draw, "holds") and not draw.holds(value):
                raise errors.ConfigError(
                    f"--start_from={self.start_from}: {name}={value!r} is outside the search's "
                    f"{draw}")
            params[name] = value
        return {name: value for name, value in params.items() if name not in self.fixed}

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{(self.study_dir / STUDY_FILE).resolve()}"

    def config(self, params: dict[str, Any], seed: int) -> mkr_config.MKRConfig:
        """A trial's settings on `seed`'s split: `params` over the paper's, the epoch kept by the
        objective."""
        return mkr_config.MKRConfig.for_dataset(self.dataset, preset=presets.PAPER,
                                                n_epochs=self.max_epochs, seed=seed,
                                                select_on=self.objective, **params)

    def check_dataset(self) -> str:
        """The study's name, after refusing a folder that holds another dataset's search: a
        folder holds one search, as its preset and TensorBoard logs are the folder's."""
        study_name = f"mkr-{self.dataset}"
        if (self.study_dir / STUDY_FILE).is_file():
            for other in optuna.get_all_study_names(self.storage_url):
                if other != study_name:
                    raise errors.ConfigError(
                        f"{self.study_dir / STUDY_FILE}: holds the search of "
                        f"--dataset={other.removeprefix('mkr-')}, not --dataset={self.dataset}; "
                        f"start a new --study_dir")
        return study_name

    def open_study(self):
        """The study, created or resumed; trials a killed search left running are failed."""
        self.study_dir.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(self.storage_url)
        study_name = self.check_dataset()
        study = optuna.create_study(
            study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=_STARTUP_TRIALS,
                                               n_warmup_steps=_WARMUP_EPOCHS))
        # A study holds one search: trials of other fixed settings, splits, lengths, stopping
        # rules or objectives would mislead TPE, the median rule (which compares trials step by
        # step) and the preset, which takes them from the command line.
        current = {"fixed": self.fixed, "seeds": list(self.seeds), "max_epochs": self.max_epochs,
                   "patience": self.patience, "objective": self.objective}
        for name, value in current.items():
            stored = study.user_attrs.get(name)
            if stored is None and name == "fixed" and study.trials:
                stored = {}  # Studies from before --fix held none.
            if stored is not None and stored != value and study.trials:
                raise errors.ConfigError(
                    f"{self.study_dir / STUDY_FILE}: this study was searched with "
                    f"{_search_flag(name, stored)}, not {_search_flag(name, value)}; resume it "
                    f"with the same, or start a new --study_dir")
            # A study from before these were kept takes them from the run that resumes it.
            if stored != value:
                study.set_user_attr(name, value)
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        # A sampler seeded by the finished count: a resumed search does not redraw the
        # random start-up points it already tried.
        study.sampler = optuna.samplers.TPESampler(
            seed=(self.seeds[0] * 10_007 + len(finished(study))) % 2**32)
        return study


def _search_flag(name: str, value) -> str:
    """The command-line flag that gives a study's kept setting `name` its `value`."""
    if name == "fixed":
        # Unrounded, so that the flag can be copied back.
        return f"--fix={','.join(f'{key}={item}' for key, item in value.items()) or '(nothing)'}"
    if name == "seeds":
        return f"--seeds={','.join(map(str, value))}"
    return f"--{name}={value}"


def finished(study) -> list:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                    optuna.trial.TrialState.PRUNED))


def _pruning_callback(trial, first_step=0, prune=True):
    """Reports each epoch's eval selection figure (AUC, or AUC + NDCG@10 as the objective says)
    to the trial, as step `first_step` + epoch, and with `prune` stops the run once Optuna
    prunes it."""

    class Pruning(trainer.TrainingCallback):
        def on_epoch_end(self, epoch, record, model) -> None:
            trial.report(record["eval_selection"], first_step + epoch)
            if prune and trial.should_prune():
                raise optuna.TrialPruned(f"eval {record['eval_selection']:.4f} at epoch {epoch}")

    return Pruning()


def run_trial(search: Search, datasets, trial) -> float:
    """Trains the trial's settings on each of `datasets` (the splits of `search.seeds`, without
    test splits) and returns its objective, the mean over them."""
    params = suggest(trial, search.space, search.fixed)
    per_seed = []
    for index, (seed, data) in enumerate(zip(search.seeds, datasets, strict=True)):
        with tempfile.TemporaryDirectory(prefix="trial-", dir=search.study_dir) as run_dir:
            run = trainer.train(search.config(params, seed), data, run_dir, search.dataset,
                                log=lambda _: None, patience=search.patience,
                                # The median rule judges a trial by its best figure over all
                                # its steps, which for a later seed holds the first seed's
                                # peak: it would hardly ever prune there, so it judges the
                                # first seed alone.
                                callbacks=[_pruning_callback(trial, index * search.max_epochs,
                                                             prune=index == 0)])
        evaluator = metrics.TopKEvaluator(run.data.train, run.data.eval, run.data.n_items, (10,))
        ranking, beyond = evaluator.evaluate(run.model)
        per_seed.append({"eval_auc": run.results["eval_auc"], "eval_ndcg@10": ranking["ndcg@10"],
                         "eval_distinct@10": beyond["distinct@10"],
                         "best_epoch": run.results["best_epoch"],
                         "train_seconds": run.results["train_seconds"]})
    figures = {name: sum(seed[name] for seed in per_seed) / len(per_seed)
               for name in ("eval_auc", "eval_ndcg@10", "eval_distinct@10")}
    # The latest best epoch of any seed, so that a preset trains long enough for each.
    figures["best_epoch"] = max(seed["best_epoch"] for seed in per_seed)
    figures["train_seconds"] = sum(seed["train_seconds"] for seed in per_seed)
    for name, value in figures.items():
        trial.set_user_attr(name, value)
    if len(per_seed) > 1:
        trial.set_user_attr("objective_per_seed", [
            trainer.selection_figure(seed, search.objective) for seed in per_seed])
    return trainer.selection_figure(figures, search.objective)


def _log_hparams(search: Search, trial) -> None:
    """The trial's settings and eval figures, for TensorBoard's HParams view."""
    from tensorboard.plugins.hparams import api as hparams  # pylint: disable=import-outside-toplevel
    logdir = search.study_dir / HPARAMS_DIR / f"trial-{trial.number:04d}"
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hparams.hparams({**search.fixed, **trial.params}, trial_id=f"trial-{trial.number}")
        tf.summary.scalar("objective", trial.value if trial.value is not None else float("nan"),
                          step=0)
        for name, value in trial.user_attrs.items():
            if name == "objective_per_seed":
                for seed, objective in zip(search.seeds, value):
                    tf.summary.scalar(f"objective_seed_{seed}", objective, step=0)
            else:
                tf.summary.scalar(name, float(value), step=0)


def _describe(trial) -> str:
    attrs = trial.user_attrs
    if trial.state == optuna.trial.TrialState.PRUNED:
        # Only the first seed's epochs are judged, so its step is the epoch.
        last_epoch = max(trial.intermediate_values, default=0)
        return (f"pruned at epoch {last_epoch} (eval figure "
                f"{trial.intermediate_values.get(last_epoch, float('nan')):.4f})")
    if trial.state != optuna.trial.TrialState.COMPLETE:
        return str(trial.state.name.lower())
    seeds = len(attrs.get("objective_per_seed", [None]))
    over = f" (mean of {seeds} seeds)" if seeds > 1 else ""
    return (f"eval AUC {attrs['eval_auc']:.4f} NDCG@10 {attrs['eval_ndcg@10']:.4f}{over} "
            f"distinct@10 {attrs['eval_distinct@10']:.0f} (epoch {attrs['best_epoch']}, "
            f"{attrs['train_seconds']:.0f}s training)")


def _settings_text(params: dict[str, Any], separator: str = " ") -> str:
    return separator.join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                          for name, value in params.items())


def search(search: Search, datasets, trials: int, command: str,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs the study until it has `trials` finished trials; writes and returns the best preset.
    `datasets` holds the split of each of `search.seeds`, in their order."""
    if len(datasets) != len(search.seeds):
        raise ValueError(f"{len(datasets)} datasets for the {len(search.seeds)} seeds "
                         f"{search.seeds}: give one split per seed")
    study = search.open_study()
    # Queued again if a search was killed before its start finished.
    if (search.start_from is not None and not finished(study)
            and not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))):
        study.enqueue_trial(search.start_params())
    datasets = [without_test(data) for data in datasets]
    done = len(finished(study))
    if done:
        log(f"resuming {search.study_dir / STUDY_FILE}: {done} trials finished")
    while done < trials:
        trial = study.ask()
        start = time.perf_counter()
        try:
            value = run_trial(search, datasets, trial)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        trial = study.trials[trial.number]
        done += 1
        _log_hparams(search, trial)
        log(f"trial {trial.number + 1:>3} ({done}/{trials}): {_describe(trial)} | "
            f"{_settings_text(trial.params)} | {time.perf_counter() - start:.0f}s")
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        raise errors.MKRError(f"{search.study_dir / STUDY_FILE}: no trial finished unpruned; "
                              f"run more --trials")
    best = study.best_trial
    settings = dict(search.fixed, **best.params, select_on=search.objective)
    settings["n_epochs"] = preset_epochs(settings, search.max_epochs,
                                         best.user_attrs["best_epoch"])
    preset_path = search.study_dir / PRESET_FILE
    presets.write(preset_path, search.dataset, settings, found_by=command,
                  objective=search.objective, trial=best.number, trials=len(study.trials),
                  eval={name: best.user_attrs[name]
                        for name in ("eval_auc", "eval_ndcg@10", "eval_distinct@10")},
                  split_seeds=list(search.seeds))
    log(f"best: trial {best.number + 1}: {_describe(best)}")
    log(f"settings: {_settings_text(settings)}")
    log(f"wrote {preset_path}; train with --preset={preset_path}")
    return settings


def _define_flags() -> None:
    cli.define_data_flags()
    cli.define_xla_cache_flag()
    flags.DEFINE_integer("trials", 20, "Finished trials the study should have (resumed ones count).")
    flags.DEFINE_string("study_dir", None, "The study's folder: study.db, preset.json, hparams/.")
    flags.DEFINE_integer("max_epochs", 20, "Epochs of each trial at most.")
    flags.DEFINE_integer("patience", 3, "A trial's run stops once its eval objective figure "
                         "has not improved for this many epochs; with lr_schedule=cosine, give "
                         "--max_epochs, so that each run reaches the end of its curve.")
    flags.DEFINE_list("seeds", ["0"], "The splits (and initialisations) every trial trains on; "
                      "its objective is the mean of their eval figures.")
    flags.DEFINE_enum("objective", "auc+ndcg@10", list(OBJECTIVES),
                      "What a trial is scored by, on the eval split: its best eval AUC, plus that "
                      "epoch's eval NDCG@10 with auc+ndcg@10.")
    flags.DEFINE_string("start_from", None, "A preset (paper, recommended or a preset file) "
                        "whose settings are a new study's first trial, so that the search "
                        "starts from them and its best is at least as good on its own splits.")
    flags.DEFINE_list("fix", [], "Settings every trial holds, left out of the search, as "
                      "name=value pairs (kge_model=transe,tie_item_entity=true); the preset "
                      "written at the end has them too.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks of user errors.")
    flags.mark_flag_as_required("study_dir")


def _main():
    if FLAGS.trials < 1:
        raise errors.ConfigError(f"trials must be an integer >= 1, got {FLAGS.trials}")
    name = cli.dataset_name_from_flags()
    study_dir = pathlib.Path(FLAGS.study_dir)
    if study_dir.exists() and not study_dir.is_dir():
        raise errors.MKRError(f"--study_dir {study_dir}: not a folder")
    foreign = (sorted(set(os.listdir(study_dir)) - {STUDY_FILE, PRESET_FILE, HPARAMS_DIR})
               if study_dir.is_dir() else [])
    foreign = [entry for entry in foreign if not entry.startswith(("trial-", files.TEMPORARY_PREFIX))]
    if foreign:
        raise errors.MKRError(f"--study_dir {study_dir}: holds {foreign[0]}, which is not a "
                              f"study's; choose a new or empty folder")
    command = " ".join(["python -m mkr_tf.tune", *map(shlex.quote, sys.argv[1:])])
    study = Search(name, study_dir, FLAGS.max_epochs, FLAGS.patience, parse_seeds(FLAGS.seeds),
                   FLAGS.objective, start_from=FLAGS.start_from, fixed=parse_fixed(FLAGS.fix))
    if FLAGS.start_from is not None:
        study.start_params()  # Checked before the data is loaded.
    study.check_dataset()
    datasets = [cli.load_data_from_flags(seed, log=print) for seed in study.seeds]
    search(study, datasets, FLAGS.trials, command, log=lambda line: print(line, flush=True))


def run():
    """Console-script entry point."""
    cli.run("mkr_tf.tune", _main, _define_flags)


if __name__ == "__main__":
    run()
