"""mkr-tf: MKR knowledge-graph-enhanced recommendation on TensorFlow 2 / Keras 3."""

import pathlib
import re

import setuptools

_VERSION = re.search(r'__version__ = "([^"]+)"',
                     (pathlib.Path(__file__).parent / "mkr_tf" / "__init__.py").read_text()).group(1)

setuptools.setup(
    name="mkr-tf",
    version=_VERSION,
    description="MKR (Multi-Task Feature Learning for Knowledge Graph Enhanced Recommendation) "
                "on TensorFlow 2 / Keras 3, with TF Serving export",
    long_description=(pathlib.Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["mkr_tf", "mkr_tf.*", "data_prep", "data_prep.*"]),
    # The recommended presets (mkr_tf/presets/<dataset>.json) that mkr_tf.tune found.
    package_data={"mkr_tf": ["presets/*.json"]},
    python_requires=">=3.10",
    # Bounded below the next major version, so that a release of one cannot break a fresh
    # install silently.
    install_requires=[
        "tensorflow>=2.16,<3",
        # TensorFlow's own dependency, held below 0.7: ml_dtypes 0.7.0 registers its NumPy
        # ufunc loops in quadratic time, 0.55 s of every process's `import tensorflow` (on 2
        # cores) against 0.004 s for 0.6.0 (`python -X importtime -c "import ml_dtypes"`).
        "ml_dtypes<0.7",
        "keras>=3.0,<4",
        "numpy>=1.23,<3",
        "pandas>=1.5,<4",
        "tensorboard>=2.16,<3",
        "absl-py>=1.0,<3",
        # Sparse item-item similarities (ItemKNN), the baselines' calibration, t intervals.
        "scipy>=1.9,<2",
        "optuna>=3.0,<6",
    ],
    extras_require={
        # pytest-xdist: the suite on every core (`-n auto`), about half the time on two.
        "test": ["pytest>=7,<10", "pytest-xdist>=3,<4", "matplotlib>=3.5,<4"],
        "plot": ["matplotlib>=3.5,<4"],
    },
    entry_points={
        "console_scripts": [
            "mkr-train=mkr_tf.train:run",
            "mkr-evaluate=mkr_tf.evaluate:run",
            "mkr-baselines=mkr_tf.baselines:run",
            "mkr-plot=mkr_tf.plot:run",
            "mkr-prep=data_prep.__main__:run",
            "mkr-reproduce=mkr_tf.reproduce:run",
            "mkr-tune=mkr_tf.tune:run",
            "mkr-export=mkr_tf.export:run",
            "mkr-recommend=mkr_tf.recommend:run",
            "mkr-generate-data=mkr_tf.generate_data:run",
        ],
    },
    license="Apache-2.0",
)
