"""What a run's tables and layers take in memory and on disk, worked out before any is built.

One far id or a huge `--dim` would otherwise surface as an out-of-memory crash inside TensorFlow
or a run folder of many gigabytes; `check` refuses them up front with the figures.
"""

import dataclasses
import math
import os
import resource
import shutil

from mkr_tf import errors
from mkr_tf import data as mkr_data
from mkr_tf.config import MKRConfig

_FLOAT_BYTES = 4
# Each of the two optimizers (lazy or dense Adam) keeps two slots per variable it trains, and
# the item and entity tables are trained by both, and the best epoch's weights are kept beside
# them (trainer.BestWeights): up to six copies of the weights.
_COPIES_IN_TRAINING = 6
# best.weights.h5 and checkpoints hold the optimizers' slots too, plus per-variable metadata
# (HDF5's is about 1.5 KB a variable).
_WEIGHTS_FILE_OVERHEAD = 128 * 1024
_CHECKPOINT_OVERHEAD = 64 * 1024
# Room asked beyond a file's expected size before it is written.
_MARGIN = 1.25


@dataclasses.dataclass(frozen=True)
class Plan:
    # The embedding tables, and the users' histories and items' neighbours, whose int64 ids are
    # counted as two float32 parameters each.
    table_parameters: int
    layer_parameters: int  # towers, cross units and heads

    @property
    def weight_bytes(self) -> int:
        return (self.table_parameters + self.layer_parameters) * _FLOAT_BYTES

    @property
    def memory_bytes(self) -> int:
        return self.weight_bytes * _COPIES_IN_TRAINING

    @property
    def weights_file_bytes(self) -> int:
        return self.memory_bytes + _WEIGHTS_FILE_OVERHEAD

    @property
    def checkpoint_bytes(self) -> int:
        return self.memory_bytes + _CHECKPOINT_OVERHEAD

    @property
    def disk_bytes(self) -> int:
        """best.weights.h5, two kept checkpoints and the one being written."""
        return self.weights_file_bytes + 3 * self.checkpoint_bytes

    def describe(self) -> str:
        return (f"planned memory: tables {human(self.table_parameters * _FLOAT_BYTES)} and layers "
                f"{human(self.layer_parameters * _FLOAT_BYTES)} of weights, "
                f"{human(self.memory_bytes)} with the optimizers' slots and the best epoch's copy; "
                f"run folder about {human(self.disk_bytes)}")


def plan(config: MKRConfig, data: mkr_data.MKRData) -> Plan:
    """Parameter counts of `model.MKR` for `config` and `data`'s table sizes."""
    d = config.dim
    users = data.n_users if config.use_user_embedding else 0
    id_lists = 2 * (data.n_users * config.history_length + data.n_items * config.item_neighbours)
    tables = (users + data.n_items + data.n_entities + data.n_relations) * d + id_lists
    # TransE has no tail tower and no KGE head: it scores the tables' rows.
    mlp_kge = config.kge_model == "mlp"
    towers = (1 + mlp_kge) * config.L * (d * d + d)  # user and tail towers
    cross_units = config.L * 6 * d  # a few d-vectors each, whichever the unit
    # Both heads take a 2d input, keep width 2d for H - 1 layers, then end in d (KGE) or 1 (RS).
    wide_layers = (config.H - 1) * (4 * d * d + 2 * d)
    head = wide_layers + 2 * d * d + d if mlp_kge else 0
    rs_head = 0 if config.use_inner_product else wide_layers + 2 * d + 1
    return Plan(tables, towers + cross_units + head + rs_head)


def available_memory_bytes() -> int | None:
    """Memory the system can still give (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_disk_bytes(folder: os.PathLike) -> int:
    return shutil.disk_usage(folder).free


def check(planned: Plan, run_dir: os.PathLike | None, memory: bool = True) -> None:
    """Refuses a run whose weights would not fit in this process's memory (when `memory`), or
    whose run folder on the disk of `run_dir` (when given)."""
    available = available_memory_bytes() if memory else None
    if available is not None and planned.memory_bytes > available:
        raise errors.ResourceError(
            f"the model needs {human(planned.memory_bytes)} of memory (weights "
            f"{human(planned.weight_bytes)}, the optimizers' slots and the best epoch's copy), "
            f"more than the {human(available)} available; lower --dim or renumber ids densely")
    if run_dir is None:
        return
    free = free_disk_bytes(run_dir)
    if planned.disk_bytes > free:
        raise errors.ResourceError(
            f"{run_dir}: {human(free)} free, but the run folder needs about "
            f"{human(planned.disk_bytes)} (best weights and checkpoints with optimizer slots); "
            f"free space or choose another --run_dir")


def check_room(folder: os.PathLike, needed_bytes: int, what: str, then: str = "") -> None:
    """Refuses to start writing `what` (about `needed_bytes`) into `folder` without room for it.

    HDF5 does not fail cleanly on a full disk: it prints errors for every block and can crash
    the process at exit, so best.weights.h5 is never begun without the room to finish it. The
    free space and the process's file-size limit (`ulimit -f`) both count.
    """
    needed = int(needed_bytes * _MARGIN)
    free = free_disk_bytes(folder)
    if needed > free:
        raise errors.RunDirError(f"{folder}: cannot write {what}: {human(free)} free, about "
                                 f"{human(needed)} needed{then}")
    file_limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if file_limit != resource.RLIM_INFINITY and needed > file_limit:
        raise errors.RunDirError(f"{folder}: cannot write {what}: files are limited to "
                                 f"{human(file_limit)} (ulimit -f), about {human(needed)} "
                                 f"needed{then}")


def human(n_bytes: int) -> str:
    """1,023 bytes, 1.0 KB, 3.2 GB."""
    exponent = min(3, int(math.log(max(n_bytes, 1), 1024)))
    if exponent == 0:
        return f"{n_bytes:,} bytes"
    return f"{n_bytes / 1024**exponent:,.1f} {'KMG'[exponent - 1]}B"
