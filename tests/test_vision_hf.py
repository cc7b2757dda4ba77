"""``hf:`` encoders against transformers itself, on tiny CLIP and SigLIP models built offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from geoaware.errors import InputFileError
from geoaware.vision.embed import embed_catalog
from geoaware.vision.embeddings import EmbeddingInfo, read_embeddings, read_info, write_embeddings
from geoaware.vision.encoders import load_encoder
from tests.conftest import SHARED_DATA
from tests.hf_models import build_tiny

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

CLASSES = ["beach", "forest", "city street", "snow mountain", "harbour"]
FOLDERS = ("osv5m/images", "exif_gps_samples")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=["clip", "siglip"])
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp(request.param) / "model", request.param)


def _reference(folder: Path) -> tuple[Any, Any, Any]:
    """The model, slow processor and tokenizer as the transformers documentation loads them."""
    model = transformers.AutoModel.from_pretrained(folder).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(folder, backend="pil")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return model, processor, tokenizer


def _features(out: Any) -> np.ndarray:
    t = out if isinstance(out, torch.Tensor) else out.pooler_output
    features: np.ndarray = t.detach().float().numpy()
    return features


def _text_inputs(model: Any, tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    # The documented calls: CLIP pads to the batch, SigLIP to max_length.
    if model.config.model_type == "siglip":
        return dict(tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt"))
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos: np.ndarray = np.sum(a * b, axis=1)
    return cos


def test_image_features_equal_transformers_on_prepared_pixels(model_dir: Path) -> None:
    enc = load_encoder(f"hf:{model_dir}", device="cpu")
    model, processor, _ = _reference(model_dir)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    ours = enc.encode_images(pixels)
    # The processor on images already at the model's size: resize and crop change nothing.
    inputs = processor(images=[Image.fromarray(p) for p in pixels], return_tensors="pt")
    with torch.inference_mode():
        theirs = _features(model.get_image_features(pixel_values=inputs["pixel_values"]))
    assert ours.shape == (3, enc.dim) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_text_features_equal_transformers(model_dir: Path) -> None:
    enc = load_encoder(f"hf:{model_dir}", device="cpu")
    model, _, tokenizer = _reference(model_dir)
    texts = ["a photo of a beach", "forest", "an aerial view of a harbour from above", "sky"]
    with torch.inference_mode():
        theirs = _features(model.get_text_features(**_text_inputs(model, tokenizer, texts)))
    np.testing.assert_allclose(enc.encode_text(texts), theirs, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return sorted(p for f in FOLDERS for p in (SHARED_DATA / f).glob("*.jpg"))[:12]


def test_embed_real_photos_matches_the_processor(
    model_dir: Path, photos: list[Path], tmp_path: Path
) -> None:
    """``embed --encoder hf:DIR`` gives the features of the documented processor loop."""
    names = [p.relative_to(SHARED_DATA).as_posix() for p in photos]
    catalog = pa.table({"image_id": [f"i{k}" for k in range(len(names))], "file_name": names})
    report = embed_catalog(
        catalog, SHARED_DATA, tmp_path / "emb", f"hf:{model_dir}", dtype="float32", workers=0
    )
    assert report.embedded == len(photos) and report.failed == 0
    emb = read_embeddings(tmp_path / "emb")
    info = emb.info
    assert info.encoder == f"hf:{model_dir.resolve()}"
    assert "transformers" in info.version and info.preprocessing["size"] == 32
    model, processor, _ = _reference(model_dir)
    with torch.inference_mode():
        ref = np.concatenate(
            [
                _features(
                    model.get_image_features(
                        **processor(images=Image.open(p).convert("RGB"), return_tensors="pt")
                    )
                )
                for p in photos
            ]
        )
    # Ours decodes with EXIF orientation; the plain loop does not: compare upright photos.
    upright = [k for k, p in enumerate(photos) if Image.open(p).getexif().get(0x0112, 1) == 1]
    assert len(upright) >= 8
    cos = _cos(emb.vectors[upright], ref[upright])
    # JPEG downscale-on-decode resamples a little differently from a full decode.
    assert cos.mean() >= 0.999 and cos.min() >= 0.995, cos
    # Resume: the same encoder skips the finished shard.
    again = embed_catalog(
        catalog, SHARED_DATA, tmp_path / "emb", f"hf:{model_dir}", dtype="float32"
    )
    assert again.skipped_shards == 1 and again.embedded == 0


def _class_setup(
    tmp: Path, enc_name: str, vectors: np.ndarray, labels: list[str]
) -> tuple[Path, Path, Path]:
    from geoaware.catalog import write_catalog

    ids = [f"i{k}" for k in range(len(vectors))]
    write_embeddings(tmp / "img.parquet", ids, vectors, EmbeddingInfo(enc_name, vectors.shape[1]))
    (tmp / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    write_catalog(
        pa.table({"source": ["s"] * len(ids), "image_id": ids, "label_name": labels}),
        tmp / "truth.parquet",
    )
    return tmp / "img.parquet", tmp / "classes.txt", tmp / "truth.parquet"


def test_zeroshot_end_to_end_equals_logits_per_image(model_dir: Path, tmp_path: Path) -> None:
    from geoaware.evaluate.imagetext_files import evaluate_zeroshot

    enc = load_encoder(f"hf:{model_dir}", device="cpu")
    model, processor, tokenizer = _reference(model_dir)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    labels = [CLASSES[k % len(CLASSES)] for k in range(len(pixels))]
    emb, classes, truth = _class_setup(tmp_path, enc.name, enc.encode_images(pixels), labels)
    report = evaluate_zeroshot(
        emb, classes, truth, encoder=f"hf:{model_dir}", templates=["a photo of {}"]
    )
    prompts = [f"a photo of {c}" for c in CLASSES]
    inputs = _text_inputs(model, tokenizer, prompts)
    inputs["pixel_values"] = processor(
        images=[Image.fromarray(p) for p in pixels], return_tensors="pt"
    )["pixel_values"]
    with torch.inference_mode():
        logits = model(**inputs).logits_per_image.numpy()
    true = np.array([CLASSES.index(c) for c in labels])
    rank = 1 + (logits > logits[np.arange(len(true)), true][:, None]).sum(axis=1)
    np.testing.assert_array_equal(report.rank, rank)
    assert report.summary["top1_acc"] == pytest.approx(float(np.mean(rank == 1)))


def test_retrieval_end_to_end(model_dir: Path, tmp_path: Path) -> None:
    from geoaware.evaluate.imagetext_files import evaluate_retrieval

    enc = load_encoder(f"hf:{model_dir}", device="cpu")
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    vectors = enc.encode_images(pixels)
    ids = [f"i{k}" for k in range(6)]
    write_embeddings(tmp_path / "img.parquet", ids, vectors, EmbeddingInfo(enc.name, enc.dim))
    captions = [f"a photo of the {w}" for w in ("beach", "forest", "city", "lake", "snow", "sea")]
    (tmp_path / "captions.csv").write_text(
        "image_id,caption\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, captions, strict=True))
    )
    report = evaluate_retrieval(
        tmp_path / "img.parquet", tmp_path / "captions.csv", encoder=f"hf:{model_dir}"
    )
    text = enc.encode_text(captions)
    sim = _cos(np.repeat(vectors, 6, 0), np.tile(text, (6, 1))).reshape(6, 6)
    # Image-to-text recall@1 from the direct computation.
    direct = float(np.mean(sim.argmax(axis=1) == np.arange(6)))
    assert report.summary["i2t_r1"] == pytest.approx(direct)
    assert report.summary["t2i_r1"] == pytest.approx(float(np.mean(sim.argmax(0) == np.arange(6))))


def test_text_tower_of_another_model_is_an_error_naming_both(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from geoaware.evaluate.imagetext_files import evaluate_zeroshot

    clip = build_tiny(tmp_path_factory.mktemp("c") / "clip-a", "clip")
    other = build_tiny(tmp_path_factory.mktemp("s") / "siglip-b", "siglip")
    enc = load_encoder(f"hf:{clip}", device="cpu")
    vectors = enc.encode_images(np.zeros((5, 32, 32, 3), np.uint8))
    emb, classes, truth = _class_setup(tmp_path, enc.name, vectors, CLASSES)
    with pytest.raises(InputFileError) as info:
        evaluate_zeroshot(emb, classes, truth, encoder=f"hf:{other}")
    message = str(info.value)
    assert str(clip.resolve()) in message and str(other) in message


def test_model_missing_from_the_cache_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from geoaware.vision.encoders.hf import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError) as info:
        load_encoder("hf:someone/no-such-clip", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "someone/no-such-clip" in message and str(tmp_path / "hub") in message
    assert "hf download someone/no-such-clip" in message
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        load_encoder(f"hf:{tmp_path / 'nowhere'}", device="cpu")


def test_cli_embed_and_zeroshot_with_hf(
    model_dir: Path, photos: list[Path], tmp_path: Path
) -> None:
    from geoaware.catalog import write_catalog
    from geoaware.cli import app

    names = [p.relative_to(SHARED_DATA).as_posix() for p in photos[:5]]
    ids = [f"p{k}" for k in range(len(names))]
    write_catalog(
        pa.table({"source": ["s"] * 5, "image_id": ids, "file_name": names, "label_name": CLASSES}),
        tmp_path / "cat.parquet",
    )
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "embed",
            str(tmp_path / "cat.parquet"),
            "--images",
            str(SHARED_DATA),
            "--out",
            str(tmp_path / "emb"),
            "--encoder",
            f"hf:{model_dir}",
            "--workers",
            "0",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert read_info(tmp_path / "emb").encoder == f"hf:{model_dir.resolve()}"
    r = runner.invoke(
        app,
        [
            "eval",
            "zeroshot",
            str(tmp_path / "emb"),
            "--texts",
            str(tmp_path / "classes.txt"),
            "--truth",
            str(tmp_path / "cat.parquet"),
            "--encoder",
            f"hf:{model_dir}",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["n"] == 5 and result["classes"] == 5
