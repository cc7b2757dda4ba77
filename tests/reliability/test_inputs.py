"""Bad input gets one clear line (file, record, field) and exit 2, never a traceback.

Each case starts from a real file of ../shared/data (or the catalog built from one) and
damages it on purpose; every case also checks that the command wrote nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import FG_GEO_ZIP, SHARED_DATA
from tests.reliability.conftest import one_error_line, run

FG_GEO_PATH = "fg_geo_yfcc/yfcc100m_geolocated_inat2017species.csv.zip"


def _truncated(src: Path, dest: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


# --- truncated Parquet truth ----------------------------------------------------------------
def test_submission_check_on_a_truncated_truth(real_catalog: Path, tmp_path: Path) -> None:
    truth = _truncated(real_catalog, tmp_path / "truth.parquet")
    sub = tmp_path / "sub.csv"
    sub.write_text("id,predicted\n1,2 3\n")
    line = one_error_line(run("submission", "check", sub, "--truth", truth))
    assert f"{truth}: not a readable Parquet file" in line


def test_eval_classify_on_a_truncated_truth(real_catalog: Path, tmp_path: Path) -> None:
    truth = _truncated(real_catalog, tmp_path / "truth.parquet")
    pred = tmp_path / "pred.csv"
    pred.write_text("id,predicted\n1,2 3\n")
    line = one_error_line(run("eval", "classify", pred, "--truth", truth))
    assert f"{truth}: not a readable Parquet file" in line


# --- validate: a schema error is one error ----------------------------------------------------
def test_validate_refuses_lat_stored_as_strings(real_catalog: Path, tmp_path: Path) -> None:
    table = pq.read_table(real_catalog)
    i = table.column_names.index("lat")
    bad = tmp_path / "lat_str.parquet"
    pq.write_table(table.set_column(i, "lat", pc.cast(table["lat"], pa.string())), bad)
    line = one_error_line(run("validate", bad, "--json"))
    assert f"{bad}, field 'lat': stored as string; the catalog holds double" in line


def test_validate_refuses_a_catalog_without_lat(real_catalog: Path, tmp_path: Path) -> None:
    bad = tmp_path / "no_lat.parquet"
    pq.write_table(pq.read_table(real_catalog).drop_columns(["lat"]), bad)
    line = one_error_line(run("validate", bad))
    assert f"{bad}, field 'lat': column is missing while lon is present" in line


def test_validate_names_the_bad_part_of_a_folder(real_catalog: Path, tmp_path: Path) -> None:
    table = pq.read_table(real_catalog)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 100), folder / "part-00000.parquet")
    labels = pc.cast(table.slice(100, 100)["label_name"], pa.string())
    pq.write_table(
        table.slice(100, 100).set_column(table.column_names.index("width"), "width", labels),
        folder / "part-00001.parquet",
    )
    line = one_error_line(run("validate", folder))
    assert "part-00001.parquet, field 'width': stored as string" in line


# --- commands that had tracebacks ---------------------------------------------------------------
def test_fetch_with_an_unknown_part(tmp_path: Path) -> None:
    line = one_error_line(run("fetch", "fg_geo_yfcc", "--parts", "bogus", "--dest", tmp_path))
    assert line == "error: fg_geo_yfcc: unknown part(s) bogus; known: csv"
    assert list(tmp_path.iterdir()) == []


def test_stats_map_where_a_file_stands_for_the_folder(real_catalog: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    line = one_error_line(run("stats", real_catalog, "--map", blocker / "map.png"))
    assert str(blocker) in line
    assert blocker.read_text() == "mine"


# --- ingest: a damaged mirror copy is refused ------------------------------------------------------
@pytest.fixture
def damaged_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not FG_GEO_ZIP.is_file():
        pytest.skip(f"{FG_GEO_ZIP} not present")
    mirror = tmp_path / "mirror"
    copy = mirror / FG_GEO_PATH
    copy.parent.mkdir(parents=True)
    data = bytearray(FG_GEO_ZIP.read_bytes())
    # One byte inside the zip's compressed CSV: the zip still opens and may even decode.
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    monkeypatch.setenv("GEOAWARE_MIRROR", str(mirror))
    return copy


def test_ingest_refuses_a_damaged_mirror_copy(damaged_mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "catalog.parquet"
    line = one_error_line(run("ingest", "fg_geo_yfcc", "--root", tmp_path / "data", "--out", out))
    assert f"{damaged_mirror}: sha256 is" in line
    assert "geoaware fetch fg_geo_yfcc" in line
    assert not out.exists()


def test_ingest_hashes_a_file_once_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not FG_GEO_ZIP.is_file():
        pytest.skip(f"{FG_GEO_ZIP} not present")
    from geoaware.sources import download
    from geoaware.sources.fg_geo_yfcc import FgGeoYfcc

    root = tmp_path / "data"
    (root / FG_GEO_PATH).parent.mkdir(parents=True)
    shutil.copy(FG_GEO_ZIP, root / FG_GEO_PATH)
    hashed: list[str] = []
    real = download.file_digest

    def counting(path: Path, algorithm: str) -> str:
        hashed.append(str(path))
        return real(path, algorithm)

    monkeypatch.setattr(download, "file_digest", counting)
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    assert FgGeoYfcc(root).read().num_rows == 36_143
    assert hashed == [str(root / FG_GEO_PATH)]
    FgGeoYfcc(root).read()
    assert len(hashed) == 1  # the second read trusts its own record
    # Same size, new bytes, new mtime: hashed again, and refused.
    data = bytearray((root / FG_GEO_PATH).read_bytes())
    data[1000] ^= 0xFF
    (root / FG_GEO_PATH).write_bytes(bytes(data))
    from geoaware.errors import ChecksumError

    with pytest.raises(ChecksumError, match="sha256 is"):
        FgGeoYfcc(root).read()
    assert len(hashed) == 2


def test_fetch_rehashes_a_file_that_kept_its_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not FG_GEO_ZIP.is_file():
        pytest.skip(f"{FG_GEO_ZIP} not present")
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    target = tmp_path / "data" / FG_GEO_PATH
    target.parent.mkdir(parents=True)
    shutil.copy2(FG_GEO_ZIP, target)
    assert run("fetch", "fg_geo_yfcc", "--dest", tmp_path / "data").exit_code == 0
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    line = one_error_line(run("fetch", "fg_geo_yfcc", "--dest", tmp_path / "data"))
    assert f"{target}: sha256 is" in line


def test_fetch_says_where_it_found_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not FG_GEO_ZIP.is_file():
        pytest.skip(f"{FG_GEO_ZIP} not present")
    monkeypatch.setenv("GEOAWARE_MIRROR", str(SHARED_DATA))
    result = run("fetch", "fg_geo_yfcc", "--dest", tmp_path)
    assert result.exit_code == 0, result.output
    assert f"found in GEOAWARE_MIRROR={SHARED_DATA}" in result.output


# --- geolocate predict refuses before computing ----------------------------------------------------
@pytest.fixture(scope="module")
def knn_model(
    real_catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    pytest.importorskip("faiss")
    from geoaware.geolocate.model import fit_from_files
    from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings

    folder = tmp_path_factory.mktemp("geo")
    ids = pq.read_table(real_catalog, columns=["image_id"]).column(0).to_pylist()[:400]
    vectors = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    info = EmbeddingInfo("test-encoder", dim=16, version="1")
    emb = write_embeddings(folder / "emb.parquet", ids, vectors, info)
    fit_from_files(emb, real_catalog, folder / "model", split=None, k=3)
    other = write_embeddings(
        folder / "emb8.parquet", ids, vectors[:, :8].copy(), EmbeddingInfo("test-encoder", 8)
    )
    return folder / "model", emb, other


def _model_copy(model: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    return copy


def test_predict_refuses_a_model_without_its_embeddings_file(
    knn_model: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, emb, _ = knn_model
    copy = _model_copy(model, tmp_path)
    (copy / "embeddings.json").unlink()
    out = tmp_path / "pred.csv"
    line = one_error_line(run("geolocate", "predict", copy, emb, "--out", out))
    assert f"{copy / 'embeddings.json'}: missing" in line
    assert not out.exists()


def test_predict_refuses_vectors_of_another_dimension(
    knn_model: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, _, other = knn_model
    out = tmp_path / "pred.csv"
    line = one_error_line(run("geolocate", "predict", model, other, "--out", out))
    assert f"{other}, field 'embedding': vectors have 8 dimensions" in line
    assert not out.exists()


def test_predict_checks_the_output_extension_first(
    knn_model: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, emb, _ = knn_model
    out = tmp_path / "pred.txt"
    line = one_error_line(run("geolocate", "predict", model, emb, "--out", out))
    assert str(out) in line and ".csv" in line and ".txt" in line
    assert not out.exists()


def test_predict_on_a_truncated_gallery_file(
    knn_model: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, emb, _ = knn_model
    copy = _model_copy(model, tmp_path)
    _truncated(model / "gallery.npz", copy / "gallery.npz", keep=0.6)
    out = tmp_path / "pred.csv"
    line = one_error_line(run("geolocate", "predict", copy, emb, "--out", out))
    assert f"{copy / 'gallery.npz'}: not a readable .npz file" in line
    assert not out.exists()


# --- scan-images --------------------------------------------------------------------------------
PHOTOS = SHARED_DATA / "exif_gps_samples"


def _photo_with_lat_ref(src: Path, dest: Path, ref: str) -> None:
    with Image.open(src) as img:
        exif = img.getexif()
        gps = exif.get_ifd(0x8825)
        gps[1] = ref
        img.save(dest, exif=exif)


def test_scan_images_unknown_hemisphere_is_a_gps_problem(tmp_path: Path) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} not present")
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo_with_lat_ref(PHOTOS / "DSCN0010.jpg", folder / "x_ref.jpg", "X")
    _photo_with_lat_ref(PHOTOS / "DSCN0010.jpg", folder / "s_ref.jpg", "S")
    result = run("scan-images", folder, "--out", tmp_path / "c.parquet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["with_gps"], summary["invalid_gps"]) == (1, 1)
    rows = {r["image_id"]: r for r in pq.read_table(tmp_path / "c.parquet").to_pylist()}
    assert rows["x_ref.jpg"]["lat"] is None
    problem = json.loads(rows["x_ref.jpg"]["extra"])["gps_problem"]
    assert problem == "GPS latitude ref 'X' is not N or S: the hemisphere is unknown"
    assert rows["s_ref.jpg"]["lat"] == pytest.approx(-43.467448, abs=1e-5)


def test_scan_images_reports_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} not present")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTOS / "DSCN0010.jpg", folder / "ok.jpg")
    shutil.copy(
        os.fsencode(PHOTOS / "DSCN0012.jpg"), os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    )
    result = run("scan-images", folder, "--out", tmp_path / "c.parquet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 1 and summary["corrupt"] == 1
    [bad] = summary["corrupt_files"]
    assert bad["path"] == "caf\\xe9.jpg" and "not valid UTF-8" in bad["reason"]
    # Every name the catalog holds opens again under the scanned folder.
    for name in pq.read_table(tmp_path / "c.parquet").column("file_name").to_pylist():
        assert (folder / name).is_file()


# --- model folders and encoder folders whose settings or arrays a library check refuses ---------
# Each case reached a bare ValueError before (a traceback at the CLI); now one line names the file.
@pytest.fixture(scope="module")
def fitted(
    real_catalog: Path,
    knn_model: tuple[Path, Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """A gallery and a cells model fitted (one epoch) on the k-NN fixture's 400 vectors."""
    pytest.importorskip("torch")
    from geoaware.geolocate.model import fit_from_files

    _, emb, _ = knn_model
    folder = tmp_path_factory.mktemp("fitted")
    gallery: dict[str, Any] = dict(
        epochs=1, hidden=16, rff_dim=16, embed_dim=8, image_hidden=0, batch_size=64
    )
    fit_from_files(emb, real_catalog, folder / "gallery", method="gallery", split=None, **gallery)
    fit_from_files(
        emb, real_catalog, folder / "cells", method="cells", split=None,
        partitions=[(2, 40)], epochs=1,
    )  # fmt: skip
    return {"gallery": folder / "gallery", "cells": folder / "cells", "emb": emb}


