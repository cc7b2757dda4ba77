"""The ground floor: distances, tiles, cells, encodings, reverse geocoding and maps.

Everything in geoaware may use this package; it uses nothing of geoaware's but the shared
errors, type aliases and file helpers. All functions take latitude before longitude, in WGS84
degrees. The cell grids' id arithmetic (vectorised S2 ids, the adaptive quadtree) is imported
from :mod:`geoaware.geo.cells`.
Reverse geocoding (:mod:`geoaware.geo.geocode`) and maps (:mod:`geoaware.geo.maps`) load
their data on first use; import them from their modules.
"""

from geoaware.geo.cells import h3_cells, s2_cell_center, s2_cells, s2_level
from geoaware.geo.distance import (
    EARTH_RADIUS_KM,
    WGS84_A_M,
    check_coordinates,
    geodesic_km,
    great_circle_km,
    haversine_km,
)
from geoaware.geo.encode import date_encode, unit_vector, wrap_encode, year_fraction
from geoaware.geo.tiles import (
    Tile,
    format_tile,
    ground_sample_distance_m,
    parse_tile,
    tile_bounds,
    tile_center,
    tile_centers,
    tile_of,
)
from geoaware.geo.types import Bounds, LatLon

__all__ = [
    "EARTH_RADIUS_KM",
    "WGS84_A_M",
    "Bounds",
    "LatLon",
    "Tile",
    "check_coordinates",
    "date_encode",
    "format_tile",
    "geodesic_km",
    "great_circle_km",
    "ground_sample_distance_m",
    "h3_cells",
    "haversine_km",
    "parse_tile",
    "s2_cell_center",
    "s2_cells",
    "s2_level",
    "tile_bounds",
    "tile_center",
    "tile_centers",
    "tile_of",
    "unit_vector",
    "wrap_encode",
    "year_fraction",
]
