"""Flower adapter: a ``flwr_datasets`` partitioner that reads a geoaware partition file.

Importing this module needs neither ``flwr`` nor ``datasets``: the partitioner implements
the :class:`flwr_datasets.partitioner.Partitioner` interface itself and, when it is created
and ``flwr_datasets`` is installed, registers as a virtual subclass of it, so
``flwr_datasets.FederatedDataset(partitioners={"train": partitioner})`` accepts it. The row
indices of every partition are computed once, on the first
:meth:`CatalogFilePartitioner.load_partition` (one hash lookup of all ids and one sort, not a
scan per partition), so each ``load_partition`` is a ``select`` of precomputed indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.parquet as pq

from geoaware.construct.errors import PartitionError
from geoaware.construct.partition import partition_index
from geoaware.errors import DependencyNotFoundError
from geoaware.typing import IntArray, PathLike

__all__ = ["CatalogFilePartitioner"]


def _register_with_flower(cls: type) -> None:
    """Make ``cls`` a virtual subclass of Flower's ``Partitioner`` (if it is installed)."""
    try:
        from flwr_datasets.partitioner import Partitioner  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the environment
        return
    if not issubclass(cls, Partitioner):
        Partitioner.register(cls)


class CatalogFilePartitioner:
    """Partition a Hugging Face dataset by a geoaware ``partitions.parquet`` file.

    Rows of the dataset are matched to partitions through ``id_column`` (``image_id``);
    rows the file does not list belong to no partition. Partition ids are those of the file.

    Parameters
    ----------
    partition_file
        A ``partitions.parquet`` written by ``geoaware partition`` (columns
        ``partition_id`` and ``image_id``).
    id_column
        The dataset column holding the image ids.

    Raises
    ------
    PartitionError
        If the file lacks a column, or (on the first ``load_partition``) an id of the file
        is not in the dataset or the dataset repeats an id.

    Examples
    --------
    >>> import datasets, tempfile, pathlib, pyarrow as pa
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "partitions.parquet"
    >>> pq.write_table(pa.table({"partition_id": [1, 0, 1], "image_id": ["a", "b", "c"]}), f)
    >>> p = CatalogFilePartitioner(f)
    >>> p.dataset = datasets.Dataset.from_dict({"image_id": ["c", "b", "a"], "x": [3, 2, 1]})
    >>> p.num_partitions, p.load_partition(1)["x"][:]
    (2, [3, 1])
    """

    def __init__(self, partition_file: PathLike, id_column: str = "image_id") -> None:
        self._file = str(partition_file)
        try:
            t = pq.read_table(partition_file, columns=["partition_id", "image_id"])
        except (KeyError, ValueError) as exc:  # pyarrow: "No match for FieldRef"
            raise PartitionError(
                f"{self._file}: not a partition file (needs partition_id, image_id): {exc}"
            ) from exc
        self._pid = t.column("partition_id").to_numpy().astype(np.int64)
        self._ids = np.asarray(t.column("image_id").to_numpy(zero_copy_only=False), dtype=object)
        if len(self._pid) and self._pid.min() < 0:
            raise PartitionError(f"{self._file}: partition_id must be >= 0")
        self._num = int(self._pid.max()) + 1 if len(self._pid) else 0
        self.id_column = id_column
        self._dataset: Any = None
        self._indices: list[IntArray] | None = None
        _register_with_flower(type(self))

    @property
    def dataset(self) -> Any:
        """The ``datasets.Dataset`` being partitioned (settable once)."""
        if self._dataset is None:
            raise AttributeError("attach a dataset first: partitioner.dataset = datasets.Dataset")
        return self._dataset

    @dataset.setter
    def dataset(self, value: Any) -> None:
        try:
            import datasets  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DependencyNotFoundError(
                "CatalogFilePartitioner needs datasets: pip install 'geoaware[fl]'"
            ) from exc
        if self._dataset is not None:
            raise ValueError("the dataset can be attached only once to a partitioner")
        if not isinstance(value, datasets.Dataset):
            raise TypeError(f"the dataset must be a datasets.Dataset but given {type(value)}")
        if self.id_column not in value.column_names:
            cols = ", ".join(value.column_names)
            raise PartitionError(f"dataset has no column {self.id_column!r} (columns: {cols})")
        self._dataset = value

    def is_dataset_assigned(self) -> bool:
        """Return True once a dataset is attached."""
        return self._dataset is not None

    def _build_if_needed(self) -> None:
        if self._indices is not None:
            return
        import pandas as pd

        column = self.dataset.with_format("arrow")[self.id_column]
        index = pd.Index(np.asarray(column.to_numpy(zero_copy_only=False), dtype=object))
        if not index.is_unique:
            dup = index[index.duplicated()][:3].tolist()
            raise PartitionError(f"dataset repeats {self.id_column} values (e.g. {dup})")
        pos = np.asarray(index.get_indexer(self._ids), dtype=np.int64)
        if (pos < 0).any():
            missing = self._ids[pos < 0][:3].tolist()
            raise PartitionError(
                f"{self._file}: {(pos < 0).sum()} image ids are not in the dataset (e.g. {missing})"
            )
        # within a partition, keep the dataset's row order
        self._indices = [np.sort(pos[ix]) for ix in partition_index(self._pid, self._num)]

    def partition_indices(self, partition_id: int) -> IntArray:
        """Return the dataset row indices of one partition (built once, then a lookup)."""
        if not 0 <= partition_id < self._num:
            raise KeyError(f"partition_id {partition_id} is not in 0..{self._num - 1}")
        self._build_if_needed()
        if self._indices is None:  # pragma: no cover - set by _build_if_needed
            raise RuntimeError("partition index was not built")
        return self._indices[partition_id]

    def load_partition(self, partition_id: int) -> Any:
        """Return the dataset rows of one partition (a ``datasets.Dataset``)."""
        return self.dataset.select(self.partition_indices(partition_id))

    @property
    def num_partitions(self) -> int:
        """Number of partitions in the file."""
        return self._num
