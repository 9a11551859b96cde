r"""Training at scale: examples/s as interactions grow, and with 1 and 2 local workers.

  python benchmarks/scale.py                         # all rows below, a few minutes on 2 cores
  python benchmarks/scale.py --sizes=1000000 --cluster_sizes=

Datasets come from `mkr_tf.generate_data` with the same tables at every size (--users, 100k
items, 2M triples), so that only the number of interactions changes; they are written once
under --data_dir and loaded as training loads them. Each row is measured in processes of its
own: each loads the data, builds MKR, traces on a few batches, then runs --epochs RS epochs
over the whole training split (60% of the interactions) and as many KGE epochs over the KG, in
the trainer's seeded order, without evaluation; the fastest epoch of each task counts (the
machine may be shared). examples/s is rows / seconds of that epoch; for a cluster, the global
figure. Memory is each process's peak resident set while loading and, separately, while
training (the peak is reset in between through /proc/self/clear_refs).

Single-process rows use the default strategy (`LocalRunner`). Cluster rows run on this
machine's loopback: multi_worker with 1 and 2 workers (same global batch), and
parameter_server with a chief, 1 or 2 workers and 2 parameter servers.
"""

import gc
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from mkr_tf import data as mkr_data
from mkr_tf import distribute
from mkr_tf import engine
from mkr_tf import model as mkr_model
from mkr_tf import runs
from mkr_tf import generate_data
from mkr_tf.config import MKRConfig

flags.DEFINE_list("sizes", ["1000000", "5000000", "20000000"],
                  "Interactions of the single-process rows.")
flags.DEFINE_list("cluster_sizes", ["1000000"], "Interactions of the cluster rows.")
flags.DEFINE_integer("users", 500_000,
                     "Users of every dataset (at most half the smallest interaction count).")
flags.DEFINE_integer("epochs", 2, "Timed epochs of each task; the fastest counts.")
flags.DEFINE_string("data_dir", os.path.join(tempfile.gettempdir(), "mkr_scale"),
                    "Where the generated datasets are kept between runs.")
flags.DEFINE_integer("batch_size", 4096, "Global batch size of both tasks (the paper's movie one).")
flags.DEFINE_string("optimizer", "lazy_adam", "lazy_adam or adam.")
flags.DEFINE_integer("timeout", 1800, "Seconds any one measurement may take.")
# Internal: one measurement, in the process this benchmark starts.
flags.DEFINE_string("measure", None, "Internal: measure this strategy on --dataset_dir.")
flags.DEFINE_string("dataset_dir", None, "Internal: the dataset to measure on.")
FLAGS = flags.FLAGS

ITEMS = 100_000
TRIPLES = 2_000_000
REPO = pathlib.Path(__file__).resolve().parents[1]


