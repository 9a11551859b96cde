"""MKR on TensorFlow's distribution strategies: the strategy from TF_CONFIG, its scope, the chief.

`mkr_tf.train --strategy` picks one of STRATEGIES:

  default           one process: `engine.LocalRunner`'s whole-epoch graphs, unchanged.
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
replicas and gathers the scores back in order (`engine.make_runner` makes each strategy's
runner). Only the chief (`is_chief`) writes files.
"""

import contextlib
import os
import socket
from typing import Any, NoReturn

import tensorflow as tf

from mkr_tf import optimizers as mkr_optimizers
from mkr_tf import errors
from mkr_tf.config import DEFAULT_MIN_SHARD_BYTES, STRATEGIES  # noqa: F401 (re-exported)
from mkr_tf.model import MKR

# A parameter_server cluster's tasks other than the chief only serve: the chief runs this program.
SERVER_TASK_TYPES = ("worker", "ps")


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
            raise errors.ConfigError("--strategy=parameter_server needs TF_CONFIG with a cluster of "
                             "\"chief\", \"worker\" and \"ps\" tasks (README, Distributed training)")
        if resolver.task_type != "chief":
            raise errors.ConfigError(f"the parameter_server chief runs training; this task is "
                             f"{resolver.task_type}:{resolver.task_id}, which only serves")
        if min_shard_bytes < 1:
            raise errors.ConfigError(f"min_shard_bytes must be an integer >= 1, got {min_shard_bytes}")
        # TensorFlow's advice for the coordinator: fail RPCs to a lost worker at once, so that
        # its closures move to the other workers instead of waiting on it.
        os.environ["GRPC_FAIL_FAST"] = "use_caller"
        partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=min_shard_bytes, max_shards=len(jobs["ps"]))
        return tf.distribute.experimental.ParameterServerStrategy(
            resolver, variable_partitioner=partitioner)
    raise errors.ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


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
        raise errors.RunDirError(f"the workers disagree on {what}: {low} to {high} (this one: {value})")


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
