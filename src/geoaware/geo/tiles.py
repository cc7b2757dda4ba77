"""Web-mercator (XYZ, "slippy map") tiles, as used by Git-10M's ``Z_X_Y`` locations.

A tile names a square in web-mercator space, not a point. Research code often takes the
tile's north-west corner (what ``mercantile.ul`` returns) as "the" location; at zoom 15 that
puts every image about 0.4 to 0.9 km from where it is. :func:`tile_center` returns the centre
in mercator space (the point that projects to the middle of the tile's pixels), which is the
right location for a tile. Tile arithmetic is delegated to ``mercantile``.
"""

from __future__ import annotations

import re

import mercantile
import numpy as np

from geoaware.errors import InvalidTileError
from geoaware.geo.distance import WGS84_A_M
from geoaware.geo.types import Bounds, LatLon
from geoaware.typing import ArrayLike, Float64Array

__all__ = [
    "MAX_ZOOM",
    "Tile",
    "format_tile",
    "ground_sample_distance_m",
    "parse_tile",
    "tile_bounds",
    "tile_center",
    "tile_centers",
    "tile_of",
]

MAX_ZOOM = 30
"""Highest zoom accepted (well past any imagery: zoom 30 tiles are ~4 cm at the equator)."""

Tile = mercantile.Tile
_TILE_RE = re.compile(r"^\s*(\d{1,2})[_/](\d{1,10})[_/](\d{1,10})\s*$")


def _checked(z: int, x: int, y: int, text: object) -> mercantile.Tile:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidTileError(f"tile {text!r}: zoom {z} outside 0..{MAX_ZOOM}")
    n = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < n:
            raise InvalidTileError(f"tile {text!r}: {name}={value} outside 0..{n - 1} at zoom {z}")
    return mercantile.Tile(x, y, z)


def parse_tile(text: str) -> mercantile.Tile:
    """Parse a ``Z_X_Y`` string (``Z/X/Y`` also accepted) into a validated tile.

    Raises
    ------
    InvalidTileError
        If the string is not three non-negative integers, the zoom is outside 0..30, or x or
        y is outside 0..2**z - 1.

    Examples
    --------
    >>> parse_tile("15_16384_10896")
    Tile(x=16384, y=10896, z=15)
    >>> parse_tile("2_4_1")
    Traceback (most recent call last):
    ...
    geoaware.errors.InvalidTileError: tile '2_4_1': x=4 outside 0..3 at zoom 2
    """
    if not isinstance(text, str):
        raise InvalidTileError(f"tile {text!r}: expected a 'Z_X_Y' string")
    m = _TILE_RE.match(text)
    if m is None:
        raise InvalidTileError(f"tile {text!r}: expected 'Z_X_Y' with three non-negative integers")
    z, x, y = (int(g) for g in m.groups())
    return _checked(z, x, y, text)


def format_tile(tile: mercantile.Tile) -> str:
    """Format a tile as ``Z_X_Y``, the inverse of :func:`parse_tile`.

    Examples
    --------
    >>> format_tile(Tile(x=3, y=1, z=2))
    '2_3_1'
    """
    return f"{tile.z}_{tile.x}_{tile.y}"


def tile_of(lat: float, lon: float, zoom: int) -> mercantile.Tile:
    """Return the tile at ``zoom`` that holds a point.

    Examples
    --------
    >>> tile_of(0.0, 0.0, 1)
    Tile(x=1, y=1, z=1)
    """
    if not 0 <= zoom <= MAX_ZOOM:
        raise InvalidTileError(f"zoom {zoom} outside 0..{MAX_ZOOM}")
    return mercantile.tile(lon, lat, zoom)


def tile_bounds(tile: mercantile.Tile | str) -> Bounds:
    """Return a tile's (west, south, east, north) edges in degrees.

    Examples
    --------
    >>> tile_bounds("1_0_0")
    Bounds(west=-180.0, south=0.0, east=0.0, north=85.0511287798066)
    """
    t = parse_tile(tile) if isinstance(tile, str) else _checked(tile.z, tile.x, tile.y, tile)
    b = mercantile.bounds(t)
    return Bounds(b.west, b.south, b.east, b.north)


def tile_center(tile: mercantile.Tile | str) -> LatLon:
    """Return a tile's centre (in mercator space) as latitude and longitude.

    Examples
    --------
    >>> tile_center("0_0_0")
    LatLon(lat=0.0, lon=0.0)
    >>> c = tile_center("1_0_0")  # the north-west quarter; its corner is (85.05, -180)
    >>> round(c.lat, 4), c.lon
    (66.5133, -90.0)
    """
    t = parse_tile(tile) if isinstance(tile, str) else _checked(tile.z, tile.x, tile.y, tile)
    lat, lon = tile_centers(t.z, t.x, t.y)
    return LatLon(float(lat), float(lon))


def tile_centers(z: ArrayLike, x: ArrayLike, y: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """Vectorised tile centres: arrays of zoom, x and y to arrays of (lat, lon) in degrees.

    No validation is done here; use :func:`parse_tile` on untrusted strings.

    Examples
    --------
    >>> lat, lon = tile_centers([0, 1], [0, 1], [0, 1])
    >>> lat.round(4).tolist(), lon.tolist()
    ([0.0, -66.5133], [0.0, 90.0])
    """
    n = np.exp2(np.asarray(z, dtype=np.float64))
    xf = (np.asarray(x, dtype=np.float64) + 0.5) / n
    yf = (np.asarray(y, dtype=np.float64) + 0.5) / n
    lon = xf * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * yf))))
    return lat, lon


def ground_sample_distance_m(lat: ArrayLike, zoom: ArrayLike, tile_size: int = 256) -> Float64Array:
    """Ground size of one pixel in metres at latitude ``lat`` for tiles of ``tile_size`` px.

    ``2 * pi * 6378137 * cos(lat) / (tile_size * 2**zoom)``: the web-mercator scale, which
    shrinks with the cosine of the latitude.

    Examples
    --------
    >>> round(float(ground_sample_distance_m(0.0, 0)), 2)  # the whole equator over 256 px
    156543.03
    >>> round(float(ground_sample_distance_m(60.0, 15)), 3)
    2.389
    """
    lat_r = np.radians(np.asarray(lat, dtype=np.float64))
    circumference = 2.0 * np.pi * WGS84_A_M
    return np.asarray(
        circumference * np.cos(lat_r) / (tile_size * np.exp2(np.asarray(zoom, dtype=np.float64)))
    )
