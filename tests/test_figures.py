"""Pictures that tell the truth: each figure checked through its matplotlib artists.

Every plotting function saves through ``Figure.savefig``; the ``drawn`` fixture keeps each
figure saved during a test (the PNG is still written for real), so the tests read titles, axis
labels, tick labels, scales, legends and draw order instead of pixels.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from geoaware.construct.leakage import leakage_report  # noqa: E402
from geoaware.construct.partition import IidPartitioner, UserPartitioner  # noqa: E402
from geoaware.construct.stats import write_partitions  # noqa: E402
from geoaware.geo.maps import world_map  # noqa: E402
from geoaware.report.plots import error_cdf, error_map, group_bars  # noqa: E402

_HEMISPHERE_TICK = re.compile(r"^(0°|\d+(\.\d+)?°[NSEW])$")


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures saved during the test, in order (the files are written as usual)."""
    saved: list[Figure] = []
    original = Figure.savefig

    def savefig(self: Figure, *args: Any, **kwargs: Any) -> Any:
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def _ticks(axis: Any) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def _legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def _bars(ax: Axes) -> Sequence[Rectangle]:
    return cast("Sequence[Rectangle]", ax.patches)  # a bar chart's patches are its bars


def _assert_degree_ticks(ax: Any) -> None:
    for axis in (ax.xaxis, ax.yaxis):
        labels = _ticks(axis)
        assert labels, "no tick labels"
        assert all(_HEMISPHERE_TICK.match(t) for t in labels), labels


# ----------------------------------------------------------------------------------------------
# leakage map


def _split_with_twins(n_clean: int = 60, n_pairs: int = 7) -> pa.Table:
    """Clean images far apart, plus pairs 10 m apart with one image on each side."""
    rng = np.random.default_rng(0)
    lat = list(rng.uniform(-50, 60, n_clean))
    lon = list(rng.uniform(-170, 170, n_clean))
    split = ["train" if i % 2 else "test" for i in range(n_clean)]
    for k in range(n_pairs):
        base_lat, base_lon = 10.0 + 3 * k, 20.0 + 3 * k
        lat += [base_lat, base_lat + 0.00009]
        lon += [base_lon, base_lon]
        split += ["train", "test"]
    n = len(lat)
    return pa.table(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "lat": np.array(lat),
            "lon": np.array(lon),
            "split": split,
        }
    )


