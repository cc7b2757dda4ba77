from __future__ import annotations

import math

import mercantile
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from geoaware.errors import InvalidTileError
from geoaware.geo import (
    Tile,
    format_tile,
    ground_sample_distance_m,
    haversine_km,
    parse_tile,
    tile_bounds,
    tile_center,
    tile_centers,
    tile_of,
)


@st.composite
def tiles(draw: st.DrawFn) -> Tile:
    z = draw(st.integers(0, 24))
    n = 1 << z
    return Tile(draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)), z)


@given(tiles())
@example(Tile(0, 0, 0))
def test_format_parse_round_trip(t: Tile) -> None:
    assert parse_tile(format_tile(t)) == t


@given(tiles())
def test_center_lies_inside_bounds_and_maps_back_to_tile(t: Tile) -> None:
    b = tile_bounds(t)
    c = tile_center(t)
    assert b.west < c.lon < b.east
    assert b.south < c.lat < b.north
    assert tile_of(c.lat, c.lon, t.z) == t


@given(tiles())
def test_center_is_mercator_midpoint_not_corner(t: Tile) -> None:
    # The centre is half a tile from each edge in mercator metres, not the NW corner.
    c = tile_center(t)
    b = tile_bounds(t)
    x, y = mercantile.xy(c.lon, c.lat)
    west, north = mercantile.xy(b.west, b.north)
    east, south = mercantile.xy(b.east, b.south)
    assert x == pytest.approx((west + east) / 2, rel=1e-9, abs=1e-6)
    assert y == pytest.approx((south + north) / 2, rel=1e-9, abs=1e-6)


def test_centre_versus_corner_offset_at_git10m_zoom() -> None:
    t = parse_tile("17_70185_42906")  # a zoom-17 tile (Git-10M uses such Z_X_Y names)
    corner = mercantile.ul(t)
    c = tile_center(t)
    offset = float(haversine_km(c.lat, c.lon, corner.lat, corner.lng)) * 1000
    gsd = float(ground_sample_distance_m(c.lat, t.z))
    # Half the tile's diagonal: 256 px * gsd / sqrt(2).
    assert offset == pytest.approx(256 * gsd / math.sqrt(2), rel=0.01)


def test_known_values() -> None:
    assert tile_center("0_0_0") == (0.0, 0.0)
    assert tile_bounds("1_1_1") == pytest.approx((0.0, -85.0511287798066, 180.0, 0.0))
    lat, lon = tile_centers([1, 1], [0, 1], [0, 1])
    np.testing.assert_allclose(lat, [66.51326044311186, -66.51326044311186])
    np.testing.assert_allclose(lon, [-90.0, 90.0])


def test_ground_sample_distance() -> None:
    assert float(ground_sample_distance_m(0.0, 0)) == pytest.approx(156543.03392804097)
    assert float(ground_sample_distance_m(0.0, 1, tile_size=512)) == pytest.approx(
        156543.03392804097 / 4
    )
    assert float(ground_sample_distance_m(60.0, 10)) == pytest.approx(156543.03392804097 / 1024 / 2)
    np.testing.assert_allclose(
        ground_sample_distance_m([0.0, 60.0], [0, 0]), [156543.034, 78271.517], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2_4_1", "x=4 outside 0..3 at zoom 2"),
        ("2_1_4", "y=4 outside 0..3 at zoom 2"),
        ("31_0_0", "zoom 31 outside 0..30"),
        ("1_-1_0", "three non-negative integers"),
        ("15_10", "three non-negative integers"),
        ("a_b_c", "three non-negative integers"),
        ("", "three non-negative integers"),
        ("1.5_0_0", "three non-negative integers"),
    ],
)
def test_bad_tile_strings(text: str, message: str) -> None:
    with pytest.raises(InvalidTileError, match=message):
        parse_tile(text)


def test_slash_form_and_non_string() -> None:
    assert parse_tile("3/2/1") == Tile(2, 1, 3)
    with pytest.raises(InvalidTileError, match="expected a 'Z_X_Y' string"):
        parse_tile(15)  # type: ignore[arg-type]
    with pytest.raises(InvalidTileError, match="zoom"):
        tile_of(0.0, 0.0, 40)
