"""How an MKR epoch runs: the in-graph epoch loop, its step summaries, and one runner per strategy.

`MKR` says what is computed (forward pass, losses, `rec_update` / `kg_update`, the task
variables and optimizers); this module says how it is run. A runner, made by `make_runner`,
trains on rows in their order and evaluates; every runner has the same four methods:

    trace(rec_rows, kg_rows, batch_size)
                               builds the graphs it can build before the first epoch, for
                               epochs of that many rows
    rec_epoch(rows, batch_size), kg_epoch(rows, batch_size)
                               one pass of `rec_update` / `kg_update` over consecutive batches of
                               the [n, 3] rows (RS_COLUMNS / KG_COLUMNS); returns the
                               example-weighted means of RS_OUTPUTS / KG_OUTPUTS, `steps` and
                               `first_nonfinite_step` (-1: none)
    predict(ratings)           click probabilities of the (user, item) columns of `ratings`

  LocalRunner            the default strategy: whole-epoch graphs in this process, or with
                         jit_compile whole epochs compiled by XLA (`CompiledEpoch`).
  SynchronousRunner      mirrored and multi_worker: every replica steps on its share of each
                         global batch, gradients summed.
  ParameterServerRunner  parameter_server: the chief schedules closures of steps on the workers.

Step-level TensorBoard scalars are written only through a `StepSummaries` handed to the runner:
the loop reads no summary writer, step or recording condition that someone else installed.
"""

import concurrent.futures
import contextlib
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import errors

# Columns of the [n, 3] row tensors the epoch functions slice, and what each task's step returns.
RS_COLUMNS = ("user", "item", "label")
KG_COLUMNS = ("head", "relation", "tail")
RS_OUTPUTS = ("rs_loss", "rs_base_loss", "rs_l2_loss")
KG_OUTPUTS = ("kge_loss", "kge_score", "kge_rmse")
# The signature of every epoch function: rows [n, 3] and the batch size.
ROWS_SPEC = tf.TensorSpec([None, 3], tf.int64)
BATCH_SIZE_SPEC = tf.TensorSpec([], tf.int64)
EVAL_BATCH_SIZE = 65536
# A scoring chunk's largest intermediates, in floats: with history_neighbours, the catalogue's
# items read with their KG tails (n_items × item_neighbours × dim) and the users' histories
# (history_length × dim a row), or, in a chunk of fewer history places than items, each place
# read with its tails (history_length × item_neighbours × dim a row; MKR._history_mean).
EVAL_CHUNK_FLOATS = 1 << 26
# With jit_compile, LazyAdam updates a table of at most this many rows per batch row as a whole,
# masked to the rows a batch touches (optimizers.LazyAdam.masked_rows_limit): measured on music,
# book and MovieLens-sized data, XLA runs that faster than the row set's dynamic size up to about
# a few hundred table rows per batch row, and slower at book's 2,400 (benchmarks/phases.py).
MASKED_ROWS_PER_BATCH_ROW = 256
# Steps each closure the parameter-server chief schedules runs in one graph loop: fewer, longer
# closures amortise the scheduling round trip, more keep the workers evenly loaded.
STEPS_PER_CLOSURE = 32

_IDS_SPEC = tf.TensorSpec([None], tf.int64)


def eval_batch_size(model) -> int:
    """Rows a scoring chunk of `model` holds: EVAL_BATCH_SIZE, or fewer where its histories read
    with their KG tails would pass EVAL_CHUNK_FLOATS."""
    if not getattr(model, "history_neighbours", False):
        return EVAL_BATCH_SIZE
    catalogue = model.n_items * model.n_neighbours * model.dim
    if catalogue < EVAL_CHUNK_FLOATS:
        # A chunk of fewer places than items reads each place's tails: still below `catalogue`.
        rows = (EVAL_CHUNK_FLOATS - catalogue) // (model.history_length * model.dim)
    else:
        # Chunks too small to read the catalogue once, each place read with its tails.
        rows = EVAL_CHUNK_FLOATS // (model.history_length * model.n_neighbours * model.dim)
    return max(1, min(EVAL_BATCH_SIZE, rows))


def columns(rows, names):
    """The batch dict {name: column} of an [n, len(names)] row tensor."""
    return {name: rows[:, index] for index, name in enumerate(names)}


