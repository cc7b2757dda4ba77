"""Discrete global grids: H3 hexagons and S2 cells for points.

H3 (Uber) and S2 (Google) each cut the sphere into a hierarchy of cells. Geolocation work
uses S2 cells (PlaNet, CPlaNet, the MP-16 partitions), geo-cell federated partitions use
either. These functions wrap the ``h3`` and ``s2sphere`` packages and accept arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import h3
import numpy as np
import numpy.typing as npt
import s2sphere

from geoaware.errors import InvalidCoordinateError, UsageError
from geoaware.geo.distance import check_coordinates
from geoaware.geo.types import ArrayLike, LatLon

__all__ = ["h3_cells", "s2_cell_center", "s2_cells", "s2_level"]


def _per_point(
    lat: ArrayLike, lon: ArrayLike, cell_of: Callable[[float, float], str]
) -> npt.NDArray[np.object_]:
    """Apply a per-point cell function (the library's own); None for NaN points."""
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    out = np.empty(la.shape, dtype=object)
    for i, (a, b) in enumerate(zip(la.tolist(), lo.tolist(), strict=True)):
        out[i] = None if a != a or b != b else cell_of(a, b)
    return out


def h3_cells(lat: ArrayLike, lon: ArrayLike, resolution: int) -> npt.NDArray[np.object_]:
    """Return the H3 cell (hex string) at ``resolution`` (0..15) of each point; None for NaN.

    Examples
    --------
    >>> h3_cells([37.775938728915946], [-122.41795063018799], 9).tolist()
    ['8928308280fffff']
    """
    if not 0 <= resolution <= 15:
        raise UsageError(f"H3 resolution must be in 0..15, got {resolution}")
    return _per_point(lat, lon, lambda a, b: h3.latlng_to_cell(a, b, resolution))


def s2_cells(lat: ArrayLike, lon: ArrayLike, level: int) -> npt.NDArray[np.object_]:
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
