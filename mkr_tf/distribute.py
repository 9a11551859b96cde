"""MKR on TensorFlow's distribution engine: strategies from TF_CONFIG, epoch runners, the chief.

`mkr_tf.train --strategy` picks one of STRATEGIES:

  default           one process: MKR's own whole-epoch graphs (`LocalRunner`), unchanged.
  mirrored          `tf.distribute.MirroredStrategy`, synchronous data parallelism over this
                    machine's GPUs (or its CPU, one replica).
  multi_worker      `tf.distribute.MultiWorkerMirroredStrategy`, the same over the machines that
                    TF_CONFIG lists; every worker holds every variable.
  parameter_server  `tf.distribute.ParameterServerStrategy` with a `ClusterCoordinator`: the
                    chief schedules asynchronous steps on the workers, and a variable partitioner
                    shards the user, item and entity tables in rows over the parameter servers.

In every strategy each step is `MKR.rec_update` / `kg_update` (the bodies of `rec_step` and
`kg_step`) as `strategy.run`'s replica function, on that replica's share of a global batch of
`batch_size` rows, with losses scaled to the global batch. Evaluation splits the rows between
replicas and gathers the scores back in order. Only the chief (`is_chief`) writes files.
"""

import contextlib
import os
import socket
from typing import Any, NoReturn, Sequence

import keras
import numpy as np
import tensorflow as tf

from mkr_tf import optimizers as mkr_optimizers
from mkr_tf.config import DEFAULT_MIN_SHARD_BYTES, STRATEGIES  # noqa: F401 (re-exported)
from mkr_tf.model import (KG_COLUMNS, KG_OUTPUTS, MKR, RS_COLUMNS, RS_OUTPUTS, columns,
                          epoch_function)

# A parameter_server cluster's tasks other than the chief only serve: the chief runs this program.
SERVER_TASK_TYPES = ("worker", "ps")
EVAL_BATCH_SIZE = 65536
# Steps each closure the parameter-server chief schedules runs in one graph loop: fewer, longer
# closures amortise the scheduling round trip, more keep the workers evenly loaded.
STEPS_PER_CLOSURE = 32

_IDS_SPEC = tf.TensorSpec([None], tf.int64)


def create_strategy(
        name: str, min_shard_bytes: int = DEFAULT_MIN_SHARD_BYTES) -> tf.distribute.Strategy | None:
    """The strategy `name` (one of STRATEGIES), configured from TF_CONFIG; None for "default".

    Create it before any other TensorFlow work: MultiWorkerMirroredStrategy sets up the
    collective runtime, and ParameterServerStrategy connects to the cluster. With
    parameter_server, tables of at least 2·`min_shard_bytes` are split into shards of at least
    `min_shard_bytes`, at most one per parameter server.
    """
    if name == "default":
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        # Reads TF_CONFIG; without one it is a cluster of this process alone.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "parameter_server":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        jobs = resolver.cluster_spec().as_dict()
        if "ps" not in jobs or "worker" not in jobs:
            raise ValueError("--strategy=parameter_server needs TF_CONFIG with a cluster of "
                             "\"chief\", \"worker\" and \"ps\" tasks (README, Distributed training)")
        if resolver.task_type != "chief":
            raise ValueError(f"the parameter_server chief runs training; this task is "
                             f"{resolver.task_type}:{resolver.task_id}, which only serves")
        if min_shard_bytes < 1:
            raise ValueError(f"min_shard_bytes must be an integer >= 1, got {min_shard_bytes}")
        # TensorFlow's advice for the coordinator: fail RPCs to a lost worker at once, so that
        # its closures move to the other workers instead of waiting on it.
        os.environ["GRPC_FAIL_FAST"] = "use_caller"
        partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=min_shard_bytes, max_shards=len(jobs["ps"]))
        return tf.distribute.experimental.ParameterServerStrategy(
            resolver, variable_partitioner=partitioner)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def free_local_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1, for a cluster of local processes (tests, benchmarks).

    The sockets are held open together while the ports are chosen, so that the ports differ.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def task_type() -> str | None:
    """This process's task type in TF_CONFIG ("chief", "worker", "ps"), None without one."""
    return tf.distribute.cluster_resolver.TFConfigClusterResolver().task_type


