"""Real photos, end to end through the CLI: embed -> geolocate fit -> predict -> eval geo.

The gallery is the reference photos with a known location: the six OSV-5M street photos that
``select.csv`` locates (India, Senegal, England, Norway, Utah, Morocco) and the nine EXIF-tagged
photos from Arezzo. The queries are held-out crops of three of the street photos, re-encoded
as JPEG: the k-NN geolocator over EfficientNet-Lite0 embeddings must put each within 1 km of
its source, and the overlap report must say that every query sits on a gallery location,
which ``--exclude-within 1`` then removes.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import SHARED_DATA

pytest.importorskip("faiss")
pytest.importorskip("efficientnet_lite_pytorch")

QUERIES = ("517681129360654.jpg", "743171673023530.jpg", "827026111505364.jpg")


def _run(args: list[str]) -> dict[str, Any]:
    from geoaware.cli import app

    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    from geoaware.catalog import write_catalog

    base = tmp_path_factory.mktemp("image-geolocation")
    root = base / "images"
    root.mkdir()
    rows: list[tuple[str, float, float, str]] = []
    with open(SHARED_DATA / "osv5m" / "images_manifest.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            if rec["true_lat"]:
                os.symlink(SHARED_DATA / "osv5m" / "images" / rec["file"], root / rec["file"])
                rows.append((rec["file"], float(rec["true_lat"]), float(rec["true_lon"]), "train"))
    with open(SHARED_DATA / "exif_gps_samples" / "manifest_from_exif.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            os.symlink(SHARED_DATA / "exif_gps_samples" / rec["file"], root / rec["file"])
            rows.append((rec["file"], float(rec["lat"]), float(rec["lon"]), "train"))
    where = {name: (lat, lon) for name, lat, lon, _ in rows}
    for name in QUERIES:  # a held-out crop: 85 % of the frame, shifted, smaller, re-encoded
        img = Image.open(root / name).convert("RGB")
        w, h = img.size
        crop = img.crop((int(w * 0.10), int(h * 0.05), int(w * 0.95), int(h * 0.90)))
        crop = crop.resize((crop.width * 4 // 5, crop.height * 4 // 5))
        crop.save(root / f"crop-{name}", "JPEG", quality=80)
        rows.append((f"crop-{name}", *where[name], "test"))
    names, lats, lons, splits = zip(*rows, strict=True)
    catalog = pa.table(
        {
            "source": ["photos"] * len(rows),
            "image_id": [n.removesuffix(".jpg") for n in names],
            "file_name": list(names),
            "lat": list(lats),
            "lon": list(lons),
            "split": list(splits),
        }
    )
    write_catalog(catalog, base / "catalog.parquet")
    return {"dir": base, "root": root, "catalog": base / "catalog.parquet", "n": len(rows)}


def test_embed_fit_predict_eval_chain(chain: dict[str, Any]) -> None:
    d, cat = chain["dir"], str(chain["catalog"])
    emb = _run(["embed", cat, "--images", str(chain["root"]), "--out", str(d / "emb"),
                "--workers", "1", "--batch", "8"])  # fmt: skip
    assert emb["embedded"] == chain["n"] and emb["failed"] == 0
    fit = _run(["geolocate", "fit", str(d / "emb"), "--catalog", cat, "--split", "train",
                "--method", "knn", "--k", "1", "--out", str(d / "model")])  # fmt: skip
    assert fit["fitted_on"] == 15
    pred = _run(["geolocate", "predict", str(d / "model"), str(d / "emb"), "--catalog", cat,
                 "--split", "test", "--out", str(d / "pred.csv"), "--evaluate"])  # fmt: skip
    overlap = pred["overlap"]["training"]  # every query sits on a gallery photo's spot
    assert overlap["within"] == len(QUERIES) and overlap["fraction"] == 1.0
    assert pred["summary"]["acc_1km"] == 1.0
    ev = _run(["eval", "geo", str(d / "pred.csv"), "--truth", cat])
    assert ev["n"] == len(QUERIES) and ev["acc_1km"] == 1.0

    # the honest number: without gallery photos within 1 km of a query, none is placed there
    _run(["geolocate", "predict", str(d / "model"), str(d / "emb"), "--catalog", cat,
          "--split", "test", "--exclude-within", "1", "--out", str(d / "pred-ex.csv")])  # fmt: skip
    ev = _run(["eval", "geo", str(d / "pred-ex.csv"), "--truth", cat])
    assert ev["n"] == len(QUERIES) and ev["acc_1km"] == 0.0
