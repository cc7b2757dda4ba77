"""Location and date encodings that models take as input.

* :func:`wrap_encode`: ``sin`` and ``cos`` of ``pi * lon/180`` and ``pi * lat/90`` (Mac Aodha
  et al. 2019, "Presence-Only Geographical Priors"), so that -180 and 180 meet.
* :func:`unit_vector`: the point on the unit sphere (x, y, z).
* :func:`date_encode`: the fraction of the year, in the photo's own year (leap years count),
  as ``sin`` and ``cos`` of ``2 * pi * fraction``, so that 31 December meets 1 January.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geoaware.geo.distance import check_coordinates
from geoaware.typing import ArrayLike, Float64Array

__all__ = ["date_encode", "unit_vector", "wrap_encode", "year_fraction"]


def wrap_encode(lat: ArrayLike, lon: ArrayLike) -> Float64Array:
    """Encode points as ``[sin(pi lon/180), cos(pi lon/180), sin(pi lat/90), cos(pi lat/90)]``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 4)``, float64.

    Examples
    --------
    >>> east, west = wrap_encode([0.0, 0.0], [180.0, -180.0]).round(6)
    >>> east.tolist() == west.tolist()
    True
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    a, b = np.pi * lo / 180.0, np.pi * la / 90.0
    return np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], axis=-1)


def unit_vector(lat: ArrayLike, lon: ArrayLike) -> Float64Array:
    """Return points as 3-D unit vectors ``(x, y, z)``, z towards the north pole.

    Examples
    --------
    >>> unit_vector([90.0], [0.0]).round(6).tolist()
    [[0.0, 0.0, 1.0]]
    """
    la = np.radians(np.atleast_1d(np.asarray(lat, dtype=np.float64)))
    lo = np.radians(np.atleast_1d(np.asarray(lon, dtype=np.float64)))
    c = np.cos(la)
    return np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=-1)


def year_fraction(dates: npt.ArrayLike) -> Float64Array:
    """Fraction of its own year elapsed at each date or timestamp, in [0, 1); NaN for NaT.

    Examples
    --------
    >>> year_fraction(np.array(["2020-01-01", "2020-07-02", "2021-07-02"], dtype="datetime64[D]"))
    array([0.        , 0.5       , 0.49863014])
    """
    t = np.asarray(dates).astype("datetime64[s]")
    year_start = t.astype("datetime64[Y]")
    next_year = year_start + np.timedelta64(1, "Y")
    elapsed = (t - year_start.astype("datetime64[s]")).astype(np.float64)
    length = (next_year.astype("datetime64[s]") - year_start.astype("datetime64[s]")).astype(
        np.float64
    )
    out: Float64Array = elapsed / length
    out[np.isnat(t)] = np.nan
    return out


def date_encode(dates: npt.ArrayLike) -> Float64Array:
    """Encode dates as ``[sin(2 pi f), cos(2 pi f)]`` of the year fraction ``f``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 2)``; rows of NaN where the date is missing.

    Examples
    --------
    >>> date_encode(np.array(["2019-01-01"], dtype="datetime64[D]")).round(6).tolist()
    [[0.0, 1.0]]
    """
    f = np.atleast_1d(year_fraction(dates))
    return np.stack([np.sin(2 * np.pi * f), np.cos(2 * np.pi * f)], axis=-1)
