"""Observations for a prior, read from a catalog: located rows, their classes, dates and users.

Rows without a location (or without a class) are not silently dropped: they are counted in
:attr:`Observations.dropped` and reported by the commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geoaware.catalog.io import catalog_files, read_catalog
from geoaware.geo.encode import year_fraction
from geoaware.priors.errors import PriorError, PriorInputError
from geoaware.typing import Float64Array, IntArray, PathLike

__all__ = ["Observations", "load_table", "observations_from_table"]

_WANTED = ("image_id", "split", "lat", "lon", "taken_at", "user_id", "label", "supercategory")


@dataclass(frozen=True)
class Observations:
    """Located, labelled observations in arrays, ready for training or evaluation.

    Attributes
    ----------
    image_ids : list of str
    lat, lon : numpy.ndarray of float64
    date_fraction : numpy.ndarray of float64
        Fraction of the year (NaN where the row has no date).
    labels : numpy.ndarray of int64
        Index of each row's class in :attr:`vocabulary`.
    users : numpy.ndarray of int64
        Index of each row's photographer (``-1`` where unknown).
    vocabulary : list of str
        The class names, sorted.
    dropped : dict of str to int
        Rows left out and why (``no_location``, ``no_label``, ``unknown_label``).
    """

    image_ids: list[str]
    lat: Float64Array
    lon: Float64Array
    date_fraction: Float64Array
    labels: IntArray
    users: IntArray
    vocabulary: list[str]
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def n_users(self) -> int:
        """Number of distinct photographers (0 when no row has one)."""
        return int(self.users.max()) + 1 if self.users.size and self.users.max() >= 0 else 0

    def subset(self, index: npt.ArrayLike) -> Observations:
        """Return the rows at ``index`` (same vocabulary)."""
        i = np.asarray(index)
        return Observations(
            [self.image_ids[j] for j in np.arange(len(self))[i]],
            self.lat[i],
            self.lon[i],
            self.date_fraction[i],
            self.labels[i],
            self.users[i],
            self.vocabulary,
            dict(self.dropped),
        )


def load_table(catalog: PathLike | pa.Table, label_column: str | None = None) -> pa.Table:
    """Read the columns a prior needs from a catalog path (or pass a table through).

    Examples
    --------
    >>> t = pa.table({"image_id": ["a"], "lat": [1.0]})
    >>> load_table(t) is t
    True
    """
    if isinstance(catalog, pa.Table):
        return catalog
    files = catalog_files(catalog)
    schemas = [_schema(f) for f in files]
    names = set(schemas[0].names) if schemas else set()
    wanted = [c for c in (*_WANTED, label_column or "label") if c in names]
    try:
        return read_catalog(catalog, columns=list(dict.fromkeys(wanted)))
    except (pa.ArrowException, OSError) as exc:
        raise PriorInputError(catalog, f"cannot be read as a Parquet catalog ({exc})") from exc


def _schema(path: PathLike) -> pa.Schema:
    """Read one Parquet file's schema; a damaged file is one error naming it."""
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise PriorInputError(
            path, f"not a readable Parquet file, truncated or damaged ({exc})"
        ) from exc


def observations_from_table(
    table: pa.Table,
    label_column: str,
    *,
    split: str | None = None,
    vocabulary: list[str] | None = None,
    where: str = "<catalog>",
) -> Observations:
    """Select the located rows with a class (of ``split``, if given) as :class:`Observations`.

    Parameters
    ----------
    table
        Catalog columns (``image_id``, ``lat``, ``lon``, the label column; ``taken_at``,
        ``user_id``, ``split`` where present).
    label_column
        The column holding the classes.
    split
        Keep only rows of this split.
    vocabulary
        Fixed class list (evaluation); rows of other classes are counted as ``unknown_label``.
        ``None`` builds it from the rows (training).
    where
        Names the catalog in errors.

    Raises
    ------
    PriorError
        If the label column is missing, or no rows remain.

    Examples
    --------
    >>> t = pa.table({"image_id": ["a", "b", "c"], "lat": [1.0, None, 2.0],
    ...               "lon": [3.0, 4.0, 5.0], "genus": ["Vireo", "Vireo", "Anas"]})
    >>> obs = observations_from_table(t, "genus")
    >>> obs.vocabulary, obs.labels.tolist(), obs.dropped
    (['Anas', 'Vireo'], [1, 0], {'no_location': 1, 'no_label': 0})
    """
    if label_column not in table.column_names:
        have = ", ".join(table.column_names)
        raise PriorError(f"{where}: no column {label_column!r} to use as the class (has: {have})")
    if split is not None:
        if "split" not in table.column_names:
            raise PriorError(f"{where}: has no 'split' column, so split {split!r} cannot be chosen")
        table = table.filter(pc.fill_null(pc.equal(table.column("split"), split), False))
        if table.num_rows == 0:
            raise PriorError(f"{where}: no rows with split {split!r}")
    lat = _floats(table, "lat")
    lon = _floats(table, "lon")
    located = np.isfinite(lat) & np.isfinite(lon)
    raw = table.column(label_column)
    labels_text = pc.cast(raw, pa.string()) if raw.type != pa.string() else raw
    has_label = np.asarray(pc.is_valid(labels_text).to_numpy(zero_copy_only=False), dtype=bool)
    dropped = {
        "no_location": int(np.count_nonzero(~located)),
        "no_label": int(np.count_nonzero(located & ~has_label)),
    }
    keep = located & has_label
    text = np.asarray(
        labels_text.filter(pa.array(keep)).to_numpy(zero_copy_only=False), dtype=object
    )
    if vocabulary is None:
        vocab_arr, codes = np.unique(text.astype(str), return_inverse=True)
        vocab = [str(v) for v in vocab_arr]
        labels = codes.astype(np.int64)
    else:
        vocab = list(vocabulary)
        lookup = {name: i for i, name in enumerate(vocab)}
        labels = np.fromiter((lookup.get(str(v), -1) for v in text), np.int64, text.size)
        known = labels >= 0
        dropped["unknown_label"] = int(np.count_nonzero(~known))
        idx = np.flatnonzero(keep)
        keep = np.zeros_like(keep)
        keep[idx[known]] = True
        labels = labels[known]
    if not keep.any():
        raise PriorError(
            f"{where}: no rows with a location and a {label_column!r} value"
            + (f" in split {split!r}" if split else "")
            + f" ({dropped['no_location']:,} rows lack a location)"
        )
    mask = pa.array(keep)
    ids = [str(v) for v in table.column("image_id").filter(mask).to_pylist()]
    dates = np.full(len(ids), np.nan)
    if "taken_at" in table.column_names:
        t = table.column("taken_at").filter(mask)
        if pa.types.is_timestamp(t.type):
            values = t.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
            dates = year_fraction(np.asarray(values, dtype="datetime64[s]"))
    users = np.full(len(ids), -1, dtype=np.int64)
    if "user_id" in table.column_names:
        u = table.column("user_id").filter(mask)
        codes_u = pc.dictionary_encode(pc.cast(u, pa.string())).combine_chunks()
        idx_u = codes_u.indices.to_numpy(zero_copy_only=False)
        users = np.where(np.isnan(idx_u.astype(np.float64)), -1, idx_u).astype(np.int64)
    return Observations(ids, lat[keep], lon[keep], dates, labels, users, vocab, dropped)


def _floats(table: pa.Table, name: str) -> Float64Array:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col: Any = table.column(name)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
