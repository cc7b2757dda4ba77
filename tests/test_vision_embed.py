"""The embedding pipeline on the real reference photos: output, failures, resume, CLI."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from geoaware.errors import DependencyNotFoundError, InputFileError
from geoaware.vision.embed import EmbedResumeError, embed_catalog, plan_rows
from geoaware.vision.embeddings import read_embeddings, read_info
from geoaware.vision.encoders import Encoder, Preprocessing, UnknownEncoderError, load_encoder
from geoaware.vision.encoders.base import NoTextTowerError
from tests.conftest import SHARED_DATA

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

FOLDERS = ("osv5m/images", "exif_gps_samples")
DUP_OF = "osv5m/images/1113744692540897.jpg"
SHARD = 10


class Counting(Encoder):
    """Delegate to another encoder, counting the images it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self.preprocessing = inner.preprocessing
        self.images = 0

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        self.images += len(batch)
        return self.inner.encode_images(batch)


class MeanColour(Encoder):
    """A cheap stand-in encoder: mean colour of each quadrant (12 values)."""

    name, version, dim = "mean-colour", "1", 12
    preprocessing = Preprocessing(32, resize="squash", interpolation="bilinear")

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        q: np.ndarray = batch.reshape(len(batch), 2, 16, 2, 16, 3).mean(axis=(2, 4))
        return q.reshape(len(batch), 12).astype(np.float32)


@pytest.fixture(scope="module")
def photos() -> list[str]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return sorted(
        f"{folder}/{name}"
        for folder in FOLDERS
        for name in os.listdir(SHARED_DATA / folder)
        if name.endswith(".jpg")
    )


@pytest.fixture(scope="module")
def lite0() -> Encoder:
    return load_encoder("efficientnet-lite0", device="cpu")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, photos: list[str], lite0: Encoder) -> Any:
    """31 real photos, a near-duplicate crop, a corrupt file, a missing file, a null name."""
    base = tmp_path_factory.mktemp("embed")
    root = base / "images"
    for rel in photos:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(SHARED_DATA / rel, root / rel)
    img = Image.open(SHARED_DATA / DUP_OF).convert("RGB")
    w, h = img.size
    crop = img.crop((w * 0.05, h * 0.05, w * 0.95, h * 0.95))
    crop.resize((int(crop.width * 0.93), int(crop.height * 0.93))).save(
        root / "dup.jpg", "JPEG", quality=85
    )
    (root / "corrupt.jpg").write_bytes((SHARED_DATA / DUP_OF).read_bytes()[:3000])
    names: list[str | None] = [*photos, "dup.jpg", "corrupt.jpg", "missing.jpg", None]
    ids = [n or "no-name" for n in names]
    catalog = pa.table({"source": ["test"] * len(ids), "image_id": ids, "file_name": names})
    enc = Counting(lite0)
    out = base / "emb"
    report = embed_catalog(catalog, root, out, enc, batch=8, workers=1, shard_size=SHARD)
    return {"root": root, "catalog": catalog, "out": out, "report": report, "encoder": enc}


