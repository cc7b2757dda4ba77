"""Evaluation figures: error CDFs, error maps and per-group accuracy bars, written as PNGs.

Every function draws with matplotlib's Agg backend (no display needed), writes its PNG
atomically (:func:`geoaware.fileio.atomic_path`) and returns the path, so a report or a CLI
command can list it. Errors are distances in kilometres (great circle on the 6371 km sphere
unless a plot is told ``distance="geodesic"``); accuracies are fractions (0 to 1) and are drawn
as percentages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoaware.fileio import atomic_path
from geoaware.typing import ArrayLike, Float64Array, PathLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_THRESHOLDS_KM",
    "THRESHOLD_NAMES",
    "TableLike",
    "empirical_cdf",
    "error_cdf",
    "error_map",
    "group_bars",
]

#: The Im2GPS accuracy scales, in km.
DEFAULT_THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
#: Their usual names (street, city, region, country, continent).
THRESHOLD_NAMES: dict[float, str] = {
    1.0: "street",
    25.0: "city",
    200.0: "region",
    750.0: "country",
    2500.0: "continent",
}
# Half the Earth's circumference on the 6371 km sphere: no error can exceed it.
_MAX_ERROR_KM = 20_015.1
#: What :func:`group_bars` takes: a run-folder table, a pandas DataFrame or row mappings.
TableLike = Mapping[str, Any] | Iterable[Mapping[str, Any]]
_DPI = 110
_MAX_CURVE_POINTS = 20_000
_LAND_COLOURS = ("#dbe9f4", "#c8c8c0")  # water, land: the same as geoaware.geo.maps


def _pyplot() -> Any:
    """Import pyplot on the Agg backend (imported lazily: ``import geoaware`` stays fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, out: PathLike) -> Path:
    plt = _pyplot()
    try:
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=_DPI)
    finally:
        plt.close(fig)
    return Path(out)


def _fmt_km(km: float) -> str:
    """Format a distance for a label: ``0.42 km``, ``12.3 km``, ``1,234 km``."""
    if not np.isfinite(km):
        return "n/a"
    if km < 10:
        return f"{km:.2g} km" if km < 1 else f"{km:.1f} km"
    if km < 100:
        return f"{km:.1f} km"
    return f"{km:,.0f} km"


def _distance_name(distance: str) -> str:
    """Name the distance errors were measured with, for an axis: ``sphere`` or ``geodesic``."""
    names = {"sphere": "great-circle error (6371 km sphere)", "geodesic": "WGS84 geodesic error"}
    if distance not in names:
        raise ValueError(f"distance {distance!r}: use sphere or geodesic")
    return names[distance]


