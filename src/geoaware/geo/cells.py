"""Discrete global grids: H3 hexagons, S2 cells and a latitude/longitude quadtree.

H3 (Uber) and S2 (Google) each cut the sphere into a hierarchy of cells. Geolocation work
uses S2 cells (PlaNet, CPlaNet, the MP-16 partitions), geo-cell federated partitions use
either, or the quadtree. Three groups of small exact functions:

- tokens per point (:func:`h3_cells`, :func:`s2_cells`, :func:`s2_level`,
  :func:`s2_cell_center`), wrapping the ``h3`` and ``s2sphere`` packages;
- integer S2 cell ids, vectorised (:func:`s2_leaf_ids`, :func:`s2_parent_ids`,
  :func:`s2_id_levels`, :func:`s2_id_ranges`, :func:`s2_id_token`, :func:`s2_token_id`):
  the cube face, the quadratic projection and the Hilbert curve in numpy, equal to
  ``s2sphere.CellId.from_lat_lng``, so a million points take well under a second;
- quadtree cells of the plate carrée grid split until each holds few enough points
  (:func:`quadtree_keys`, :func:`quadtree_levels`, :func:`quadtree_names`).
"""

from __future__ import annotations

from collections.abc import Callable

import h3
import numpy as np
import s2sphere

from geoaware.errors import InvalidCoordinateError, UsageError
from geoaware.geo.distance import check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.geo.types import LatLon
from geoaware.typing import ArrayLike, Float64Array, IntArray, ObjectArray, UInt64Array

__all__ = [
    "QUADTREE_MAX_LEVEL",
    "S2_MAX_LEVEL",
    "h3_cells",
    "quadtree_keys",
    "quadtree_levels",
    "quadtree_names",
    "s2_cell_center",
    "s2_cells",
    "s2_id_levels",
    "s2_id_ranges",
    "s2_id_token",
    "s2_leaf_ids",
    "s2_level",
    "s2_parent_ids",
    "s2_token_id",
]

S2_MAX_LEVEL = 30
"""The level of S2 leaf cells (about 1 cm across)."""
QUADTREE_MAX_LEVEL = 28
"""The finest quadtree level a key holds (row and column take 29 bits each)."""

_U64 = np.uint64


def _per_point(
    lat: ArrayLike, lon: ArrayLike, cell_of: Callable[[float, float], str]
) -> ObjectArray:
    """Apply a per-point cell function (the library's own); None for NaN points."""
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    out = np.empty(la.shape, dtype=object)
    for i, (a, b) in enumerate(zip(la.tolist(), lo.tolist(), strict=True)):
        out[i] = None if a != a or b != b else cell_of(a, b)
    return out


def h3_cells(lat: ArrayLike, lon: ArrayLike, resolution: int) -> ObjectArray:
    """Return the H3 cell (hex string) at ``resolution`` (0..15) of each point; None for NaN.

    Examples
    --------
    >>> h3_cells([37.775938728915946], [-122.41795063018799], 9).tolist()
    ['8928308280fffff']
    """
    if not 0 <= resolution <= 15:
        raise UsageError(f"H3 resolution must be in 0..15, got {resolution}")
    return _per_point(lat, lon, lambda a, b: h3.latlng_to_cell(a, b, resolution))


def s2_cells(lat: ArrayLike, lon: ArrayLike, level: int) -> ObjectArray:
    """Return the S2 cell token at ``level`` (0..30) of each point; None for NaN.

    Examples
    --------
    >>> s2_cells([48.8566], [2.3522], 10).tolist()
    ['47e66f']
    """
    if not 0 <= level <= 30:
        raise UsageError(f"S2 level must be in 0..30, got {level}")

    def token(a: float, b: float) -> str:
        cell = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b))
        return str(cell.parent(level).to_token())

    return _per_point(lat, lon, token)


def _cell_id(token: str) -> s2sphere.CellId:
    try:
        cell = s2sphere.CellId.from_token(token)
    except (ValueError, TypeError) as exc:
        raise InvalidCoordinateError(f"S2 token {token!r} is not hexadecimal") from exc
    if not cell.is_valid():
        raise InvalidCoordinateError(f"S2 token {token!r} is not a valid cell id")
    return cell


def s2_level(token: str) -> int:
    """Return the level of an S2 cell token.

    Examples
    --------
    >>> s2_level("47e66f")
    10
    """
    return int(_cell_id(token).level())


