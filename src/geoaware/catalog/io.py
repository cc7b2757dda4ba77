"""Reading and writing catalogs: one Parquet file, or a folder of Parquet parts.

Reads check every file and name it in errors; writes are atomic (a single file is renamed
into place; a folder of parts is written beside the target and swapped in whole).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from geoaware.catalog.schema import (
    METADATA_KEY,
    SCHEMA_VERSION,
    check_schema,
    conform,
)
from geoaware.errors import CatalogError
from geoaware.fileio import atomic_dir, atomic_path
from geoaware.typing import PathLike

__all__ = [
    "catalog_columns",
    "catalog_files",
    "check_catalog_schema",
    "read_catalog",
    "read_parquet_schema",
    "write_catalog",
    "write_catalog_batches",
]


def catalog_files(path: PathLike) -> list[Path]:
    """Return the Parquet files of a catalog: the file itself, or a folder's parts, sorted.

    Raises
    ------
    CatalogError
        If the path does not exist or a folder holds no ``*.parquet`` file.

    Examples
    --------
    >>> catalog_files("/no/such/catalog.parquet")
    Traceback (most recent call last):
    ...
    geoaware.errors.CatalogError: /no/such/catalog.parquet: no such file or folder
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        parts = sorted(f for f in p.rglob("*.parquet") if not f.name.startswith("."))
        if not parts:
            raise CatalogError(p, "folder holds no *.parquet part")
        return parts
    raise CatalogError(p, "no such file or folder")


# what pyarrow raises on a damaged file: its own errors, OSError, and (for a damaged column
# name in the footer) UnicodeDecodeError
_DAMAGED = (OSError, pa.ArrowException, UnicodeDecodeError)


def read_parquet_schema(path: PathLike) -> pa.Schema:
    """Read one Parquet file's schema from its footer; a damaged file is a CatalogError.

    This is the one place where a pyarrow error about a user's Parquet file becomes a
    message that names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "cut.parquet"
    >>> _ = bad.write_bytes(b"PAR1 not really")
    >>> read_parquet_schema(bad)
    Traceback (most recent call last):
    ...
    geoaware.errors.CatalogError: .../cut.parquet: not a readable Parquet file (...)
    """
    try:
        return pq.read_schema(path)
    except _DAMAGED as exc:
        raise CatalogError(path, f"not a readable Parquet file ({exc})") from exc


def catalog_columns(path: PathLike) -> list[str]:
    """Return the column names of a catalog (its first part), without reading any rows.

    Raises
    ------
    CatalogError
        If the catalog does not exist or its first part is not a readable Parquet file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "c.parquet"
    >>> _ = write_catalog(pa.table({"source": ["s"], "image_id": ["1"]}), out)
    >>> catalog_columns(out)[:3]
    ['source', 'split', 'image_id']
    """
    return list(read_parquet_schema(catalog_files(path)[0]).names)


def check_catalog_schema(path: PathLike) -> None:
    """Check every part's stored schema against the catalog's before reading rows.

    Raises
    ------
    SchemaError
        Naming the part and the column, for a column of the wrong kind or a half group
        (see :func:`geoaware.catalog.schema.check_schema`).
    CatalogError
        If a part is missing or not readable Parquet.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "c.parquet"
    >>> pq.write_table(pa.table({"source": ["s"], "image_id": ["1"], "lon": [2.0]}), out)
    >>> check_catalog_schema(out)
    Traceback (most recent call last):
    ...
    geoaware.errors.SchemaError: ...c.parquet, field 'lat': column is missing while lon is ...
    """
    for part in catalog_files(path):
        check_schema(read_parquet_schema(part), where=str(part))


def _read_part(path: Path, columns: list[str] | None) -> pa.Table:
    meta = read_parquet_schema(path).metadata or {}
    try:
        table = pq.read_table(path, columns=columns)
    except _DAMAGED as exc:
        raise CatalogError(path, f"not a readable Parquet file ({exc})") from exc
    version = meta.get(METADATA_KEY, SCHEMA_VERSION.encode()).decode("utf-8", "replace")
    if not version.isdigit():
        raise CatalogError(
            path, f"catalog schema version {version!r} is not a number", field="schema_version"
        )
    if int(version) > int(SCHEMA_VERSION):
        raise CatalogError(
            path,
            f"catalog schema version {version} is newer than this geoaware's "
            f"({SCHEMA_VERSION}); upgrade geoaware",
        )
    return table


def read_catalog(path: PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read a catalog (file or folder of parts) into one Arrow table in catalog form.

    Parameters
    ----------
    path
        A ``.parquet`` file or a folder of parts.
    columns
        Read only these columns (faster on wide catalogs); they are not conformed then.

    Raises
    ------
    CatalogError
        Naming the file, if a part is not Parquet, is truncated, lacks a required column or
        has a column of the wrong type.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "c.parquet"
    >>> _ = write_catalog(pa.table({"source": ["s"], "image_id": ["1"]}), out)
    >>> read_catalog(out).num_rows
    1
    """
    tables = []
    for part in catalog_files(path):
        table = _read_part(part, columns)
        if columns is None:
            table = conform(table, where=str(part))
        tables.append(table)
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise CatalogError(path, f"parts do not share one schema ({exc})") from exc


def write_catalog(table: pa.Table, path: PathLike, *, rows_per_part: int | None = None) -> Path:
    """Conform ``table`` to the schema and write it atomically; return the path.

    A path ending in ``.parquet`` is written as one file; any other path becomes a folder of
    ``part-NNNNN.parquet`` files of at most ``rows_per_part`` rows (default 1,000,000), which
    replaces the old folder whole.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "catalog"
    >>> t = pa.table({"source": ["s"] * 3, "image_id": ["1", "2", "3"]})
    >>> sorted(p.name for p in write_catalog(t, out, rows_per_part=2).iterdir())
    ['part-00000.parquet', 'part-00001.parquet']
    """
    rows = rows_per_part or 1_000_000
    slices = (table.slice(start, rows) for start in range(0, max(table.num_rows, 1), rows))
    return write_catalog_batches(slices, path)


def _empty() -> pa.Table:
    """Return the empty catalog a source reads (built in sources), conformed to the schema."""
    from geoaware.sources.base import empty_catalog  # only here: sources import slowly

    return conform(empty_catalog())


def write_catalog_batches(batches: Iterable[pa.Table], path: PathLike) -> Path:
    """Write an iterable of tables as one catalog, in bounded memory; return the path.

    Each table is conformed and, for a folder path, written as its own part as soon as it
    arrives, so memory holds one batch at a time. A ``.parquet`` path gets one file written
    row group by row group. Either way the result appears only when every batch is written:
    an error part-way leaves the old catalog (or nothing) in place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "c.parquet"
    >>> parts = (pa.table({"source": ["s"], "image_id": [str(i)]}) for i in range(3))
    >>> read_catalog(write_catalog_batches(parts, out)).num_rows
    3
    """
    target = Path(path)
    if target.suffix == ".parquet":
        with atomic_path(target) as tmp:
            writer: pq.ParquetWriter | None = None
            try:
                for batch in batches:
                    table = conform(batch)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                    writer.write_table(table)
                if writer is None:  # no batch at all: an empty catalog
                    pq.write_table(_empty(), tmp, compression="zstd")
            finally:
                if writer is not None:
                    writer.close()
        return target
    with atomic_dir(target) as staging:
        n = 0
        for batch in batches:
            pq.write_table(conform(batch), staging / f"part-{n:05d}.parquet", compression="zstd")
            n += 1
        if n == 0:
            pq.write_table(_empty(), staging / "part-00000.parquet", compression="zstd")
    return target
