"""Tests of the hyper-parameter search on small data made here."""

import json
import os
import pathlib
import subprocess
import sys
from unittest import mock

import numpy as np
import optuna
import tensorflow as tf

from mkr_tf import data
from mkr_tf import errors
from mkr_tf import presets
from mkr_tf import tune
from tests.test_trainer import two_taste_dataset

SMALL_SPACE = {"dim": tune._choice(4, 8), "lr_rs": tune._log_uniform(1e-3, 3e-2),
               "rs_loss": tune._choice("pointwise", "softmax")}


def _tune_command(*flags):
    """`python -m mkr_tf.tune` with these flags, in a process of its own."""
    return subprocess.run([sys.executable, "-m", "mkr_tf.tune", *flags], capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _dataset(seed=1):
    ratings, kg = two_taste_dataset(n_users=60, n_items=40, n_ratings_per_user=10)
    return data.build_dataset(ratings, kg, seed=seed, log=lambda _: None)


class TuneTest(tf.test.TestCase):

    def _search(self, study_dir, **options):
        return tune.Search("two_taste", pathlib.Path(study_dir), max_epochs=2, patience=2,
                           space=SMALL_SPACE, **options)

    def test_search_writes_a_preset_that_train_reads_and_resumes(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        lines = []
        settings = tune.search(self._search(study_dir), [_dataset()], 2, "python -m mkr_tf.tune x",
                               log=lines.append)
        trial_lines = [line for line in lines if line.startswith("trial")]
        self.assertLen(trial_lines, 2)
        self.assertRegex(trial_lines[0], r"eval AUC 0\.\d{4} NDCG@10 0\.\d{4}")
        document = json.loads((study_dir / tune.PRESET_FILE).read_text())
        self.assertEqual(document["found_by"], "python -m mkr_tf.tune x")
        self.assertEqual(presets.read(study_dir / tune.PRESET_FILE), settings)
        self.assertEqual(set(settings), set(SMALL_SPACE) | {"n_epochs", "select_on"})
        self.assertEqual(settings["select_on"], "auc+ndcg@10")
        study = optuna.load_study(study_name="mkr-two_taste",
                                  storage=self._search(study_dir).storage_url)
        best = study.best_trial
        self.assertEqual(document["eval"]["eval_auc"], best.user_attrs["eval_auc"])
        self.assertAllClose(best.value, best.user_attrs["eval_auc"]
                            + best.user_attrs["eval_ndcg@10"])
        self.assertLen(list((study_dir / tune.HPARAMS_DIR).glob("trial-*/events.out.tfevents.*")), 2)
        # No trial folder is left behind.
        self.assertEqual(sorted(p.name for p in study_dir.iterdir()),
                         sorted([tune.STUDY_FILE, tune.PRESET_FILE, tune.HPARAMS_DIR]))

        # Run again to 3 trials: one more, and a trial a killed search left running is failed.
        interrupted = study.ask()
        del interrupted
        lines.clear()
        tune.search(self._search(study_dir), [_dataset()], 3, "again", log=lines.append)
        self.assertIn("resuming", lines[0])
        self.assertLen([line for line in lines if line.startswith("trial")], 1)
        states = [t.state for t in optuna.load_study(
            study_name="mkr-two_taste", storage=self._search(study_dir).storage_url).trials]
        self.assertEqual(states.count(optuna.trial.TrialState.FAIL), 1)
        self.assertEqual(len(states), 4)

    def test_a_trial_over_several_seeds_scores_their_mean(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        search = self._search(study_dir, seeds=(1, 2), objective="auc")
        with mock.patch.object(tune, "_pruning_callback", wraps=tune._pruning_callback) as made:
            tune.search(search, [_dataset(1), _dataset(2)], 1, "x", log=lambda _: None)
        # The median rule may stop the first seed's run, never a later one's.
        self.assertEqual([call.kwargs["prune"] for call in made.call_args_list], [True, False])
        trial = optuna.load_study(study_name="mkr-two_taste", storage=search.storage_url).trials[0]
        per_seed = trial.user_attrs["objective_per_seed"]
        self.assertLen(per_seed, 2)
        # Two splits of one dataset train differently, so the mean is not either one's figure.
        self.assertNotAlmostEqual(per_seed[0], per_seed[1])
        self.assertAllClose(trial.value, sum(per_seed) / 2)
        self.assertAllClose(trial.user_attrs["eval_auc"], trial.value)
        # Each seed's epochs are reported as steps of their own, for the median rule.
        self.assertEqual(sorted(trial.intermediate_values),
                         [1, 2, search.max_epochs + 1, search.max_epochs + 2])
        document = json.loads((study_dir / tune.PRESET_FILE).read_text())
        self.assertEqual(document["split_seeds"], [1, 2])

        # Resuming with other seeds or another length would mix two searches in one study.
        for options, message in (({"seeds": (2, 1)}, "--seeds=1,2"),
                                 ({"seeds": (1, 2), "max_epochs": 3}, "--max_epochs=2"),
                                 ({"seeds": (1, 2), "patience": 5}, "--patience=2"),
                                 ({"seeds": (1, 2), "objective": "auc+ndcg@10"},
                                  "--objective=auc")):
            search = tune.Search("two_taste", study_dir, **{"max_epochs": 2, "patience": 2,
                                                            "space": SMALL_SPACE,
                                                            "objective": "auc", **options})
            with self.subTest(**options), self.assertRaisesRegex(
                    errors.ConfigError, f"searched with {message}, not "):
                tune.search(search, [_dataset(1), _dataset(2)], 2, "x", log=lambda _: None)
        # Nor may it hold the search of another dataset.
        search = tune.Search("book", study_dir, max_epochs=2, patience=2, space=SMALL_SPACE,
                             seeds=(1, 2))
        with self.assertRaisesRegex(errors.ConfigError,
                                    r"study.db: holds the search of --dataset=two_taste, not "
                                    r"--dataset=book; start a new --study_dir$"):
            tune.search(search, [_dataset(1), _dataset(2)], 2, "x", log=lambda _: None)

    def test_a_search_killed_before_its_start_finished_queues_the_start_again(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        search = self._search(study_dir, start_from="paper", objective="auc",
                              fixed={"lr_kge": 0.0123456})
        study = search.open_study()
        study.enqueue_trial(search.start_params())
        study.ask()  # The start, running when the search was killed.
        # Resuming with the same settings, a float among them, is accepted, and the start runs.
        tune.search(search, [_dataset()], 1, "x", log=lambda _: None)
        trials = optuna.load_study(study_name="mkr-two_taste", storage=search.storage_url).trials
        self.assertEqual([t.state for t in trials],
                         [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE])
        self.assertEqual(trials[1].params, search.start_params())
        # Another value is refused with the stored one, unrounded, ready to copy back.
        with self.assertRaisesRegex(errors.ConfigError,
                                    r"searched with --fix=lr_kge=0\.0123456, not --fix=lr_kge=0\.0123;"):
            tune.search(self._search(study_dir, start_from="paper", objective="auc",
                                     fixed={"lr_kge": 0.0123}), [_dataset()], 2, "x",
                        log=lambda _: None)

    def test_seeds_are_distinct_integers_one_per_split(self):
        self.assertEqual(tune.parse_seeds(["1", "2"]), (1, 2))
        for texts in (["1", "x"], [], ["1", "1"], ["-1"], [str(2**32)]):
            with self.subTest(texts=texts), self.assertRaisesRegex(
                    errors.ConfigError, f"^--seeds={','.join(texts)}: expected distinct integers"):
                tune.parse_seeds(texts)
        with self.assertRaises(errors.ConfigError):
            self._search(self.create_tempdir().full_path, seeds=(3, 3))
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        with self.assertRaisesRegex(ValueError, "1 datasets for the 2 seeds"):
            tune.search(self._search(study_dir, seeds=(1, 2)), [_dataset()], 1, "x",
                        log=lambda _: None)
        self.assertFalse((study_dir / tune.STUDY_FILE).exists())

    def test_a_bad_seed_is_one_line_before_any_data_is_read(self):
        completed = _tune_command("--seeds=1,x", "--data_dir=/nonexistent",
                                  f"--study_dir={self.create_tempdir().full_path}")
        self.assertEqual(completed.returncode, 2)
        self.assertEqual(completed.stderr.strip().splitlines()[-1],
                         "mkr_tf.tune: error: --seeds=1,x: expected distinct integers from 0 to "
                         "2**32 - 1, such as 1,2,3")

    def test_another_datasets_study_is_one_line_before_any_data_is_read(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        self._search(study_dir).open_study()
        completed = _tune_command("--dataset=book", "--data_dir=/nonexistent", "--nodownload",
                                  f"--study_dir={study_dir}")
        self.assertEqual(completed.returncode, 2)
        self.assertEqual(completed.stderr.strip().splitlines()[-1],
                         f"mkr_tf.tune: error: {study_dir / tune.STUDY_FILE}: holds the search of "
                         f"--dataset=two_taste, not --dataset=book; start a new --study_dir")

    def test_a_search_starts_from_a_preset(self):
        start = pathlib.Path(self.create_tempdir().full_path) / "start.json"
        presets.write(start, "two_taste", {"dim": 4, "lr_rs": 0.02, "rs_loss": "softmax"})
        study_dir = self.create_tempdir().full_path
        search = self._search(study_dir, start_from=str(start))
        tune.search(search, [_dataset()], 2, "x", log=lambda _: None)
        trials = optuna.load_study(study_name="mkr-two_taste", storage=search.storage_url).trials
        self.assertEqual(trials[0].params, {"dim": 4, "lr_rs": 0.02, "rs_loss": "softmax"})
        # Resuming does not try the start again.
        tune.search(search, [_dataset()], 3, "x", log=lambda _: None)
        trials = optuna.load_study(study_name="mkr-two_taste", storage=search.storage_url).trials
        self.assertLen(trials, 3)
        self.assertNotEqual(trials[2].params, trials[0].params)

    def test_fixed_settings_hold_in_every_trial_and_reach_the_preset(self):
        study_dir = self.create_tempdir().full_path
        search = self._search(study_dir, fixed={"rs_loss": "softmax", "kge_model": "transe"})
        seen = []
        original = tune.Search.config
        with mock.patch.object(tune.Search, "config", autospec=True,
                               side_effect=lambda self, params, seed: seen.append(
                                   original(self, params, seed)) or seen[-1]):
            settings = tune.search(search, [_dataset()], 2, "x", log=lambda _: None)
        self.assertEqual({(c.rs_loss, c.kge_model) for c in seen}, {("softmax", "transe")})
        trials = optuna.load_study(study_name="mkr-two_taste", storage=search.storage_url).trials
        self.assertTrue(all(set(t.params) == {"dim", "lr_rs"} for t in trials))
        self.assertEqual((settings["rs_loss"], settings["kge_model"]), ("softmax", "transe"))
        written = presets.read(pathlib.Path(study_dir) / tune.PRESET_FILE)
        self.assertEqual(written["kge_model"], "transe")

    def test_the_preset_takes_its_epochs_from_the_schedule(self):
        study_dir = self.create_tempdir().full_path
        search = self._search(study_dir, fixed={"lr_schedule": "cosine"})
        with mock.patch.object(tune, "preset_epochs", autospec=True, return_value=7) as epochs:
            settings = tune.search(search, [_dataset()], 1, "x", log=lambda _: None)
        self.assertEqual(epochs.call_args.args[0]["lr_schedule"], "cosine")
        self.assertEqual(epochs.call_args.args[1], search.max_epochs)
        self.assertEqual(settings["n_epochs"], 7)

    def test_a_cosine_preset_keeps_the_trials_length(self):
        # The schedule's curve is fixed by the run's length: a shorter run would decay faster.
        self.assertEqual(tune.preset_epochs({"lr_schedule": "cosine"}, 20, 7), 20)
        self.assertEqual(tune.preset_epochs({"lr_schedule": "constant"}, 20, 7), 9)
        self.assertEqual(tune.preset_epochs({}, 20, 19), 20)

    def test_fixed_settings_are_checked_before_searching_and_bind_the_study(self):
        study_dir = self.create_tempdir().full_path
        for fixed, message in (
                ({"rs_negatives": 4}, "rs_negatives has an effect only with some values of "
                                      "rs_loss; fix rs_loss"),
                ({"rs_loss": "softmax", "rs_negatives": 4}, "rs_negatives has an effect only"),
                ({"kge_model": "transe", "kge_margin": float("nan")},
                 "^--fix: kge_margin must be a finite"),
                ({"kge_model": "rotate"}, r"^--fix: kge_model must be one of \('mlp', 'transe'\)")):
            with self.subTest(**fixed), self.assertRaisesRegex(tune.errors.ConfigError, message):
                self._search(study_dir, fixed=fixed)
        self._search(study_dir, fixed={"rs_loss": "pointwise", "rs_negatives": 4})
        tune.search(self._search(study_dir, fixed={"kge_model": "transe"}), [_dataset()], 1, "x",
                    log=lambda _: None)
        # Resuming with other fixed settings, or none, would mix two searches in one study.
        for fixed in ({}, {"kge_model": "mlp"}):
            with self.subTest(fixed=fixed), self.assertRaisesRegex(
                    tune.errors.ConfigError, r"searched with --fix=kge_model=transe, not --fix="):
                tune.search(self._search(study_dir, fixed=fixed), [_dataset()], 2, "x",
                            log=lambda _: None)

    def test_fix_reads_each_value_as_its_settings_type_and_refuses_the_rest(self):
        self.assertEqual(tune.parse_fixed(["kge_model=transe", "tie_item_entity=true", "dim=64",
                                           "lr_kge=0.003"]),
                         {"kge_model": "transe", "tie_item_entity": True, "dim": 64,
                          "lr_kge": 0.003})
        for pair, message in (("kge_model", "expected name=value"),
                              ("n_epochs=3", "expected name=value"),
                              ("dim=big", "'big' is not a int"),
                              ("tie_item_entity=yes", "'yes' is not a bool")):
            with self.subTest(pair), self.assertRaisesRegex(tune.errors.ConfigError, message):
                tune.parse_fixed([pair])

    def test_a_start_outside_the_space_is_refused_before_searching(self):
        start = pathlib.Path(self.create_tempdir().full_path) / "start.json"
        presets.write(start, "two_taste", {"dim": 16})
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        search = self._search(study_dir, start_from=str(start))
        with self.assertRaisesRegex(tune.errors.ConfigError,
                                    r"dim=16 is outside the search's \{4, 8\}"):
            tune.search(search, [_dataset()], 1, "x", log=lambda _: None)
        self.assertFalse(list(study_dir.glob("trial-*")))

    def test_a_start_outside_the_space_is_one_line_before_any_data_is_read(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path) / "study"
        completed = _tune_command("--dataset=music", f"--study_dir={study_dir}", "--start_from=paper",
                                  "--data_dir=/nonexistent", "--nodownload")
        self.assertEqual(completed.returncode, 2)
        self.assertEqual(completed.stderr.strip().splitlines()[-1],
                         "mkr_tf.tune: error: --start_from=paper: dim=4 is outside the search's "
                         "{8, 16, 32, 64, 128, 256}")
        self.assertFalse(study_dir.exists())

    def test_the_space_tells_bools_from_ints(self):
        self.assertFalse(tune._choice(0, 4).holds(False))
        self.assertTrue(tune._choice(False, True).holds(False))
        self.assertTrue(tune._log_uniform(1e-3, 1e-1).holds(0.01))
        self.assertFalse(tune._log_uniform(1e-3, 1e-1).holds(0.5))

    def test_the_test_split_is_never_read(self):
        dataset = _dataset()
        # Any read of these rows would fail: their user ids are outside the table.
        poisoned = dataset.test.copy()
        poisoned[:, 0] = dataset.n_users + 10
        dataset = dataset.__class__(**{**dataset.__dict__, "test": poisoned})
        study_dir = self.create_tempdir().full_path
        settings = tune.search(self._search(study_dir, objective="auc"), [dataset], 1, "x",
                               log=lambda _: None)
        self.assertIn("dim", settings)

    def test_fresh_negatives_are_drawn_only_for_the_pointwise_loss(self):
        fixed = {name: 8 for name in ("dim",)}
        for rs_loss, drawn in (("pointwise", True), ("softmax", False)):
            trial = optuna.trial.FixedTrial({**fixed, "rs_loss": rs_loss, "rs_negatives": 4})
            space = {"dim": tune._choice(8), "rs_loss": tune._choice("pointwise", "softmax"),
                     "rs_negatives": tune._choice(0, 4)}
            self.assertEqual("rs_negatives" in tune.suggest(trial, space), drawn)

    def test_softmax_samples_are_drawn_only_for_the_softmax_loss(self):
        space = {"rs_loss": tune._choice("pointwise", "softmax"),
                 "softmax_samples": tune._choice(0, 1024)}
        for rs_loss, drawn in (("pointwise", False), ("softmax", True)):
            trial = optuna.trial.FixedTrial({"rs_loss": rs_loss, "softmax_samples": 1024})
            self.assertEqual("softmax_samples" in tune.suggest(trial, space), drawn)
        self.assertIn("softmax_samples", tune.SEARCH_SPACE)

    def test_history_neighbours_are_drawn_only_beside_histories_and_neighbours(self):
        space = {"history_length": tune._choice(0, 32), "item_neighbours": tune._choice(0, 8),
                 "history_neighbours": tune._choice(False, True)}
        for history_length, item_neighbours in ((0, 0), (32, 0), (0, 8), (32, 8)):
            trial = optuna.trial.FixedTrial({"history_length": history_length,
                                             "item_neighbours": item_neighbours,
                                             "history_neighbours": True})
            self.assertEqual("history_neighbours" in tune.suggest(trial, space),
                             bool(history_length and item_neighbours))
        with self.assertRaisesRegex(tune.errors.ConfigError, "fix item_neighbours to one of"):
            self._search(self.create_tempdir().full_path,
                         fixed={"history_length": 32, "history_neighbours": True})
        # Fixed at its default, a setting is right beside any other.
        self._search(self.create_tempdir().full_path, fixed={"history_neighbours": False})

    def test_the_margin_is_drawn_only_for_transe(self):
        space = {"kge_model": tune._choice("mlp", "transe"), "kge_margin": tune._choice(2.0)}
        for kge_model, drawn in (("mlp", False), ("transe", True)):
            trial = optuna.trial.FixedTrial({"kge_model": kge_model, "kge_margin": 2.0})
            self.assertEqual("kge_margin" in tune.suggest(trial, space), drawn)

    def test_pruned_trials_stop_their_run(self):
        class Trial:
            def __init__(self):
                self.reported = []

            def report(self, value, step):
                self.reported.append((step, value))

            def should_prune(self):
                return len(self.reported) >= 2

        trial = Trial()
        callback = tune._pruning_callback(trial)
        callback.on_epoch_end(1, {"eval_selection": 0.6}, None)
        with self.assertRaises(optuna.TrialPruned):
            callback.on_epoch_end(2, {"eval_selection": 0.7}, None)
        self.assertEqual(trial.reported, [(1, 0.6), (2, 0.7)])

        # A later seed's epochs are reported after the first seed's, and never pruned: the
        # median rule would judge them by the first seed's peak.
        later_seed = Trial()
        callback = tune._pruning_callback(later_seed, first_step=20, prune=False)
        for epoch in (1, 2, 3):
            callback.on_epoch_end(epoch, {"eval_selection": 0.5}, None)
        self.assertEqual([step for step, _ in later_seed.reported], [21, 22, 23])

    def test_a_study_dir_of_other_files_is_refused_in_one_line(self):
        study_dir = pathlib.Path(self.create_tempdir().full_path)
        (study_dir / "notes.txt").write_text("mine")
        completed = _tune_command(f"--study_dir={study_dir}", "--trials=1")
        self.assertEqual(completed.returncode, 2)
        self.assertEqual(completed.stderr.strip().splitlines()[-1],
                         f"mkr_tf.tune: error: --study_dir {study_dir}: holds notes.txt, which is "
                         f"not a study's; choose a new or empty folder")
        self.assertEqual((study_dir / "notes.txt").read_text(), "mine")


if __name__ == "__main__":
    tf.test.main()