def empirical_cdf(errors: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """Return the empirical CDF of ``errors``: sorted values and the fraction at or below each.

    Vectorised: one sort, no loop over thresholds. NaN and infinite values are left out (the
    fractions are of the finite errors).

    Parameters
    ----------
    errors
        Errors in km (any shape; flattened).

    Returns
    -------
    x : ndarray of float64
        The finite errors, sorted ascending.
    y : ndarray of float64
        ``y[i] = (i + 1) / n``: the fraction of errors ``<= x[i]`` (for distinct values).
        Both are empty when there is no finite error.

    Examples
    --------
    >>> x, y = empirical_cdf([30.0, float("nan"), 10.0, 20.0, 40.0])
    >>> x.tolist(), y.tolist()
    ([10.0, 20.0, 30.0, 40.0], [0.25, 0.5, 0.75, 1.0])
    """
    values = np.asarray(errors, dtype=np.float64).ravel()
    x = np.sort(values[np.isfinite(values)])
    y = np.arange(1, x.size + 1, dtype=np.float64) / max(x.size, 1)
    return x, y


def error_cdf(
    errors_km: Mapping[str, ArrayLike],
    out: PathLike,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS_KM,
    *,
    title: str | None = None,
    distance: str = "sphere",
) -> Path:
    r"""Plot the fraction of images located within *d* km against *d*, one curve per model.

    Parameters
    ----------
    errors_km
        Prediction name (a model, a file) -> its per-image errors in km. NaN errors (rows that
        could not be scored) are left out of that curve; its legend entry says how many remain.
    out
        The PNG to write (atomically).
    thresholds
        Distances marked by dotted vertical lines (the Im2GPS scales by default).
    title
        Shown above the plot.
    distance
        How the errors were measured, for the axis label: ``sphere`` (great circle on the
        6371 km sphere, geoaware's default) or ``geodesic`` (WGS84).

    Returns
    -------
    Path
        ``out``.

    Notes
    -----
    The x axis is logarithmic, from 0.1 km to 20,015 km (half the Earth's circumference);
    errors below 0.1 km are drawn at its left edge. Each legend entry gives the curve's median
    error, the distance where it crosses 50 %.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> errors = {"model A": np.array([0.5, 30.0, 800.0]), "model B": np.array([5.0, np.nan])}
    >>> png = error_cdf(errors, pathlib.Path(tempfile.mkdtemp()) / "cdf.png")
    >>> png.read_bytes()[:4]
    b'\x89PNG'
    """
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    x_min, x_max = 0.1, _MAX_ERROR_KM
    fig, ax = plt.subplots(figsize=(9.0, 6.2))
    for name, errors in errors_km.items():
        x, y = empirical_cdf(errors)
        if x.size == 0:
            ax.plot([], [], label=f"{name} (no finite errors)")
            continue
        median = float(np.median(x))
        if x.size > _MAX_CURVE_POINTS:  # thin very long curves: invisible at this resolution
            keep = np.unique(np.linspace(0, x.size - 1, _MAX_CURVE_POINTS).astype(np.intp))
            x, y = x[keep], y[keep]
        # Start the step curve at 0 on the left edge and hold the last value to the right edge.
        xs = np.concatenate(([x_min], np.clip(x, x_min, x_max), [x_max]))
        ys = np.concatenate(([0.0], y, [1.0]))
        ax.step(
            xs,
            ys,
            where="post",
            linewidth=2.0,
            label=f"{name}: median {_fmt_km(median)} (n={x.size:,})",
        )
    for t in thresholds:
        ax.axvline(t, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
        scale = THRESHOLD_NAMES.get(float(t))
        text = f"{t:,g} km" + (f"\n{scale}" if scale else "")
        ax.annotate(
            text,
            xy=(t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8.5,
            color="0.3",
        )
    ax.axhline(0.5, color="0.75", linewidth=0.8, zorder=0)
    ax.annotate(
        "50 % (median error)",
        xy=(x_min, 0.5),
        xytext=(4, 3),
        textcoords="offset points",
        fontsize=8.5,
        color="0.4",
    )
    ax.set_xscale("log")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(0.0, 1.0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,g}"))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel(f"{_distance_name(distance)} d (km, log scale)", fontsize=11)
    ax.set_ylabel("images located within d", fontsize=11)
    ax.grid(True, which="major", color="0.9", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    if errors_km:
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=1 if len(errors_km) < 3 else 2,
            fontsize=9.5,
            frameon=False,
        )
    if title:
        ax.set_title(title, fontsize=12, pad=30)
    fig.tight_layout()
    return _save(fig, out)


def error_map(
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    error_km: ArrayLike,
    out: PathLike,
    title: str | None = None,
    *,
    vmin: float = 1.0,
    vmax: float = _MAX_ERROR_KM,
    max_points: int = 200_000,
    seed: int = 0,
    distance: str = "sphere",
) -> Path:
    r"""Draw the true locations on a world map, coloured by their error on a log scale.

    The background is the offline land mask of :mod:`geoaware.geo.maps`. Points with the
    largest errors are drawn last (on top), so failures stay visible in dense regions.

    Parameters
    ----------
    true_lat, true_lon
        True coordinates in degrees; points where either is NaN are left out.
    error_km
        Each point's error in km; NaN errors are left out.
    out
        The PNG to write (atomically).
    title
        Shown above the map; the number of points drawn is added.
    vmin, vmax
        The colour scale's range in km; errors outside it take the end colours. The fixed
        default (1 km to half the Earth's circumference) makes maps of different models
        comparable.
    max_points
        Above this many points a seeded random sample is drawn (the title says so).
    seed
        Seed of that sample.
    distance
        How the errors were measured, for the colour bar: ``sphere`` (great circle on the
        6371 km sphere, geoaware's default) or ``geodesic`` (WGS84).

    Returns
    -------
    Path
        ``out``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "errors.png"
    >>> error_map([48.85, -33.87], [2.35, 151.21], [3.0, 1200.0], out).read_bytes()[:4]
    b'\x89PNG'
    """
    if not 0 < vmin < vmax:
        raise ValueError(f"need 0 < vmin < vmax, but given vmin={vmin}, vmax={vmax}")
    plt = _pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from geoaware.geo.maps import degree_ticks, land_grid

    _distance_name(distance)  # an unknown name fails before any drawing
    la = np.atleast_1d(np.asarray(true_lat, dtype=np.float64)).ravel()
    lo = np.atleast_1d(np.asarray(true_lon, dtype=np.float64)).ravel()
    err = np.atleast_1d(np.asarray(error_km, dtype=np.float64)).ravel()
    if not la.size == lo.size == err.size:
        raise ValueError(
            f"true_lat, true_lon and error_km differ in length ({la.size}, {lo.size}, {err.size})"
        )
    ok = np.isfinite(la) & np.isfinite(lo) & np.isfinite(err)
    la, lo, err = la[ok], lo[ok], err[ok]
    n_total = la.size
    if n_total > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(n_total, max_points, replace=False))
        la, lo, err = la[pick], lo[pick], err[pick]
    order = np.argsort(err, kind="stable")
    la, lo, err = la[order], lo[order], err[order]

    fig, ax = plt.subplots(figsize=(12, 5.7))
    ax.imshow(
        land_grid(),
        extent=(-180, 180, -90, 90),
        cmap=ListedColormap(list(_LAND_COLOURS)),
        interpolation="nearest",
        origin="upper",
    )
    size = float(np.clip(40_000 / max(la.size, 1), 2.0, 30.0))
    norm = LogNorm(vmin=vmin, vmax=vmax, clip=True)
    ax.scatter(
        lo,
        la,
        s=size,
        c=np.clip(err, vmin, vmax),
        cmap="plasma",
        norm=norm,
        alpha=0.85,
        linewidths=0.25 if la.size <= 5_000 else 0.0,
        edgecolors="0.15",
    )
    # The colour bar gets its own opaque mappable: the points' transparency would wash it out.
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap="plasma"), ax=ax, shrink=0.78, pad=0.02, extend="both"
    )
    ticks = [t for t in (0.1, 1, 25, 200, 750, 2500, 10_000) if vmin <= t <= vmax]
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,g}"))
    bar.set_label(f"{_distance_name(distance)} (km, log scale)", fontsize=11)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    degree_ticks(ax)
    ax.set_xlabel("longitude", fontsize=11)
    ax.set_ylabel("latitude", fontsize=11)
    shown = f"{la.size:,} images" + (f" (sample of {n_total:,})" if n_total > la.size else "")
    if la.size:
        shown += f", median error {_fmt_km(float(np.median(err)))}"
    ax.set_title(f"{title} - {shown}" if title else shown, fontsize=12)
    fig.tight_layout()
    return _save(fig, out)


