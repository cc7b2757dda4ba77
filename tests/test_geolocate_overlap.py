from __future__ import annotations

import numpy as np
import pytest

from geoaware.errors import InvalidCoordinateError
from geoaware.geo import haversine_km
from geoaware.geo.distance import chord_of_km, km_of_chord
from geoaware.geolocate.overlap import exclude_within, overlap_report

KM_PER_DEG = np.pi * 6371.0 / 180  # along a meridian


def test_counts_hand_made_cases() -> None:
    d = 1 / KM_PER_DEG  # one km of latitude, in degrees
    query_lat = [0.0, 10.0, 20.0, -89.9999, 45.0, 0.0]
    query_lon = [0.0, 0.0, 0.0, 0.0, 179.9999, 100.0]
    ref_lat = [0.5 * d, 10 + 1.5 * d, 20 + 0.99 * d, -89.9999, 45.0]
    ref_lon = [0.0, 0.0, 0.0, 120.0, -179.9999]  # pole: 0.011 km apart; antimeridian: 0.016 km
    r = overlap_report(query_lat, query_lon, ref_lat, ref_lon, km=1.0)
    assert r.mask.tolist() == [True, False, True, True, True, False]
    assert (r.within, r.n_query, r.n_reference) == (4, 6, 5)
    assert r.fraction == pytest.approx(4 / 6)
    assert r.nearest.tolist()[:5] == [0, 1, 2, 3, 4]
    expect = haversine_km(
        query_lat,
        query_lon,
        np.asarray([*ref_lat, 0.0])[r.nearest],
        np.asarray([*ref_lon, 0.0])[r.nearest],
    )
    np.testing.assert_allclose(r.nearest_km[:5], expect[:5], rtol=1e-6, atol=1e-6)
    assert r.to_dict()["within"] == 4
    # a larger radius catches the 1.5 km one, not the far one
    assert overlap_report(query_lat, query_lon, ref_lat, ref_lon, km=2.0).within == 5


def test_duplicates_and_empty_reference() -> None:
    r = overlap_report([1.0, 1.0], [2.0, 2.0], [1.0], [2.0], km=0.0)
    assert r.within == 2 and r.nearest_km.tolist() == [0.0, 0.0]
    empty = overlap_report([1.0], [2.0], [], [], km=1.0)
    assert empty.within == 0 and np.isinf(empty.nearest_km[0]) and empty.nearest[0] == -1
    assert overlap_report([], [], [1.0], [2.0]).fraction == 0.0


def test_exclude_within_drops_reference_points_near_queries() -> None:
    d = 1 / KM_PER_DEG
    ref_lat = np.array([0.0, 0.9 * d, 1.1 * d, 30.0, 50.0])
    ref_lon = np.array([0.0, 0.0, 0.0, 179.99999, 10.0])
    keep = exclude_within(ref_lat, ref_lon, [0.0, 30.0], [0.0, -179.99999], km=1.0)
    assert keep.tolist() == [False, False, True, False, True]
    assert exclude_within(ref_lat, ref_lon, [], [], km=1.0).all()


def test_chord_round_trip_and_errors() -> None:
    km = np.array([0.0, 0.001, 1.0, 1000.0, 20_000.0])
    np.testing.assert_allclose(km_of_chord(chord_of_km(km)), km, rtol=1e-9, atol=1e-9)
    with pytest.raises(InvalidCoordinateError):
        overlap_report([91.0], [0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="NaN"):
        overlap_report([np.nan], [0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="non-negative"):
        exclude_within([0.0], [0.0], [0.0], [0.0], km=-1)
