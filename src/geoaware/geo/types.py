"""Named results for coordinates and boxes, in one fixed order: latitude first."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Bounds", "LatLon"]


class LatLon(NamedTuple):
    """A point in WGS84 degrees.

    Attributes
    ----------
    lat : float
        Latitude in degrees, -90 (south pole) to 90 (north pole).
    lon : float
        Longitude in degrees, -180 to 180.
    """

    lat: float
    lon: float


class Bounds(NamedTuple):
    """A longitude/latitude box in WGS84 degrees, in GeoJSON order.

    Attributes
    ----------
    west, south, east, north : float
        The box's edges in degrees.
    """

    west: float
    south: float
    east: float
    north: float