def _predict_error(model: Path, emb: Path, tmp_path: Path) -> str:
    out = tmp_path / "pred.csv"
    line = one_error_line(run("geolocate", "predict", model, emb, "--out", out))
    assert not out.exists()
    return line


def _rewrite_npz(path: Path, **changes: np.ndarray) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    with path.open("wb") as fh:
        np.savez(fh, **{**arrays, **changes})


def test_predict_refuses_a_geoclip_gallery_of_another_dimension(
    fitted: dict[str, Path], tmp_path: Path
) -> None:
    """gallery.py: GeoCLIP's 768-d check, reached from the folder's config.json."""
    copy = _model_copy(fitted["gallery"], tmp_path)
    config = json.loads((copy / "config.json").read_text())
    config["config"]["init"] = "geoclip"
    (copy / "config.json").write_text(json.dumps(config))
    line = _predict_error(copy, fitted["emb"], tmp_path)
    assert f"{copy / 'config.json'}, field 'dim': GeoCLIP takes the 768-d image features" in line
    assert "these vectors have 16" in line


def test_predict_on_a_gallery_whose_coordinates_differ_in_length(
    fitted: dict[str, Path], tmp_path: Path
) -> None:
    """gallery.py: the gallery's latitudes and longitudes must pair up."""
    copy = _model_copy(fitted["gallery"], tmp_path)
    with np.load(copy / "gallery.npz") as z:
        lon = z["gallery_lon"]
    _rewrite_npz(copy / "gallery.npz", gallery_lon=lon[:-1])
    line = _predict_error(copy, fitted["emb"], tmp_path)
    assert f"{copy / 'gallery.npz'}: gallery: {lon.size} latitudes but {lon.size - 1}" in line


