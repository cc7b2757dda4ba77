"""GeoCLIP's trained weights (Vivanco Cepeda et al., NeurIPS 2023) from the ``geoclip`` package.

The ``geoclip`` PyPI package ships what GeoCLIP learnt besides its frozen CLIP backbone:
the location encoder (``weights/location_encoder_weights.pth``), the image-side MLP on CLIP
ViT-L/14 image features (``image_encoder_mlp_weights.pth``), the logit scale
(``logit_scale_weights.pth``) and its 100K-point GPS gallery
(``gps_gallery/coordinates_100K.csv``). Those files are loaded here directly with
``torch.load(weights_only=True)``; the package itself is never imported, so nothing of it
reaches a hub. Install it with ``pip install --no-deps geoclip`` (its declared dependencies
pull torchvision, which replaces the CPU torch).

:class:`GeoClipLocationEncoder` is GeoCLIP's architecture (Equal Earth projection, random
Fourier features at scales 2^0, 2^4, 2^8, one MLP per scale, summed), with the package's
parameter names so its state dict loads unchanged; it computes in the same order as the
package, so the features agree to float32 rounding. The image vectors it pairs with are CLIP
ViT-L/14's projected image features, not normalised: ``geoaware embed --encoder
hf:openai/clip-vit-large-patch14``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geoaware.errors import DependencyNotFoundError, InputFileError

__all__ = [
    "GEOCLIP_BACKBONE",
    "GEOCLIP_DIM",
    "GEOCLIP_INSTALL",
    "GeoClipLocationEncoder",
    "equal_earth",
    "geoclip_files",
    "geoclip_image_mlp",
    "load_geoclip_weights",
]

GEOCLIP_INSTALL = "pip install --no-deps geoclip"
GEOCLIP_BACKBONE = "openai/clip-vit-large-patch14"
GEOCLIP_DIM = 768  # CLIP ViT-L/14 projected image features
_SIGMAS = (2.0**0, 2.0**4, 2.0**8)
_A1, _A2, _A3, _A4, _SF = 1.340264, -0.081106, 0.000893, 0.003796, 66.50336


def geoclip_files() -> dict[str, Path]:
    """Return the paths of the ``geoclip`` package's weight and gallery files.

    Raises
    ------
    DependencyNotFoundError
        When the package is not installed, or lacks a file (the message says how to install).
    """
    spec = importlib.util.find_spec("geoclip")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyNotFoundError(
            f"GeoCLIP's weights come from the geoclip package: {GEOCLIP_INSTALL}"
        )
    model = Path(next(iter(spec.submodule_search_locations))) / "model"
    files = {
        "location": model / "weights" / "location_encoder_weights.pth",
        "image_mlp": model / "weights" / "image_encoder_mlp_weights.pth",
        "logit_scale": model / "weights" / "logit_scale_weights.pth",
        "gallery": model / "gps_gallery" / "coordinates_100K.csv",
    }
    for path in files.values():
        if not path.is_file():
            raise DependencyNotFoundError(
                f"{path}: missing from the installed geoclip package; reinstall it: "
                f"{GEOCLIP_INSTALL}"
            )
    return files


def equal_earth(latlon: torch.Tensor) -> torch.Tensor:
    """Project ``(n, 2)`` latitude/longitude degrees as GeoCLIP does (Equal Earth, scaled).

    Examples
    --------
    >>> equal_earth(torch.tensor([[0.0, 0.0]])).tolist()
    [[0.0, 0.0]]
    """
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    root3 = torch.sqrt(torch.tensor(3.0))
    theta = torch.asin((root3 / 2) * torch.sin(lat))
    denominator = 3 * (9 * _A4 * theta**8 + 7 * _A3 * theta**6 + 3 * _A2 * theta**2 + _A1)
    x = (2 * root3 * lon * torch.cos(theta)) / denominator
    y = _A4 * theta**9 + _A3 * theta**7 + _A2 * theta**3 + _A1 * theta
    return (torch.stack((x, y), dim=1) * _SF) / 180


class _Fourier(nn.Module):
    """Random Fourier features ``[cos 2 pi v B^T, sin 2 pi v B^T]`` (B fixed: a buffer-like)."""

    def __init__(self, sigma: float, features: int = 256) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.randn(features, 2) * sigma, requires_grad=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        vp = 2 * np.pi * v @ self.b.T
        return torch.cat((torch.cos(vp), torch.sin(vp)), dim=-1)


class _Capsule(nn.Module):
    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.capsule = nn.Sequential(
            _Fourier(sigma),
            nn.Linear(512, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(1024, 512))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.capsule(x))
        return out


class GeoClipLocationEncoder(nn.Module):
    """GeoCLIP's location encoder: ``(n, 2)`` latitude/longitude degrees to ``(n, 512)``.

    Parameter names follow the ``geoclip`` package (``LocEnc0.capsule.0.b``, ...), so its
    ``location_encoder_weights.pth`` loads with :meth:`load_state_dict`.

    Examples
    --------
    >>> enc = GeoClipLocationEncoder()
    >>> enc(torch.tensor([[48.85, 2.35]])).shape
    torch.Size([1, 512])
    """

    def __init__(self) -> None:
        super().__init__()
        for i, sigma in enumerate(_SIGMAS):
            self.add_module(f"LocEnc{i}", _Capsule(sigma))

    def forward(self, latlon: torch.Tensor) -> torch.Tensor:
        """Encode coordinates (degrees, latitude first)."""
        v = equal_earth(latlon)
        out = torch.zeros(v.shape[0], 512, device=v.device)
        for i in range(len(_SIGMAS)):
            out += self._modules[f"LocEnc{i}"](v)  # type: ignore[misc]
        return out

    @staticmethod
    def from_unit(u: torch.Tensor) -> torch.Tensor:
        """Return the latitude/longitude degrees of unit vectors (x, y, z), as ``(n, 2)``."""
        lat = torch.rad2deg(torch.asin(u[:, 2].clamp(-1.0, 1.0)))
        lon = torch.rad2deg(torch.atan2(u[:, 1], u[:, 0]))
        return torch.stack([lat, lon], dim=1)


def geoclip_image_mlp() -> nn.Sequential:
    """Return GeoCLIP's image-side MLP layout (768 -> 768 -> 512), untrained."""
    return nn.Sequential(nn.Linear(GEOCLIP_DIM, 768), nn.ReLU(), nn.Linear(768, 512))


