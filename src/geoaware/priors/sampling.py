"""Random draws for training: background locations uniform on the sphere, balanced epochs.

A uniform point on the sphere has ``sin(lat)`` uniform in [-1, 1] (Archimedes' hat-box
theorem), so its latitude density is ``cos(lat) / 2`` (radians): drawing latitude uniformly in
[-90, 90] instead would put far too many points near the poles.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geoaware.typing import Float64Array, IntArray

__all__ = ["balanced_indices", "uniform_sphere"]


def uniform_sphere(n: int, rng: np.random.Generator) -> tuple[Float64Array, Float64Array]:
    """Draw ``n`` points uniformly on the sphere; return ``(lat, lon)`` in degrees.

    Examples
    --------
    >>> lat, lon = uniform_sphere(100_000, np.random.default_rng(0))
    >>> bool(abs(np.mean(np.abs(lat) > 60) - (1 - np.sin(np.radians(60)))) < 0.01)
    True
    """
    z = rng.uniform(-1.0, 1.0, n)
    lon = rng.uniform(-180.0, 180.0, n)
    return np.degrees(np.arcsin(z)), lon


def balanced_indices(
    labels: npt.ArrayLike, max_per_class: int | None, rng: np.random.Generator
) -> IntArray:
    """Return one epoch's indices: at most ``max_per_class`` rows per class, redrawn, shuffled.

    Classes with fewer rows keep all of them. Vectorised: rows are ordered by (class, random
    key) and each row's rank within its class is compared with the cap.

    Parameters
    ----------
    labels
        Class index of each training row.
    max_per_class
        The cap; ``None`` keeps every row.
    rng
        Source of randomness (the caller seeds it).

    Examples
    --------
    >>> idx = balanced_indices([0, 0, 0, 0, 1], 2, np.random.default_rng(0))
    >>> np.bincount(np.asarray([0, 0, 0, 0, 1])[idx]).tolist()
    [2, 1]
    """
    y = np.asarray(labels, dtype=np.int64)
    if max_per_class is None:
        return rng.permutation(y.size).astype(np.int64)
    order = np.lexsort((rng.random(y.size), y))
    ys = y[order]
    start = np.ones(ys.size, dtype=bool)
    start[1:] = ys[1:] != ys[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(ys.size), 0))
    rank = np.arange(ys.size) - first
    chosen = order[rank < max_per_class]
    return rng.permutation(chosen).astype(np.int64)
