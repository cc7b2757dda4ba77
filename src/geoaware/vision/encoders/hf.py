"""Dual encoders through ``transformers``: ``hf:<model folder>`` or ``hf:<org>/<repo>``.

Any checkpoint that ``transformers`` loads with ``AutoModel`` and that has
``get_image_features`` and ``get_text_features`` works: CLIP, SigLIP (Git-RSCLIP is a SigLIP
checkpoint), SigLIP 2, and the other dual encoders. Needs the ``hf`` extra
(``pip install 'geoaware[hf]'``: ``transformers``, ``tokenizers``); torchvision is not
needed.

Nothing reaches a model hub: a model is read from a local folder, or from the Hugging Face
cache (``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``) with
``local_files_only=True``; one that is not there is a :class:`ModelNotFoundError` naming it,
the cache folder and the command that fetches it (``hf download <org>/<repo>``).

Pixels: the model's own image processor (its slow, Pillow-based version) says how images are
prepared; its settings (resize of the shorter side then centre crop, or a squash to a
square; the resampling filter; the rescale factor, mean and std) become the encoder's
:class:`~geoaware.vision.encoders.base.Preprocessing`, which ``embed``'s decoder workers
apply, so the model only normalises and runs. Image vectors are ``get_image_features``'s
output as is (not normalised: GeoCLIP's image MLP wants them so); text vectors likewise. On
a GPU the model runs in float16 (``precision`` picks bfloat16 or float32), on a CPU in float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoaware.errors import DependencyNotFoundError, GeoawareError, InputFileError, UsageError
from geoaware.vision.encoders.base import Preprocessing
from geoaware.vision.encoders.torch_module import TorchModuleEncoder

__all__ = [
    "HF_INSTALL",
    "HfEncoder",
    "ModelNotFoundError",
    "hub_cache",
    "preprocessing_from_processor",
]

HF_INSTALL = "pip install 'geoaware[hf]'  (or: pip install transformers tokenizers)"
_TEXT_BATCH = 256
_SQUARE_PAD = ("siglip", "siglip2")  # text towers trained on prompts padded to max_length


class ModelNotFoundError(GeoawareError, FileNotFoundError):
    """A ``hf:`` model is neither a local folder nor in the local Hugging Face cache."""


def hub_cache() -> str:
    """Return the Hugging Face cache folder that ``hf:<org>/<repo>`` models are read from.

    Examples
    --------
    >>> isinstance(hub_cache(), str)
    True
    """
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers brings huggingface_hub
        return os.path.expanduser("~/.cache/huggingface/hub")
    return str(constants.HF_HUB_CACHE)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise DependencyNotFoundError(
            f"hf: encoders need the packages transformers and tokenizers: {HF_INSTALL} ({exc})"
        ) from exc
    return transformers


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """Silence transformers' loading bars and notices (errors still raise)."""
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _as_dict(value: Any) -> Any:
    """Return a processor size (dict, transformers' ``SizeDict`` or int) as a dict without Nones."""
    if value is None or isinstance(value, (int, float)):
        return value
    items = value.items() if isinstance(value, dict) else vars(value).items()
    return {k: v for k, v in items if v is not None}


def _side(value: Any, key: str, name: str) -> int:
    value = _as_dict(value)
    if isinstance(value, dict):
        if key in value:
            return int(value[key])
        if "height" in value:
            return int(value["height"])
        raise GeoawareError(f"{name}: unsupported crop_size setting {value!r}")
    return int(value)


