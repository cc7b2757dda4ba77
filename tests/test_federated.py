from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.construct.errors import BuildError, PartitionError
from geoaware.construct.partition import UserPartitioner
from geoaware.construct.stats import write_partitions
from geoaware.federated.partitioner import CatalogFilePartitioner

datasets = pytest.importorskip("datasets")
flwr_datasets = pytest.importorskip("flwr_datasets")


def _catalog(n: int = 300, users: int = 3, seed: int = 0) -> pa.Table:
    """Users and labels whose location tells the label apart (three far-apart clusters)."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 3, n)
    return pa.table(
        {
            "source": ["synthetic"] * n,
            "image_id": [f"img{i}" for i in range(n)],
            "lat": np.array([-40.0, 0.0, 40.0])[lab] + rng.normal(0, 5, n),
            "lon": np.array([-100.0, 20.0, 120.0])[lab] + rng.normal(0, 5, n),
            "user_id": [f"u{u}" for u in rng.integers(0, users, n)],
            "label_name": [f"Label {x}" for x in lab],
        }
    )


def _partition_folder(tmp_path: Path, table: pa.Table) -> tuple[Path, Path]:
    cat = tmp_path / "catalog.parquet"
    write_catalog(table, cat)
    p = UserPartitioner()
    p.catalog = table
    write_partitions(p, tmp_path / "parts", plots=False)
    return cat, tmp_path / "parts"


def _expected(table: pa.Table, user: str) -> list[str]:
    return [
        i
        for i, u in zip(
            table.column("image_id").to_pylist(), table.column("user_id").to_pylist(), strict=True
        )
        if u == user
    ]


def test_partitioner_returns_the_rows_of_each_partition(tmp_path: Path) -> None:
    table = _catalog()
    cat, parts = _partition_folder(tmp_path, table)
    ds = datasets.Dataset.from_parquet(str(cat), cache_dir=str(tmp_path / "hf"))
    p = CatalogFilePartitioner(parts / "partitions.parquet")
    assert isinstance(p, flwr_datasets.partitioner.Partitioner)
    assert not p.is_dataset_assigned()
    p.dataset = ds
    assert p.num_partitions == 3
    for k, user in enumerate(["u0", "u1", "u2"]):  # ids follow the sorted user ids
        part = p.load_partition(k)
        assert part["image_id"][:] == _expected(table, user)
        assert set(part["user_id"][:]) == {user}
    with pytest.raises(KeyError, match=r"not in 0\.\.2"):
        p.load_partition(3)


def test_partitioner_in_a_federated_dataset(tmp_path: Path) -> None:
    """The real flwr_datasets entry point: loads the parquet, shuffles, hands it over."""
    table = _catalog()
    cat, parts = _partition_folder(tmp_path, table)
    fds = flwr_datasets.FederatedDataset(
        dataset="parquet",
        data_files={"train": str(cat)},
        cache_dir=str(tmp_path / "hf"),
        partitioners={"train": CatalogFilePartitioner(parts / "partitions.parquet")},
        shuffle=True,
        seed=1,
    )
    part = fds.load_partition(1)
    assert sorted(part["image_id"][:]) == sorted(_expected(table, "u1"))
    assert set(part["user_id"][:]) == {"u1"}


def test_partitioner_rows_match_the_partition_file(tmp_path: Path) -> None:
    n, k = 100_000, 1_000
    rng = np.random.default_rng(0)
    pid = rng.integers(0, k, n)
    ids = np.char.add("img", np.arange(n).astype(str))
    pfile = tmp_path / "partitions.parquet"
    order = rng.permutation(n)  # the file lists rows in another order than the dataset
    pq.write_table(
        pa.table({"partition_id": pa.array(pid[order], pa.int32()), "image_id": ids[order]}),
        pfile,
    )
    p = CatalogFilePartitioner(pfile)
    p.dataset = datasets.Dataset.from_dict({"image_id": ids.tolist(), "pid": pid.tolist()})
    # every partition holds exactly the dataset rows the file gives it, in dataset order
    rows = [p.partition_indices(i) for i in range(k)]
    assert all(np.array_equal(r, np.flatnonzero(pid == i)) for i, r in enumerate(rows))
    assert p.partition_indices(7) is rows[7]  # the index is kept, not rebuilt per partition
    for i in (0, 1, k - 1):
        part = p.load_partition(i)
        assert part["image_id"][:] == ids[pid == i].tolist() and set(part["pid"][:]) == {i}


def test_partitioner_bad_input(tmp_path: Path) -> None:
    pfile = tmp_path / "partitions.parquet"
    pq.write_table(pa.table({"partition_id": [0, 1], "image_id": ["a", "zz"]}), pfile)
    p = CatalogFilePartitioner(pfile)
    with pytest.raises(AttributeError, match="attach a dataset first"):
        _ = p.dataset
    with pytest.raises(TypeError, match="but given <class 'dict'>"):
        p.dataset = {"image_id": ["a"]}
    ds = datasets.Dataset.from_dict({"image_id": ["a", "b"]})
    p.dataset = ds
    with pytest.raises(ValueError, match="only once"):
        p.dataset = ds
    with pytest.raises(PartitionError, match=r"1 image ids are not in the dataset \(e.g. \['zz'\]"):
        p.load_partition(0)
    with pytest.raises(PartitionError, match="no column 'image_id'"):
        CatalogFilePartitioner(pfile).dataset = datasets.Dataset.from_dict({"id": ["a"]})
    pq.write_table(pa.table({"image_id": ["a"]}), tmp_path / "other.parquet")
    with pytest.raises(PartitionError, match="not a partition file"):
        CatalogFilePartitioner(tmp_path / "other.parquet")


# ---------------------------------------------------------------------------------------------
def _cli() -> typer.Typer:
    from geoaware.federated.commands import app

    return app


def test_fl_simulate_real_flower_simulation(tmp_path: Path) -> None:
    import orjson
    import ray

    pytest.importorskip("flwr.simulation")
    cat, parts = _partition_folder(tmp_path, _catalog())
    result = CliRunner().invoke(
        _cli(),
        ["fl", "simulate", str(parts), "--catalog", str(cat), "--rounds", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["clients"] == 3 and report["rounds"] == 2
    assert [r["round"] for r in report["per_round"]] == [1, 2]
    for r in report["per_round"]:
        assert 0.0 <= r["federated_accuracy"] <= 1.0
        assert 0.0 <= r["centralised_accuracy"] <= 1.0
        assert r["train_loss"] is not None
    # location separates the three labels: both trainings learn it
    assert report["final"]["federated_accuracy"] > 0.9
    assert report["final"]["centralised_accuracy"] > 0.9
    assert report["rows_train"] + report["rows_heldout"] == 300
    assert not ray.is_initialized()


def test_fl_simulate_shuts_ray_down_on_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt inside the simulation: Ray (really started) is shut down, nothing is left."""
    import flwr.simulation
    import ray

    from geoaware.federated import simulate as flsim
    from geoaware.federated.runtime import descendants

    cat, parts = _partition_folder(tmp_path, _catalog(60))
    seen: dict[int, str] = {}

    def interrupted(**kwargs: Any) -> None:
        assert ray.is_initialized()  # started by geoaware before Flower's threads
        seen.update(descendants())
        raise KeyboardInterrupt

    monkeypatch.setattr(flwr.simulation, "run_simulation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        flsim.simulate_fedavg(parts, cat)
    assert seen, "Ray started no process"
    assert not ray.is_initialized()
    still = {p: t for p, t in descendants().items() if seen.get(p) == t}
    assert still == {}


def _fl_command(parts: Path, cat: Path, out: Path, rounds: int) -> list[str]:
    import sys

    return [
        sys.executable, "-m", "geoaware.cli", "fl", "simulate", str(parts), "--catalog",
        str(cat), "--rounds", str(rounds), "--out", str(out),
    ]  # fmt: skip


@pytest.mark.slow
def test_fl_simulate_on_fg_geo_at_full_size_finishes(shared_data: Path, tmp_path: Path) -> None:
    """The demo's real size (36,143 images, 4,472 species, 4 IID clients) once deadlocked
    inside OpenBLAS while Ray started; it must finish within the deadline, quietly."""
    import subprocess

    import orjson

    from geoaware.construct.partition import make_partitioner
    from geoaware.sources import FgGeoYfcc

    table = FgGeoYfcc(shared_data).read()
    cat = tmp_path / "catalog.parquet"
    write_catalog(table, cat)
    p = make_partitioner("iid", level="species", num_partitions=4, seed=0)
    p.catalog = table
    write_partitions(p, tmp_path / "parts", level="species", plots=False)
    run = tmp_path / "run"
    proc = subprocess.run(
        _fl_command(tmp_path / "parts", cat, run, 1),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = orjson.loads((run / "fedavg-softmax-parts.federated.json").read_bytes())["simulation"]
    assert report["clients"] == 4 and report["classes"] == 4472
    assert report["rows_train"] + report["rows_heldout"] == 36_143
    assert "federated" in proc.stdout and "round" in proc.stdout
    # Flower's log and deprecation warnings are in the run folder, not on the console
    log = (run / "fedavg-softmax-parts.flower.log").read_text()
    assert "DEPRECATED FEATURE" in log and "[ROUND 1/1]" in log
    for stream in (proc.stdout, proc.stderr):
        assert "DEPRECATED" not in stream and "INFO" not in stream


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_fl_simulate_stops_on_a_signal(tmp_path: Path, signame: str) -> None:
    """Ctrl-C or SIGTERM in the middle of the rounds: the command ends, Ray with it."""
    import os
    import signal
    import subprocess

    from geoaware.federated.runtime import descendants

    cat, parts = _partition_folder(tmp_path, _catalog(300, users=3))
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _fl_command(parts, cat, run, 100_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 240
    log = run / "fedavg-softmax-parts.flower.log"
    while time.monotonic() < deadline and proc.poll() is None:
        seen.update(descendants(proc.pid))
        if log.is_file() and "[ROUND 3/" in log.read_text():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    assert seen, "Ray started no process"
    os.kill(proc.pid, getattr(signal, signame))
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test is for
        proc.kill()
        proc.communicate()
        pytest.fail(f"{signame} did not stop fl simulate within 60 s")
    assert proc.returncode != 0
    time.sleep(1)
    table = descendants(1)
    assert {p for p, t in seen.items() if table.get(p) == t} == set(), "Ray processes left"
    assert b"Traceback" not in err or signame == "SIGINT", err[-2000:]


def test_fl_simulate_table_and_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geoaware.federated import simulate as flsim

    def fake(parts: Path, cat: Path, settings: flsim.SimulationSettings, **kw: Any) -> Any:
        assert settings.rounds == 2 and settings.fraction_fit == 0.5 and kw == {"log_file": None}
        rounds = [
            {
                "round": r,
                "federated_accuracy": 0.5,
                "centralised_accuracy": 0.75,
                "federated_top5": 0.625,
                "centralised_top5": 0.875,
                "train_loss": 1.0,
            }
            for r in (1, 2)
        ]
        return {"clients": 3, "classes": 2, "rows_train": 8, "rows_heldout": 2, "model": "softmax",
                "initial_accuracy": 0.25, "per_round": rounds,
                "baselines": {"nearest_neighbours": {"top1_acc": 0.375, "top5_acc": 1.0}}}  # fmt: skip

    monkeypatch.setattr(flsim, "simulate_fedavg", fake)
    args = ["fl", "simulate", str(tmp_path), "--catalog", "c.parquet", "--rounds", "2"]
    result = CliRunner().invoke(_cli(), [*args, "--fraction-fit", "0.5"])
    assert result.exit_code == 0, result.output
    assert "FedAvg of softmax, 3 clients" in result.stdout
    for figure in ("75.0%", "62.5%", "87.5%", "37.5%", "nearest_neighbours"):
        assert figure in result.stdout
    result = CliRunner().invoke(_cli(), [*args, "--fraction-fit", "1.5"])
    assert isinstance(result.exception, BuildError)
    assert "fraction_fit must be in (0, 1]" in str(result.exception)


def test_load_task_reports_dropped_rows(tmp_path: Path) -> None:
    from geoaware.federated.simulate import load_task

    table = _catalog(40)
    cat, parts = _partition_folder(tmp_path, table)
    lat = table.column("lat").to_numpy().copy()
    lat[:5] = np.nan
    write_catalog(table.set_column(2, "lat", pa.array(lat)), cat)
    task = load_task(parts, cat, holdout=0.25, seed=0)
    assert task.dropped["no_location"] == 5
    assert len(task.y) == 35 and task.x.shape == (35, 4)
    assert task.classes == ["Label 0", "Label 1", "Label 2"]
    with pytest.raises(BuildError, match="no partitions.parquet"):
        load_task(tmp_path / "nothing", cat)


def test_fl_simulate_prior_model_real_flower(tmp_path: Path) -> None:
    """The prior network of `prior train`, FedAvg over 3 users, with top-5 and baselines."""
    import orjson
    import ray

    pytest.importorskip("torch")
    cat, parts = _partition_folder(tmp_path, _catalog())
    run = tmp_path / "run"
    args = ["fl", "simulate", str(parts), "--catalog", str(cat), "--model", "prior", "--rounds",
            "3", "--local-epochs", "4", "--lr", "0.005", "--seed", "3", "--out", str(run), "--name", "p"]  # fmt: skip
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    doc = orjson.loads((run / "p.federated.json").read_bytes())
    report = doc["simulation"]
    assert report["model"] == "prior" and report["settings"]["seed"] == 3
    assert report["model_settings"]["width"] == 256 and report["model_settings"]["lr"] == 0.005
    # ~80 training rows per label: prior train's auto recipe is the published one
    assert report["recipe"]["name"] == "published" and report["recipe"]["asked"] == "auto"
    assert report["model_settings"]["encoding"] == "wrap"
    assert (
        report["partitioning"] == "by user"
        and "(prior, published recipe, batch 2048, shared Adam moments)" in doc["source"]
    )
    assert sum(report["client_sizes"]) == report["rows_train"] and len(report["client_sizes"]) == 3
    final = report["final"]
    # three far-apart clusters, three labels: the prior learns them, federated and central
    assert final["federated_accuracy"] > 0.9 and final["centralised_accuracy"] > 0.9
    assert final["federated_top5"] == final["centralised_top5"] == 1.0  # 3 labels < 5
    assert set(report["baselines"]) == {
        "frequency", "nearest_neighbours", "grid_histogram", "kernel_density"
    }  # fmt: skip
    assert report["baselines"]["nearest_neighbours"]["top1_acc"] > 0.9
    assert report["moments"] == "shared" and report["batch_size"] == 2048
    assert "[ROUND 3/3]" in (run / "p.flower.log").read_text()
    # the run folder is one that `geoaware report` reads and shows
    from geoaware.report.html import build_report, read_runs

    (shown,) = read_runs(run)
    assert (
        shown.kind == "federated" and shown.summary["fed_top1_acc"] == final["federated_accuracy"]
    )
    assert [f.name for f in shown.figures] == ["p.accuracy_by_round.png", "p.client_sizes.png"]
    assert [t.title for t in shown.tables][:1] == ["accuracy by round"]
    assert len(shown.tables[0].rows) == 3
    html = build_report(run, run / "report.html").read_text()
    assert "Federated training" in html and "client sizes" in html
    assert html.count("data:image/png;base64") == 2
    assert "top-5" in result.stdout and "nearest_neighbours" in result.stdout
    assert not ray.is_initialized()


def test_flmodels_prior_weights_round_trip() -> None:
    """Weights leave and re-enter the prior network unchanged; fit is seeded."""
    from geoaware.federated.models import PriorModel
    from geoaware.priors import PriorConfig

    m = PriorModel(3, PriorConfig(width=8, blocks=1, batch_size=16, seed=1))
    w0 = m.initial()
    assert all(np.array_equal(a, b) for a, b in zip(w0, m.initial(), strict=True))
    x = m.features(np.array([10.0, -30.0, 50.0] * 10), np.array([0.0, 90.0, -90.0] * 10))
    y = np.array([0, 1, 2] * 10)
    s0 = m.scores(w0, x)
    assert s0.shape == (30, 3)
    w1, loss1 = m.fit(w0, x, y, epochs=2, seed=[1, 2])
    w2, loss2 = m.fit(w0, x, y, epochs=2, seed=[1, 2])
    assert loss1 == loss2 and all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    assert not np.allclose(m.scores(w1, x), s0)
    with pytest.raises(BuildError, match="full loss"):
        PriorModel(3, PriorConfig(loss="ssdl"))


def test_fl_simulate_embedding_head_real_flower(tmp_path: Path) -> None:
    """A linear head on image embeddings: the vectors, not the location, carry the label here."""
    import orjson

    from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings

    table = _catalog()
    # labels drawn independently of the three location clusters: location alone cannot tell
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 3, table.num_rows)
    table = table.set_column(
        table.schema.get_field_index("label_name"), "label_name",
        pa.array([f"Label {x}" for x in lab]),
    )  # fmt: skip
    cat, parts = _partition_folder(tmp_path, table)
    vectors = np.eye(3)[lab] * 2.0 + rng.normal(0, 0.3, (table.num_rows, 3))
    emb = write_embeddings(
        tmp_path / "emb.parquet", table.column("image_id").to_pylist()[::-1], vectors[::-1],
        EmbeddingInfo("toy", 3),
    )  # fmt: skip
    run = tmp_path / "run"
    args = ["fl", "simulate", str(parts), "--catalog", str(cat), "--model", "head",
            "--embeddings", str(emb), "--with-location", "--rounds", "2", "--local-epochs", "2",
            "--out", str(run), "--name", "h", "--proximal-mu", "0.01", "--json"]  # fmt: skip
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"] == "head" and report["model_settings"]["input_dim"] == 7
    assert report["final"]["federated_accuracy"] > 0.9
    assert report["final"]["centralised_accuracy"] > 0.9
    # the location baselines cannot see the label
    assert report["baselines"]["nearest_neighbours"]["top1_acc"] < 0.6
    assert (run / "h.federated.json").is_file()
    assert report["strategy"] == "fedprox" and report["settings"]["proximal_mu"] == 0.01
    assert "Proximal mu: 0.01" in (run / "h.flower.log").read_text()  # Flower's FedProx ran
    bad = CliRunner().invoke(_cli(), [*args[:5], "--model", "head"])
    assert isinstance(bad.exception, BuildError) and "--embeddings" in str(bad.exception)
    # the run is redone from its recorded settings alone, with the same final figures
    again = CliRunner().invoke(_cli(), ["fl", "rerun", str(run / "h.federated.json"), "--json"])
    assert again.exit_code == 0, again.output
    redo = orjson.loads(again.stdout.strip().splitlines()[-1])
    assert redo["settings"] == report["settings"] and redo["partitions"] == str(parts)
    assert redo["rerun"] == redo["recorded"] and redo["same"] and redo["max_difference"] == 0.0


def test_recorded_settings_of_old_and_broken_run_files(tmp_path: Path) -> None:
    """A prior run recorded before shared moments gets fresh ones back; junk is refused."""
    import orjson

    from geoaware.federated.simulate import recorded_settings

    old = {"simulation": {"partitions": "p", "catalog": "c.parquet", "settings": {
        "model": "prior", "rounds": 10, "batch_size": 32, "gone_setting": 1}}}  # fmt: skip
    f = tmp_path / "old.federated.json"
    f.write_bytes(orjson.dumps(old))
    parts, catalog, settings, final = recorded_settings(f)
    assert final == {}  # none recorded
    assert (parts, catalog, settings.rounds, settings.moments) == ("p", "c.parquet", 10, "fresh")
    (tmp_path / "junk.federated.json").write_text("{}")
    with pytest.raises(BuildError, match="not a run file of `fl simulate --out`"):
        recorded_settings(tmp_path / "junk.federated.json")


def test_train_softmax_proximal_term_holds_weights_near_the_start() -> None:
    from geoaware.federated.simulate import train_softmax

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    w0 = np.zeros((3, 2))
    kw: dict[str, Any] = {"epochs": 5, "lr": 0.1, "batch_size": 8}
    free, _ = train_softmax(w0, x, y, rng=np.random.default_rng(1), **kw)
    held, _ = train_softmax(w0, x, y, rng=np.random.default_rng(1), mu=5.0, **kw)
    same, _ = train_softmax(w0, x, y, rng=np.random.default_rng(1), mu=0.0, **kw)
    assert np.array_equal(free, same)
    assert np.linalg.norm(held - w0) < 0.5 * np.linalg.norm(free - w0)


# ---------------------------------------------------------------------------------------------
def test_fl_prior_recipe_is_chosen_as_prior_train_chooses_it() -> None:
    """auto: small-data below a median of 50 training rows per class, published from 50 up."""
    from geoaware.federated.simulate import SimulationSettings
    from geoaware.priors.config import SMALL_DATA_BELOW

    few = np.repeat(np.arange(40), 7)  # 7 rows per class, fg_geo-like
    many = np.repeat(np.arange(3), SMALL_DATA_BELOW)
    small = SimulationSettings(model="prior", seed=4).make_model(40, few)
    assert small.recipe.name == "small-data" and small.config.encoding == "fourier"  # type: ignore[attr-defined]
    assert small.config.seed == 4 and small.config.lr == 5e-3  # type: ignore[attr-defined]
    assert "median 7 observations per class over 40 classes" in small.recipe.reason  # type: ignore[attr-defined]
    big = SimulationSettings(model="prior", lr=0.01).make_model(3, many)
    assert big.recipe.name == "published" and big.config.encoding == "wrap"  # type: ignore[attr-defined]
    assert big.config.lr == 0.01  # type: ignore[attr-defined]  # --lr wins over the recipe
    asked = SimulationSettings(model="prior", recipe="published").make_model(40, few)
    assert asked.recipe.name == "published" and asked.recipe.asked == "published"  # type: ignore[attr-defined]
    with pytest.raises(BuildError, match="recipe must be auto, published or small-data"):
        SimulationSettings(model="prior", recipe="tiny")


def test_prior_model_learning_rate_decays_across_rounds() -> None:
    """A client in a later round starts from prior train's decayed rate, not the first one."""
    from geoaware.federated.models import PriorModel
    from geoaware.priors import PriorConfig

    x_lat, x_lon = np.array([10.0, -30.0, 50.0] * 10), np.array([0.0, 90.0, -90.0] * 10)
    y = np.array([0, 1, 2] * 10)
    decaying = PriorModel(3, PriorConfig(width=8, blocks=1, batch_size=16, lr_decay=0.5),
                          moments="fresh")  # fmt: skip
    x = decaying.features(x_lat, x_lon)
    w0 = decaying.initial()
    step = [np.abs(a - b).sum() for a, b in zip(
        decaying.fit(w0, x, y, epochs=1, seed=[0])[0], w0, strict=True)]  # fmt: skip
    late = [np.abs(a - b).sum() for a, b in zip(
        decaying.fit(w0, x, y, epochs=1, seed=[0], start_epoch=6)[0], w0, strict=True)]  # fmt: skip
    assert sum(late) < 0.1 * sum(step)  # lr * 0.5**6
    flat = PriorModel(
        3, PriorConfig(width=8, blocks=1, batch_size=16, lr_decay=1.0), moments="fresh"
    )
    a, _ = flat.fit(w0, x, y, epochs=1, seed=[0])
    b, _ = flat.fit(w0, x, y, epochs=1, seed=[0], start_epoch=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_prior_model_keeps_its_adam_state_when_given_one() -> None:
    """The centralised run is one optimisation: with ``state`` the second call continues
    Adam's moments (prior train's epochs); without it every call starts afresh (a client)."""
    from geoaware.federated.models import PriorModel
    from geoaware.priors import PriorConfig

    m = PriorModel(3, PriorConfig(width=8, blocks=1, batch_size=64, lr_decay=1.0,
                                  max_per_class=1000), moments="fresh")  # fmt: skip
    lat, lon = np.array([10.0, -30.0, 50.0] * 10), np.array([0.0, 90.0, -90.0] * 10)
    x, y = m.features(lat, lon), np.array([0, 1, 2] * 10)
    w0 = m.initial()
    state: dict[str, Any] = {}
    w1, _ = m.fit(w0, x, y, epochs=1, seed=[0], state=state)
    assert "adam" in state
    kept, _ = m.fit(w1, x, y, epochs=1, seed=[0], start_epoch=1, state=state)
    fresh, _ = m.fit(w1, x, y, epochs=1, seed=[0], start_epoch=1)
    assert not all(np.allclose(a, b) for a, b in zip(kept, fresh, strict=True))
    again, _ = m.fit(w1, x, y, epochs=1, seed=[0], start_epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(fresh, again, strict=True))


def test_prior_model_shares_adams_moments_through_the_weights() -> None:
    """With shared moments the weight list carries Adam's moments and step count: a client
    continues the optimiser state it is sent, and averaging the lists averages the moments."""
    from geoaware.federated.models import PriorModel
    from geoaware.priors import PriorConfig

    config = PriorConfig(width=8, blocks=1, batch_size=10, lr_decay=1.0, max_per_class=1000)
    shared, fresh = PriorModel(3, config), PriorModel(3, config, moments="fresh")
    lat, lon = np.array([10.0, -30.0, 50.0] * 10), np.array([0.0, 90.0, -90.0] * 10)
    x, y = shared.features(lat, lon), np.array([0, 1, 2] * 10)
    w0 = shared.initial()
    n = len(fresh.initial())
    assert len(w0) == 3 * n + 1 and float(w0[-1][0]) == 0.0
    assert all(not a.any() for a in w0[n:])  # zero moments before the first step
    w1, _ = shared.fit(w0, x, y, epochs=1, seed=[0])
    assert float(w1[-1][0]) == 3.0 and all(a.any() for a in w1[n : 2 * n])  # 30 rows, batch 10
    w2, _ = shared.fit(w1, x, y, epochs=1, seed=[1])
    assert float(w2[-1][0]) == 6.0  # the step count continues
    # the same parameters with the moments dropped: a fresh Adam takes another path
    f2, _ = fresh.fit(w1[:n], x, y, epochs=1, seed=[1])
    assert not all(np.allclose(a, b) for a, b in zip(w2[:n], f2, strict=True))
    # from the start, shared and fresh agree (zero moments are Adam's own start)
    s1, f1 = (
        shared.fit(w0, x, y, epochs=1, seed=[0])[0],
        fresh.fit(w0[:n], x, y, epochs=1, seed=[0])[0],
    )
    assert all(np.array_equal(a, b) for a, b in zip(s1[:n], f1, strict=True))
    assert np.array_equal(shared.scores(w2, x), fresh.scores(w2[:n], x))
    with pytest.raises(BuildError, match="moments must be shared or fresh"):
        PriorModel(3, config, moments="local")


def test_heldout_accuracy_in_chunks_matches_all_at_once() -> None:
    from geoaware.federated.models import SoftmaxModel, Weights, topk_accuracy
    from geoaware.federated.simulate import heldout_accuracy

    rng = np.random.default_rng(0)
    m = SoftmaxModel(9)
    w: Weights = [rng.normal(size=(5, 9))]
    x, y = rng.normal(size=(1001, 4)), rng.integers(0, 9, 1001)
    whole = topk_accuracy(m.scores(w, x), y)
    chunked = heldout_accuracy(m, w, x, y, chunk=64)
    assert chunked.keys() == whole.keys()
    assert all(abs(chunked[k] - whole[k]) < 1e-12 for k in whole)
    assert 0.05 < whole["top1_acc"] < whole["top5_acc"] < 1.0


def _fake_report(parts: str, scheme: str, fed: float, central: float) -> dict[str, Any]:
    rounds = [
        {"round": r, "federated_accuracy": fed * r / 2, "centralised_accuracy": central * r / 2,
         "federated_top5": 2 * fed * r / 2, "centralised_top5": 2 * central * r / 2,
         "train_loss": 1.0 / r, "seconds": 3.0}
        for r in (1, 2)
    ]  # fmt: skip
    return {"partitions": parts, "partitioning": scheme, "model": "prior", "rows_heldout": 100,
            "clients": 4, "rounds": 2, "client_sizes": [1, 5, 9, 40], "per_round": rounds,
            "recipe": {"name": "small-data"}, "strategy": "fedavg",
            "baselines": {"nearest_neighbours": {"top1_acc": 0.1, "top5_acc": 0.3}}}  # fmt: skip


def test_report_compares_federated_runs_across_partitionings(tmp_path: Path) -> None:
    """One report, one summary row per partitioning: fed, central, the gap, client sizes."""
    from geoaware.federated.report import write_federated_run
    from geoaware.report.html import build_report, read_runs

    run = tmp_path / "run"
    write_federated_run(_fake_report("parts-cell", "by cell (h3:2)", 0.02, 0.10), run, "cell")
    write_federated_run(_fake_report("parts-d1", "Dirichlet (alpha 1)", 0.08, 0.10), run, "d1")
    runs = {r.name: r for r in read_runs(run)}
    assert runs["cell"].source == "parts-cell: by cell (h3:2) (prior, small-data recipe)"
    assert runs["cell"].summary["fed_minus_central_top1_acc"] == pytest.approx(-0.08)
    assert runs["d1"].summary["fed_minus_central_top5_acc"] == pytest.approx(-0.04)
    median = runs["d1"].summary["median_client"]
    assert median == 7 and isinstance(median, int)  # whole rows print as 7, not 7.0
    assert runs["d1"].summary["largest_client"] == 40
    html = build_report(run, run / "report.html").read_text()
    summary = html[html.index('id="summary-federated"') :].split("</section>")[0]
    assert "fed − central" in summary and "median client" in summary
    # the smallest cost is the best value of the gap column
    assert "<strong>-2.0%</strong>" in summary and "-8.0%" in summary
    assert html.count("data:image/png;base64") == 4  # accuracy by round + sizes, per run


def test_fl_command_is_registered_on_the_geoaware_cli() -> None:
    from geoaware.cli import app

    result = CliRunner().invoke(app, ["fl", "simulate", "--help"])
    assert result.exit_code == 0, result.output
    assert "--recipe" in result.stdout and "--no-compare" in result.stdout


def test_fl_simulate_without_the_comparison_real_flower(tmp_path: Path) -> None:
    """--no-compare (the timing runs at scale): no centralised run, no baselines; the run
    document still renders, with the seconds of each round."""
    import orjson

    from geoaware.construct.keys import unit_hash

    table = _catalog(90)
    # a fourth user whose one image is held out: a client with no training row
    lone = next(f"lone{i}" for i in range(100) if unit_hash([f"lone{i}"], 0)[0] < 0.3)
    extra = {**table.slice(0, 1).to_pydict(), "image_id": [lone], "user_id": ["u9"]}
    table = pa.concat_tables([table, pa.table(extra, schema=table.schema)])
    cat, parts = _partition_folder(tmp_path, table)
    run = tmp_path / "run"
    args = ["fl", "simulate", str(parts), "--catalog", str(cat), "--rounds", "2",
            "--no-compare", "--holdout", "0.3", "--fraction-fit", "0.9", "--out", str(run),
            "--name", "n", "--json"]  # fmt: skip
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["baselines"] == {} and report["centralised_seconds"] is None
    assert report["final"]["centralised_accuracy"] is None
    assert report["partitioning"] == "by user" and report["recipe"] is None
    assert all(r["seconds"] > 0 for r in report["per_round"])
    assert report["seconds_per_round"] == pytest.approx(
        sum(r["seconds"] for r in report["per_round"]) / 2
    )
    assert 0.2 < report["rows_heldout"] / 91 < 0.4
    assert report["clients"] == 4 and report["client_sizes"][3] == 0
    doc = orjson.loads((run / "n.federated.json").read_bytes())
    assert doc["summary"]["fed_minus_central_top1_acc"] is None
    # round(4 clients * 0.9) = 4 clients a round (Flower's own count gives 3), the empty one too
    assert (run / "n.flower.log").read_text().count("Sampled 4 nodes (out of 4)") == 2


def test_centralised_budget_matches_the_sampled_clients() -> None:
    """With client sampling, each centralised round trains on the sampled share of the rows
    (the same examples as a federated round), drawn afresh; without it, on all of them."""
    import dataclasses

    from geoaware.federated.models import SoftmaxModel
    from geoaware.federated.simulate import (
        FlTask,
        SimulationSettings,
        _centralised,
        round_partitions,
    )

    seen: list[np.ndarray] = []

    class Recording(SoftmaxModel):
        def fit(self, weights: Any, x: Any, y: Any, **kw: Any) -> Any:
            seen.append(np.asarray(x[:, 0]).copy())
            return super().fit(weights, x, y, **kw)

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, 4))
    task = FlTask(
        x=x, lat=np.zeros(n), lon=np.zeros(n), image_ids=np.arange(n).astype(str).astype(object),
        y=rng.integers(0, 3, n), partition=np.arange(n) % 8, heldout=np.arange(n) % 5 == 0,
        classes=["a", "b", "c"], num_partitions=8,
    )  # fmt: skip
    s = SimulationSettings(rounds=3, fraction_fit=0.25)
    out = _centralised(Recording(3), x, task, s)
    assert len(out) == 3 and [len(v) for v in seen] == [80, 80, 80]  # 2 of 8 clients: 320 / 4
    assert not np.array_equal(np.sort(seen[0]), np.sort(seen[1]))  # a fresh draw each round
    for r, got in enumerate(seen, start=1):  # the very rows of the clients the round trains
        clients = round_partitions(8, 2, s.seed, r)
        want = x[~task.heldout & np.isin(task.partition, clients), 0]
        assert np.array_equal(np.sort(got), np.sort(want))
    seen.clear()
    _centralised(Recording(3), x, task, dataclasses.replace(s, fraction_fit=1.0))
    assert [len(v) for v in seen] == [320, 320, 320]


def test_fl_simulate_with_client_sampling_is_reproducible(tmp_path: Path) -> None:
    """Flower's node ids are random in every simulation, so its own sample of clients is too:
    the server draws the round's partitions from the seed and averages the replies in
    partition order, and two runs give the same figures to the last digit."""
    pytest.importorskip("flwr.simulation")
    from geoaware.federated.simulate import SimulationSettings, simulate_fedavg

    cat, parts = _partition_folder(tmp_path, _catalog(240, users=12, seed=3))
    s = SimulationSettings(rounds=3, fraction_fit=0.25, seed=4)
    first, second = simulate_fedavg(parts, cat, s), simulate_fedavg(parts, cat, s)
    assert first["clients"] == 12
    keys = ["federated_accuracy", "federated_top5", "centralised_accuracy", "train_loss"]
    figures = [[r[k] for k in keys] for r in first["per_round"]]
    assert figures == [[r[k] for k in keys] for r in second["per_round"]]
    assert len({r["train_loss"] for r in first["per_round"]}) == 3
