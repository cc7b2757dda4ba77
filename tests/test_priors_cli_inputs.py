"""The prior commands on a small real catalog: the auto recipe, twin-free evaluation, bad
inputs (one line naming the file), map scaling and bounds, fusion without class ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("torch")
import typer
from click.testing import Result
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.priors.commands import app as stage_app
from tests.conftest import command_app

from .priors_helpers import synthetic_world

runner = CliRunner()
TINY = ["--width", "16", "--blocks", "1", "--epochs", "2"]


def _app() -> typer.Typer:
    return command_app(stage_app)


def _run(*args: str) -> Result:
    return runner.invoke(_app(), ["prior", *args])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("world")
    table = synthetic_world(60)
    # a test point placed exactly on a training point of its class: one twin
    train_rows = table.filter(pc.equal(table.column("split"), "train"))
    first = train_rows.slice(0, 1)
    twin = first.set_column(1, "split", pa.array(["test"])).set_column(
        2, "image_id", pa.array(["twin"])
    )
    cat = write_catalog(pa.concat_tables([table, twin]), d / "world.parquet")
    model = d / "model"
    r = _run("train", str(cat), "--out", str(model), "--split", "train", *TINY, "--json")
    assert r.exit_code == 0, r.output
    return cat, model


def test_train_auto_recipe_is_reported_and_saved(world: tuple[Path, Path]) -> None:
    cat, model = world
    meta = json.loads((model / "config.json").read_text())
    recipe = meta["training"]["recipe"]
    # about 48 training points per class: below the threshold, so small-data
    assert recipe["asked"] == "auto" and recipe["name"] == "small-data"
    assert "observations per class over 4 classes" in recipe["reason"]
    assert meta["config"]["encoding"] == "fourier" and meta["config"]["width"] == 16
    r = _run("train", str(cat), "--out", str(model.parent / "m2"), *TINY, "--recipe",
             "published", "--lr", "0.01")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "recipe published (published): asked for explicitly" in r.output
    cfg = json.loads((model.parent / "m2" / "config.json").read_text())["config"]
    assert cfg["encoding"] == "wrap" and cfg["lr"] == 0.01


def test_help_shows_recipe_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    r = _run("train", "--help")
    text = r.output
    assert "options marked [recipe]" in text and text.count("[recipe]") >= 7


def test_eval_twin_free_and_left_out_sentence(world: tuple[Path, Path], tmp_path: Path) -> None:
    cat, model = world
    r = _run("eval", str(model), str(cat), "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    free = rep["twin_free"]
    assert free["km"] == 1.0 and free["twins"] >= 1 and free["n"] + free["twins"] == rep["n"]
    assert [x["method"] for x in free["rows"]] == [x["method"] for x in rep["rows"]]
    assert all(x["n"] == free["n"] for x in free["rows"])
    off = json.loads(_run("eval", str(model), str(cat), "--exclude-within", "0", "--json").stdout)
    assert off["twin_free"] is None
    # a test row of a class the model never saw: said in a sentence, not a dict
    t = pa.table({"source": ["t", "t"], "image_id": ["x", "y"], "split": ["test", "test"], "lat": [40.0, 41.0],
                  "lon": [-100.0, -99.0], "label_name": ["species_0", "nova"]})  # fmt: skip
    other = write_catalog(t, tmp_path / "other.parquet")
    r = _run("eval", str(model), str(other), "--no-baselines")
    assert r.exit_code == 0, r.output
    assert "Left out 1 rows: 1 have a label the model was not trained on." in r.output
    assert "{" not in r.output


def test_predict_rejects_bad_values_and_warns_on_dates(world: tuple[Path, Path]) -> None:
    _, model = world
    for args, hint in ((["--lat", "nan", "--lon", "1"], "--lat"),
                       (["--lat", "1", "--lon", "200"], "--lon"),
                       (["--lat", "1", "--lon", "1", "--top", "-1"], "--top"),
                       (["--lat", "1", "--lon", "1", "--top", "0"], "--top")):  # fmt: skip
        r = _run("predict", str(model), *args)
        assert r.exit_code == 2 and hint in r.output, r.output
    r = _run("predict", str(model), "--lat", "40", "--lon", "-100", "--date", "2017-06-01")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "trained without dates: --date 2017-06-01 is ignored" in text
    assert "on 2017-06-01" not in r.output
    js = _run("predict", str(model), "--lat", "40", "--lon", "-100", "--date", "2017-06-01",
              "--json")  # fmt: skip
    assert json.loads(js.stdout.strip().splitlines()[-1])["date_used"] is False


def test_damaged_files_give_one_line_naming_them(world: tuple[Path, Path], tmp_path: Path) -> None:
    from geoaware.errors import InputFileError
    from geoaware.priors.checkpoint import load_prior
    from geoaware.priors.train import train_prior

    cat, model = world
    data = cat.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"cut\.parquet: not a readable Parquet file"):
        train_prior(cut, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes((model / "config.json").read_bytes())
    for content, problem in ((b"", "empty"), (b"garbage\n", "damaged"),
                             ((model / "model.pt").read_bytes()[:300], "damaged")):  # fmt: skip
        (bad / "model.pt").write_bytes(content)
        with pytest.raises(InputFileError) as info:
            load_prior(bad)
        msg = str(info.value)
        assert msg.startswith(f"{bad / 'model.pt'}: {problem}") and "\n" not in msg, msg


def test_map_scaled_per_map_and_bounds(world: tuple[Path, Path], tmp_path: Path) -> None:
    _, model = world
    png = tmp_path / "m.png"
    r = _run("map", str(model), "--label", "species_0", "--out", str(png),
             "--bounds=-130,20,-70,60", "--step", "4", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["bounds"] == [-130.0, 20.0, -70.0, 60.0] and s["colour_max"] == s["max_prob"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    a = json.loads(_run("map", str(model), "--label", "species_0", "--out", str(png),
                        "--scale", "absolute", "--step", "8", "--overwrite", "--json").stdout)  # fmt: skip
    assert a["colour_max"] == 1.0
    r = _run("map", str(model), "--label", "species_0", "--out", str(tmp_path / "b.png"),
             "--bounds", "5,0,1,1")  # fmt: skip
    assert r.exit_code != 0 and "WEST,SOUTH,EAST,NORTH" in str(r.exception)


def test_fuse_without_label_ids(world: tuple[Path, Path], tmp_path: Path) -> None:
    from geoaware.catalog import read_catalog

    cat, model = world
    table = read_catalog(cat)
    names_only = write_catalog(table.drop_columns(["label"]), tmp_path / "names.parquet")
    test = table.filter(pc.equal(table.column("split"), "test"))
    vocab = json.loads((model / "config.json").read_text())["vocabulary"]
    truth = np.array([vocab.index(v) for v in test.column("label_name").to_pylist()])
    rng = np.random.default_rng(0)
    scores = rng.random((test.num_rows, len(vocab)))
    scores[np.arange(truth.size), truth] += 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    ids = np.array(test.column("image_id").to_pylist())
    np.savez(tmp_path / "dense.npz", image_id=ids, scores=scores)
    r = _run("fuse", str(model), "--predictions", str(tmp_path / "dense.npz"), "--catalog",
             str(names_only), "--out", str(tmp_path / "f.parquet"), "--split", "test", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["classes_by"] == "vocabulary order" and res["rows"][0]["n"] == test.num_rows
    assert res["rows"][0]["top1_image"] > 0.5  # the truth came from the names
    # ranked labels with class ids cannot be matched without ids: the error says what is missing
    top = np.argsort(-scores, axis=1)[:, :3]
    np.savez(tmp_path / "topk.npz", image_id=ids, labels=top + 100,
             scores=np.take_along_axis(scores, top, axis=1))  # fmt: skip
    r = _run("fuse", str(model), "--predictions", str(tmp_path / "topk.npz"), "--catalog",
             str(names_only), "--out", str(tmp_path / "g.parquet"), "--split", "test")  # fmt: skip
    assert r.exit_code != 0
    assert "has no integer 'label' ids" in str(r.exception)
