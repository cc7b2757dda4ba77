"""The catalog schema: one Arrow schema for every source, versioned in the Parquet metadata.

This module is the one place the schema is written down. A catalog is a Parquet file (or a
folder of Parquet parts) with these columns, in this order, then any columns later stages add
(``partition_id``, ...). Only ``source`` and ``image_id`` are required to be non-null; every
other column is null where a source lacks it.

=========================  ===================================  ===================================
column                     type                                 meaning
=========================  ===================================  ===================================
source                     string, required                     dataset the row comes from
split                      string                               train / val / test / ...
image_id                   string, required                     id, unique within the catalog
file_name                  string                               path of the image in the release
url                        string                               where the image can be downloaded
lat, lon                   float64                              WGS84 degrees; null if unknown
location_uncertainty_m     float64                              radius in metres, as published
taken_at                   timestamp[us, UTC]                   capture time (a date: 00:00 UTC)
user_id                    string                               photographer / rights holder
label                      int32                                class id of the release
label_name                 string                               class name (e.g. scientific name)
kingdom ... species        string                               taxonomy (7 ranks)
supercategory              string                               iNat super-category
width, height              int32                                image size in pixels
license                    string                               licence name or id
bboxes                     list<struct<x,y,w,h,area: float64>>  boxes in pixels, COCO x,y,w,h
caption                    string                               free text (image-text pairs)
tile_z, tile_x, tile_y     int32                                web-mercator tile (remote sensing)
ground_sample_distance_m   float64                              metres per pixel
extra                      string                               JSON object of other metadata
=========================  ===================================  ===================================
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from geoaware.errors import SchemaError

__all__ = [
    "BBOX_TYPE",
    "METADATA_KEY",
    "REQUIRED_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TAXONOMY_COLUMNS",
    "check_schema",
    "conform",
    "schema_metadata",
]

SCHEMA_VERSION = "1"
"""Bumped whenever a column is added, removed or changes type."""

METADATA_KEY = b"geoaware.schema_version"
"""Parquet footer key that holds :data:`SCHEMA_VERSION`."""
TAXONOMY_COLUMNS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")

BBOX_TYPE = pa.list_(
    pa.struct(
        [
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("w", pa.float64()),
            ("h", pa.float64()),
            ("area", pa.float64()),
        ]
    )
)

SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string()),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("file_name", pa.string()),
        pa.field("url", pa.string()),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("location_uncertainty_m", pa.float64()),
        pa.field("taken_at", pa.timestamp("us", tz="UTC")),
        pa.field("user_id", pa.string()),
        pa.field("label", pa.int32()),
        pa.field("label_name", pa.string()),
        *(pa.field(rank, pa.string()) for rank in TAXONOMY_COLUMNS),
        pa.field("supercategory", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("license", pa.string()),
        pa.field("bboxes", BBOX_TYPE),
        pa.field("caption", pa.string()),
        pa.field("tile_z", pa.int32()),
        pa.field("tile_x", pa.int32()),
        pa.field("tile_y", pa.int32()),
        pa.field("ground_sample_distance_m", pa.float64()),
        pa.field("extra", pa.string()),
    ]
)
"""The catalog's Arrow schema (see the module docstring for each column)."""

REQUIRED_COLUMNS = ("source", "image_id")


COLUMN_GROUPS = (("lat", "lon"), ("width", "height"), ("tile_z", "tile_x", "tile_y"))
"""Columns that mean something only together: a catalog has all of a group or none."""


def _same_kind(stored: pa.DataType, wanted: pa.DataType) -> bool:
    """Whether a stored column type holds the schema type's kind of value (widths may differ)."""
    if stored == wanted or pa.types.is_null(stored):
        return True
    if pa.types.is_dictionary(stored):
        return _same_kind(stored.value_type, wanted)
    checks = (
        (pa.types.is_string, lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        (pa.types.is_floating, lambda t: pa.types.is_floating(t) or pa.types.is_integer(t)),
        (pa.types.is_integer, pa.types.is_integer),
        (pa.types.is_timestamp, lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t)),
        (pa.types.is_list, lambda t: pa.types.is_list(t) or pa.types.is_large_list(t)),
    )
    return any(is_wanted(wanted) and ok(stored) for is_wanted, ok in checks)


