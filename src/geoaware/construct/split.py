"""Train/val/test splits that are a pure function of a key (image, user, cell or time).

Each row gets a number in ``[0, 1)`` from a seeded 64-bit hash of its key and lands on the
side whose cumulative ratio first exceeds it, so the same user (or cell) lands on the same
side in every run and every file, and adding rows never moves old ones. ``stratify="label"``
instead ranks a label's keys by that hash and hands each side its share (at least one key per
side when the label has enough keys), so every label appears on every side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.construct.columns import cell_keys, label_values, require_columns
from geoaware.construct.errors import SplitError
from geoaware.construct.keys import unit_hash
from geoaware.typing import Float64Array, IntArray, ObjectArray

__all__ = ["SPLIT_NAMES", "SplitBy", "SplitResult", "assign_split", "check_ratios"]

SplitBy = Literal["random", "user", "cell", "time"]
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class SplitResult:
    """A split catalog and what the split did.

    Attributes
    ----------
    table
        The catalog with its ``split`` column set.
    summary
        Rows per side, keys per side, rows assigned by image id for lack of a key, labels
        missing from a side.
    """

    table: pa.Table
    summary: dict[str, Any] = field(default_factory=dict)


def check_ratios(ratios: tuple[float, ...]) -> Float64Array:
    """Validate split ratios (2 or 3 non-negative numbers summing to one).

    Examples
    --------
    >>> check_ratios((0.8, 0.1, 0.1)).tolist()
    [0.8, 0.1, 0.1]
    >>> check_ratios((0.8, 0.3))
    Traceback (most recent call last):
    ...
    geoaware.construct.errors.SplitError: ratios must sum to 1, got 0.8,0.3 (sum 1.1)
    """
    r = np.asarray(ratios, dtype=np.float64)
    text = ",".join(f"{x:g}" for x in ratios)
    if not 2 <= len(r) <= len(SPLIT_NAMES):
        raise SplitError(f"give 2 or 3 ratios (train,val[,test]), got {text}")
    if (r < 0).any() or not np.isfinite(r).all():
        raise SplitError(f"ratios must be non-negative numbers, got {text}")
    if abs(r.sum() - 1.0) > 1e-6:
        raise SplitError(f"ratios must sum to 1, got {text} (sum {r.sum():.6g})")
    return r


def _keys(table: pa.Table, by: str, cell: str, where: str) -> tuple[ObjectArray, int]:
    """Return the key of each row and how many rows fell back to their image id."""
    image_ids = np.asarray(table.column("image_id").to_numpy(zero_copy_only=False), dtype=object)
    if by == "random":
        return image_ids, 0
    if by == "user":
        require_columns(table, ["user_id"], where)
        keys = np.asarray(table.column("user_id").to_numpy(zero_copy_only=False), dtype=object)
    elif by == "cell":
        require_columns(table, ["lat", "lon"], where)
        lat = table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
        lon = table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
        keys = cell_keys(lat, lon, cell)
    else:
        raise SplitError(f"unknown split key {by!r}; choose random, user, cell or time")
    missing = np.asarray(pd.isna(keys), dtype=bool)
    if missing.all() and len(keys):
        raise SplitError(f"{where}: no row has a {by} key (column is all null)")
    # a row without a key is its own group: prefixed so it never collides with a real key
    keys = keys.copy()
    keys[missing] = np.char.add("image:", image_ids[missing].astype(str)).astype(object)
    return keys, int(missing.sum())


def _stratified(
    u: Float64Array,
    group: IntArray,
    label: IntArray,
    ratios: Float64Array,
) -> IntArray:
    """Per label, rank its keys by hash and give each side its share (>= 1 if possible)."""
    k = len(ratios)
    # one entry per (label, key) pair; a key takes the side of its first label pair
    pair = np.unique(np.stack([label, group], axis=1), axis=0)
    pl, pg = pair[:, 0], pair[:, 1]
    gu = _group_u(u, group)
    order = np.lexsort((gu[pg], pl))
    pl, pg = pl[order], pg[order]
    starts = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1]])
    sizes = np.diff(np.r_[starts, len(pl)])
    rank = np.arange(len(pl)) - np.repeat(starts, sizes)
    n = np.repeat(sizes, sizes).astype(np.float64)
    counts = np.floor(n[:, None] * ratios[None, :])
    enough = n >= np.count_nonzero(ratios)
    need = enough[:, None] & (ratios[None, :] > 0) & (counts < 1)
    counts = np.where(need, 1.0, counts)
    counts[:, 0] = n - counts[:, 1:].sum(axis=1)
    bounds = np.cumsum(counts, axis=1)
    pair_side = (rank[:, None] >= bounds[:, :-1]).sum(axis=1) if k > 1 else np.zeros(len(rank))
    # small labels (fewer keys than sides): plain hash assignment
    small = ~enough
    pair_side = np.where(
        small, np.searchsorted(np.cumsum(ratios)[:-1], gu[pg], side="right"), pair_side
    )
    side = np.full(int(group.max()) + 1 if len(group) else 0, -1, dtype=np.int64)
    # the first pair listed for a key wins (reverse assignment so earlier overwrite later)
    side[pg[::-1]] = pair_side[::-1]
    return side[group]


def _group_u(u: Float64Array, group: IntArray) -> Float64Array:
    """Return the hash value of each group (all rows of a group share it)."""
    gu = np.zeros(int(group.max()) + 1 if len(group) else 0)
    gu[group] = u
    return gu


def assign_split(
    table: pa.Table,
    by: SplitBy = "random",
    *,
    cell: str = "h3:3",
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: str | None = None,
    column: str = "split",
    where: str = "catalog",
) -> SplitResult:
    """Assign each row to train/val/test by a seeded hash of its key; set ``column``.

    Parameters
    ----------
    table
        A catalog table.
    by
        ``random`` (image id), ``user`` (``user_id``), ``cell`` (H3/S2 cell of lat/lon, see
        ``cell``) or ``time`` (``taken_at``: the earliest share to train, then val, then
        test; the cut dates are the ratio quantiles and are reported).
    cell
        ``h3:RES`` or ``s2:LEVEL`` for ``by="cell"``.
    ratios
        Shares of train, val[, test]; must sum to one.
    seed
        Seeds the hash; the same seed gives the same split.
    stratify
        A column (``label`` means the label name) whose every value should appear on every
        side where it has enough keys.
    column
        Name of the column written.
    where
        Names the input in errors.

    Raises
    ------
    SplitError
        On a missing column, bad ratios or an unknown key.

    Examples
    --------
    >>> t = pa.table({"image_id": [str(i) for i in range(6)],
    ...               "user_id": ["a", "a", "b", "b", "c", "c"]})
    >>> s = assign_split(t, "user", ratios=(0.5, 0.5), seed=1).table
    >>> sides = dict(zip(s.column("user_id").to_pylist(), s.column("split").to_pylist()))
    >>> len(set(s.column("split").to_pylist())) >= 1, sorted(sides) == ["a", "b", "c"]
    (True, True)
    """
    r = check_ratios(tuple(ratios))
    names = np.array(SPLIT_NAMES[: len(r)], dtype=object)
    require_columns(table, ["image_id"], where)
    summary: dict[str, Any] = {"by": by, "seed": seed, "ratios": r.tolist(), "rows": table.num_rows}
    if by == "time":
        side = _time_sides(table, r, where, summary)
    else:
        keys, fallback = _keys(table, by, cell, where)
        summary["rows_without_key"] = fallback
        u = unit_hash(keys, seed)
        if stratify is None:
            side = np.searchsorted(np.cumsum(r)[:-1], u, side="right")
        else:
            labels = _stratify_values(table, stratify, where)
            codes, _ = _factorize(labels)
            group, _ = _factorize(keys)
            side = _stratified(u, group, codes, r)
        summary["keys"] = len(_factorize(keys)[1])
    split = names[np.asarray(side, dtype=np.int64)]
    counts = {str(n): int((split == n).sum()) for n in names}
    summary["rows_per_split"] = counts
    if stratify is not None:
        labels = _stratify_values(table, stratify, where)
        pairs = pa.table({"l": labels, "s": pa.array(split, pa.string())})
        per = pairs.group_by("l").aggregate([("s", "count_distinct")])
        missing = pc.sum(pc.less(per.column("s_count_distinct"), len(names))).as_py() or 0
        summary["labels_missing_a_side"] = int(missing)
    out = table
    arr = pa.array(split, pa.string())
    if column in out.column_names:
        out = out.set_column(out.column_names.index(column), column, arr)
    else:
        out = out.append_column(column, arr)
    return SplitResult(out, summary)


def _stratify_values(table: pa.Table, stratify: str, where: str) -> pa.ChunkedArray:
    if stratify == "label":
        return label_values(table, None, where)
    require_columns(table, [stratify], where)
    return table.column(stratify)


def _factorize(values: Any) -> tuple[IntArray, ObjectArray]:
    arr = values if isinstance(values, np.ndarray) else values.to_numpy(zero_copy_only=False)
    codes, uniques = pd.factorize(np.asarray(arr, dtype=object), use_na_sentinel=False)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _time_sides(table: pa.Table, r: Float64Array, where: str, summary: dict[str, Any]) -> IntArray:
    require_columns(table, ["taken_at"], where)
    ts = table.column("taken_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    t = ts.to_numpy(zero_copy_only=False)
    known = ~pc.is_null(ts).to_numpy(zero_copy_only=False)
    if not known.any():
        raise SplitError(f"{where}: column 'taken_at' is all null; cannot split by time")
    t = np.where(known, t, 0).astype(np.int64)
    cuts = np.quantile(t[known], np.cumsum(r)[:-1], method="lower")
    side = np.searchsorted(cuts, t, side="right").astype(np.int64)
    # rows without a date: hashed by image id onto the sides by ratio
    if (~known).any():
        u = unit_hash(table.column("image_id").filter(pa.array(~known)), 0)
        side[~known] = np.searchsorted(np.cumsum(r)[:-1], u, side="right")
    summary["rows_without_key"] = int((~known).sum())
    summary["cut_times"] = [str(np.datetime64(int(c), "us")) for c in np.asarray(cuts).tolist()]
    return side