def preprocessing_from_processor(processor: Any) -> Preprocessing:
    """Translate a transformers image processor's settings into a :class:`Preprocessing`.

    ``size={"shortest_edge": s}`` with a centre crop of ``c`` becomes ``center_crop`` at
    ``c`` keeping ``c / s`` of the shorter side; ``size={"height": h, "width": h}`` without
    a crop becomes ``squash``. Mean and std move to pixel units through the rescale factor.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> p = preprocessing_from_processor(NS(size={"shortest_edge": 256},
    ...     crop_size={"height": 224, "width": 224}, do_center_crop=True, resample=3,
    ...     do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
    ...     image_mean=[0.5] * 3, image_std=[0.5] * 3, do_resize=True))
    >>> p.size, p.resize, p.crop_fraction, p.interpolation, p.mean
    (224, 'center_crop', 0.875, 'bicubic', (127.5, 127.5, 127.5))
    """
    name = type(processor).__name__
    size = _as_dict(getattr(processor, "size", None)) or {}
    crop = bool(getattr(processor, "do_center_crop", False))
    if not getattr(processor, "do_resize", True):
        raise GeoawareError(f"{name}: processors that do not resize are not supported")
    if isinstance(size, dict) and "shortest_edge" in size:
        short = int(size["shortest_edge"])
        side = (
            _side(getattr(processor, "crop_size", None) or short, "height", name) if crop else short
        )
        if not crop:
            raise GeoawareError(
                f"{name}: a shortest-edge resize without a centre crop gives images of "
                "varying shape; not supported"
            )
        resize, fraction = "center_crop", min(1.0, side / short)
    elif isinstance(size, dict) and "height" in size:
        if int(size["height"]) != int(size.get("width") or size["height"]):
            raise GeoawareError(f"{name}: non-square input {size} is not supported")
        side = int(size["height"])
        if crop:
            side = _side(getattr(processor, "crop_size", None) or side, "height", name)
        resize, fraction = "squash", 1.0
    else:
        raise GeoawareError(f"{name}: unsupported size setting {size!r}")
    resample = int(getattr(processor, "resample", 3) or 3)
    interpolation = {2: "bilinear", 3: "bicubic"}.get(resample)
    if interpolation is None:
        raise GeoawareError(f"{name}: resampling filter {resample} is not supported")
    scale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean = [float(v) for v in processor.image_mean]
        std = [float(v) for v in processor.image_std]
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    m = tuple(v / scale for v in mean)
    s = tuple(v / scale for v in std)
    try:
        return Preprocessing(
            side,
            resize=resize,  # type: ignore[arg-type]
            crop_fraction=fraction,
            interpolation=interpolation,  # type: ignore[arg-type]
            mean=(m[0], m[1], m[2]),
            std=(s[0], s[1], s[2]),
        )
    except UsageError as exc:  # a size, crop or std setting out of range
        raise UsageError(f"{name}: {exc}") from exc


def _locate(spec: str) -> tuple[str, str]:
    """Return (path to load from, canonical name) for a folder or a cached hub model."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path.resolve()), f"hf:{path.resolve()}"
    if path.is_absolute() or spec.startswith((".", "~")) or spec.count("/") > 1:
        raise ModelNotFoundError(f"hf:{spec}: no such model folder")
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(spec, local_files_only=True)
    except Exception as exc:  # LocalEntryNotFoundError, OfflineModeIsEnabled, bad ids
        raise ModelNotFoundError(
            f"hf:{spec}: model not found in the local Hugging Face cache {hub_cache()} "
            f"(geoaware never downloads models); fetch it with: hf download {spec}  "
            f"({type(exc).__name__})"
        ) from None
    return folder, f"hf:{spec}"


def _fingerprint(folder: str) -> str:
    """Return a short id of a model folder: its config and the sizes of its weight files."""
    root = Path(folder)
    h = hashlib.sha256()
    for f in sorted(root.iterdir()):
        if f.name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix in (".safetensors", ".bin") and f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    snapshot = root.name if root.parent.name == "snapshots" else ""
    return snapshot or h.hexdigest()[:12]


def _features(out: Any) -> torch.Tensor:
    """Return the projected features of ``get_*_features`` (a tensor in 4.x, an output in 5.x)."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    return out[0]  # type: ignore[no-any-return]


