from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

from geoaware.priors.baselines import fit_baselines  # noqa: E402
from geoaware.priors.checkpoint import load_prior  # noqa: E402
from geoaware.priors.config import PriorConfig  # noqa: E402
from geoaware.priors.data import observations_from_table  # noqa: E402
from geoaware.priors.errors import PriorError  # noqa: E402
from geoaware.priors.evaluate import evaluate_prior, location_ranks, rank_metrics  # noqa: E402
from geoaware.priors.train import fit_prior, train_prior  # noqa: E402

from .priors_helpers import synthetic_world  # noqa: E402

SMALL = PriorConfig(width=32, blocks=2, epochs=40, batch_size=128, lr=3e-3, pos_weight=8.0)


@pytest.fixture(scope="module")
def world_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    table = synthetic_world()
    out = tmp_path_factory.mktemp("prior") / "model"
    train_prior(table, out, SMALL, split="train")
    return out, table


def test_synthetic_world_near_perfect(world_model: tuple[Path, pa.Table]) -> None:
    model, table = world_model
    report = evaluate_prior(model, table, split="test")
    rows = {r["method"]: r for r in report["rows"]}
    assert rows["prior"]["top1_acc"] >= 0.97
    assert rows["prior"]["map"] >= 0.98
    assert rows["frequency"]["top1_acc"] < 0.5
    assert set(rows) == {
        "prior",
        "frequency",
        "nearest_neighbours",
        "grid_histogram",
        "kernel_density",
    }


def test_checkpoint_is_self_contained(world_model: tuple[Path, pa.Table]) -> None:
    model, _ = world_model
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "model.pt", "points.npz"]
    prior = load_prior(model)
    assert prior.config == SMALL and prior.vocabulary == [f"species_{k}" for k in range(4)]
    (name, p), *_ = prior.top(-25.0, 135.0, k=4)
    assert name == "species_3" and p > 0.5
    assert prior.training["dropped"] == {"no_location": 0, "no_label": 0}


def test_training_is_reproducible() -> None:
    obs = observations_from_table(synthetic_world(30), "label_name")
    cfg = SMALL.replace(epochs=2)
    a, la = fit_prior(obs, cfg)
    b, lb = fit_prior(obs, cfg)
    assert la == lb
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    _, lc = fit_prior(obs, cfg.replace(seed=1))
    assert lc != la


@pytest.mark.parametrize("loss", ["ssdl", "slds", "full_me", "ssdl_me", "slds_me"])
def test_every_loss_trains(loss: str) -> None:
    obs = observations_from_table(synthetic_world(30), "label_name")
    _, losses = fit_prior(obs, SMALL.replace(epochs=2, loss=loss))
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_user_loss_and_dates(tmp_path: Path) -> None:
    t = synthetic_world(30)
    n = t.num_rows
    t = t.append_column("user_id", pa.array([f"u{i % 7}" for i in range(n)]))
    t = t.append_column(
        "taken_at",
        pa.array(np.datetime64("2020-01-01") + np.arange(n) % 365).cast(
            pa.timestamp("us", tz="UTC")
        ),
    )
    res = train_prior(t, tmp_path / "m", SMALL.replace(epochs=2, user_weight=0.5, use_date=True))
    prior = load_prior(res.model_dir)
    assert prior.net.user_head is not None and prior.net.user_head.out_features == 7
    assert prior.predict_proba([0.0], [0.0], [0.5]).shape == (1, 4)


def test_rows_without_location_are_counted(tmp_path: Path) -> None:
    t = synthetic_world(20)
    lat = t.column("lat").to_numpy().copy()
    lat[:5] = np.nan
    t = t.set_column(t.column_names.index("lat"), "lat", pa.array(lat, from_pandas=True))
    res = train_prior(t, tmp_path / "m", SMALL.replace(epochs=1))
    assert res.dropped["no_location"] == 5 and res.used == t.num_rows - 5


def test_too_few_classes_or_no_location(tmp_path: Path) -> None:
    t = synthetic_world(10)
    one = t.filter(pa.array(np.asarray(t.column("label_name").to_pylist()) == "species_0"))
    with pytest.raises(PriorError, match="at least two classes"):
        train_prior(one, tmp_path / "a", SMALL)
    none = t.set_column(t.column_names.index("lat"), "lat", pa.nulls(t.num_rows, pa.float64()))
    with pytest.raises(PriorError, match="no rows with a location"):
        train_prior(none, tmp_path / "b", SMALL)
    with pytest.raises(PriorError, match="no column 'family'"):
        train_prior(t, tmp_path / "c", SMALL.replace(label_column="family"))


def test_baselines_and_batched_evaluation() -> None:
    t = synthetic_world(60)
    obs = observations_from_table(t, "label_name")
    base = fit_baselines(obs.lat, obs.lon, obs.labels, 4)
    for name in ("nearest_neighbours", "grid_histogram", "kernel_density"):
        ranks = location_ranks(base[name], obs.lat, obs.lon, obs.labels)
        assert rank_metrics(ranks)["top1_acc"] > 0.95, name
    one = location_ranks(base["kernel_density"], obs.lat, obs.lon, obs.labels, batch_size=7)
    all_ = location_ranks(base["kernel_density"], obs.lat, obs.lon, obs.labels, batch_size=10_000)
    assert np.array_equal(one, all_)
