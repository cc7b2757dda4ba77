"""The encoder interface: what every image (and image-text) encoder offers the pipeline.

An :class:`Encoder` turns a batch of already decoded, resized and cropped pixels (``uint8``,
``NHWC``, ``preprocessing.size`` square) into float32 vectors. Decoding and resizing happen
outside the encoder (in worker processes), so the encoder only normalises and runs the model.
The :class:`Preprocessing` it declares drives that decoding and is stored, with the encoder's
name and version, in the embeddings file's metadata.

This module imports neither torch nor any model package.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from geoaware.errors import GeoawareError, UsageError

__all__ = ["Encoder", "NoTextTowerError", "Preprocessing", "UnknownEncoderError"]

ResizePolicy = Literal["center_crop", "squash"]
Interpolation = Literal["bilinear", "bicubic"]


class UnknownEncoderError(GeoawareError, ValueError):
    """An encoder name that no adapter knows."""


class NoTextTowerError(GeoawareError, TypeError):
    """``encode_text`` was called on an image-only encoder."""


@dataclass(frozen=True)
class Preprocessing:
    """How pixels are prepared for an encoder.

    Attributes
    ----------
    size : int
        Side of the square model input, in pixels.
    resize : {"center_crop", "squash"}
        ``center_crop``: take the centred square of side ``crop_fraction`` x the shorter side
        and resize it to ``size`` (the usual "resize to size / crop_fraction, centre-crop
        size"); ``squash``: resize the whole image to ``size`` x ``size``, ignoring its aspect.
    crop_fraction : float
        Fraction of the shorter side kept by ``center_crop`` (0.875 is ImageNet's 224/256).
    interpolation : {"bilinear", "bicubic"}
        Resampling filter of the resize (Pillow's, with antialiasing).
    mean, std : tuple of three floats
        Per-channel (RGB) normalisation in pixel units 0-255: the model sees
        ``(pixel - mean) / std``.

    Examples
    --------
    >>> p = Preprocessing(224, mean=(127.0,) * 3, std=(128.0,) * 3)
    >>> p.decode_side
    256
    >>> p.to_dict()["resize"]
    'center_crop'
    """

    size: int = 224
    resize: ResizePolicy = "center_crop"
    crop_fraction: float = 0.875
    interpolation: Interpolation = "bicubic"
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise UsageError(f"size must be positive, got {self.size}")
        if self.resize not in ("center_crop", "squash"):
            raise UsageError(f"resize must be 'center_crop' or 'squash', got {self.resize!r}")
        if not 0 < self.crop_fraction <= 1:
            raise UsageError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise UsageError(
                f"interpolation must be 'bilinear' or 'bicubic', got {self.interpolation!r}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise UsageError(f"mean and std need 3 values, std > 0; got {self.mean}, {self.std}")

    @property
    def decode_side(self) -> int:
        """The shorter side a decoder must deliver at least, so the resize only shrinks."""
        if self.resize == "squash":
            return self.size
        return math.ceil(self.size / self.crop_fraction - 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready values (tuples as lists), as stored in the embeddings metadata."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_unit(
        cls,
        size: int,
        mean: tuple[float, ...] | list[float],
        std: tuple[float, ...] | list[float],
        **kwargs: Any,
    ) -> Preprocessing:
        """Build from mean/std given on the 0-1 scale (torchvision, timm, open_clip style).

        >>> Preprocessing.from_unit(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).mean
        (127.5, 127.5, 127.5)
        """
        m = tuple(float(v) * 255.0 for v in mean)
        s = tuple(float(v) * 255.0 for v in std)
        if len(m) != 3 or len(s) != 3:
            raise UsageError(f"mean and std need 3 values, got {mean}, {std}")
        return cls(size, mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]), **kwargs)


class Encoder(ABC):
    """An image encoder: pixels in, one float32 vector per image out.

    Subclasses set :attr:`name`, :attr:`version`, :attr:`dim` and :attr:`preprocessing`
    (in ``__init__`` or as class attributes) and implement :meth:`encode_images`;
    image-text encoders also override :meth:`encode_text`.

    Examples
    --------
    >>> class Mean(Encoder):
    ...     name, version, dim, preprocessing = "mean-rgb", "1", 3, Preprocessing(8)
    ...     def encode_images(self, batch):
    ...         return batch.mean(axis=(1, 2)).astype(np.float32)
    >>> Mean().encode_images(np.full((2, 8, 8, 3), 10, np.uint8)).shape
    (2, 3)
    >>> Mean().encode_text(["a dog"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoaware.vision.encoders.base.NoTextTowerError: encoder 'mean-rgb' has no text tower: ...
    """

    name: str
    version: str
    dim: int
    preprocessing: Preprocessing

    @abstractmethod
    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """Encode ``batch`` (uint8, ``(n, size, size, 3)``, RGB) into float32 ``(n, dim)``."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Encode texts into float32 ``(n, dim)`` vectors (image-text encoders only)."""
        raise NoTextTowerError(
            f"encoder {self.name!r} has no text tower: use an image-text encoder such as "
            "'open_clip:ViT-B-32/openai' or 'bioclip'"
        )

    @property
    def normalized(self) -> bool:
        """Whether :meth:`encode_images` returns unit-length vectors."""
        return False

    def describe(self) -> dict[str, Any]:
        """Return name, version, dim and preprocessing as JSON-ready values."""
        return {
            "name": self.name,
            "version": self.version,
            "dim": self.dim,
            "preprocessing": self.preprocessing.to_dict(),
        }
