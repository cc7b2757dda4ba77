"""Range maps: a species' predicted probability over the land grid, training points on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geoaware.fileio import atomic_path
from geoaware.geo.maps import degree_ticks, land_grid
from geoaware.priors.checkpoint import LocationPrior, load_prior
from geoaware.priors.errors import PriorError
from geoaware.typing import PathLike

__all__ = ["WORLD", "Bounds", "parse_bounds", "range_map", "range_raster"]


Bounds = tuple[float, float, float, float]
WORLD: Bounds = (-180.0, -90.0, 180.0, 90.0)


def parse_bounds(text: str) -> Bounds:
    """Parse ``WEST,SOUTH,EAST,NORTH`` degrees into a checked tuple.

    Raises
    ------
    PriorError
        Naming the value, if it is not four numbers with west < east and south < north in range.

    Examples
    --------
    >>> parse_bounds("-10, 35, 30, 60")
    (-10.0, 35.0, 30.0, 60.0)
    >>> parse_bounds("10,0,5,1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoaware.priors.errors.PriorError: bounds '10,0,5,1': need WEST,SOUTH,EAST,NORTH ...
    """
    need = (
        f"bounds {text!r}: need WEST,SOUTH,EAST,NORTH with west < east and south < north, "
        "longitudes in [-180, 180], latitudes in [-90, 90]"
    )
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise PriorError(need) from exc
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise PriorError(need)
    return (w, s, e, n)


def range_raster(
    prior: LocationPrior, class_index: int, step: int = 2, bounds: Bounds = WORLD
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], tuple[float, float, float, float]]:
    """Return ``p(class | location)`` on the land grid (NaN over sea) and its extent.

    The grid is :func:`geoaware.geo.maps.land_grid` (0.25 degrees) taken every ``step``-th
    cell, cut to ``bounds`` (west, south, east, north); only land cells are scored, one class
    head row, in batches.

    Returns
    -------
    raster : numpy.ndarray of float32
        North-up; the whole world at ``step`` 2 is (360, 720).
    extent : tuple
        ``(west, east, south, north)`` of the raster's cells, for ``matplotlib.pyplot.imshow``.

    Examples
    --------
    >>> from geoaware.priors.config import PriorConfig
    >>> from geoaware.priors.model import PriorNet
    >>> cfg = PriorConfig(width=8, blocks=1)
    >>> prior = LocationPrior(cfg, ["a", "b"], PriorNet(cfg, 2))
    >>> r, ext = range_raster(prior, 0, step=4, bounds=(-10.0, 35.0, 30.0, 60.0))
    >>> r.shape, ext
    ((25, 40), (-10.0, 30.0, 35.0, 60.0))
    """
    west, south, east, north = bounds
    res = 0.25 * step
    land = land_grid()[::step, ::step]
    lat_c = 90.0 - (np.arange(land.shape[0]) + 0.5) * res
    lon_c = -180.0 + (np.arange(land.shape[1]) + 0.5) * res
    r_in = np.flatnonzero((lat_c >= south) & (lat_c <= north))
    c_in = np.flatnonzero((lon_c >= west) & (lon_c <= east))
    if r_in.size == 0 or c_in.size == 0:
        raise PriorError(f"bounds {bounds}: smaller than one {res:g}-degree cell")
    land = land[r_in[0] : r_in[-1] + 1, c_in[0] : c_in[-1] + 1]
    rows, cols = np.nonzero(land)
    raster = np.full(land.shape, np.nan, dtype=np.float32)
    if rows.size:
        raster[rows, cols] = prior.class_proba(lat_c[r_in][rows], lon_c[c_in][cols], class_index)
    half = res / 2
    extent = (
        float(lon_c[c_in[0]] - half),
        float(lon_c[c_in[-1]] + half),
        float(lat_c[r_in[-1]] - half),
        float(lat_c[r_in[0]] + half),
    )
    return raster, extent


def range_map(
    model: PathLike | LocationPrior,
    label: str,
    out: PathLike,
    *,
    step: int = 2,
    bounds: Bounds = WORLD,
    scale: str = "map",
) -> dict[str, Any]:
    """Draw a class's predicted range with its training points; write a PNG (atomically).

    Parameters
    ----------
    model, label, out
        The prior (or its folder), the class to draw and the PNG to write.
    step
        Grid step in 0.25-degree cells.
    bounds
        ``(west, south, east, north)`` degrees to draw (default: the world).
    scale
        ``"map"`` (default): the colours run from 0 to the largest p on this map, so a model
        whose probabilities peak near 0.1 still shows its range (the colour bar says so);
        ``"absolute"``: from 0 to 1; ``"log"``: a log scale from 1/10,000 of the map's largest
        p to it, for small-data models that put nearly all their mass on a few places.

    Returns
    -------
    dict
        ``label``, ``class_index``, ``png``, ``points`` (training points drawn), ``max_prob``,
        ``land_share_above_half`` (share of land cells with p > 0.5), ``colour_max`` (the p
        drawn brightest), ``bounds``.

    Raises
    ------
    PriorError
        If ``label`` is not in the model's vocabulary (close names are suggested).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if scale not in ("map", "absolute", "log"):
        raise PriorError(f"scale {scale!r}: use map, absolute or log")
    prior = model if isinstance(model, LocationPrior) else load_prior(model)
    if label not in prior.vocabulary:
        import difflib

        close = difflib.get_close_matches(label, prior.vocabulary, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise PriorError(
            f"label {label!r} is not among the model's {prior.n_classes} classes{hint}"
        )
    idx = prior.vocabulary.index(label)
    raster, extent = range_raster(prior, idx, step, bounds)
    land = raster[np.isfinite(raster)]
    top = float(land.max()) if land.size else 1.0
    vmax = top if scale in ("map", "log") and top > 0 else 1.0
    west, south, east, north = bounds
    aspect = (north - south) / (east - west)
    map_w = 10.0  # inches of map; the colour bar, labels and title around it
    map_h = float(np.clip(map_w * aspect, 2.5, 10.0))
    fig, ax = plt.subplots(figsize=(map_w + 2.2, map_h + 1.3), dpi=110, layout="constrained")
    ax.imshow(np.isnan(raster), extent=extent, cmap="Greys", vmin=0, vmax=6, origin="upper")
    if scale == "log":
        from matplotlib.colors import LogNorm

        norm = LogNorm(vmin=vmax * 1e-4, vmax=vmax, clip=True)
        im = ax.imshow(raster, extent=extent, cmap="viridis", norm=norm, origin="upper")
    else:
        im = ax.imshow(raster, extent=extent, cmap="viridis", vmin=0, vmax=vmax, origin="upper")
    bar_label = {
        "map": f"p(location), 0 to this map's maximum {vmax:.3g}",
        "absolute": "p(location), 0 to 1",
        "log": f"p(location), log scale: {vmax * 1e-4:.2g} to this map's maximum {vmax:.3g}",
    }[scale]
    fig.colorbar(im, ax=ax, shrink=0.85, label=bar_label)
    n_points = n_inside = 0
    if prior.points is not None:
        lat, lon, lab = (np.asarray(a) for a in prior.points)
        mine = lab == idx
        n_points = int(mine.sum())
        inside = mine & (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
        n_inside = int(inside.sum())
        ax.scatter(
            lon[inside],
            lat[inside],
            s=14,
            c="#e74c3c",
            edgecolors="white",
            linewidths=0.5,
            label="training points",
        )
        if inside.any():
            ax.legend(loc="lower left")
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    degree_ticks(ax, bounds=bounds)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    scaled = {
        "map": f"colours scaled to this map's maximum p = {top:.3g}",
        "absolute": f"colours on the absolute scale 0 to 1 (this map's maximum p = {top:.3g})",
        "log": f"colours on a log scale, {vmax * 1e-4:.2g} to this map's maximum p = {top:.3g}",
    }[scale]
    shown = f"{n_points:,} training points"
    if bounds != WORLD and n_points:
        shown += f" ({n_inside:,} inside the map)"
    ax.set_title(f"{label}: predicted range p({label} | location), {shown}\n{scaled}", fontsize=11)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return {
        "label": label,
        "class_index": idx,
        "png": str(Path(out)),
        "points": n_points,
        "max_prob": float(land.max()) if land.size else None,
        "land_share_above_half": float(np.mean(land > 0.5)) if land.size else None,
        "colour_max": vmax,
        "bounds": list(bounds),
    }
