"""Tests of mkr_tf.lazy: a module bound by `load` is imported at its first attribute access."""

import sys

import pytest

from mkr_tf import lazy


def test_imports_on_first_attribute_access(tmp_path, monkeypatch):
    (tmp_path / "lazy_probe.py").write_text("VALUE = 42\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_probe", raising=False)
    probe = lazy.load("lazy_probe")
    assert "lazy_probe" not in sys.modules
    assert probe.VALUE == 42
    assert "lazy_probe" in sys.modules
    assert probe.double(3) == 6 and "double" in dir(probe)


def test_a_missing_module_fails_when_used():
    missing = lazy.load("no_such_module_anywhere")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_anywhere"):
        missing.anything  # pylint: disable=pointless-statement
