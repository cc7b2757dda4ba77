from __future__ import annotations

import numpy as np
import pytest

from geoaware.priors.config import PriorConfig
from geoaware.priors.errors import PriorConfigError
from geoaware.priors.sampling import balanced_indices, uniform_sphere


def test_uniform_sphere_latitude_follows_cos() -> None:
    lat, lon = uniform_sphere(400_000, np.random.default_rng(1))
    assert lat.min() >= -90 and lat.max() <= 90 and lon.min() >= -180 and lon.max() <= 180
    edges = np.linspace(-90, 90, 19)  # 10-degree bands
    counts, _ = np.histogram(lat, edges)
    expected = np.diff(np.sin(np.radians(edges))) / 2 * lat.size  # integral of cos(lat) / 2
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 5)
    # no excess mass at the poles: the top band holds ~0.76 %, a uniform-latitude draw 5.6 %
    polar = np.mean(np.abs(lat) > 80)
    assert polar == pytest.approx(1 - np.sin(np.radians(80)), abs=0.002)
    counts_lon, _ = np.histogram(lon, np.linspace(-180, 180, 13))
    assert counts_lon.min() > 0.95 * lat.size / 12


def test_uniform_sphere_seeded() -> None:
    a = uniform_sphere(5, np.random.default_rng(3))
    b = uniform_sphere(5, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_balanced_indices_caps_each_class() -> None:
    labels = np.array([0] * 50 + [1] * 3 + [2] * 10)
    rng = np.random.default_rng(0)
    idx = balanced_indices(labels, 5, rng)
    assert np.bincount(labels[idx]).tolist() == [5, 3, 5]
    assert len(set(idx.tolist())) == idx.size
    draws = [balanced_indices(labels, 5, rng) for _ in range(5)]
    for d in draws:  # every redraw: 5 distinct rows of a capped class, every row of class 1
        assert np.bincount(labels[d]).tolist() == [5, 3, 5]
        assert len(set(d.tolist())) == d.size
        assert set(d[labels[d] == 1].tolist()) == {50, 51, 52}
    picks = {frozenset(d[labels[d] == 0].tolist()) for d in draws}
    assert len(picks) > 1  # the capped class is redrawn each epoch
    assert balanced_indices(labels, None, rng).size == labels.size


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", 0), ("dropout", 1.0), ("lr_decay", 0.0), ("encoding", "polar"), ("epochs", 1.5)],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(PriorConfigError, match=field):
        PriorConfig(**{field: value})  # type: ignore[arg-type]  # deliberately bad values


def test_config_round_trip() -> None:
    cfg = PriorConfig(width=64, use_date=True, loss="slds_me", max_per_class=None)
    assert PriorConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.input_dim == 6
    with pytest.raises(PriorConfigError, match="unknown configuration keys: colour"):
        PriorConfig.from_dict({"colour": 1})
