from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("faiss")
import typer
from click.testing import Result
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.evaluate.geo import evaluate_geo
from geoaware.geolocate.base import PlacePredictions
from geoaware.geolocate.commands import app as stage_app
from geoaware.geolocate.model import load_geolocator, write_predictions
from geoaware.predictions.geo import read_geo_predictions
from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
from tests.conftest import command_app

runner = CliRunner()
CITIES = np.array([[48.85, 2.35], [40.71, -74.0], [-33.87, 151.21], [35.68, 139.69],
                   [-1.29, 36.82], [64.15, -21.94]])  # fmt: skip
GEOAWARE = Path(sys.executable).with_name("geoaware")


def _app() -> typer.Typer:
    return command_app(stage_app)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return doc


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 train + 18 test images around 6 cities; 1 unlocated row, 1 row without a vector."""
    d = tmp_path_factory.mktemp("geoloc")
    rng = np.random.default_rng(0)
    dim = 24
    centres = rng.normal(size=(len(CITIES), dim))
    city = np.concatenate([np.repeat(np.arange(6), 10), np.repeat(np.arange(6), 3)])
    split = ["train"] * 60 + ["test"] * 18
    n = len(city)
    lat = CITIES[city, 0] + 0.2 * rng.normal(size=n)
    lon = CITIES[city, 1] + 0.2 * rng.normal(size=n)
    # test image 0 was taken exactly where training image 0 was (a near-duplicate place)
    lat[60], lon[60] = lat[0], lon[0]
    lat[5] = np.nan  # one training row without a location
    ids = [f"img{i:03d}" for i in range(n)]
    x = centres[city] + 0.2 * rng.normal(size=(n, dim))
    x[60] = x[0] + 0.01  # ... and is nearly the same photo
    catalog = pa.table({"source": ["t"] * n, "image_id": ids, "lat": lat, "lon": lon,
                        "split": split})  # fmt: skip
    write_catalog(catalog, d / "catalog.parquet")
    keep = [i for i in range(n) if i != 7]  # training image 7 has no vector
    write_embeddings(d / "emb.parquet", [ids[i] for i in keep], x[keep],
                     EmbeddingInfo("synthetic", dim=dim, version="1"))  # fmt: skip
    gallery = d / "gallery.csv"
    gallery.write_text("LAT,LON\n" + "".join(f"{a},{b}\n" for a, b in CITIES) + "0.0,0.0\n")
    return {"dir": d, "catalog": d / "catalog.parquet", "emb": d / "emb.parquet",
            "gallery": gallery}  # fmt: skip


def _eval_cli(pred: Path, catalog: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(GEOAWARE), "eval", "geo", str(pred), "--truth", str(catalog), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def test_fit_predict_eval_chain(files: dict[str, Path]) -> None:
    model = files["dir"] / "knn"
    fit = _json(runner.invoke(_app(), [
        "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]),
        "--method", "knn", "--k", "5", "--bandwidth-km", "50", "--out", str(model), "--json"]))  # fmt: skip
    j = fit["join"]
    assert (j["split_rows"], j["no_location"], j["no_embedding"]) == (60, 1, 1)
    assert j["no_location_example"] == "img005" and j["no_embedding_example"] == "img007"
    assert fit["fitted_on"] == 58 and j["embeddings_not_in_rows"] == 18
    assert fit["details"]["config"]["k"] == 5
    pred = files["dir"] / "pred.parquet"
    res = _json(runner.invoke(_app(), [
        "geolocate", "predict", str(model), str(files["emb"]), "--catalog", str(files["catalog"]),
        "--split", "test", "--out", str(pred), "--k", "3", "--evaluate", "--json"]))  # fmt: skip
    assert res["predicted"] == 18 and res["k"] == 3
    assert res["overlap"]["training"]["within"] == 1 and res["overlap"]["training"]["n_query"] == 18
    assert res["summary"]["acc_200km"] == 1.0
    table = pq.read_table(pred)
    assert table.column_names == ["image_id", "pred_lat", "pred_lon", "cand_lat", "cand_lon",
                                  "cand_score"]  # fmt: skip
    assert len(table.column("cand_lat")[0]) == 3
    # `geoaware eval geo PRED --truth CATALOG` reads it with no extra flag, same figures
    ev = _eval_cli(pred, files["catalog"])
    assert ev["n"] == 18 and ev["acc_200km"] == 1.0 and ev["acc_2500km"] == 1.0
    assert ev["median_km"] == pytest.approx(res["summary"]["median_km"])
    assert ev["acc_1km"] == pytest.approx(res["summary"]["acc_1km"])
    assert ev["warnings"][0].startswith("1 of 18 test locations")  # --json carries it too
    # the overlap report travels with the predictions into eval geo, its run and the report
    assert (
        json.loads((files["dir"] / "pred.parquet.overlap.json").read_text())["overlap"]
        == (res["overlap"])
    )
    run = files["dir"] / "run"
    from geoaware.cli import app as main_app

    text = runner.invoke(main_app, ["eval", "geo", str(pred), "--truth", str(files["catalog"]),
                                    "--out", str(run)]).stdout  # fmt: skip
    assert "warning: pred: 1 of 18 test locations (5.6%) lie within 1 km of a training" in text
    doc = json.loads((run / "pred.geo.json").read_text())
    assert doc["warnings"][0].startswith("1 of 18 test locations")
    from geoaware.report.html import build_report

    page = build_report(run, files["dir"] / "report.html").read_text()
    assert '<p class="warning"><strong>Warning:</strong> 1 of 18 test locations' in page
    # predictions changed since: the overlap file no longer describes them and is not used
    pred.write_bytes(pred.read_bytes())  # same bytes: still used
    pq.write_table(pq.read_table(pred).slice(0, 10), pred)
    text = runner.invoke(
        main_app, ["eval", "geo", str(pred), "--truth", str(files["catalog"])]
    ).stdout
    assert "warning" not in text


def test_exclude_within_at_predict_and_fit(files: dict[str, Path]) -> None:
    model = files["dir"] / "knn1"
    _json(runner.invoke(_app(), [
        "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]), "--k", "1",
        "--out", str(model), "--json"]))  # fmt: skip
    pred = files["dir"] / "pred1.csv"
    args = ["geolocate", "predict", str(model), str(files["emb"]), "--catalog",
            str(files["catalog"]), "--out", str(pred), "--evaluate", "--json"]  # fmt: skip
    before = _json(runner.invoke(_app(), args))
    after = _json(runner.invoke(_app(), [*args, "--exclude-within", "1", "--overwrite"]))
    assert before["summary"]["acc_1km"] == pytest.approx(1 / 18)  # the duplicate place is hit
    assert after["excluded"]["removed"] == 1
    assert after["overlap"]["training_after_exclusion"]["within"] == 0
    assert after["summary"]["acc_1km"] == 0.0
    # without --evaluate the command predicts and does not score
    plain = _json(runner.invoke(_app(), [*args[:-2], "--overwrite", "--json"]))
    assert plain["summary"] is None and plain["predicted"] == 18
    no_truth = runner.invoke(_app(), ["geolocate", "predict", str(model), str(files["emb"]),
                                      "--out", str(pred), "--overwrite", "--evaluate"])  # fmt: skip
    assert no_truth.exit_code != 0 and "--evaluate needs --catalog" in no_truth.output
    # the same at fit time: the training image at the test location is removed
    model2 = files["dir"] / "knn2"
    fit = _json(runner.invoke(_app(), [
        "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]), "--k", "1",
        "--out", str(model2), "--exclude-within", "1", "--exclude-near", "test", "--json"]))  # fmt: skip
    assert fit["excluded"]["removed"] == 1 and fit["fitted_on"] == 57
    res = _json(runner.invoke(_app(), [
        "geolocate", "predict", str(model2), str(files["emb"]), "--catalog",
        str(files["catalog"]), "--out", str(pred), "--overwrite", "--json"]))  # fmt: skip
    assert res["overlap"]["training"]["within"] == 0
    # CSV predictions read by the evaluation directly
    preds = read_geo_predictions(pred, truth=pq.read_table(files["catalog"]))
    assert preds.n == 18 and "cand1_lat" in preds.extra.columns
    assert evaluate_geo(preds, hit_rates=False).summary["acc_200km"] == 1.0


def test_gallery_method_with_gallery_file(files: dict[str, Path]) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = files["dir"] / "gal"
        fit = _json(runner.invoke(_app(), [
            "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]),
            "--method", "gallery", "--gallery", str(files["gallery"]), "--epochs", "60",
            "--batch-size", "16", "--option", "hidden=32", "--option", "rff_dim=32",
            "--option", "embed_dim=16", "--option", "image_hidden=0", "--option",
            "sigmas=[1, 4]", "--out", str(model), "--json"]))  # fmt: skip
        assert fit["details"]["gallery_size"] == 7 and fit["details"]["config"]["sigmas"] == [1, 4]
        pred = files["dir"] / "gal.parquet"
        res = _json(runner.invoke(_app(), [
            "geolocate", "predict", str(model), str(files["emb"]), "--catalog",
            str(files["catalog"]), "--out", str(pred), "--overwrite", "--evaluate", "--json"]))  # fmt: skip
        assert set(res["overlap"]) == {"gallery", "training"}
        assert res["summary"]["acc_200km"] >= 0.9  # predictions are the gallery's city centres
    finally:
        torch.set_num_threads(threads)


def test_errors_are_clear(files: dict[str, Path], tmp_path: Path) -> None:
    r = runner.invoke(_app(), ["geolocate", "fit", str(files["emb"]), "--catalog",
                               str(files["catalog"]), "--k", "3", "--epochs", "2",
                               "--out", str(tmp_path / "m")])  # fmt: skip
    assert r.exit_code != 0  # a geoaware error: the top-level app prints it as one line
    assert "option 'epochs' does not apply to method 'knn'" in str(r.exception)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"method": "nope"}')
    with pytest.raises(Exception, match="unknown geolocation method 'nope'"):
        load_geolocator(tmp_path / "bad")
    r = runner.invoke(_app(), ["geolocate", "fit", str(files["emb"]), "--catalog",
                               str(files["catalog"]), "--split", "val", "--out", str(tmp_path / "m")])  # fmt: skip
    assert r.exit_code != 0 and "no row has split 'val'" in str(r.exception)


def test_write_predictions_formats(tmp_path: Path) -> None:
    p = PlacePredictions(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.ones((2, 2)),
                         np.zeros((2, 2)), np.array([[0.6, np.nan], [0.9, 0.1]]))  # fmt: skip
    csv = write_predictions(tmp_path / "p.csv", ["a", "b"], p)
    header = csv.read_text().splitlines()[0]
    assert header.startswith("image_id,pred_lat,pred_lon,cand1_lat,cand1_lon,cand1_score,cand2_")
    pq_file = write_predictions(tmp_path / "p.parquet", ["a", "b"], p)
    assert pq.read_table(pq_file).column("cand_score").to_pylist() == [[0.6, None], [0.9, 0.1]]
    with pytest.raises(ValueError, match="csv or .parquet"):
        write_predictions(tmp_path / "p.txt", ["a", "b"], p)


def test_help_lists_json_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for cmd in ("fit", "predict"):
        r = runner.invoke(_app(), ["geolocate", cmd, "--help"], terminal_width=200)
        assert r.exit_code == 0 and "JSON keys" in r.output and "Example" in r.output


@pytest.mark.slow
def test_cells_method_passes_options_through(files: dict[str, Path]) -> None:
    import importlib.util

    if importlib.util.find_spec("geoaware.geolocate.cellhead") is None:
        pytest.skip("geoaware.geolocate.cellhead not present")
    model = files["dir"] / "cells"
    fit = _json(runner.invoke(_app(), [
        "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]),
        "--method", "cells", "--tau-min", "2", "--tau-max", "12", "--epochs", "30",
        "--batch-size", "16", "--option", "lr=0.01", "--out", str(model), "--json"]))  # fmt: skip
    assert fit["method"] == "cells" and fit["fitted_on"] == 58
    pred = files["dir"] / "cells.csv"
    res = _json(runner.invoke(_app(), [
        "geolocate", "predict", str(model), str(files["emb"]), "--catalog",
        str(files["catalog"]), "--out", str(pred), "--json"]))  # fmt: skip
    assert res["method"] == "cells" and res["predicted"] == 18
    assert _eval_cli(pred, files["catalog"])["n"] == 18


def test_cells_from_a_published_partition_file(files: dict[str, Path], shared_data: Path) -> None:
    """--partitions takes MP-16's published cell file: its cells and their mean locations."""
    import importlib.util

    if importlib.util.find_spec("geoaware.geolocate.cellhead") is None:
        pytest.skip("geoaware.geolocate.cellhead not present")
    from geoaware.geolocate.cells import CellPartition

    cells_file = shared_data / "im2gps" / "geo-cells" / "cells_50_5000.csv"
    model = files["dir"] / "cells-published"
    fit = _json(runner.invoke(_app(), [
        "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]),
        "--method", "cells", "--partitions", str(cells_file), "--epochs", "40",
        "--batch-size", "16", "--option", "lr=0.02", "--out", str(model), "--json"]))  # fmt: skip
    assert fit["method"] == "cells"
    pred = files["dir"] / "cells-published.parquet"
    _json(runner.invoke(_app(), [
        "geolocate", "predict", str(model), str(files["emb"]), "--catalog",
        str(files["catalog"]), "--out", str(pred), "--json"]))  # fmt: skip
    published = CellPartition.from_file(cells_file)
    got = pq.read_table(pred).to_pandas()
    # every prediction is the published mean location of one of the file's 3,298 cells ...
    cell = published.assign(got["pred_lat"].to_numpy(), got["pred_lon"].to_numpy())
    assert (cell >= 0).all()
    assert np.allclose(published.lat[cell], got["pred_lat"]) and len(published) == 3298
    # ... and, the test images being near six cities, mostly the right city's cell
    assert _eval_cli(pred, files["catalog"])["acc_200km"] >= 0.8


def test_fit_usage_error_is_one_line(files: dict[str, Path]) -> None:
    """A bad value the library refuses (k = 0) is one red line and exit 2, not a usage box."""
    done = subprocess.run(
        [str(GEOAWARE), "geolocate", "fit", str(files["emb"]), "--catalog", str(files["catalog"]),
         "--k", "0", "--out", str(files["dir"] / "k0")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "k" in lines[0], done.stderr