def s2_cell_center(token: str) -> LatLon:
    """Return the centre of an S2 cell given by its token.

    Examples
    --------
    >>> c = s2_cell_center("47e66f")
    >>> round(c.lat, 2), round(c.lon, 2)
    (48.9, 2.33)
    """
    ll = _cell_id(token).to_lat_lng()
    return LatLon(float(ll.lat().degrees), float(ll.lng().degrees))


# --- integer S2 cell ids, vectorised ---------------------------------------------------------


def _lookup_pos() -> IntArray:
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


def _st_to_ij(u: Float64Array) -> IntArray:
    """Apply the quadratic projection (S2's default); return the integer position on the face."""
    r = np.sqrt(1.0 + 3.0 * np.abs(u))
    s = np.where(u >= 0, 0.5 * r, 1.0 - 0.5 * r)
    ij = np.floor(s * float(1 << S2_MAX_LEVEL))
    return np.clip(ij, 0, (1 << S2_MAX_LEVEL) - 1).astype(np.int64)


def _leaf_ids_xyz(x: Float64Array, y: Float64Array, z: Float64Array) -> UInt64Array:
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
    ids: UInt64Array = n * _U64(2) + _U64(1)
    return ids


def _coordinates(lat: ArrayLike, lon: ArrayLike) -> tuple[Float64Array, Float64Array]:
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64)).reshape(-1)
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64)).reshape(-1)
    if la.shape != lo.shape:
        raise UsageError(f"lat and lon differ in length: {la.size} and {lo.size}")
    check_coordinates(la, lo)
    return la, lo


def s2_leaf_ids(lat: ArrayLike, lon: ArrayLike) -> UInt64Array:
    """Return the S2 leaf (level-30) cell id of each point as uint64; 0 for NaN points.

    Equal to ``s2sphere.CellId.from_lat_lng(LatLng.from_degrees(lat, lon)).id()``, without a
    Python loop.

    Examples
    --------
    >>> hex(int(s2_leaf_ids([48.8566], [2.3522])[0]))[:8]
    '0x47e66e'
    """
    la, lo = _coordinates(lat, lon)
    ok = ~(np.isnan(la) | np.isnan(lo))
    out = np.zeros(la.size, _U64)
    out[ok] = _leaf_ids_xyz(*unit_vector(la[ok], lo[ok]).T)
    return out


def s2_parent_ids(ids: UInt64Array, level: int) -> UInt64Array:
    """Return the ancestors at ``level`` of S2 cell ids at that level or finer.

    ``(id & -lsb) | lsb``, with ``lsb`` the lowest set bit of a cell at ``level``.

    Examples
    --------
    >>> s2_id_token(int(s2_parent_ids(s2_leaf_ids([48.8566], [2.3522]), 10)[0]))
    '47e66f'
    """
    lsb = _U64(1 << (2 * (S2_MAX_LEVEL - level)))
    return (ids & ~(lsb - _U64(1))) | lsb  # type: ignore[no-any-return]


def s2_id_levels(ids: UInt64Array) -> IntArray:
    """Return the level (0 to 30) of each S2 cell id.

    Examples
    --------
    >>> s2_id_levels(np.array([s2_token_id("47"), s2_token_id("47e66f")], np.uint64)).tolist()
    [2, 10]
    """
    low = ids & (~ids + _U64(1))  # the lowest set bit
    zeros = np.log2(low.astype(np.float64)).astype(np.int64)  # exact for powers of two
    return S2_MAX_LEVEL - zeros // 2  # type: ignore[no-any-return]


def s2_id_ranges(ids: UInt64Array) -> tuple[UInt64Array, UInt64Array]:
    """Return the first and last leaf cell id inside each S2 cell (``range_min``, ``range_max``).

    A cell holds another exactly when its range holds the other's.

    Examples
    --------
    >>> low, high = s2_id_ranges(np.array([s2_token_id("47")], np.uint64))
    >>> hex(int(low[0])), hex(int(high[0]))
    ('0x4600000000000001', '0x47ffffffffffffff')
    """
    shift = _U64(2) * (_U64(S2_MAX_LEVEL) - s2_id_levels(ids).astype(_U64))
    half = (_U64(1) << shift) - _U64(1)
    return ids - half, ids + half


