"""Hyper-parameters of an MKR run and the paper's per-dataset settings."""

import dataclasses
from typing import Any

from mkr_tf import errors

# Table 2 of Wang et al. (WWW 2019) / the authors' released scripts.
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
        "movie": dict(n_epochs=20, dim=8, L=1, H=1, batch_size=4096, l2_weight=1e-6,
                                    lr_rs=0.02, lr_kge=0.01, kge_interval=3),
        "book": dict(n_epochs=10, dim=8, L=1, H=1, batch_size=32, l2_weight=1e-6,
                                  lr_rs=2e-4, lr_kge=2e-5, kge_interval=2),
        "music": dict(n_epochs=10, dim=4, L=2, H=1, batch_size=256, l2_weight=1e-6,
                                    lr_rs=1e-3, lr_kge=2e-4, kge_interval=2),
}

# The paper preset of the embedded synthetic data and of datasets without settings of their own:
# the paper's model, chosen by hand on MKR's eval AUC over split seeds 0-2 before the
# initialisation fix (layers.fresh_initializer). The synthetic data's default is its recommended
# preset (presets/synthetic.json), which mkr_tf.tune found.
SYNTHETIC_SETTINGS: dict[str, Any] = dict(
        n_epochs=30, dim=8, L=1, H=1, batch_size=4096, l2_weight=1e-6,
        lr_rs=3e-3, lr_kge=0.1, kge_interval=1)

# Where XLA-compiled epochs train faster (benchmarks/phases.py): 1.4-4x faster steps on every
# named dataset and preset, with LazyAdam's masked updates of small tables. The first run of a
# shape pays seconds of compilation, which --xla_cache keeps for the next ones. Datasets of one's
# own stay uncompiled unless asked.
XLA_DATASETS = ("movie", "book", "music", "synthetic")

OPTIMIZERS = ("lazy_adam", "adam")
CROSS_UNITS = ("cross_compress", "dcn", "stitch")
RS_LOSSES = ("pointwise", "softmax", "softmax+pointwise")
LR_SCHEDULES = ("constant", "cosine")
KGE_MODELS = ("mlp", "transe")
SELECTIONS = ("auc", "auc+ndcg@10")
# mkr_tf.baselines' models, here so that flags can name them without importing TensorFlow.
BASELINES = ("popularity", "itemknn", "mf", "kg_popularity", "kg_history")
# How a run is distributed (`mkr_tf.distribute`), here so that flags can name them without
# importing TensorFlow.
STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")
# TensorFlow's own default for MinSizePartitioner: tables under 256 KiB stay whole.
DEFAULT_MIN_SHARD_BYTES = 256 << 10


def _field(default, help_text: str, *, choices: tuple[str, ...] | None = None,
           preset: bool = False, model: bool = False):
    """A setting: its default, its --help text and choices (the flag generated from it), whether
    each dataset's preset sets it (its flag then defaults to the preset) and whether it is an
    argument of `MKR`."""
    return dataclasses.field(default=default, metadata={
        "help": help_text, "choices": choices, "preset": preset, "model": model})


