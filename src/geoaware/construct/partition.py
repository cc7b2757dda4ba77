"""Federated partitions of a catalog: one small base class, one class per scheme.

Modelled on ``flwr_datasets.partitioner``: every setting goes to ``__init__`` (which only
validates), a catalog is attached once through the :attr:`CatalogPartitioner.catalog`
property, and the assignment is built on the first :meth:`~CatalogPartitioner.load_partition`
and cached, with ``np.random.default_rng(seed)`` kept on the instance. Partition ids are the
ranks of the sorted natural ids (user ids, cell ids), so they are stable across runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.construct.columns import cell_keys, label_values, parse_cell_spec, require_columns
from geoaware.construct.errors import PartitionError, UnknownPartitionError
from geoaware.geo.cells import quadtree_keys, quadtree_levels, quadtree_names
from geoaware.typing import Float64Array, IntArray, ObjectArray

__all__ = [
    "CatalogPartitioner",
    "CellPartitioner",
    "DirichletPartitioner",
    "IidPartitioner",
    "UserPartitioner",
    "make_partitioner",
    "partition_index",
    "partition_order",
]


def _sorted_codes(values: pa.ChunkedArray | pa.Array) -> tuple[IntArray, ObjectArray]:
    """Codes of ``values`` in sorted order of the distinct values; -1 for null."""
    enc = pc.dictionary_encode(values)
    if isinstance(enc, pa.ChunkedArray):
        enc = (
            enc.unify_dictionaries().combine_chunks()
            if enc.num_chunks
            else pa.array([], pa.dictionary(pa.int32(), pa.string()))
        )
    dictionary = enc.dictionary
    order = np.asarray(pc.sort_indices(dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = np.where(idx >= 0, rank[np.maximum(idx, 0)] if len(rank) else -1, -1)
    names = np.asarray(dictionary.take(pa.array(order)).to_pylist(), dtype=object)
    return codes.astype(np.int64), names


def partition_order(assignment: IntArray, num_partitions: int) -> tuple[IntArray, IntArray]:
    """Return rows sorted by partition (row order within one) and each partition's offsets.

    Partition ``k`` is ``order[offsets[k]:offsets[k + 1]]``; rows with a partition id outside
    ``0..num_partitions-1`` (``-1``: left out) fall outside every slice. One stable sort.

    Examples
    --------
    >>> order, offsets = partition_order(np.array([1, -1, 0, 1]), 2)
    >>> order.tolist(), offsets.tolist()
    ([1, 2, 0, 3], [1, 2, 4])
    """
    order = np.argsort(assignment, kind="stable")
    offsets = np.searchsorted(assignment[order], np.arange(num_partitions + 1))
    return order, offsets.astype(np.int64)


def partition_index(assignment: IntArray, num_partitions: int) -> list[IntArray]:
    """Return the row indices of each partition, in row order, from each row's partition id.

    Rows with a partition id outside ``0..num_partitions-1`` (``-1``: left out) are in none.

    Examples
    --------
    >>> [ix.tolist() for ix in partition_index(np.array([1, -1, 0, 1]), 2)]
    [[2], [0, 3]]
    """
    order, offsets = partition_order(assignment, num_partitions)
    return [order[offsets[k] : offsets[k + 1]] for k in range(num_partitions)]


class CatalogPartitioner(ABC):
    """Base of the catalog partitioners: attach a catalog once, load partitions by id.

    Subclasses implement :meth:`_assign`, returning each row's partition (``-1``: left out)
    and the natural id of each partition.

    Examples
    --------
    >>> p = UserPartitioner()
    >>> p.catalog
    Traceback (most recent call last):
    ...
    AttributeError: attach a catalog first: partitioner.catalog = read_catalog(path)
    """

    def __init__(self) -> None:
        self._catalog: pa.Table | None = None
        self._assignment: IntArray | None = None
        self._natural_ids: ObjectArray | None = None
        self._indices: list[IntArray] | None = None
        self.left_out: dict[str, int] = {}
        self.where = "catalog"

    @property
    def catalog(self) -> pa.Table:
        """The catalog being partitioned (settable once, a :class:`pyarrow.Table`)."""
        if self._catalog is None:
            raise AttributeError("attach a catalog first: partitioner.catalog = read_catalog(path)")
        return self._catalog

    @catalog.setter
    def catalog(self, value: pa.Table) -> None:
        if self._catalog is not None:
            raise ValueError("the catalog can be attached only once to a partitioner")
        if not isinstance(value, pa.Table):
            raise TypeError(f"the catalog must be a pyarrow.Table but given {type(value)}")
        self._check(value)
        self._catalog = value

    def _check(self, table: pa.Table) -> None:
        """Check the catalog has the columns this scheme needs (override to add)."""
        require_columns(table, ["image_id"], self.where)

    @abstractmethod
    def _assign(self) -> tuple[IntArray, ObjectArray]:
        """Return (partition id per row, -1 if left out; natural id per partition)."""

    def _build_if_needed(self) -> None:
        if self._assignment is None:
            self._assignment, self._natural_ids = self._assign()

    @property
    def assignment(self) -> IntArray:
        """The partition id of every catalog row (``-1``: left out, see :attr:`left_out`)."""
        self._build_if_needed()
        assert self._assignment is not None
        return self._assignment

    @property
    def natural_ids(self) -> ObjectArray:
        """The natural id (user, cell, or partition number) of each partition id."""
        self._build_if_needed()
        assert self._natural_ids is not None
        return self._natural_ids

    @property
    def num_partitions(self) -> int:
        """Number of partitions (known once the assignment is built)."""
        return len(self.natural_ids)

    def partition_indices(self, partition_id: int) -> IntArray:
        """Row indices of one partition (index arrays are built once, then O(1))."""
        if self._indices is None:
            self._indices = partition_index(self.assignment, self.num_partitions)
        if not 0 <= partition_id < self.num_partitions:
            raise UnknownPartitionError(
                f"partition_id {partition_id} is not in 0..{self.num_partitions - 1}"
            )
        return self._indices[partition_id]

    def load_partition(self, partition_id: int) -> pa.Table:
        """Return the catalog rows of one partition.

        Examples
        --------
        >>> p = UserPartitioner()
        >>> p.catalog = pa.table({"image_id": ["1", "2", "3"], "user_id": ["b", "a", "b"]})
        >>> p.load_partition(1).column("image_id").to_pylist()
        ['1', '3']
        """
        return self.catalog.take(pa.array(self.partition_indices(partition_id)))


class UserPartitioner(CatalogPartitioner):
    """One partition per photographer (``user_id``); ids follow the sorted user ids.

    Rows without a user are left out and counted in ``left_out["no_user"]``; users with fewer
    than ``min_size`` rows are left out and counted in ``left_out["below_min_size"]``.

    Examples
    --------
    >>> p = UserPartitioner()
    >>> p.catalog = pa.table({"image_id": ["1", "2", "3"], "user_id": ["b", None, "a"]})
    >>> p.assignment.tolist(), p.left_out
    ([1, -1, 0], {'no_user': 1, 'below_min_size': 0})
    """

    def __init__(self, min_size: int = 1) -> None:
        super().__init__()
        if min_size < 1:
            raise PartitionError(f"min_size must be >= 1, got {min_size}")
        self.min_size = min_size

    def _check(self, table: pa.Table) -> None:
        require_columns(table, ["image_id", "user_id"], self.where)

    def _assign(self) -> tuple[IntArray, ObjectArray]:
        users = self.catalog.column("user_id")
        if len(users) and users.null_count == len(users):
            raise PartitionError(
                f"{self.where}: no row has a user (column user_id is empty); partition "
                "--by cell, dirichlet or iid instead (or synthetic-user --users N for made-up "
                "photographers)"
            )
        codes, names = _sorted_codes(users)
        return _drop_small(codes, names, self.min_size, self.left_out, "no_user")


def _drop_small(
    codes: IntArray,
    names: ObjectArray,
    min_size: int,
    left_out: dict[str, int],
    missing_key: str,
) -> tuple[IntArray, ObjectArray]:
    """Leave out groups under ``min_size``; renumber the rest keeping their sorted order."""
    left_out[missing_key] = int((codes < 0).sum())
    sizes = np.bincount(codes[codes >= 0], minlength=len(names))
    keep = sizes >= min_size
    left_out["below_min_size"] = int(sizes[~keep].sum())
    if keep.all():
        return codes, names
    new = np.cumsum(keep) - 1
    new = np.where(keep, new, -1)
    remapped = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
    return remapped.astype(np.int64), names[keep]


class CellPartitioner(CatalogPartitioner):
    """One partition per geographic cell: H3/S2 at a fixed resolution, or adaptive.

    With ``max_cell_size`` the cells are lat/lon quadtree cells, each split in four until it
    holds at most that many images (or ``max_level`` is reached); natural ids read
    ``q<level>/<row>/<col>``.

    Examples
    --------
    >>> p = CellPartitioner(max_cell_size=2)
    >>> p.catalog = pa.table({"image_id": list("abcd"), "lat": [10.0, 10.1, 10.2, -40.0],
    ...                       "lon": [20.0, 20.1, 20.2, 100.0]})
    >>> p.num_partitions >= 2, bool((p.assignment >= 0).all())
    (True, True)
    """

    def __init__(
        self,
        cell: str | None = "h3:3",
        *,
        max_cell_size: int | None = None,
        max_level: int = 24,
        min_size: int = 1,
    ) -> None:
        super().__init__()
        if max_cell_size is None and cell is None:
            raise PartitionError("give a cell resolution (h3:RES, s2:LEVEL) or max_cell_size")
        if max_cell_size is not None and max_cell_size < 1:
            raise PartitionError(f"max_cell_size must be >= 1, got {max_cell_size}")
        if max_cell_size is None and cell is not None:
            parse_cell_spec(cell)
        if not 1 <= max_level <= 28:
            raise PartitionError(f"max_level must be in 1..28, got {max_level}")
        self.cell, self.max_cell_size, self.max_level, self.min_size = (
            cell,
            max_cell_size,
            max_level,
            min_size,
        )

    def _check(self, table: pa.Table) -> None:
        require_columns(table, ["image_id", "lat", "lon"], self.where)

    def _assign(self) -> tuple[IntArray, ObjectArray]:
        lat = self.catalog.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
        lon = self.catalog.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
        if self.max_cell_size is None:
            assert self.cell is not None
            keys = cell_keys(lat, lon, self.cell)
            codes, names = _sorted_codes(pa.array(keys, pa.string()))
        else:
            codes, names = self._adaptive(lat, lon)
        return _drop_small(codes, names, self.min_size, self.left_out, "no_location")

    def _adaptive(self, lat: Float64Array, lon: Float64Array) -> tuple[IntArray, ObjectArray]:
        assert self.max_cell_size is not None
        key = quadtree_keys(lat, lon, self.max_cell_size, self.max_level)
        located = np.flatnonzero(key >= 0)
        deepest = key[quadtree_levels(key) == self.max_level]
        if deepest.size:
            sizes = np.unique(deepest, return_counts=True)[1]
            self.left_out["oversize_cells_at_max_level"] = int((sizes > self.max_cell_size).sum())
        uniq, codes_located = np.unique(key[located], return_inverse=True)
        codes = np.full(len(lat), -1, dtype=np.int64)
        codes[located] = codes_located.ravel()
        return codes, quadtree_names(uniq)


class DirichletPartitioner(CatalogPartitioner):
    """Per-class proportions over partitions drawn from Dir(alpha), as in Hsu et al. (2019).

    For each label a vector of ``num_partitions`` proportions is drawn and the label's rows
    (in a seeded random order) are cut at the cumulative proportions, all labels at once. The
    draw is repeated (at most ``max_retries`` times) until every partition holds at least
    ``min_size`` rows; otherwise :class:`PartitionError` says what to change.

    Examples
    --------
    >>> p = DirichletPartitioner(num_partitions=3, alpha=0.5, min_size=2, seed=0)
    >>> p.catalog = pa.table({"image_id": [str(i) for i in range(60)],
    ...                       "label_name": ["a", "b", "c"] * 20})
    >>> p.num_partitions, int(np.bincount(p.assignment).min()) >= 2
    (3, True)
    """

    def __init__(
        self,
        num_partitions: int,
        alpha: float = 0.1,
        *,
        level: str | None = None,
        min_size: int = 10,
        max_retries: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_partitions <= 0:
            raise PartitionError(f"num_partitions must be > 0, got {num_partitions}")
        if not (alpha > 0 and np.isfinite(alpha)):
            raise PartitionError(f"alpha must be a positive number, got {alpha}")
        if max_retries < 1:
            raise PartitionError(f"max_retries must be >= 1, got {max_retries}")
        self._num_partitions, self.alpha, self.level = num_partitions, alpha, level
        self.min_size, self.max_retries, self.seed = min_size, max_retries, seed
        self._rng = np.random.default_rng(seed)
        self.attempts = 0

    def _check(self, table: pa.Table) -> None:
        require_columns(table, ["image_id"], self.where)
        label_values(table, self.level, self.where)

    def _assign(self) -> tuple[IntArray, ObjectArray]:
        labels, _ = _sorted_codes(label_values(self.catalog, self.level, self.where))
        self.left_out["no_label"] = int((labels < 0).sum())
        rows = np.flatnonzero(labels >= 0)
        n, k = len(rows), self._num_partitions
        if n == 0 and len(labels):
            column = self.level or "label_name"
            raise PartitionError(
                f"{self.where}: no row has a label at level {column!r} (column {column} is "
                "empty); choose another --level"
            )
        if n < self.min_size * k:
            raise PartitionError(
                f"{self.where}: cannot give {k} partitions at least {self.min_size} rows each "
                f"from {n} labelled rows; lower --num-partitions or --min-size"
            )
        lab = labels[rows]
        num_labels = int(lab.max()) + 1 if n else 0
        sizes = np.bincount(lab, minlength=num_labels)
        smallest = 0
        for attempt in range(1, self.max_retries + 1):
            self.attempts = attempt
            part = self._draw(lab, sizes, k)
            counts = np.bincount(part, minlength=k)
            smallest = int(counts.min())
            if smallest >= self.min_size:
                out = np.full(len(labels), -1, dtype=np.int64)
                out[rows] = part
                return out, np.asarray([str(i) for i in range(k)], dtype=object)
        raise PartitionError(
            f"{self.where}: Dirichlet(alpha={self.alpha:g}) over {k} partitions left a "
            f"partition with {smallest} rows (< --min-size {self.min_size}) in each of "
            f"{self.max_retries} draws; raise --alpha, or lower --num-partitions or --min-size"
        )

    def _draw(self, lab: IntArray, sizes: IntArray, k: int) -> IntArray:
        rng = self._rng
        num_labels = len(sizes)
        gamma = rng.gamma(self.alpha, size=(num_labels, k))
        total = gamma.sum(axis=1)
        dead = ~(total > 0)  # all draws underflowed to zero (tiny alpha): one random winner
        if dead.any():
            gamma[dead] = 0.0
            gamma[np.flatnonzero(dead), rng.integers(0, k, int(dead.sum()))] = 1.0
            total = gamma.sum(axis=1)
        cum = np.cumsum(gamma / total[:, None], axis=1)
        cum[:, -1] = 1.0
        # rank of each row within its label, in a random order
        order = np.lexsort((rng.random(len(lab)), lab))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty(len(lab), dtype=np.int64)
        rank[order] = np.arange(len(lab)) - np.repeat(starts, sizes)
        frac = (rank + 0.5) / sizes[lab]
        flat = (cum + np.arange(num_labels)[:, None]).ravel()
        pos = np.searchsorted(flat, lab + frac, side="left")
        return np.asarray(pos - lab * k, dtype=np.int64)

    @property
    def num_partitions(self) -> int:
        """Number of partitions (as asked)."""
        return self._num_partitions


class IidPartitioner(CatalogPartitioner):
    """Rows shuffled with a seed and cut into ``num_partitions`` near-equal parts.

    Examples
    --------
    >>> p = IidPartitioner(num_partitions=2, seed=0)
    >>> p.catalog = pa.table({"image_id": list("abcde")})
    >>> np.bincount(p.assignment).tolist()
    [3, 2]
    """

    def __init__(self, num_partitions: int, *, seed: int = 0) -> None:
        super().__init__()
        if num_partitions <= 0:
            raise PartitionError(f"num_partitions must be > 0, got {num_partitions}")
        self._num_partitions, self.seed = num_partitions, seed
        self._rng = np.random.default_rng(seed)

    def _assign(self) -> tuple[IntArray, ObjectArray]:
        n, k = self.catalog.num_rows, self._num_partitions
        if n < k:
            raise PartitionError(f"{self.where}: {n} rows cannot fill {k} partitions")
        pos = np.empty(n, dtype=np.int64)
        pos[self._rng.permutation(n)] = np.arange(n)
        return (pos * k) // n, np.asarray([str(i) for i in range(k)], dtype=object)

    @property
    def num_partitions(self) -> int:
        """Number of partitions (as asked)."""
        return self._num_partitions


def make_partitioner(
    by: str,
    *,
    level: str | None = None,
    alpha: float = 0.1,
    num_partitions: int | None = None,
    min_size: int | None = None,
    cell: str | None = None,
    max_cell_size: int | None = None,
    users: int | None = None,
    scale_km: float = 200.0,
    activity_sigma: float = 2.0,
    seed: int = 0,
) -> CatalogPartitioner:
    """Build the partitioner named ``by`` from CLI-style options.

    ``by`` is user, synthetic-user (SYNTHETIC photographers, for catalogs without
    ``user_id``; see :mod:`geoaware.construct.synthetic_users`), cell, dirichlet or iid.

    Examples
    --------
    >>> type(make_partitioner("dirichlet", num_partitions=4)).__name__
    'DirichletPartitioner'
    """
    if by == "user":
        return UserPartitioner(min_size=min_size or 1)
    if by == "synthetic-user":
        from geoaware.construct.synthetic_users import SyntheticUserPartitioner

        if users is None:
            raise PartitionError("--by synthetic-user needs --users (e.g. --users 2000)")
        return SyntheticUserPartitioner(
            users, scale_km=scale_km, sigma=activity_sigma, min_size=min_size or 1, seed=seed
        )
    if by == "cell":
        return CellPartitioner(
            None if max_cell_size else (cell or "h3:3"),
            max_cell_size=max_cell_size,
            min_size=min_size or 1,
        )
    if by in ("dirichlet", "iid"):
        if num_partitions is None:
            raise PartitionError(f"--by {by} needs --num-partitions")
        if by == "iid":
            return IidPartitioner(num_partitions, seed=seed)
        return DirichletPartitioner(
            num_partitions,
            alpha,
            level=level,
            min_size=10 if min_size is None else min_size,
            seed=seed,
        )
    raise PartitionError(
        f"unknown partition scheme {by!r}; choose user, synthetic-user, cell, dirichlet or iid"
    )


def describe(p: CatalogPartitioner) -> dict[str, Any]:
    """Return the settings of a partitioner, for ``stats.json``."""
    return {k: v for k, v in vars(p).items() if not k.startswith("_") and k != "left_out"}
