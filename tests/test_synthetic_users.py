"""SYNTHETIC photographers (`partition --by synthetic-user`) on real Parquet catalogs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geoaware.catalog import read_catalog, write_catalog
from geoaware.cli import app
from geoaware.construct.errors import PartitionError
from geoaware.construct.partition import make_partitioner
from geoaware.construct.stats import scheme_title, write_partitions
from geoaware.construct.synthetic_users import SyntheticUserPartitioner, synthetic_users
from geoaware.geo.distance import haversine_km

runner = CliRunner()
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # as conftest.py


@pytest.fixture(scope="module")
def fg_geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fg_geo (36,143 photos, no user_id) as a real catalog file."""
    from geoaware.sources import FgGeoYfcc

    if not (SHARED_DATA / "fg_geo_yfcc").is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    path = tmp_path_factory.mktemp("fg") / "fg_geo.parquet"
    write_catalog(FgGeoYfcc(SHARED_DATA).read(), path)
    return path


def _tiny(n: int = 300, seed: int = 0) -> pa.Table:
    """Three far-apart clusters whose location tells the label; no user_id."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 3, n)
    return pa.table(
        {
            "source": ["synthetic"] * n,
            "image_id": [f"img{i}" for i in range(n)],
            "lat": np.array([-40.0, 0.0, 40.0])[lab] + rng.normal(0, 2, n),
            "lon": np.array([-100.0, 20.0, 120.0])[lab] + rng.normal(0, 2, n),
            "label_name": [f"Label {x}" for x in lab],
        }
    )


def _partition(table: pa.Table, users: int, seed: int = 0) -> SyntheticUserPartitioner:
    p = SyntheticUserPartitioner(users, seed=seed)
    p.catalog = table
    return p


def test_deterministic_dense_and_every_photo_once(fg_geo: Path, tmp_path: Path) -> None:
    table = read_catalog(fg_geo)
    a, b, c = (_partition(table, 2000, seed) for seed in (0, 0, 1))
    assert np.array_equal(a.assignment, b.assignment)
    assert a.natural_ids.tolist() == b.natural_ids.tolist()
    assert not np.array_equal(a.assignment, c.assignment)
    # every photo once; ids dense; empty photographers dropped, their names keep index order
    assert (a.assignment >= 0).all()
    assert np.array_equal(np.unique(a.assignment), np.arange(a.num_partitions))
    assert a.num_partitions + a.users_without_images == 2000 and a.users_without_images > 0
    names = a.natural_ids.tolist()
    assert names == sorted(names) and all(x.startswith("synthetic-user-") for x in names)
    stats = write_partitions(a, tmp_path / "parts", level="species", plots=False)
    written = pq.read_table(tmp_path / "parts" / "partitions.parquet")
    ids = written.column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == table.num_rows == stats["rows_assigned"]
    on_disk = orjson.loads((tmp_path / "parts" / "stats.json").read_bytes())
    assert on_disk["scheme"] == "SyntheticUserPartitioner" and on_disk["settings"]["synthetic"]
    assert "SYNTHETIC" in scheme_title(on_disk)


def test_heavy_tail_and_locality_on_fg_geo(fg_geo: Path) -> None:
    table = read_catalog(fg_geo)
    lat = table.column("lat").to_numpy().astype(np.float64)
    lon = table.column("lon").to_numpy().astype(np.float64)
    who, home, _ = synthetic_users(lat, lon, 2000, seed=0)
    sizes = np.bincount(who)
    sizes = sizes[sizes > 0]
    # heavy tail: median a few photos, the largest photographer dozens of times that
    assert np.median(sizes) <= 10 and sizes.max() >= 40 * np.median(sizes)
    # locality: a photo is far nearer its photographer's home than a random photographer's
    own = haversine_km(lat, lon, lat[home[who]], lon[home[who]])
    other = haversine_km(lat, lon, *(x[home[np.random.default_rng(1).permutation(who)]]
                                     for x in (lat, lon)))  # fmt: skip
    assert np.mean(own) < 0.15 * np.mean(other)
    assert np.median(own) < 300 < np.median(other)


def test_refuses_bad_settings_and_leaves_out_unlocated() -> None:
    for users in (0, -3):
        with pytest.raises(PartitionError, match="--users must be >= 1"):
            SyntheticUserPartitioner(users)
    with pytest.raises(PartitionError, match="--scale-km"):
        SyntheticUserPartitioner(10, scale_km=0.0)
    with pytest.raises(PartitionError, match="needs --users"):
        make_partitioner("synthetic-user")
    table = _tiny(20)
    with pytest.raises(PartitionError, match="--users 21 is more than the 20 located photos"):
        _ = _partition(table, 21).assignment
    lat = table.column("lat").to_pylist()
    lat[:5] = [None] * 5
    p = _partition(table.set_column(2, "lat", pa.array(lat, pa.float64())), 15)
    assert (p.assignment[:5] == -1).all() and (p.assignment[5:] >= 0).all()
    assert p.left_out["no_location"] == 5


def test_by_user_on_a_catalog_without_users_points_here(tmp_path: Path) -> None:
    cat = tmp_path / "tiny.parquet"
    write_catalog(_tiny(), cat)
    result = runner.invoke(
        app, ["partition", str(cat), "--by", "user", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert "no row has a user" in result.output and "synthetic-user --users N" in result.output


def test_fl_simulate_reads_a_synthetic_user_partition(tmp_path: Path) -> None:
    pytest.importorskip("flwr.simulation")
    cat, parts = tmp_path / "tiny.parquet", tmp_path / "parts"
    write_catalog(_tiny(), cat)
    result = runner.invoke(
        app, ["partition", str(cat), "--by", "synthetic-user", "--users", "12", "--out",
              str(parts), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.stdout)
    assert stats["scheme"] == "SyntheticUserPartitioner" and stats["rows_assigned"] == 300
    result = runner.invoke(
        app, ["fl", "simulate", str(parts), "--catalog", str(cat), "--model", "softmax",
              "--rounds", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["clients"] == stats["clients"] and "SYNTHETIC" in report["partitioning"]
    assert report["rows_train"] + report["rows_heldout"] == 300