def _records(table_rows: Any) -> list[dict[str, Any]]:
    """Turn a contract table, a DataFrame or mappings into a list of row dicts."""
    if isinstance(table_rows, Mapping) and "columns" in table_rows and "rows" in table_rows:
        columns = [str(c) for c in table_rows["columns"]]
        return [dict(zip(columns, row, strict=True)) for row in table_rows["rows"]]
    if hasattr(table_rows, "to_dict") and hasattr(table_rows, "columns"):  # a DataFrame
        records: list[dict[str, Any]] = table_rows.to_dict(orient="records")
        return records
    return [dict(row) for row in table_rows]


def _series_label(column: str) -> str:
    """Name a bar series: ``acc_25km`` -> ``within 25 km``; other names are kept."""
    match = re.fullmatch(r"acc_(\d+(?:\.\d+)?)km", column)
    return f"within {float(match.group(1)):,g} km" if match else column


def group_bars(
    table_rows: TableLike,
    out: PathLike,
    value: str | Sequence[str] = "acc_2500km",
    label: str = "continent",
    *,
    count: str | None = "n",
    title: str | None = None,
) -> Path:
    r"""Bar chart of one or several accuracy columns per group, with each group's n.

    Parameters
    ----------
    table_rows
        One row per group: a run-folder table (``{"columns": [...], "rows": [[...], ...]}``),
        a pandas DataFrame, or an iterable of mappings. Rows keep their order.
    out
        The PNG to write (atomically).
    value
        The column(s) to draw: fractions 0 to 1, drawn as percentages. Several columns give
        grouped bars with a legend. Missing (None / NaN) values leave a gap.
    label
        The column naming each group (the x axis).
    count
        The column with each group's number of images, shown under its name; None for none.
    title
        Shown above the chart.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    KeyError
        A named column is missing from a row.
    ValueError
        The table has no rows, or ``value`` names no column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> rows = [
    ...     {"continent": "Europe", "n": 120, "acc_750km": 0.61, "acc_2500km": 0.83},
    ...     {"continent": "Africa", "n": 15, "acc_750km": 0.20, "acc_2500km": 0.47},
    ... ]
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "bars.png"
    >>> group_bars(rows, out, value=["acc_750km", "acc_2500km"]).read_bytes()[:4]
    b'\x89PNG'
    """
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    columns = [value] if isinstance(value, str) else list(value)
    if not columns:
        raise ValueError("value names no column to draw")
    rows = _records(table_rows)
    if not rows:
        raise ValueError("the table has no rows to draw")
    for i, row in enumerate(rows):
        for key in [label, *columns, *([count] if count else [])]:
            if key not in row:
                raise KeyError(f"row {i} of the table has no column {key!r} (it has {list(row)})")

    names = [str(row[label]) for row in rows]
    if count:
        names = [
            f"{name}\nn={int(row[count]):,}" if row[count] is not None else f"{name}\nn=?"
            for name, row in zip(names, rows, strict=True)
        ]
    data = np.array(
        [[np.nan if row[c] is None else float(row[c]) for c in columns] for row in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(columns))

    width_in = float(np.clip(1.2 + 0.55 * len(rows) * max(len(columns), 1.6), 6.0, 16.0))
    fig, ax = plt.subplots(figsize=(width_in, 5.2))
    x = np.arange(len(rows), dtype=np.float64)
    bar_w = 0.8 / len(columns)
    colours = plt.get_cmap("tab10").colors
    for j, column in enumerate(columns):
        offset = (j - (len(columns) - 1) / 2) * bar_w
        heights = data[:, j]
        bars = ax.bar(
            x + offset,
            np.nan_to_num(heights, nan=0.0),
            width=bar_w * 0.92,
            color=colours[j % len(colours)],
            label=_series_label(column),
        )
        labels = ["" if not np.isfinite(h) else f"{100 * h:.0f}%" for h in heights]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=8 if len(columns) > 2 else 9)
    ax.set_xticks(x, names, fontsize=10)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0.0, 1.08)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("accuracy (% of images)", fontsize=11)
    ax.set_xlabel(label, fontsize=11)
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    if len(columns) > 1:
        ax.legend(
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=min(len(columns), 5),
            fontsize=9,
            frameon=False,
        )
    elif title is None:
        series = _series_label(columns[0])
        what = f"images located {series}" if series != columns[0] else series
        title = f"{what}, by {label}"
    if title:
        ax.set_title(title, fontsize=12, pad=28 if len(columns) > 1 else 8)
    fig.tight_layout()
    return _save(fig, out)


