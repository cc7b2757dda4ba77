"""A trained prior as a folder (the "Models" contract): weights, full config, vocabulary.

Layout of a checkpoint folder:

* ``model.pt``: the network's ``state_dict`` (loaded with ``weights_only=True``);
* ``config.json``: ``{"format": "geoaware.prior", "version": 1, "config": {...every
  PriorConfig field...}, "vocabulary": [...class names...], "n_users": int,
  "training": {...what the training saw...}}``;
* ``points.npz`` (optional): the training locations and class indices, for range maps.

:func:`load_prior` needs nothing but this folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from geoaware.errors import InputFileError
from geoaware.fileio import atomic_path, atomic_write_text
from geoaware.priors.config import PriorConfig
from geoaware.priors.features import encode_inputs
from geoaware.priors.model import PriorNet
from geoaware.typing import Float32Array, PathLike

__all__ = ["FORMAT", "LocationPrior", "load_prior", "save_prior"]

FORMAT = "geoaware.prior"
VERSION = 1
_BATCH = 16_384


class LocationPrior:
    """A trained prior: ``p(class | location, date)`` for any points, in batches.

    Parameters
    ----------
    config
        The configuration it was trained with.
    vocabulary
        Class names, in output order.
    net
        The network.
    training
        What the training saw (rows, dropped rows, ...), kept in ``config.json``.

    Examples
    --------
    >>> cfg = PriorConfig(width=8, blocks=1)
    >>> prior = LocationPrior(cfg, ["a", "b", "c"], PriorNet(cfg, 3))
    >>> prior.predict_proba([10.0, 20.0], [5.0, 6.0]).shape
    (2, 3)
    """

    def __init__(
        self,
        config: PriorConfig,
        vocabulary: list[str],
        net: PriorNet,
        *,
        training: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.vocabulary = list(vocabulary)
        self.net = net.eval()
        self.training = training or {}
        self.points: tuple[Any, Any, Any] | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.vocabulary)

    def iter_proba(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        date_fraction: npt.ArrayLike | None = None,
        *,
        batch_size: int = _BATCH,
    ) -> Iterator[tuple[slice, Float32Array]]:
        """Yield ``(rows, probabilities)`` batch by batch; memory stays ``batch_size x C``."""
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        dates = None
        if date_fraction is not None:
            dates = np.broadcast_to(np.asarray(date_fraction, dtype=np.float64), la.shape)
        with torch.inference_mode():
            for s in range(0, la.size, batch_size):
                sl = slice(s, min(s + batch_size, la.size))
                x = encode_inputs(la[sl], lo[sl], self.config, None if dates is None else dates[sl])
                yield sl, torch.sigmoid(self.net(torch.from_numpy(x))).numpy()

    def predict_proba(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        date_fraction: npt.ArrayLike | None = None,
    ) -> Float32Array:
        """Return ``p(class | location, date)``, shape ``(n, C)`` (one sigmoid per class)."""
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        out = np.empty((la.size, self.n_classes), dtype=np.float32)
        for sl, p in self.iter_proba(la, lon, date_fraction):
            out[sl] = p
        return out

    def class_proba(self, lat: npt.ArrayLike, lon: npt.ArrayLike, class_index: int) -> Float32Array:
        """Return ``p(class | location)`` of one class at many points (cheap: one head row)."""
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        out = np.empty(la.size, dtype=np.float32)
        cls = torch.tensor([class_index])
        with torch.inference_mode():
            for s in range(0, la.size, _BATCH):
                x = torch.from_numpy(
                    encode_inputs(la[s : s + _BATCH], lo[s : s + _BATCH], self.config)
                )
                h = self.net.embed(x)
                z = self.net.class_logits(h, cls.expand(h.shape[0]))
                out[s : s + _BATCH] = torch.sigmoid(z).numpy()
        return out

    def top(
        self, lat: float, lon: float, date_fraction: float | None = None, k: int = 10
    ) -> list[tuple[str, float]]:
        """Return the ``k`` most likely classes at one point, best first, with probabilities.

        Examples
        --------
        >>> cfg = PriorConfig(width=8, blocks=1)
        >>> prior = LocationPrior(cfg, ["a", "b"], PriorNet(cfg, 2))
        >>> [name for name, _ in prior.top(0.0, 0.0, k=5)] in (["a", "b"], ["b", "a"])
        True
        """
        p = self.predict_proba([lat], [lon], None if date_fraction is None else [date_fraction])[0]
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.vocabulary[i], float(p[i])) for i in order]


def save_prior(
    prior: LocationPrior,
    folder: PathLike,
    *,
    points: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
) -> Path:
    """Write ``prior`` as a checkpoint folder (see the module docs); return the folder.

    Examples
    --------
    >>> import tempfile
    >>> cfg = PriorConfig(width=8, blocks=1)
    >>> d = save_prior(LocationPrior(cfg, ["a", "b"], PriorNet(cfg, 2)), tempfile.mkdtemp())
    >>> sorted(p.name for p in d.iterdir())
    ['config.json', 'model.pt']
    >>> load_prior(d).vocabulary
    ['a', 'b']
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n_users = 0 if prior.net.user_head is None else int(prior.net.user_head.out_features)
    with atomic_path(out / "model.pt", suffix=".pt") as tmp:
        torch.save(prior.net.state_dict(), tmp)
    if points is not None:
        lat, lon, labels = (np.asarray(a) for a in points)
        with atomic_path(out / "points.npz", suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez_compressed(
                fh, lat=lat.astype(np.float32), lon=lon.astype(np.float32), label=labels
            )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": prior.config.to_dict(),
        "vocabulary": prior.vocabulary,
        "n_users": n_users,
        "training": prior.training,
    }
    atomic_write_text(out / "config.json", json.dumps(meta, indent=1) + "\n")
    return out


