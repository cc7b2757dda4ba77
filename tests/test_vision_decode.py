"""Decoding real photos: EXIF orientation, downscale-on-decode, fallbacks, failures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from geoaware.vision.decode import (
    apply_orientation,
    decode_image,
    decode_rows,
    fit_image,
    load_image,
    read_orientation,
)
from geoaware.vision.encoders.base import Preprocessing

LITE = Preprocessing(224, mean=(127.0,) * 3, std=(128.0,) * 3)
STREET = "osv5m/images/1113744692540897.jpg"  # 909 x 512
EXIF_PHOTO = "exif_gps_samples/DSCN0010.jpg"  # 640 x 480, orientation 1

# Stored pixels that display upright under each EXIF orientation: the inverse transposes.
_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _with_orientation(img: Image.Image, orientation: int, path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = img.transpose(_INVERSE[orientation]) if orientation in _INVERSE else img
    stored.save(path, "JPEG", quality=95, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(apply_orientation(stored, orientation), expected)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_gives_upright_pixels(
    shared_data: Path, tmp_path: Path, orientation: int
) -> None:
    upright = Image.open(shared_data / EXIF_PHOTO).convert("RGB")  # 640 x 480, landscape
    path = _with_orientation(upright, orientation, tmp_path / f"o{orientation}.jpg")
    stored = Image.open(path)
    if orientation in (6, 8):
        assert stored.size == (480, 640)  # stored portrait, shown landscape
    assert read_orientation(path.read_bytes()) == orientation
    decoded = load_image(path)  # the simplejpeg path
    assert decoded.shape == (480, 640, 3)
    assert _mad(decoded, np.asarray(upright)) < 3.0  # only JPEG loss
    # A wrong turn is far off: the check has teeth.
    assert _mad(np.ascontiguousarray(decoded[::-1, ::-1]), np.asarray(upright)) > 20
    # Same upright picture through the downscaled and model-input paths.
    small = load_image(path, min_side=200)
    assert small.shape == (240, 320, 3)
    fast = decode_image(path, LITE)
    reference = fit_image(np.asarray(upright), LITE)
    assert _mad(fast, reference) < 4.0


def test_pillow_fallback_honours_orientation_too(shared_data: Path, tmp_path: Path) -> None:
    upright = Image.open(shared_data / EXIF_PHOTO).convert("RGB")
    path = _with_orientation(upright, 6, tmp_path / "o6.jpg")
    via_pil = load_image(path, use_simplejpeg=False)
    assert _mad(via_pil, load_image(path)) < 1.0


def test_downscale_on_decode_matches_plain_path(shared_data: Path, tmp_path: Path) -> None:
    # A user's 12-megapixel photo: the street photo upscaled to 4000 x 3000, JPEG quality 90.
    big = tmp_path / "big.jpg"
    Image.open(shared_data / STREET).convert("RGB").resize(
        (4000, 3000), Image.Resampling.BICUBIC
    ).save(big, "JPEG", quality=90)
    full = load_image(big)
    assert full.shape == (3000, 4000, 3)
    # 1/8 scale is the smallest with both sides >= 256: 375 x 500 (libjpeg rounds up).
    assert load_image(big, min_side=256).shape == (375, 500, 3)
    assert load_image(big, min_side=400).shape == (750, 1000, 3)  # 1/4
    # A small photo is never upscaled by the decoder.
    assert load_image(shared_data / STREET, min_side=1000).shape == (512, 909, 3)
    # The model input is the same picture as the full-resolution Pillow path.
    fast = decode_image(big, LITE)
    plain = decode_image(big, LITE, fast=False)
    assert fast.shape == plain.shape == (224, 224, 3)
    assert _mad(fast, plain) < 3.0
    # Pillow's draft (the fallback) downscales the same way.
    assert load_image(big, min_side=256, use_simplejpeg=False).shape == (375, 500, 3)


def test_non_jpeg_and_cmyk(shared_data: Path, tmp_path: Path) -> None:
    img = Image.open(shared_data / EXIF_PHOTO).convert("RGB")
    png = tmp_path / "a.png"
    img.save(png)
    assert _mad(decode_image(png, LITE), fit_image(np.asarray(img), LITE)) < 3.0
    rgba = tmp_path / "b.png"
    img.convert("RGBA").save(rgba)
    assert decode_image(rgba, LITE).shape == (224, 224, 3)
    cmyk = tmp_path / "c.jpg"
    img.convert("CMYK").save(cmyk, "JPEG", quality=95)  # simplejpeg refuses: Pillow decodes
    assert decode_image(cmyk, LITE).shape == (224, 224, 3)
    gray = tmp_path / "g.jpg"
    img.convert("L").save(gray, "JPEG")
    assert decode_image(gray, LITE).shape == (224, 224, 3)


def test_squash_policy_keeps_the_whole_picture() -> None:
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, :100] = 255  # left third white
    p = Preprocessing(30, resize="squash")
    out = fit_image(a, p)
    assert out.shape == (30, 30, 3)
    assert out[:, :8].mean() > 250 and out[:, 12:].mean() < 5
    crop = fit_image(a, Preprocessing(30, crop_fraction=1.0))
    assert crop.mean() < 5  # the centre square is all black


def test_decode_rows_lists_failures_and_keeps_going(shared_data: Path, tmp_path: Path) -> None:
    good = shared_data / EXIF_PHOTO
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:5000])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff not a jpeg at all" * 10)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    paths = [str(good), str(truncated), str(tmp_path / "missing.jpg"), str(garbage), None]
    paths.append(str(text))
    pixels, ok, failed = decode_rows(paths, LITE)
    assert ok == [0] and pixels.shape == (1, 224, 224, 3)
    reasons = dict(failed)
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert "truncated" in reasons[1].lower()
    assert reasons[2] == "FileNotFoundError: no such file"
    assert reasons[3].startswith("UnidentifiedImageError") or reasons[3].startswith("OSError")
    assert "file_name" in reasons[4]
    assert reasons[5].startswith("UnidentifiedImageError")
    assert not any("BytesIO" in r for r in reasons.values())  # no in-memory buffer names


def test_bytes_input_and_bad_orientation_tag() -> None:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 42  # out of range: shown as stored
    Image.new("RGB", (64, 32), "green").save(buf, "JPEG", exif=exif)
    data = buf.getvalue()
    assert read_orientation(data) == 1
    assert load_image(data).shape == (32, 64, 3)
    assert read_orientation(b"junk") == 1
