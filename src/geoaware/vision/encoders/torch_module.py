"""Wrap any ``torch.nn.Module`` as an :class:`~geoaware.vision.encoders.base.Encoder`.

:class:`TorchModuleEncoder` does what every torch image encoder needs: it moves the uint8
``NHWC`` batch to the device, normalises it there (``(pixel - mean) / std``), keeps it in
channels-last memory layout (the ``NHWC`` array already is; convolutions on CPU run faster so),
and runs the module in eval mode under :func:`torch.inference_mode`. The built-in encoders are
thin subclasses of it.
"""

from __future__ import annotations

import numpy as np
import torch

from geoaware.errors import UsageError
from geoaware.vision.encoders.base import Encoder, Preprocessing

__all__ = ["TorchModuleEncoder", "pick_device"]


def pick_device(device: str | None = None) -> torch.device:
    """Return ``device``, or CUDA when available and None was given, else CPU.

    Examples
    --------
    >>> pick_device("cpu")
    device(type='cpu')
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


class TorchModuleEncoder(Encoder):
    """An encoder around a module mapping normalised ``(n, 3, size, size)`` floats to vectors.

    Parameters
    ----------
    module
        Any ``torch.nn.Module``; its output is flattened to ``(n, dim)``.
    name, dim, preprocessing
        As in :class:`~geoaware.vision.encoders.base.Encoder`; ``name`` goes into the
        embeddings metadata, so make it say which weights were used.
    version
        Free text stored with the vectors (weights file, package version, ...).
    device
        None picks CUDA when available.
    channels_last
        Run in channels-last memory format (faster convolutions on CPU and on tensor cores).
    normalize
        L2-normalise the output vectors.

    Examples
    --------
    >>> enc = TorchModuleEncoder(
    ...     torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),
    ...     name="mean-colour", dim=3, preprocessing=Preprocessing(16), device="cpu")
    >>> enc.encode_images(np.zeros((2, 16, 16, 3), np.uint8)).shape
    (2, 3)
    """

    def __init__(
        self,
        module: torch.nn.Module,
        name: str,
        dim: int,
        preprocessing: Preprocessing,
        *,
        version: str = "",
        device: str | None = None,
        channels_last: bool = True,
        normalize: bool = False,
    ) -> None:
        self.name = name
        self.version = version
        self.dim = int(dim)
        self.preprocessing = preprocessing
        self.device = pick_device(device)
        self.channels_last = channels_last
        self._normalize = normalize
        module = module.eval().to(self.device)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.module = module
        self._mean = torch.tensor(preprocessing.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(preprocessing.std, dtype=torch.float32, device=self.device)

    @property
    def normalized(self) -> bool:
        """Whether vectors are L2-normalised."""
        return self._normalize

    def to_input(self, batch: np.ndarray) -> torch.Tensor:
        """Move a uint8 ``NHWC`` batch to the device as normalised float ``NCHW``."""
        size = self.preprocessing.size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
            raise UsageError(
                f"{self.name}: expected uint8 pixels of shape (n, {size}, {size}, 3), "
                f"got {batch.dtype} {batch.shape}"
            )
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        x = (x.float() - self._mean) / self._std  # still NHWC
        x = x.permute(0, 3, 1, 2)  # NCHW view with channels-last strides
        return x if self.channels_last else x.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the module on a normalised input; override to pick another output."""
        out: torch.Tensor = self.module(x)
        return out

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """Encode uint8 ``(n, size, size, 3)`` pixels into float32 ``(n, dim)`` vectors."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            out = self.forward(self.to_input(batch)).reshape(len(batch), -1).float()
            if out.shape[1] != self.dim:
                raise UsageError(f"{self.name}: module gave {out.shape[1]} values, not {self.dim}")
            if self._normalize:
                out = torch.nn.functional.normalize(out, dim=1)
            result: np.ndarray = out.cpu().numpy()
        return result