@pytest.mark.parametrize(
    ("model", "file", "lat", "lon"),
    [
        ("gallery", "gallery.npz", "train_lat", "train_lon"),  # was overlap.py's bare raise
        ("cells", "locations.npz", "lat", "lon"),
        ("knn", "gallery.npz", "lat", "lon"),
    ],
)
def test_predict_names_training_coordinates_that_differ_in_length(
    fitted: dict[str, Path],
    knn_model: tuple[Path, Path, Path],
    tmp_path: Path,
    model: str,
    file: str,
    lat: str,
    lon: str,
) -> None:
    folder = knn_model[0] if model == "knn" else fitted[model]
    copy = _model_copy(folder, tmp_path)
    with np.load(copy / file) as z:
        n = z[lat].size
        short = z[lon][:-1]
    _rewrite_npz(copy / file, **{lon: short})
    line = _predict_error(copy, fitted["emb"], tmp_path)
    assert f"{copy / file}, field '{lon}': {n - 1} values but '{lat}' has {n}" in line


def test_predict_on_a_cells_file_with_overlapping_cells(
    fitted: dict[str, Path], tmp_path: Path
) -> None:
    """geolocate/cells.py: a cell file whose second cell lies inside its first."""
    from geoaware.geo.cells import s2_id_token, s2_token_id

    copy = _model_copy(fitted["cells"], tmp_path)
    lines = (copy / "cells_0.csv").read_text().splitlines()
    first, second = lines[3].split(","), lines[4].split(",")
    cell = s2_token_id(first[1])
    low = cell & -cell
    child = s2_id_token(cell - low + (low >> 2))  # the first of its four children
    lines[4] = ",".join([second[0], child, *second[2:]])
    (copy / "cells_0.csv").write_text("\r\n".join(lines) + "\r\n")
    line = _predict_error(copy, fitted["emb"], tmp_path)
    assert f"{copy / 'cells_0.csv'}, field 'hex_id': cells" in line
    assert f"'{first[1]}'" in line and f"'{child}'" in line and "overlap" in line


