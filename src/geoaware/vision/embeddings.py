"""The embeddings file: ``image_id`` plus one fixed-size vector per image, in Parquet.

An embeddings path is one ``.parquet`` file or a folder of shards (``part-00000.parquet``,
...), each written atomically, so an interrupted job leaves only whole shards behind and a
rerun can skip them. Every shard carries an :class:`EmbeddingInfo` in its metadata (key
``geoaware.embeddings``): the encoder's name and version, the vector size and dtype, and the
preprocessing, so a later stage can refuse to compare vectors from different encoders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geoaware.errors import InputFileError, UsageError
from geoaware.fileio import atomic_path
from geoaware.typing import PathLike

__all__ = [
    "EMBEDDING_COLUMN",
    "ID_COLUMN",
    "META_KEY",
    "EmbeddingInfo",
    "Embeddings",
    "embedding_files",
    "read_embeddings",
    "read_info",
    "shard_name",
    "write_embeddings",
]

ID_COLUMN = "image_id"
EMBEDDING_COLUMN = "embedding"
META_KEY = b"geoaware.embeddings"
_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class EmbeddingInfo:
    """What made the vectors: stored in every shard's metadata.

    Examples
    --------
    >>> EmbeddingInfo("efficientnet-lite0", dim=1280).dtype
    'float32'
    """

    encoder: str
    dim: int
    dtype: str = "float32"
    version: str = ""
    preprocessing: dict[str, Any] = field(default_factory=dict)
    normalized: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise UsageError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.dim <= 0:
            raise UsageError(f"dim must be positive, got {self.dim}")

    def to_json(self) -> str:
        """Return the metadata string (sorted keys, so equal infos give equal strings)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> EmbeddingInfo:
        """Parse :meth:`to_json`'s output."""
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Embeddings:
    """Vectors in memory: ``ids[i]`` is the image of row ``vectors[i]``.

    Examples
    --------
    >>> e = Embeddings(np.array(["a", "b"]), np.eye(2, dtype=np.float32), EmbeddingInfo("x", 2))
    >>> len(e), e.dim
    (2, 2)
    """

    ids: np.ndarray
    vectors: np.ndarray
    info: EmbeddingInfo

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """The vector size."""
        return int(self.vectors.shape[1])

    def take(self, index: np.ndarray) -> Embeddings:
        """Return the rows at ``index`` (integer positions or a boolean mask)."""
        return Embeddings(self.ids[index], self.vectors[index], self.info)


def shard_name(index: int) -> str:
    """Return the file name of shard ``index``.

    >>> shard_name(3)
    'part-00003.parquet'
    """
    return f"part-{index:05d}.parquet"


def _table(ids: Sequence[str] | np.ndarray, vectors: np.ndarray, info: EmbeddingInfo) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=_DTYPES[info.dtype])
    if vectors.ndim != 2 or vectors.shape[1] != info.dim:
        raise UsageError(f"vectors must have shape (n, {info.dim}), got {vectors.shape}")
    if len(ids) != len(vectors):
        raise UsageError(f"{len(ids)} ids for {len(vectors)} vectors")
    flat = pa.array(vectors.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(flat, info.dim)
    table = pa.table(
        {ID_COLUMN: pa.array([str(i) for i in ids], pa.string()), EMBEDDING_COLUMN: column}
    )
    return table.replace_schema_metadata({META_KEY: info.to_json().encode()})


def write_embeddings(
    path: PathLike,
    ids: Sequence[str] | np.ndarray,
    vectors: np.ndarray,
    info: EmbeddingInfo,
) -> Path:
    """Write one embeddings file (or shard) atomically; return its path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "emb.parquet"
    >>> _ = write_embeddings(p, ["a", "b"], np.ones((2, 3)), EmbeddingInfo("x", 3))
    >>> read_embeddings(p).vectors.shape
    (2, 3)
    """
    path = Path(path)
    table = _table(ids, vectors, info)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def embedding_files(path: PathLike) -> list[Path]:
    """List the Parquet files of an embeddings path (one file, or a folder's shards)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise InputFileError(path, "no .parquet embedding shards in this folder")
        return files
    if not path.exists():
        raise InputFileError(path, "no such embeddings file")
    return [path]


def read_info(path: PathLike) -> EmbeddingInfo:
    """Return the :class:`EmbeddingInfo` of a path; every shard of a folder must agree."""
    infos = {i.to_json(): i for i in map(_file_info, embedding_files(path))}
    if len(infos) > 1:
        raise InputFileError(path, f"shards were made by different encoders: {sorted(infos)}")
    return next(iter(infos.values()))


def _file_info(file: Path) -> EmbeddingInfo:
    from geoaware.catalog.io import read_parquet_schema

    schema = read_parquet_schema(file)
    meta = schema.metadata or {}
    for name in (ID_COLUMN, EMBEDDING_COLUMN):
        if name not in schema.names:
            raise InputFileError(file, f"not an embeddings file: no {name!r} column", field=name)
    if META_KEY in meta:
        try:
            return EmbeddingInfo.from_json(meta[META_KEY])
        except (ValueError, TypeError) as exc:
            raise InputFileError(file, f"bad encoder metadata ({exc})", field="encoder") from exc
    typ = schema.field(EMBEDDING_COLUMN).type
    if not pa.types.is_fixed_size_list(typ):
        raise InputFileError(
            file, "the embedding column is not a fixed-size list", field=EMBEDDING_COLUMN
        )
    dtype = {pa.float16(): "float16", pa.float32(): "float32"}.get(typ.value_type)
    if dtype is None:
        raise InputFileError(
            file, f"vectors of {typ.value_type} are not supported", field=EMBEDDING_COLUMN
        )
    return EmbeddingInfo("unknown", dim=typ.list_size, dtype=dtype)


def read_embeddings(path: PathLike, ids: Sequence[str] | np.ndarray | None = None) -> Embeddings:
    """Read an embeddings file or folder of shards into memory (float32 vectors).

    With ``ids``, return exactly those images in that order; an id without a vector is an
    error naming it.
    """
    files = embedding_files(path)
    info = read_info(path)
    id_parts: list[np.ndarray] = []
    vec_parts: list[np.ndarray] = []
    for f in files:
        try:
            table = pq.read_table(f, columns=[ID_COLUMN, EMBEDDING_COLUMN])
        except (OSError, pa.ArrowException) as exc:
            raise InputFileError(f, f"not a readable Parquet file ({exc})") from exc
        col = table.column(EMBEDDING_COLUMN).combine_chunks()
        flat = col.flatten().to_numpy(zero_copy_only=False)
        id_parts.append(table.column(ID_COLUMN).to_numpy(zero_copy_only=False).astype(str))
        vec_parts.append(flat.reshape(len(table), info.dim).astype(np.float32, copy=False))
    all_ids = np.concatenate(id_parts) if id_parts else np.array([], dtype=str)
    vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, info.dim), np.float32)
    if ids is None:
        return Embeddings(all_ids, vectors, info)
    position = {k: i for i, k in enumerate(all_ids.tolist())}
    wanted = [str(i) for i in ids]
    missing = [k for k in wanted if k not in position]
    if missing:
        raise InputFileError(
            Path(path),
            f"{len(missing)} image ids have no embedding",
            record=missing[0],
            field=ID_COLUMN,
        )
    index = np.fromiter((position[k] for k in wanted), dtype=np.int64, count=len(wanted))
    return Embeddings(all_ids[index], vectors[index], info)