def test_output_shards_metadata_and_float16(job: Any, photos: list[str]) -> None:
    report, out = job["report"], job["out"]
    n = len(photos) + 4
    assert report.images == n and report.embedded == len(photos) + 1 and report.failed == 3
    assert report.shards == report.shards_written == -(-n // SHARD)
    assert job["encoder"].images == report.embedded  # each decodable image encoded once
    files = sorted(p.name for p in out.glob("*.parquet"))
    assert files == [f"part-{i:05d}.parquet" for i in range(report.shards)]
    info = read_info(out)
    assert (info.encoder, info.dim, info.dtype) == ("efficientnet-lite0", 1280, "float16")
    assert info.preprocessing["mean"] == [127.0] * 3 and info.preprocessing["size"] == 224
    assert "efficientnet-lite0-57934424.pth" in info.version
    typ = pq.read_schema(out / "part-00000.parquet").field("embedding").type
    assert typ.value_type == pa.float16() and typ.list_size == 1280
    emb = read_embeddings(out)
    assert emb.ids.tolist() == [*photos, "dup.jpg"]  # catalog order, failures left out
    assert np.isfinite(emb.vectors).all() and emb.vectors.min() >= 0  # pooled ReLU6
    # Shard i holds exactly the decodable images of rows [i * SHARD, (i + 1) * SHARD).
    ids = job["catalog"].column("image_id").to_pylist()
    last = read_embeddings(out / f"part-{report.shards - 1:05d}.parquet").ids.tolist()
    assert last == [ids[r] for r in plan_rows(report.shards - 1, SHARD, n) if r < len(photos) + 1]


def test_failures_listed_and_skipped(job: Any) -> None:
    with open(job["out"] / "failed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == ["corrupt.jpg", "missing.jpg", "no-name"]
    reasons = {r["image_id"]: r["reason"] for r in rows}
    assert reasons["missing.jpg"] == "FileNotFoundError: no such file"
    assert reasons["corrupt.jpg"].startswith("OSError")
    assert "file_name" in reasons["no-name"]
    assert rows[0]["path"] == str(job["root"] / "corrupt.jpg")
    assert [f.image_id for f in job["report"].failures] == [r["image_id"] for r in rows]


def test_near_duplicate_is_nearest_neighbour(job: Any) -> None:
    emb = read_embeddings(job["out"])
    v = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    ids = emb.ids.tolist()
    dup = ids.index("dup.jpg")
    sims = v @ v[dup]
    sims[dup] = -1
    assert ids[int(np.argmax(sims))] == DUP_OF
    ranked = np.sort(sims)[::-1]
    assert ranked[0] > 0.9 and ranked[0] - ranked[1] > 0.05


def test_deterministic_across_runs_and_worker_counts(
    job: Any, lite0: Encoder, tmp_path: Path
) -> None:
    # The first shard again, decoded in this process instead of a worker: identical bytes.
    again = embed_catalog(
        job["catalog"].slice(0, SHARD),
        job["root"],
        tmp_path / "again",
        lite0,
        batch=8,
        workers=0,
        shard_size=SHARD,
    )
    assert again.embedded == SHARD
    a = read_embeddings(job["out"] / "part-00000.parquet")
    b = read_embeddings(tmp_path / "again")
    assert a.ids.tolist() == b.ids.tolist()
    assert np.array_equal(a.vectors, b.vectors)


def test_resume_skips_finished_shards(job: Any, lite0: Encoder, tmp_path: Path) -> None:
    out = tmp_path / "emb"
    shutil.copytree(job["out"], out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    enc = Counting(lite0)
    kwargs: dict[str, Any] = {"batch": 8, "workers": 0, "shard_size": SHARD}
    report = embed_catalog(job["catalog"], job["root"], out, enc, **kwargs)
    assert enc.images == 0 and report.shards_written == 0
    assert report.skipped_shards == report.shards and report.failed == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == mtimes
    # An interrupted job: the last shard (2 photos and the 3 failures) never got written.
    last = out / f"part-{report.shards - 1:05d}.parquet"
    last.unlink()
    (out / "failed.csv").unlink()
    report = embed_catalog(job["catalog"], job["root"], out, enc, **kwargs)
    assert report.shards_written == 1 and enc.images == 2 == report.embedded
    assert report.failed == 3 and last.exists()
    # Shard 1 lost too, and failed.csv survived: its failures are carried over.
    (out / "part-00001.parquet").unlink()
    report = embed_catalog(job["catalog"], job["root"], out, enc, **kwargs)
    assert report.shards_written == 1 and enc.images == 2 + SHARD and report.failed == 3
    assert np.array_equal(read_embeddings(out).vectors, read_embeddings(job["out"]).vectors)


def test_changed_encoder_or_rows_is_an_error(job: Any, tmp_path: Path) -> None:
    out = tmp_path / "emb"
    shutil.copytree(job["out"], out)
    cat, root = job["catalog"], job["root"]
    with pytest.raises(EmbedResumeError, match="mean-colour.*--overwrite"):
        embed_catalog(cat, root, out, MeanColour(), shard_size=SHARD, workers=0)
    with pytest.raises(EmbedResumeError, match=r"part-00000.parquet.*dtype"):
        embed_catalog(cat, root, out, job["encoder"], shard_size=SHARD, dtype="float32")
    with pytest.raises(EmbedResumeError, match="shard size changed"):
        embed_catalog(cat, root, out, job["encoder"], shard_size=7)
    with pytest.raises(InputFileError, match="no such images folder"):
        embed_catalog(cat, tmp_path / "nowhere", out, MeanColour(), shard_size=SHARD)
    report = embed_catalog(cat, root, out, MeanColour(), shard_size=SHARD, overwrite=True)
    assert report.shards_written == report.shards and read_info(out).encoder == "mean-colour"
    assert read_embeddings(out).vectors.shape == (job["report"].embedded, 12)


def test_cli_embed_json(shared_data: Path, tmp_path: Path) -> None:
    from geoaware.catalog.io import write_catalog
    from geoaware.sources.exif import scan_images
    from geoaware.vision.commands import JSON_KEYS
    from geoaware.vision.commands import app as vision_app

    folder = shared_data / "exif_gps_samples"
    table, _ = scan_images(folder, progress=False, workers=1)
    write_catalog(table.slice(0, 3), tmp_path / "catalog.parquet")
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is called by name
    app.add_typer(vision_app)
    args = ["embed", str(tmp_path / "catalog.parquet"), "--images", str(folder)]
    args += ["--out", str(tmp_path / "emb"), "--workers", "1", "--batch", "4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout.strip())
    assert sorted(data) == sorted(k.strip() for k in JSON_KEYS.split(","))
    assert data["embedded"] == 3 and data["failed"] == 0 and data["dtype"] == "float16"
    assert read_embeddings(tmp_path / "emb").vectors.shape == (3, 1280)
    help_text = CliRunner().invoke(app, ["embed", "--help"]).output
    assert "Example: geoaware embed" in help_text and "images_per_second" in help_text


def test_lite0_features(lite0: Encoder) -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    together = lite0.encode_images(batch)
    assert together.shape == (2, 1280) and together.dtype == np.float32
    alone = np.concatenate([lite0.encode_images(batch[i : i + 1]) for i in range(2)])
    assert np.allclose(together, alone, atol=1e-4)
    assert lite0.encode_images(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 1280)
    with pytest.raises(ValueError, match=r"\(n, 224, 224, 3\)"):
        lite0.encode_images(np.zeros((1, 100, 100, 3), np.uint8))
    with pytest.raises(NoTextTowerError, match="efficientnet-lite0"):
        lite0.encode_text(["a street"])


def test_torch_module_encoder_from_python(job: Any, tmp_path: Path) -> None:
    import torch

    from geoaware.vision.encoders.torch_module import TorchModuleEncoder

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    enc = TorchModuleEncoder(module, "tiny-conv", 8, Preprocessing(64), device="cpu")
    report = embed_catalog(job["catalog"], job["root"], tmp_path / "e", enc, workers=0)
    assert report.embedded == job["report"].embedded and read_info(tmp_path / "e").dim == 8


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("open_clip:ViT-B-32/openai", "open_clip_torch"),
        ("bioclip", "open_clip_torch"),
        ("timm:resnet50", "pip install timm"),
    ],
)
def test_optional_encoders_name_their_package(name: str, package: str) -> None:
    module = "timm" if name.startswith("timm") else "open_clip"
    try:
        __import__(module)
    except ImportError:
        pass
    else:
        pytest.skip(f"{module} is installed")
    with pytest.raises(DependencyNotFoundError, match=package):
        load_encoder(name)


def test_unknown_encoder() -> None:
    with pytest.raises(UnknownEncoderError, match="efficientnet-lite0"):
        load_encoder("resnet-9000")
    with pytest.raises(UnknownEncoderError):
        load_encoder("open_clip:")
