"""Vectorised CSV reading whose errors name the file, the line and the field.

Every reader of a delimited-text release goes through :func:`read_csv_columns`:

* a fixed number of comment lines (returned as they are) may precede the header;
* the header is checked first, either against the exact column list of the release or, for
  releases whose column set varies between versions, for the required columns only;
* the body is parsed by :mod:`pyarrow.csv` with every column as a string, so ids such as
  ``0001`` are never read as numbers and only the empty cell is null (pyarrow's default null
  markers would turn the country code ``NA``, Namibia, into a null);
* numeric columns are then cast at once; Arrow's parser is correctly rounded, so a float with
  binary artefacts such as ``40.445378999999996`` is the same double as Python's ``float``;
* empty cells in columns that must have a value, and values outside a range, are found with
  vectorised reductions.

Only when a check fails is the offending record looked up (by bisection for a failed cast, by
one :mod:`csv` scan for the line number), so the good path never loops in Python. Line numbers
count every physical line from 1: comment lines, the header and blank lines included.

:func:`json_objects` builds the catalog's ``extra`` column from typed columns, also without a
Python loop over the rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geoaware.errors import InputFileError, UsageError

__all__ = ["CsvColumns", "json_objects", "read_csv_columns"]

_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_CONTROL = "[\\x00-\\x1f]"


@dataclass(frozen=True)
class CsvColumns:
    """What :func:`read_csv_columns` read.

    Attributes
    ----------
    table : pyarrow.Table
        One column per header name, in file order: float64, int64 or bool where asked, else
        string; empty cells are null.
    comments : tuple of str
        The comment lines before the header, without their line ends.
    where : str
        The file's name in errors.
    """

    table: pa.Table
    comments: tuple[str, ...]
    where: str
    _body: _Body = field(repr=False, compare=False)

    def error(self, row: int, column: str | None, problem: str) -> InputFileError:
        """Return an :class:`InputFileError` for data row ``row`` (0-based) naming its line.

        For the checks a reader makes after :func:`read_csv_columns` (a bad cell token, a
        duplicate id, ...); the line number is looked up by one scan of the file.
        """
        return self._body.error(row, column, problem)


def read_csv_columns(
    source: bytes | str | os.PathLike[str],
    *,
    expected_header: Sequence[str],
    where: str | None = None,
    float_columns: Collection[str] = (),
    int_columns: Collection[str] = (),
    bool_columns: Collection[str] = (),
    non_empty: Collection[str] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
    comment_lines: int = 0,
    comment_prefixes: Sequence[str] | None = None,
    extra_columns: bool = False,
) -> CsvColumns:
    r"""Read a CSV file (or its bytes) into typed Arrow columns, checking its layout.

    Parameters
    ----------
    source
        A path, or the file's bytes.
    expected_header
        The column names. Unless ``extra_columns``, the header must be exactly these, in this
        order.
    where
        The name used in errors; defaults to the path (``<bytes>`` for bytes).
    float_columns, int_columns, bool_columns
        Columns cast to float64 / int64 / bool (``True``, ``false``, ``1``, ``0``, any
        case). With ``extra_columns``, those absent from the file and not in
        ``expected_header`` are skipped.
    non_empty
        Columns in which an empty cell is an error.
    ranges
        ``{column: (low, high)}``: numeric values must lie in the closed interval (NaN does
        not); nulls are left to ``non_empty``.
    comment_lines
        Lines before the header, returned in :attr:`CsvColumns.comments`.
    comment_prefixes
        What each comment line must start with (one per comment line), checked before the
        header.
    extra_columns
        Accept a header that holds ``expected_header`` in any order plus other columns
        (kept as strings).

    Returns
    -------
    CsvColumns
        The typed table and the comment lines.

    Raises
    ------
    InputFileError
        For a file that ends before its header, a wrong header, a missing or duplicate
        column, a record with the wrong number of fields, text that is not UTF-8, a cell that
        is not a number (or integer), an empty required cell or a value out of range; the
        message names the file, the line and the field.

    Examples
    --------
    >>> data = b"# made by hand\nname,lat\nx,1.5\ny,40.445378999999996\n"
    >>> out = read_csv_columns(data, where="demo.csv", expected_header=["name", "lat"],
    ...                        float_columns=["lat"], comment_lines=1)
    >>> out.comments, out.table.column("lat").to_pylist()
    (('# made by hand',), [1.5, 40.445378999999996])
    >>> read_csv_columns(b"name,lat\nx,north\n", where="demo.csv",
    ...                  expected_header=["name", "lat"], float_columns=["lat"])
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: demo.csv, record line 2, field 'lat': 'north' is not a number
    """
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        where = "<bytes>" if where is None else where
    else:
        data = Path(source).read_bytes()
        where = str(source) if where is None else where
    header_lines = comment_lines + 1
    if comment_prefixes is not None and len(comment_prefixes) != comment_lines:
        raise UsageError(f"{len(comment_prefixes)} comment prefixes for {comment_lines} lines")
    lines, body_start = _head(data, header_lines, where, comment_prefixes or ())
    names = _check_header(lines[-1], expected_header, extra_columns, where, header_lines)
    body = _Body(data, body_start, header_lines, names, where)
    raw = body.parse()

    present = set(names)
    wanted = set(expected_header)
    for column in (*float_columns, *int_columns, *bool_columns, *non_empty, *(ranges or {})):
        if column not in present and (column in wanted or not extra_columns):
            raise UsageError(f"{column!r} is not a column of {list(expected_header)}")
    columns: dict[str, pa.ChunkedArray] = {n: raw.column(n) for n in names}
    for column in non_empty:
        if column in present and columns[column].null_count:
            row = _first_true(columns[column].is_null())
            raise body.error(row, column, "empty value")
    for column, kind, word in (
        *((c, pa.float64(), "a number") for c in float_columns),
        *((c, pa.int64(), "an integer") for c in int_columns),
        *((c, pa.bool_(), "true or false") for c in bool_columns),
    ):
        if column not in present:
            continue
        try:
            columns[column] = columns[column].cast(kind)
        except _CAST_ERRORS:
            row = _first_failing(columns[column], kind)
            value = raw.column(column)[row].as_py()
            raise body.error(row, column, f"{value!r} is not {word}") from None
    for column, (low, high) in (ranges or {}).items():
        if column not in present:
            continue
        values = columns[column].to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~((values >= low) & (values <= high)) & ~_null_mask(columns[column])
        if bad.any():
            row = int(np.argmax(bad))
            value = raw.column(column)[row].as_py()
            raise body.error(row, column, f"{value!r} is out of range [{low:g}, {high:g}]")
    table = pa.table(columns)
    return CsvColumns(table, tuple(lines[:-1]), where, body)


def json_objects(columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> pa.Array:
    """Return one JSON object (string) per row built from ``columns``, without a row loop.

    Keys keep the mapping's order. Null values, and NaN or infinite floats, are left out of
    their row's object; a row with nothing to say is null (not ``{}``), as the catalog's
    ``extra`` is null where a source has nothing more. Strings are escaped as JSON requires;
    numbers are written in their shortest round-trip form.

    Examples
    --------
    >>> import json
    >>> out = json_objects({"n": pa.array([1, None, None]), "s": pa.array(['say "hi"', "x", None])})
    >>> [text and json.loads(text) for text in out.to_pylist()]
    [{'n': 1, 's': 'say "hi"'}, {'s': 'x'}, None]
    """
    if not columns:
        return pa.array([], pa.string())
    fragments = []
    for key, values in columns.items():
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        text = _json_values(array)
        prefix = "," + orjson.dumps(key).decode() + ":"
        fragments.append(pc.fill_null(pc.binary_join_element_wise(prefix, text, ""), ""))
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*fragments, ""), 1)
    objects = pc.binary_join_element_wise("{", body, "}", "")
    result: pa.Array = pc.if_else(pc.equal(objects, "{}"), pa.scalar(None, pa.string()), objects)
    return result


def _json_values(array: pa.Array) -> pa.Array:
    """JSON literals for one column (strings), null where the value is to be left out."""
    kind = array.type
    if pa.types.is_floating(kind):
        array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, kind))
        return array.cast(pa.string())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return array.cast(pa.string())
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise TypeError(f"json_objects: unsupported column type {kind}")
    array = array.cast(pa.string())
    if pc.any(pc.match_substring_regex(array, _CONTROL)).as_py():  # rare: let orjson escape
        return pa.array(
            [None if v is None else orjson.dumps(v).decode() for v in array.to_pylist()],
            pa.string(),
        )
    escaped = pc.replace_substring(pc.replace_substring(array, "\\", "\\\\"), '"', '\\"')
    result: pa.Array = pc.binary_join_element_wise('"', escaped, '"', "")
    return result


def _head(data: bytes, count: int, where: str, prefixes: Sequence[str]) -> tuple[list[str], int]:
    """Decode the first ``count`` lines; return them and the byte offset after the last.

    Each of the first lines must start with its prefix, if any is given.
    """
    lines: list[str] = []
    pos = 0
    while len(lines) < count and pos < len(data):
        end = data.find(b"\n", pos)
        stop = len(data) if end < 0 else end + 1
        raw = data[pos:stop].rstrip(b"\r\n")
        try:
            lines.append(raw.decode("utf-8").lstrip("\ufeff") if not lines else raw.decode())
        except UnicodeDecodeError as exc:
            raise InputFileError(
                where, f"not UTF-8 text ({exc.reason})", record=f"line {len(lines) + 1}"
            ) from None
        if len(lines) <= len(prefixes) and not lines[-1].startswith(prefixes[len(lines) - 1]):
            prefix = prefixes[len(lines) - 1]
            raise InputFileError(
                where,
                f"expected a line starting {prefix!r}, found {lines[-1]!r}",
                record=f"line {len(lines)}",
            )
        pos = stop
    if len(lines) < count:
        raise InputFileError(
            where,
            "file ends before its header"
            + (f" ({count - 1} comment lines, then the header)" if count > 1 else ""),
            record=f"line {len(lines) + 1}",
        )
    return lines, pos


def _check_header(
    line: str, expected: Sequence[str], extra_columns: bool, where: str, number: int
) -> list[str]:
    names = next(csv.reader([line]), [])
    record = f"line {number}"
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputFileError(where, "duplicate column in header", record=record, field=name)
        seen.add(name)
    missing = [name for name in expected if name not in seen]
    if missing:
        raise InputFileError(
            where,
            f"column missing from header {line!r} (expected {','.join(expected)!r})",
            record=record,
            field=missing[0],
        )
    if not extra_columns and names != list(expected):
        raise InputFileError(
            where, f"wrong header {line!r}, expected {','.join(expected)!r}", record=record
        )
    return names


class _Body:
    """The data lines of a CSV file: parses them and maps row numbers to line numbers."""

    def __init__(
        self, data: bytes, start: int, lines_before: int, names: list[str], where: str
    ) -> None:
        self.data = data
        self.start = start
        self.lines_before = lines_before
        self.names = names
        self.where = where

    def parse(self) -> pa.Table:
        body = pa.py_buffer(self.data)[self.start :]
        head = self.data[self.start : self.start + 4096]
        if not head.strip() and not self.data[self.start :].strip():  # a header, no rows
            return pa.table({name: pa.array([], pa.string()) for name in self.names})
        try:
            return pacsv.read_csv(
                pa.BufferReader(body),
                read_options=pacsv.ReadOptions(column_names=self.names),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self.names},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise self._parse_error(exc) from exc

    def _parse_error(self, exc: Exception) -> InputFileError:
        """Find the record Arrow could not parse (not UTF-8, or the wrong field count)."""
        body = self.data[self.start :]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = self.lines_before + body.count(b"\n", 0, bad.start) + 1
            return InputFileError(
                self.where, f"not UTF-8 text ({bad.reason})", record=f"line {line}"
            )
        for line, fields in self._records():
            if len(fields) != len(self.names):
                return InputFileError(
                    self.where,
                    f"{len(fields)} fields where the header has {len(self.names)}",
                    record=f"line {line}",
                )
        return InputFileError(self.where, f"malformed CSV ({exc})")

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (first line number, fields) of each non-blank record, as Arrow counts them."""
        text = io.TextIOWrapper(
            io.BytesIO(self.data[self.start :]), encoding="utf-8", errors="replace", newline=""
        )
        reader = csv.reader(text)
        done = 0
        for fields in reader:
            line = self.lines_before + done + 1
            done = reader.line_num
            if fields:
                yield line, fields

    def error(self, row: int, column: str | None, problem: str) -> InputFileError:
        """Return the error for data row ``row`` (0-based), located by its line number."""
        for i, (line, _) in enumerate(self._records()):
            if i == row:
                return InputFileError(self.where, problem, record=f"line {line}", field=column)
        return InputFileError(self.where, problem, record=f"row {row}", field=column)


def _null_mask(values: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _first_true(mask: pa.ChunkedArray) -> int:
    return int(np.argmax(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)))


def _first_failing(values: pa.ChunkedArray, kind: pa.DataType) -> int:
    """Return the first row whose cast to ``kind`` fails (bisection: halves cast at once)."""
    array = values.combine_chunks()

    def fails(lo: int, hi: int) -> bool:
        try:
            array.slice(lo, hi - lo).cast(kind)
        except _CAST_ERRORS:
            return True
        return False

    return _bisect(len(array), fails)


def _bisect(n: int, fails: Callable[[int, int], bool]) -> int:
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails(lo, mid):
            hi = mid
        else:
            lo = mid
    return lo
