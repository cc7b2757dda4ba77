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
(a bit operation on sorted ids), so a million points take about a second.
:class:`CellPartition` holds the cells (tokens, image counts, mean locations), assigns points
to them and reads and writes the published CSV layout; :func:`parents` links the cells of a
fine partition to those of a coarser one (the hierarchy of the paper).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from geoaware.errors import InputFileError, InvalidCoordinateError, UsageError
from geoaware.fileio import atomic_write_bytes
from geoaware.geo.distance import check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.geo.types import ArrayLike

__all__ = ["CellPartition", "build_cells", "leaf_cell_ids", "parents"]

MAX_LEVEL = 30
"""The level of S2 leaf cells (about 1 cm across)."""
START_LEVEL = 2
"""The level the reference implementation starts splitting from (its ``--lvl_min``)."""

_U64 = np.uint64
_IDS = npt.NDArray[np.uint64]
_INTS = npt.NDArray[np.int64]
_FLOATS = npt.NDArray[np.float64]


def _lookup_pos() -> npt.NDArray[np.int64]:
    """Build the Hilbert-curve table of S2 (4 bits of i and j plus orientation -> 8 position bits).

    Built as ``s2sphere`` (and the C++ library) build theirs: walk each 4-level sub-curve in
    Hilbert order from each of the four start orientations.
    """
    pos_to_ij = ((0, 1, 3, 2), (0, 2, 3, 1), (3, 2, 0, 1), (3, 1, 0, 2))
    pos_to_orientation = (1, 0, 0, 3)
    table = np.zeros(1 << 10, np.int64)

    def walk(level: int, i: int, j: int, orig: int, pos: int, orientation: int) -> None:
        if level == 4:
            table[(((i << 4) + j) << 2) + orig] = (pos << 2) + orientation
            return
        r = pos_to_ij[orientation]
        for index in range(4):
            walk(
                level + 1,
                (i << 1) + (r[index] >> 1),
                (j << 1) + (r[index] & 1),
                orig,
                (pos << 2) + index,
                orientation ^ pos_to_orientation[index],
            )

    for orientation in range(4):
        walk(0, 0, 0, orientation, 0, orientation)
    return table


_LOOKUP_POS = _lookup_pos()


def _st_to_ij(u: _FLOATS) -> _INTS:
    """Apply the quadratic projection (S2's default); return the integer position on the face."""
    r = np.sqrt(1.0 + 3.0 * np.abs(u))
    s = np.where(u >= 0, 0.5 * r, 1.0 - 0.5 * r)
    ij = np.floor(s * float(1 << MAX_LEVEL))
    return np.clip(ij, 0, (1 << MAX_LEVEL) - 1).astype(np.int64)


def _leaf_ids_xyz(x: _FLOATS, y: _FLOATS, z: _FLOATS) -> _IDS:
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    axis = np.where(ax > ay, np.where(ax > az, 0, 2), np.where(ay > az, 1, 2))
    along = np.choose(axis, (x, y, z))
    face = axis + 3 * (along < 0)
    u = np.empty_like(x)
    v = np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        for f, (un, vn, d) in enumerate(
            ((y, z, x), (-x, z, y), (-x, -y, z), (z, y, x), (z, -x, y), (-y, -x, z))
        ):
            m = face == f
            u[m] = un[m] / d[m]
            v[m] = vn[m] / d[m]
    i, j = _st_to_ij(u), _st_to_ij(v)
    n = face.astype(_U64) << _U64(60)
    bits = (face & 1).astype(np.int64)
    for k in range(7, -1, -1):
        bits = bits + (((i >> (4 * k)) & 15) << 6) + (((j >> (4 * k)) & 15) << 2)
        bits = _LOOKUP_POS[bits]
        n |= (bits >> 2).astype(_U64) << _U64(8 * k)
        bits &= 3
    ids: _IDS = n * _U64(2) + _U64(1)
    return ids


def _coordinates(lat: ArrayLike, lon: ArrayLike) -> tuple[_FLOATS, _FLOATS]:
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64)).reshape(-1)
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64)).reshape(-1)
    if la.shape != lo.shape:
        raise ValueError(f"lat and lon differ in length: {la.size} and {lo.size}")
    check_coordinates(la, lo)
    return la, lo


def leaf_cell_ids(lat: ArrayLike, lon: ArrayLike) -> _IDS:
    """Return the S2 leaf (level-30) cell id of each point as uint64; 0 for NaN points.

    Equal to ``s2sphere.CellId.from_lat_lng(LatLng.from_degrees(lat, lon)).id()``, without a
    Python loop.

    Examples
    --------
    >>> hex(int(leaf_cell_ids([48.8566], [2.3522])[0]))[:8]
    '0x47e66e'
    """
    la, lo = _coordinates(lat, lon)
    ok = ~(np.isnan(la) | np.isnan(lo))
    out = np.zeros(la.size, _U64)
    out[ok] = _leaf_ids_xyz(*unit_vector(la[ok], lo[ok]).T)
    return out


def _lsb(level: npt.NDArray[np.integer[Any]] | int) -> Any:
    return _U64(1) << (_U64(2) * (_U64(MAX_LEVEL) - np.asarray(level).astype(_U64)))


def _parent(ids: _IDS, level: int) -> _IDS:
    """Return the ancestors at ``level`` of finer cells: ``(id & -lsb) | lsb``."""
    lsb = _U64(1 << (2 * (MAX_LEVEL - level)))
    return (ids & ~(lsb - _U64(1))) | lsb  # type: ignore[no-any-return]


def _levels(ids: _IDS) -> npt.NDArray[np.int64]:
    low = ids & (~ids + _U64(1))  # the lowest set bit
    zeros = np.log2(low.astype(np.float64)).astype(np.int64)  # exact for powers of two
    return MAX_LEVEL - zeros // 2  # type: ignore[no-any-return]