def serve_forever() -> NoReturn:
    """Runs this process's `tf.distribute.Server` (parameter_server worker or ps) until killed.

    Such tasks only host variables and run what the chief schedules on them; the cluster has no
    shutdown call, so a job scheduler (or the user) ends them once the chief has finished.
    """
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(), job_name=resolver.task_type, task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc", start=True)
    server.join()
    raise RuntimeError("tf.distribute.Server.join returned")  # It never does.


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes the run's files (checkpoints, weights, results, exports).

    TensorFlow's own answer: multi_worker's chief task, or worker 0 without one; the
    coordinator under parameter_server; the one process otherwise.
    """
    return strategy is None or strategy.extended.should_checkpoint


def scope(strategy: tf.distribute.Strategy | None):
    """The scope to create the model and its optimizers in."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def make_runner(strategy: tf.distribute.Strategy | None, model: MKR, jit_compile: bool = False):
    """The epoch runner of `strategy` for `model`, which must have been built in `scope(strategy)`.

    Each runner has rec_epoch(rows, batch_size) and kg_epoch(rows, batch_size), which train on
    the rows in their order and return what `MKR.rec_epoch` returns, predict(ratings), and
    trace(), which builds the graphs that it can build before the first epoch. `jit_compile`
    (XLA-compiled steps) is for the default strategy only.
    """
    if strategy is None:
        return LocalRunner(model, jit_compile)
    if jit_compile:
        raise ValueError("jit_compile works with the default strategy only")
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return ParameterServerRunner(strategy, model)
    return SynchronousRunner(strategy, model)


def assert_agreed(strategy: tf.distribute.Strategy | None, value: int, what: str) -> None:
    """Raises unless every multi_worker worker has the same `value` (it decides their step count).

    Synchronous workers that disagree on how many steps to run would wait on each other's
    collectives forever; this turns that into an error naming `what`.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    @tf.function
    def gather_values():
        return strategy.gather(strategy.run(lambda: tf.constant([value], tf.int64)), axis=0)

    values = gather_values().numpy()
    low, high = values.min(), values.max()
    if low != high:
        raise ValueError(f"the workers disagree on {what}: {low} to {high} (this one: {value})")


def describe(strategy: tf.distribute.Strategy | None, model: MKR) -> dict[str, Any]:
    """Where training ran: the strategy, replica count and, under parameter_server, every table's
    shards with the task holding each and its optimizer slots."""
    if strategy is None:
        return {"strategy": "default", "replicas": 1}
    description: dict[str, Any] = {"replicas": strategy.num_replicas_in_sync}
    if not isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        description["strategy"] = "multi_worker" if multi_worker else "mirrored"
        return description
    jobs = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec().as_dict()
    description.update(strategy="parameter_server", workers=len(jobs["worker"]),
                       parameter_servers=len(jobs["ps"]), tables={})
    optimizers = (model.rs_optimizer, model.kge_optimizer)
    for layer in (model.user_embedding, model.item_embedding, model.entity_embedding,
                  model.relation_embedding):
        description["tables"][layer.name] = [
            {"device": shard.device, "rows": int(shard.shape[0]),
             "slot_devices": sorted({slot.value.device for optimizer in optimizers
                                     for slot in mkr_optimizers.moments(optimizer, shard)})}
            for shard in layer.shards]
    return description


def _combine(parts: Sequence[tuple[int, dict[str, Any]]], output_names) -> dict[str, Any]:
    """One epoch's figures from (row count, `MKR.epoch_loop` result) of its consecutive parts."""
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


def _epoch_function(strategy, update, column_names, output_names, step_summaries):
    return epoch_function(_distributed_step(strategy, update, column_names, output_names),
                          output_names, step_summaries=step_summaries)


class LocalRunner:
    """The default strategy: MKR's own whole-epoch graphs, as fast as one process goes."""

    def __init__(self, model: MKR, jit_compile: bool = False):
        self.model = model
        self._rec_epoch, self._kg_epoch = model.epoch_functions(jit_compile)

    def trace(self) -> None:
        """Traces and instantiates the epoch and predict graphs by running them on no rows.

        Nothing is trained. The step graph inside the loop is instantiated, and with
        jit_compile compiled by XLA, when it first runs on a batch: that stays in the first epoch.
        """
        no_rows, no_ids = tf.zeros([0, 3], tf.int64), tf.zeros([0], tf.int64)
        batch_size = tf.constant(1, tf.int64)
        self._rec_epoch(no_rows, batch_size)
        self._kg_epoch(no_rows, batch_size)
        self.model.predict_batch(no_ids, no_ids)

    def rec_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._rec_epoch(tf.constant(rows), tf.constant(batch_size, tf.int64))

    def kg_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._kg_epoch(tf.constant(rows), tf.constant(batch_size, tf.int64))

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities for the (user, item) columns of `ratings`, in large graph batches."""
        return np.concatenate([
            self.model.predict_batch(tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])).numpy()
            for chunk in np.array_split(ratings, max(1, -(-len(ratings) // EVAL_BATCH_SIZE)))])


class SynchronousRunner:
    """mirrored and multi_worker: all replicas step together on shares of each global batch.

    Each worker trains on the same rows in the same order (the trainer's seeded shuffles), so
    a global batch is what one process would train on, and the replicas' summed gradients are
    that batch's: results match the default strategy's up to float summation order.
    """

    def __init__(self, strategy: tf.distribute.Strategy, model: MKR):
        self.strategy, self.model = strategy, model
        self._rec_epoch = _epoch_function(strategy, model.rec_update, RS_COLUMNS, RS_OUTPUTS,
                                          step_summaries=True)
        self._kg_epoch = _epoch_function(strategy, model.kg_update, KG_COLUMNS, KG_OUTPUTS,
                                         step_summaries=True)

    def trace(self) -> None:
        """Nothing ahead: these graphs are traced by their first call, on real batches (a
        collective keeps the shapes it first sees)."""

    def rec_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._rec_epoch, rows, batch_size, RS_OUTPUTS)

    def kg_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._kg_epoch, rows, batch_size, KG_OUTPUTS)

    def _run_epoch(self, epoch_function, rows, batch_size, output_names):
        # A collective op in a graph loop keeps its first iteration's shapes for every later
        # one, so the whole batches run in one loop and a smaller last batch in a call of its own.
        n_whole = len(rows) - len(rows) % batch_size
        parts = [part for part in (rows[:n_whole], rows[n_whole:]) if len(part)]
        size = tf.constant(batch_size, tf.int64)
        return _combine([(len(part), epoch_function(tf.constant(part), size)) for part in parts],
                        output_names)

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities, each replica scoring its share of each chunk, gathered in order."""
        return np.concatenate([
            self._predict(tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])).numpy()
            for chunk in _chunks(ratings, EVAL_BATCH_SIZE)])

    @tf.function(input_signature=[_IDS_SPEC, _IDS_SPEC])
    def _predict(self, users, items):
        def replica_predict(users, items):
            return self.model({"user": _replica_share(users), "item": _replica_share(items)})
        return self.strategy.gather(self.strategy.run(replica_predict, args=(users, items)), axis=0)


