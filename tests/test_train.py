"""End-to-end tests of the `python -m mkr_tf.train` command line."""

import dataclasses
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from mkr_tf import presets
from mkr_tf.config import MKRConfig
from tests.test_trainer import two_taste_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, cwd=None, preexec_fn=None):
    """Runs the training CLI in a fresh working folder, so default outputs stay out of the repo."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "mkr_tf.train", *args], capture_output=True,
                          text=True, env=environment, cwd=cwd or tempfile.mkdtemp(), timeout=300,
                          check=False, preexec_fn=preexec_fn)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mkr_tf.train")]


def write_tiny(folder: pathlib.Path, n_users: int = 80) -> pathlib.Path:
    ratings, kg = two_taste_dataset(n_users=n_users)
    folder.mkdir(parents=True)
    np.savetxt(folder / "ratings_final.txt", ratings, fmt="%d", delimiter="\t")
    np.savetxt(folder / "kg_final.txt", kg, fmt="%d", delimiter="\t")
    return folder


def export_versions(folder: pathlib.Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


class TrainCommandTest(tf.test.TestCase):

    def test_trains_a_processed_fixture_end_to_end(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        ratings, kg = two_taste_dataset(n_users=80)
        (root / "data" / "tiny").mkdir(parents=True)
        np.savetxt(root / "data" / "tiny" / "ratings_final.txt", ratings, fmt="%d", delimiter="\t")
        np.savetxt(root / "data" / "tiny" / "kg_final.txt", kg, fmt="%d", delimiter=" ")
        run_dir = root / "run"
        result = run_cli("--dataset=tiny", f"--run_dir={run_dir}", "--n_epochs=3", "--batch_size=32",
                         "--lr_rs=0.01", "--seed=2", f"--export_dir={root / 'exported'}",
                         "--jit_compile", f"--cache_dir={root / 'cache'}",
                         env={"MKR_DATA_DIR": str(root / "data")})
        self.assertEqual(result.returncode, 0, result.stderr)
        epoch_lines = [l for l in result.stdout.splitlines() if l.startswith("epoch")]
        self.assertLen(epoch_lines, 3)
        self.assertIn("test auc", epoch_lines[0])
        self.assertIn("best eval AUC", result.stdout)
        self.assertRegex(result.stdout, r"planned memory: tables [\d.]+ KB and layers [\d.]+ KB "
                                        r"of weights, [\d.]+ KB with the optimizers' slots and the best "
                                        r"epoch's copy; run folder about [\d.]+ KB")
        results = json.loads((run_dir / "results.json").read_text())
        self.assertEqual(results["dataset"], "tiny")
        self.assertEqual(results["seed"], 2)
        self.assertEqual(results["config"]["n_epochs"], 3)
        self.assertEqual(results["config"]["lr_rs"], 0.01)
        self.assertEqual(results["config"]["dim"], 8)  # untouched flags keep their defaults
        self.assertTrue((root / "exported" / "1" / "saved_model.pb").is_file())
        self.assertTrue((run_dir / "logs").is_dir())
        # The compiled RS and KGE epochs, for the next run of these shapes.
        self.assertLen(list((root / "cache" / "xla").glob("*.pb")), 2)

    def _config_from_command_line(self, *arguments):
        """The config and the flags' help texts of `mkr_tf.train ARGUMENTS`, parsed in a fresh
        process as the command parses them (flags are defined on demand, once per process)."""
        probe = ("import json, sys\n"
                 "from absl import flags\n"
                 "from mkr_tf import train\n"
                 "train._define_flags()\n"
                 "flags.FLAGS(sys.argv)\n"
                 "print(json.dumps({'config': train.config_from_flags().to_dict(),\n"
                 "                  'help': {name: flags.FLAGS[name].help for name in flags.FLAGS}}))")
        process = subprocess.run([sys.executable, "-c", probe, *arguments], cwd=REPO,
                                 capture_output=True, text=True, timeout=120, check=True)
        return json.loads(process.stdout)

    def test_presets_give_the_defaults_and_flags_override_them(self):
        config = self._config_from_command_line("--dataset=music", "--preset=paper")["config"]
        self.assertEqual([config[name] for name in ("dim", "L", "batch_size", "lr_rs", "lr_kge")],
                         [4, 2, 256, 1e-3, 2e-4])
        self.assertEqual(self._config_from_command_line(
            "--dataset=music", "--preset=paper", "--lr_rs=0.5", "--cross_unit=dcn")["config"]
            | {"lr_rs": 1e-3, "cross_unit": "cross_compress"}, config)
        # Without --preset, music takes its recommended preset; a flag still wins over it.
        recommended = presets.settings("music", "recommended")
        config = self._config_from_command_line("--dataset=music", "--dim=12")["config"]
        self.assertEqual({name: config[name] for name in recommended if name != "dim"},
                         {name: value for name, value in recommended.items() if name != "dim"})
        self.assertEqual(config["dim"], 12)

    def test_every_config_field_is_a_flag_with_the_fields_help(self):
        helps = self._config_from_command_line()["help"]
        for field in dataclasses.fields(MKRConfig):
            self.assertIn(field.name, helps)
            self.assertIn(field.metadata["help"], helps[field.name])

    def test_bad_input_gives_one_clear_line_and_exit_code_two(self):
        empty = self.create_tempdir().full_path
        cases = {
            ("--dim=0",): "dim must be an integer >= 1, got 0",
            ("--L=0",): "L must be an integer >= 1, got 0",
            ("--lr_rs=0",): "lr_rs must be a finite number > 0, got 0.0",
            ("--batch_size=-3",): "batch_size must be an integer >= 1, got -3",
            ("--checkpoint_every_seconds=-1",): "checkpoint_every_seconds must be a finite "
                                                "number >= 0, got -1.0",
            ("--dataset=nope",): "unknown dataset 'nope'",
            (f"--dataset={empty}",): f"dataset '{empty}' is not a name: use letters, digits, "
                                     f"'-', '_' and '.' (not first); to read processed files in "
                                     f"another folder, pass --processed_dir={empty}",
            (f"--logdir={empty}/file",): f"--logdir {empty}/file: is a file, not a folder",
            (f"--export_dir={empty}/file/music",): f"--export_dir {empty}/file/music: "
                                                   f"{empty}/file is a file, not a folder",
        }
        pathlib.Path(empty, "file").write_text("")
        for args, message in cases.items():
            result = run_cli(*args, f"--data_dir={empty}", f"--cache_dir={empty}",
                             f"--run_dir={empty}/run")
            self.assertEqual(result.returncode, 2, msg=(args, result.stderr))
            self.assertIn(message, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertLen(error_lines(result.stderr), 1, result.stderr)
            self.assertNotIn("epoch", result.stdout)  # refused before any training
            self.assertFalse(os.path.exists(f"{empty}/run"))

    def test_a_finished_run_is_not_redone_and_outputs_never_land_in_the_data(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        data_folder = write_tiny(root / "data" / "tiny")
        work = root / "work"
        work.mkdir()
        args = (f"--processed_dir={data_folder}", "--run_dir=run", "--n_epochs=1",
                "--batch_size=64", "--topk_every=0", "--quiet")
        first = run_cli(*args, cwd=work)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(json.loads((work / "run" / "results.json").read_text())["dataset"], "tiny")
        self.assertEqual(sorted(os.listdir(data_folder)), ["kg_final.txt", "ratings_final.txt"])
        again = run_cli(*args, cwd=work)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertRegex(again.stdout, r"^run: already finished with these settings \(best eval "
                                       r"AUC \d\.\d{4} at epoch 1\); nothing to do \(--overwrite "
                                       r"starts it afresh\)$")
        self.assertEqual(export_versions(work / "saved_models" / "tiny"), ["1"])
        afresh = run_cli(*args, "--overwrite", cwd=work)
        self.assertEqual(afresh.returncode, 0, afresh.stderr)
        self.assertIn("epoch   1/1", afresh.stdout)
        self.assertNotIn("resuming", afresh.stdout)
        # Retrained with the same seed, it is the same model: the export adds no version.
        self.assertIn("already serves this model", afresh.stdout)
        self.assertEqual(export_versions(work / "saved_models" / "tiny"), ["1"])

    def test_ctrl_c_says_what_was_saved_and_exits_130(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        write_tiny(root / "tiny")
        run_dir = root / "run"
        process = subprocess.Popen(
            [sys.executable, "-m", "mkr_tf.train", "--dataset=tiny", "--n_epochs=500",
             "--batch_size=64", "--topk_every=0", "--quiet", "--noexport", f"--run_dir={run_dir}",
             "--checkpoint_every_seconds=0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3",
                     MKR_DATA_DIR=str(root)),
            # A terminal's Ctrl-C, whatever this test process was left ignoring.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("epoch   1/"):
                process.send_signal(signal.SIGINT)
                break
        stdout, stderr = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 130, "".join(seen) + stdout + stderr)
        self.assertNotIn("Traceback", stderr)
        self.assertLen(error_lines(stderr), 1, stderr)
        self.assertRegex(error_lines(stderr)[0],
                         rf"^mkr_tf.train: interrupted; the checkpoint of epoch \d+ is kept: resume with --resume "
                         rf"--run_dir={run_dir}$")

    def test_a_full_disk_ends_in_one_line_with_no_partial_files(self):
        root = pathlib.Path(self.create_tempdir().full_path)
        write_tiny(root / "tiny")

        def limit_file_size():  # what a nearly full disk does to each write
            resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, resource.RLIM_INFINITY))

        result = run_cli("--dataset=tiny", f"--run_dir={root / 'run'}", "--n_epochs=2",
                         "--batch_size=64", "--topk_every=0", "--noexport",
                         "--checkpoint_every_seconds=0",
                         env={"MKR_DATA_DIR": str(root)}, preexec_fn=limit_file_size)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(error_lines(result.stderr), [
            f"mkr_tf.train: error: {root / 'run'}: cannot write the checkpoint of epoch 1: files "
            f"are limited to 100.0 KB (ulimit -f), about 155.9 KB needed; nothing was saved yet"])
        # Nothing could be saved, so the folder the run made is gone.
        self.assertFalse((root / "run").exists())


if __name__ == "__main__":
    tf.test.main()