def _token(cell_id: int) -> str:
    return format(cell_id, "016x").rstrip("0")


def _id_of(token: str) -> int:
    if not 1 <= len(token) <= 16 or token.strip("0123456789abcdefABCDEF"):
        raise ValueError(f"S2 token {token!r} is not 1 to 16 hexadecimal digits")
    value = int(token.ljust(16, "0"), 16)
    low = value & -value
    if value == 0 or (value >> 61) > 5 or (low.bit_length() - 1) % 2:
        raise ValueError(f"S2 token {token!r} is not a valid cell id")
    return value


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

    tokens: npt.NDArray[np.str_]
    counts: _INTS
    lat: _FLOATS
    lon: _FLOATS
    num_images: int
    min_concept_probability: str = "---"
    ids: _IDS = field(init=False, repr=False)
    _order: _INTS = field(init=False, repr=False)
    _low: _IDS = field(init=False, repr=False)
    _high: _IDS = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tokens = np.asarray(self.tokens, dtype=str).reshape(-1)
        n = tokens.size
        columns = {"counts": self.counts, "lat": self.lat, "lon": self.lon}
        for name, values in columns.items():
            if np.asarray(values).reshape(-1).size != n:
                raise ValueError(f"{name} has {np.asarray(values).size} values for {n} tokens")
        ids = np.array([_id_of(t) for t in tokens.tolist()], dtype=_U64).reshape(-1)
        order = np.argsort(ids, kind="stable")
        half = _lsb(_levels(ids)) - _U64(1)
        low, high = ids - half, ids + half
        overlap = np.flatnonzero(low[order][1:] <= high[order][:-1])
        if overlap.size:
            a, b = order[overlap[0]], order[overlap[0] + 1]
            raise ValueError(f"cells {tokens[a]!r} and {tokens[b]!r} overlap")
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
    def levels(self) -> npt.NDArray[np.int64]:
        """The S2 level of each cell (0 to 30)."""
        return _levels(self.ids)

    def _find(self, low: _IDS, high: _IDS) -> _INTS:
        """Return the class whose id range holds ``[low, high]``, or -1."""
        pos = np.searchsorted(self._low, low, side="right").astype(np.int64) - 1
        safe = np.maximum(pos, 0)
        inside = (pos >= 0) & (high <= self._high[safe]) if len(self) else pos >= 0
        return np.where(inside, self._order[safe] if len(self) else -1, -1)

    def assign(self, lat: ArrayLike, lon: ArrayLike) -> _INTS:
        """Return the class index of the cell holding each point; -1 outside every cell.

        NaN points get -1.

        Examples
        --------
        >>> cells = CellPartition(np.array(["47"]), np.array([60]), np.array([48.0]),
        ...                       np.array([2.0]), 60)
        >>> cells.assign([48.86, -33.9], [2.35, 18.4]).tolist()
        [0, -1]
        """
        leaf = leaf_cell_ids(lat, lon)
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

    def write(self, path: str | os.PathLike[str]) -> Path:
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
    def from_file(
        cls, source: bytes | str | os.PathLike[str], *, where: str | None = None
    ) -> CellPartition:
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
    max_level: int = MAX_LEVEL,
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
    if not 0 <= min_level <= max_level <= MAX_LEVEL:
        raise UsageError(f"need 0 <= min_level <= max_level <= 30, got {min_level} and {max_level}")
    la, lo = _coordinates(lat, lon)
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
            raise ValueError(f"weights must be {la.size} non-negative integers")
    x, y, z = unit_vector(la, lo).T
    leaf, inverse = np.unique(_leaf_ids_xyz(x, y, z), return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse, weights=w, minlength=leaf.size).astype(np.int64)
    xyz = np.stack([np.bincount(inverse, weights=w * c, minlength=leaf.size) for c in (x, y, z)])

    done_ids: list[_IDS] = []
    done_counts: list[_INTS] = []
    done_xyz: list[_FLOATS] = []
    active = np.arange(leaf.size)
    for level in range(min_level, max_level + 1):
        if active.size == 0:
            break
        cell = _parent(leaf[active], level)  # sorted, as leaf is
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        n = np.add.reduceat(count[active], starts)
        split = n > tau_max if level < max_level else np.zeros(n.size, bool)
        stay = ~split
        done_ids.append(cell[starts[stay]])
        done_counts.append(n[stay])
        done_xyz.append(np.add.reduceat(xyz[:, active], starts, axis=1)[:, stay])
        active = active[np.repeat(split, np.diff(np.r_[starts, active.size]))]
    ids = np.concatenate(done_ids) if done_ids else np.zeros(0, _U64)
    counts = np.concatenate(done_counts) if done_counts else np.zeros(0, np.int64)
    sums = np.concatenate(done_xyz, axis=1) if done_xyz else np.zeros((3, 0))
    keep = counts > tau_min
    order = np.argsort(ids[keep], kind="stable")
    ids, counts, sums = ids[keep][order], counts[keep][order], sums[:, keep][:, order]
    mean_lat = np.degrees(np.arctan2(sums[2], np.hypot(sums[0], sums[1])))
    mean_lon = np.degrees(np.arctan2(sums[1], sums[0]))
    tokens = np.asarray([_token(int(i)) for i in ids.tolist()], dtype=str)
    return CellPartition(tokens, counts, mean_lat, mean_lon, int(w.sum()))


def parents(fine: CellPartition, coarse: CellPartition) -> _INTS:
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
    half = _lsb(fine.levels) - _U64(1)
    return coarse._find(fine.ids - half, fine.ids + half)
