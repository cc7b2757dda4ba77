"""Network inputs: location encodings (wrap, unit vector, multi-scale, GeoCLIP) and the date.

The numpy encodings come from :mod:`geoaware.geo.encode`; GeoCLIP's pretrained location
encoder (Vivanco et al. 2023) is loaded from the optional ``geoclip`` package, offline (its
weights ship with the package; its image model is never loaded).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from geoaware.errors import DependencyNotFoundError
from geoaware.geo.encode import unit_vector, wrap_encode
from geoaware.priors.config import PriorConfig
from geoaware.typing import Float32Array, Float64Array

if TYPE_CHECKING:
    import torch

__all__ = [
    "date_features",
    "encode_inputs",
    "fourier_encode",
    "fourier_frequencies",
    "geoclip_encoder",
    "multiscale_encode",
    "parse_date",
]

_GEOCLIP_BATCH = 8192
#: Random directions per level of the ``"fourier"`` encoding.
FOURIER_PER_LEVEL = 8
_FOURIER_SEED = 20240612


def date_features(fraction: npt.ArrayLike) -> Float64Array:
    """Encode fractions of the year as ``[sin 2 pi f, cos 2 pi f]``; NaN (no date) gives (0, 0).

    Examples
    --------
    >>> date_features([0.0, float("nan")]).round(6).tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    f = np.atleast_1d(np.asarray(fraction, dtype=np.float64))
    out = np.stack([np.sin(2 * np.pi * f), np.cos(2 * np.pi * f)], axis=-1)
    out[~np.isfinite(f)] = 0.0
    return out


def multiscale_encode(lat: npt.ArrayLike, lon: npt.ArrayLike, levels: int) -> Float64Array:
    """Encode points at ``levels`` dyadic frequencies; shape ``(n, 4 levels)``.

    For ``k = 0 .. levels - 1``, the four columns ``4k .. 4k + 3`` are ``sin``/``cos`` of
    ``2^k pi lon/180`` and of ``2^k pi lat/90``: level 0 is the wrap encoding, and every level
    is continuous across the antimeridian (integer frequencies of the longitude).

    Examples
    --------
    >>> x = multiscale_encode([10.0], [20.0], 3)
    >>> x.shape, bool(np.allclose(x[:, :4], wrap_encode([10.0], [20.0])))
    ((1, 12), True)
    >>> east, west = multiscale_encode([5.0, 5.0], [180.0, -180.0], 4)
    >>> bool(np.allclose(east, west))
    True
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    wrap_encode(la, lo)  # checks the range
    f = 2.0 ** np.arange(levels)
    a = (np.pi * lo / 180.0)[:, None] * f
    b = (np.pi * la / 90.0)[:, None] * f
    out: Float64Array = np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], axis=-1).reshape(
        la.size, 4 * levels
    )
    return out


@functools.cache
def fourier_frequencies(levels: int) -> Float64Array:
    """Return the fixed frequency vectors of the ``"fourier"`` encoding, shape ``(3, 8 levels)``.

    Level ``k`` holds :data:`FOURIER_PER_LEVEL` vectors in random directions (uniform on the
    sphere, from a fixed seed, so every model and process gets the same ones) of length
    ``2^(k+1)``: on the unit sphere a feature ``sin(w . u)`` then has the wavelength of the
    multiscale encoding's latitude term at level ``k`` (40,030 km / 2^(k+1) across its
    direction).

    Examples
    --------
    >>> w = fourier_frequencies(3)
    >>> w.shape, np.round(np.linalg.norm(w, axis=0)[::8], 6).tolist()
    ((3, 24), [2.0, 4.0, 8.0])
    """
    rng = np.random.default_rng(_FOURIER_SEED)
    d = rng.normal(size=(3, FOURIER_PER_LEVEL * levels))
    d /= np.linalg.norm(d, axis=0, keepdims=True)
    scale = np.repeat(2.0 ** (np.arange(levels) + 1), FOURIER_PER_LEVEL)
    out: Float64Array = d * scale
    return out


def fourier_encode(lat: npt.ArrayLike, lon: npt.ArrayLike, levels: int) -> Float64Array:
    """Encode points as random Fourier features of their 3-D unit vector, ``(n, 16 levels)``.

    ``[sin(u W), cos(u W)]`` with ``W`` = :func:`fourier_frequencies`. Unlike the multiscale
    (and wrap) encoding, no feature depends on the latitude or the longitude alone: a
    separable input lets the network draw a range as "latitude near x" plus "longitude near
    y", which paints bands along the whole parallel and meridian of the observations (the
    stripes of small-data range maps). Random directions at dyadic scales (as GeoCLIP's random
    Fourier features, here on the sphere itself) have no preferred axis, and the unit vector is
    continuous across the antimeridian and the poles.

    Examples
    --------
    >>> x = fourier_encode([10.0, 10.0], [180.0, -180.0], 2)
    >>> x.shape, bool(np.allclose(x[0], x[1]))
    ((2, 32), True)
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    wrap_encode(la, lo)  # checks the range
    z = unit_vector(la, lo) @ fourier_frequencies(levels)
    out: Float64Array = np.concatenate([np.sin(z), np.cos(z)], axis=1)
    return out


