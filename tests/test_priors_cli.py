from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("torch")
import typer
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.priors.commands import app as stage_app
from geoaware.sources.fg_geo_yfcc import FgGeoYfcc
from tests.conftest import SHARED_DATA, command_app

runner = CliRunner()


def _app() -> typer.Typer:
    return command_app(stage_app)


@pytest.fixture(scope="module")
def fg_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    table = FgGeoYfcc(SHARED_DATA).read()
    rng = np.random.default_rng(0)
    split = np.where(rng.random(table.num_rows) < 0.8, "train", "test")
    names = table.column("label_name").to_numpy(zero_copy_only=False).astype(str)
    _, codes = np.unique(names, return_inverse=True)
    table = table.append_column("split", pa.array(split)).append_column(
        "label", pa.array(codes.astype(np.int32))
    )
    return write_catalog(table, tmp_path_factory.mktemp("fg") / "catalog.parquet")


@pytest.fixture(scope="module")
def fg_model(
    fg_catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("fgm") / "prior"
    args = ["prior", "train", str(fg_catalog), "--out", str(out), "--split", "train",
            "--width", "32", "--blocks", "1", "--epochs", "2", "--batch-size", "4096",
            "--recipe", "small-data", "--json"]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_train_reports_rows(fg_model: tuple[Path, dict[str, Any]]) -> None:
    model, summary = fg_model
    assert summary["rows"] == 36_143 and 28_000 < summary["used"] < 30_000  # the train split
    assert summary["dropped"] == {"no_location": 0, "no_label": 0}
    assert summary["classes"] > 4000 and summary["config"]["label_column"] == "label_name"
    meta = json.loads((model / "config.json").read_text())
    assert len(meta["vocabulary"]) == summary["classes"] and meta["config"]["width"] == 32
    # the small-data recipe's defaults, with the explicitly given batch size winning
    assert meta["config"]["encoding"] == "fourier" and meta["config"]["lr"] == 5e-3
    assert meta["config"]["batch_size"] == 4096 and meta["config"]["dropout"] == 0.0


def test_predict(fg_model: tuple[Path, dict[str, Any]]) -> None:
    model, _ = fg_model
    args = ["prior", "predict", str(model), "--lat", "37.8", "--lon", "-122.4", "--top", "3"]
    r = runner.invoke(_app(), [*args, "--json"])
    assert r.exit_code == 0, r.output
    top = json.loads(r.stdout)["top"]
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"]
    bad = runner.invoke(_app(), [*args, "--date", "2017-02-30"])
    assert bad.exit_code != 0 and "2017-02-30" in str(bad.exception)


def test_eval_and_map(
    fg_model: tuple[Path, dict[str, Any]], fg_catalog: Path, tmp_path: Path
) -> None:
    model, _ = fg_model
    r = runner.invoke(_app(), ["prior", "eval", str(model), str(fg_catalog), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    methods = [row["method"] for row in report["rows"]]
    assert methods == [
        "prior",
        "frequency",
        "nearest_neighbours",
        "grid_histogram",
        "kernel_density",
    ]
    assert all(0 <= row["top5_acc"] <= 1 and 0 < row["map"] <= 1 for row in report["rows"])
    assert report["n"] > 6000
    png = tmp_path / "range.png"
    r = runner.invoke(
        _app(),
        ["prior", "map", str(model), "--label", "Vireo griseus", "--out", str(png), "--json"],
    )
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:4] == b"\x89PNG" and json.loads(r.stdout)["points"] >= 1
    log_png = tmp_path / "range-log.png"
    r = runner.invoke(
        _app(),
        ["prior", "map", str(model), "--label", "Vireo griseus", "--scale", "log",
         "--out", str(log_png), "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    drawn = json.loads(r.stdout)
    assert drawn["colour_max"] == drawn["max_prob"] and log_png.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(
        _app(),
        ["prior", "map", str(model), "--label", "Vireo grizeus", "--out", str(png), "--overwrite"],
    )
    assert r.exit_code != 0 and "did you mean 'Vireo griseus'" in str(r.exception)


def test_fuse_cli(fg_model: tuple[Path, dict[str, Any]], fg_catalog: Path, tmp_path: Path) -> None:
    from geoaware.catalog import read_catalog

    model, _ = fg_model
    cat = read_catalog(fg_catalog)
    test = cat.filter(pc.equal(cat.column("split"), "test"))
    vocab = json.loads((model / "config.json").read_text())["vocabulary"]
    names = cat.column("label_name").to_pylist()
    id_of = dict(zip(names, cat.column("label").to_pylist(), strict=True))
    class_ids = np.array([id_of[v] for v in vocab])
    column_of = {int(k): j for j, k in enumerate(class_ids)}
    n, c = test.num_rows, len(vocab)
    rng = np.random.default_rng(0)
    scores = rng.random((n, c)).astype(np.float32)
    truth = [column_of.get(int(t), -1) for t in test.column("label").to_pylist()]
    for i, j in enumerate(truth):
        if j >= 0:
            scores[i, j] += rng.random() * 3  # a noisy classifier
    scores /= scores.sum(axis=1, keepdims=True)
    ids = np.array(test.column("image_id").to_pylist())
    np.savez(tmp_path / "scores.npz", image_id=ids, scores=scores, class_ids=class_ids)
    args = ["prior", "fuse", str(model), "--predictions", str(tmp_path / "scores.npz"),
            "--catalog", str(fg_catalog), "--out", str(tmp_path / "fused.parquet"),
            "--kaggle", str(tmp_path / "sub.csv"), "--split", "test"]  # fmt: skip
    r = runner.invoke(_app(), [*args, "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["images"] == n and res["located"] == n
    first = res["rows"][0]
    assert first["group"] == "all" and first["n"] == n
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert (
        lines[0] == "id,predicted"
        and len(lines) == n + 1
        and len(lines[1].split(",")[1].split()) == 5
    )
    assert runner.invoke(_app(), [*args, "--overwrite"]).exit_code == 0


def test_help_lists_json_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for cmd in ("train", "predict", "eval", "fuse", "map"):
        r = runner.invoke(_app(), ["prior", cmd, "--help"], terminal_width=200)
        assert r.exit_code == 0 and "JSON keys" in r.output and "Example" in r.output
