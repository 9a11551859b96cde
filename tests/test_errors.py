"""Tests of how every command reports errors (`cli.run`, `mkr_tf.errors`): ours, the operating
system's and TensorFlow's resource errors as one line and exit 2, anything else as a bug."""

import pathlib
import subprocess
import sys

import pytest

from mkr_tf import cli
from mkr_tf import errors

REPO = pathlib.Path(__file__).resolve().parents[1]
# A command whose body raises what the first argument builds.
_COMMAND = """
import sys
from mkr_tf import cli, errors
error = sys.argv.pop(1)

def body():
    if error.startswith("tf."):
        import tensorflow as tf
        raise eval(error)
    raise eval(error)

cli.run("probe", body)
"""


def run_command(error: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _COMMAND, error], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                               "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.parametrize("error, line", [
    ("errors.ConfigError('dim must be an integer >= 1, got 0')",
     "probe: error: dim must be an integer >= 1, got 0"),
    ("errors.DataError('a.txt, line 3: missing files:\\n  put x.txt in d/')",
     "probe: error: a.txt, line 3: missing files: put x.txt in d/"),
    ("FileNotFoundError(2, 'No such file or directory', 'runs/x')",
     "probe: error: [Errno 2] No such file or directory: 'runs/x'"),
    ("tf.errors.ResourceExhaustedError(None, None, 'runs/x; No space left on device\\nmore')",
     "probe: error: runs/x; No space left on device"),
])
def test_user_and_machine_errors_are_one_line_and_exit_2(error, line):
    result = run_command(error)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("error", ["ValueError('an internal bug')", "RuntimeError('a Keras bug')",
                                   "tf.errors.InvalidArgumentError(None, None, 'a TF bug')"])
def test_anything_else_is_a_bug_with_its_traceback(error):
    result = run_command(error)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "probe: error" not in result.stderr


def test_our_value_errors_stay_value_errors():
    # Library callers that catch ValueError keep working.
    for kind in (errors.ConfigError, errors.DataError):
        assert issubclass(kind, ValueError) and issubclass(kind, errors.MKRError)
    assert issubclass(errors.TrainingError, errors.MKRError)


def test_one_line_joins_our_lines_and_keeps_tensorflows_first():
    assert cli.one_line(errors.DataError("first\n  second")) == "first second"
    assert cli.one_line(OSError("full")) == "full"