def parse_date(text: str) -> float:
    """Parse an ISO date (``YYYY-MM-DD``, optionally with a time) into its fraction of the year.

    Raises
    ------
    geoaware.errors.InvalidCoordinateError
        If ``text`` is not a valid date.

    Examples
    --------
    >>> parse_date("2020-07-02")
    0.5
    >>> parse_date("2020-13-01")
    Traceback (most recent call last):
    ...
    geoaware.errors.InvalidCoordinateError: date '2020-13-01' does not parse as YYYY-MM-DD
    """
    from geoaware.errors import InvalidCoordinateError
    from geoaware.geo.encode import year_fraction

    try:
        value = np.datetime64(text.strip().replace(" ", "T"), "s")
    except ValueError as exc:
        raise InvalidCoordinateError(f"date {text!r} does not parse as YYYY-MM-DD") from exc
    if np.isnat(value):
        raise InvalidCoordinateError(f"date {text!r} does not parse as YYYY-MM-DD")
    return float(year_fraction(np.array([value]))[0])


def encode_inputs(
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    config: PriorConfig,
    date_fraction: npt.ArrayLike | None = None,
) -> Float32Array:
    """Return the network input for points (and dates), shape ``(n, config.input_dim)``.

    Parameters
    ----------
    lat, lon
        Degrees (checked: finite and in range).
    config
        Chooses the encoding and whether the date is used.
    date_fraction
        Fraction of the year of each point (NaN where unknown); ignored unless
        ``config.use_date``. ``None`` means unknown for every point.

    Examples
    --------
    >>> encode_inputs([0.0], [90.0], PriorConfig(use_date=True), [0.25]).round(3).tolist()
    [[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]
    """
    if config.encoding == "wrap":
        loc = wrap_encode(lat, lon)
    elif config.encoding == "unit":
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        wrap_encode(la, lo)  # checks the range
        loc = unit_vector(la, lo)
    elif config.encoding == "multiscale":
        loc = multiscale_encode(lat, lon, config.levels)
    elif config.encoding == "fourier":
        loc = fourier_encode(lat, lon, config.levels)
    else:
        loc = geoclip_features(lat, lon)
    if config.use_date:
        n = loc.shape[0]
        f = np.full(n, np.nan) if date_fraction is None else np.asarray(date_fraction, np.float64)
        loc = np.concatenate([loc, date_features(np.broadcast_to(f, (n,)))], axis=1)
    return np.ascontiguousarray(loc, dtype=np.float32)


@functools.cache
def geoclip_encoder() -> torch.nn.Module:
    """Load GeoCLIP's pretrained location encoder (frozen, eval mode), once per process.

    Raises
    ------
    geoaware.errors.DependencyNotFoundError
        If the optional ``geoclip`` package is not installed.
    """
    try:
        from geoclip import LocationEncoder  # type: ignore[import-untyped]
    except ImportError as exc:
        raise DependencyNotFoundError(
            "encoding 'geoclip' needs the geoclip package: pip install --no-deps geoclip "
            f"(a plain install would replace the pinned torch; see the README) ({exc})"
        ) from exc
    model: Any = LocationEncoder()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model  # type: ignore[no-any-return]


def geoclip_features(lat: npt.ArrayLike, lon: npt.ArrayLike) -> Float64Array:
    """Encode points with GeoCLIP's frozen location encoder, in batches; shape ``(n, 512)``."""
    import torch

    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    wrap_encode(la, lo)  # checks the range
    encoder = geoclip_encoder()
    points = torch.from_numpy(np.stack([la, lo], axis=1).astype(np.float32))
    out = np.empty((la.size, 512), dtype=np.float64)
    with torch.no_grad():
        for s in range(0, la.size, _GEOCLIP_BATCH):
            out[s : s + _GEOCLIP_BATCH] = encoder(points[s : s + _GEOCLIP_BATCH]).numpy()
    return out