def _load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputFileError(path, f"GeoCLIP weights do not load ({exc})") from exc


def load_geoclip_weights(
    location: nn.Module, image_mlp: nn.Module, log_scale: nn.Parameter
) -> None:
    """Load the package's trained weights into a location encoder, an image MLP and a scale.

    Examples
    --------
    >>> loc, mlp = GeoClipLocationEncoder(), geoclip_image_mlp()  # doctest: +SKIP
    >>> scale = nn.Parameter(torch.tensor(0.0))  # doctest: +SKIP
    >>> load_geoclip_weights(loc, mlp, scale)  # doctest: +SKIP
    >>> round(float(scale.exp()), 1)  # doctest: +SKIP
    """
    files = geoclip_files()
    location.load_state_dict(_load(files["location"]))  # type: ignore[arg-type]
    image_mlp.load_state_dict(_load(files["image_mlp"]))  # type: ignore[arg-type]
    scale = _load(files["logit_scale"])
    if not isinstance(scale, torch.Tensor) or scale.numel() != 1:
        raise InputFileError(files["logit_scale"], "not a scalar logit scale")
    with torch.no_grad():
        log_scale.copy_(scale.reshape(log_scale.shape).float())


def initial_log_scale() -> float:
    """Return GeoCLIP's initial log logit scale, ``log(1 / 0.07)``."""
    return math.log(1 / 0.07)