def test_leakage_map_two_labelled_categories_leaked_on_top(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    out = tmp_path / "deep" / "folder" / "split.parquet.png"
    report = leakage_report(_split_with_twins(), map_png=out, where=str(tmp_path / "split.parquet"))
    assert report["same_outing"]["images"] == 14 and out.exists()
    (fig,) = drawn
    assert len(fig.axes) == 1  # no continuous colour bar standing for leaked / not leaked
    ax = fig.axes[0]
    legend = _legend_texts(ax)
    assert legend == ["no same-outing twin (60)", "same outing on another side (14)"]
    clean, leaked = ax.collections  # the two scatters, in drawing order
    assert leaked.get_zorder() > clean.get_zorder()
    assert len(np.asarray(leaked.get_offsets())) == 14
    assert len(np.asarray(clean.get_offsets())) == 60
    title = ax.get_title()
    assert title.startswith("split.parquet: same-outing leaks") and str(tmp_path) not in title
    _assert_degree_ticks(ax)


def test_world_map_ticks_carry_degrees_and_hemispheres(tmp_path: Path, drawn: list[Figure]) -> None:
    world_map([48.85, -33.87], [2.35, 151.21], tmp_path / "m.png", title="two cities")
    ax = drawn[0].axes[0]
    _assert_degree_ticks(ax)
    assert "60°W" in _ticks(ax.xaxis) and "30°S" in _ticks(ax.yaxis)


# ----------------------------------------------------------------------------------------------
# partition plots


def _heavy_users(seed: int = 0) -> pa.Table:
    """Users with 1 to ~500 images each (a Zipf-like tail), like real photo collections."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.6, 300), 200)
    sizes[0] = 500
    users = np.repeat([f"u{i:03d}" for i in range(sizes.size)], sizes)
    n = users.size
    return pa.table(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "user_id": users,
            "label_name": [f"sp{k}" for k in rng.integers(0, 40, n)],
            "lat": rng.uniform(-50, 60, n),
            "lon": rng.uniform(-170, 170, n),
        }
    )


def test_partition_plots_log_scales_whole_clients_and_scheme(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    p = UserPartitioner()
    p.catalog = _heavy_users()
    stats = write_partitions(p, tmp_path / "parts")
    assert {"samples_per_client.png", "labels_per_client.png"} <= set(stats["files"])
    images, labels = (fig.axes[0] for fig in drawn)
    assert images.get_xscale() == "log" and images.get_yscale() == "log"
    assert images.get_xlabel() == "images per client (log scale)"
    assert images.get_title() == f"images per client: by user, {stats['clients']:,} clients"
    assert labels.get_title().startswith("labels per client: by user")
    for ax in (images, labels):
        counts = _ticks(ax.yaxis)
        assert counts and all(re.fullmatch(r"[\d,]+", t) for t in counts), counts
    # the single biggest client is a bar of its own, visible on the log y-axis
    heights = [patch.get_height() for patch in _bars(images)]
    assert heights[-1] == 1 and max(heights) > 50


def test_partition_plot_of_near_equal_clients_has_whole_number_bars(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    n = 9_001
    p = IidPartitioner(4, seed=0)
    p.catalog = pa.table({"image_id": [f"img{i}" for i in range(n)],
                          "label_name": [f"sp{i % 40}" for i in range(n)]})  # fmt: skip
    write_partitions(p, tmp_path / "iid")
    ax = drawn[0].axes[0]
    assert ax.get_xscale() == "linear" and ax.get_title().startswith("images per client: IID")
    sizes = sorted({round(patch.get_x() + patch.get_width() / 2) for patch in _bars(ax)})
    assert sizes == [2250, 2251]  # one bar per size, centred on it
    assert all(re.fullmatch(r"[\d,]+", t) for t in _ticks(ax.xaxis) + _ticks(ax.yaxis))
    assert sum(patch.get_height() for patch in _bars(ax)) == 4


# ----------------------------------------------------------------------------------------------
# evaluation figures


def test_error_cdf_names_its_distance_title_and_median_line(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    errors = {"model A": np.array([0.5, 30.0, 800.0, 5000.0])}
    error_cdf(errors, tmp_path / "a.png", title="share of images located within d")
    error_cdf(errors, tmp_path / "b.png", distance="geodesic")
    sphere, geodesic = (fig.axes[0] for fig in drawn)
    assert sphere.get_xlabel() == "great-circle error (6371 km sphere) d (km, log scale)"
    assert geodesic.get_xlabel() == "WGS84 geodesic error d (km, log scale)"
    assert sphere.get_title() == "share of images located within d"
    texts = [t.get_text() for t in sphere.texts]
    assert "50 % (median error)" in texts
    ydata = [np.asarray(line.get_ydata()) for line in sphere.lines]
    assert any(y[0] == 0.5 and y[1] == 0.5 for y in ydata)
    assert "model A: median 415 km (n=4)" in _legend_texts(sphere)
    with pytest.raises(ValueError, match="distance 'vincenty'"):
        error_cdf(errors, tmp_path / "c.png", distance="vincenty")


def test_error_map_colour_bar_names_the_distance_and_ticks_have_hemispheres(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    error_map([48.85, -33.87], [2.35, 151.21], [3.0, 1200.0], tmp_path / "a.png", title="m")
    error_map([48.85], [2.35], [3.0], tmp_path / "b.png", distance="geodesic")
    (ax, bar), (_, bar_geodesic) = (fig.axes for fig in drawn)
    assert bar.get_ylabel() == "great-circle error (6371 km sphere) (km, log scale)"
    assert bar_geodesic.get_ylabel() == "WGS84 geodesic error (km, log scale)"
    _assert_degree_ticks(ax)
    assert ax.get_title() == "m - 2 images, median error 602 km"


def _predictions_csv(path: Path) -> Path:
    """Truth and predictions in three continents: some exact (1 km), some 300 km off."""
    rows = [
        ("paris", 48.85, 2.35, 48.85, 2.36),
        ("berlin", 52.52, 13.40, 50.0, 13.40),
        ("nyc", 40.71, -74.00, 40.71, -74.00),
        ("chicago", 41.88, -87.63, 44.0, -87.63),
        ("sydney", -33.87, 151.21, -33.87, 151.20),
    ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_id", "true_lat", "true_lon", "pred_lat", "pred_lon"])
        w.writerows(rows)
    return path


def test_eval_geo_run_figures_continent_bars_with_1km_and_titles(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    """Through the real command: the continent chart has the 1 km bar and a title."""
    from typer.testing import CliRunner

    from geoaware.cli import app

    pred = _predictions_csv(tmp_path / "pred.csv")
    result = CliRunner().invoke(
        app, ["eval", "geo", str(pred), "--by", "continent", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    titles = {fig.axes[0].get_title(): fig for fig in drawn}
    bars = titles["pred: accuracy by continent of the true location"].axes[0]
    legend = _legend_texts(bars)
    assert legend == [f"within {d} km" for d in ("1", "25", "200", "750", "2,500")]
    groups = [t.get_text() for t in bars.get_xticklabels()]
    assert groups == ["Europe\nn=2", "North America\nn=2", "Oceania\nn=1"]
    cdf = titles["share of images located within d"].axes[0]
    assert cdf.get_xlabel().startswith("great-circle error (6371 km sphere)")


def test_group_bars_default_title_and_percent_labels(tmp_path: Path, drawn: list[Figure]) -> None:
    rows = [{"continent": "Europe", "n": 4, "acc_1km": 0.25}, {"continent": "Asia", "n": 2,
            "acc_1km": 0.0}]  # fmt: skip
    group_bars(rows, tmp_path / "b.png", value="acc_1km")
    ax = drawn[0].axes[0]
    assert ax.get_title() == "images located within 1 km, by continent"
    assert [t.get_text() for t in ax.texts] == ["25%", "0%"]


# ----------------------------------------------------------------------------------------------
# range maps


@pytest.fixture(scope="module")
def small_prior() -> Any:
    """A prior fitted on eight patches of points in Europe, with its training points."""
    pytest.importorskip("torch")
    from geoaware.priors.checkpoint import LocationPrior
    from geoaware.priors.config import PriorConfig
    from geoaware.priors.data import Observations
    from geoaware.priors.train import fit_prior

    rng = np.random.default_rng(0)
    centres = [(45.0 + 2 * i, 5.0 + 3 * j) for i in range(2) for j in range(4)]
    lat = np.concatenate([c[0] + rng.normal(0, 0.3, 12) for c in centres])
    lon = np.concatenate([c[1] + rng.normal(0, 0.3, 12) for c in centres])
    labels = np.repeat(np.arange(len(centres)), 12)
    obs = Observations([str(i) for i in range(labels.size)], lat, lon,
                       np.full(labels.size, np.nan), labels, np.full(labels.size, -1),
                       [f"Species {k}" for k in range(len(centres))])  # fmt: skip
    cfg = PriorConfig(encoding="fourier", levels=8, width=32, blocks=1, dropout=0.0,
                      epochs=5, batch_size=64, lr=5e-3)  # fmt: skip
    net, _ = fit_prior(obs, cfg)
    prior = LocationPrior(cfg, obs.vocabulary, net)
    prior.points = (lat, lon, labels)
    return prior


def test_range_map_is_scaled_per_map_and_says_so(
    tmp_path: Path, drawn: list[Figure], small_prior: Any
) -> None:
    from geoaware.priors.plots import range_map

    r = range_map(small_prior, "Species 0", tmp_path / "world.png", step=8)
    ax, bar = drawn[0].axes
    top = r["max_prob"]
    assert r["colour_max"] == top < 1.0
    image = ax.images[-1]  # the probability raster, over the grey sea
    assert image.norm.vmin == 0 and image.norm.vmax == pytest.approx(top)
    assert f"colours scaled to this map's maximum p = {top:.3g}" in ax.get_title()
    assert ax.get_title().startswith("Species 0: predicted range p(Species 0 | location), 12 ")
    assert bar.get_ylabel() == f"p(location), 0 to this map's maximum {top:.3g}"
    _assert_degree_ticks(ax)
    assert _ticks(ax.xaxis)[0] == "180°W" and _ticks(ax.yaxis)[-1] == "90°N"

    range_map(small_prior, "Species 0", tmp_path / "abs.png", step=8, scale="absolute")
    ax = drawn[1].axes[0]
    assert ax.images[-1].norm.vmax == 1.0 and "absolute scale 0 to 1" in ax.get_title()


def test_range_map_bounds_zoom_with_their_own_ticks(
    tmp_path: Path, drawn: list[Figure], small_prior: Any
) -> None:
    from geoaware.priors.plots import parse_bounds, range_map

    bounds = parse_bounds("0,40,12,50")
    r = range_map(small_prior, "Species 5", tmp_path / "zoom.png", step=1, bounds=bounds)
    ax = drawn[0].axes[0]
    assert ax.get_xlim() == (0.0, 12.0) and ax.get_ylim() == (40.0, 50.0)
    assert _ticks(ax.xaxis) == ["0°", "2°E", "4°E", "6°E", "8°E", "10°E", "12°E"]
    assert _ticks(ax.yaxis) == ["40°N", "42°N", "44°N", "46°N", "48°N", "50°N"]
    assert r["bounds"] == [0.0, 40.0, 12.0, 50.0]
    # a 0.25-degree raster of the region, not the world's
    raster = ax.images[-1].get_array()
    assert raster is not None and raster.shape == (40, 48)
    assert "12 training points (12 inside the map)" in ax.get_title()
