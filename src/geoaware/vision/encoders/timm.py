"""Any timm model as a feature extractor: ``timm:<name>`` (``pip install timm``).

The model is created with ``num_classes=0``, so its output is the pooled feature vector
(``model.num_features`` values); pretrained weights come from the Hugging Face Hub (downloaded
once, cached). Input size, crop fraction, interpolation, mean and std are timm's own data
config for that model.
"""

from __future__ import annotations

from types import ModuleType

from geoaware.errors import DependencyNotFoundError
from geoaware.vision.encoders.base import Preprocessing
from geoaware.vision.encoders.torch_module import TorchModuleEncoder

__all__ = ["TimmEncoder", "import_timm"]


def import_timm() -> ModuleType:
    """Import ``timm``, or raise :class:`DependencyNotFoundError` naming the package."""
    try:
        import timm  # type: ignore[import-not-found,unused-ignore]
        import timm.data  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DependencyNotFoundError(
            f"timm encoders need the package timm: pip install timm ({exc})"
        ) from exc
    module: ModuleType = timm
    return module


class TimmEncoder(TorchModuleEncoder):
    """A timm model's pooled features.

    Examples
    --------
    >>> enc = TimmEncoder("convnext_tiny.fb_in1k")  # doctest: +SKIP
    >>> enc.dim  # doctest: +SKIP
    768
    """

    def __init__(self, model_name: str, *, device: str | None = None) -> None:
        timm = import_timm()
        model = timm.create_model(model_name, pretrained=True, num_classes=0)
        data = timm.data
        if hasattr(data, "resolve_model_data_config"):
            cfg = data.resolve_model_data_config(model)
        else:  # pragma: no cover - old timm
            cfg = data.resolve_data_config({}, model=model)
        size = int(cfg["input_size"][-1])
        interpolation = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"
        squash = cfg.get("crop_mode") == "squash"
        preprocessing = Preprocessing.from_unit(
            size,
            tuple(cfg["mean"]),
            tuple(cfg["std"]),
            resize="squash" if squash else "center_crop",
            crop_fraction=min(1.0, float(cfg.get("crop_pct") or 1.0)),
            interpolation=interpolation,
        )
        super().__init__(
            model,
            name=f"timm:{model_name}",
            dim=int(model.num_features),
            preprocessing=preprocessing,
            version=f"timm {timm.__version__}; {model_name}",
            device=device,
        )
