"""The interface every geolocation method implements, and what it predicts.

A method is a class with a ``method`` name, a ``fit`` classmethod, ``predict``, ``save`` and
``load``; :mod:`geoaware.geolocate.model` finds the class from the name stored in a model
folder's ``config.json``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geoaware.predictions.places import PlacePredictions

__all__ = ["Geolocator", "PlacePredictions"]


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
