r"""Where a whole training run's time goes: every phase of `python -m mkr_tf.train`, in seconds.

  MKR_DATA_DIR=../shared/datasets python benchmarks/phases.py --datasets=synthetic,music,book
  # side by side, alternating runs: this checkout, another one, and the authors' TF1 code
  MKR_DATA_DIR=../shared/datasets python benchmarks/phases.py --datasets=music --repeats=3 \
      --checkouts=.,/tmp/mkr-tf-old --authors_src=/tmp/MKR/src

Each run is a fresh process of the real command line (top-K every epoch, TensorBoard logs,
checkpoints, export: the defaults), in a temporary folder, with timers wrapped around its
functions from outside; nothing in the package is changed for it. The runs of all sides
alternate (side A, side B, side A, …), so that a busy machine slows them alike; each cell is
the median over the repeats, and `±` gives the spread (max − min) of the whole process.

Phases: Python and TensorFlow import, the package's import, data load or preparation, model
build; the RS and KGE passes of the first epoch they run (tracing and compilation included,
and shown on their own as first minus steady pass) and of the later ones (steady state, with
steps/s); evaluation and top-K per epoch, first and steady; what else the epoch loop does
(checkpoints, best weights, TensorBoard, the final top-K); export; the whole process.

`--authors_src` is a checkout's src/ of github.com/hwwang55/MKR (not part of this project),
run under tf.compat.v1 on the same processed files with the same settings; it has phases
"training loops" (its sess.run calls of RS and KGE steps), "evaluation" and the whole process.
Extra flags for our command line (e.g. --jit_compile=false) go after `--`.
"""

import collections
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

_RESULT_PREFIX = "PHASES_JSON "
_AUTHORS_SIDE = "authors"


# --- child processes: one whole run each, timed from inside ------------------------------------

def _timed(owner, name, timers, key, on_result=None):
    """Replaces owner.name by a wrapper appending each call's seconds to timers[key]."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            result = original(*args, **kwargs)
        finally:
            timers[key].append(time.perf_counter() - start)
        if on_result is not None:
            on_result(result)
        return result

    setattr(owner, name, wrapper)


def _child_ours(dataset: str, workdir: str, extra_flags: list[str]) -> dict:
    start = time.perf_counter()
    import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    tf_import = time.perf_counter() - start
    # pylint: disable=import-outside-toplevel
    from mkr_tf import data as mkr_data, engine, export, model as mkr_model, runs, train, trainer
    from mkr_tf import callbacks as mkr_callbacks
    package_import = time.perf_counter() - start - tf_import
    timers = collections.defaultdict(list)
    steps = collections.defaultdict(list)
    _timed(mkr_data, "load_dataset", timers, "data")
    _timed(mkr_model, "build_model", timers, "build")
    _timed(trainer, "train", timers, "train_call")
    for task, method in (("rs", "rec_epoch"), ("kge", "kg_epoch")):
        _timed(engine.LocalRunner, method, timers, task,
               on_result=lambda result, task=task: steps[task].append(int(result["steps"])))
    _timed(engine.LocalRunner, "predict", timers, "predict")
    _timed(mkr_callbacks.TopKCallback, "on_epoch_end", timers, "topk")
    _timed(mkr_callbacks.TopKCallback, "on_train_end", timers, "topk_final")
    # Whichever the command line calls: export_run reloads the run, export_model does not.
    _timed(export, "export_run", timers, "export_run")
    _timed(export, "export_model", timers, "export_model")
    run_dir = os.path.join(workdir, "run")
    sys.argv = ["mkr_tf.train", f"--dataset={dataset}", f"--run_dir={run_dir}",
                f"--export_dir={os.path.join(workdir, 'export')}", "--quiet", *extra_flags]
    try:
        train.run()
    except SystemExit as exit_:
        if exit_.code:
            raise
    results = json.loads(pathlib.Path(run_dir, runs.RESULTS_FILE).read_text())
    return {"tf_import": tf_import, "package_import": package_import, "timers": timers,
            "steps": steps, "trace_seconds": results.get("trace_seconds"),
            "train_seconds": results["train_seconds"], "test_auc": results["test_auc"],
            "n_epochs": results["config"]["n_epochs"]}


def _child_authors(src: str, dataset: str, data_root: str, settings: dict) -> dict:
    """The authors' main.py on `data_root`/<dataset>, its session calls timed."""
    import types  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    import tensorflow.compat.v1 as tf1  # pylint: disable=import-outside-toplevel
    tf1.disable_v2_behavior()
    tf_import = time.perf_counter() - start
    # Their `import tensorflow as tf` gets the TF1 API; their sklearn AUC gets ours (same value).
    sys.modules["tensorflow"] = tf1
    from mkr_tf import metrics  # pylint: disable=import-outside-toplevel
    sklearn = types.ModuleType("sklearn")
    sklearn.metrics = types.ModuleType("sklearn.metrics")
    sklearn.metrics.roc_auc_score = lambda y_true, y_score: metrics.auc(y_true, y_score)
    sys.modules.update({"sklearn": sklearn, "sklearn.metrics": sklearn.metrics})
    sys.path.insert(0, src)
    import model as authors_model  # pylint: disable=import-outside-toplevel,import-error
    timers = collections.defaultdict(list)
    for method, key in (("train_rs", "rs_steps"), ("train_kge", "kge_steps"), ("eval", "eval")):
        _timed(authors_model.MKR, method, timers, key)
    # Their data loader reads ../data/<dataset>/ relative to the working directory.
    os.chdir(os.path.join(data_root, "src"))
    sys.argv = ["main.py", f"--dataset={dataset}"] + [f"--{k}={v}" for k, v in settings.items()]
    main_start = time.perf_counter()
    import main  # noqa: F401  pylint: disable=import-outside-toplevel,import-error,unused-import
    return {"tf_import": tf_import, "main": time.perf_counter() - main_start,
            "train_loops": sum(timers["rs_steps"]) + sum(timers["kge_steps"]),
            "eval": sum(timers["eval"]), "rs_steps": len(timers["rs_steps"]),
            "kge_steps": len(timers["kge_steps"])}


