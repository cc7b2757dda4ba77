"""OpenCLIP models (image and text towers): ``open_clip:<arch>/<pretrained>``.

Needs ``pip install open_clip_torch`` (which brings torchvision). Image vectors come from
``model.encode_image`` and text vectors from ``model.encode_text``, both L2-normalised, so a
dot product is the cosine similarity CLIP was trained on. The preprocessing (input size,
mean, std, interpolation, resize mode) is read from the model's ``visual.preprocess_cfg``;
CLIP's own resize is "shorter side to the input size, then centre crop", i.e.
``crop_fraction=1.0``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

from geoaware.errors import DependencyNotFoundError
from geoaware.vision.encoders.base import Preprocessing
from geoaware.vision.encoders.torch_module import TorchModuleEncoder

__all__ = ["OpenClipEncoder", "import_open_clip"]

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def import_open_clip() -> ModuleType:
    """Import ``open_clip``, or raise :class:`DependencyNotFoundError` naming the package."""
    try:
        import open_clip  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DependencyNotFoundError(
            "OpenCLIP encoders need the package open_clip_torch (it brings torchvision): "
            f"pip install open_clip_torch ({exc})"
        ) from exc
    module: ModuleType = open_clip
    return module


def _preprocessing(visual: Any) -> Preprocessing:
    cfg = dict(getattr(visual, "preprocess_cfg", None) or {})
    size = cfg.get("size", getattr(visual, "image_size", 224))
    if isinstance(size, (tuple, list)):
        size = size[0]
    mode = cfg.get("resize_mode", "shortest")
    interpolation = cfg.get("interpolation", "bicubic")
    return Preprocessing.from_unit(
        int(size),
        tuple(cfg.get("mean") or _OPENAI_MEAN),
        tuple(cfg.get("std") or _OPENAI_STD),
        resize="squash" if mode == "squash" else "center_crop",
        crop_fraction=1.0,
        interpolation="bilinear" if interpolation == "bilinear" else "bicubic",
    )


class OpenClipEncoder(TorchModuleEncoder):
    """An OpenCLIP model: ``encode_images`` and ``encode_text``, unit-length vectors.

    Parameters
    ----------
    model_name
        An OpenCLIP architecture (``"ViT-B-32"``) or ``"hf-hub:<org>/<repo>"``.
    pretrained
        The pretrained tag (``"laion2b_s34b_b79k"``, ``"openai"``); None for hf-hub models.
    name
        The name stored in the embeddings metadata (default ``open_clip:<arch>/<pretrained>``).
    device
        None picks CUDA when available.

    Examples
    --------
    >>> enc = OpenClipEncoder.from_name("ViT-B-32/openai")  # doctest: +SKIP
    >>> enc.encode_text(["a photo of a street in Paris"]).shape  # doctest: +SKIP
    (1, 512)
    """

    def __init__(
        self,
        model_name: str,
        pretrained: str | None = None,
        *,
        name: str | None = None,
        device: str | None = None,
    ) -> None:
        open_clip = import_open_clip()
        model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        visual = model.visual
        dim = int(getattr(visual, "output_dim", 0) or model.text_projection.shape[1])
        label = name or f"open_clip:{model_name}" + (f"/{pretrained}" if pretrained else "")
        super().__init__(
            model,
            name=label,
            dim=dim,
            preprocessing=_preprocessing(visual),
            version=f"open_clip {open_clip.__version__}; {model_name}/{pretrained or ''}",
            device=device,
            normalize=True,
        )

    @classmethod
    def from_name(cls, spec: str, device: str | None = None) -> OpenClipEncoder:
        """Load from ``"<arch>/<pretrained>"`` (the part after ``open_clip:``)."""
        arch, _, pretrained = spec.partition("/")
        if arch == "hf-hub":  # "hf-hub:org/repo" arrives as "hf-hub:org/repo"
            return cls(spec, None, device=device)
        return cls(arch, pretrained or None, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image tower."""
        out: torch.Tensor = self.module.encode_image(x)  # type: ignore[operator]
        return out

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Encode texts with the text tower into unit-length float32 ``(n, dim)`` vectors."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            out = self.module.encode_text(tokens).float()  # type: ignore[operator]
            out = torch.nn.functional.normalize(out, dim=1)
            result: np.ndarray = out.cpu().numpy()
        return result
