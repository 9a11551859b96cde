"""Paired differences over seeds, with Student-t confidence intervals.

Two models run on the same seeds see the same splits, so their figures pair up seed by seed.
With d_s = a_s − b_s over n seeds, mean d̄, sample standard deviation s_d and the t quantile
t_{n−1} at (1 + confidence) / 2, the interval is

    d̄ ± t_{n−1} · s_d / √n

and a difference is called significant only when this interval excludes 0.
"""

import math
from typing import Sequence

import numpy as np
import scipy.stats


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> dict[str, float | bool | int]:
    """{"mean", "low", "high", "n", "significant"} of the paired difference a − b."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired figures need two equal-length lists, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a confidence interval needs at least 2 paired seeds, got {len(a)}")
    differences = a - b
    mean = float(differences.mean())
    half_width = float(scipy.stats.t.ppf((1 + confidence) / 2, len(a) - 1)
                       * differences.std(ddof=1) / math.sqrt(len(a)))
    low, high = mean - half_width, mean + half_width
    return {"mean": mean, "low": low, "high": high, "n": int(len(a)),
            "significant": bool(low > 0 or high < 0)}


def format_difference(difference: dict[str, float | bool | int]) -> str:
    """`+0.0123 [+0.0040, +0.0206]`, with ` *` when the interval excludes 0."""
    return (f"{difference['mean']:+.4f} [{difference['low']:+.4f}, {difference['high']:+.4f}]"
            + (" *" if difference["significant"] else ""))