class HfEncoder(TorchModuleEncoder):
    """A ``transformers`` dual encoder: image tower for ``embed``, text tower for evaluation.

    Parameters
    ----------
    spec
        A model folder (written by ``save_pretrained``) or a hub id already in the local
        cache (``openai/clip-vit-large-patch14``), without the ``hf:`` prefix.
    device
        None picks CUDA when available.
    precision
        ``auto`` (float16/bfloat16 on a GPU, float32 on a CPU), ``float32``, ``float16`` or
        ``bfloat16``.

    Raises
    ------
    ModelNotFoundError
        When the model is neither a folder nor in the local cache.
    DependencyNotFoundError
        When transformers is not installed.

    Examples
    --------
    >>> enc = HfEncoder("openai/clip-vit-large-patch14")  # doctest: +SKIP
    >>> enc.dim, enc.preprocessing.size  # doctest: +SKIP
    (768, 224)
    """

    def __init__(self, spec: str, device: str | None = None, precision: str = "auto") -> None:
        transformers = _import_transformers()
        folder, name = _locate(spec)
        with _quiet(transformers):
            try:
                model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
                processor = transformers.AutoImageProcessor.from_pretrained(
                    folder, backend="pil", local_files_only=True
                )
            except (OSError, ValueError, KeyError) as exc:
                raise ModelNotFoundError(
                    f"{name}: transformers cannot load this model folder {folder} ({exc})"
                ) from None
        for method in ("get_image_features", "get_text_features"):
            if not callable(getattr(model, method, None)):
                raise GeoawareError(
                    f"{name}: {type(model).__name__} is not a dual encoder (no {method}); "
                    "hf: encoders need image and text towers (CLIP, SigLIP, ...)"
                )
        self.folder = folder
        self.processor = processor
        self._tokenizer: Any = None
        self.model_type = str(getattr(model.config, "model_type", ""))
        self._dtype = _pick_dtype(precision, device)
        dim = _projection_dim(model)
        try:
            pre = preprocessing_from_processor(processor)
        except GeoawareError as exc:  # the folder's image-processor settings
            raise InputFileError(Path(folder) / "preprocessor_config.json", str(exc)) from exc
        super().__init__(
            model,
            name=name,
            dim=dim,
            preprocessing=pre,
            version=(
                f"transformers {transformers.__version__}; {type(model).__name__}; "
                f"revision {_fingerprint(folder)}; {type(processor).__name__}"
            ),
            device=device,
            channels_last=False,
        )
        if self._dtype is not torch.float32:
            self.module = self.module.to(self._dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image tower: ``get_image_features`` of normalised pixels."""
        return _features(self.module.get_image_features(pixel_values=x.to(self._dtype)))  # type: ignore[operator]

    @property
    def tokenizer(self) -> Any:
        """The model folder's tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            transformers = _import_transformers()
            with _quiet(transformers):
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.folder, local_files_only=True
                )
        return self._tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenize as the model card does: SigLIP pads to full length, CLIP to the batch.

        The tokenizer decides which inputs there are (SigLIP's gives no attention mask).
        """
        config: Any = self.module.config
        max_len = int(getattr(config.text_config, "max_position_embeddings", 77))
        padding: str | bool = "max_length" if self.model_type in _SQUARE_PAD else True
        batch = self.tokenizer(
            list(texts), padding=padding, truncation=True, max_length=max_len, return_tensors="pt"
        )
        return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Encode texts with the text tower: float32 ``(n, dim)`` (``get_text_features``)."""
        parts = [np.zeros((0, self.dim), np.float32)]
        with torch.inference_mode():
            for s in range(0, len(texts), _TEXT_BATCH):
                batch = {
                    k: v.to(self.device)
                    for k, v in self.tokenize(texts[s : s + _TEXT_BATCH]).items()
                }
                out = _features(self.module.get_text_features(**batch))  # type: ignore[operator]
                parts.append(out.float().cpu().numpy())
        return np.concatenate(parts)

    def describe(self) -> dict[str, Any]:
        """Name, version, dim, preprocessing, and the model folder."""
        d = super().describe()
        d["folder"] = self.folder
        return d


def _projection_dim(model: Any) -> int:
    cfg = model.config
    for key in ("projection_dim",):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    vision = getattr(cfg, "vision_config", None)
    return int(getattr(vision, "hidden_size", 0) or cfg.hidden_size)


def _pick_dtype(precision: str, device: str | None) -> torch.dtype:
    if precision == "auto":
        on_gpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        return torch.float16 if on_gpu else torch.float32
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if precision not in dtypes:
        raise UsageError(f"precision must be auto or one of {sorted(dtypes)}, got {precision!r}")
    return dtypes[precision]