@dataclasses.dataclass(frozen=True)
class MKRConfig:
    """Everything that defines a model and its training.

    Attributes keep the authors' flag names so results compare one-to-one. Each field is also a
    command-line flag of mkr_tf.train (`cli.define_config_flags`), with the help text and
    choices declared here, and the fields marked `model` are `MKR`'s arguments
    (`model.build_model`). Values are checked here, once, whoever builds the config.
    """
    n_epochs: int = _field(20, "Epochs.", preset=True)
    dim: int = _field(8, "Embedding size d.", preset=True, model=True)
    L: int = _field(1, "Low layers: cross&compress units and tower layers.", preset=True,
                    model=True)
    H: int = _field(1, "High layers: the KGE head's (and with --use_inner_product=false the RS "
                    "head's) depth.", preset=True, model=True)
    batch_size: int = _field(4096, "Batch size of both tasks.", preset=True)
    l2_weight: float = _field(1e-6, "Weight λ of the L2 terms.", preset=True, model=True)
    lr_rs: float = _field(0.02, "Adam learning rate of the RS task.", preset=True, model=True)
    lr_kge: float = _field(0.01, "Adam learning rate of the KGE task (its loss, −mean σ(t · t̂) "
                           "+ λ·L2, is negative).", preset=True, model=True)
    kge_interval: int = _field(3, "Run the KGE pass every this many epochs.", preset=True)
    lr_schedule: str = _field("constant", "constant: the paper's fixed learning rates; cosine "
                              "(beyond the paper): each task's rate falls along a half cosine "
                              "from lr_rs or lr_kge to 0 over that task's steps of the whole "
                              "run.", choices=LR_SCHEDULES, preset=True, model=True)
    use_inner_product: bool = _field(True, "RS head: inner product (true) or an MLP on [u; v].",
                                     model=True)
    use_kge: bool = _field(True, "Train the KGE task; false trains the RS task alone.")
    optimizer: str = _field("lazy_adam", "lazy_adam updates only the embedding rows a batch "
                            "touches; adam is standard Adam.", choices=OPTIMIZERS, model=True)
    cross_unit: str = _field("cross_compress", "How items and entities share features: "
                             "cross_compress (MKR), or the paper's ablations dcn (MKR-DCN) and "
                             "stitch (MKR-stitch).", choices=CROSS_UNITS, model=True)
    train_ratio: float = _field(1.0, "Train on this seeded share of the training split (the "
                                "paper's sparsity experiment); eval and test stay whole.")
    cold_items: float = _field(0.0, "Cold-item protocol: move every training row of this seeded "
                               "share of the items to eval and test (the KG keeps their "
                               "triples); results add test_cold_auc.")
    # Training options beyond the paper; 0 leaves each as the authors had it.
    init_scale: float = _field(0.0, "Beyond the paper: > 0 initialises every embedding row "
                               "N(0, init_scale²) instead of the authors' Glorot-uniform, whose "
                               "rows are tiny in large tables.", preset=True, model=True)
    rs_negatives: int = _field(0, "Beyond the paper: > 0 draws this many fresh negatives per "
                               "training positive every epoch, instead of the one fixed negative "
                               "of the prepared data.", preset=True)
    use_biases: bool = _field(False, "Beyond the paper: user and item bias terms in the RS logit.",
                              preset=True, model=True)
    residual: bool = _field(False, "Beyond the paper: residual cross&compress, each unit adding "
                            "its input to its output.", preset=True, model=True)
    tie_item_entity: bool = _field(False, "Beyond the paper: one table for items and their KG "
                                   "entities.", preset=True, model=True)
    rs_loss: str = _field("pointwise", "pointwise: the paper's cross-entropy of every row; "
                          "softmax (beyond the paper): each positive against the whole "
                          "catalogue (or softmax_samples items); softmax+pointwise: the softmax "
                          "plus the cross-entropy of each positive (label 1) and of the items it "
                          "is contrasted with (label 0), which ties the users' scores to one "
                          "scale, as AUC over all rows needs.", choices=RS_LOSSES, preset=True, model=True)
    softmax_samples: int = _field(0, "Beyond the paper: > 0 with a softmax rs_loss contrasts each "
                                  "positive with this many items drawn uniformly each step, "
                                  "shared by the batch, instead of the whole catalogue: a "
                                  "fraction of the cost on a large catalogue.", preset=True,
                                  model=True)
    kge_negatives: int = _field(0, "Beyond the paper: > 0 gives a logistic KGE loss against this "
                                "many corrupted tails per triple, instead of −σ(t · t̂).",
                                preset=True, model=True)
    kge_model: str = _field("mlp", "How the KGE task scores a triple: mlp, the paper's σ(t · t̂) "
                            "with t̂ = σ(MLP([h; r])) on the cross&compress head vector and the "
                            "tail tower's t; transe (beyond the paper), kge_margin − "
                            "‖E[h] + R[r] − E[t]‖² on the shared entity table itself, so that "
                            "items sharing a tail are drawn to one point and an unrated item to "
                            "its rated siblings; give it --kge_negatives, without which every row "
                            "may collapse to one point.", choices=KGE_MODELS, preset=True,
                            model=True)
    kge_margin: float = _field(1.0, "With kge_model=transe: the margin γ of its logit "
                               "γ − ‖h + r − t‖².", preset=True, model=True)
    history_length: int = _field(0, "Beyond the paper: > 0 adds to the user tower's input the "
                                 "mean vector of up to this many of the user's training items "
                                 "(SVD++).", preset=True, model=True)
    history_dropout: float = _field(0.0, "Beyond the paper: > 0 leaves each item out of a "
                                    "training row's history with this probability, a fresh draw "
                                    "each step, so that the user tower learns from partial "
                                    "histories; scoring reads the whole history.", preset=True,
                                    model=True)
    use_user_embedding: bool = _field(True, "false (beyond the paper): no per-user table; a "
                                      "user is their history's mean alone (FISM), which "
                                      "needs --history_length.", preset=True, model=True)
    item_neighbours: int = _field(0, "Beyond the paper: > 0 adds to each item's input to the "
                                  "cross&compress units the mean entity vector of up to this "
                                  "many of its KG tails, so that items sharing KG neighbours, "
                                  "unrated ones too, share features.", preset=True, model=True)
    history_neighbours: bool = _field(False, "Beyond the paper: with history_length and "
                                      "item_neighbours, a user's history items are read with "
                                      "their KG tails' mean too, as an item's input to the units "
                                      "is, so that a user meets the items sharing the tails of "
                                      "what they liked.", preset=True, model=True)
    select_on: str = _field("auc", "The epoch whose weights are kept and reported: best eval "
                            "AUC, or best eval AUC + eval NDCG@10 (top-K over the catalogue on "
                            "the eval split each epoch).", choices=SELECTIONS, preset=True)
    seed: int = _field(0, "Seeds the split, the negatives' shuffles and the initialisation.",
                       model=True)
    # XLA-compiled epochs: seconds of compilation per shape (kept by --xla_cache) for faster steps.
    jit_compile: bool = _field(False, "Compile each whole training epoch with XLA: faster steps, "
                               "seconds of compilation the first time a shape runs (--xla_cache "
                               f"keeps it). Default: on for {', '.join(XLA_DATASETS)}, where it "
                               "wins (README, Speed).", preset=True)

    def __post_init__(self):
        # Choices first: the rules below read rs_loss, kge_model and the rest as valid values.
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            if choices is not None and getattr(self, field.name) not in choices:
                raise errors.ConfigError(f"{field.name} must be one of {choices}, got "
                                         f"{getattr(self, field.name)!r}")
        positive_ints = ("n_epochs", "dim", "L", "H", "batch_size", "kge_interval")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise errors.ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("lr_rs", "lr_kge"):
            value = getattr(self, name)
            if not value > 0 or value != value or value == float("inf"):
                raise errors.ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.l2_weight < float("inf"):
            raise errors.ConfigError(
                f"l2_weight must be a finite number >= 0, got {self.l2_weight!r}")
        if not 0 < self.train_ratio <= 1:
            raise errors.ConfigError(f"train_ratio must be in (0, 1], got {self.train_ratio!r}")
        if not 0 < self.kge_margin < float("inf"):
            raise errors.ConfigError(
                f"kge_margin must be a finite number > 0, got {self.kge_margin!r}")
        if not 0 <= self.init_scale < float("inf"):
            raise errors.ConfigError(
                f"init_scale must be a finite number >= 0, got {self.init_scale!r}")
        if (not isinstance(self.rs_negatives, int) or isinstance(self.rs_negatives, bool)
                or self.rs_negatives < 0):
            raise errors.ConfigError(
                f"rs_negatives must be an integer >= 0, got {self.rs_negatives!r}")
        for name in ("kge_negatives", "history_length", "item_neighbours", "softmax_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise errors.ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        if self.rs_loss != "pointwise" and self.rs_negatives:
            raise errors.ConfigError(
                f"rs_negatives has no effect with rs_loss={self.rs_loss}, which contrasts each "
                "positive with the catalogue or softmax_samples; leave it 0")
        if self.softmax_samples and self.rs_loss == "pointwise":
            raise errors.ConfigError("softmax_samples needs a softmax rs_loss")
        if (self.use_biases or self.rs_loss != "pointwise") and not self.use_inner_product:
            raise errors.ConfigError(
                "use_biases and the softmax rs_losses need use_inner_product=true")
        if not 0 <= self.history_dropout < 1:
            raise errors.ConfigError(
                f"history_dropout must be in [0, 1), got {self.history_dropout!r}")
        if self.history_dropout and not self.history_length:
            raise errors.ConfigError("history_dropout needs history_length > 0")
        if self.history_neighbours and not (self.history_length and self.item_neighbours):
            raise errors.ConfigError(
                "history_neighbours needs history_length > 0 and item_neighbours > 0")
        if not self.use_user_embedding and not self.history_length:
            raise errors.ConfigError("use_user_embedding=false needs history_length > 0: a user "
                                     "is then the mean of their history")
        if self.residual and self.cross_unit != "cross_compress":
            raise errors.ConfigError(
                f"residual is an option of cross_compress, not of {self.cross_unit}")
        if not 0 <= self.cold_items < 1:
            raise errors.ConfigError(f"cold_items must be in [0, 1), got {self.cold_items!r}")

    @classmethod
    def for_dataset(cls, dataset: str, preset: str | None = None, **overrides) -> "MKRConfig":
        """`preset`'s settings for `dataset` (`mkr_tf.presets`: "paper", "recommended", a preset
        file, or None for the dataset's default), XLA where it wins, with `overrides` applied."""
        from mkr_tf import presets  # pylint: disable=import-outside-toplevel
        settings = dict(jit_compile=dataset in XLA_DATASETS)
        settings.update(presets.settings(dataset, preset))
        settings.update(overrides)
        return cls(**settings)

    def runs_kge(self, epoch: int) -> bool:
        """Whether epoch `epoch` (from 1) has a KGE pass: the authors run it on epochs 1,
        1 + kge_interval, 1 + 2·kge_interval, …"""
        return self.use_kge and (epoch - 1) % self.kge_interval == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_arguments(self) -> dict[str, Any]:
        """The settings that are `MKR`'s arguments, by name."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.metadata.get("model")}