def _rss_mib(field: str, pid: str = "self") -> float:
    """VmHWM (peak) or VmRSS (current) resident memory of process `pid`, in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> bool:
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure() -> dict:
    """One measurement, in this process: what `main` prints as a JSON line."""
    # Before any TensorFlow work: multi_worker and parameter_server set up their runtime.
    strategy = distribute.create_strategy(FLAGS.measure)
    start = time.perf_counter()
    data = mkr_data.load_processed(FLAGS.dataset_dir, seed=0, log=lambda _: None)
    load_seconds = time.perf_counter() - start
    gc.collect()
    load_peak = _rss_mib("VmHWM")
    reset = _reset_peak_rss()
    config = MKRConfig(batch_size=FLAGS.batch_size, optimizer=FLAGS.optimizer, lr_rs=0.02,
                       lr_kge=0.01)
    with distribute.scope(strategy):
        model = mkr_model.build_model(config, data)
    runner = engine.make_runner(strategy, model)
    # Traces the epoch graphs (a whole-batch loop, and a last smaller batch where there is one).
    runner.rec_epoch(data.train[:4 * FLAGS.batch_size + 1], FLAGS.batch_size)
    runner.kg_epoch(data.kg[:4 * FLAGS.batch_size + 1], FLAGS.batch_size)
    figures = {"load_s": load_seconds, "load_peak_mib": load_peak,
               "train_rows": len(data.train), "triples": len(data.kg)}
    for task, rows, run_epoch, task_index in (("rs", data.train, runner.rec_epoch, 0),
                                              ("kge", data.kg, runner.kg_epoch, 1)):
        seconds = []
        for epoch in range(1, FLAGS.epochs + 1):
            epoch_rows = mkr_data.shuffled(rows, (0, epoch, task_index))
            start = time.perf_counter()
            run_epoch(epoch_rows, FLAGS.batch_size)
            seconds.append(time.perf_counter() - start)
        figures.update({f"{task}_epoch_s": min(seconds),
                        f"{task}_examples_per_s": len(rows) / min(seconds)})
    figures["train_peak_mib"] = _rss_mib("VmHWM" if reset else "VmRSS")
    return figures


def dataset(interactions: int) -> pathlib.Path:
    """The scale dataset with `interactions`, generated into --data_dir unless it is there."""
    folder = pathlib.Path(FLAGS.data_dir) / f"scale{interactions}_users{FLAGS.users}"
    if not (folder / mkr_data.KG_FILE).is_file():
        spec = generate_data.ScaleSpec(n_users=FLAGS.users, n_items=ITEMS,
                                    n_interactions=interactions, n_triples=TRIPLES)
        generate_data.write(spec, folder, log=lambda line: print(f"  {line}", flush=True))
    return folder


def run_cluster(strategy: str, folder: pathlib.Path, tasks: dict[str, int]) -> list[dict]:
    """Runs a measurement as the processes of a local TF_CONFIG cluster (tasks: type -> count).

    Returns each process's {"task", "peak_mib"} and, for those that measure, its figures.
    parameter_server's worker and ps tasks only serve: their peak memory is read before they
    are killed, once the chief has finished.
    """
    ports = iter(distribute.free_local_ports(sum(tasks.values())))
    cluster = {task: [f"127.0.0.1:{next(ports)}" for _ in range(count)]
               for task, count in tasks.items()}
    measuring = [sys.executable, __file__, f"--measure={strategy}", f"--dataset_dir={folder}",
                 f"--batch_size={FLAGS.batch_size}", f"--optimizer={FLAGS.optimizer}",
                 f"--epochs={FLAGS.epochs}"]
    serving = [sys.executable, "-m", "mkr_tf.train", "--strategy=parameter_server"]
    processes = []
    try:
        for task, count in tasks.items():
            for index in range(count):
                env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
                if strategy != "default":
                    env["TF_CONFIG"] = json.dumps(
                        {"cluster": cluster, "task": {"type": task, "index": index}})
                serves = strategy == "parameter_server" and task != "chief"
                processes.append((task, serves, subprocess.Popen(
                    serving if serves else measuring, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)))
        results = []
        for task, serves, process in processes:
            if serves:
                continue
            stdout, stderr = process.communicate(timeout=FLAGS.timeout)
            if process.returncode:
                raise RuntimeError(f"a {strategy} {task} failed:\n{stderr[-3000:]}")
            figures = json.loads(stdout.strip().splitlines()[-1])
            results.append(dict(figures, task=task, peak_mib=figures["train_peak_mib"]))
        for task, serves, process in processes:
            if serves:
                results.append({"task": task, "peak_mib": _rss_mib("VmHWM", str(process.pid))})
        return results
    finally:
        for _, _, process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _row(label: str, results: list[dict]) -> str:
    first = results[0]
    peaks = ", ".join(f"{result['task']} {result['peak_mib']:,.0f}" for result in results)
    return " | ".join([
        label, f"{first['train_rows']:,}", f"{first['rs_epoch_s']:.1f}",
        f"{first['rs_examples_per_s']:,.0f}", f"{first['kge_examples_per_s']:,.0f}",
        f"{first['load_s']:.1f}", f"{first['load_peak_mib']:,.0f}", peaks])


def main(argv):
    del argv
    if FLAGS.measure:
        print(json.dumps(measure()), flush=True)
        return
    print(" | ".join(["run", "train rows", "RS epoch s", "RS ex/s", "KGE ex/s", "load s",
                      "load peak MiB", "training peak MiB per process"]), flush=True)
    for size in FLAGS.sizes:
        folder = dataset(int(size))
        print(_row(f"1 process, {int(size):,} interactions",
                   run_cluster("default", folder, {"process": 1})), flush=True)
    for size in FLAGS.cluster_sizes:
        folder = dataset(int(size))
        for workers in (1, 2):
            print(_row(f"multi_worker ×{workers}, {int(size):,}",
                       run_cluster("multi_worker", folder, {"worker": workers})), flush=True)
        for workers in (1, 2):
            print(_row(f"parameter_server ×{workers} + 2 ps, {int(size):,}",
                       run_cluster("parameter_server", folder,
                                   {"chief": 1, "worker": workers, "ps": 2})), flush=True)


if __name__ == "__main__":
    app.run(main)
