"""`geoaware query` reads the catalog and nothing else: no other file, no write, one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geoaware.sources import FgGeoYfcc


def _geoaware(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("geoaware")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real fg_geo release as a catalog folder of two parts."""
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"{shared} not present")
    import os

    os.environ.setdefault("GEOAWARE_MIRROR", str(shared))
    table = FgGeoYfcc(tmp_path_factory.mktemp("data")).read()
    folder = tmp_path_factory.mktemp("cat") / "fg_geo"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    return folder


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    for needle in needles:
        assert needle in message, message


def test_select_over_the_catalog_works(catalog: Path) -> None:
    proc = _geoaware("query", str(catalog), "SELECT count(*) AS n FROM catalog", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"] == [{"n": 36_143}]


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("COPY (SELECT 'x') TO '{victim}'", "SELECT"),
        ("COPY (SELECT 1 AS a) TO '{part}' (FORMAT parquet, USE_TMP_FILE false)", "SELECT"),
        ("ATTACH '{new}' AS x", "SELECT"),
        ("EXPORT DATABASE '{newdir}'", "SELECT"),
        ("SELECT * FROM read_text('{victim}')", "disabled"),
        ("SELECT * FROM read_csv('{victim}')", "disabled"),
        ("SELECT 1; COPY (SELECT 1) TO '{victim}'", "SELECT"),
        ("SET enable_external_access = true", "SELECT"),
        ("", "empty query"),
    ],
)
def test_statements_that_touch_other_files_are_refused(
    catalog: Path, tmp_path: Path, sql: str, needle: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    part = catalog / "part-0.parquet"
    before = part.read_bytes()
    query = sql.format(
        victim=victim, part=part, new=tmp_path / "new.db", newdir=tmp_path / "export"
    )
    proc = _geoaware("query", str(catalog), query)
    _one_line_error(proc, needle)
    assert victim.read_text() == "precious\n"
    assert part.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"]


def test_out_is_written_by_geoaware_and_a_folder_is_refused(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "top.csv"
    proc = _geoaware(
        "query",
        str(catalog),
        "SELECT label_name FROM catalog ORDER BY 1 LIMIT 2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines()[0] == '"label_name"'
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    proc = _geoaware("query", str(catalog), "SELECT 1", "--out", str(folder))
    _one_line_error(proc, str(folder), "folder")
    assert (folder / "keep.txt").read_text() == "mine"


def test_parts_with_different_schemas_are_refused(catalog: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    first = pq.read_table(catalog / "part-0.parquet")
    pq.write_table(first, folder / "part-0.parquet")
    second = pq.read_table(catalog / "part-1.parquet")
    lat_as_text = second.set_column(
        second.schema.get_field_index("lat"), "lat", pa.compute.cast(second["lat"], pa.string())
    )
    pq.write_table(lat_as_text, folder / "part-1.parquet")
    proc = _geoaware("query", str(folder), "SELECT count(*) FROM catalog")
    _one_line_error(proc, "part-1.parquet", "'lat'", "string")


def test_embed_reads_under_images_only(tmp_path: Path) -> None:
    """``../`` and absolute file names are listed in failed.csv, never opened."""
    import csv

    from geoaware.vision.embed import embed_catalog
    from tests.test_vision_embed import MeanColour

    photos = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "exif_gps_samples"
    if not photos.is_dir():
        pytest.skip(f"{photos} not present")
    images = tmp_path / "images"
    images.mkdir()
    (images / "in.jpg").write_bytes((photos / "DSCN0010.jpg").read_bytes())
    outside = tmp_path / "secret.jpg"  # a real, readable photo beside the images folder
    outside.write_bytes((photos / "DSCN0012.jpg").read_bytes())
    names = ["in.jpg", "../secret.jpg", str(outside), "sub/../../secret.jpg"]
    table = pa.table({"source": ["t"] * 4, "image_id": ["a", "b", "c", "d"], "file_name": names})
    report = embed_catalog(table, images, tmp_path / "emb", MeanColour(), workers=0)
    assert report.embedded == 1 and report.failed == 3
    failed = list(csv.DictReader((tmp_path / "emb" / "failed.csv").open()))
    assert [r["image_id"] for r in failed] == ["b", "c", "d"]
    assert all("leaves the images folder" in r["reason"] for r in failed)