def accuracy_curve(reference: Mapping[str, Any], out: PathLike) -> Path:
    """Plot accuracy against distance threshold for the user's row and every published method.

    Parameters
    ----------
    reference
        A table from :func:`geoaware.evaluate.reference.reference_table`: ``dataset``,
        ``columns`` (method, ``acc_<t>km``..., source) and ``rows`` (the user's first).
    out
        The PNG to write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ref = {"dataset": "im2gps3k", "columns": ["method", "acc_1km", "acc_25km", "source"],
    ...        "rows": [["mine", 0.1, 0.3, "this run"], ["GeoCLIP", 0.1411, 0.3447, "x"]]}
    >>> accuracy_curve(ref, pathlib.Path(tempfile.mkdtemp()) / "c.png").suffix
    '.png'
    """
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    cols = list(reference["columns"])
    acc = [(i, float(c[4:-2])) for i, c in enumerate(cols) if c.startswith("acc_")]
    fig, ax = plt.subplots(figsize=(8.5, 5.6))
    for j, row in enumerate(reference["rows"]):
        pts = [(t, row[i]) for i, t in acc if row[i] is not None]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        ax.plot(
            xs,
            ys,
            marker="o",
            linewidth=2.6 if j == 0 else 1.4,
            color="black" if j == 0 else None,
            label=f"{row[0]} (this run)" if j == 0 else str(row[0]),
            zorder=3 if j == 0 else 2,
        )
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,g}"))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("distance threshold (km, log scale)", fontsize=11)
    ax.set_ylabel("images located within the threshold", fontsize=11)
    ax.set_title(f"accuracy by threshold on {reference['dataset']}: this run and published methods",
                 fontsize=12)  # fmt: skip
    ax.grid(True, which="major", color="0.9", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8.5, frameon=False, loc="upper left")
    fig.tight_layout()
    return _save(fig, out)
