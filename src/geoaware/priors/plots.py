"""Range maps: a species' predicted probability over the land grid, training points on top."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from geoaware.fileio import atomic_path
from geoaware.geo.maps import land_grid
from geoaware.priors.checkpoint import LocationPrior, load_prior
from geoaware.priors.errors import PriorError

__all__ = ["range_map", "range_raster"]

PathLike = str | os.PathLike[str]


def range_raster(
    prior: LocationPrior, class_index: int, step: int = 2
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], tuple[float, float, float, float]]:
    """Return ``p(class | location)`` on the land grid (NaN over sea) and its extent.

    The grid is :func:`geoaware.geo.maps.land_grid` (0.25 degrees) taken every ``step``-th
    cell; only land cells are scored, one class head row, in batches.

    Returns
    -------
    raster : numpy.ndarray of float32, shape (720 // step, 1440 // step)
        North-up, starting at 90 N / 180 W.
    extent : tuple
        ``(west, east, south, north)`` for ``matplotlib.pyplot.imshow``.
    """
    land = land_grid()[::step, ::step]
    res = 0.25 * step
    rows, cols = np.nonzero(land)
    lat = 90.0 - (rows + 0.5) * res
    lon = -180.0 + (cols + 0.5) * res
    raster = np.full(land.shape, np.nan, dtype=np.float32)
    raster[rows, cols] = prior.class_proba(lat, lon, class_index)
    return raster, (-180.0, 180.0, -90.0, 90.0)


def range_map(
    model: PathLike | LocationPrior, label: str, out: PathLike, *, step: int = 2
) -> dict[str, Any]:
    """Draw a class's predicted range with its training points; write a PNG (atomically).

    Returns
    -------
    dict
        ``label``, ``class_index``, ``png``, ``points`` (training points drawn), ``max_prob``,
        ``land_share_above_half`` (share of land cells with p > 0.5).

    Raises
    ------
    PriorError
        If ``label`` is not in the model's vocabulary (close names are suggested).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prior = model if isinstance(model, LocationPrior) else load_prior(model)
    if label not in prior.vocabulary:
        import difflib

        close = difflib.get_close_matches(label, prior.vocabulary, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise PriorError(
            f"label {label!r} is not among the model's {prior.n_classes} classes{hint}"
        )
    idx = prior.vocabulary.index(label)
    raster, extent = range_raster(prior, idx, step)
    fig, ax = plt.subplots(figsize=(12, 6.2), dpi=110)
    ax.imshow(np.isnan(raster), extent=extent, cmap="Greys", vmin=0, vmax=6, origin="upper")
    im = ax.imshow(raster, extent=extent, cmap="viridis", vmin=0, vmax=1, origin="upper")
    fig.colorbar(im, ax=ax, shrink=0.7, label=f"p({label} | location)")
    n_points = 0
    if prior.points is not None:
        lat, lon, lab = prior.points
        mine = np.asarray(lab) == idx
        n_points = int(mine.sum())
        ax.scatter(
            np.asarray(lon)[mine],
            np.asarray(lat)[mine],
            s=14,
            c="#e74c3c",
            edgecolors="white",
            linewidths=0.5,
            label="training points",
        )
        if n_points:
            ax.legend(loc="lower left")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"{label}: predicted range, {n_points:,} training points")
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    land = raster[np.isfinite(raster)]
    return {
        "label": label,
        "class_index": idx,
        "png": str(Path(out)),
        "points": n_points,
        "max_prob": float(land.max()) if land.size else None,
        "land_share_above_half": float(np.mean(land > 0.5)) if land.size else None,
    }