def s2_id_token(cell_id: int) -> str:
    """Return the token of an S2 cell id (hexadecimal, trailing zeros dropped).

    Examples
    --------
    >>> s2_id_token(0x47E66F0000000000)
    '47e66f'
    """
    return format(cell_id, "016x").rstrip("0")


def s2_token_id(token: str) -> int:
    """Return the S2 cell id of a token; :class:`~geoaware.errors.UsageError` if it is not a cell.

    Examples
    --------
    >>> hex(s2_token_id("47e66f"))
    '0x47e66f0000000000'
    >>> s2_token_id("48")
    Traceback (most recent call last):
    ...
    geoaware.errors.UsageError: S2 token '48' is not a valid cell id
    """
    if not 1 <= len(token) <= 16 or token.strip("0123456789abcdefABCDEF"):
        raise UsageError(f"S2 token {token!r} is not 1 to 16 hexadecimal digits")
    value = int(token.ljust(16, "0"), 16)
    low = value & -value
    if value == 0 or (value >> 61) > 5 or (low.bit_length() - 1) % 2:
        raise UsageError(f"S2 token {token!r} is not a valid cell id")
    return value


# --- adaptive latitude/longitude quadtree ----------------------------------------------------

_QUAD_BITS = 29
_QUAD_MASK = (1 << _QUAD_BITS) - 1


def quadtree_keys(lat: ArrayLike, lon: ArrayLike, max_size: int, max_level: int) -> IntArray:
    """Return the adaptive quadtree cell key of each point; -1 for NaN points.

    Level ``L`` cuts latitude (-90..90) and longitude (-180..180) into ``2**L`` equal bands
    each. Starting from the whole world (level 0), a cell holding more than ``max_size``
    points is split in four, level after level; at ``max_level`` cells stay whole, however
    many points they hold. A key packs ``(level << 58) | (row << 29) | column``, row counted
    from the south, column from the antimeridian.

    Examples
    --------
    >>> keys = quadtree_keys([10.0, 10.1, -40.0, np.nan], [20.0, 20.1, 100.0, 0.0], 2, 8)
    >>> quadtree_names(keys).tolist()
    ['q1/1/1', 'q1/1/1', 'q1/0/1', None]
    """
    if not 0 <= max_level <= QUADTREE_MAX_LEVEL:
        raise UsageError(f"quadtree max_level must be in 0..{QUADTREE_MAX_LEVEL}, got {max_level}")
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    located = np.flatnonzero(~(np.isnan(la) | np.isnan(lo)))
    key = np.full(len(la), -1, dtype=np.int64)
    active = located
    for level in range(max_level + 1):
        n = 1 << level
        iy = np.minimum(((la[active] + 90.0) / 180.0 * n).astype(np.int64), n - 1)
        ix = np.minimum(((lo[active] + 180.0) / 360.0 * n).astype(np.int64), n - 1)
        k = (np.int64(level) << 58) | (iy << _QUAD_BITS) | ix
        _, inv, counts = np.unique(k, return_inverse=True, return_counts=True)
        small = counts[inv.ravel()] <= max_size
        if level == max_level:
            small[:] = True
        key[active[small]] = k[small]
        active = active[~small]
        if not len(active):
            break
    return key


def quadtree_levels(keys: IntArray) -> IntArray:
    """Return the level of each quadtree key (-1 for the key -1: no cell).

    Examples
    --------
    >>> quadtree_levels(quadtree_keys([10.0, 10.1, -40.0], [20.0, 20.1, 100.0], 2, 8)).tolist()
    [1, 1, 1]
    """
    keys = np.asarray(keys, dtype=np.int64)
    return np.where(keys >= 0, keys >> 58, -1)


def quadtree_names(keys: IntArray) -> ObjectArray:
    """Return the name ``q<level>/<row>/<column>`` of each quadtree key (None for -1).

    Examples
    --------
    >>> quadtree_names(np.array([(3 << 58) | (5 << 29) | 2, -1])).tolist()
    ['q3/5/2', None]
    """
    keys = np.asarray(keys, dtype=np.int64)
    lv, iy, ix = keys >> 58, (keys >> _QUAD_BITS) & _QUAD_MASK, keys & _QUAD_MASK
    rows = zip(keys.tolist(), lv.tolist(), iy.tolist(), ix.tolist(), strict=True)
    return np.asarray([None if k < 0 else f"q{a}/{b}/{c}" for k, a, b, c in rows], dtype=object)