def test_predict_on_a_cells_model_without_partition_files(
    fitted: dict[str, Path], tmp_path: Path
) -> None:
    copy = _model_copy(fitted["cells"], tmp_path)
    config = json.loads((copy / "config.json").read_text())
    config["partition_files"] = []
    (copy / "config.json").write_text(json.dumps(config))
    line = _predict_error(copy, fitted["emb"], tmp_path)
    assert f"{copy / 'config.json'}, field 'partition_files': names no partition file" in line


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from tests.hf_models import build_tiny

    return build_tiny(tmp_path_factory.mktemp("hf") / "clip", "clip")


@pytest.mark.parametrize(
    ("change", "expected"),
    [  # encoders/base.py's three Preprocessing checks; hf.py's crop size check
        ({"image_std": [0.0, 0.0, 0.0]}, "mean and std need 3 values, std > 0"),
        ({"crop_size": {"height": 0, "width": 0}}, "size must be positive, got 0"),
        ({"size": {"shortest_edge": -5}}, "crop_fraction must be in (0, 1], got -6.4"),
        ({"crop_size": {"longest_edge": 32}}, "unsupported crop_size setting"),
    ],
)
def test_embed_names_the_processor_file_of_an_hf_model(
    tiny_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, Any],
    expected: str,
) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} not present")
    from geoaware.catalog import write_catalog

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tmp_path / "clip"
    shutil.copytree(tiny_clip, model)
    config = model / "preprocessor_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    catalog = tmp_path / "cat.parquet"
    table = pa.table({"source": ["s"], "image_id": ["a"], "file_name": ["DSCN0010.jpg"]})
    write_catalog(table, catalog)
    out = tmp_path / "emb"
    line = one_error_line(
        run("embed", catalog, "--images", PHOTOS, "--out", out, "--encoder", f"hf:{model}",
            "--workers", "0")
    )  # fmt: skip
    assert f"{config.resolve()}: CLIPImageProcessor" in line and expected in line
    assert not list(out.glob("*.parquet"))