class StepSummaries:
    """What the epoch loop needs to write step-level TensorBoard scalars, handed to it explicitly.

    The contract, read by `epoch_loop` when it is traced:
      writer   a tf.summary writer; the loop writes to it under its own `as_default`.
      step     an int64 tf.Variable counting the training steps of both tasks; each step adds 1.
      every    steps with step % every == 0 write `step/<output>` (the mean outputs since the
               last write) and `step/<task>_examples_per_second`.
      active   a bool tf.Variable; `close()` turns it off for good, so that the traced epoch
               graphs, which hold the writer, still run once it is closed.
    """

    def __init__(self, writer, step: tf.Variable, every: int):
        if every < 1:
            raise errors.ConfigError(f"step summaries need every >= 1 steps, got {every}")
        self.writer, self.step, self.every = writer, step, int(every)
        self.active = tf.Variable(True, trainable=False)

    def should_write(self):
        return tf.logical_and(self.active, tf.equal(self.step % self.every, 0))

    def close(self) -> None:
        self.active.assign(False)


def epoch_loop(step_fn, rows, batch_size, output_names, summaries: StepSummaries | None = None):
    """`step_fn` over consecutive batches of `rows`, in a graph loop (call it in a tf.function).

    `step_fn(batch_rows)` returns a dict with `output_names` among its keys. Returns their
    example-weighted means, the step count and the first non-finite step (-1: none). With
    `summaries`, steps write TensorBoard scalars as `StepSummaries` describes; a loop traced here
    to run on another machine (a parameter-server worker) gets none, since this process's
    writer and step variable do not live there.
    """
    # Slicing one in-memory tensor inside a graph loop measured 2-5x faster than iterating a
    # tf.data pipeline of the same batches on CPU, where MKR's steps are only microseconds long.
    n_rows = tf.shape(rows, out_type=tf.int64)[0]
    task = output_names[0].partition("_")[0]

    def zeros():
        return {name: tf.constant(0.0) for name in output_names}

    def write_and_reset(window):
        now = tf.timestamp()
        # An absolute scope: tags would otherwise take the graph loop's prefixes.
        with (summaries.writer.as_default(step=summaries.step), tf.summary.record_if(True),
              tf.name_scope("step/")):
            for name in output_names:
                tf.summary.scalar(name, window["totals"][name] / window["rows"])
            tf.summary.scalar(f"{task}_examples_per_second", window["rows"] / tf.cast(
                tf.maximum(now - window["start"], 1e-9), tf.float32))
        return {"totals": zeros(), "rows": tf.constant(0.0), "start": now}

    def body(state):
        start = state["start"]
        batch = rows[start:start + batch_size]
        outputs = step_fn(batch)
        weight = tf.cast(tf.shape(batch)[0], tf.float32)
        first_nonfinite_step = tf.where(
            tf.logical_and(state["first_nonfinite_step"] < 0,
                           tf.logical_not(tf.math.is_finite(outputs[output_names[0]]))),
            state["steps"], state["first_nonfinite_step"])
        new_state = {
            "start": start + batch_size, "steps": state["steps"] + 1,
            "first_nonfinite_step": first_nonfinite_step,
            "totals": {name: state["totals"][name] + outputs[name] * weight
                       for name in output_names}}
        if summaries is not None:
            window = state["window"]
            with tf.control_dependencies([summaries.step.assign_add(1)]):
                window = {"totals": {name: window["totals"][name] + outputs[name] * weight
                                     for name in output_names},
                          "rows": window["rows"] + weight, "start": window["start"]}
            # One branch per step, rather than one per scalar: on book's 2,600 steps an
            # epoch the per-scalar conditions cost a third of the training time.
            new_state["window"] = tf.cond(summaries.should_write(),
                                          lambda: write_and_reset(window), lambda: window)
        return (new_state,)

    state = {"start": tf.constant(0, tf.int64), "steps": tf.constant(0, tf.int64),
             "first_nonfinite_step": tf.constant(-1, tf.int64), "totals": zeros()}
    if summaries is not None:
        state["window"] = {"totals": zeros(), "rows": tf.constant(0.0), "start": tf.timestamp()}
    (state,) = tf.while_loop(lambda state: state["start"] < n_rows, body, (state,))
    means = {name: total / tf.maximum(tf.cast(n_rows, tf.float32), 1.0)
             for name, total in state["totals"].items()}
    means["steps"] = state["steps"]
    means["first_nonfinite_step"] = state["first_nonfinite_step"]
    return means


