"""Decoding photos into model input: JPEG downscale-on-decode, EXIF orientation, resize.

A 12-megapixel JPEG decoded in full costs far more than the encoder that sees it at 224 x 224.
libjpeg can decode at 1/2, 1/4 or 1/8 scale almost for free (it skips most of the inverse
DCT), so :func:`load_image` asks ``simplejpeg`` (libjpeg-turbo) for the smallest scale whose
shorter side is still at least ``min_side`` pixels, and the final resize only ever shrinks.

Quirks handled:

* ``simplejpeg`` ignores EXIF. The orientation tag (``0x0112``) is read from the file's
  header with Pillow (``Image.open`` parses markers up to the scan, it decodes no pixels)
  and applied to the decoded array with numpy, as :func:`PIL.ImageOps.exif_transpose` would.
* Files ``simplejpeg`` cannot decode (CMYK JPEGs, JPEGs with recoverable errors that its
  strict mode refuses) and every other format (PNG, TIFF, WebP, ...) go through Pillow, with
  ``Image.draft`` (the same libjpeg scaling) for JPEG and ``Image.reduce`` for the others.
* A file that neither can read raises; :func:`decode_rows` turns that into a reason string
  (``"OSError: image file is truncated ..."``) so a batch never fails for one bad photo.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from geoaware.typing import PathLike
from geoaware.vision.encoders.base import Preprocessing

__all__ = [
    "apply_orientation",
    "decode_image",
    "decode_rows",
    "fit_image",
    "load_image",
    "read_orientation",
]

_ORIENTATION = 0x0112
_JPEG_MAGIC = b"\xff\xd8\xff"
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def read_orientation(data: bytes) -> int:
    """Return the EXIF orientation (1 to 8) of an encoded image; 1 when absent or invalid.

    Only the header is parsed; no pixel is decoded.

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> exif = Image.Exif()
    >>> exif[0x0112] = 6
    >>> Image.new("RGB", (4, 2)).save(buf, "JPEG", exif=exif)
    >>> read_orientation(buf.getvalue())
    6
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: the pixels may still be fine, show them as stored
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an ``(h, w, ...)`` array as stored into the upright picture (EXIF orientation).

    The eight cases match :func:`PIL.ImageOps.exif_transpose`.

    Examples
    --------
    >>> a = np.arange(6).reshape(2, 3)
    >>> apply_orientation(a, 6).tolist()  # 90 degrees clockwise
    [[3, 0], [4, 1], [5, 2]]
    >>> apply_orientation(a, 1) is a
    True
    """
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return np.swapaxes(array, 0, 1)
    if orientation == 6:
        return np.swapaxes(array[::-1], 0, 1)
    if orientation == 7:
        return np.swapaxes(array[::-1, ::-1], 0, 1)
    if orientation == 8:
        return np.swapaxes(array, 0, 1)[::-1]
    return array


def load_image(
    path: PathLike | bytes, min_side: int = 0, *, use_simplejpeg: bool = True
) -> np.ndarray:
    """Decode a photo to an upright RGB ``uint8`` array, downscaled on decode.

    Parameters
    ----------
    path
        The image file, or its encoded bytes.
    min_side
        Decode at the smallest JPEG scale (1, 1/2, 1/4 or 1/8) whose width and height are both
        at least this many pixels (images already smaller come back at full size); other
        formats are reduced by a whole factor to the same bound. 0 decodes at full size.
    use_simplejpeg
        Try ``simplejpeg`` first for JPEG files (Pillow is the fallback either way).

    Raises
    ------
    OSError, ValueError, ...
        What Pillow raises for a missing, unreadable or truncated file.

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (4000, 3000), "red").save(buf, "JPEG")
    >>> load_image(buf.getvalue(), min_side=256).shape  # decoded at 1/8 scale
    (375, 500, 3)
    """
    data = path if isinstance(path, bytes) else _read(path)
    if use_simplejpeg and data[:3] == _JPEG_MAGIC:
        import simplejpeg  # type: ignore[import-untyped,unused-ignore]

        try:
            array = simplejpeg.decode_jpeg(
                data, colorspace="RGB", min_height=min_side, min_width=min_side
            )
        except ValueError:
            pass  # CMYK, progressive oddities, recoverable corruption: let Pillow judge
        else:
            return apply_orientation(array, read_orientation(data))
    return _load_pil(data, min_side)


def _read(path: PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _load_pil(data: bytes, min_side: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as im:
            if min_side > 0 and im.format in ("JPEG", "MPO"):
                im.draft("RGB", (min_side, min_side))
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            if min_side > 0:
                factor = min(upright.size) // min_side
                if factor >= 2:
                    upright = upright.reduce(factor)
            rgb = upright if upright.mode == "RGB" else upright.convert("RGB")
            return np.asarray(rgb)


def fit_image(array: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """Resize (and centre-crop) an RGB array to the model input, ``(size, size, 3)`` uint8.

    Examples
    --------
    >>> fit_image(np.zeros((375, 500, 3), np.uint8), Preprocessing(224)).shape
    (224, 224, 3)
    """
    p = preprocessing
    h, w = array.shape[:2]
    if p.resize == "center_crop":
        side = min(w, h) * p.crop_fraction
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    else:
        box = (0.0, 0.0, float(w), float(h))
    im = Image.fromarray(np.ascontiguousarray(array))
    out = im.resize((p.size, p.size), _RESAMPLE[p.interpolation], box=box)
    return np.asarray(out)


def decode_image(
    path: PathLike | bytes, preprocessing: Preprocessing, *, fast: bool = True
) -> np.ndarray:
    """Decode one photo straight to model input: ``(size, size, 3)`` uint8, upright.

    ``fast=False`` decodes at full resolution with Pillow (the reference path).

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (640, 480), "blue").save(buf, "PNG")
    >>> decode_image(buf.getvalue(), Preprocessing(224))[0, 0].tolist()
    [0, 0, 255]
    """
    if fast:
        array = load_image(path, preprocessing.decode_side)
    else:
        array = load_image(path, 0, use_simplejpeg=False)
    return fit_image(array, preprocessing)


#: Marks a catalog ``file_name`` that resolves outside the images folder (``../``, absolute):
#: such a row is reported as failed and its file is never opened.
OUTSIDE_ROOT = "<outside --images> "


def decode_rows(
    paths: Sequence[str | None], preprocessing: Preprocessing
) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Decode many photos; failures come back as reasons, never as exceptions.

    Returns
    -------
    (pixels, ok, failed)
        ``pixels`` is ``(len(ok), size, size, 3)`` uint8 for the positions in ``ok``;
        ``failed`` lists ``(position, reason)``. A ``None`` path fails as "no file name".

    Examples
    --------
    >>> pixels, ok, failed = decode_rows(["/no/such.jpg", None], Preprocessing(32))
    >>> pixels.shape, ok, [reason.split(":")[0] for _, reason in failed]
    ((0, 32, 32, 3), [], ['FileNotFoundError', 'no file name in the catalog'])
    """
    size = preprocessing.size
    pixels = np.empty((len(paths), size, size, 3), np.uint8)
    ok: list[int] = []
    failed: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        if path is None:
            failed.append((i, "no file name in the catalog: file_name is null"))
            continue
        if path.startswith(OUTSIDE_ROOT):
            failed.append((i, "file_name leaves the images folder (--images): not read"))
            continue
        try:
            pixels[len(ok)] = decode_image(path, preprocessing)
        except Exception as exc:
            failed.append((i, _reason(exc)))
            continue
        ok.append(i)
    return pixels[: len(ok)], ok, failed


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "FileNotFoundError: no such file"
    # Pillow names the in-memory buffer it was given ("<_io.BytesIO object at 0x...>"),
    # which says nothing: the file's path is in the failure's own column.
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text or 'unreadable'}"
