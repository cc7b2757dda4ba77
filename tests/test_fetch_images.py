"""``geoaware fetch-images``: a catalog's photos from a real HTTP server on 127.0.0.1, then embed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.cli import app
from geoaware.sources.commands import FETCH_IMAGES_KEYS
from geoaware.sources.fg_geo_yfcc import HEADER, parse_csv
from geoaware.sources.images import image_kind
from geoaware.vision.encoders.base import Encoder, Preprocessing

from .conftest import SHARED_DATA
from .httpserver import Files, serve

runner = CliRunner()
SAMPLES = sorted((SHARED_DATA / "exif_gps_samples").glob("*.jpg"))[:3]
IDS = ["da6fd9a9c5666e7b561b842a8c97774f", "6c9f3f2f1e2a21ca34e8cbd4e87f7e5", "5d406187aa1a72"]


class MeanColour(Encoder):
    """A cheap stand-in encoder: the mean colour of each image (3 values)."""

    name, version, dim = "mean-colour", "1", 3
    preprocessing = Preprocessing(16, resize="squash", interpolation="bilinear")

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        means: np.ndarray = batch.reshape(len(batch), -1, 3).mean(axis=1)
        return means.astype(np.float32)


def mmcommons_path(image_id: str) -> str:
    """The path of a photo in the AWS Multimedia Commons layout, as the fg_geo URLs have it."""
    return f"/data/images/{image_id[:3]}/{image_id[3:6]}/{image_id}.jpg"


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def fg_geo_catalog(tmp_path: Path, base: str, ids: list[str]) -> Path:
    """An fg_geo catalog read by the real fg_geo parser, its URLs on the local server."""
    lines = [",".join(HEADER)]
    for n, image_id in enumerate(ids):
        genus = "Vireo" if n % 2 == 0 else "Tiarella"
        lines.append(
            f"{image_id},{n},{genus} griseus,29.5,-94.3,http://flickr/x.jpg,"
            f"{base}{mmcommons_path(image_id)}"
        )
    table = parse_csv("\n".join(lines).encode(), "fg.csv")
    return write_catalog(table, tmp_path / "fg_geo.parquet")


def fetch(catalog: Path, out: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    args = ["fetch-images", str(catalog), "--out", str(out), "--workers", "4", *extra]
    result = runner.invoke(app, [*args, "--json"])
    data = json.loads(result.stdout) if result.exit_code == 0 else {}
    return result.exit_code, data, result.output


def failed_rows(out: Path) -> list[dict[str, str]]:
    with (out / "failed.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def photos() -> dict[str, bytes]:
    if len(SAMPLES) < 3:
        pytest.skip(f"{SHARED_DATA}/exif_gps_samples not present")
    return {mmcommons_path(i): p.read_bytes() for i, p in zip(IDS, SAMPLES, strict=True)}


def test_fetch_then_embed_the_folder(photos: dict[str, bytes], tmp_path: Path) -> None:
    from geoaware.vision.embed import embed_catalog
    from geoaware.vision.embeddings import read_embeddings

    png_id = "0123456789abcdef0123456789"
    files = Files({**photos, mmcommons_path(png_id): png_bytes()})
    out = tmp_path / "photos"
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, [*IDS, png_id])
        code, data, output = fetch(catalog, out)
    assert code == 0, output
    assert sorted(data) == sorted(k.strip() for k in FETCH_IMAGES_KEYS.split(","))
    assert (data["rows"], data["fetched"], data["present"], data["failed"]) == (4, 4, 0, 0)
    assert data["bytes"] == sum(len(b) for b in files.content.values())
    # each photo under the file_name that ingest gave its row: <id>.jpg, the URL's last part
    for image_id, sample in zip(IDS, SAMPLES, strict=True):
        assert (out / f"{image_id}.jpg").read_bytes() == sample.read_bytes()
    assert not list(out.glob("*.part")) and failed_rows(out) == []

    report = embed_catalog(catalog, out, tmp_path / "emb", MeanColour(), workers=0)
    assert (report.embedded, report.failed) == (4, 0)
    vectors = read_embeddings(tmp_path / "emb").vectors
    assert vectors.shape == (4, 3)
    assert np.allclose(vectors[3], [200, 10, 10], atol=1)  # the PNG, decoded


def test_dead_links_land_in_failed_csv(photos: dict[str, bytes], tmp_path: Path) -> None:
    ids = [*IDS, "deadbeef" * 4, "feedface" * 4]
    content = dict(photos)
    content[mmcommons_path(ids[4])] = b"<html><body>AccessDenied</body></html>"  # no photo
    files = Files(content)  # ids[3] is not served: 404
    out = tmp_path / "photos"
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, ids)
        code, data, output = fetch(catalog, out)
    assert code == 0, output
    assert (data["fetched"], data["failed"]) == (3, 2)
    rows = failed_rows(out)
    assert [r["image_id"] for r in rows] == ids[3:]
    assert rows[0]["reason"] == "HTTP 404" and rows[0]["url"].endswith(f"{ids[3]}.jpg")
    assert rows[1]["reason"].startswith("not a JPEG or PNG: bytes b'<html>")
    # 404 is not retried; nothing of the failures is left behind
    assert sum(path == mmcommons_path(ids[3]) for path, _ in files.requests) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["_manifest.json", "failed.csv", *(f"{i}.jpg" for i in IDS)]
    )


def test_rerun_skips_photos_there_and_resumes_a_part(
    photos: dict[str, bytes], tmp_path: Path
) -> None:
    files = Files(dict(photos))
    out = tmp_path / "photos"
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, IDS)
        code, data, output = fetch(catalog, out, "--limit", "1")
        assert code == 0 and (data["rows"], data["fetched"]) == (1, 1), output
        assert len(files.requests) == 1
        # a download stopped half-way (Ctrl-C) left its part; the rerun asks for the rest
        whole = photos[mmcommons_path(IDS[1])]
        (out / f"{IDS[1]}.jpg.part").write_bytes(whole[:1000])
        files.requests.clear()
        code, data, output = fetch(catalog, out)
        assert code == 0, output
        assert (data["fetched"], data["present"], data["failed"]) == (2, 1, 0)
        assert sorted(files.requests) == sorted(
            [(mmcommons_path(IDS[1]), "bytes=1000-"), (mmcommons_path(IDS[2]), None)]
        )
        assert (out / f"{IDS[1]}.jpg").read_bytes() == whole
        files.requests.clear()
        code, data, output = fetch(catalog, out)
        assert code == 0 and (data["fetched"], data["present"]) == (0, 3), output
        assert files.requests == []


def test_where_selects_rows(photos: dict[str, bytes], tmp_path: Path) -> None:
    files = Files(dict(photos))
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, IDS)  # genus Vireo, Tiarella, Vireo
        code, data, output = fetch(catalog, tmp_path / "photos", "--where", "genus = 'Vireo'")
    assert code == 0 and (data["rows"], data["fetched"]) == (2, 2), output
    assert sorted(p for p, _ in files.requests) == sorted([mmcommons_path(IDS[0]),
                                                           mmcommons_path(IDS[2])])  # fmt: skip


def test_foreign_out_folder_is_refused(photos: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not geoaware's")
    files = Files(dict(photos))
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, IDS)
        code, _, output = fetch(catalog, out)
    assert code == 2 and "was not written by geoaware" in output
    assert files.requests == [] and sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


def test_everything_failed_is_an_error(tmp_path: Path) -> None:
    files = Files({})
    out = tmp_path / "photos"
    with serve(files) as base:
        catalog = fg_geo_catalog(tmp_path, base, IDS[:2])
        code, _, output = fetch(catalog, out)
    assert code == 2
    assert "none of the 2 photos could be fetched" in output and "HTTP 404" in output
    assert len(failed_rows(out)) == 2


def test_a_catalog_without_file_names_is_refused(tmp_path: Path) -> None:
    table = pa.table({"source": ["s"], "image_id": ["1"], "url": ["http://127.0.0.1:9/1.jpg"]})
    catalog = write_catalog(table, tmp_path / "old.parquet")
    code, _, output = fetch(catalog, tmp_path / "photos")
    assert code == 2 and "field 'file_name'" in output and "ingest the catalog again" in output


def test_image_kind() -> None:
    assert image_kind(png_bytes()) == "png"
    assert image_kind(SAMPLES[0].read_bytes()[:16] if SAMPLES else b"\xff\xd8\xff") == "jpeg"
    assert image_kind(b"") is None and image_kind(b"GIF89a") is None
