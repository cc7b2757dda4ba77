"""The ground floor: distances, tiles, cells, encodings, reverse geocoding and maps.

Everything in geoaware may use this package; it uses nothing of geoaware's but the shared
errors, type aliases and file helpers. All functions take latitude before longitude, in WGS84
degrees.
Reverse geocoding (:mod:`geoaware.geo.geocode`) and maps (:mod:`geoaware.geo.maps`) load
their data on first use; import them from their modules.
"""

from geoaware.geo.cells import (
    h3_cells,
    quadtree_keys,
    quadtree_levels,
    quadtree_names,
    s2_cell_center,
    s2_cells,
    s2_id_levels,
    s2_id_ranges,
    s2_id_token,
    s2_leaf_ids,
    s2_level,
    s2_parent_ids,
    s2_token_id,
)
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
    "tile_bounds",
    "tile_center",
    "tile_centers",
    "tile_of",
    "unit_vector",
    "wrap_encode",
    "year_fraction",
]