def load_prior(folder: PathLike) -> LocationPrior:
    """Load a checkpoint folder written by :func:`save_prior`.

    Raises
    ------
    geoaware.errors.InputFileError
        Naming the file, if ``config.json`` or ``model.pt`` is missing, empty, damaged or does
        not match (wrong format, vocabulary and weights of different sizes).
    """
    d = Path(folder)
    cfg_path, weights = d / "config.json", d / "model.pt"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise InputFileError(p, "missing: not a prior checkpoint folder")
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(cfg_path, f"not readable JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputFileError(cfg_path, f"format is not {FORMAT!r}")
    for key in ("config", "vocabulary"):
        if key not in meta:
            raise InputFileError(cfg_path, "missing", field=key)
    config = PriorConfig.from_dict(meta["config"])
    vocab = [str(v) for v in meta["vocabulary"]]
    net = PriorNet(config, len(vocab), int(meta.get("n_users", 0)))
    if weights.stat().st_size == 0:
        raise InputFileError(weights, "empty: not a saved prior network")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip, EOF, ...: every way a damaged file fails
        raise InputFileError(
            weights, f"damaged or not a saved prior network ({_first_line(exc)})"
        ) from exc
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise InputFileError(
            weights, f"weights do not fit the network of config.json ({_first_line(exc)})"
        ) from exc
    prior = LocationPrior(config, vocab, net, training=dict(meta.get("training", {})))
    pts = d / "points.npz"
    if pts.is_file():
        try:
            with np.load(pts) as z:
                prior.points = (z["lat"], z["lon"], z["label"])
        except Exception as exc:  # zip, KeyError, ...
            raise InputFileError(pts, f"damaged ({_first_line(exc)})") from exc
    return prior


def _first_line(exc: BaseException) -> str:
    """Return the first sentence of an exception's message (library messages run long)."""
    text = str(exc).strip().splitlines()
    return text[0].split(". ")[0] if text else type(exc).__name__
