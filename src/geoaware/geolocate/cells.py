r"""Adaptive S2 geocells: the classes of cell-classification geolocation.

Müller-Budack et al. (ECCV 2018) turn geolocation into classification over S2 cells sized by
the training data: every training image is put in its S2 cell at a start level (2 in their
``partitioning/create_cells.py``), every cell holding more than ``tau_max`` images is split
into its four children, level after level, until no cell holds more than ``tau_max`` (or level
30 is reached: a leaf cell cannot be split), and finally every cell holding ``tau_min`` images
or fewer is dropped. The MP-16 partitions they published are ``cells_<tau_min>_<tau_max>.csv``
(``cells_50_5000``, ``cells_50_2000``, ``cells_50_1000``: 3,298 / 7,202 / 12,893 cells).

:func:`build_cells` does the same on integer S2 cell ids: each point's leaf cell id is computed
once, vectorised (the cube face, the quadratic projection and the Hilbert curve in numpy,
equal to ``s2sphere.CellId.from_lat_lng``), and each level only groups ids by their parent
(a bit operation on sorted ids), so a million points take about a second; the S2 id
arithmetic lives in :mod:`geoaware.geo.cells`.
:class:`CellPartition` holds the cells (tokens, image counts, mean locations), assigns points
to them and reads and writes the published CSV layout; :func:`parents` links the cells of a
fine partition to those of a coarser one (the hierarchy of the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from geoaware.errors import InputFileError, InvalidCoordinateError, UsageError
from geoaware.fileio import atomic_write_bytes
from geoaware.geo.cells import (
    S2_MAX_LEVEL,
    s2_id_levels,
    s2_id_ranges,
    s2_id_token,
    s2_leaf_ids,
    s2_parent_ids,
    s2_token_id,
)
from geoaware.geo.encode import unit_vector
from geoaware.typing import ArrayLike, Float64Array, IntArray, PathLike, StrArray, UInt64Array

__all__ = ["CellPartition", "build_cells", "parents"]

START_LEVEL = 2
"""The level the reference implementation starts splitting from (its ``--lvl_min``)."""


@dataclass(frozen=True, eq=False)
class CellPartition:
    """Disjoint S2 cells, each with its image count and the mean location of its images.

    Class index ``c`` is row ``c`` (the published ``class_label``). Build one with
    :func:`build_cells` or read a published file with :meth:`from_file`.

    Attributes
    ----------
    tokens : ndarray of str
        S2 cell tokens (``hex_id`` in the files); levels may differ from cell to cell.
    counts : ndarray of int64
        Images in each cell (``imgs_per_cell``).
    lat, lon : ndarray of float64
        The mean location of each cell's images (``latitude_mean``, ``longitude_mean``).
        :func:`build_cells` averages unit vectors and projects the mean back on the sphere,
        so a cell across the antimeridian or near a pole gets a point inside it; the
        published MP-16 files averaged latitudes and longitudes as plain numbers (their
        ``create_cells.py``), which is the same away from the antimeridian.
    num_images : int
        Images the partition was built from, dropped ones included (the ``num_images``
        comment line).
    min_concept_probability : str
        The second comment line's value, kept as written (``---`` in the MP-16 files).

    Examples
    --------
    >>> cells = CellPartition(np.array(["47", "89"]), np.array([60, 70]),
    ...                       np.array([48.0, 40.0]), np.array([2.0, -75.0]), 130)
    >>> len(cells), cells.levels.tolist(), cells.assign([48.9, 0.0], [2.3, 0.0]).tolist()
    (2, [2, 2], [0, -1])
    """

    tokens: StrArray
    counts: IntArray
    lat: Float64Array
    lon: Float64Array
    num_images: int
    min_concept_probability: str = "---"
    ids: UInt64Array = field(init=False, repr=False)
    _order: IntArray = field(init=False, repr=False)
    _low: UInt64Array = field(init=False, repr=False)
    _high: UInt64Array = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tokens = np.asarray(self.tokens, dtype=str).reshape(-1)
        n = tokens.size
        columns = {"counts": self.counts, "lat": self.lat, "lon": self.lon}
        for name, values in columns.items():
            if np.asarray(values).reshape(-1).size != n:
                raise UsageError(f"{name} has {np.asarray(values).size} values for {n} tokens")
        ids = np.array([s2_token_id(t) for t in tokens.tolist()], dtype=np.uint64).reshape(-1)
        order = np.argsort(ids, kind="stable")
        low, high = s2_id_ranges(ids)
        overlap = np.flatnonzero(low[order][1:] <= high[order][:-1])
        if overlap.size:
            a, b = order[overlap[0]], order[overlap[0] + 1]
            raise UsageError(f"cells {tokens[a]!r} and {tokens[b]!r} overlap")
        set_ = object.__setattr__
        set_(self, "tokens", tokens)
        set_(self, "counts", np.asarray(self.counts, dtype=np.int64).reshape(-1))
        set_(self, "lat", np.asarray(self.lat, dtype=np.float64).reshape(-1))
        set_(self, "lon", np.asarray(self.lon, dtype=np.float64).reshape(-1))
        set_(self, "num_images", int(self.num_images))
        set_(self, "ids", ids)
        set_(self, "_order", order)
        set_(self, "_low", low[order])
        set_(self, "_high", high[order])

    def __len__(self) -> int:
        return int(self.tokens.size)

    @property
    def levels(self) -> IntArray:
        """The S2 level of each cell (0 to 30)."""
        return s2_id_levels(self.ids)

    def _find(self, low: UInt64Array, high: UInt64Array) -> IntArray:
        """Return the class whose id range holds ``[low, high]``, or -1."""
        pos = np.searchsorted(self._low, low, side="right").astype(np.int64) - 1
        safe = np.maximum(pos, 0)
        inside = (pos >= 0) & (high <= self._high[safe]) if len(self) else pos >= 0
        return np.where(inside, self._order[safe] if len(self) else -1, -1)

    def assign(self, lat: ArrayLike, lon: ArrayLike) -> IntArray:
        """Return the class index of the cell holding each point; -1 outside every cell.

        NaN points get -1.

        Examples
        --------
        >>> cells = CellPartition(np.array(["47"]), np.array([60]), np.array([48.0]),
        ...                       np.array([2.0]), 60)
        >>> cells.assign([48.86, -33.9], [2.35, 18.4]).tolist()
        [0, -1]
        """
        leaf = s2_leaf_ids(lat, lon)
        found = self._find(leaf, leaf)
        return np.where(leaf == 0, -1, found)

    def to_table(self) -> pa.Table:
        """Return the cells in the published column layout (class_label = row).

        Examples
        --------
        >>> cells = CellPartition(np.array(["47"]), np.array([60]), np.array([48.0]),
        ...                       np.array([2.0]), 60)
        >>> cells.to_table().column_names
        ['class_label', 'hex_id', 'imgs_per_cell', 'latitude_mean', 'longitude_mean']
        """
        return pa.table(
            {
                "class_label": pa.array(np.arange(len(self), dtype=np.int64)),
                "hex_id": pa.array(self.tokens.tolist(), pa.string()),
                "imgs_per_cell": pa.array(self.counts),
                "latitude_mean": pa.array(self.lat),
                "longitude_mean": pa.array(self.lon),
            }
        )

    def to_csv(self) -> bytes:
        r"""Return the file's bytes in the published layout (CRLF lines, as ``csv.writer``).

        Two comment lines (``num_images: N``, ``min_concept_probability: …``), the header
        ``class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean``, one row per cell
        with floats written as Python's ``repr`` (a published file read with
        :meth:`from_file` is written back byte for byte).

        Examples
        --------
        >>> cells = CellPartition(np.array(["47"]), np.array([60]), np.array([48.5]),
        ...                       np.array([2.0]), 61)
        >>> cells.to_csv().decode().splitlines()
        ['num_images: 61', 'min_concept_probability: ---', 'class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean', '0,47,60,48.5,2.0']
        """  # noqa: E501
        lines = [
            f"num_images: {self.num_images}",
            f"min_concept_probability: {self.min_concept_probability}",
            "class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean",
        ]
        rows = zip(
            self.tokens.tolist(),
            self.counts.tolist(),
            self.lat.tolist(),
            self.lon.tolist(),
            strict=True,
        )
        lines += [f"{c},{t},{n},{a!r},{b!r}" for c, (t, n, a, b) in enumerate(rows)]
        return ("\r\n".join(lines) + "\r\n").encode()

    def write(self, path: PathLike) -> Path:
        """Write the cells as a CSV in the published layout (atomically); return the path.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> cells = CellPartition(np.array(["47"]), np.array([60]), np.array([48.5]),
        ...                       np.array([2.0]), 61)
        >>> out = cells.write(pathlib.Path(tempfile.mkdtemp()) / "cells.csv")
        >>> CellPartition.from_file(out).tokens.tolist()
        ['47']
        """
        return atomic_write_bytes(path, self.to_csv())

    @classmethod
    def from_file(cls, source: bytes | PathLike, *, where: str | None = None) -> CellPartition:
        r"""Read a partition file in the published layout (``cells_50_5000.csv``, ...).

        Read through :func:`geoaware.sources.im2gps.read_s2_cells`; rows are put in
        ``class_label`` order, which must run 0 to n-1.

        Raises
        ------
        InputFileError
            Whatever ``read_s2_cells`` refuses, class labels that are not 0 to n-1, or
            overlapping cells; naming the file, the record and the field.

        Examples
        --------
        >>> data = (b"num_images: 900\r\nmin_concept_probability: ---\r\n"
        ...         b"class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean\r\n"
        ...         b"0,8747c,827,38.67121908948002,-109.49742631801699\r\n")
        >>> CellPartition.from_file(data, where="cells.csv").counts.tolist()
        [827]
        """
        from geoaware.sources.im2gps import read_s2_cells

        name = where or ("<bytes>" if isinstance(source, bytes | bytearray) else str(source))
        table = read_s2_cells(source, where=name)
        labels = table.column("class_label").to_numpy()
        order = np.argsort(labels, kind="stable")
        if not np.array_equal(labels[order], np.arange(labels.size)):
            bad = int(order[np.argmax(labels[order] != np.arange(labels.size))])
            raise InputFileError(
                name,
                f"class labels must run 0 to {labels.size - 1}; found {int(labels[bad])}",
                record=f"line {bad + 4}",
                field="class_label",
            )
        meta = table.schema.metadata
        tokens = np.asarray(table.column("token").to_pylist(), dtype=str)[order]
        try:
            return cls(
                tokens,
                table.column("images").to_numpy()[order],
                table.column("lat_mean").to_numpy()[order],
                table.column("lon_mean").to_numpy()[order],
                int(meta[b"num_images"]),
                meta[b"min_concept_probability"].decode(),
            )
        except ValueError as exc:
            raise InputFileError(name, str(exc), field="hex_id") from None


def build_cells(
    lat: ArrayLike,
    lon: ArrayLike,
    tau_min: int,
    tau_max: int,
    *,
    min_level: int = START_LEVEL,
    max_level: int = S2_MAX_LEVEL,
    weights: ArrayLike | None = None,
) -> CellPartition:
    """Build adaptive S2 cells from training locations (Müller-Budack et al. 2018).

    Every point goes into its cell at ``min_level``; a cell holding more than ``tau_max``
    images is split into its four children, level after level, until none holds more (cells
    at ``max_level`` stay whole: several images can share one leaf cell); then cells holding
    ``tau_min`` images or fewer are dropped (as in the reference ``create_cells.py``, whose
    MP-16 files hold no cell of exactly 50 images and many of 51).

    Parameters
    ----------
    lat, lon
        Training locations in degrees (no NaN).
    tau_min, tau_max
        Thresholds, ``0 <= tau_min < tau_max``: ``cells_50_5000`` is (50, 5000).
    min_level, max_level
        The level splitting starts from (2, as the reference: the 6 faces are split twice
        before counting) and the finest level (30).
    weights
        Images at each point (non-negative integers; default one each).

    Returns
    -------
    CellPartition
        Cells in S2 id order (Hilbert-curve order, face by face); ``num_images`` is the
        number of images given, ``lat``/``lon`` the spherical mean of each cell's points.

    Raises
    ------
    InvalidCoordinateError
        A coordinate out of range or NaN (naming its index).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lat = np.r_[48.85 + rng.normal(0, 0.01, 300), 40.7 + rng.normal(0, 0.01, 100)]
    >>> lon = np.r_[2.35 + rng.normal(0, 0.01, 300), -74.0 + rng.normal(0, 0.01, 100)]
    >>> build_cells(lat, lon, tau_min=50, tau_max=1000).tokens.tolist()
    ['47', '89']
    >>> cells = build_cells(lat, lon, tau_min=5, tau_max=150)
    >>> cells.counts.tolist(), cells.levels.tolist()
    ([80, 15, 59, 133, 7, 100], [9, 12, 12, 12, 10, 2])
    """
    if not 0 <= tau_min < tau_max:
        raise UsageError(f"need 0 <= tau_min < tau_max, got tau_min={tau_min}, tau_max={tau_max}")
    if not 0 <= min_level <= max_level <= S2_MAX_LEVEL:
        raise UsageError(f"need 0 <= min_level <= max_level <= 30, got {min_level} and {max_level}")
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64)).reshape(-1)
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64)).reshape(-1)
    leaf_ids = s2_leaf_ids(la, lo)  # checks the lengths and ranges
    missing = np.isnan(la) | np.isnan(lo)
    if missing.any():
        raise InvalidCoordinateError(
            f"training location is NaN at index {int(np.argmax(missing))}: every point "
            "given to build_cells needs a location"
        )
    if weights is None:
        w = np.ones(la.size, np.int64)
    else:
        w = np.asarray(weights, dtype=np.int64).reshape(-1)
        if w.size != la.size or (w < 0).any():
            raise UsageError(f"weights must be {la.size} non-negative integers")
    x, y, z = unit_vector(la, lo).T
    leaf, inverse = np.unique(leaf_ids, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse, weights=w, minlength=leaf.size).astype(np.int64)
    xyz = np.stack([np.bincount(inverse, weights=w * c, minlength=leaf.size) for c in (x, y, z)])

    done_ids: list[UInt64Array] = []
    done_counts: list[IntArray] = []
    done_xyz: list[Float64Array] = []
    active = np.arange(leaf.size)
    for level in range(min_level, max_level + 1):
        if active.size == 0:
            break
        cell = s2_parent_ids(leaf[active], level)  # sorted, as leaf is
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        n = np.add.reduceat(count[active], starts)
        split = n > tau_max if level < max_level else np.zeros(n.size, bool)
        stay = ~split
        done_ids.append(cell[starts[stay]])
        done_counts.append(n[stay])
        done_xyz.append(np.add.reduceat(xyz[:, active], starts, axis=1)[:, stay])
        active = active[np.repeat(split, np.diff(np.r_[starts, active.size]))]
    ids = np.concatenate(done_ids) if done_ids else np.zeros(0, np.uint64)
    counts = np.concatenate(done_counts) if done_counts else np.zeros(0, np.int64)
    sums = np.concatenate(done_xyz, axis=1) if done_xyz else np.zeros((3, 0))
    keep = counts > tau_min
    order = np.argsort(ids[keep], kind="stable")
    ids, counts, sums = ids[keep][order], counts[keep][order], sums[:, keep][:, order]
    mean_lat = np.degrees(np.arctan2(sums[2], np.hypot(sums[0], sums[1])))
    mean_lon = np.degrees(np.arctan2(sums[1], sums[0]))
    tokens = np.asarray([s2_id_token(int(i)) for i in ids.tolist()], dtype=str)
    return CellPartition(tokens, counts, mean_lat, mean_lon, int(w.sum()))


def parents(fine: CellPartition, coarse: CellPartition) -> IntArray:
    """Return, for each cell of ``fine``, the index of the ``coarse`` cell holding it, or -1.

    A fine cell larger than every coarse cell around it, or outside all of them, gets -1.

    Examples
    --------
    >>> coarse = CellPartition(np.array(["4c", "44"]), np.array([99, 80]),
    ...                        np.zeros(2), np.zeros(2), 179)
    >>> fine = CellPartition(np.array(["47", "41", "54"]), np.array([60, 70, 51]),
    ...                      np.zeros(3), np.zeros(3), 181)
    >>> parents(fine, coarse).tolist()
    [1, 1, -1]
    """
    return coarse._find(*s2_id_ranges(fine.ids))