class ParameterServerRunner:
    """parameter_server: the chief schedules closures of STEPS_PER_CLOSURE steps on free workers.

    Each closure gets its rows from the chief: consecutive batches of the epoch's shuffled rows,
    so an epoch still trains on every row once, in the trainer's seeded order, and no worker
    needs a copy of the data. Workers step asynchronously: each step reads the parameters as
    they are then and writes its sparse updates to the shards' servers. A closure lost with its
    worker is re-run on another by the coordinator.
    """

    def __init__(self, strategy: tf.distribute.experimental.ParameterServerStrategy, model: MKR):
        # A keras.Variable the partitioner split holds a ShardedVariable, no longer a tf.Variable;
        # Keras cannot train it (only the mkr_tf.layers.Embedding tables are plain tf.Variables).
        split = [weight.path for weight in model.weights if isinstance(weight, keras.Variable)
                 and not isinstance(weight.value, tf.Variable)]
        if split:
            raise ValueError(f"min_shard_bytes is so small that the partitioner splits "
                             f"{', '.join(split)} too; only embedding tables can be sharded, "
                             f"so raise it above their size")
        self.strategy, self.model = strategy, model
        self.coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        # Traced on the chief, run on the workers: this process's summary writer is not there.
        self._rec_epoch = _epoch_function(strategy, model.rec_update, RS_COLUMNS, RS_OUTPUTS,
                                          step_summaries=False)
        self._kg_epoch = _epoch_function(strategy, model.kg_update, KG_COLUMNS, KG_OUTPUTS,
                                         step_summaries=False)

    def trace(self) -> None:
        """Nothing ahead: these graphs are traced by their first call, on real batches (a
        collective keeps the shapes it first sees)."""

    def rec_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._rec_epoch, rows, batch_size, RS_OUTPUTS)

    def kg_epoch(self, rows: np.ndarray, batch_size: int) -> dict[str, Any]:
        return self._run_epoch(self._kg_epoch, rows, batch_size, KG_OUTPUTS)

    def _run_epoch(self, epoch_function, rows, batch_size, output_names):
        size = tf.constant(batch_size, tf.int64)
        scheduled = [(len(chunk), self.coordinator.schedule(epoch_function,
                                                            args=(tf.constant(chunk), size)))
                     for chunk in _chunks(rows, STEPS_PER_CLOSURE * batch_size)]
        self.coordinator.join()
        return _combine([(count, result.fetch()) for count, result in scheduled], output_names)

    def predict(self, ratings: np.ndarray) -> np.ndarray:
        """Click probabilities, chunks scored on whichever worker is free, gathered in order."""
        scheduled = [self.coordinator.schedule(self._predict, args=(tf.constant(chunk[:, 0]),
                                                                    tf.constant(chunk[:, 1])))
                     for chunk in _chunks(ratings, EVAL_BATCH_SIZE)]
        return np.concatenate([result.fetch() for result in scheduled])

    @tf.function(input_signature=[_IDS_SPEC, _IDS_SPEC])
    def _predict(self, users, items):
        def replica_predict(users, items):
            return self.model({"user": _replica_share(users), "item": _replica_share(items)})
        # ParameterServerStrategy has no gather: a worker's replicas' shares, in replica order.
        return tf.concat(self.strategy.experimental_local_results(
            self.strategy.run(replica_predict, args=(users, items))), axis=0)
