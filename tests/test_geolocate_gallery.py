from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from geoaware.geo import haversine_km, unit_vector
from geoaware.geolocate.gallery import GalleryConfig, GalleryGeolocator
from geoaware.geolocate.model import load_geolocator, save_geolocator

SMALL = dict(rff_dim=64, hidden=64, embed_dim=32, image_hidden=64, batch_size=256, lr=3e-3)


def synthetic(n: int, seed: int = 0, dim: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Places around 25 centres; an image vector is a fixed smooth nonlinear map of its place."""
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(123)  # the same map and centres for train and test
    c_lat = np.degrees(np.arcsin(world.uniform(-0.8, 0.9, 25)))
    c_lon = world.uniform(-180, 180, 25)
    w = world.normal(size=(3, 64)) * 3.0
    proj = world.normal(size=(128, dim)) / np.sqrt(128)
    c = rng.integers(0, 25, n)
    lat = np.clip(c_lat[c] + rng.normal(0, 1.0, n), -89, 89)
    lon = (c_lon[c] + rng.normal(0, 1.0, n) + 180) % 360 - 180
    z = unit_vector(lat, lon) @ w
    x = np.tanh(np.concatenate([np.cos(z), np.sin(z)], axis=1) @ proj)
    x += 0.05 * rng.normal(size=x.shape)
    return x.astype(np.float32), lat, lon


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks: one torch thread is faster than two on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained() -> tuple[GalleryGeolocator, float]:
    x, lat, lon = synthetic(2000)
    t = time.perf_counter()
    model = GalleryGeolocator.fit(x, lat, lon, epochs=25, **SMALL)
    return model, time.perf_counter() - t


def test_learns_the_mapping_far_better_than_random(
    trained: tuple[GalleryGeolocator, float],
) -> None:
    model, _ = trained
    x, lat, lon = synthetic(400, seed=1)
    p = model.predict(x, k=5)
    err = haversine_km(lat, lon, p.lat, p.lon)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(model.gallery_lat), len(lat))
    random_err = haversine_km(lat, lon, model.gallery_lat[pick], model.gallery_lon[pick])
    assert np.median(err) < 0.1 * np.median(random_err), (np.median(err), np.median(random_err))
    assert np.mean(err < 750) > 0.8
    assert model.training["losses"][-1] < model.training["losses"][0]
    assert p.cand_lat.shape == (400, 5) and np.all(np.diff(p.cand_score, axis=1) <= 0)


def test_save_load_identical(trained: tuple[GalleryGeolocator, float], tmp_path: Path) -> None:
    model, _ = trained
    x, _, _ = synthetic(50, seed=2)
    again = load_geolocator(save_geolocator(model, tmp_path / "g"))
    assert isinstance(again, GalleryGeolocator) and again.config == model.config
    a, b = model.predict(x, k=3), again.predict(x, k=3)
    for f in ("lat", "lon", "cand_lat", "cand_lon", "cand_score"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_external_gallery_and_without(trained: tuple[GalleryGeolocator, float]) -> None:
    model, _ = trained
    x, _lat, _lon = synthetic(20, seed=3)
    keep = np.ones(len(model.gallery_lat), bool)
    first = model.predict(x[:1]).lat[0]
    keep[(model.gallery_lat == first)] = False
    smaller = model.without(keep)
    assert smaller.predict(x[:1]).lat[0] != first
    assert len(smaller.reference_locations()["gallery"][0]) == keep.sum()
    assert model.predict(x[:1]).lat[0] == first


def test_fit_with_given_gallery_is_seeded() -> None:
    x, lat, lon = synthetic(200, seed=4)
    g_lat, g_lon = np.array([0.0, 10.0, 20.0]), np.array([0.0, 5.0, -5.0])
    opts = dict(SMALL, epochs=2)
    a = GalleryGeolocator.fit(x, lat, lon, gallery_lat=g_lat, gallery_lon=g_lon, **opts)
    b = GalleryGeolocator.fit(x, lat, lon, gallery_lat=g_lat, gallery_lon=g_lon, **opts)
    assert a.training["losses"] == b.training["losses"]
    assert set(a.predict(x[:10], k=3).cand_lat.ravel()) <= set(g_lat)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="option 'k' does not apply to method 'gallery'"):
        GalleryConfig.from_options({"k": 3})
    with pytest.raises(ValueError, match="rff_dim"):
        GalleryConfig(rff_dim=3)
