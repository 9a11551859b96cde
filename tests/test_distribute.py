"""Distributed training: local clusters of processes on 127.0.0.1 (free ports), CPU only.

mirrored: two replicas (logical CPUs) train as one process does, uneven shares included.
multi_worker: two synchronous workers end with identical weights, and as one process would.
parameter_server: a chief, two workers and two parameter servers train with the user, item and
entity tables sharded in rows, one shard per server, each shard's optimizer slots beside it.
"""

import functools
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from mkr_tf import distribute
from tests import distributed_worker
from tests.test_train import REPO

# Every cluster process must end within this; a hung collective would otherwise hang CI.
TIMEOUT_SECONDS = 240
N_EPOCHS = 3
SYNCHRONOUS_EPOCHS = 2
# Synthetic tables are 2-3k rows of 8 floats (64-96 KiB): this splits each in two.
MIN_SHARD_BYTES = 16 << 10


class LocalCluster:
    """Processes of one TF_CONFIG cluster on this machine, each in its own session and log file.

    `close` (also on failure, via addCleanup) kills every process it started that still runs.
    """

    def __init__(self, cluster, workdir):
        self.cluster, self.workdir = cluster, pathlib.Path(workdir)
        self.processes = {}

    def start(self, task_type, index, args):
        name = f"{task_type}{index}"
        tf_config = {"cluster": self.cluster, "task": {"type": task_type, "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), PYTHONPATH=str(REPO),
                   TF_CPP_MIN_LOG_LEVEL="3", NO_PROXY="127.0.0.1,localhost",
                   no_grpc_proxy="127.0.0.1,localhost")
        with open(self.workdir / f"{name}.log", "w") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.workdir, start_new_session=True)

    def wait(self, name):
        """The return code of process `name`, once it ends."""
        return self.processes[name].wait(timeout=TIMEOUT_SECONDS)

    def log(self, name):
        return (self.workdir / f"{name}.log").read_text()[-3000:]

    def close(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@functools.lru_cache(maxsize=None)
def one_process_history():
    """The per-epoch figures of one process trained N_EPOCHS on the synthetic data."""
    with tempfile.TemporaryDirectory() as workdir:
        return distributed_worker.main(pathlib.Path(workdir) / "run",
                                       pathlib.Path(workdir) / "weights.npz", N_EPOCHS,
                                       "default")["history"]


def assert_trains_as_one_process(test, history, loss_tolerance, auc_tolerance):
    """Losses and AUCs of each epoch of `history` within the tolerances of one process's.

    Weights are not compared: where a row's gradient is nearly zero, Adam's step m / (√v + ε)
    turns float summation-order differences into whole steps of either sign.
    """
    for distributed, single in zip(history, one_process_history()):
        for key in ("rs_loss", "kge_loss"):
            test.assertAllClose(distributed[key], single[key], atol=loss_tolerance, msg=key)
        for key in ("train_auc", "eval_auc", "test_auc"):
            test.assertAllClose(distributed[key], single[key], atol=auc_tolerance, msg=key)


def _load_weights(path):
    with np.load(path) as weights:
        return [weights[name] for name in weights.files]


class MirroredTest(tf.test.TestCase):

    def test_two_replicas_train_as_one_process(self):
        workdir = pathlib.Path(self.create_tempdir().full_path)
        result = subprocess.run(
            [sys.executable, "-m", "tests.distributed_worker", str(workdir / "run"),
             str(workdir / "weights.npz"), str(SYNCHRONOUS_EPOCHS), "mirrored"],
            capture_output=True, text=True, cwd=workdir, timeout=TIMEOUT_SECONDS, check=False,
            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        results = json.loads((workdir / "run" / "results.json").read_text())
        self.assertEqual(results["distribution"], {"strategy": "mirrored", "replicas": 2})
        self.assertLen(results["history"], SYNCHRONOUS_EPOCHS)
        # The same global batches, shared between replicas: the same training up to float
        # summation order.
        assert_trains_as_one_process(self, results["history"], 1e-4, 2e-3)


class MultiWorkerTest(tf.test.TestCase):

    def test_two_workers_hold_identical_weights_and_match_one_process(self):
        workdir = pathlib.Path(self.create_tempdir().full_path)
        cluster = LocalCluster(
            {"worker": [f"127.0.0.1:{port}" for port in distribute.free_local_ports(2)]}, workdir)
        self.addCleanup(cluster.close)
        for index in range(2):
            cluster.start("worker", index, [
                "-m", "tests.distributed_worker", str(workdir / f"run{index}"),
                str(workdir / f"weights{index}.npz"), str(SYNCHRONOUS_EPOCHS), "multi_worker"])
        for name in ("worker0", "worker1"):
            self.assertEqual(cluster.wait(name), 0, cluster.log(name))

        # Worker 0 is the chief: it alone writes the run folder.
        results = json.loads((workdir / "run0" / "results.json").read_text())
        self.assertEqual(results["distribution"], {"strategy": "multi_worker", "replicas": 2})
        for written in ("checkpoints", "logs", "best.weights.h5"):
            self.assertTrue((workdir / "run0" / written).exists(), written)
        self.assertFalse((workdir / "run1").exists())
        self.assertIn("recall@10", results["test_topk"])  # top-K ran on the chief

        chief_weights = _load_weights(workdir / "weights0.npz")
        other_weights = _load_weights(workdir / "weights1.npz")
        self.assertNotEmpty(chief_weights)
        for chief_weight, other_weight in zip(chief_weights, other_weights, strict=True):
            self.assertAllEqual(chief_weight, other_weight)

        # The same global batches as one process: the same training up to summation order.
        self.assertLen(results["history"], SYNCHRONOUS_EPOCHS)
        assert_trains_as_one_process(self, results["history"], 1e-4, 2e-3)


class ParameterServerTest(tf.test.TestCase):

    def test_sharded_tables_train_on_two_workers_and_two_parameter_servers(self):
        workdir = pathlib.Path(self.create_tempdir().full_path)
        ports = iter(distribute.free_local_ports(5))
        cluster = LocalCluster({"chief": [f"127.0.0.1:{next(ports)}"],
                                "worker": [f"127.0.0.1:{next(ports)}" for _ in range(2)],
                                "ps": [f"127.0.0.1:{next(ports)}" for _ in range(2)]}, workdir)
        self.addCleanup(cluster.close)
        command = ["-m", "mkr_tf.train", "--strategy=parameter_server"]
        for task_type in ("ps", "worker"):
            for index in range(2):
                cluster.start(task_type, index, command)
        cluster.start("chief", 0, [
            # The recommended preset's options are refused under parameter_server (README).
            *command, "--preset=paper", f"--min_shard_bytes={MIN_SHARD_BYTES}",
            f"--n_epochs={N_EPOCHS}",
            *[f"--{name}={value}" for name, value in distributed_worker.HYPERPARAMETERS.items()],
            "--topk_every=0", f"--run_dir={workdir / 'run'}", f"--export_dir={workdir / 'export'}"])
        self.assertEqual(cluster.wait("chief0"), 0, cluster.log("chief0"))
        for name in ("ps0", "ps1", "worker0", "worker1"):
            self.assertIsNone(cluster.processes[name].poll(), f"{name} stopped serving")

        results = json.loads((workdir / "run" / "results.json").read_text())
        distribution = results["distribution"]
        self.assertEqual((distribution["workers"], distribution["parameter_servers"]), (2, 2))
        table_rows = {"user_embedding": results["statistics"]["users"],
                      "item_embedding": results["statistics"]["items"],
                      "entity_embedding": results["statistics"]["entities"]}
        for table, rows in table_rows.items():
            shards = distribution["tables"][table]
            # One shard per parameter server, holding part of the rows and its own slots.
            self.assertCountEqual(
                [shard["device"] for shard in shards],
                [f"/job:ps/replica:0/task:{task}/device:CPU:0" for task in (0, 1)])
            self.assertEqual(sum(shard["rows"] for shard in shards), rows)
            for shard in shards:
                self.assertLess(shard["rows"], rows)
                self.assertEqual(shard["slot_devices"], [shard["device"]])
        self.assertLen(distribution["tables"]["relation_embedding"], 1)  # a few rows: whole

        # The RS loss falls every epoch, and asynchronous steps on the same batches train as one
        # process does, within what other initial values (each shard draws its own) allow.
        history = results["history"]
        self.assertLen(history, N_EPOCHS)
        losses = [epoch["rs_loss"] for epoch in history]
        self.assertEqual(losses, sorted(losses, reverse=True))
        self.assertLess(history[-1]["kge_loss"], history[0]["kge_loss"])
        assert_trains_as_one_process(self, history, 0.03, 0.03)
        # The chief exported the best weights, which load into a one-process model.
        self.assertTrue((workdir / "export" / "1" / "saved_model.pb").is_file())


if __name__ == "__main__":
    tf.test.main()
