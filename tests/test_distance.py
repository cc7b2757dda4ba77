from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from geopy.distance import geodesic as geopy_geodesic
from geopy.distance import great_circle as geopy_great_circle
from hypothesis import given, settings
from hypothesis import strategies as st

from geoaware.errors import InvalidCoordinateError
from geoaware.geo import EARTH_RADIUS_KM, geodesic_km, great_circle_km, haversine_km

R = EARTH_RADIUS_KM
lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


@pytest.mark.parametrize(
    ("a", "b", "expected_km"),
    [
        ((0.0, 0.0), (0.0, 1.0), 2 * math.pi * R / 360),  # one degree of the equator
        ((0.0, 0.0), (90.0, 0.0), math.pi * R / 2),  # equator to pole
        ((90.0, 0.0), (-90.0, 0.0), math.pi * R),  # pole to pole
        ((90.0, 10.0), (90.0, -170.0), 0.0),  # the pole is one point whatever the longitude
        ((0.0, 179.5), (0.0, -179.5), 2 * math.pi * R / 360),  # across the antimeridian
        ((0.0, -180.0), (0.0, 180.0), 0.0),  # the same meridian
    ],
)
def test_haversine_exact_geometry(
    a: tuple[float, float], b: tuple[float, float], expected_km: float
) -> None:
    assert float(haversine_km(*a, *b)) == pytest.approx(expected_km, abs=1e-6)


def test_haversine_antipodes_within_float64_rounding() -> None:
    # asin(sqrt(a)) at a = 1 - 1ulp is 0.2 m short of pi*R: the formula's known limit.
    assert float(haversine_km(10.0, 20.0, -10.0, -160.0)) == pytest.approx(math.pi * R, abs=5e-4)


def test_haversine_matches_published_im2gps_distances(shared_data: Path) -> None:
    """The published Im2GPS result file lists each image's great-circle error (km, 2 dp)."""
    with open(shared_data / "im2gps/demo/scene_M_p_im2gps.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = {
        k: np.array([float(r[k]) for r in rows])
        for k in ("gt_lat", "gt_long", "predicted_lat", "predicted_long", "great_circle_distance")
    }
    ours = haversine_km(
        cols["gt_lat"], cols["gt_long"], cols["predicted_lat"], cols["predicted_long"]
    )
    assert len(rows) == 237
    np.testing.assert_allclose(ours, cols["great_circle_distance"], atol=0.0051)
    # The wrong radius is caught: the WGS84 equatorial radius moves errors beyond rounding.
    wrong = haversine_km(
        cols["gt_lat"],
        cols["gt_long"],
        cols["predicted_lat"],
        cols["predicted_long"],
        radius_km=6378.137,
    )
    assert np.abs(wrong - cols["great_circle_distance"]).max() > 1.0


