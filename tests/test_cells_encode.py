from __future__ import annotations

from pathlib import Path

import h3
import numpy as np
import pytest
import s2sphere

from geoaware.errors import InvalidCoordinateError
from geoaware.geo import (
    date_encode,
    h3_cells,
    haversine_km,
    s2_cell_center,
    s2_cells,
    s2_level,
    unit_vector,
    wrap_encode,
    year_fraction,
)


def test_h3_cells_contain_their_points() -> None:
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-80, 80, 50), rng.uniform(-180, 180, 50)
    cells = h3_cells(lat, lon, 7)
    for a, b, c in zip(lat, lon, cells, strict=True):
        assert h3.get_resolution(c) == 7
        ca, cb = h3.cell_to_latlng(c)
        # An H3 res-7 cell has an edge of ~1.4 km: the point is within that of its centre.
        assert float(haversine_km(a, b, ca, cb)) < 1.6


def test_cells_nan_and_bad_resolution() -> None:
    assert h3_cells([np.nan], [0.0], 5).tolist() == [None]
    assert s2_cells([np.nan], [0.0], 5).tolist() == [None]
    with pytest.raises(ValueError, match="0..15"):
        h3_cells([0.0], [0.0], 16)
    with pytest.raises(ValueError, match="0..30"):
        s2_cells([0.0], [0.0], 31)
    with pytest.raises(InvalidCoordinateError):
        s2_cells([100.0], [0.0], 5)


def test_s2_cells_levels_and_centres(shared_data: Path) -> None:
    # The MP-16 partition lists S2 tokens with the mean location of their images.
    rows = (shared_data / "im2gps/geo-cells/cells_50_5000.csv").read_text().splitlines()[3:]
    assert len(rows) == 3298
    for row in rows[::10]:
        _, token, _, mlat, mlon = row.split(",")
        level = s2_level(token)
        # A cell is convex, so the mean location of its images lies inside it.
        assert s2_cells([float(mlat)], [float(mlon)], level)[0] == token
        centre = s2_cell_center(token)
        assert s2_cells([centre.lat], [centre.lon], level)[0] == token


def test_s2_parent_matches_library() -> None:
    cell = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(-33.86, 151.21))
    assert s2_cells([-33.86], [151.21], 12)[0] == cell.parent(12).to_token()


def test_bad_s2_token() -> None:
    with pytest.raises(InvalidCoordinateError, match="not"):
        s2_level("zz")


def test_wrap_encode_meets_at_antimeridian_and_poles() -> None:
    a = wrap_encode([10.0, 10.0], [180.0, -180.0])
    np.testing.assert_allclose(a[0], a[1], atol=1e-12)
    np.testing.assert_allclose(wrap_encode([0.0], [90.0]), [[1.0, 0.0, 0.0, 1.0]], atol=1e-12)
    assert wrap_encode([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]).shape == (3, 4)
    with pytest.raises(InvalidCoordinateError):
        wrap_encode([91.0], [0.0])


def test_unit_vector_norm_and_axes() -> None:
    rng = np.random.default_rng(2)
    v = unit_vector(rng.uniform(-90, 90, 100), rng.uniform(-180, 180, 100))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    np.testing.assert_allclose(unit_vector([0.0], [90.0]), [[0.0, 1.0, 0.0]], atol=1e-12)


def test_year_fraction_uses_the_photos_own_year() -> None:
    d = np.array(["2019-03-01", "2020-03-01", "2020-12-31T12:00", "NaT"], dtype="datetime64[s]")
    f = year_fraction(d)
    assert f[0] == pytest.approx(59 / 365)
    assert f[1] == pytest.approx(60 / 366)  # leap year
    assert f[2] == pytest.approx(365.5 / 366)
    assert np.isnan(f[3])


def test_date_encode_wraps_new_year() -> None:
    e = date_encode(np.array(["2021-12-31T23:59:59", "2022-01-01"], dtype="datetime64[s]"))
    np.testing.assert_allclose(e[0], e[1], atol=1e-4)
    assert np.isnan(date_encode(np.array(["NaT"], dtype="datetime64[s]"))).all()
