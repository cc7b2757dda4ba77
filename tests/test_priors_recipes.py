"""The ``auto`` recipe chooser on data of known shapes, and the stripe-free ``fourier`` encoding."""

from __future__ import annotations

import numpy as np
import pytest

from geoaware.priors.config import PriorConfig
from geoaware.priors.errors import PriorConfigError
from geoaware.priors.features import fourier_encode, multiscale_encode
from geoaware.priors.recipes import SMALL_DATA_BELOW, choose_recipe, recipe_config


def _labels(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(counts.size), counts)


def test_inat_sized_data_keeps_the_published_recipe() -> None:
    rng = np.random.default_rng(0)
    # iNat 2017-like: 5,089 classes, long tail, median in the hundreds
    counts = np.clip(rng.lognormal(np.log(300), 0.9, 5089).astype(int), 20, 4000)
    choice = choose_recipe(_labels(counts))
    assert choice.name == "published" and choice.classes == 5089
    assert choice.median_per_class >= 100 and f"at least {SMALL_DATA_BELOW}" in choice.reason


def test_few_observations_per_class_get_small_data() -> None:
    rng = np.random.default_rng(1)
    # fg_geo-like: 4,472 classes, 1-30 observations each (median about 5)
    counts = np.clip(rng.geometric(0.15, 4472), 1, 30)
    choice = choose_recipe(_labels(counts))
    assert choice.name == "small-data" and choice.classes == 4472
    assert f"below {SMALL_DATA_BELOW}" in choice.reason
    cfg = recipe_config(choice, {"epochs": 3, "lr": 1e-3})
    assert cfg.encoding == PriorConfig.small_data().encoding and cfg.lr == 1e-3  # explicit wins


def test_threshold_and_explicit_choice() -> None:
    at = choose_recipe(_labels(np.full(10, SMALL_DATA_BELOW)))
    below = choose_recipe(_labels(np.full(10, SMALL_DATA_BELOW - 1)))
    assert (at.name, below.name) == ("published", "small-data")
    forced = choose_recipe(_labels(np.full(10, 3)), asked="published")
    assert forced.name == "published" and forced.reason.startswith("asked for explicitly")
    with pytest.raises(PriorConfigError, match="recipe: 'tiny'"):
        choose_recipe([0, 1], asked="tiny")


def test_fourier_features_mix_latitude_and_longitude() -> None:
    """A multiscale feature moves with latitude alone; the fourier features do not."""
    lats = np.linspace(-60, 60, 25)
    a = multiscale_encode(lats, np.full(25, 10.0), 6)
    b = multiscale_encode(lats, np.full(25, 120.0), 6)
    lat_cols = np.r_[[4 * k + 2 for k in range(6)], [4 * k + 3 for k in range(6)]]
    assert np.allclose(a[:, lat_cols], b[:, lat_cols])  # identical along every parallel
    fa = fourier_encode(lats, np.full(25, 10.0), 6)
    fb = fourier_encode(lats, np.full(25, 120.0), 6)
    assert np.abs(fa - fb).max(axis=0).min() > 1e-3  # every feature sees the longitude


def test_fourier_range_has_no_stripe_along_its_parallel() -> None:
    """Few points per class: the multiscale (separable) input paints the observations'
    parallel; the fourier input keeps the range where the points are."""
    torch = pytest.importorskip("torch")
    from geoaware.priors.checkpoint import LocationPrior
    from geoaware.priors.data import Observations
    from geoaware.priors.train import fit_prior

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = [(27.0, -81.0), (48.0, 10.0), (-30.0, 140.0), (37.0, -120.0), (10.0, 77.0)]
    lat = np.concatenate([c[0] + rng.normal(0, 0.7, 6) for c in centres])
    lon = np.concatenate([c[1] + rng.normal(0, 0.7, 6) for c in centres])
    y = np.repeat(np.arange(len(centres)), 6)
    n = y.size
    obs = Observations([str(i) for i in range(n)], lat, lon, np.full(n, np.nan), y,
                       np.full(n, -1), [f"c{k}" for k in range(len(centres))])  # fmt: skip
    lons = np.arange(-180.0, 180.0, 4.0)
    far = np.abs(((lons + 81 + 180) % 360) - 180) > 40  # the parallel of class 0, far away
    medians = {}
    for enc in ("multiscale", "fourier"):
        cfg = PriorConfig.small_data(encoding=enc, epochs=150, max_per_class=None)
        net, _ = fit_prior(obs, cfg)
        prior = LocationPrior(cfg, obs.vocabulary, net)
        medians[enc] = float(np.median(prior.class_proba(np.full(lons.size, 27.0), lons, 0)[far]))
        assert prior.class_proba([27.0], [-81.0], 0)[0] > 0.9
    assert medians["fourier"] < 0.1 < medians["multiscale"], medians
