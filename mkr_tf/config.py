"""Hyper-parameters of an MKR run and the paper's per-dataset settings."""

import dataclasses
from typing import Any

# Table 2 of Wang et al. (WWW 2019) / the authors' released scripts.
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
        "movie": dict(n_epochs=20, dim=8, L=1, H=1, batch_size=4096, l2_weight=1e-6,
                                    lr_rs=0.02, lr_kge=0.01, kge_interval=3),
        "book": dict(n_epochs=10, dim=8, L=1, H=1, batch_size=32, l2_weight=1e-6,
                                  lr_rs=2e-4, lr_kge=2e-5, kge_interval=2),
        "music": dict(n_epochs=10, dim=4, L=2, H=1, batch_size=256, l2_weight=1e-6,
                                    lr_rs=1e-3, lr_kge=2e-4, kge_interval=2),
}

# Settings for the embedded synthetic data, chosen by MKR's eval AUC over split seeds 0-2. The KGE
# task runs every epoch with a learning rate well above the RS one, so that it groups items by genre
# before the RS task memorises the sparse ratings (lr_kge=0.2 overshoots).
SYNTHETIC_SETTINGS: dict[str, Any] = dict(
        n_epochs=30, dim=8, L=1, H=1, batch_size=4096, l2_weight=1e-6,
        lr_rs=3e-3, lr_kge=0.1, kge_interval=1)

# Where XLA-compiled steps make a whole run faster (benchmarks/phases.py): many small batches an
# epoch, so that the faster steps outweigh the compilation. Elsewhere steps stay uncompiled.
XLA_DATASETS = ("book",)

OPTIMIZERS = ("lazy_adam", "adam")
CROSS_UNITS = ("cross_compress", "dcn", "stitch")
RS_LOSSES = ("pointwise", "softmax")
SELECTIONS = ("auc", "auc+ndcg@10")
# mkr_tf.baselines' models, here so that flags can name them without importing TensorFlow.
BASELINES = ("popularity", "itemknn", "mf")
# How a run is distributed (`mkr_tf.distribute`), here so that flags can name them without
# importing TensorFlow.
STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")
# TensorFlow's own default for MinSizePartitioner: tables under 256 KiB stay whole.
DEFAULT_MIN_SHARD_BYTES = 256 << 10


@dataclasses.dataclass(frozen=True)
class MKRConfig:
    """Everything that defines a model and its training.

    Attributes keep the authors' flag names so results compare one-to-one.
    """
    n_epochs: int = 20
    dim: int = 8
    L: int = 1
    H: int = 1
    batch_size: int = 4096
    l2_weight: float = 1e-6
    lr_rs: float = 0.02
    lr_kge: float = 0.01
    kge_interval: int = 3
    use_inner_product: bool = True
    use_kge: bool = True
    optimizer: str = "lazy_adam"
    cross_unit: str = "cross_compress"
    train_ratio: float = 1.0
    cold_items: float = 0.0
    # Training options beyond the paper; 0 leaves each as the authors had it.
    init_scale: float = 0.0  # > 0: N(0, init_scale²) embedding rows instead of Glorot-uniform
    rs_negatives: int = 0  # > 0: this many fresh negatives per positive every epoch
    use_biases: bool = False  # user and item bias terms in the RS logit
    residual: bool = False  # cross&compress adds its input to its output
    tie_item_entity: bool = False  # one table for items and their entities
    rs_loss: str = "pointwise"  # or "softmax": each positive against the whole catalogue
    kge_negatives: int = 0  # > 0: a logistic KGE loss against this many corrupted tails
    history_length: int = 0  # > 0: users are also the mean of up to this many of their items
    # The epoch whose weights are kept: best eval AUC, or best eval AUC + eval NDCG@10.
    select_on: str = "auc"
    seed: int = 0
    # XLA-compiled training steps: a few seconds of compilation per process for faster steps.
    jit_compile: bool = False

    def __post_init__(self):
        positive_ints = ("n_epochs", "dim", "L", "H", "batch_size", "kge_interval")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("lr_rs", "lr_kge"):
            value = getattr(self, name)
            if not value > 0 or value != value or value == float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.l2_weight < float("inf"):
            raise ValueError(f"l2_weight must be a finite number >= 0, got {self.l2_weight!r}")
        if not 0 < self.train_ratio <= 1:
            raise ValueError(f"train_ratio must be in (0, 1], got {self.train_ratio!r}")
        if not 0 <= self.init_scale < float("inf"):
            raise ValueError(f"init_scale must be a finite number >= 0, got {self.init_scale!r}")
        if (not isinstance(self.rs_negatives, int) or isinstance(self.rs_negatives, bool)
                or self.rs_negatives < 0):
            raise ValueError(f"rs_negatives must be an integer >= 0, got {self.rs_negatives!r}")
        for name in ("kge_negatives", "history_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.rs_loss not in RS_LOSSES:
            raise ValueError(f"rs_loss must be one of {RS_LOSSES}, got {self.rs_loss!r}")
        if self.select_on not in SELECTIONS:
            raise ValueError(f"select_on must be one of {SELECTIONS}, got {self.select_on!r}")
        if self.rs_loss == "softmax" and self.rs_negatives:
            raise ValueError("rs_negatives has no effect with rs_loss=softmax, which contrasts "
                             "each positive with the whole catalogue; leave it 0")
        if (self.use_biases or self.rs_loss == "softmax") and not self.use_inner_product:
            raise ValueError("use_biases and rs_loss=softmax need use_inner_product=true")
        if self.residual and self.cross_unit != "cross_compress":
            raise ValueError(f"residual is an option of cross_compress, not of {self.cross_unit}")
        if not 0 <= self.cold_items < 1:
            raise ValueError(f"cold_items must be in [0, 1), got {self.cold_items!r}")
        if self.cross_unit not in CROSS_UNITS:
            raise ValueError(f"cross_unit must be one of {CROSS_UNITS}, got {self.cross_unit!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")

    @classmethod
    def for_dataset(cls, dataset: str, preset: str | None = None, **overrides) -> "MKRConfig":
        """`preset`'s settings for `dataset` (`mkr_tf.presets`: "paper", "recommended", a preset
        file, or None for the dataset's default), XLA where it wins, with `overrides` applied."""
        from mkr_tf import presets  # pylint: disable=import-outside-toplevel
        settings = dict(jit_compile=dataset in XLA_DATASETS)
        settings.update(presets.settings(dataset, preset))
        settings.update(overrides)
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
