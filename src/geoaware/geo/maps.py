"""World maps drawn offline: a land background from a shipped mask, points with matplotlib.

No tile server and no download: the background is the ``global_land_mask`` 1 km grid, sampled
down to 0.25 degrees once and cached (``GEOAWARE_CACHE``), drawn in the plate carrée
(equirectangular) projection, so longitude and latitude are the plot's x and y.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from geoaware.fileio import atomic_path
from geoaware.geo.types import ArrayLike
from geoaware.paths import cache_dir

__all__ = ["land_grid", "world_map"]

_STEP = 30  # 1/120 degree cells -> 0.25 degree


@functools.cache
def land_grid() -> npt.NDArray[np.bool_]:
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
            grid: npt.NDArray[np.bool_] = np.load(path)
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


def world_map(
    lat: ArrayLike,
    lon: ArrayLike,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    color: ArrayLike | None = None,
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
    la, lo = la[ok], lo[ok]
    n_total = la.size
    if n_total > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(n_total, max_points, replace=False))
        la, lo = la[pick], lo[pick]
        values = None if values is None else values[pick]

    fig, ax = plt.subplots(figsize=(12, 6.2), dpi=110)
    ax.imshow(
        land_grid(),
        extent=(-180, 180, -90, 90),
        cmap=ListedColormap(["#dbe9f4", "#c8c8c0"]),
        interpolation="nearest",
        origin="upper",
    )
    size = float(np.clip(40_000 / max(la.size, 1), 1.0, 25.0))
    scatter = ax.scatter(
        lo, la, s=size, c="#c0392b" if values is None else values, alpha=0.6, linewidths=0
    )
    if values is not None:
        fig.colorbar(scatter, ax=ax, shrink=0.7)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-90, 91, 30))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    shown = f"{la.size:,} points" + (f" (sample of {n_total:,})" if n_total > la.size else "")
    ax.set_title(f"{title} - {shown}" if title else shown)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out)
