"""Shared builders for the priors tests (a tiny synthetic world)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

CENTRES = [(40.0, -100.0), (-20.0, -60.0), (50.0, 20.0), (-25.0, 135.0)]


def synthetic_world(n_per_class: int = 150, seed: int = 0, spread: float = 4.0) -> pa.Table:
    """Four species, each living in one region; 80/20 train/test split; catalog columns."""
    rng = np.random.default_rng(seed)
    lat, lon, names, labels, split = [], [], [], [], []
    for k, (la, lo) in enumerate(CENTRES):
        lat.append(la + rng.normal(0, spread, n_per_class))
        lon.append(lo + rng.normal(0, spread, n_per_class))
        names += [f"species_{k}"] * n_per_class
        labels += [10 + k] * n_per_class
        split += ["train" if rng.random() < 0.8 else "test" for _ in range(n_per_class)]
    n = len(names)
    return pa.table(
        {
            "source": ["synthetic"] * n,
            "split": split,
            "image_id": [f"img{i}" for i in range(n)],
            "lat": np.concatenate(lat),
            "lon": np.concatenate(lon),
            "label": pa.array(labels, pa.int32()),
            "label_name": names,
            "supercategory": ["Aves" if (i % 2) else "Plantae" for i in range(n)],
        }
    )
