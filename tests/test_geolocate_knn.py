from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("faiss")

from geoaware.geo import haversine_km
from geoaware.geolocate.knn import KnnConfig, KnnGeolocator, kernel_mode
from geoaware.geolocate.model import load_geolocator, save_geolocator

CITIES = np.array(
    [[48.85, 2.35], [40.71, -74.0], [-33.87, 151.21], [35.68, 139.69], [-1.29, 36.82],
     [64.15, -21.94], [-17.7, 179.95], [19.43, -99.13]]
)  # fmt: skip


def clustered(
    n_per: int, dim: int = 16, noise: float = 0.15, seed: int = 0, jitter_deg: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gallery points around the cities; embedding = the city's centre + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CITIES), dim))
    city = np.repeat(np.arange(len(CITIES)), n_per)
    x = centres[city] + noise * rng.normal(size=(len(city), dim))
    lat = CITIES[city, 0] + jitter_deg * rng.normal(size=len(city))
    lon = (CITIES[city, 1] + jitter_deg * rng.normal(size=len(city)) + 180) % 360 - 180
    return x.astype(np.float32), lat, lon, city, centres


def test_query_lands_near_its_cluster() -> None:
    x, lat, lon, _, centres = clustered(40)
    model = KnnGeolocator.fit(x, lat, lon, k=10)
    rng = np.random.default_rng(1)
    q = centres + 0.15 * rng.normal(size=centres.shape)
    p = model.predict(q, k=3)
    err = haversine_km(CITIES[:, 0], CITIES[:, 1], p.lat, p.lon)
    assert (err < 30).all(), err
    assert p.cand_lat.shape == (len(CITIES), 3)
    assert np.all(np.diff(p.cand_score, axis=1) <= 1e-12)  # best first


def test_nn_mode_returns_the_nearest_neighbour() -> None:
    x, lat, lon, _, _ = clustered(10)
    model = KnnGeolocator.fit(x, lat, lon, k=1)
    assert model.config.vote == "nn"
    p = model.predict(x[[5, 37]], k=2)
    assert p.lat.tolist() == lat[[5, 37]].tolist() and p.lon.tolist() == lon[[5, 37]].tolist()
    np.testing.assert_allclose(p.cand_score[:, 0], 1.0, atol=1e-5)


def test_kernel_mode_across_the_antimeridian() -> None:
    # Three neighbours just east and west of 180 degrees, one (the single most similar) at 0.
    lat = np.array([[10.0, 10.01, 9.99, 10.0]])
    lon = np.array([[179.9, -179.9, -179.95, 0.0]])
    w = np.array([[1.0, 1.0, 1.0, 1.5]])
    density, best = kernel_mode(lat, lon, w, bandwidth_km=50.0)
    assert abs(lon[0, best[0]]) > 179  # the arithmetic mean of these longitudes is ~0
    assert density[0, 3] < density[0, 0]
    # through the model: the mean of coordinates would say longitude ~0 (far from all)
    x = np.array([[1, 0, 0], [0.98, 0.2, 0], [0.98, -0.2, 0], [0.97, 0, 0.24]], np.float32)
    model = KnnGeolocator.fit(x, lat[0], lon[0], k=4, temperature=1.0, bandwidth_km=50)
    p = model.predict(np.array([[1.0, 0.0, 0.05]]), k=2)
    assert abs(p.lon[0]) > 179.8
    assert haversine_km(p.lat[0], p.lon[0], 10.0, 180.0) < 20


def test_candidates_are_distinct_places() -> None:
    x, lat, lon, _, centres = clustered(30)
    model = KnnGeolocator.fit(x, lat, lon, k=60, temperature=100.0, bandwidth_km=100)
    p = model.predict(centres[:2], k=3)
    d01 = haversine_km(p.cand_lat[:, 0], p.cand_lon[:, 0], p.cand_lat[:, 1], p.cand_lon[:, 1])
    assert (d01 > 100).all()  # the second candidate is another city, not the same one again


def test_gallery_smaller_than_k() -> None:
    model = KnnGeolocator.fit(np.eye(3), [0.0, 1.0, 2.0], [0.0, 0.0, 0.0], k=10)
    p = model.predict(np.eye(3), k=5)
    assert p.cand_lat.shape == (3, 5)
    assert np.isnan(p.cand_score[:, 3:]).all() and np.isfinite(p.lat).all()
    assert np.isnan(p.cand_lat[:, 3:]).all() and np.isfinite(p.cand_lat[:, :3]).all()


def test_ivfpq_above_threshold_recall_against_exact() -> None:
    x, lat, lon, _, _ = clustered(1000, dim=32, noise=0.6, seed=3)  # 8,000 vectors
    exact = KnnGeolocator.fit(x, lat, lon, k=1)
    approx = KnnGeolocator.fit(x, lat, lon, k=1, ivf_threshold=5000, nprobe=16, refine=8)
    assert exact.index_kind == "flat" and approx.index_kind == "ivfpq"
    rng = np.random.default_rng(5)
    q = x[rng.choice(len(x), 300, replace=False)] + 0.3 * rng.normal(size=(300, 32))
    _, i_exact = exact.search(q, 1)
    _, i_approx = approx.search(q, 1)
    recall = float(np.mean(i_exact[:, 0] == i_approx[:, 0]))
    assert recall >= 0.95, recall
    plain = KnnGeolocator.fit(x, lat, lon, k=1, index="ivfpq", refine=0, nprobe=64)
    _, i_plain = plain.search(q, 1)
    assert float(np.mean(i_exact[:, 0] == i_plain[:, 0])) > 0.5


def test_without_skips_excluded_points() -> None:
    x, lat, lon, _, _ = clustered(5)
    model = KnnGeolocator.fit(x, lat, lon, k=1)
    keep = np.ones(len(x), bool)
    keep[7] = False
    smaller = model.without(keep)
    assert smaller.predict(x[[7]]).lat[0] != lat[7]
    assert len(smaller.reference_locations()["training"][0]) == len(x) - 1
    assert model.predict(x[[7]]).lat[0] == lat[7]  # the original is untouched


@pytest.mark.parametrize("options", [{"k": 5}, {"k": 3, "index": "ivfpq", "nprobe": 4}])
def test_save_load_round_trip(tmp_path: Path, options: dict[str, Any]) -> None:
    x, lat, lon, _, centres = clustered(100, dim=16)
    model = KnnGeolocator.fit(x, lat, lon, ids=[f"i{j}" for j in range(len(x))], **options)
    folder = save_geolocator(model, tmp_path / "m")
    again = load_geolocator(folder)
    assert isinstance(again, KnnGeolocator) and again.config == model.config
    q = centres + 0.2
    a, b = model.predict(q, k=4), again.predict(q, k=4)
    for f in ("lat", "lon", "cand_lat", "cand_lon", "cand_score"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert again.ids[3] == "i3"
    # exclusion survives the round trip too
    keep = np.ones(len(x), bool)
    keep[:50] = False
    save_geolocator(model.without(keep), tmp_path / "m2")
    assert len(load_geolocator(tmp_path / "m2").reference_locations()["training"][0]) == len(x) - 50


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="option 'epochs' does not apply to method 'knn'"):
        KnnConfig.from_options({"epochs": 3})
    with pytest.raises(ValueError, match="bandwidth_km"):
        KnnConfig(bandwidth_km=0)
    with pytest.raises(ValueError, match="does not divide"):
        KnnGeolocator.fit(np.ones((50, 10)), np.zeros(50), np.zeros(50), index="ivfpq", m=3)
    with pytest.raises(ValueError, match="NaN"):
        KnnGeolocator.fit(np.ones((2, 3)), [0.0, np.nan], [0.0, 0.0])


def test_candidate_scores_are_vote_shares_on_one_scale() -> None:
    x, lat, lon, _, centres = clustered(20)
    model = KnnGeolocator.fit(x, lat, lon, k=3, merge_km=0.0)
    p = model.predict(centres, k=8)  # five candidates past the three voters
    s = p.cand_score
    assert ((s >= 0) & (s <= 1 + 1e-9)).all(), s
    assert (s[:, :3] > 0).all() and (s[:, 3:] == 0).all()
    assert np.all(np.diff(s, axis=1) <= 1e-12)  # best first
