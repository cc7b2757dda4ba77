"""World maps drawn offline: a land background from a shipped mask, points with matplotlib.

No tile server and no download: the background is the ``global_land_mask`` 1 km grid, sampled
down to 0.25 degrees once and cached (``GEOAWARE_CACHE``), drawn in the plate carrée
(equirectangular) projection, so longitude and latitude are the plot's x and y.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geoaware.fileio import atomic_path
from geoaware.paths import cache_dir
from geoaware.typing import ArrayLike, BoolArray, PathLike

__all__ = ["degree_label", "degree_ticks", "land_grid", "world_map"]

_STEP = 30  # 1/120 degree cells -> 0.25 degree


@functools.cache
def land_grid() -> BoolArray:
    """Return a (720, 1440) land mask at 0.25 degrees, north-up, starting at 90 N / 180 W.

    Examples
    --------
    >>> grid = land_grid()
    >>> grid.shape, bool(grid[160, 728])  # about 50 N, 2 E: France
    ((720, 1440), True)
    """
    path = cache_dir("maps") / "land_720x1440_v1.npy"
    if path.exists():
        try:
            grid: BoolArray = np.load(path)
            if grid.shape == (720, 1440) and grid.dtype == np.bool_:
                return grid
        except (OSError, ValueError):
            pass
    from global_land_mask import globe

    # The package's grid marks ocean (is_land is its negation); sample cell centres.
    grid = ~np.ascontiguousarray(globe._mask[_STEP // 2 :: _STEP, _STEP // 2 :: _STEP])
    with atomic_path(path, suffix=".npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, grid)
    return grid


def degree_label(value: float, axis: str) -> str:
    """Format a tick as degrees with a hemisphere: ``30°N``, ``60°W``, ``0°``.

    Examples
    --------
    >>> degree_label(-60, "lon"), degree_label(30, "lat"), degree_label(0, "lat")
    ('60°W', '30°N', '0°')
    """
    if value == 0:
        return "0°"
    hemi = ("E" if value > 0 else "W") if axis == "lon" else ("N" if value > 0 else "S")
    return f"{abs(value):g}°{hemi}"


def _tick_step(span: float, most: int) -> float:
    """Return the smallest of 0.1, 0.2, 0.5, 1, 2, 5, 10, ... 90 degrees giving <= ``most``."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90):
        if span / step <= most:
            return float(step)
    return 90.0


def degree_ticks(
    ax: Any,
    lon_step: float | None = None,
    lat_step: float | None = None,
    *,
    bounds: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0),
) -> None:
    """Put degree ticks with hemispheres (``60°W``, ``30°N``) on a plate carrée map's axes.

    Parameters
    ----------
    ax
        The matplotlib axes.
    lon_step, lat_step
        Degrees between ticks; by default chosen from ``bounds`` (60 and 30 for the world,
        about six ticks across a region).
    bounds
        ``(west, south, east, north)`` of the map; only ticks inside it are placed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> degree_ticks(ax)
    >>> ax.xaxis.get_major_formatter()(-120, 0)
    '120°W'
    >>> degree_ticks(ax, bounds=(-100.0, 20.0, -60.0, 50.0))
    >>> [ax.xaxis.get_major_formatter()(v, 0) for v in ax.get_xticks()]
    ['100°W', '90°W', '80°W', '70°W', '60°W']
    >>> plt.close(fig)
    """
    from matplotlib.ticker import FuncFormatter

    west, south, east, north = bounds
    lon_step = lon_step or _tick_step(east - west, 6)
    lat_step = lat_step or _tick_step(north - south, 6)
    for axis, low, high, step, name in (
        (ax.xaxis, west, east, lon_step, "lon"),
        (ax.yaxis, south, north, lat_step, "lat"),
    ):
        first = np.ceil(low / step - 1e-9) * step
        ticks = np.arange(first, high + step * 1e-6, step)
        axis.set_ticks(np.round(ticks, 6).tolist())
        axis.set_major_formatter(FuncFormatter(lambda v, _pos, n=name: degree_label(v, n)))


#: Colours of the categories of :func:`world_map`, in drawing order.
GROUP_COLOURS = ("#4a6fa5", "#c0392b", "#e67e22", "#27ae60")


def world_map(
    lat: ArrayLike,
    lon: ArrayLike,
    out: PathLike,
    *,
    title: str | None = None,
    color: ArrayLike | None = None,
    groups: Mapping[str, ArrayLike] | None = None,
    max_points: int = 200_000,
    seed: int = 0,
) -> Path:
    r"""Draw points on a world map and write it as a PNG (atomically). Returns the path.

    Parameters
    ----------
    lat, lon
        Degrees; NaN points are left out.
    out
        The PNG to write.
    title
        Shown above the map; the number of points drawn is added.
    color
        Optional values to colour points by (a colour bar is added).
    groups
        Optional labelled categories instead: name -> boolean mask over the points, drawn in
        order (the last on top), each in its own colour, with a legend giving its count.
    max_points
        Above this many points a seeded random sample is drawn (the title says so).
    seed
        Seed of that sample.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> png = world_map([48.85, -33.87], [2.35, 151.21], pathlib.Path(tempfile.mkdtemp()) / "m.png")
    >>> png.read_bytes()[:4]
    b'\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    ok = np.isfinite(la) & np.isfinite(lo)
    values = None if color is None else np.atleast_1d(np.asarray(color, dtype=np.float64))[ok]
    masks = {
        name: np.atleast_1d(np.asarray(m, dtype=bool))[ok] for name, m in (groups or {}).items()
    }
    counts = {name: int(m.sum()) for name, m in masks.items()}
    la, lo = la[ok], lo[ok]
    n_total = la.size
    if n_total > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(n_total, max_points, replace=False))
        la, lo = la[pick], lo[pick]
        values = None if values is None else values[pick]
        masks = {name: m[pick] for name, m in masks.items()}

    fig, ax = plt.subplots(figsize=(12, 6.2), dpi=110)
    ax.imshow(
        land_grid(),
        extent=(-180, 180, -90, 90),
        cmap=ListedColormap(["#dbe9f4", "#c8c8c0"]),
        interpolation="nearest",
        origin="upper",
    )
    size = float(np.clip(40_000 / max(la.size, 1), 1.0, 25.0))
    if masks:
        for i, (name, m) in enumerate(masks.items()):
            colour = GROUP_COLOURS[i % len(GROUP_COLOURS)]
            ax.scatter(
                lo[m], la[m], s=size * (1 + i), c=colour, alpha=0.7, linewidths=0,
                label=f"{name} ({counts[name]:,})", zorder=2 + i,
            )  # fmt: skip
        ax.legend(loc="lower left", markerscale=max(1.0, 6 / size**0.5), framealpha=0.9)
    else:
        scatter = ax.scatter(
            lo, la, s=size, c="#c0392b" if values is None else values, alpha=0.6, linewidths=0
        )
        if values is not None:
            fig.colorbar(scatter, ax=ax, shrink=0.7)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    degree_ticks(ax)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    shown = f"{la.size:,} points" + (f" (sample of {n_total:,})" if n_total > la.size else "")
    ax.set_title(f"{title} - {shown}" if title else shown)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out)