def epoch_function(step, output_names, summaries: StepSummaries | None = None):
    """A graph function (rows, batch_size) of `epoch_loop` running `step` on each batch's rows."""
    # autograph=False: the loop is written with tf.while_loop and tf.cond already.
    @tf.function(input_signature=[ROWS_SPEC, BATCH_SIZE_SPEC], autograph=False)
    def epoch(rows, batch_size):
        return epoch_loop(step, rows, batch_size, output_names, summaries)
    return epoch


def make_runner(strategy: tf.distribute.Strategy | None, model, jit_compile: bool = False,
                summaries: StepSummaries | None = None):
    """The runner of `strategy` for `model`, which must have been built in `distribute.scope`.

    `jit_compile` (XLA-compiled epochs) is for the default strategy only. `summaries` are
    written by the default and the synchronous runners; parameter-server workers write none.
    """
    if strategy is None:
        return LocalRunner(model, jit_compile, summaries)
    if jit_compile:
        raise errors.ConfigError("jit_compile works with the default strategy only")
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return ParameterServerRunner(strategy, model)
    return SynchronousRunner(strategy, model, summaries)


def _combine(parts: Sequence[tuple[int, dict[str, Any]]], output_names) -> dict[str, Any]:
    """One epoch's figures from (row count, `epoch_loop` result) of its consecutive parts."""
    n_rows = sum(count for count, _ in parts)
    combined: dict[str, Any] = {
        name: sum(count * float(result[name]) for count, result in parts) / max(n_rows, 1)
        for name in output_names}
    steps, first_nonfinite_step = 0, -1
    for _, result in parts:
        if first_nonfinite_step < 0 <= int(result["first_nonfinite_step"]):
            first_nonfinite_step = steps + int(result["first_nonfinite_step"])
        steps += int(result["steps"])
    combined.update(steps=steps, first_nonfinite_step=first_nonfinite_step)
    return combined


def _chunks(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[start:start + size] for start in range(0, len(rows), size)]