def test_haversine_matches_published_osv5m_distances_and_geoscores(shared_data: Path) -> None:
    with open(shared_data / "osv5m/select.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    f = {
        k: np.array([float(r[k]) for r in rows])
        for k in ("true_lat", "true_lon", "pred_lat", "pred_lon", "distance", "score")
    }
    d = haversine_km(f["true_lat"], f["true_lon"], f["pred_lat"], f["pred_lon"])
    np.testing.assert_allclose(d, f["distance"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(5000 * np.exp(-d / 1492.7), f["score"], rtol=1e-9)


def test_geodesic_matches_geographiclib_published_example() -> None:
    # GeographicLib documentation: Wellington, NZ to Salamanca, Spain on WGS84.
    assert float(geodesic_km(-41.32, 174.81, 40.96, -5.50)) == pytest.approx(
        19959.67926735382, abs=1e-6
    )


def test_geodesic_nearly_antipodal_and_poles() -> None:
    assert float(geodesic_km(0.0, 0.0, 0.5, 179.7)) == pytest.approx(
        geopy_geodesic((0.0, 0.0), (0.5, 179.7)).km, abs=1e-6
    )
    assert float(geodesic_km(90.0, 0.0, -90.0, 0.0)) == pytest.approx(20003.931458623, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(lats, lons, lats, lons)
def test_haversine_agrees_with_geopy_great_circle(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    expected = geopy_great_circle((lat1, lon1), (lat2, lon2), radius=R).km
    assert float(haversine_km(lat1, lon1, lat2, lon2)) == pytest.approx(expected, abs=5e-4)


@settings(max_examples=100, deadline=None)
@given(lats, lons, lats, lons)
def test_geodesic_agrees_with_geopy_geodesic(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    expected = geopy_geodesic((lat1, lon1), (lat2, lon2)).km
    assert float(geodesic_km(lat1, lon1, lat2, lon2)) == pytest.approx(expected, abs=1e-6)


def test_vectorised_shapes_broadcast_and_nan() -> None:
    lat = np.array([[0.0, 10.0], [20.0, np.nan]])
    d = haversine_km(lat, 0.0, 0.0, 0.0)
    assert d.shape == (2, 2)
    assert np.isnan(d[1, 1]) and d[0, 0] == 0.0
    g = geodesic_km(lat, 0.0, 0.0, 0.0)
    assert g.shape == (2, 2) and np.isnan(g[1, 1])
    np.testing.assert_allclose(g[~np.isnan(g)], d[~np.isnan(d)], rtol=0.006)


def test_symmetry_and_triangle_inequality() -> None:
    rng = np.random.default_rng(0)
    la = rng.uniform(-90, 90, (3, 1000))
    lo = rng.uniform(-180, 180, (3, 1000))
    ab = haversine_km(la[0], lo[0], la[1], lo[1])
    ba = haversine_km(la[1], lo[1], la[0], lo[0])
    np.testing.assert_allclose(ab, ba)
    bc = haversine_km(la[1], lo[1], la[2], lo[2])
    ac = haversine_km(la[0], lo[0], la[2], lo[2])
    assert np.all(ac <= ab + bc + 1e-9)
    assert np.all(ab <= math.pi * R + 1e-9)


@pytest.mark.parametrize("fn", [haversine_km, geodesic_km])
def test_out_of_range_is_an_error_naming_the_index(fn: Callable[..., object]) -> None:
    with pytest.raises(
        InvalidCoordinateError, match=r"point 2 longitude out of \[-180, 180\] at index 1: 200.0"
    ):
        fn([0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [10.0, 200.0])
    with pytest.raises(InvalidCoordinateError, match="latitude"):
        fn(-90.5, 0.0, 0.0, 0.0)


def test_great_circle_dispatch() -> None:
    assert float(great_circle_km(0, 0, 0, 1, method="geodesic")) == pytest.approx(
        111.3195, abs=1e-4
    )
    with pytest.raises(ValueError, match="method"):
        great_circle_km(0, 0, 0, 1, method="flat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((89.9999, 0.0), (89.9999, 180.0)),
        ((-89.99, 10.0), (-89.98, -170.0)),
        ((45.0, 1.0), (45.00001, 1.0)),
    ],
)
def test_short_distances_near_poles_to_the_centimetre(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    expected = geopy_great_circle(a, b, radius=R).km
    assert float(haversine_km(*a, *b)) == pytest.approx(expected, abs=1e-5)


def test_parallel_path_equals_single_thread() -> None:
    from geoaware.blocks import PARALLEL_MIN
    from geoaware.geo.distance import _haversine

    rng = np.random.default_rng(5)
    n = PARALLEL_MIN + 12_345
    la1, la2 = rng.uniform(-90, 90, (2, n))
    lo1, lo2 = rng.uniform(-180, 180, (2, n))
    np.testing.assert_array_equal(
        haversine_km(la1, lo1, la2, lo2), _haversine(la1, lo1, la2, lo2, R)
    )


def test_agrees_with_the_textbook_sin_asin_form() -> None:
    """The tangent/arctan kernel equals the textbook formula to a relative 1e-9, far and near."""
    import math

    rng = np.random.default_rng(11)
    n = 50_000
    la1, lo1 = rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)
    scale = np.where(rng.random(n) < 0.5, 1e-3, 40.0)  # half metres-to-km apart, half far
    la2 = np.clip(la1 + rng.normal(0, 1, n) * scale, -90, 90)
    lo2 = (lo1 + rng.normal(0, 1, n) * scale + 180) % 360 - 180

    def textbook(a: float, b: float, c: float, d: float) -> float:
        p1, p2 = math.radians(a), math.radians(c)
        h = math.sin((p2 - p1) / 2) ** 2
        h += math.cos(p1) * math.cos(p2) * math.sin(math.radians(d - b) / 2) ** 2
        return 2 * R * math.asin(math.sqrt(min(1.0, h)))

    expected = np.array([textbook(*r) for r in zip(la1, lo1, la2, lo2, strict=True)])
    got = haversine_km(la1, lo1, la2, lo2)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
