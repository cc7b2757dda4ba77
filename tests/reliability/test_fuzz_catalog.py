"""Fuzz the catalog validator: any bytes, any columns give a report or one clear error.

Two sources of input: the real fg_geo catalog's Parquet bytes damaged at random (truncated,
bytes overwritten), and tables with catalog column names of random types and values. Each
goes through what ``geoaware validate`` runs; anything but a report or a geoaware error
(one line, naming the file) fails.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoaware.catalog import read_catalog, validate_table
from geoaware.catalog.io import check_catalog_schema
from geoaware.catalog.schema import SCHEMA
from geoaware.errors import GeoawareError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _validate(path: Path) -> None:
    """What ``geoaware validate`` runs: a report, or a geoaware error naming the file."""
    try:
        check_catalog_schema(path)
        report = validate_table(read_catalog(path), str(path))
    except GeoawareError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(str(path)), message
        return
    assert report.rows >= 0 and isinstance(report.to_dict()["findings"], list)


@pytest.fixture(scope="module")
def small_real_parquet(real_catalog: Path) -> bytes:
    """The first 300 rows of the real catalog, as the bytes of one Parquet file."""
    buf = io.BytesIO()
    pq.write_table(pq.read_table(real_catalog).slice(0, 300), buf, compression="zstd")
    return buf.getvalue()


@FUZZ
@given(
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
)
def test_damaged_real_catalog_bytes(
    small_real_parquet: bytes,
    tmp_path_factory: pytest.TempPathFactory,
    cut: int | None,
    edits: list[tuple[int, int]],
) -> None:
    whole = small_real_parquet
    data = bytearray(whole if cut is None else whole[: max(1, cut % (len(whole) + 1))])
    for at, value in edits:
        data[at % len(data)] = value
    path = tmp_path_factory.mktemp("fuzz") / "catalog.parquet"
    path.write_bytes(bytes(data))
    _validate(path)


_TYPES = {
    "string": (pa.string(), st.text(max_size=8)),
    "float64": (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "int64": (pa.int64(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "int8": (pa.int8(), st.integers(min_value=-128, max_value=127)),
    "bool": (pa.bool_(), st.booleans()),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "timestamp": (pa.timestamp("s"), st.integers(min_value=-(2**40), max_value=2**40)),
    "date": (pa.date32(), st.integers(min_value=-(10**6), max_value=10**6)),
    "list": (pa.list_(pa.float64()), st.lists(st.floats(), max_size=3)),
}


_OWN_KIND = {
    pa.string(): "string",
    pa.float64(): "float64",
    pa.int32(): "int8",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """Catalog-like tables: mostly with the required columns, columns of their own kind or not."""
    names = draw(
        st.lists(
            st.sampled_from([f.name for f in SCHEMA] + ["partition_id", "extra_col"]),
            unique=True,
            max_size=10,
        )
    )
    n = draw(st.integers(min_value=0, max_value=6))
    columns = {}
    if draw(st.integers(0, 3)):  # three times in four: a valid source and image_id
        columns["source"] = pa.array(["fuzz"] * n, pa.string())
        columns["image_id"] = pa.array(draw(st.lists(st.text(max_size=4), min_size=n, max_size=n)))
    for name in names:
        own = SCHEMA.field(name).type if name in SCHEMA.names else None
        kind = (
            _OWN_KIND[own]
            if own in _OWN_KIND and draw(st.booleans())
            else draw(st.sampled_from(sorted(_TYPES)))
        )
        typ, values = _TYPES[kind]
        column = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
        columns[name] = pa.array(column, typ)
    return pa.table(columns) if columns else pa.table({"x": pa.array([], pa.int8())})


@FUZZ
@given(table=tables())
def test_any_columns_of_any_type(tmp_path_factory: pytest.TempPathFactory, table: pa.Table) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "catalog.parquet"
    pq.write_table(table, path)
    _validate(path)


def test_schema_version_that_is_not_text(real_catalog: Path, tmp_path: Path) -> None:
    """Found by the fuzz pass: a footer version of undecodable bytes was a UnicodeDecodeError."""
    table = pq.read_table(real_catalog).slice(0, 10)
    meta = {**table.schema.metadata, b"geoaware.schema_version": b"\xfe1"}
    path = tmp_path / "catalog.parquet"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(
        GeoawareError, match=r"catalog\.parquet, field 'schema_version': .* is not a number"
    ):
        _validate_strict(path)


def _validate_strict(path: Path) -> None:
    check_catalog_schema(path)
    validate_table(read_catalog(path), str(path))


def test_a_column_name_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    """A damaged byte in a column name of the footer: pyarrow's UnicodeDecodeError is named."""
    buf = io.BytesIO()
    pq.write_table(pa.table({"source": ["s"], "zzzzzzzz": [1.0]}), buf, store_schema=False)
    path = tmp_path / "catalog.parquet"
    path.write_bytes(buf.getvalue().replace(b"zzzzzzzz", b"\x80zzzzzzz"))
    with pytest.raises(GeoawareError, match="not a readable Parquet file"):
        check_catalog_schema(path)
    _validate(path)
