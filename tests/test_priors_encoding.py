from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from geoaware.geo.distance import haversine_km  # noqa: E402
from geoaware.geo.encode import wrap_encode  # noqa: E402
from geoaware.priors.checkpoint import LocationPrior  # noqa: E402
from geoaware.priors.config import PriorConfig  # noqa: E402
from geoaware.priors.data import Observations  # noqa: E402
from geoaware.priors.errors import PriorConfigError  # noqa: E402
from geoaware.priors.evaluate import location_ranks, rank_metrics, same_class_twins  # noqa: E402
from geoaware.priors.features import encode_inputs, multiscale_encode  # noqa: E402
from geoaware.priors.train import _Background, fit_prior, multiscale_torch  # noqa: E402


def test_multiscale_levels_and_periodicity() -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-89, 89, 50), rng.uniform(-180, 180, 50)
    x = multiscale_encode(lat, lon, 6)
    assert x.shape == (50, 24)
    assert np.allclose(x[:, :4], wrap_encode(lat, lon))  # level 0 is the wrap encoding
    k = 5  # level k: frequency 2^k
    assert np.allclose(x[:, 4 * k], np.sin(2**k * np.pi * lon / 180))
    assert np.allclose(x[:, 4 * k + 3], np.cos(2**k * np.pi * lat / 90))
    assert np.allclose(
        multiscale_encode(lat, 180.0 + 0 * lon, 6), multiscale_encode(lat, -180.0 + 0 * lon, 6)
    )
    cfg = PriorConfig(encoding="multiscale", levels=6, use_date=True)
    assert cfg.input_dim == 26
    assert encode_inputs(lat, lon, cfg).shape == (50, 26)
    with pytest.raises(PriorConfigError, match="levels"):
        PriorConfig(encoding="multiscale", levels=0)


def test_multiscale_background_matches_numpy_encoding() -> None:
    a = torch.tensor([0.3, -3.0, 3.1], dtype=torch.float64)  # pi lon / 180
    b = torch.tensor([-1.1, 0.0, 3.0], dtype=torch.float64)  # pi lat / 90
    ref = multiscale_encode(np.degrees(b.numpy()) / 2, np.degrees(a.numpy()), 7)
    assert np.allclose(multiscale_torch(a, b, 7).numpy(), ref)
    cfg = PriorConfig(encoding="multiscale", levels=7)
    bg = _Background(cfg, torch.Generator().manual_seed(0))(1000)
    assert bg.shape == (1000, cfg.input_dim)
    # each background row is a valid encoding: sin^2 + cos^2 = 1 at every level
    pairs = bg.reshape(1000, -1, 2).double()
    assert torch.allclose((pairs**2).sum(-1), torch.ones(1000, 14, dtype=torch.float64), atol=1e-5)


def test_fourier_background_matches_numpy_encoding() -> None:
    """The background rows drawn in torch are fourier encodings of their own points."""
    from geoaware.priors.features import fourier_frequencies

    cfg = PriorConfig(encoding="fourier", levels=5)
    bg = _Background(cfg, torch.Generator().manual_seed(0))(500).double().numpy()
    assert bg.shape == (500, cfg.input_dim) == (500, 80)
    half = bg.shape[1] // 2
    assert np.allclose(bg[:, :half] ** 2 + bg[:, half:] ** 2, 1.0, atol=1e-5)
    # recover each point from its lowest level (|w| = 2: no wrap-around) and re-encode it
    w = fourier_frequencies(5)[:, :8]
    z = np.arctan2(bg[:, :8], bg[:, half : half + 8])
    u, *_ = np.linalg.lstsq(w.T, z.T, rcond=None)
    u = u.T / np.linalg.norm(u.T, axis=1, keepdims=True)
    lat, lon = np.degrees(np.arcsin(u[:, 2])), np.degrees(np.arctan2(u[:, 1], u[:, 0]))
    assert np.allclose(encode_inputs(lat, lon, cfg), bg, atol=2e-3)


def _patches(n_per: int, seed: int) -> Observations:
    """Eight species in 0.15-degree patches 1 degree apart (ranges of ~20 km, 100 km apart)."""
    rng = np.random.default_rng(seed)
    centres = [(45.0 + i, 5.0 + j) for i in range(2) for j in range(4)]
    lat = np.concatenate([c[0] + rng.normal(0, 0.15, n_per) for c in centres])
    lon = np.concatenate([c[1] + rng.normal(0, 0.15, n_per) for c in centres])
    labels = np.repeat(np.arange(len(centres)), n_per)
    n = labels.size
    return Observations(
        [str(i) for i in range(n)],
        lat,
        lon,
        np.full(n, np.nan),
        labels,
        np.full(n, -1),
        [f"s{k}" for k in range(len(centres))],
    )


def test_multiscale_resolves_small_ranges_that_wrap_cannot() -> None:
    train, test = _patches(40, 0), _patches(20, 1)
    cfg = PriorConfig(
        width=64, blocks=2, dropout=0.0, epochs=30, batch_size=64, lr=3e-3, pos_weight=8.0
    )
    top1 = {}
    for enc in ("wrap", "multiscale", "fourier"):
        c = cfg.replace(encoding=enc, levels=10)
        net, _ = fit_prior(train, c)
        ranks = location_ranks(
            LocationPrior(c, train.vocabulary, net), test.lat, test.lon, test.labels
        )
        top1[enc] = rank_metrics(ranks)["top1_acc"]
    print(top1)
    assert top1["multiscale"] >= 0.9 and top1["fourier"] >= 0.9
    assert min(top1["multiscale"], top1["fourier"]) > top1["wrap"] + 0.2


def test_same_class_twins_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    tr_lat, tr_lon = rng.uniform(40, 41, 300), rng.uniform(10, 11, 300)
    tr_y = rng.integers(0, 5, 300)
    q_lat = np.concatenate([tr_lat[:50], rng.uniform(40, 41, 150)])
    q_lon = np.concatenate([tr_lon[:50] + 0.005, rng.uniform(10, 11, 150)])  # ~0.4 km east
    q_y = np.concatenate([tr_y[:50], rng.integers(0, 5, 150)])
    got = same_class_twins(tr_lat, tr_lon, tr_y, q_lat, q_lon, q_y, radius_km=1.0)
    d = haversine_km(q_lat[:, None], q_lon[:, None], tr_lat[None, :], tr_lon[None, :])
    want = ((d <= 1.0) & (q_y[:, None] == tr_y[None, :])).any(axis=1)
    assert np.array_equal(got, want)
    assert got[:50].all() and 0 < got[50:].sum() < 150
