"""Leakage between the sides of a split: shared users, same outings, duplicates, label gaps.

Two images are from the same outing when they lie within ``radius_m`` and ``window_s`` of each
other (by default 100 m and one day). Neighbours are found with a k-d tree on unit vectors
(:class:`scipy.spatial.cKDTree`), so the check is near-linear, never all pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from scipy.spatial import cKDTree

from geoaware.construct.columns import require_columns
from geoaware.construct.errors import SplitError
from geoaware.geo.distance import chord_of_km
from geoaware.geo.encode import unit_vector
from geoaware.typing import BoolArray, IntArray, ObjectArray, PathLike

__all__ = ["leakage_report"]


def _examples(values: npt.NDArray[Any], n: int) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values[:n].tolist()]


def leakage_report(
    table: pa.Table,
    split_column: str = "split",
    *,
    radius_m: float = 100.0,
    window_s: float = 86_400.0,
    max_examples: int = 5,
    map_png: PathLike | None = None,
    where: str = "catalog",
) -> dict[str, Any]:
    """Report what a split leaks between its sides.

    Parameters
    ----------
    table
        A catalog with a split column.
    split_column
        The column naming each row's side (null rows are ignored).
    radius_m, window_s
        Two images closer than both (metres, seconds) are the same outing. Where either
        date is unknown only the distance counts, and such pairs are also counted apart.
    max_examples
        Examples kept per finding.
    map_png
        If given, draw the leaking images on a world map there.
    where
        Names the input in errors.

    Returns
    -------
    dict
        ``sides`` (rows per side), ``shared_users`` (count, rows, examples),
        ``same_outing`` (pairs, images, pairs_time_unknown, examples), ``duplicate_ids``,
        ``duplicate_urls``, ``labels`` (per side: labels missing from train), ``leaks`` (True
        if any leak was found) and ``map``.

    Examples
    --------
    >>> t = pa.table({"image_id": ["a", "b", "c"], "user_id": ["u", "u", "v"],
    ...               "lat": [1.0, 1.0, 50.0], "lon": [2.0, 2.0001, 3.0],
    ...               "split": ["train", "test", "test"]})
    >>> r = leakage_report(t)
    >>> r["shared_users"]["count"], r["same_outing"]["pairs"]
    (1, 1)
    """
    require_columns(table, ["image_id", split_column], where)
    side_arr = table.column(split_column).to_numpy(zero_copy_only=False)
    side_codes, side_names = pd.factorize(pd.Series(side_arr, dtype=object), use_na_sentinel=True)
    side_codes = np.asarray(side_codes, dtype=np.int64)
    names = [str(s) for s in side_names]
    if len(names) < 2:
        raise SplitError(f"{where}: column {split_column!r} has {len(names)} side(s); need 2+")
    keep = side_codes >= 0
    ids = np.asarray(table.column("image_id").to_numpy(zero_copy_only=False), dtype=object)
    report: dict[str, Any] = {
        "path": where,
        "split_column": split_column,
        "rows": table.num_rows,
        "rows_without_side": int((~keep).sum()),
        "sides": {n: int((side_codes == i).sum()) for i, n in enumerate(names)},
    }
    report["shared_users"] = _shared(table, "user_id", side_codes, keep, max_examples)
    report["duplicate_ids"] = _shared_values(ids, side_codes, keep, max_examples)
    report["duplicate_urls"] = (
        _shared_values(
            np.asarray(table.column("url").to_numpy(zero_copy_only=False), dtype=object),
            side_codes,
            keep,
            max_examples,
        )
        if "url" in table.column_names
        else None
    )
    outing, leaking_rows = _same_outing(
        table, side_codes, keep, ids, radius_m, window_s, max_examples
    )
    report["same_outing"] = outing
    report["labels"] = _label_gaps(table, side_codes, names, max_examples)
    report["leaks"] = bool(
        report["shared_users"]["count"]
        or report["duplicate_ids"]["count"]
        or (report["duplicate_urls"] or {"count": 0})["count"]
        or outing["pairs"]
    )
    report["map"] = None
    if map_png is not None:
        from geoaware.geo.maps import world_map

        lat = table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
        lon = table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
        leaked = np.zeros(len(lat), dtype=bool)
        leaked[leaking_rows] = True
        groups = {"no same-outing twin": ~leaked, "same outing on another side": leaked}
        title = f"{Path(where).name}: same-outing leaks ({radius_m:g} m, {window_s / 3600:g} h)"
        report["map"] = str(world_map(lat, lon, map_png, title=title, groups=groups))
    return report


def _shared_values(
    values: ObjectArray,
    side: IntArray,
    keep: BoolArray,
    n: int,
) -> dict[str, Any]:
    """Values (users, ids, urls) that occur on more than one side."""
    ok = keep & ~pd.isna(pd.Series(values, dtype=object)).to_numpy()
    df = pd.DataFrame({"v": values[ok], "s": side[ok]})
    per = df.groupby("v", sort=True)["s"].nunique()
    shared = per[per > 1].index.to_numpy(dtype=object)
    rows = int(df["v"].isin(shared).sum()) if len(shared) else 0
    dup_within = int(df.duplicated(["v", "s"]).sum())
    return {
        "count": len(shared),
        "rows": rows,
        "duplicates_within_a_side": dup_within,
        "examples": _examples(shared, n),
    }


def _shared(table: pa.Table, col: str, side: IntArray, keep: BoolArray, n: int) -> dict[str, Any]:
    if col not in table.column_names:
        return {"count": 0, "rows": 0, "examples": [], "note": f"no {col} column"}
    values = np.asarray(table.column(col).to_numpy(zero_copy_only=False), dtype=object)
    out = _shared_values(values, side, keep, n)
    out["rows_without_user"] = int(pd.isna(pd.Series(values, dtype=object)).sum())
    del out["duplicates_within_a_side"]
    return out


def _same_outing(
    table: pa.Table,
    side: IntArray,
    keep: BoolArray,
    ids: ObjectArray,
    radius_m: float,
    window_s: float,
    n: int,
) -> tuple[dict[str, Any], IntArray]:
    empty = np.zeros(0, dtype=np.int64)
    if "lat" not in table.column_names or "lon" not in table.column_names:
        return {"pairs": 0, "images": 0, "examples": [], "note": "no lat/lon"}, empty
    lat = table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    lon = table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    located = keep & ~(np.isnan(lat) | np.isnan(lon))
    rows = np.flatnonzero(located)
    if "taken_at" in table.column_names:
        ts = table.column("taken_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        t = ts.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
    else:
        t = np.full(table.num_rows, np.nan)
    xyz = unit_vector(lat[rows], lon[rows])
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(float(chord_of_km(radius_m / 1000.0)), output_type="ndarray")
    i, j = rows[pairs[:, 0]], rows[pairs[:, 1]]
    cross = side[i] != side[j]
    i, j = i[cross], j[cross]
    dt = np.abs(t[i] - t[j])
    unknown = np.isnan(dt)
    close = unknown | (dt <= window_s)
    i, j, unknown = i[close], j[close], unknown[close]
    leaking = np.unique(np.concatenate([i, j]))
    examples = [
        {"image_id": ids[a], "other_image_id": ids[b], "time_known": not u}
        for a, b, u in zip(i[:n].tolist(), j[:n].tolist(), unknown[:n].tolist(), strict=True)
    ]
    return {
        "radius_m": radius_m,
        "window_s": window_s,
        "located_rows": len(rows),
        "pairs": len(i),
        "pairs_time_unknown": int(unknown.sum()),
        "images": len(leaking),
        "examples": examples,
    }, leaking


def _label_gaps(table: pa.Table, side: IntArray, names: list[str], n: int) -> dict[str, Any]:
    if "label_name" not in table.column_names:
        return {"note": "no label_name column"}
    labels = np.asarray(table.column("label_name").to_numpy(zero_copy_only=False), dtype=object)
    sets = {
        name: set(pd.unique(labels[(side == k) & ~pd.isna(labels)]).tolist())
        for k, name in enumerate(names)
    }
    ref = "train" if "train" in sets else names[0]
    out: dict[str, Any] = {
        "reference": ref,
        "labels_per_side": {k: len(v) for k, v in sets.items()},
    }
    for name, labs in sets.items():
        if name == ref:
            continue
        missing = sorted(labs - sets[ref])
        absent = sorted(sets[ref] - labs)
        out[name] = {
            "not_in_reference": len(missing),
            "not_in_reference_examples": missing[:n],
            "reference_labels_absent": len(absent),
        }
    return out
