"""Tests of mkr_tf.config: every setting declared once, with its help, choices and checks."""

import dataclasses
import types

import pytest

from mkr_tf import errors
from mkr_tf import model as mkr_model
from mkr_tf.config import MKRConfig


def test_every_setting_has_its_help_text():
    for field in dataclasses.fields(MKRConfig):
        assert field.metadata["help"].strip(), field.name


@pytest.mark.parametrize("setting, value, message", [
    ("optimizer", "sgd", r"optimizer must be one of \('lazy_adam', 'adam'\), got 'sgd'"),
    ("cross_unit", "mlp", r"cross_unit must be one of \('cross_compress', 'dcn', 'stitch'\)"),
    ("dim", 0, "dim must be an integer >= 1, got 0"),
    ("train_ratio", 1.5, r"train_ratio must be in \(0, 1\], got 1.5"),
])
def test_bad_values_are_refused_by_the_config(setting, value, message):
    with pytest.raises(errors.ConfigError, match=message):
        MKRConfig(**{setting: value})


def test_model_settings_reach_the_model_and_its_saved_config():
    config = MKRConfig(dim=4, L=2, H=2, l2_weight=1e-3, lr_rs=0.5, lr_kge=0.25,
                       use_inner_product=False, optimizer="adam", cross_unit="dcn",
                       init_scale=0.1)
    sizes = types.SimpleNamespace(n_users=3, n_items=4, n_entities=6, n_relations=2)
    saved = mkr_model.build_model(config, sizes).get_config()
    arguments = config.model_arguments()
    assert {"dim", "L", "H", "lr_rs", "optimizer", "cross_unit", "init_scale"} <= set(arguments)
    assert {name: saved[name] for name in arguments} == arguments
