"""pytest setup shared by the suites."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"


def pytest_collection_modifyitems(items):
    # tf.test.TestCase inherits a deprecated `test_session` context manager that pytest
    # would collect and report as skipped in every suite.
    items[:] = [item for item in items if item.name != "test_session"]


def pytest_configure(config):
    del config
    from absl import flags  # pylint: disable=import-outside-toplevel
    # tf.test.TestCase.create_tempdir reads absl's --test_tmpdir; under pytest nobody parses flags.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