def _replica_share(rows):
    """This replica's contiguous share of `rows`; shares differ in size by one row at most."""
    context = tf.distribute.get_replica_context()
    replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
    n_replicas = context.num_replicas_in_sync
    n_rows = tf.shape(rows, out_type=tf.int64)[0]
    return rows[replica * n_rows // n_replicas:(replica + 1) * n_rows // n_replicas]


def _distributed_step(strategy, update, column_names, output_names):
    """A step on one global batch of rows: `update` on every replica's share, outputs summed.

    Each replica's outputs are its part of the global batch's (see `MKR.rec_update`), so their
    sum is the global batch's figure. One reduction of the stacked outputs costs one collective.
    """
    def replica_update(rows):
        outputs = update(columns(_replica_share(rows), column_names),
                         global_batch_size=tf.shape(rows)[0])
        return tf.stack([outputs[name] for name in output_names])

    def step(rows):
        totals = strategy.reduce(tf.distribute.ReduceOp.SUM,
                                 strategy.run(replica_update, args=(rows,)), axis=None)
        return {name: totals[index] for index, name in enumerate(output_names)}

    return step


def padded_batches(rows: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` [n, 3] as [ceil(n / batch_size), batch_size, 3] batches and their row weights.

    The last batch is filled up with copies of its first row, weighted 0: see `MKR.rec_update`.
    """
    n_rows = len(rows)
    n_batches = -(-n_rows // batch_size)
    padding = n_batches * batch_size - n_rows
    weights = np.ones(n_batches * batch_size, np.float32)
    if padding:
        rows = np.concatenate([rows, np.repeat(rows[n_rows - n_rows % batch_size][None], padding,
                                               axis=0)])
        weights[n_rows:] = 0.0
    return rows.reshape(n_batches, batch_size, 3), weights.reshape(n_batches, batch_size)


class CompiledEpoch:
    """A whole epoch of `update` steps as one XLA computation, compiled once per row count.

    XLA needs fixed shapes, so the epoch's rows come as `padded_batches`. Per-step dispatch is
    what costs on CPU (MKR's steps are microseconds of arithmetic), and a compiled loop has none.
    Called as `epoch_loop`'s epoch functions are, with the same results. XLA cannot write
    summaries, so the loop returns each step's outputs, and `summaries` are written from them
    after the loop (their examples/s is then the epoch's mean rate).
    """

    def __init__(self, update, column_names, output_names,
                 summaries: StepSummaries | None = None):
        self.output_names, self.summaries = output_names, summaries

        @tf.function(jit_compile=True, autograph=False)
        def run(batches, weights, n_steps):
            def body(step, per_step):
                batch = columns(batches[step], column_names)
                batch["weight"] = weights[step]
                outputs = update(batch)
                return step + 1, tf.tensor_scatter_nd_update(
                    per_step, [[step]], [tf.stack([outputs[name] for name in output_names])])
            per_step = tf.zeros([tf.shape(batches)[0], len(output_names)])
            _, per_step = tf.while_loop(lambda step, _: step < n_steps, body,
                                        (tf.constant(0), per_step))
            return per_step

        self.run = run

    def experimental_get_tracing_count(self) -> int:
        return self.run.experimental_get_tracing_count()

    def trace(self, n_rows: int, batch_size: int) -> Callable[[], Any]:
        """Traces the epoch for `n_rows` rows; returns the call that compiles it, which runs it
        for no step: nothing is trained."""
        n_batches = -(-n_rows // batch_size)
        no_steps = (tf.zeros([n_batches, batch_size, 3], tf.int64),
                    tf.zeros([n_batches, batch_size]), tf.constant(0))
        self.run.get_concrete_function(*no_steps)
        return lambda: self.run(*no_steps)

    def __call__(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        batches, weights = padded_batches(np.asarray(rows), batch_size)
        start = time.perf_counter()
        per_step = self.run(tf.constant(batches), tf.constant(weights),
                            tf.constant(len(batches))).numpy()
        seconds = time.perf_counter() - start
        rows_per_step = weights.sum(axis=1)
        means = {name: float(per_step[:, index] @ rows_per_step / max(rows_per_step.sum(), 1.0))
                 for index, name in enumerate(self.output_names)}
        nonfinite = np.flatnonzero(~np.isfinite(per_step[:, 0]))
        means["steps"] = len(batches)
        means["first_nonfinite_step"] = int(nonfinite[0]) if len(nonfinite) else -1
        if self.summaries is not None and len(batches):
            _write_step_windows(self.summaries, self.output_names, per_step, rows_per_step,
                                seconds)
        return means


def _write_step_windows(summaries: StepSummaries, output_names, per_step, rows_per_step,
                        seconds) -> None:
    """Writes what `epoch_loop` would have for steps whose outputs came back from XLA."""
    first_step = int(summaries.step.numpy()) + 1
    steps = np.arange(first_step, first_step + len(per_step))
    summaries.step.assign(int(steps[-1]))
    if not summaries.active.numpy():
        return
    ends = np.flatnonzero(steps % summaries.every == 0)
    if not len(ends):
        return
    # A window runs from the step after the last write in this epoch to a write step.
    starts = np.concatenate([[0], ends[:-1] + 1])
    weighted = np.concatenate([np.zeros([1, len(output_names)]),
                               np.cumsum(per_step * rows_per_step[:, None], axis=0)])
    rows = np.concatenate([[0.0], np.cumsum(rows_per_step)])
    window_rows = rows[ends + 1] - rows[starts]
    window_means = (weighted[ends + 1] - weighted[starts]) / window_rows[:, None]
    rate = rows[-1] / max(seconds, 1e-9)
    with summaries.writer.as_default(), tf.summary.record_if(True), tf.name_scope("step/"):
        for step, means in zip(steps[ends], window_means):
            for name, value in zip(output_names, means):
                tf.summary.scalar(name, value, step=int(step))
            tf.summary.scalar(f"{output_names[0].partition('_')[0]}_examples_per_second", rate,
                              step=int(step))


class LocalRunner:
    """The default strategy: whole-epoch graphs in this process, as fast as one process goes.

    The epochs are `epoch_loop`s of the model's `rec_step` / `kg_step`, or with `jit_compile`
    `CompiledEpoch`s of its `rec_update` / `kg_update`.
    """

    def __init__(self, model, jit_compile: bool = False, summaries: StepSummaries | None = None):
        self.model = model
        if jit_compile:
            self.epoch_functions = (
                CompiledEpoch(model.rec_update, RS_COLUMNS, RS_OUTPUTS, summaries),
                CompiledEpoch(model.kg_update, KG_COLUMNS, KG_OUTPUTS, summaries))
        else:
            self.epoch_functions = (
                epoch_function(lambda rows: model.rec_step(columns(rows, RS_COLUMNS)),
                               RS_OUTPUTS, summaries),
                epoch_function(lambda rows: model.kg_step(columns(rows, KG_COLUMNS)),
                               KG_OUTPUTS, summaries))

    def trace(self, rec_rows: int = 0, kg_rows: int = 0, batch_size: int = 1) -> None:
        """Builds the epoch and predict graphs before the first epoch; nothing is trained.

        Epochs of `rec_rows` and `kg_rows` rows in batches of `batch_size` are compiled then,
        with jit_compile, after the optimizers are told which tables to update masked
        (MASKED_ROWS_PER_BATCH_ROW). Without it, the step graph inside the loop is instantiated
        when it first runs on a batch: that stays in the first epoch.

        Each graph is traced here, in Python; its first call, which instantiates it (Grappler's
        optimisation, or XLA's compilation), is C++ that releases the GIL, so it runs in a
        thread while the next graph is traced.
        """
        no_rows = np.zeros([0, 3], np.int64)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=3)
        try:
            first_calls = []
            for epoch, n_rows in zip(self.epoch_functions, (rec_rows, kg_rows)):
                if isinstance(epoch, CompiledEpoch):
                    if n_rows:
                        with _masked_rows(self.model, MASKED_ROWS_PER_BATCH_ROW * batch_size):
                            first_call = epoch.trace(n_rows, batch_size)
                        first_calls.append(pool.submit(first_call))
                else:
                    epoch.get_concrete_function(ROWS_SPEC, BATCH_SIZE_SPEC)
                    first_calls.append(pool.submit(_run_epoch, epoch, no_rows, 1))
            self.model.predict_batch.get_concrete_function()
            no_ids = tf.zeros([0], tf.int64)
            first_calls.append(pool.submit(self.model.predict_batch, no_ids, no_ids))
            for first_call in first_calls:
                first_call.result()
        finally:
            # Ctrl-C does not wait for a compilation it would throw away.
            pool.shutdown(wait=False, cancel_futures=True)

    def rec_epoch(self, rows, batch_size: int) -> dict[str, Any]:
        return _run_epoch(self.epoch_functions[0], rows, batch_size)

    def kg_epoch(self, rows, batch_size: int) -> dict[str, Any]:
        return _run_epoch(self.epoch_functions[1], rows, batch_size)

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities for the (user, item) columns of `ratings`, in large graph batches."""
        return np.concatenate([
            self.model.predict_batch(tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])).numpy()
            for chunk in np.array_split(
                ratings, max(1, -(-len(ratings) // eval_batch_size(self.model))))])


@contextlib.contextmanager
def _masked_rows(model, limit: int):
    """The model's LazyAdams update tables of at most `limit` rows masked, in graphs traced
    meanwhile (`optimizers.LazyAdam.masked_rows_limit`)."""
    optimizers = (model.rs_optimizer, model.kge_optimizer)
    previous = [getattr(optimizer, "masked_rows_limit", 0) for optimizer in optimizers]
    for optimizer in optimizers:
        optimizer.masked_rows_limit = limit
    try:
        yield
    finally:
        for optimizer, value in zip(optimizers, previous):
            optimizer.masked_rows_limit = value


def _run_epoch(epoch, rows, batch_size: int) -> dict[str, Any]:
    if isinstance(epoch, CompiledEpoch):
        return epoch(rows, batch_size)
    return epoch(tf.constant(rows), tf.constant(batch_size, tf.int64))


def predict(model, ratings: np.ndarray) -> np.ndarray:
    """Click probabilities of `model` for the (user, item) columns of `ratings`, in this process."""
    return LocalRunner(model).predict(ratings)


class _StrategyRunner:
    """What the runners of tf.distribute strategies share: one distributed step per task, each
    in an `epoch_function` that the subclass's `_run_epoch(epoch, rows, batch_size,
    output_names)` calls on parts of an epoch's rows, as its strategy needs."""

    def __init__(self, strategy: tf.distribute.Strategy, model,
                 summaries: StepSummaries | None = None):
        self.strategy, self.model = strategy, model
        self._rec_epoch = epoch_function(
            _distributed_step(strategy, model.rec_update, RS_COLUMNS, RS_OUTPUTS), RS_OUTPUTS,
            summaries)
        self._kg_epoch = epoch_function(
            _distributed_step(strategy, model.kg_update, KG_COLUMNS, KG_OUTPUTS), KG_OUTPUTS,
            summaries)

    def trace(self, rec_rows: int = 0, kg_rows: int = 0, batch_size: int = 1) -> None:
        """Nothing ahead: these graphs are traced by their first call, on real batches (a
        collective keeps the shapes it first sees)."""

    def rec_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._rec_epoch, rows, batch_size, RS_OUTPUTS)

    def kg_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._kg_epoch, rows, batch_size, KG_OUTPUTS)


class SynchronousRunner(_StrategyRunner):
    """mirrored and multi_worker: all replicas step together on shares of each global batch.

    Each worker trains on the same rows in the same order (the trainer's seeded shuffles), so
    a global batch is what one process would train on, and the replicas' summed gradients are
    that batch's: results match the default strategy's up to float summation order.
    """

    def _run_epoch(self, epoch, rows, batch_size, output_names):
        # A collective op in a graph loop keeps its first iteration's shapes for every later
        # one, so the whole batches run in one loop and a smaller last batch in a call of its own.
        n_whole = len(rows) - len(rows) % batch_size
        parts = [part for part in (rows[:n_whole], rows[n_whole:]) if len(part)]
        size = tf.constant(batch_size, tf.int64)
        return _combine([(len(part), epoch(tf.constant(part), size)) for part in parts],
                        output_names)

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities, each replica scoring its share of each chunk, gathered in order."""
        return np.concatenate([
            self._predict(tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])).numpy()
            for chunk in _chunks(ratings, eval_batch_size(self.model))])

    @tf.function(input_signature=[_IDS_SPEC, _IDS_SPEC])
    def _predict(self, users, items):
        def replica_predict(users, items):
            return self.model({"user": _replica_share(users), "item": _replica_share(items)})
        return self.strategy.gather(self.strategy.run(replica_predict, args=(users, items)), axis=0)


class ParameterServerRunner(_StrategyRunner):
    """parameter_server: the chief schedules closures of STEPS_PER_CLOSURE steps on free workers.

    Each closure gets its rows from the chief: consecutive batches of the epoch's shuffled rows,
    so an epoch still trains on every row once, in the trainer's seeded order, and no worker
    needs a copy of the data. Workers step asynchronously: each step reads the parameters as
    they are then and writes its sparse updates to the shards' servers. A closure lost with its
    worker is re-run on another by the coordinator.
    """

    def __init__(self, strategy: tf.distribute.experimental.ParameterServerStrategy, model):
        # A keras.Variable the partitioner split holds a ShardedVariable, no longer a tf.Variable;
        # Keras cannot train it (only the mkr_tf.layers.Embedding tables are plain tf.Variables).
        split = [weight.path for weight in model.weights if isinstance(weight, keras.Variable)
                 and not isinstance(weight.value, tf.Variable)]
        if split:
            raise errors.ConfigError(f"min_shard_bytes is so small that the partitioner splits "
                             f"{', '.join(split)} too; only embedding tables can be sharded, "
                             f"so raise it above their size")
        # Traced on the chief, run on the workers: no step summaries (see epoch_loop).
        super().__init__(strategy, model)
        self.coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    def _run_epoch(self, epoch, rows, batch_size, output_names):
        size = tf.constant(batch_size, tf.int64)
        scheduled = [(len(chunk), self.coordinator.schedule(epoch, args=(tf.constant(chunk), size)))
                     for chunk in _chunks(rows, STEPS_PER_CLOSURE * batch_size)]
        self.coordinator.join()
        return _combine([(count, result.fetch()) for count, result in scheduled], output_names)

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities, chunks scored on whichever worker is free, gathered in order."""
        scheduled = [self.coordinator.schedule(self._predict, args=(tf.constant(chunk[:, 0]),
                                                                    tf.constant(chunk[:, 1])))
                     for chunk in _chunks(ratings, eval_batch_size(self.model))]
        return np.concatenate([result.fetch() for result in scheduled])

    @tf.function(input_signature=[_IDS_SPEC, _IDS_SPEC])
    def _predict(self, users, items):
        def replica_predict(users, items):
            return self.model({"user": _replica_share(users), "item": _replica_share(items)})
        # ParameterServerStrategy has no gather: a worker's replicas' shares, in replica order.
        return tf.concat(self.strategy.experimental_local_results(
            self.strategy.run(replica_predict, args=(users, items))), axis=0)
