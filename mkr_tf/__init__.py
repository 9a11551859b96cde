"""mkr-tf: MKR (Multi-Task Feature Learning for Knowledge Graph Enhanced Recommendation) on TF2 / Keras 3."""

import os

# Keras 3 picks its backend at first import; MKR's train steps, tf.data pipelines and SavedModel export are
# TensorFlow code, so any other backend would fail late and obscurely.
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(
            f"mkr_tf needs KERAS_BACKEND=tensorflow, found {os.environ['KERAS_BACKEND']!r}.")
os.environ["KERAS_BACKEND"] = "tensorflow"

__version__ = "0.1.0"