def check_schema(schema: pa.Schema, *, where: str = "<table>") -> None:
    """Refuse a stored schema whose columns cannot be the catalog's, before reading any row.

    A catalog column stored as another kind of value (``lat`` as strings, ``label`` as
    floats) or one column of a group without the others (``lon`` without ``lat``) is one
    schema error, not a finding on every row. Missing optional columns are fine: they read as
    nulls.

    Raises
    ------
    SchemaError
        Naming ``where`` and the column.

    Examples
    --------
    >>> check_schema(pa.schema([("source", pa.string()), ("image_id", pa.string()),
    ...                         ("lat", pa.string()), ("lon", pa.float64())]), where="c.parquet")
    Traceback (most recent call last):
    ...
    geoaware.errors.SchemaError: c.parquet, field 'lat': stored as string; the catalog holds double
    """
    names = set(schema.names)
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise SchemaError(where, "required column is missing", field=name)
    for field in SCHEMA:
        if field.name in names:
            stored = schema.field(field.name).type
            if not _same_kind(stored, field.type):
                raise SchemaError(
                    where, f"stored as {stored}; the catalog holds {field.type}", field=field.name
                )
    for group in COLUMN_GROUPS:
        present = [c for c in group if c in names]
        if present and len(present) < len(group):
            missing = next(c for c in group if c not in names)
            raise SchemaError(
                where,
                f"column is missing while {', '.join(present)} is present "
                f"({' and '.join(group)} go together)",
                field=missing,
            )


def schema_metadata() -> dict[bytes, bytes]:
    """Return the key-value metadata written into every catalog's Parquet footer.

    Examples
    --------
    >>> schema_metadata()[b"geoaware.schema_version"]
    b'1'
    """
    return {
        METADATA_KEY: SCHEMA_VERSION.encode(),
        b"geoaware.columns": json.dumps([f.name for f in SCHEMA]).encode(),
    }


def conform(table: pa.Table, *, where: str = "<table>") -> pa.Table:
    """Return ``table`` in catalog form: schema columns first, cast, missing ones as nulls.

    Columns not in the schema are kept after the schema's. ``where`` names the input in
    errors (a file path, say).

    Raises
    ------
    SchemaError
        If a required column is missing or has nulls, or a column cannot be cast to its type;
        the message names the column and the first offending row.

    Examples
    --------
    >>> t = conform(pa.table({"source": ["x"], "image_id": ["1"], "lat": [1.5]}))
    >>> t.schema.field("lat").type, t.column("lon").null_count, t.num_columns
    (DataType(double), 1, 30)
    """
    names = set(table.column_names)
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise SchemaError(where, "required column is missing", field=name)
    arrays: list[Any] = []
    for field in SCHEMA:
        if field.name not in names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            column = _cast(column, field, where)
        if not field.nullable and column.null_count:
            row = column.to_pylist().index(None)
            raise SchemaError(
                where, "required value is null", record=f"row {row}", field=field.name
            )
        arrays.append(column)
    extras = [n for n in table.column_names if SCHEMA.get_field_index(n) < 0]
    fields = [*SCHEMA, *(table.schema.field(n) for n in extras)]
    arrays += [table.column(n) for n in extras]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_metadata()))


def _cast(column: pa.ChunkedArray, field: pa.Field, where: str) -> pa.ChunkedArray:
    try:
        if (
            pa.types.is_timestamp(field.type)
            and pa.types.is_timestamp(column.type)
            and column.type.tz is None
        ):  # a naive timestamp is taken as UTC
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        if pa.types.is_timestamp(field.type) and pa.types.is_date(column.type):
            column = column.cast(pa.timestamp("us")).cast(field.type)
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        row = _first_uncastable(column, field.type)
        value = column[row].as_py() if row is not None else None
        record = f"row {row}" if row is not None else None
        raise SchemaError(
            where,
            f"cannot be read as {field.type} (value {value!r}): {exc}",
            record=record,
            field=field.name,
        ) from exc


def _first_uncastable(column: pa.ChunkedArray, target: pa.DataType) -> int | None:
    """Find the first row that fails the cast, by bisection (each half is cast at once)."""
    lo, hi = 0, len(column)
    if hi == 0:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            column.slice(lo, mid - lo).cast(target)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            hi = mid
    return lo
