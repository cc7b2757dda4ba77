"""Catalog summaries: rows per source and split, labels, users, images per user, continents."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CatalogStats", "UserStats", "catalog_stats"]


@dataclass
class UserStats:
    """How images spread over users (photographers).

    Attributes
    ----------
    users : int
        Distinct non-null ``user_id`` values.
    images_with_user : int
        Rows that have a user.
    mean, std, skew : float
        Images per user: mean, sample standard deviation, and Fisher-Pearson skewness
        (0 for a symmetric spread; large and positive when a few users dominate). NaN where
        undefined (no user, or one for std and skew).
    max : int
        Images of the most prolific user.
    """

    users: int
    images_with_user: int
    mean: float
    std: float
    skew: float
    max: int


@dataclass
class CatalogStats:
    """A catalog's summary, as printed by ``geoaware stats``.

    Attributes
    ----------
    rows : int
        Number of images.
    by_source_split : list of dict
        ``{"source", "split", "rows"}`` for each pair (split ``None`` when unset).
    labels : int
        Distinct labels (``label``, or ``label_name`` where ids are missing).
    located : int
        Rows with a location.
    users : UserStats
        Images per user.
    continents : dict
        Located rows per continent (offline reverse geocoding), largest first.
    """

    rows: int
    by_source_split: list[dict[str, Any]]
    labels: int
    located: int
    users: UserStats
    continents: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data (NaN becomes None)."""
        data = asdict(self)
        data["users"] = {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in data["users"].items()
        }
        return data


def _user_stats(users: pa.ChunkedArray) -> UserStats:
    counts = pd.Series(users.to_numpy(zero_copy_only=False)).dropna().value_counts()
    n = counts.to_numpy(dtype=np.float64)
    if n.size == 0:
        return UserStats(0, 0, float("nan"), float("nan"), float("nan"), 0)
    mean = float(n.mean())
    std = float(n.std(ddof=1)) if n.size > 1 else float("nan")
    pop_std = float(n.std())
    skew = (
        float(np.mean((n - mean) ** 3) / pop_std**3) if n.size > 1 and pop_std > 0 else float("nan")
    )
    return UserStats(int(n.size), int(n.sum()), mean, std, skew, int(n.max()))


def catalog_stats(table: pa.Table) -> CatalogStats:
    """Summarise a conformed catalog table.

    Examples
    --------
    >>> from geoaware.catalog.schema import conform
    >>> t = conform(pa.table({"source": ["s"] * 3, "image_id": ["1", "2", "3"],
    ...     "lat": [48.85, -33.87, None], "lon": [2.35, 151.21, None], "user_id": ["u", "u", "v"]}))
    >>> s = catalog_stats(t)
    >>> s.rows, s.located, s.users.users, s.continents
    (3, 2, 2, {'Europe': 1, 'Oceania': 1})
    """
    from geoaware.geo.geocode import region_codes

    frame = table.select(["source", "split"]).to_pandas()
    groups = frame.groupby(["source", "split"], dropna=False, sort=True).size()
    by_source_split = [
        {"source": s, "split": None if pd.isna(sp) else sp, "rows": int(n)}
        for (s, sp), n in groups.items()
    ]
    label = table.column("label")
    names = table.column("label_name")
    labels = pc.count_distinct(label).as_py() if label.null_count < len(label) else 0
    if labels == 0:
        labels = pc.count_distinct(names).as_py()
    lat = np.asarray(table.column("lat").to_numpy(zero_copy_only=False), dtype=np.float64)
    lon = np.asarray(table.column("lon").to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    codes, names_c = region_codes(lat[ok], lon[ok], "continent")
    counts = np.bincount(codes, minlength=names_c.size)
    order = np.argsort(-counts, kind="stable")
    cont = {(str(names_c[i]) or "unknown"): int(counts[i]) for i in order if counts[i]}
    return CatalogStats(
        rows=table.num_rows,
        by_source_split=by_source_split,
        labels=int(labels),
        located=int(ok.sum()),
        users=_user_stats(table.column("user_id")),
        continents=cont,
    )
