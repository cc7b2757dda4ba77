"""Image-id and class-id keys of prediction files: joins, duplicates, int maps, padding.

Vectorised helpers shared by the predictions readers and the evaluators that join them to a
catalog (:mod:`geoaware.evaluate.classify`, :mod:`geoaware.predictions.submission`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import EvaluationError, InputFileError
from geoaware.typing import IntArray

__all__ = [
    "PAD",
    "IdIndex",
    "IntMap",
    "factorize",
    "load_table",
    "np_int",
    "pad",
    "refuse_duplicates",
    "string_ids",
]

PAD = -1
"""Label id of an empty slot in :attr:`~geoaware.predictions.labels.TopK.labels`."""


def np_int(array: Any) -> IntArray:
    """Return an Arrow integer array as an int64 numpy array."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def string_ids(ids: Any) -> Any:
    """Return image ids (Arrow or numpy, text or int) as an Arrow string array; null is an error."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        arr = np.asarray(ids)
        if arr.dtype.kind == "O":
            ids = pa.array(arr.tolist())  # None stays null, and is refused below
        elif arr.dtype.kind in "iu":
            ids = pa.array(arr).cast(pa.string())
        else:
            ids = pa.array(arr.astype(str))
    if ids.null_count:
        raise EvaluationError("image ids must not be null")
    return ids.cast(pa.string())


def pad(parent: IntArray, values: npt.NDArray[Any], n: int, k: int | None, fill: Any) -> Any:
    """Scatter flat per-row ``values`` (rows given by sorted ``parent``) into an (n, k) matrix."""
    counts = np.bincount(parent, minlength=n) if parent.size else np.zeros(n, np.int64)
    width = int(counts.max()) if n else 0
    if k is not None:
        width = min(width, k)
    if n and parent.size == n * width and np.all(counts == width):
        return np.ascontiguousarray(values.reshape(n, width))
    out = np.full((n, width), fill, dtype=values.dtype if values.size else np.asarray(fill).dtype)
    starts = np.cumsum(counts) - counts
    pos = np.arange(parent.size, dtype=np.int64) - starts[parent]
    keep = pos < width
    out[parent[keep], pos[keep]] = values[keep]
    return out


def _int_ids(ids: Any) -> IntArray | None:
    """Return the ids as int64 if each is a canonical decimal integer (fast joins), else None."""
    if pa.types.is_integer(ids.type):
        return np_int(ids)
    try:
        ints = pc.cast(ids, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not pc.all(pc.equal(pc.cast(ints, ids.type), ids)).as_py():
        return None  # "007" and "7" must stay different ids
    return np_int(ints)


class IdIndex:
    """Image ids ready for joins: int64 keys when every id is a canonical integer, else text.

    Integer keys take pandas' int64 hash table (built once, shared by the uniqueness check and
    the lookups); other ids use ``pyarrow.compute``.
    """

    def __init__(self, ids: Any) -> None:
        self.ids = ids
        self.ints = _int_ids(ids)
        self._index: pd.Index[Any] | None = None

    @property
    def index(self) -> pd.Index[Any]:
        """The pandas index of the ids (built once)."""
        if self._index is None:
            if self.ints is not None:
                self._index = pd.Index(self.ints)
            else:
                self._index = pd.Index(self.ids.to_numpy(zero_copy_only=False), dtype=object)
        return self._index

    def first_duplicate(self) -> tuple[int, int] | None:
        """Return (first, repeat) positions of the first repeated id, or None."""
        if self.ints is None and pc.count_distinct(self.ids).as_py() == len(self.ids):
            return None
        if self.index.is_unique:
            return None
        repeat = int(np.flatnonzero(self.index.duplicated(keep="first"))[0])
        first = int(np.flatnonzero(self.index == self.index[repeat])[0])
        return first, repeat

    def positions(self, queries: IdIndex) -> IntArray:
        """Position of each query id among these (unique) ids, -1 where absent."""
        n = len(self.ids)
        if n == len(queries.ids):  # the usual case: predictions in catalog order
            if self.ints is not None and queries.ints is not None:
                same = bool(np.array_equal(self.ints, queries.ints))
            else:
                same = n == 0 or bool(pc.all(pc.equal(self.ids, queries.ids)).as_py())
            if same:
                return np.arange(n, dtype=np.int64)
        if self.ints is not None and queries.ints is not None:
            return np.asarray(self.index.get_indexer(pd.Index(queries.ints)), dtype=np.int64)
        found = pc.index_in(queries.ids.cast(pa.string()), value_set=self.ids.cast(pa.string()))
        return np_int(found.fill_null(-1))


def _first_duplicate(ids: Any) -> tuple[int, int] | None:
    return IdIndex(ids).first_duplicate()


def refuse_duplicates(where: object, ids: Any, record: Any, field: str) -> None:
    """Raise an error naming ``where``, the record and ``field`` if an id appears twice."""
    found = _first_duplicate(ids)
    if found is not None:
        first, repeat = found
        raise InputFileError(
            where,
            f"image id {ids[repeat].as_py()!r} appears again (first at {record(first)})",
            record=record(repeat),
            field=field,
        )


_DENSE_SPAN = 1 << 24  # int keys spanning less than this are mapped through a dense table


class IntMap:
    """A vectorised int -> int map; unknown keys give -1.

    A dense table when the keys span a small range (class ids do), else a binary search.
    """

    def __init__(self, keys: IntArray, values: IntArray) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]
        self.table: IntArray | None = None
        if keys.size:
            self.lo = int(self.keys[0])
            span = int(self.keys[-1]) - self.lo + 1
            if span < _DENSE_SPAN:
                self.table = np.full(span + 2, -1, dtype=np.int64)  # -1 at both ends
                self.table[self.keys - self.lo + 1] = self.values

    def __call__(self, queries: IntArray) -> IntArray:
        """Map each query key to its value, -1 where unknown."""
        q = np.asarray(queries, dtype=np.int64)
        if self.keys.size == 0:
            return np.full(q.shape, -1, dtype=np.int64)
        if self.table is not None:
            return self.table[np.clip(q - (self.lo - 1), 0, self.table.size - 1)]
        pos = np.clip(np.searchsorted(self.keys, q), 0, self.keys.size - 1)
        return np.where(self.keys[pos] == q, self.values[pos], -1)


def factorize(values: IntArray) -> tuple[IntArray, IntArray]:
    """Return (sorted distinct values, the code of each value), by counting when possible."""
    if values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < _DENSE_SPAN:
            present = np.bincount(values - lo, minlength=hi - lo + 1) > 0
            codes = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(np.int64) + lo, codes[values - lo]
    uniques, inverse = np.unique(values, return_inverse=True)
    return uniques.astype(np.int64), inverse.ravel().astype(np.int64)


def load_table(obj: Any, columns: Sequence[str]) -> Any:
    """Return the ``columns`` (those that exist) of a catalog given as a table or a path."""
    if isinstance(obj, pa.Table):
        return obj.select([c for c in columns if c in obj.column_names])
    from geoaware.catalog.io import catalog_columns, read_catalog

    present = set(catalog_columns(obj))
    return read_catalog(obj, columns=[c for c in columns if c in present])
