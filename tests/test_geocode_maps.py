from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geoaware.errors import InvalidCoordinateError
from geoaware.geo.geocode import CONTINENTS, continent_of_country, continents, countries, is_land
from geoaware.geo.maps import land_grid, world_map

CITIES = {
    # name: (lat, lon, country, continent)
    "Paris": (48.8566, 2.3522, "FR", "Europe"),
    "London": (51.5074, -0.1278, "GB", "Europe"),
    "Athens": (37.9838, 23.7275, "GR", "Europe"),
    "Windhoek": (-22.5609, 17.0658, "NA", "Africa"),
    "Nairobi": (-1.2921, 36.8219, "KE", "Africa"),
    "Tokyo": (35.6762, 139.6503, "JP", "Asia"),
    "Sydney": (-33.8688, 151.2093, "AU", "Oceania"),
    "Suva": (-18.1248, 178.4501, "FJ", "Oceania"),
    "Quito": (-0.1807, -78.4678, "EC", "South America"),
    "Anchorage": (61.2181, -149.9003, "US", "North America"),
    "Taveuni (antimeridian)": (-16.80, 179.99, "FJ", "Oceania"),
    "Chukotka (antimeridian)": (65.0, -179.5, "RU", "Europe"),
}


def test_countries_and_continents_of_known_places() -> None:
    lat = np.array([v[0] for v in CITIES.values()])
    lon = np.array([v[1] for v in CITIES.values()])
    assert countries(lat, lon).tolist() == [v[2] for v in CITIES.values()]
    assert continents(lat, lon).tolist() == [v[3] for v in CITIES.values()]


def test_nan_points_are_unknown_and_bad_points_raise() -> None:
    assert countries([np.nan, 48.85], [0.0, 2.35]).tolist() == ["", "FR"]
    assert continents([np.nan], [np.nan]).tolist() == [""]
    with pytest.raises(InvalidCoordinateError):
        countries([0.0], [181.0])


def test_every_continent_name_is_known() -> None:
    mapped = set(continent_of_country(["FR", "NG", "AQ", "CN", "MX", "NZ", "AR"]).tolist())
    assert mapped == set(CONTINENTS)


def test_is_land_and_the_map_background_agree() -> None:
    lat = np.array([48.8566, 0.0, -33.87, 30.0, np.nan])
    lon = np.array([2.3522, -30.0, 151.0, -40.0, 0.0])
    assert is_land(lat, lon).tolist() == [True, False, True, False, False]
    grid = land_grid()
    assert grid.shape == (720, 1440)
    # About 29 % of the Earth's surface is land; on a plate-carree grid (Antarctica stretched)
    # the fraction of cells is higher.
    assert 0.28 < grid.mean() < 0.36


def test_world_map_png(tmp_path: Path, shared_data: Path) -> None:
    lat = np.array([48.85, -33.87, np.nan, 40.7])
    lon = np.array([2.35, 151.21, 0.0, -74.0])
    png = world_map(lat, lon, tmp_path / "sub" / "map.png", title="t", color=[1.0, 2.0, 3.0, 4.0])
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.width > 1000 and im.height > 500
        pixels = np.asarray(im.convert("RGB"))
    # Some pixels are the land colour and some the water colour.
    assert (np.abs(pixels.astype(int) - [200, 200, 192]).sum(axis=2) < 10).mean() > 0.05
    assert (np.abs(pixels.astype(int) - [219, 233, 244]).sum(axis=2) < 10).mean() > 0.1
    assert not list(png.parent.glob(".*part"))


def test_world_map_samples_large_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    png = world_map(
        rng.uniform(-60, 60, 5000),
        rng.uniform(-180, 180, 5000),
        tmp_path / "m.png",
        max_points=1000,
    )
    assert png.stat().st_size > 10_000


def test_country_grid_gives_exactly_the_exact_search(shared_data: Path) -> None:
    from geoaware.geo.geocode import _nearest_places, _places

    rng = np.random.default_rng(7)
    gallery = np.loadtxt(
        shared_data / "geoclip_gallery/coordinates_100K.csv", delimiter=",", skiprows=1
    )
    pick = gallery[rng.integers(0, len(gallery), 20_000)]
    lat = np.concatenate(
        [
            np.clip(pick[:, 0] + rng.normal(0, 0.2, 20_000), -90, 90),
            np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000))),
            [90.0, -90.0, 0.0],
        ]
    )
    lon = np.concatenate(
        [
            (pick[:, 1] + rng.normal(0, 0.2, 20_000) + 180) % 360 - 180,
            rng.uniform(-180, 180, 20_000),
            [180.0, -180.0, 179.99],
        ]
    )
    _, codes = _places()
    exact = codes[_nearest_places(lat, lon, "exact")]
    grid = codes[_nearest_places(lat, lon, "grid", step=1.0)]
    np.testing.assert_array_equal(grid, exact)
    from geoaware.geo.geocode import _place_regions

    _, _, continent_idx, _ = _place_regions()
    exact_idx = _nearest_places(lat, lon, "exact")
    grid_idx = _nearest_places(lat, lon, "grid", step=1.0, level="continent")
    np.testing.assert_array_equal(continent_idx[grid_idx], continent_idx[exact_idx])
    with pytest.raises(ValueError, match="method"):
        countries([0.0], [0.0], method="fast")
