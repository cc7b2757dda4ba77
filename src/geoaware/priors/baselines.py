"""Location-only baselines of Mac Aodha et al. (2019), with the prior's ``predict_proba`` API.

* :class:`ClassFrequency`: ``p(c)``, the same everywhere.
* :class:`NearestNeighbours`: class shares among the ``k`` nearest training observations in
  great-circle (haversine) distance. The search runs on 3-D unit vectors with a k-d tree: the
  chord length is a monotone function of the haversine distance, so the neighbours are the same.
* :class:`GridHistogram`: counts of each class per latitude/longitude cell, plus pseudo-counts
  ``alpha * p(c)`` (a sparse cell x class matrix, so fine grids and many classes fit).
* :class:`KernelDensity`: ``sum_i exp(kappa (u . u_i - 1))`` over each class's observations, a
  von Mises-Fisher kernel whose bandwidth is given in km; vectorised, in query batches, with a
  sparse one-hot product.

Every baseline scores a batch of points into a dense ``(n, C)`` float32 array; ties between
classes are broken by the class frequency (a tiny multiple of it is added).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geoaware.geo.distance import EARTH_RADIUS_KM
from geoaware.geo.encode import unit_vector
from geoaware.typing import Float32Array, Float64Array, IntArray

__all__ = [
    "BASELINES",
    "ClassFrequency",
    "GridHistogram",
    "KernelDensity",
    "NearestNeighbours",
    "Scorer",
    "fit_baselines",
]

_TIE = 1e-6


class Scorer(Protocol):
    """Anything that scores points for every class (the prior and each baseline)."""

    def predict_proba(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, date_fraction: npt.ArrayLike | None = None
    ) -> Float32Array:
        """Return scores of shape ``(n, C)``; higher is more likely."""
        ...


def _frequency(labels: npt.ArrayLike, n_classes: int) -> Float64Array:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    out: Float64Array = counts / max(counts.sum(), 1)
    return out


class ClassFrequency:
    """Predict the training frequency of each class, whatever the location.

    Examples
    --------
    >>> ClassFrequency([0, 1, 1], 3).predict_proba([0.0], [0.0]).argmax(axis=1).tolist()
    [1]
    """

    def __init__(self, labels: npt.ArrayLike, n_classes: int) -> None:
        self.freq = _frequency(labels, n_classes).astype(np.float32)

    def predict_proba(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, date_fraction: npt.ArrayLike | None = None
    ) -> Float32Array:
        """Return the frequencies, one row per point."""
        n = np.atleast_1d(np.asarray(lat)).size
        return np.broadcast_to(self.freq, (n, self.freq.size)).copy()


class NearestNeighbours:
    """Class shares among the ``k`` nearest training points (haversine order).

    Equal shares are ordered by each class's nearest neighbour (a class whose closest point
    is nearer ranks first; the bonus is below half a vote, so it never outweighs one), and
    classes without a vote by their training frequency. Without that order a share tied by
    several classes (20 neighbours of 20 species) would be a tie of the baseline's own
    making, and its top-k would depend on how ties are counted.

    Examples
    --------
    >>> nn = NearestNeighbours([0.0, 0.0, 50.0], [0.0, 1.0, 50.0], [0, 0, 1], 2, k=1)
    >>> nn.predict_proba([49.0], [49.0]).argmax(axis=1).tolist()
    [1]
    >>> two = NearestNeighbours([0.0, 0.0], [1.0, 3.0], [0, 1], 2, k=2)  # one vote each
    >>> two.predict_proba([0.0], [0.0]).argmax(axis=1).tolist()  # class 0's point is nearer
    [0]
    """

    def __init__(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        labels: npt.ArrayLike,
        n_classes: int,
        *,
        k: int = 20,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.n_classes = n_classes
        self.k = min(k, self.labels.size)
        self.tree = cKDTree(unit_vector(lat, lon))
        self.freq = _frequency(self.labels, n_classes).astype(np.float32)

    def predict_proba(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, date_fraction: npt.ArrayLike | None = None
    ) -> Float32Array:
        """Return neighbour shares ``(n, C)`` (plus the nearest-neighbour and frequency order)."""
        q = unit_vector(lat, lon)
        _, idx = self.tree.query(q, k=self.k, workers=-1)
        idx = np.asarray(idx).reshape(q.shape[0], self.k)
        out = np.tile(self.freq * _TIE, (q.shape[0], 1))
        cls = self.labels[idx]  # (n, k), nearest first
        # a class's nearest neighbour j (0 = nearest) adds (k - j) / (2 k^2) to its votes:
        # below half a vote, and different for every class with a vote
        first = ~np.tril(cls[:, :, None] == cls[:, None, :], -1).any(axis=2)
        nearness = np.arange(self.k, 0, -1, dtype=np.float32) / (2.0 * self.k * self.k)
        vote = 1.0 / self.k + np.where(first, nearness, 0.0)
        rows = np.repeat(np.arange(q.shape[0]), self.k)
        np.add.at(out, (rows, cls.ravel()), vote.ravel().astype(np.float32))
        return out


class GridHistogram:
    """Per-cell class counts on a ``cell_deg`` grid with pseudo-counts ``alpha * p(c)``.

    Examples
    --------
    >>> g = GridHistogram([10.0, 10.5, -40.0], [10.0, 10.5, 100.0], [1, 1, 0], 2, cell_deg=5)
    >>> g.predict_proba([11.0, -39.0], [11.0, 101.0]).argmax(axis=1).tolist()
    [1, 0]
    """

    def __init__(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        labels: npt.ArrayLike,
        n_classes: int,
        *,
        cell_deg: float = 2.0,
        alpha: float = 1.0,
    ) -> None:
        self.cell_deg = float(cell_deg)
        self.n_lat = int(np.ceil(180 / self.cell_deg))
        self.n_lon = int(np.ceil(360 / self.cell_deg))
        y = np.asarray(labels, dtype=np.int64)
        cells = self._cells(lat, lon)
        self.counts = sp.csr_matrix(
            (np.ones(y.size, np.float32), (cells, y)),
            shape=(self.n_lat * self.n_lon, n_classes),
        )
        self.prior = (alpha * _frequency(y, n_classes)).astype(np.float32)

    def _cells(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> IntArray:
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        r = np.clip(((la + 90) // self.cell_deg).astype(np.int64), 0, self.n_lat - 1)
        c = np.clip(((lo + 180) // self.cell_deg).astype(np.int64), 0, self.n_lon - 1)
        out: IntArray = r * self.n_lon + c
        return out

    def predict_proba(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, date_fraction: npt.ArrayLike | None = None
    ) -> Float32Array:
        """Return ``(count + alpha p(c)) / (total + alpha)`` per point and class."""
        rows = self.counts[self._cells(lat, lon)]
        dense = np.asarray(rows.toarray(), dtype=np.float32) + self.prior
        dense /= dense.sum(axis=1, keepdims=True)
        return dense


class KernelDensity:
    """von Mises-Fisher kernel density per class, in batches (``bandwidth_km``, default 300).

    Examples
    --------
    >>> kd = KernelDensity([0.0, 60.0], [0.0, 60.0], [0, 1], 2, bandwidth_km=500)
    >>> kd.predict_proba([1.0, 59.0], [1.0, 59.0]).argmax(axis=1).tolist()
    [0, 1]
    """

    def __init__(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        labels: npt.ArrayLike,
        n_classes: int,
        *,
        bandwidth_km: float = 300.0,
        batch_size: int = 512,
    ) -> None:
        y = np.asarray(labels, dtype=np.int64)
        self.points = unit_vector(lat, lon).astype(np.float32)
        self.kappa = float((EARTH_RADIUS_KM / bandwidth_km) ** 2)
        self.onehot_t = sp.csr_matrix(
            (np.ones(y.size, np.float32), (y, np.arange(y.size))), shape=(n_classes, y.size)
        )
        self.freq = (_frequency(y, n_classes) * _TIE).astype(np.float32)
        self.batch_size = batch_size

    def predict_proba(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, date_fraction: npt.ArrayLike | None = None
    ) -> Float32Array:
        """Return normalised kernel sums ``(n, C)``."""
        q = unit_vector(lat, lon).astype(np.float32)
        out = np.empty((q.shape[0], self.onehot_t.shape[0]), dtype=np.float32)
        for s in range(0, q.shape[0], self.batch_size):
            k = q[s : s + self.batch_size] @ self.points.T
            k -= 1.0
            k *= self.kappa
            np.exp(k, out=k)
            block = np.asarray((self.onehot_t @ k.T).T, dtype=np.float32)
            block /= np.maximum(block.sum(axis=1, keepdims=True), 1e-30)
            out[s : s + self.batch_size] = block + self.freq
        return out


BASELINES = ("frequency", "nearest_neighbours", "grid_histogram", "kernel_density")


def fit_baselines(
    lat: npt.ArrayLike, lon: npt.ArrayLike, labels: npt.ArrayLike, n_classes: int
) -> dict[str, Scorer]:
    """Fit every baseline with its default settings; keys are :data:`BASELINES`.

    Examples
    --------
    >>> sorted(fit_baselines([0.0, 1.0], [0.0, 1.0], [0, 1], 2))
    ['frequency', 'grid_histogram', 'kernel_density', 'nearest_neighbours']
    """
    return {
        "frequency": ClassFrequency(labels, n_classes),
        "nearest_neighbours": NearestNeighbours(lat, lon, labels, n_classes),
        "grid_histogram": GridHistogram(lat, lon, labels, n_classes),
        "kernel_density": KernelDensity(lat, lon, labels, n_classes),
    }
