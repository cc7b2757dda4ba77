"""The interface every geolocation method implements, and what it predicts.

A method is a class with a ``method`` name, a ``fit`` classmethod, ``predict``, ``save`` and
``load``; :mod:`geoaware.geolocate.model` finds the class from the name stored in a model
folder's ``config.json``.
"""

from __future__ import annotations

import pickle
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geoaware.errors import InputFileError
from geoaware.predictions.places import PlacePredictions

__all__ = ["Geolocator", "PlacePredictions", "read_npz", "read_torch_state"]


def read_npz(
    path: Path, keys: Sequence[str], *, pairs: Sequence[Sequence[str]] = ()
) -> dict[str, np.ndarray]:
    """Read ``keys`` from a model folder's ``.npz`` file; a damaged file names itself.

    Each of ``pairs`` (e.g. ``("lat", "lon")``) names arrays that must have one shape.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "gallery.npz"
    >>> _ = bad.write_bytes(b"PK cut short")
    >>> read_npz(bad, ["lat"])
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: .../gallery.npz: not a readable .npz file (...)
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise InputFileError(path, "array is missing", field=missing[0])
            arrays = {k: z[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(path, f"not a readable .npz file ({exc})") from exc
    for first, second in pairs:
        a, b = arrays[first], arrays[second]
        if a.shape != b.shape:
            raise InputFileError(path, f"{b.size} values but {first!r} has {a.size}", field=second)
    return arrays


def read_torch_state(path: Path) -> Any:
    """Load a ``state_dict`` saved with ``torch.save``; a damaged or empty file names itself."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise InputFileError(path, f"not readable torch weights ({exc})") from exc


class Geolocator(ABC):
    """A fitted geolocation model: embeddings in, places out."""

    method: ClassVar[str]

    @abstractmethod
    def predict(self, vectors: np.ndarray, k: int = 5) -> PlacePredictions:
        """Predict a place and ``k`` candidates for each row of ``vectors``."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the model's weights and a ``config.json`` (with ``method``) into ``folder``."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Geolocator:
        """Rebuild the model from ``folder`` and its parsed ``config.json``."""

    def reference_locations(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return the stored locations the model learnt from or predicts among, by name.

        ``{"training": (lat, lon), "gallery": (lat, lon)}`` or a subset; empty when the model
        keeps none. Overlap reports (test points within 1 km of one) are made against these.
        """
        return {}

    def without(self, keep: np.ndarray) -> Geolocator:
        """Return the model restricted to the reference points where ``keep`` is True.

        ``keep`` is a mask over the points a prediction can return (the first entry of
        :meth:`reference_locations` that prediction uses: the training images for k-NN, the
        gallery for gallery retrieval). Methods that cannot drop points raise.
        """
        raise NotImplementedError(
            f"method {self.method!r} cannot drop reference points at prediction time; "
            "refit it without them (geoaware geolocate fit --exclude-within KM)"
        )
