"""Kaggle-style CSV rows (``id,predicted``) split into ids and label tokens, with line numbers.

Shared by the predictions reader (:mod:`geoaware.predictions.labels`) and the submission
checker (:mod:`geoaware.predictions.submission`): quoting is off, so every line is one row
and errors name the right line.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geoaware.errors import InputFileError
from geoaware.predictions.ids import PAD, np_int
from geoaware.typing import BoolArray, IntArray

__all__ = ["KaggleRows", "clean_cells", "file_bytes", "int_tokens", "read_kaggle", "split_labels"]


@dataclass
class KaggleRows:
    """A Kaggle-style CSV split into rows and label tokens, with file line numbers."""

    header: str  # the first line as written, without its line break
    ids: Any  # pa.StringArray, trimmed, blank lines dropped
    lines: IntArray  # file line of each row (the header is line 1)
    tokens: Any  # pa.StringArray of every label token, row after row
    parent: IntArray  # row of each token
    bad_rows: list[tuple[int, str, int]]  # (line, text, fields) of rows with a wrong field count


def file_bytes(path: Path) -> bytes:
    """Return the bytes of a file, decompressed when its name ends in ``.gz``."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.lower().endswith(".gz") else data
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputFileError(path, f"cannot be read ({exc})") from exc


def read_kaggle(
    data: bytes, where: object, names: list[str], id_col: str, pred_col: str
) -> KaggleRows:
    """Parse ``data`` (header on line 1, then rows of ``names``) into :class:`KaggleRows`.

    Quoting is off, so each physical line is one row and line numbers are exact; a cell wrapped
    in double quotes has them removed afterwards. A row with the wrong number of fields is
    set aside (with its line); blank and whitespace-only lines are dropped.
    """
    end = data.find(b"\n")
    header = (data if end < 0 else data[:end]).decode("utf-8", "replace").rstrip("\r\n")
    if end < 0:
        data += b"\n"
    table, bad = _parse_csv(data, where, names, id_col, pred_col, threads=True)
    if bad and any(line is None for line, _, _ in bad):  # line numbers need a serial read
        table, bad = _parse_csv(data, where, names, id_col, pred_col, threads=False)
    n_rows = table.num_rows
    lines = np.arange(2, n_rows + 2, dtype=np.int64)
    if bad:
        skipped = np.array([line for line, _, _ in bad], dtype=np.int64)
        every = np.arange(2, n_rows + len(bad) + 2, dtype=np.int64)
        lines = every[~np.isin(every, skipped)]
    ids = clean_cells(_as_text(table.column(id_col), lines, where, id_col))
    pred = clean_cells(_as_text(table.column(pred_col), lines, where, pred_col))
    blank = pc.and_(pc.equal(ids, ""), pc.equal(pred, ""))
    if pc.any(blank).as_py():
        keep = pc.invert(blank)
        ids, pred = ids.filter(keep), pred.filter(keep)
        lines = lines[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    tokens, parent = split_labels(pred)
    real_bad = [(int(line), text, n) for line, text, n in bad if text.strip()]
    return KaggleRows(header, ids, lines, tokens, parent, real_bad)


def split_labels(cells: Any) -> tuple[Any, IntArray]:
    """Split cleaned label cells on whitespace: every token, and the row it comes from."""
    split = pc.ascii_split_whitespace(cells)
    tokens = pc.list_flatten(split)
    parent = np_int(pc.list_parent_indices(split))
    empty = pc.equal(tokens, "")  # an empty cell splits into one empty token
    if pc.any(empty).as_py():
        keep = pc.invert(empty)
        tokens = tokens.filter(keep)
        parent = parent[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    return tokens, parent


def _as_text(column: Any, lines: IntArray, where: object, field: str) -> Any:
    """Cast a binary column to UTF-8 text; on failure name the first bad line (bisection)."""
    cells = column.combine_chunks()
    try:
        return cells.cast(pa.string())
    except pa.ArrowInvalid:
        lo, hi = 0, len(cells)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                cells.slice(lo, mid - lo).cast(pa.string())
                lo = mid
            except pa.ArrowInvalid:
                hi = mid
        raise InputFileError(
            where, "not valid UTF-8 text", record=f"line {lines[lo]}", field=field
        ) from None


def clean_cells(cells: Any) -> Any:
    """Trim whitespace, then one pair of surrounding double quotes (and whitespace inside)."""
    cells = pc.ascii_trim_whitespace(cells)
    opens = pc.starts_with(cells, '"')
    if not pc.any(opens).as_py():
        return cells
    quoted = pc.and_(opens, pc.ends_with(cells, '"'))
    quoted = pc.and_(quoted, pc.greater_equal(pc.binary_length(cells), 2))
    if pc.any(quoted).as_py():
        inner = pc.ascii_trim_whitespace(pc.utf8_slice_codeunits(cells, 1, -1))
        cells = pc.if_else(quoted, inner, cells)
    return cells


def _parse_csv(
    data: bytes, where: object, names: list[str], id_col: str, pred_col: str, *, threads: bool
) -> tuple[Any, list[tuple[Any, str, int]]]:
    bad: list[tuple[Any, str, int]] = []

    def on_bad(row: Any) -> str:
        bad.append((row.number, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=threads),
            parse_options=pacsv.ParseOptions(
                quote_char=False, ignore_empty_lines=False, invalid_row_handler=on_bad
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={id_col: pa.binary(), pred_col: pa.binary()},
                include_columns=[id_col, pred_col],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputFileError(where, f"not a readable CSV file ({exc})") from exc
    return table, bad


def int_tokens(tokens: Any) -> tuple[IntArray, BoolArray | None]:
    """Cast label tokens to int64; on failure, also return the mask of the bad ones."""
    try:
        return np_int(pc.cast(tokens, pa.int64())), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = pc.match_substring_regex(tokens, r"^-?[0-9]{1,18}$")
        okn = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
        values = np.full(len(tokens), PAD, dtype=np.int64)
        values[okn] = np_int(pc.cast(tokens.filter(ok), pa.int64()))
        return values, ~okn