# --- the parent: alternating runs, tables ---------------------------------------------------------

def _processed_folder(dataset: str) -> pathlib.Path:
    """The folder of ratings_final.txt and kg_final.txt our loader reads or prepares."""
    sys.path.insert(0, os.getcwd())
    import data_prep  # pylint: disable=import-outside-toplevel
    from mkr_tf import cli  # pylint: disable=import-outside-toplevel
    data_dir, cache_dir = cli.default_folders()
    data_dir = pathlib.Path(data_dir)
    if (data_dir / dataset / "ratings_final.txt").is_file():
        return data_dir / dataset
    return pathlib.Path(data_prep.prepare(dataset, data_dir, cache_dir,
                                          seed=0, log=lambda _: None))


def _authors_tree(src: str, dataset: str, root: pathlib.Path) -> pathlib.Path:
    """root/src (links to the authors' files) and root/data/<dataset> (links to ours)."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    for path in pathlib.Path(src).glob("*.py"):
        target = root / "src" / path.name
        if not target.exists():
            target.symlink_to(path.resolve())
    data = root / "data" / dataset
    if not data.exists():
        data.mkdir(parents=True)
        folder = _processed_folder(dataset)
        for name in ("ratings_final.txt", "kg_final.txt"):
            (data / name).symlink_to((folder / name).resolve())
    return root


def _run_child(side: str, dataset: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="mkr-phases-") as workdir:
        if side == _AUTHORS_SIDE:
            from mkr_tf.config import PAPER_SETTINGS  # pylint: disable=import-outside-toplevel
            root = _authors_tree(args.authors_src, dataset, pathlib.Path(args.authors_workdir))
            command = [sys.executable, os.path.abspath(__file__), "--child_authors", dataset,
                       str(root), json.dumps(PAPER_SETTINGS[dataset])]
            cwd = os.getcwd()
        else:
            path, _, side_flags = side.partition("@")
            command = [sys.executable, os.path.abspath(__file__), "--child_ours", dataset,
                       workdir, json.dumps(side_flags.split() + args.extra)]
            cwd = os.path.abspath(path)
        start = time.perf_counter()
        finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False,
                                  env={**os.environ, "PYTHONPATH": cwd})
        whole = time.perf_counter() - start
    lines = [line for line in finished.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if finished.returncode or not lines:
        sys.exit(f"{side} on {dataset} failed (exit {finished.returncode}):\n"
                 f"{finished.stdout[-2000:]}\n{finished.stderr[-4000:]}")
    figures = json.loads(lines[-1][len(_RESULT_PREFIX):])
    figures["whole"] = whole
    return figures


def _steady(values: list[float]) -> float:
    return statistics.median(values[1:]) if len(values) > 1 else float("nan")


def _our_phases(run: dict) -> dict[str, float]:
    # Timers of functions that were never called are absent.
    timers = collections.defaultdict(list, run["timers"])
    steps = collections.defaultdict(list, run["steps"])
    n_epochs = len(timers["rs"])
    eval_per_epoch = [sum(timers["predict"][3 * i:3 * i + 3]) for i in range(n_epochs)]
    phases = {
        "TF import": run["tf_import"],
        "mkr_tf import": run["package_import"],
        "data load": timers["data"][0],
        "model build": timers["build"][0],
    }
    for task, label in (("rs", "RS"), ("kge", "KGE")):
        if not timers[task]:
            continue
        steady = _steady(timers[task])
        phases[f"{label} first pass"] = timers[task][0]
        phases[f"{label} steady pass"] = steady
        phases[f"{label} first − steady (trace, compile)"] = timers[task][0] - steady
        phases[f"{label} steady steps/s"] = _steady(steps[task]) / steady
    phases["eval, epoch 1"] = eval_per_epoch[0]
    phases["eval, steady epoch"] = _steady(eval_per_epoch)
    if timers["topk"]:
        phases["top-K, epoch 1"] = timers["topk"][0]
        phases["top-K, steady epoch"] = _steady(timers["topk"])
    trace = run.get("trace_seconds") or 0.0
    if run.get("trace_seconds") is not None:
        phases["graphs traced before epoch 1 (trace_seconds)"] = trace
    phases["graph building in all (trace + first − steady passes)"] = trace + sum(
        timers[task][0] - _steady(timers[task]) for task in ("rs", "kge") if timers[task])
    known = (sum(timers["rs"]) + sum(timers["kge"]) + sum(timers["predict"]) + sum(timers["topk"])
             + timers["build"][0] + trace)
    phases["rest of train() (checkpoints, TensorBoard, final top-K)"] = (
        timers["train_call"][0] - known)
    phases["export"] = (timers["export_run"] or timers["export_model"] or [0.0])[0]
    phases["train_seconds (results.json)"] = run["train_seconds"]
    phases["test AUC"] = run["test_auc"]
    phases["whole process"] = run["whole"]
    return phases


def _authors_phases(run: dict) -> dict[str, float]:
    return {"TF import": run["tf_import"], "training loops (sess.run of steps)": run["train_loops"],
            "eval": run["eval"], "main.py (load, build, train, eval)": run["main"],
            "whole process": run["whole"]}


def _print_table(dataset: str, sides: list[str], runs: dict[str, list[dict]]) -> None:
    tables = {side: [(_authors_phases if side == _AUTHORS_SIDE else _our_phases)(run)
                     for run in runs[side]] for side in sides}
    names = list(dict.fromkeys(name for side in sides for name in tables[side][0]))
    print(f"\n{dataset}: median of {len(runs[sides[0]])} run(s) per side")
    print("| phase | " + " | ".join(sides) + " |")
    print("|---|" + "---|" * len(sides))
    for name in names:
        cells = []
        for side in sides:
            values = [phases[name] for phases in tables[side] if name in phases]
            if not values:
                cells.append("")
                continue
            median = statistics.median(values)
            cell = f"{median:.4f}" if name == "test AUC" else (
                f"{median:,.0f}" if "steps/s" in name else f"{median:.2f}")
            if name == "whole process" and len(values) > 1:
                cell += f" ± {max(values) - min(values):.1f}"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def main() -> None:
    import argparse  # pylint: disable=import-outside-toplevel
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="synthetic,music,book")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--checkouts", default=".",
                        help="Comma-separated mkr-tf checkouts to run, alternating; "
                             "PATH@FLAGS gives one side flags of its own, e.g. .@--jit_compile.")
    parser.add_argument("--authors_src", default=None,
                        help="src/ of a hwwang55/MKR checkout, to run beside ours.")
    parser.add_argument("--authors_workdir", default=None,
                        help="Where the authors' data links and .npy caches go. Default: a "
                             "temporary folder.")
    parser.add_argument("extra", nargs="*", help="Flags for mkr_tf.train, after --.")
    args = parser.parse_args()
    # The children run in the checkouts' folders.
    if os.environ.get("MKR_DATA_DIR"):
        os.environ["MKR_DATA_DIR"] = os.path.abspath(os.environ["MKR_DATA_DIR"])
    sides = args.checkouts.split(",")
    temporary_root = None
    if args.authors_src:
        sides.append(_AUTHORS_SIDE)
        if args.authors_workdir is None:
            temporary_root = args.authors_workdir = tempfile.mkdtemp(prefix="mkr-authors-")
    try:
        for dataset in args.datasets.split(","):
            runs = {side: [] for side in sides}
            for repeat in range(args.repeats):
                for side in sides:
                    runs[side].append(_run_child(side, dataset, args))
                    # The raw figures too, so that a long benchmark's runs are never lost.
                    print(f"{dataset} run {repeat + 1}/{args.repeats} {side}: "
                          f"{runs[side][-1]['whole']:.1f} s {json.dumps(runs[side][-1])}",
                          file=sys.stderr, flush=True)
            _print_table(dataset, sides, runs)
    finally:
        if temporary_root:
            shutil.rmtree(temporary_root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child_ours":
        sys.path.insert(0, os.getcwd())
        figures = _child_ours(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
        print(_RESULT_PREFIX + json.dumps(figures), flush=True)
    elif len(sys.argv) > 1 and sys.argv[1] == "--child_authors":
        sys.path.insert(0, os.getcwd())
        settings = json.loads(sys.argv[4])
        figures = _child_authors(os.path.join(sys.argv[3], "src"), sys.argv[2], sys.argv[3],
                                 settings)
        print(_RESULT_PREFIX + json.dumps(figures), flush=True)
    else:
        main()
